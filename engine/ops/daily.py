"""The day's summary (runbook 004 "Daily Summary"): what the sinks receive at 23:59 UTC and ``cockpit report daily``
prints, from the same figures: the day's counters, the largest drawdown seen that day, the kill-switch trips; on
perps, the day's funding and the open positions with side, leverage, liquidation price and distance, funding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from engine.store.db import Store

# The venue's precision for an asset's amount (Binance keeps balances to 8 decimals): PnL and fees are rounded to it.
VENUE_PLACES = Decimal("1e-8")
# What counts as a trip of the kill switch: its tiers, from anyone (closing one symbol is an operator's order).
TRIPS = frozenset({"halt", "cancel-all", "close-all"})


def money(value: Any) -> str:
    """An amount as the venue would show it: rounded to its precision, signed, never in exponent notation, at least
    two decimals (``-0.14207148``, ``12.50``)."""
    try:
        amount = Decimal(str(value)).quantize(VENUE_PLACES, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError):
        return str(value)
    text = format(amount, "f").rstrip("0")
    whole, _, places = text.partition(".")
    return f"{whole}.{places.ljust(2, '0')}"


def day_bounds(day: str) -> tuple[str, str]:
    """The UTC day ``day`` (YYYY-MM-DD) as the store's timestamps bound it: [start, next day's start)."""
    start = date.fromisoformat(day)
    return f"{start.isoformat()}T00:00:00+00:00", f"{(start + timedelta(days=1)).isoformat()}T00:00:00+00:00"


def largest_drawdown(equity_rows: Iterable[Mapping[str, Any]]) -> Decimal:
    """The largest drawdown (percent from the peak) among the equity samples."""
    return max((Decimal(r["drawdown_pct"]) for r in equity_rows if r.get("drawdown_pct")), default=Decimal(0))


def describe_position(record: Mapping[str, Any]) -> str:
    """A perps position for people (a ``perp_record``): side, size, leverage, liquidation price and its distance,
    funding received (+) or paid (-)."""
    amount = Decimal(str(record.get("amount") or 0))
    leverage = record.get("leverage")
    liq, distance = record.get("liquidation_price"), record.get("liquidation_distance_pct")
    funding = record.get("funding")
    return (
        f"{record.get('symbol')} {record.get('side') or 'flat'} {abs(amount).normalize():f}"
        + (f" {Decimal(str(leverage)).normalize():f}x" if leverage is not None else "")
        + (f", liquidation {liq} ({distance}% away)" if liq is not None else ", no liquidation price")
        + f", funding {money(funding) if funding is not None else 'n/a'}"
    )


def summarize(
    day: str,
    stats: Mapping[str, Any],
    max_drawdown_pct: Decimal,
    kill_switch_trips: int,
    positions: list[Mapping[str, Any]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The sentence people receive and the figures behind it. ``positions``: on perps (runbook 002), the open
    positions as ``perp_record`` keeps them; the sentence then says the day's funding and each position."""
    wins, losses = int(stats.get("winning_trades", 0)), int(stats.get("losing_trades", 0))
    rate = f"{wins / (wins + losses) * 100:.0f}%" if wins + losses else "n/a"
    values = {
        **stats,
        "net_pnl": money(stats.get("net_pnl", 0)),
        "fees": money(stats.get("fees", 0)),
        "max_drawdown_pct": str(max_drawdown_pct),
        "kill_switch_trips": kill_switch_trips,
        "win_rate": rate,
    }
    message = (
        f"{day}: PnL {values['net_pnl']}, {stats.get('trades_count')} fills, win rate {rate}, max drawdown "
        f"{max_drawdown_pct:.2f}%, fees {values['fees']}, REST errors {stats.get('rest_errors')}, "
        f"kill-switch trips {kill_switch_trips}"
    )
    if positions is not None:
        values["funding"] = money(stats.get("funding", 0))
        values["positions"] = [dict(p) for p in positions]
        held = "; ".join(describe_position(p) for p in positions) or "none"
        message += f", funding {values['funding']}; positions: {held}"
    return message, values


def kill_switch_trips(audit_rows: Iterable[Mapping[str, Any]]) -> int:
    """The kill switch's tiers carried out (halt, cancel-all, close-all), as `cockpit incidents` counts them."""
    return sum(1 for r in audit_rows if r["kill_switch"] and r["ok"] and r["command"] in TRIPS)


def from_store(store: Store, day: str) -> tuple[str, dict[str, Any]] | None:
    """The summary of ``day`` from what the store kept; None when nothing was recorded that day."""
    stats = store.load_day(day)
    if stats is None:
        return None
    since, until = day_bounds(day)
    return summarize(
        day,
        stats,
        largest_drawdown(store.equity_between(since, until)),
        kill_switch_trips(store.audit_between(since, until)),
        store.load_json("perp_positions"),  # perps: the positions as last read from the venue (None on spot)
    )
