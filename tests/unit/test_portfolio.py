"""Positions from balances and fills, equity in the quote currency, all Decimal."""

from datetime import datetime, timezone
from decimal import Decimal as D

from engine.events import Balance, Fill
from engine.portfolio import Portfolio


def fill(tid, side, price, amount, fee="0", fee_asset=None):
    return Fill(tid, "c", "BTC/USDT", side, D(price), D(amount), D(fee), fee_asset, datetime.now(timezone.utc))


def test_average_entry_fees_and_equity():
    p = Portfolio(("BTC/USDT",), "USDT")
    assert p.add_fill(fill("1", "buy", "100", "1", "0.001", "BTC"))
    assert p.add_fill(fill("2", "buy", "200", "1", "0.2", "USDT"))
    assert not p.add_fill(fill("2", "buy", "200", "1", "0.2", "USDT"))  # counted once
    p.set_balances((Balance("BTC", D("1.999"), D("0")), Balance("USDT", D("700"), D("0"))))
    p.set_price("BTC/USDT", D("150"))
    (pos,) = p.positions()
    assert pos.amount == D("1.999")
    assert pos.avg_entry == (D("100") + D("200") + D("0.2")) / D("1.999")
    assert p.equity() == D("700") + D("1.999") * D("150")


def test_selling_out_resets_entry():
    p = Portfolio(("BTC/USDT",), "USDT")
    p.add_fill(fill("1", "buy", "100", "1"))
    p.add_fill(fill("2", "sell", "120", "1"))
    p.add_fill(fill("3", "buy", "50", "1"))
    p.set_balances((Balance("BTC", D("1"), D("0")),))
    assert p.positions()[0].avg_entry == D("50")


def test_equity_unknown_without_price():
    p = Portfolio(("BTC/USDT",), "USDT")
    p.set_balances((Balance("BTC", D("1"), D("0")),))
    assert p.equity() is None
