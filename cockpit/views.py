"""Turns engine records into the cells the widgets show: numbers formatted for an operator, not a parser.

Every text that came from outside the program (a symbol, an order's origin, an alert's words, a venue's error, an
actor, a reason) reaches a widget through ``shown`` or ``cells`` here: made inert (``engine.kernel.text.inert``: no
escape sequence, bidi override or newline reaches the terminal) and wrapped in ``rich.text.Text``, never parsed as
markup. (The widgets cannot do it themselves: they know nothing of the engine, the helper's home.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.text import Text

from engine.kernel.text import inert
from widgets.flow import Fitted

if TYPE_CHECKING:  # names only: the engine's records are loaded after the first frame (decision BEN-10)
    from engine.kernel.events import Alert, Balance, Fill, Order, Position
    from widgets.alerts import AlertRow  # ... and the panels' tables (decision BEN-14)


def shown(text: object, *, limit: int | None = 2000, lines: bool = False) -> Text:
    """Outside text as a widget shows it: inert, and a ``Text`` (never read as markup)."""
    return Text(inert(text, limit=limit, lines=lines))


def cell(value: str | Text) -> Text:
    """A table cell: a string made inert; a ``Text`` built here kept with its styles, unless something in it would
    act on the terminal (then its plain text is made inert, in its base style)."""
    if isinstance(value, Text):
        plain = inert(value.plain)
        return value if plain == value.plain else Text(plain, style=value.style)
    return Text(inert(value))


def cells(row: Iterable[Any]) -> tuple[Text, ...]:
    """A table row's cells, each through ``cell`` (anything else shown as its ``str``)."""
    return tuple(cell(v if isinstance(v, (str, Text)) else str(v)) for v in row)


def reading(m: Mapping[str, Any]) -> dict[str, Any]:
    """A monitor's reading with its words made inert (a value may quote a stream's or the venue's name)."""
    return {k: inert(v) if isinstance(v, str) else v for k, v in m.items()}


def num(value: Decimal | None, places: int = 2) -> str:
    """A Decimal with thousands separators and fixed places; an em dash when unknown."""
    if value is None:
        return "—"
    q = Decimal(1).scaleb(-places)
    return f"{value.quantize(q):,}"


def price(value: Decimal | None) -> str:
    """A price as ``num`` writes it, with the places a price under 1 needs to show four significant digits
    (``0.02640``, not ``0.03``)."""
    if value is not None and value and abs(value) < 1:
        return num(value, max(2, -value.adjusted() + 3))
    return num(value)


