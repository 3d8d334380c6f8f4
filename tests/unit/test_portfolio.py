"""Positions from balances and fills, realised PnL with fees, equity and drawdown, all Decimal."""

from datetime import datetime, timezone
from decimal import Decimal as D

from engine.events import Balance, Fill
from engine.portfolio import Drawdown, Portfolio


def fill(tid, side, price, amount, fee="0", fee_asset=None, symbol="BTC/USDT"):
    return Fill(tid, "c", symbol, side, D(price), D(amount), D(fee), fee_asset, datetime.now(timezone.utc))


def test_average_entry_fees_and_equity():
    p = Portfolio(("BTC/USDT",), "USDT")
    assert p.add_fill(fill("1", "buy", "100", "1", "0.001", "BTC"), "s")[0]
    assert p.add_fill(fill("2", "buy", "200", "1", "0.2", "USDT"))[0]
    assert not p.add_fill(fill("2", "buy", "200", "1", "0.2", "USDT"))[0]  # counted once
    p.set_balances((Balance("BTC", D("1.999"), D("0")), Balance("USDT", D("700"), D("0"))))
    p.set_price("BTC/USDT", D("150"))
    (pos,) = p.positions()
    assert pos.amount == D("1.999")
    assert pos.avg_entry == (D("100") + D("200") + D("0.2")) / D("1.999")
    assert p.equity() == D("700") + D("1.999") * D("150")
    assert p.fees == D("0.001") * D("100") + D("0.2")


def test_round_trip_pnl_after_fees_and_who_opened_it():
    p = Portfolio(("BTC/USDT",), "USDT")
    p.add_fill(fill("1", "buy", "100", "1", "0.1", "USDT"), "ma_cross")
    new, trip = p.add_fill(fill("2", "sell", "90", "0.5", "0.05", "USDT"))
    assert new and trip is None
    new, trip = p.add_fill(fill("3", "sell", "120", "0.5", "0.06", "USDT"))
    # cost 100.1; sold half at 90 (-0.05 fee), half at 120 (-0.06 fee)
    expected = (D("90") * D("0.5") - D("50.05") - D("0.05")) + (D("120") * D("0.5") - D("50.05") - D("0.06"))
    assert trip.pnl == expected and trip.opened_by == "ma_cross" and trip.symbol == "BTC/USDT"
    assert p.realized["BTC/USDT"] == expected
    assert p.avg_entry("BTC/USDT") is None


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


def test_drawdown_from_peak():
    dd = Drawdown()
    assert dd.update(D("100")) == 0
    assert dd.update(D("120")) == 0
    assert dd.update(D("90")) == D("25")
    assert dd.peak == D("120")


def test_dust_left_by_fees_closes_the_round_trip():
    p = Portfolio(("BTC/USDT",), "USDT", dust={"BTC/USDT": D("0.00001")})
    p.add_fill(fill("1", "buy", "100", "0.00154", "0.00000154", "BTC"), "ladder")
    new, trip = p.add_fill(fill("2", "sell", "110", "0.00153", "0.1683", "USDT"))
    assert trip is not None and trip.opened_by == "ladder"
    p.set_balances((Balance("BTC", D("0.00000846"), D("0")),))
    assert p.positions() == ()


def test_unpriced_other_assets_do_not_blind_equity():
    p = Portfolio(("BTC/USDT",), "USDT")
    p.set_balances((Balance("USDT", D("100"), D("0")), Balance("BNB", D("0.01"), D("0"))))
    assert p.equity() == D("100")


def test_venue_balance_is_the_truth_for_the_fills_book():
    p = Portfolio(("BTC/USDT",), "USDT", dust={"BTC/USDT": D("0.00001")})
    p.add_fill(fill("1", "buy", "100", "2"), "ladder")
    p.set_balances((Balance("BTC", D("1"), D("0")),))  # half sold outside the engine
    assert p.avg_entry("BTC/USDT") == D("100")
    p.set_balances((Balance("BTC", D("0"), D("0")),))  # a fresh paper venue
    assert p.avg_entry("BTC/USDT") is None
    p.add_fill(fill("2", "buy", "50", "1"), "ma_cross")
    assert p.avg_entry("BTC/USDT") == D("50")

