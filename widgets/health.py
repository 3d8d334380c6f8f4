"""The health line and the monitor strip: the numbers an operator scans, and every monitor that is not OK.

Both read the monitors' own readings (value and threshold, as the engine judged them), so the screen never
judges differently from the engine: a number is red exactly when its monitor says CRIT, yellow on WARN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

LEVEL_STYLE = {"OK": "", "WARN": "bold yellow", "CRIT": "bold white on red"}
CHAT_STYLE = {"connected": "", "connecting": "yellow", "failing": "bold white on red", "off": "dim"}

# The health line: (monitor code, label) in the order an operator reads them.
HEALTH = (
    ("ws_stale", "data"),
    ("rest_errors", "err"),
    ("rest_latency", "p95"),
    ("stream_latency", "lag"),
    ("reconnects", "reconn"),
    ("clock_skew", "skew"),
)


def compact(reading: Mapping[str, Any]) -> str:
    """A reading's value in as few characters as an 80-column line needs: ``0 in 60s`` -> ``0/60s``, without
    its parenthesised detail (which stream: the monitor strip gives it when it matters)."""
    return str(reading["value"]).replace(" in ", "/").split(" (", 1)[0]


class HealthLine(Static):
    """``data 0.3s · err 0/60s · p95 4ms · lag 12ms · reconn 0/h · skew +3ms · mon 1s``: age of market data (and
    of the user stream), REST errors in the window, REST latency p95, stream latency, reconnects in the last hour,
    clock skew, seconds since the monitors last completed a pass."""

    DEFAULT_CSS = """
    HealthLine { height: 1; width: 1fr; padding: 0 1; }
    """

    readings: reactive[dict[str, Mapping[str, Any]]] = reactive(dict, always_update=True)
    breaker: reactive[str | None] = reactive(None)
    polling: reactive[bool] = reactive(False)
    streams_down: reactive[tuple[str, ...]] = reactive(tuple)
    monitors_age: reactive[float | None] = reactive(None)
    monitors_stalled: reactive[bool] = reactive(False)
    chat: reactive[tuple[str, ...]] = reactive(tuple)  # "telegram connected", "slack failing"

    def render(self) -> Text:
        t = Text()
        for i, (code, label) in enumerate(HEALTH):
            reading = self.readings.get(code)
            if i:
                t.append(" · ")
            if reading is None:
                t.append(f"{label} —", style="dim")
                continue
            t.append(f"{label} {compact(reading)}", style=LEVEL_STYLE.get(reading["status"], ""))
        if self.monitors_age is not None:
            # How long since the monitors last completed a pass: red when the watchdog calls it a stall.
            t.append(" · ")
            t.append(f"mon {self.monitors_age:.0f}s", style=LEVEL_STYLE["CRIT" if self.monitors_stalled else "OK"])
        if self.polling:
            t.append(" · REST polling", style="yellow")
        if self.streams_down:
            t.append(f" · down: {', '.join(self.streams_down)}", style="bold red")
        if self.breaker and self.breaker != "CLOSED":
            t.append(f" · breaker {self.breaker}", style="bold white on red")
        for bot in self.chat:
            # Each chat bot: its name and state in words; yellow while connecting, red while failing.
            name, _, state = bot.partition(" ")
            t.append(" · ")
            t.append(f"{name} {state}", style=CHAT_STYLE.get(state, ""))
        return t


class MonitorStrip(Static):
    """``monitors 14 OK`` or each monitor that is not: ``CRIT ws_stale 61.0s (ticker) > 10s / 60s``; then the
    go/no-go checklist's latest verdict once one has run: ``go/no-go GO · 14 PASS · 3 WARN (g)``, or its short
    form (``go/no-go GO (g)``) when the monitors leave no room for the long one on the line."""

    DEFAULT_CSS = """
    MonitorStrip { height: 1; width: 1fr; padding: 0 1; }
    """

    readings: reactive[dict[str, Mapping[str, Any]]] = reactive(dict, always_update=True)
    checklist: reactive[str] = reactive("")  # "go/no-go GO · 15 PASS · 2 WARN (g)"
    checklist_short: reactive[str] = reactive("")  # "go/no-go GO (g)"
    checklist_level: reactive[str] = reactive("OK")

    def render(self) -> Text:
        t = Text()
        if not self.readings:
            t.append("monitors —", style="dim")
        else:
            bad = [r for r in self.readings.values() if r["status"] != "OK"]
            bad.sort(key=lambda r: r["status"] != "CRIT")
            if not bad:
                t.append(f"monitors {len(self.readings)} OK", style="green")
            else:
                ok = len(self.readings) - len(bad)
                for i, r in enumerate(bad):
                    if i:
                        t.append(" · ")
                    t.append(
                        f"{r['status']} {r['code']} {r['value']} > {r['threshold']}", style=LEVEL_STYLE[r["status"]]
                    )
                t.append(f" · {ok} OK", style="dim")
        if self.checklist:
            room = self.content_size.width or 10**6
            verdict = self.checklist
            if t.cell_len + 3 + len(verdict) > room and self.checklist_short:
                verdict = self.checklist_short
            if t.cell_len + 3 + len(verdict) > room:
                # The verdict first, the monitors' words after it: both are cut before the verdict is.
                head = Text(verdict, style=LEVEL_STYLE.get(self.checklist_level, ""))
                return head.append(" │ ").append_text(t)
            t.append(" │ ")
            t.append(verdict, style=LEVEL_STYLE.get(self.checklist_level, ""))
        return t