def plain(value: object, grouping: bool = False) -> str:
    """A number as an operator reads it, never in exponent notation: ``Decimal("1.1E-7")`` (or the text
    ``"1.1E-7"``, as the store keeps it) -> ``0.00000011``, with the places it was given (``0.0999``); anything
    that is not a finite number is returned as its text. ``grouping``: thousands separators."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (ArithmeticError, ValueError):
        return str(value)
    if not d.is_finite():
        return str(value)
    return format(d, ",f" if grouping else "f")


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


def age(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h14m``: how long an order has rested."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def market_row(
    symbol: str,
    last: Decimal | None,
    p: Position | None,
    stop: Decimal | None = None,
    at_venue: bool = False,
    oco: bool = False,
    suspended: bool = False,
) -> tuple[str | Text, ...]:
    """One configured market: its mark price and, when held, the position: size, entry, value, unrealised PnL,
    its stop-loss, how far the price is above it, and where the stop rests: ``venue`` (it protects the position
    with the engine gone), ``venue OCO`` (with the entry's take-profit, one cancels the other), ``suspended``
    (yellow: a cancel-all with its stops or a close-all took it; a resume puts it back) or ``engine only`` (red:
    nothing protects it if the engine stops)."""
    symbol_cell = shown(symbol)
    if p is None or not p.amount:
        return (symbol_cell, price(last), "", "", "", "", "", "", "")
    pnl = p.unrealized_pnl
    style = "green" if pnl and pnl > 0 else "red" if pnl and pnl < 0 else ""
    mark = last if last is not None else p.last
    if p.leverage is not None and stop is None:
        return perp_row(symbol_cell, p, Text(num(pnl), style=style))
    if stop is None:
        stop_cell, distance = Text("none", style="bold yellow"), Text("—", style="bold yellow")
    else:
        stop_cell = price(stop)
        gap = (mark - stop) / mark * 100 if mark else None
        if gap is not None and p.amount < 0:
            gap = -gap  # a short's stop is over the price
        distance = Text(
            f"{gap:.2f}%" if gap is not None else "—", style="bold red" if gap is not None and gap < 1 else ""
        )
    where: str | Text = ""
    if stop is not None:
        if at_venue:
            where = "venue OCO" if oco else "venue"
        else:
            where = Text("suspended", style="bold yellow") if suspended else Text("engine only", style="bold red")
    size: str | Text = qty(p.amount)
    if p.leverage is not None:  # perps: side and leverage with the size, as ``perp_row`` shows them
        size = perp_row(symbol_cell, p, Text(""))[2]
    return (
        symbol_cell,
        price(mark),
        size,
        price(p.avg_entry),
        num(p.value),
        Text(num(pnl), style=style),
        stop_cell,
        distance,
        where,
    )


def perp_row(symbol_cell: str | Text, p: Position, pnl: Text) -> tuple[str | Text, ...]:
    """A perpetual's position (runbook 002 "Monitor positions"): its side and leverage with the size, the venue's
    mark, and where the stop columns would be, its liquidation price and the mark's distance to it (yellow under
    15 %, red under 7.5 %: the default liquidation-distance thresholds) and ``liquidation``."""
    side = Text(
        f"{p.side.upper()} {qty(abs(p.amount))} {p.leverage.normalize():f}x", style="green" if p.amount > 0 else "red"
    )
    distance = p.liquidation_distance_pct
    far = "" if distance is None else "bold red" if distance < Decimal("7.5") else "yellow" if distance < 15 else ""
    return (
        symbol_cell,
        price(p.last),
        side,
        price(p.avg_entry),
        num(p.value),
        pnl,
        price(p.liquidation_price),
        Text("—" if distance is None else f"{distance:.2f}%", style=far),
        "liquidation",
    )


STATUS_WORD = {"PARTIALLY_FILLED": "PARTIAL"}  # the one status too long for an 80-column table


def order_row(o: Order, now: datetime, stuck_after_s: float) -> tuple[str | Text, ...]:
    """An open order: side in colour and in words, fill %, how long it has rested and STUCK once it rested
    longer than the stuck-order monitor allows."""
    side = Text(inert(o.side.upper()), style="green" if o.side == "buy" else "red")
    rested = (now - o.created_at).total_seconds()
    filled = f"{o.filled / o.amount * 100:.0f}%" if o.amount else "—"
    status: str | Text = STATUS_WORD.get(o.status.value, o.status.value)
    if rested > stuck_after_s:
        status = Text(f"{status} STUCK", style="bold yellow")
    return (
        shown(o.symbol),
        side,
        price(o.price) if o.price is not None else "market",
        qty(o.amount),
        filled,
        age(rested),
        status,
        shown(o.origin.removeprefix("strategy:")),
    )


def fill_row(f: Fill) -> tuple[str | Text, ...]:
    side = Text(inert(f.side.upper()), style="green" if f.side == "buy" else "red")
    return (f.ts.strftime("%H:%M:%S"), shown(f.symbol), side, qty(f.amount), num(f.price))


def alert_row(a: Alert) -> AlertRow:
    from widgets.alerts import AlertRow  # with the alert list, after the first frame (decision BEN-14)

    return AlertRow(
        a.ts.strftime("%H:%M:%S"),
        a.severity.value,
        inert(a.code),
        inert(a.message),
        id=a.id,
        count=a.count,
        acked=a.acked,
    )


def checklist_record(c: Mapping[str, Any]) -> dict[str, Any]:
    """A go/no-go run as the screens show it, from the engine's ``ChecklistCompleted`` (``summary`` counts) or from
    the store's row (``passed``, ``warned``, ``failed``): ``summary`` is always there."""
    counts = c.get("summary") or {"PASS": c.get("passed"), "WARN": c.get("warned"), "FAIL": c.get("failed")}
    summary = {k: int(counts.get(k) or 0) for k in ("PASS", "WARN", "FAIL")}
    verdict = c.get("verdict") or ("NO-GO" if summary["FAIL"] else "GO")
    return {**c, "summary": summary, "verdict": verdict, "checks": list(c.get("checks") or [])}


