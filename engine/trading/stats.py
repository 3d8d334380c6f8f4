"""Daily statistics as the runbooks read them, reset at UTC midnight (runbook 000 §1 "Verify Daily Reset").

``trades_count`` counts fills; ``winning_trades`` / ``losing_trades`` count closed round trips by their
realised PnL after fees; ``fill_rate`` is the share of orders that ended (filled, canceled, expired) with
something filled. The clock is injected so the midnight reset is testable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from engine.kernel.events import utcnow

ZERO = Decimal(0)


@dataclass
class DayStats:
    """One UTC day's counters."""

    day: date
    trades_count: int = 0
    winning_trades: int = 0
    losing_trades: int = 0
    net_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO  # perps: funding received (+) / paid (-), read that day (in net_pnl through its trip)
    orders_done: int = 0
    orders_filled: int = 0
    rest_errors: int = 0
    ws_reconnects: int = 0
    start_equity: Decimal | None = None

    @property
    def fill_rate(self) -> Decimal | None:
        """Filled share of the orders that ended today, in percent; None before any ended."""
        if self.orders_done == 0:
            return None
        return Decimal(self.orders_filled) / Decimal(self.orders_done) * 100

    def daily_loss_pct(self, equity: Decimal | None) -> Decimal:
        """How far equity is under the day's starting equity, in percent (0 when up)."""
        if equity is None or not self.start_equity or self.start_equity <= 0:
            return ZERO
        return max(ZERO, (self.start_equity - equity) / self.start_equity * 100)

    def to_dict(self) -> dict[str, Any]:
        # Its fields are plain values, read as they are: ``asdict`` deep-copies each, and the equity sample asks for
        # this at every step of a backtest.
        out: dict[str, Any] = {}
        for name in _DAY_FIELDS:
            value = getattr(self, name)
            out[name] = str(value) if isinstance(value, Decimal) else value
        out["day"] = self.day.isoformat()
        rate = self.fill_rate
        out["fill_rate"] = None if rate is None else str(rate)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DayStats:
        d = dict(data)
        d.pop("fill_rate", None)
        d["day"] = date.fromisoformat(d["day"])
        for key in ("net_pnl", "fees", "funding"):
            d[key] = Decimal(d.get(key, 0))
        if d.get("start_equity") is not None:
            d["start_equity"] = Decimal(d["start_equity"])
        return cls(**d)


_DAY_FIELDS = tuple(f.name for f in fields(DayStats))


@dataclass
class DailyStats:
    """Today's counters; the first event after UTC midnight starts a fresh day."""

    clock: Callable[[], datetime] = utcnow
    today: DayStats | None = None
    on_rollover: Callable[[DayStats], None] | None = None
    history: list[DayStats] = field(default_factory=list)

    def current(self) -> DayStats:
        day = self.clock().date()
        if self.today is None:
            self.today = DayStats(day)
        elif self.today.day != day:
            finished = self.today
            self.history.append(finished)
            del self.history[:-31]
            self.today = DayStats(day)
            if self.on_rollover:
                self.on_rollover(finished)
        return self.today

    def fill(self, fee_quote: Decimal) -> None:
        s = self.current()
        s.trades_count += 1
        s.fees += fee_quote

    def round_trip(self, pnl: Decimal) -> None:
        s = self.current()
        if pnl > 0:
            s.winning_trades += 1
        elif pnl < 0:
            s.losing_trades += 1

    def realized(self, pnl: Decimal) -> None:
        self.current().net_pnl += pnl

    def funding(self, amount: Decimal) -> None:
        self.current().funding += amount

    def order_done(self, filled: bool) -> None:
        s = self.current()
        s.orders_done += 1
        s.orders_filled += int(filled)

    def rest_error(self) -> None:
        self.current().rest_errors += 1

    def ws_reconnect(self) -> None:
        self.current().ws_reconnects += 1

    def equity(self, value: Decimal) -> None:
        s = self.current()
        if s.start_equity is None:
            s.start_equity = value
