"""Pre-trade checks give a reason for every refusal."""

from decimal import Decimal as D

from engine.kernel.config import RiskConfig
from engine.trading.risk import (
    Exposure,
    OrderRateLimit,
    filter_refusal,
    limit_refusal,
    pre_trade_refusal,
    take_profit_refusal,
)
from engine.venue.parse import parse_binance_orders

SYMS = ("BTC/USDT",)


def test_request_sanity():
    assert "not connected" in pre_trade_refusal(False, SYMS, "BTC/USDT", "buy", D("1"))
    assert "not a configured symbol" in pre_trade_refusal(True, SYMS, "DOGE/USDT", "buy", D("1"))
    assert "side" in pre_trade_refusal(True, SYMS, "BTC/USDT", "hold", D("1"))
    assert "positive" in pre_trade_refusal(True, SYMS, "BTC/USDT", "buy", D("0"))
    assert "amount 1E+309 is out of range" in pre_trade_refusal(True, SYMS, "BTC/USDT", "buy", D("1e309"))
    assert "price must be positive" in pre_trade_refusal(True, SYMS, "BTC/USDT", "buy", D("1"), D("-5"))
    assert "stop-loss must be positive" in pre_trade_refusal(True, SYMS, "BTC/USDT", "buy", D("1"), None, D("0"))
    assert "not a finite number" in pre_trade_refusal(True, SYMS, "BTC/USDT", "buy", D("NaN"))
    assert pre_trade_refusal(True, SYMS, "BTC/USDT", "buy", D("1")) is None


def test_a_take_profit_belongs_to_an_entry_above_its_price_and_its_stop():
    assert take_profit_refusal("buy", D("90"), None, D("100")) is None  # none given: nothing to say
    assert take_profit_refusal("buy", D("90"), D("110"), D("100")) is None
    assert "take-profit must be positive" in take_profit_refusal("buy", D("90"), D("-1"), D("100"))
    assert "belongs to an entry" in take_profit_refusal("sell", None, D("110"), D("100"))
    assert "needs a stop-loss" in take_profit_refusal("buy", None, D("110"), D("100"))
    assert "above the stop-loss 90" in take_profit_refusal("buy", D("90"), D("80"), None)
    assert "above the entry price 100" in take_profit_refusal("buy", D("90"), D("95"), D("100"))


def test_a_cancel_all_answer_with_an_order_list_gives_its_legs():
    """Binance answers DELETE /api/v3/openOrders with the cancelled order lists as objects of their own, their legs
    in ``orderReports`` (binance-spot-api-docs, rest-api.md "Cancel all Open Orders on a Symbol")."""
    leg = {"symbol": "BTCUSDT", "orderId": 2, "origQty": "0.1", "executedQty": "0", "status": "CANCELED"}
    raw = [
        {**leg, "origClientOrderId": "ck-1", "orderId": 1, "type": "LIMIT", "side": "BUY", "price": "60000"},
        {
            "orderListId": 7,
            "contingencyType": "OCO",
            "listClientOrderId": "co-x",
            "orders": [{"symbol": "BTCUSDT", "orderId": 2}, {"symbol": "BTCUSDT", "orderId": 3}],
            "orderReports": [
                {**leg, "origClientOrderId": "cs-x", "type": "STOP_LOSS_LIMIT", "side": "SELL", "price": "59000"},
                {**leg, "origClientOrderId": "ct-x", "orderId": 3, "type": "LIMIT_MAKER", "side": "SELL"},
            ],
        },
    ]
    reports = parse_binance_orders(raw, lambda market_id: "BTC/USDT")
    assert [(r.client_id, r.status.value, r.symbol) for r in reports] == [
        ("ck-1", "CANCELED", "BTC/USDT"),
        ("cs-x", "CANCELED", "BTC/USDT"),
        ("ct-x", "CANCELED", "BTC/USDT"),
    ]


def test_venue_filters():
    assert "minimum 0.00001" in filter_refusal(D("0.00001"), D("5"), "BTC/USDT", D("0"), D("60000"))
    assert "notional" in filter_refusal(D("0.00001"), D("5"), "BTC/USDT", D("0.00005"), D("60000"))
    assert filter_refusal(D("0.00001"), D("5"), "BTC/USDT", D("0.0001"), D("60000")) is None


CFG = RiskConfig()


def exposure(**kw):
    base = dict(
        equity=D("10000"),
        position_value=D("0"),
        open_positions=0,
        holds_symbol=False,
        drawdown_pct=D("0"),
        daily_loss_pct=D("0"),
    )
    base.update(kw)
    return Exposure(**base)


def test_position_size_limit_in_percent_of_equity():
    assert limit_refusal(CFG, exposure(), "buy", D("300"), D("90"), D("100")) is None
    msg = limit_refusal(CFG, exposure(position_value=D("200")), "buy", D("101"), D("90"), D("100"))
    assert "3.01% of equity" in msg and "max_position_pct" in msg


def test_stop_loss_required_and_under_price():
    assert "stop-loss is required" in limit_refusal(CFG, exposure(), "buy", D("10"), None, D("100"))
    assert "must be under" in limit_refusal(CFG, exposure(), "buy", D("10"), D("100"), D("100"))


def test_concurrent_positions():
    assert "3 positions are open" in limit_refusal(CFG, exposure(open_positions=3), "buy", D("10"), D("9"), D("10"))
    assert limit_refusal(CFG, exposure(open_positions=3, holds_symbol=True), "buy", D("10"), D("9"), D("10")) is None


def test_daily_loss_and_drawdown_block_entries_not_exits():
    assert "daily loss" in limit_refusal(CFG, exposure(daily_loss_pct=D("3")), "buy", D("10"), D("9"), D("10"))
    assert "hard limit" in limit_refusal(CFG, exposure(drawdown_pct=D("15")), "buy", D("10"), D("9"), D("10"))
    assert limit_refusal(CFG, exposure(daily_loss_pct=D("50")), "sell", D("10"), None, D("10")) is None


def test_order_rate_limit_slides():
    t = [0.0]
    limit = OrderRateLimit(2, clock=lambda: t[0])
    limit.sent()
    limit.sent()
    assert "2 orders in the last minute" in limit.refusal()
    t[0] = 60.0
    assert limit.refusal() is None
