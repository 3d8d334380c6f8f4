"""Turns engine records into the cells the widgets show: numbers formatted for an operator, not a parser."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text

from engine.events import Alert, Balance, Order, Position
from widgets.alerts import AlertRow


def num(value: Decimal | None, places: int = 2) -> str:
    """A Decimal with thousands separators and fixed places; an em dash when unknown."""
    if value is None:
        return "—"
    q = Decimal(1).scaleb(-places)
    return f"{value.quantize(q):,}"


def qty(value: Decimal | None) -> str:
    """A quantity without trailing zeros (0.00150000 -> 0.0015)."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def balance_row(b: Balance, quote: str) -> tuple[str, ...]:
    """Quote currency to the cent; other assets to their last significant digit."""
    fmt = (lambda v: num(v, 2)) if b.asset == quote else qty
    return (b.asset, fmt(b.free), fmt(b.locked), fmt(b.total))


def market_row(symbol: str, last: Decimal | None, p: Position | None) -> tuple[str | Text, ...]:
    """One configured market: its last price and, when held, the position in it."""
    if p is None:
        return (symbol, num(last), "", "", "", "")
    pnl = p.unrealized_pnl
    style = "green" if pnl and pnl > 0 else "red" if pnl and pnl < 0 else ""
    return (symbol, num(last), qty(p.amount), num(p.avg_entry), num(p.value), Text(num(pnl), style=style))


def order_row(o: Order) -> tuple[str | Text, ...]:
    side = Text(o.side.upper(), style="green" if o.side == "buy" else "red")
    return (
        o.symbol, side, num(o.price) if o.price is not None else "market",
        qty(o.amount), qty(o.filled), o.status.value, o.origin, o.client_id,
    )


def alert_row(a: Alert) -> AlertRow:
    return AlertRow(a.ts.strftime("%H:%M:%S"), a.severity.value, a.code, a.message, id=a.id, count=a.count,
                    acked=a.acked)
