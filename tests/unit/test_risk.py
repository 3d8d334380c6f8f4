"""Pre-trade checks give a reason for every refusal."""

from decimal import Decimal as D

from engine.events import TradingState as T
from engine.risk import filter_refusal, pre_trade_refusal

SYMS = ("BTC/USDT",)


def test_halted_refuses_everything():
    assert "HALTED" in pre_trade_refusal(T.HALTED, True, SYMS, "BTC/USDT", "sell", D("1"))


def test_reduce_only_refuses_buys_only():
    assert "REDUCE_ONLY" in pre_trade_refusal(T.REDUCE_ONLY, True, SYMS, "BTC/USDT", "buy", D("1"))
    assert pre_trade_refusal(T.REDUCE_ONLY, True, SYMS, "BTC/USDT", "sell", D("1")) is None


def test_request_sanity():
    assert "not connected" in pre_trade_refusal(T.ACTIVE, False, SYMS, "BTC/USDT", "buy", D("1"))
    assert "not a configured symbol" in pre_trade_refusal(T.ACTIVE, True, SYMS, "DOGE/USDT", "buy", D("1"))
    assert "side" in pre_trade_refusal(T.ACTIVE, True, SYMS, "BTC/USDT", "hold", D("1"))
    assert "positive" in pre_trade_refusal(T.ACTIVE, True, SYMS, "BTC/USDT", "buy", D("0"))
    assert pre_trade_refusal(T.ACTIVE, True, SYMS, "BTC/USDT", "buy", D("1")) is None


def test_venue_filters():
    assert "minimum 0.00001" in filter_refusal(D("0.00001"), D("5"), "BTC/USDT", D("0"), D("60000"))
    assert "notional" in filter_refusal(D("0.00001"), D("5"), "BTC/USDT", D("0.00005"), D("60000"))
    assert filter_refusal(D("0.00001"), D("5"), "BTC/USDT", D("0.0001"), D("60000")) is None