def checklist_lines(record: Mapping[str, Any]) -> tuple[str, str, str]:
    """The monitor strip's go/no-go verdict, long and short, and its level: ``go/no-go GO · 14 PASS · 3 WARN (g)``
    (a FAIL counted only when there is one: then the verdict is NO-GO), ``go/no-go GO (g)``; CRIT with a FAIL,
    WARN with a WARN."""
    counts = record["summary"]
    fail, warn = counts["FAIL"], counts["WARN"]
    verdict = inert(record["verdict"], limit=20)
    long = f"go/no-go {verdict} · {counts['PASS']} PASS · {warn} WARN" + (f" · {fail} FAIL" if fail else "") + " (g)"
    short = f"go/no-go {verdict}" + (f" {fail} FAIL" if fail else "") + " (g)"
    return long, short, "CRIT" if fail else "WARN" if warn else "OK"


def balances_line(
    balances: list[Balance],
    quote: str,
    positions: Mapping[str, Position] | None = None,
    last: Mapping[str, Decimal] | None = None,
) -> Fitted:
    """``balances USDT 9,900.00 (100.00 in orders) · BTC 0.0015 (0.0015 in orders)``: the quote first, then every
    asset held, always on one line (decision TUI-17). Where the width runs out, what is on screen elsewhere goes
    first: the other assets' amounts in orders (the orders panel lists those orders), then the word ``balances``,
    then, one by one and counted as ``+N more``, the assets whose whole amount is a position's size in the markets
    panel, then the least worth (an asset with no price here first). The quote, with its amount in orders, stays."""
    held = sorted((b for b in balances if b.total > 0 or b.asset == quote), key=lambda b: (b.asset != quote, b.asset))
    if not held:
        return Fitted([Text.assemble(("balances ", "dim"), ("—", "dim"))])
    positions = positions or {}
    last = last or {}

    def part(b: Balance, locked: bool) -> Text:
        fmt = (lambda v: num(v, 2)) if b.asset == quote else qty
        t = Text()
        t.append(f"{inert(b.asset)} ", style="bold")
        t.append(fmt(b.total))
        if b.locked and locked:
            t.append(f" ({fmt(b.locked)} in orders)", style="dim")
        return t

    def line(parts: list[Text], more: int = 0, label: bool = True) -> Text:
        out = Text("balances ", style="dim") if label else Text()
        for i, p in enumerate(parts):
            out.append(" · " if i else "")
            out.append_text(p)
        if more:
            out.append(f"{' · ' if parts else ''}+{more} more", style="dim")
        return out

    def shown_elsewhere(b: Balance) -> bool:
        p = positions.get(f"{b.asset}/{quote}")
        return p is not None and p.amount == b.total

    def worth(b: Balance) -> Decimal:
        price = last.get(f"{b.asset}/{quote}")
        return b.total * price if price is not None else Decimal(-1)

    others = held[1:] if held[0].asset == quote else held
    quote_part = [part(b, True) for b in held[: len(held) - len(others)]]
    brief = {b.asset: part(b, False) for b in others}  # each asset's part once: the forms below only copy them
    forms = [line(quote_part + [part(b, True) for b in others])]
    if any(b.locked for b in others):
        forms.append(line(quote_part + list(brief.values())))
    forms.append(line(quote_part + list(brief.values()), label=False))
    dropped: set[str] = set()
    for b in sorted(others, key=lambda b: (not shown_elsewhere(b), worth(b), b.asset)):
        dropped.add(b.asset)
        kept = [p for asset, p in brief.items() if asset not in dropped]
        forms.append(line(quote_part + kept, more=len(dropped), label=False))
    return Fitted(forms)
