"""Pre-trade checks give a reason for every refusal."""

from decimal import Decimal as D

from engine.kernel.config import RiskConfig
from engine.trading.risk import Exposure, OrderRateLimit, filter_refusal, limit_refusal, pre_trade_refusal

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
