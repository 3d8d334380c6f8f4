"""What the engine holds from its own fills against the venue: a difference must be seen twice, a large one is
kept (reconciliation after reconciliation) until the operator adopts it, a small one is adopted once."""

from decimal import Decimal

from engine.bus import EventBus
from engine.events import Balance
from engine.orders import OrderTracker
from engine.portfolio import Portfolio
from engine.reconcile import Holdings


def test_a_confirmed_mismatch_stays_kept_until_adopted_and_small_ones_are_adopted_once():
    portfolio = Portfolio(("BTC/USDT",), "USDT")
    portfolio.set_balances((Balance("USDT", Decimal("10000"), Decimal(0)), Balance("BTC", Decimal(0), Decimal(0))))
    portfolio.set_price("BTC/USDT", Decimal("60000"))
    alerts: list = []
    holdings = Holdings(portfolio, OrderTracker(EventBus()), Decimal("0.1"), Decimal("1"), lambda e: None,
                        lambda *a, **k: alerts.append(a[1]))
    holdings.check()  # the baseline: nothing held
    portfolio.set_balances((Balance("BTC", Decimal("0.01"), Decimal(0)),))  # a foreign 600 USDT: ~6 %
    holdings.check()
    assert holdings.mismatch == []  # one reading
    for _ in range(3):
        holdings.check()
        assert [d.asset for d in holdings.mismatch] == ["BTC"]  # kept, pass after pass
    holdings.adopt_all()
    assert holdings.mismatch == [] and holdings.differences() == []
    portfolio.set_balances((Balance("BTC", Decimal("0.0102"), Decimal(0)),))  # 12 USDT more: ~0.12 %
    holdings.check()
    holdings.check()
    assert alerts.count("POSITION_ADOPTED") == 1 and holdings.differences() == []
    holdings.check()
    assert alerts.count("POSITION_ADOPTED") == 1
