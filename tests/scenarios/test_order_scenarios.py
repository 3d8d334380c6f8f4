"""Runbook scenarios of orders that will not go away: a stuck order whose cancel fails, and a kill switch that cannot
complete because the venue refuses its cancels; and of one that will not come: a stop the venue refuses."""

from __future__ import annotations

import time
from decimal import Decimal

from eventually import eventually
from runbook import BTC_DUST, afterwards, audited, codes, first_alert, held, resting_buy, settings

from engine.kernel.commands import CancelAll, PlaceOrder
from engine.kernel.events import TradingState


async def test_a_stuck_order_whose_cancel_fails_is_crit_and_cancelled_once_the_venue_lets_it(
    sim, tmp_path, run, stopwatch
):
    """Runbook 001 §4 "Stuck Orders (Unfilled > 5 min)": cancel it; 000 §3 "CRITICAL: Stuck Orders (not filled or
    cancelled)": "Order placed 30+ min ago ... Cancellation failed", "If no resolution: Pause trading". A marketable
    buy is accepted but never fills (stuck at the venue) and its cancels fail: the monitor cancels it after
    stuck_order_s, says CRIT when the cancel fails, keeps trying at every reading, and the order is gone as soon as
    the venue accepts a cancel. An alert for the operator, not a halt: the order is the problem, not the market."""
    engine = await run(settings(sim, tmp_path, monitors=dict(stuck_order_s=0.5, rest_errors_max=50)))
    watch = stopwatch("001 §4, 000 §3 Stuck Orders", "stuck after 0.5 s (runbook 300 s)")
    stuck = sim.faults.inject("stuck-orders", symbol="BTCUSDT")
    failing = sim.faults.inject("cancel-fail", symbol="BTCUSDT")
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(
        PlaceOrder(
            actor="operator:key",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("1.01"),
            stop_loss=last * Decimal("0.5"),
        )
    )
    assert placed.ok and placed.details["status"] == "OPEN", placed.message  # marketable, yet it rests
    watch.fault("a marketable order that never fills, cancels failing")
    await eventually(lambda: "STUCK_ORDER_CANCEL_FAILED" in codes(engine), timeout=10, message="cancel failed")
    watch.mark("STUCK_ORDER_CANCEL_FAILED CRIT", first_alert(tmp_path, "STUCK_ORDER_CANCEL_FAILED"))
    assert first_alert(tmp_path, "STUCK_ORDER_CANCEL_FAILED")["severity"] == "CRIT"
    await eventually(lambda: engine.monitors.rows["stuck_order"].status.value == "CRIT", timeout=5)
    tries = sim.faults.get(failing).hits
    await eventually(lambda: sim.faults.get(failing).hits > tries, timeout=10, message="the cancel is tried again")
    assert len(sim.open_orders()) == 1
    sim.faults.clear(failing)
    cleared = time.monotonic()
    await eventually(lambda: sim.open_orders() == [], timeout=10, message="cancelled once the venue lets it")
    watch.mark(f"cancelled {time.monotonic() - cleared:.2f} s after the venue accepted cancels again")
    sim.faults.clear(stuck)
    # The audit record is written when the command ends, a moment after the venue shows its effect.
    rows = await eventually(
        lambda: (found := audited(tmp_path, "cancel", "monitor:stuck_order")) and found[-1]["ok"] and found,
        timeout=5,
        message="the successful cancel audited",
    )
    assert not rows[0]["ok"] and rows[-1]["ok"], rows
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["ORDER_STUCK", "STUCK_ORDER_CANCEL_FAILED"],
        absent=["TRADING_HALTED"],
        open_orders=0,
        kill_switch_by="",
    )
    assert engine.tracker.get(placed.details["client_id"]).status.value == "CANCELED"


