"""What the engine holds from its own fills against the venue: a difference must be seen twice, a large one is
kept (reconciliation after reconciliation) until the operator adopts it, a small one is adopted once."""

from decimal import Decimal

from engine.kernel.bus import EventBus
from engine.kernel.events import Balance, Fill, FillReceived, Order, OrderCreated, OrderStatus, utcnow
from engine.store.db import Store, fill_from_row
from engine.trading.holdings import Holdings
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio


def test_a_confirmed_mismatch_stays_kept_until_adopted_and_small_ones_are_adopted_once():
    portfolio = Portfolio(("BTC/USDT",), "USDT")
    portfolio.set_balances((Balance("USDT", Decimal("10000"), Decimal(0)), Balance("BTC", Decimal(0), Decimal(0))))
    portfolio.set_price("BTC/USDT", Decimal("60000"))
    alerts: list = []
    holdings = Holdings(
        portfolio,
        OrderTracker(EventBus()),
        Decimal("0.1"),
        Decimal("1"),
        lambda e: None,
        lambda *a, **k: alerts.append(a[1]),
    )
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


def fill(trade_id: str, client_id: str | None, side: str, amount: str, fee: str = "0", fee_asset: str = "USDT"):
    return Fill(
        trade_id, client_id, "BTC/USDT", side, Decimal("60000"), Decimal(amount), Decimal(fee), fee_asset, utcnow()
    )


def test_what_the_engine_holds_is_recomputed_from_the_stored_fills_not_from_a_stored_net(tmp_path):
    """A kill between a fill's commit and the holdings record's left the record one fill behind: at start the fills'
    net is recomputed from the stored fills of the engine's own orders (a fee in the base counted, a foreign order's
    fill and an unknown one not), whatever the record says; only the baseline is taken from it."""
    store = Store.in_dir(tmp_path)
    mine = Order("ck-1", "BTC/USDT", "buy", "market", Decimal("0.003"), None, OrderStatus.NEW, origin="operator")
    exit_ = Order("ck-2", "BTC/USDT", "sell", "market", Decimal("0.002"), None, OrderStatus.NEW, origin="operator")
    foreign = Order("web_1", "BTC/USDT", "buy", "limit", Decimal("0.5"), Decimal("1"), OrderStatus.OPEN, origin="venue")
    for order in (mine, exit_, foreign):
        store.handle(OrderCreated(order))
    for f in (
        fill("1", "ck-1", "buy", "0.003", "0.000003", "BTC"),
        fill("2", "web_1", "buy", "0.5"),
        fill("3", None, "buy", "0.7"),
        fill("4", "ck-2", "sell", "0.002", "0.12"),
    ):
        store.handle(FillReceived(f))
    store.save_json("holdings", {"baseline": {"BTC": "0.25"}, "own": {"BTC": "0.002997"}})  # from before fill 4
    tracker = OrderTracker(EventBus())
    tracker.load(store.orders())
    saved: list = []
    holdings = Holdings(
        Portfolio(("BTC/USDT",), "USDT"), tracker, Decimal("0.1"), Decimal("1"), saved.append, lambda *a, **k: None
    )
    holdings.restore(store.load_json("holdings"), [fill_from_row(r) for r in store.fills()])
    store.close()
    assert holdings.own == {"BTC": Decimal("0.000997")}
    assert holdings.engine_amount("BTC") == Decimal("0.250997")
    assert [e.holdings for e in saved] == [{"baseline": {"BTC": "0.25"}, "mismatch": []}]  # stored without a net
    holdings.on_event(FillReceived(fill("5", "ck-1", "buy", "0.001")))
    assert holdings.own == {"BTC": Decimal("0.001997")}
    assert len(saved) == 1  # a fill stores nothing of the holdings: the fill itself is their record
    holdings.adopt_all()
    assert saved[-1].holdings == holdings.stored() and "own" not in saved[-1].holdings
