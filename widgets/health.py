"""The health line: how fresh market data is, how fast and how healthy REST is, today's PnL and drawdown."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class HealthLine(Static):
    """One line of numbers an operator scans: red when one of them says something is wrong."""

    DEFAULT_CSS = """
    HealthLine { height: 1; width: 1fr; padding: 0 1; }
    """

    ws_age_s: reactive[float | None] = reactive(None)
    rest_p95_ms: reactive[float | None] = reactive(None)
    rest_errors: reactive[int] = reactive(0)
    ws_reconnects: reactive[int] = reactive(0)
    breaker: reactive[str | None] = reactive(None)
    polling: reactive[bool] = reactive(False)
    day_pnl: reactive[str] = reactive("")
    day_pnl_negative: reactive[bool] = reactive(False)
    drawdown: reactive[str] = reactive("")
    stale_after_s: float = 10.0  # runbook 001 §1: WARN past 10 s
    slow_after_ms: float = 2000.0  # runbook 000 §3: high latency > 2 s

    def render(self) -> Text:
        t = Text()
        if self.ws_age_s is None:
            t.append("ws —", style="dim")
        else:
            t.append(f"ws {self.ws_age_s:.1f}s", style="bold red" if self.ws_age_s > self.stale_after_s else "")
        if self.polling:
            t.append(" (REST polling)", style="yellow")
        t.append(" · ")
        if self.rest_p95_ms is None:
            t.append("REST p95 —", style="dim")
        else:
            slow = self.rest_p95_ms > self.slow_after_ms
            t.append(f"REST p95 {self.rest_p95_ms:.0f}ms", style="bold red" if slow else "")
        t.append(" · ")
        t.append(f"err {self.rest_errors}", style="yellow" if self.rest_errors else "")
        t.append(f" · reconn {self.ws_reconnects}", style="yellow" if self.ws_reconnects else "")
        if self.breaker and self.breaker != "CLOSED":
            t.append(f" · breaker {self.breaker}", style="bold white on red")
        if self.day_pnl:
            t.append(" · day ")
            t.append(self.day_pnl, style="red" if self.day_pnl_negative else "green")
        if self.drawdown:
            t.append(f" · DD {self.drawdown}")
        return t
