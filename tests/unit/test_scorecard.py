"""The validation report's arithmetic: drawdown, hourly Sharpe, the criteria with how far each failed one missed,
and what is left out when two reports are compared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.gate.scorecard import Recorder, build_report, comparable, criteria, hourly_returns, max_drawdown_pct, sharpe
from engine.kernel.config import ValidationConfig
from engine.kernel.events import (
    Alert,
    AlertRaised,
    EquitySampled,
    Fill,
    FillReceived,
    Order,
    OrderCreated,
    OrderStatus,
    OrderUpdated,
    RoundTripClosed,
    Severity,
)
from engine.trading.stats import DayStats

T0 = datetime(2025, 1, 6, tzinfo=UTC)


def curve(*values: str, step_min: int = 30) -> list[tuple[datetime, Decimal]]:
    return [(T0 + timedelta(minutes=step_min * i), Decimal(v)) for i, v in enumerate(values)]


def test_max_drawdown_is_the_largest_fall_from_a_running_peak():
    assert max_drawdown_pct(curve("100", "120", "90", "130", "117")) == Decimal(25)
    assert max_drawdown_pct(curve("100", "101", "102")) == 0
    assert max_drawdown_pct([]) == 0


def test_sharpe_uses_hourly_returns_annualised_and_needs_two_that_differ():
    # Samples every 30 min; the hourly marks are the samples at or before each whole hour since the first.
    points = curve("100", "999", "101", "999", "100", "999", "102")
    assert hourly_returns(points) == [Decimal("0.01"), (Decimal(100) - 101) / 101, Decimal("0.02")]
    ratio = sharpe(points)
    assert ratio is not None and ratio > 0
    assert sharpe(curve("100", "100", "100", "100", "100")) is None  # flat: no risk to reward
    assert sharpe(curve("100", "101")) is None  # not two hourly returns yet


def test_criteria_say_which_failed_and_by_how_much():
    cfg = ValidationConfig()
    table, failed = criteria(
        cfg,
        trades=7,
        win_rate=Decimal("38.5"),
        sharpe_ratio=Decimal("0.8"),
        drawdown=Decimal("17.25"),
        hours_run=Decimal(48),
        hours_asked=Decimal(48),
    )
    assert table["trades"] == {"value": 7, "threshold": 10.0, "rule": ">=", "pass": False}
    assert table["sharpe"]["pass"] and table["duration_h"]["pass"]
    assert failed == [
        "trades 7 < 10 (short by 3)",
        "win rate 38.50% < 45% (short by 6.50%)",
        "max drawdown 17.25% > 15% (over by 2.25%)",
    ]
    _, none = criteria(cfg, 12, None, None, Decimal(1), Decimal(48), Decimal(48))
    assert any(line.startswith("win rate: no value") for line in none)


def fill(trade_id: str, client_id: str, side: str, price: str, amount: str) -> Fill:
    return Fill(trade_id, client_id, "BTC/USDT", side, Decimal(price), Decimal(amount), Decimal("0.1"), "USDT", T0)


def test_the_recorder_and_the_report():
    prices = {"BTC/USDT": Decimal("100")}
    rec = Recorder(last_price=prices.get)
    market = Order("m1", "BTC/USDT", "buy", "market", Decimal(1), None, OrderStatus.NEW)
    rec.on_event(OrderCreated(market))
    rec.on_event(FillReceived(fill("1", "m1", "buy", "100.10", "1")))  # 10 bp over the last price
    rec.on_event(
        OrderUpdated(
            Order("l1", "BTC/USDT", "buy", "limit", Decimal(1), Decimal(99), OrderStatus.REJECTED),
            OrderStatus.NEW,
            "rest",
        )
    )
    rec.on_event(RoundTripClosed("BTC/USDT", Decimal("2.5"), "strategy:ladder", T0))
    rec.on_event(RoundTripClosed("BTC/USDT", Decimal("-1"), "strategy:ladder", T0))
    rec.on_event(AlertRaised(Alert(Severity.WARN, "ORDER_STUCK", "x")))
    for ts, equity in curve("10000", "10010", "9990", "10020", "10030", step_min=60):
        rec.on_event(EquitySampled(equity, equity, Decimal(0), ts=ts))
    assert rec.avg_slippage_bps == Decimal(10) and rec.rejected == 1 and rec.open_orders == {"m1"}
    day = DayStats(T0.date(), trades_count=1, fees=Decimal("0.1"), orders_done=4, orders_filled=3)
    report = build_report(
        rec,
        [day],
        ValidationConfig(min_trades=2),
        hours_asked=Decimal(4),
        simulated={"hours": 4.0, "completed": True},
        source={"seed": 9, "replay": None},
        settings_summary={},
        run={"wall_s": 1.0},
        final_equity=Decimal("10030"),
    )
    assert report["trades"] == 2 and report["win_rate"] == 50.0 and report["fill_rate"] == 75.0
    assert report["pnl"]["net"] == "30.00000000" and report["fees"] == "0.10000000"
    assert report["max_drawdown_pct"] == round(20 / 10010 * 100, 4)
    assert report["errors"] == 1 and report["alerts"]["WARN"] == 1 and report["seed"] == 9
    assert report["verdict"] == ("GO" if not report["failed"] else "NO-GO")
    assert "run" not in comparable(report) and comparable(report)["trades"] == 2
