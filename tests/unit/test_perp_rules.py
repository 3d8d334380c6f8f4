"""The perps rules on their own (issue 24, runbook 002): the leverage check of an entry, a short's stop-loss, a
venue position parsed, the distance to liquidation on either side, and the perps monitors' readings."""

from __future__ import annotations

from decimal import Decimal

from engine.kernel.config import MonitorsConfig, RiskConfig
from engine.kernel.events import Balance, Position
from engine.safety.perpwatch import PerpWatch
from engine.safety.readings import CRIT, OK, WARN
from engine.trading.holdings import Holdings
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio, quote_of
from engine.trading.risk import Exposure, leverage_refusal, limit_refusal
from engine.venue.parse import parse_position

D = Decimal
PERP = "BTC/USDT:USDT"


def test_an_entry_needs_the_venue_leverage_confirmed_and_the_account_under_the_maximum():
    assert "not confirmed" in leverage_refusal(D(3), PERP, None, D(100), D(1000))
    assert "over [risk] max_leverage" in leverage_refusal(D(3), PERP, D(5), D(100), D(1000))
    assert "levered 3.10x" in leverage_refusal(D(3), PERP, D(3), D(3100), D(1000))
    assert leverage_refusal(D(3), PERP, D(3), D(2900), D(1000)) is None


def test_a_short_entrys_stop_loss_sits_over_the_entry_and_a_reduction_passes_the_limits():
    cfg = RiskConfig(max_position_pct=D(50))
    flat = Exposure(D(10000), D(0), 0, False, D(0), D(0))
    assert "must be over the entry" in limit_refusal(cfg, flat, "sell", D(1300), D(64000), D(65000), entry=True)
    assert limit_refusal(cfg, flat, "sell", D(1300), D(66000), D(65000), entry=True) is None
    assert limit_refusal(cfg, flat, "buy", D(10**9), None, D(65000), entry=False) is None  # covering a short


def test_a_venue_short_is_signed_its_leverage_derived_and_no_liquidation_price_is_none():
    p = parse_position(
        {
            "symbol": PERP,
            "contracts": 0.02,
            "side": "short",
            "notional": -1300.0,
            "initialMargin": 433.33333333,
            "entryPrice": 65000.0,
            "markPrice": 65010.0,
            "liquidationPrice": 0,
            "unrealizedPnl": -0.2,
            "marginMode": "isolated",
        }
    )
    assert (p.amount, p.side, p.leverage, p.liquidation_price) == (D("-0.02"), "short", D("3.00"), None)
    assert p.notional == D("1300.20") and quote_of(PERP) == "USDT"


def test_the_distance_to_liquidation_is_the_room_against_the_position_negative_past_it():
    short = Position(PERP, D("-1"), D(100), D(110), side="short", liquidation_price=D(132))
    long = Position(PERP, D("1"), D(100), D(90), side="long", liquidation_price=D(72))
    assert short.liquidation_distance_pct == D(20) and long.liquidation_distance_pct == D(20)
    assert Position(PERP, D("-1"), D(100), D(140), liquidation_price=D(132)).liquidation_distance_pct < 0


def watch(**monitors) -> tuple[PerpWatch, Portfolio]:
    portfolio = Portfolio((PERP,), "USDT", market="usdm")
    portfolio.set_balances((Balance("USDT", D(10000), D(0)),))
    holdings = Holdings(portfolio, OrderTracker(lambda e: None), D("0.1"), D(1), lambda e: None, lambda *a, **k: None)
    cfg = MonitorsConfig(**monitors)
    return PerpWatch(RiskConfig(), cfg, portfolio, holdings, {PERP: D(3)}, lambda c: None), portfolio


def hold(portfolio: Portfolio, amount: str, mark: str, liquidation: str) -> None:
    raw = {"symbol": PERP, "contracts": abs(float(amount)), "side": "short" if amount.startswith("-") else "long"}
    raw |= {"entryPrice": 100.0, "markPrice": float(mark), "liquidationPrice": float(liquidation), "leverage": 3}
    portfolio.set_perps([parse_position(raw)])


def test_liquidation_distance_warns_then_crits_and_names_the_position():
    w, portfolio = watch(liq_warn_pct=D(25), liq_crit_pct=D(20))
    hold(portfolio, "-1", "100", "133")
    assert w.read_liquidation().level == OK
    hold(portfolio, "-1", "108", "133")
    assert w.read_liquidation().level == WARN
    hold(portfolio, "-1", "115", "133")
    reading = w.read_liquidation()
    assert reading.level == CRIT and reading.values["under_crit"] == [PERP] and reading.values["side"] == "short"


def test_funding_warns_on_the_side_that_pays_and_the_mark_is_judged_against_the_index():
    w, portfolio = watch(funding_warn_pct=D("0.1"))
    hold(portfolio, "10", "100", "70")  # a long of 1,000 notional on 10,000 of equity
    portfolio.funding_rates[PERP] = (D("0.002"), None)  # longs pay 2 USDT: 0.02 %
    assert w.read_funding().level == OK
    portfolio.funding_rates[PERP] = (D("0.02"), None)  # 20 USDT: 0.2 %
    assert w.read_funding().level == WARN
    portfolio.funding_rates[PERP] = (D("-0.02"), None)  # the long is paid
    assert w.read_funding().level == OK
    portfolio.marks[PERP] = (D(102), D(100))
    assert w.read_mark_divergence().level == WARN
    portfolio.marks[PERP] = (D(96), D(100))
    assert w.read_mark_divergence().level == CRIT
