"""Daily statistics reset at UTC midnight (injected clock)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from engine.trading.stats import DailyStats, DayStats


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def test_counters_and_midnight_reset():
    clock = Clock(datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC))
    finished = []
    stats = DailyStats(clock=clock, on_rollover=finished.append)
    stats.equity(D("10000"))
    stats.fill(D("0.1"))
    stats.round_trip(D("5"))
    stats.round_trip(D("-2"))
    stats.realized(D("3"))
    stats.order_done(True)
    stats.order_done(False)
    stats.rest_error()
    stats.ws_reconnect()
    s = stats.current()
    assert (s.trades_count, s.winning_trades, s.losing_trades) == (1, 1, 1)
    assert s.net_pnl == D("3") and s.fees == D("0.1") and s.fill_rate == D("50")
    assert s.daily_loss_pct(D("9700")) == D("3") and s.daily_loss_pct(D("10100")) == 0

    clock.t += timedelta(seconds=1)  # 00:00:00 UTC
    s2 = stats.current()
    assert s2.trades_count == 0 and s2.day.isoformat() == "2026-01-02" and s2.start_equity is None
    assert finished and finished[0].trades_count == 1


def test_round_trip_through_dict():
    s = DayStats(datetime(2026, 1, 1).date(), trades_count=2, net_pnl=D("1.5"), start_equity=D("10"))
    assert DayStats.from_dict(s.to_dict()) == s
