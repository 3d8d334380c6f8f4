"""Equity at a glance: the figure, today's PnL and drawdown against their limits, and the curve."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Sparkline, Static

from widgets.health import LEVEL_STYLE

CURVE_POINTS = 120


class EquityLine(Horizontal):
    """``equity 10,012.50 USDT · day -2.91 (-0.03%/-3%) · DD 0.41%/10%  ▁▂▃▅▆▇``: today's loss and the
    drawdown against their hard limits, coloured by their monitors, and the equity curve. The day's loss is signed
    as the day's figure is (the monitor reads a loss as a positive percentage; the operator reads a minus)."""

    DEFAULT_CSS = """
    EquityLine { height: 1; width: 1fr; padding: 0 1; }
    EquityLine > #equity-figures { width: 1fr; height: 1; }
    EquityLine > Sparkline { width: 12; height: 1; }
    """

    def __init__(self, quote: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.quote = quote
        self.equity = ""
        self.day_pnl = ""
        self.day_negative = False
        self.daily_loss: Mapping[str, Any] | None = None
        self.drawdown: Mapping[str, Any] | None = None
        self.curve: deque[float] = deque(maxlen=CURVE_POINTS)

    def compose(self) -> ComposeResult:
        yield Static(id="equity-figures")
        yield Sparkline([], id="equity-curve")

    def draw(self) -> None:
        t = Text()
        t.append("equity ")
        t.append(f"{self.equity or '—'} {self.quote}", style="bold")
        if self.day_pnl:
            t.append(" · day ")
            t.append(self.day_pnl, style="red" if self.day_negative else "green")
        if self.daily_loss:
            t.append(
                f" ({_signed(self.daily_loss['value'], self.day_negative)}/{_signed(_limit(self.daily_loss), True)})",
                style=LEVEL_STYLE.get(self.daily_loss["status"], ""),
            )
        if self.drawdown:
            t.append(" · ")
            t.append(
                f"DD {self.drawdown['value']}/{_limit(self.drawdown)}",
                style=LEVEL_STYLE.get(self.drawdown["status"], ""),
            )
        self.query_one("#equity-figures", Static).update(t)

    def add_point(self, equity: float) -> None:
        self.curve.append(equity)
        self.query_one(Sparkline).data = list(self.curve)


def _signed(value: object, loss: bool) -> str:
    """A loss percentage with its minus (``0.03%`` -> ``-0.03%``); anything else as it is."""
    text = str(value).strip()
    return f"-{text}" if loss and text[:1].isdigit() else text


def _limit(reading: Mapping[str, Any]) -> str:
    """The hard limit of a ``warn / limit`` threshold."""
    return str(reading["threshold"]).split("/")[-1].strip()