async def test_a_kill_switch_that_cannot_complete_reports_what_is_left_and_keeps_trying(sim, tmp_path, run, stopwatch):
    """Runbook 001 §8 "Kill-switch Stuck": "Verify all positions actually closed", "If positions exist: close
    manually"; 000 §3 "Kill-Switch Activated": "Cancel pending orders". The venue refuses every cancel on BTCUSDT:
    cancel-all halts, cancels what it can (ETH), answers at once with what is left and why (a CRIT
    KILL_SWITCH_INCOMPLETE), and keeps trying (1, 2, 4, 8 s) until the venue lets it finish: KILL_SWITCH_DONE."""
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))  # the cancels' errors alone
    btc = await resting_buy(engine, "BTC/USDT")
    await resting_buy(engine, "ETH/USDT", amount="0.01")
    watch = stopwatch("001 §8 Kill-switch Stuck, 000 §3", "retries 1, 2, 4, 8 s")
    failing = sim.faults.inject("cancel-fail", symbol="BTCUSDT")
    watch.fault("every BTCUSDT cancel refused; operator presses c (cancel-all)")
    result = await engine.execute(CancelAll(actor="operator:key", reason="drill: venue refuses cancels"))
    watch.mark("cancel-all answered: 1 canceled, 1 left, reported")
    assert not result.ok
    assert result.message.startswith("HALTED; canceled 1 order(s); 1 still open at venue; failed: BTC/USDT"), (
        result.message
    )
    assert [o["clientOrderId"] for o in sim.open_orders()] == [btc]
    engine.report_answered()  # the alert follows the answer (decision BEN-07): here, at once
    incomplete = first_alert(tmp_path, "KILL_SWITCH_INCOMPLETE")
    assert incomplete["severity"] == "CRIT" and "retrying" in incomplete["message"]
    assert engine.kill_switch_retrying() == ["cancel-all"]
    assert engine.health_report()["kill_switch"]["retrying"] == ["cancel-all"]
    tries = sim.faults.get(failing).hits
    await eventually(lambda: sim.faults.get(failing).hits > tries, timeout=10, message="it keeps trying")
    watch.mark("tried again (1 s later), still failing")
    sim.faults.clear(failing)
    await eventually(lambda: "KILL_SWITCH_DONE" in codes(engine), timeout=15, message="done on a retry")
    watch.mark("KILL_SWITCH_DONE after the venue let cancels through", first_alert(tmp_path, "KILL_SWITCH_DONE"))
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["KILL_SWITCH_INCOMPLETE", "KILL_SWITCH_DONE"],
        open_orders=0,
        kill_switch_by="operator:key",
    )
    (row,) = audited(tmp_path, "cancel-all", "operator:key")
    assert not row["ok"] and "1 still open at venue" in row["result"]  # the audit keeps what it said at the time
    assert engine.kill_switch_retrying() == []


async def test_a_stop_the_venue_refuses_is_crit_and_the_engine_keeps_it(sim, tmp_path, run, stopwatch):
    """Runbook 003 "Emergency Procedures" counts on stop-loss orders on-exchange; when the venue refuses one (an order
    type it lacks, a key without the permission), the position is protected only while the engine runs: CRIT
    ``STOP_NOT_AT_VENUE`` at once, the venue tried again, and the engine's own check sells at market at the stop."""
    sim.pause_feed()
    engine = await run(settings(sim, tmp_path))
    stop = (engine.portfolio.last["BTC/USDT"] * Decimal("0.98")).quantize(Decimal("0.01"))
    watch = stopwatch("003 Emergency Procedures (stop on-exchange)", "CRIT at the first refusal; retried every 2 s")
    sim.faults.inject("order-reject", type="STOP_LOSS_LIMIT", msg="Stop orders are not available.")
    watch.fault("the venue refuses stop-limit orders")
    bought = await engine.execute(
        PlaceOrder(symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.01"), stop_loss=stop)
    )
    assert bought.ok, bought.message
    await eventually(lambda: "STOP_NOT_AT_VENUE" in codes(engine), timeout=5, message="CRIT STOP_NOT_AT_VENUE")
    watch.mark("STOP_NOT_AT_VENUE CRIT", first_alert(tmp_path, "STOP_NOT_AT_VENUE"))
    assert not engine.venue_stops.at_venue("BTC/USDT") and sim.open_orders() == []
    sim.set_price("BTCUSDT", stop * Decimal("0.999"))  # the engine's own check is the second line
    await eventually(lambda: held(sim, "BTC") < BTC_DUST, timeout=10, message="the engine sold at its stop")
    watch.mark("STOP_LOSS: the engine exited at market", first_alert(tmp_path, "STOP_LOSS"))
    await eventually(lambda: audited(tmp_path, "exit", "stop:BTC/USDT"), message="the exit's audit record")
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["STOP_NOT_AT_VENUE", "STOP_LOSS"],
        absent=["TRADING_HALTED", "POSITION_MISMATCH"],
        open_orders=0,
        btc_flat=True,
        audit=[("exit", "stop:BTC/USDT")],
        kill_switch_by="",
    )
    assert [r for r in audited(tmp_path, "protect", "engine:stops") if not r["ok"]]  # each refused try on record
