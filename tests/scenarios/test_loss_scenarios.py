"""Runbook scenarios of losses and wild prices: the daily loss limit, the drawdown hard limit, and a flash crash with
its resume criteria."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from eventually import eventually
from runbook import afterwards, audited, buy, codes, first_alert, resting_buy, settings, tripped

from engine.kernel.commands import PlaceOrder, Resume
from engine.kernel.events import TradingState


async def test_daily_loss_limit_closes_all_blocks_until_utc_midnight_and_allows_trading_after(
    sim, tmp_path, run, stopwatch
):
    """Runbook 001 §5 "Daily Drawdown Limit Hit": "CRIT | KILL_SWITCH activated", "Positions: 0"; 000 §3 "Daily DD
    Exceeded": "No new orders allowed", "Hold cash until reset (next UTC midnight)", "System automatically resets at
    UTC midnight"; 003 "Large Drawdown": "If daily loss limit hits, trading auto-halts for the day". With the limit
    at 0.3 % the price falls 10 % (a WARN at 80 % of the limit) then 20 %: HALTED, every position sold, resume
    refused "until UTC midnight" and any new order refused; once the day has turned, the operator's resume is
    accepted and an order goes out again."""
    engine = await run(
        settings(
            sim, tmp_path, risk=dict(daily_loss_limit_pct=Decimal("0.3")), monitors=dict(flash_crash_pct=Decimal("50"))
        )
    )
    await eventually(lambda: engine.stats.current().start_equity is not None, message="day's equity recorded")
    await buy(engine, amount="0.004")
    await resting_buy(engine, below="0.5")
    last = engine.portfolio.last["BTC/USDT"]
    watch = stopwatch("001 §5, 000 §3 Daily DD Exceeded, 003 Large Drawdown", "0.3 % of the day's equity (003: 3 %)")
    sim.set_price("BTCUSDT", last * Decimal("0.9"))  # ~26 USDT of 10,000: 0.26 %, over 80 % of the limit
    await eventually(lambda: "DAILY_LOSS" in codes(engine), timeout=10, message="WARN at 80 % of the limit")
    assert engine.trading_state == TradingState.ACTIVE
    sim.set_price("BTCUSDT", last * Decimal("0.8"))  # ~52 USDT of 10,000: over 0.3 %
    watch.fault("price -20 %: the day's loss over the limit")
    watch.mark("HALTED by daily_loss", await tripped(engine, "daily_loss"))
    await eventually(lambda: audited(tmp_path, "close-all", "monitor:daily_loss"), timeout=10, message="closed")
    watch.mark("close-all done (positions: 0)", audited(tmp_path, "close-all", "monitor:daily_loss")[0])
    sim.set_price("BTCUSDT", last)
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "until UTC midnight" in refused.message
    order = PlaceOrder(
        actor="operator:key",
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=last * Decimal("0.5"),
        stop_loss=last * Decimal("0.4"),
    )
    blocked = await engine.execute(order)
    assert not blocked.ok and "HALTED" in blocked.message
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["DAILY_LOSS", "CLOSE_ALL"],
        open_orders=0,
        btc_flat=True,
        audit=[("close-all", "monitor:daily_loss")],
        kill_switch_by="monitor:daily_loss",
    )

    # UTC midnight passes (the day statistics' clock, which the daily-loss rule reads, moves on a day).
    engine.stats.clock = lambda: datetime.now(UTC) + timedelta(days=1)
    await eventually(
        lambda: engine.monitors.rows["daily_loss"].status.value == "OK", timeout=5, message="a new UTC day"
    )
    assert engine.stats.current().day != datetime.now(UTC).date()
    assert (await engine.execute(Resume(actor="operator:key", reason="a new day"))).ok
    allowed = await engine.execute(order)
    assert allowed.ok, allowed.message
    afterwards(engine, sim, tmp_path, state=TradingState.ACTIVE, open_orders=1, audit=[("resume", "operator:key")])


async def test_drawdown_hard_limit_halts_and_holds_the_positions_for_the_operator(sim, tmp_path, run, stopwatch):
    """Runbook 000 §3 "Kill-Switch Activated: max_dd_exceeded": "Stop new orders", "Cancel pending orders" is the
    operator's next key, "For max_dd_exceeded: may want to hold"; 003 "Large Drawdown": "If max drawdown hits,
    trading halts until manual intervention". With the limits at 0.2 % (WARN) and 0.4 % (hard) of the equity peak,
    the price falls 25 %: a WARN, then HALTED by max_drawdown with the position kept, no new order accepted, and only
    an operator resumes."""
    engine = await run(
        settings(
            sim,
            tmp_path,
            risk=dict(max_drawdown_warn_pct=Decimal("0.2"), max_drawdown_pct=Decimal("0.4")),
            monitors=dict(flash_crash_pct=Decimal("50")),
        )
    )
    await buy(engine, amount="0.004")
    await eventually(lambda: engine.monitors.drawdown.peak is not None, message="equity peak recorded")
    last = engine.portfolio.last["BTC/USDT"]
    watch = stopwatch(
        "000 §3 Kill-Switch Activated (max_dd_exceeded), 003 Large Drawdown",
        "0.2 % / 0.4 % from the peak (runbook 10 % / 15 %)",
    )
    sim.set_price("BTCUSDT", last * Decimal("0.9"))  # ~23 USDT of 10,000: over the WARN level
    await eventually(lambda: "MAX_DRAWDOWN" in codes(engine), timeout=10, message="WARN at 0.2 %")
    assert engine.trading_state == TradingState.ACTIVE
    sim.set_price("BTCUSDT", last * Decimal("0.75"))
    watch.fault("price -25 %: drawdown over the hard limit")
    watch.mark("HALTED by max_drawdown", await tripped(engine, "max_drawdown"))
    assert engine.monitors.drawdown_pct >= Decimal("0.4")
    assert first_alert(tmp_path, "TRADING_HALTED")["severity"] == "CRIT"
    refused = await engine.execute(
        PlaceOrder(
            actor="strategy:ladder",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.5"),
            stop_loss=last * Decimal("0.4"),
        )
    )
    assert not refused.ok and "HALTED" in refused.message
    not_operator = await engine.execute(Resume(actor="strategy:ladder"))
    assert not not_operator.ok
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["MAX_DRAWDOWN", "TRADING_HALTED"],
        open_orders=0,
        btc_at_least=Decimal("0.0039"),
        audit=[("halt", "monitor:max_drawdown")],
        kill_switch_by="monitor:max_drawdown",
    )
    assert (await engine.execute(Resume(actor="operator:key", reason="reviewed; holding"))).ok


async def test_flash_crash_halts_and_resume_waits_for_the_calm_the_runbook_asks(sim, tmp_path, run, stopwatch):
    """Runbook 001 §7 "Market Flash Crash (> 10% move in 1 min)": "Kill-switch activates (automatic)", "Pause
    trading"; Step 3 "Resume Criteria": "Price stabilized (< 1% move in 1 min)", "5 minutes have passed". The price
    drops 15 % in half a second (limit 8 % in 5 s): HALTED by flash_crash; resume is refused while any minute of the
    calm period (2 s here, 5 min in the runbook) moved 1 % or more, and accepted once calm."""
    engine = await run(settings(sim, tmp_path, monitors=dict(flash_calm_s=2.0)))
    await buy(engine, amount="0.004")
    await resting_buy(engine, below="0.5")
    watch = stopwatch(
        "001 §7 Flash Crash and Resume Criteria",
        "8 % in 5 s; calm: < 1 % for 2 s (runbook 10 % in 60 s; < 1 % for 5 min)",
    )
    sim.faults.inject("flash-crash", percent=15, seconds=0.5, recover=0)
    watch.fault("price -15 % in 0.5 s")
    watch.mark("HALTED by flash_crash", await tripped(engine, "flash_crash"))
    assert engine.state_info["values"]["symbol"] == "BTC/USDT"
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "flash_crash" in refused.message
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["TRADING_HALTED"],
        open_orders=1,
        btc_at_least=Decimal("0.0039"),
        audit=[("halt", "monitor:flash_crash")],
        kill_switch_by="monitor:flash_crash",
    )
    await eventually(
        lambda: engine.monitors.rows["flash_crash"].status.value == "OK", timeout=30, message="calm for flash_calm_s"
    )
    watch.mark("calm: resume allowed")
    assert (await engine.execute(Resume(actor="operator:key", reason="calm again"))).ok
