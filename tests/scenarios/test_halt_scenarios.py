"""Runbook scenarios of the halt itself: it survives a restart, and resume is refused while its trigger holds (from
the keys and from another shell alike)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from eventually import eventually
from runbook import afterwards, audited, buy, resting_buy, settings, tripped

from engine.kernel.commands import PlaceOrder, Resume
from engine.kernel.events import TradingState


async def cockpit(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """``cockpit ARGS --data-dir DIR`` from another shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cockpit.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


async def test_a_halt_survives_a_restart_and_nothing_is_sent_until_an_operator_resumes(sim, tmp_path, run, stopwatch):
    """DESIGN "HALTED is latched and persisted: a restart comes back HALTED, and only an operator's resume clears it";
    runbook 003 "Bot Crash / Restart" ("Open positions on the exchange are not affected by bot restarts") and
    "Emergency Stop" ("/resume - Resume trading after emergency stop"). A flash crash halts the engine; it is
    stopped and started again on the same store: HALTED by the same monitor with its values, the flash-crash latch
    still blocking resume, the order and the position untouched at the venue, nothing sent; `cockpit status` and
    the audit trail say so."""
    s = settings(sim, tmp_path, monitors=dict(flash_calm_s=3.0))
    engine = await run(s)
    await buy(engine, amount="0.004")
    order = await resting_buy(engine, below="0.5")
    watch = stopwatch("DESIGN latched HALTED, 003 Bot Crash / Restart", "8 % in 5 s")
    sim.faults.inject("flash-crash", percent=15, seconds=0.5, recover=0)
    watch.fault("price -15 % in 0.5 s, then a restart")
    watch.mark("HALTED by flash_crash", await tripped(engine, "flash_crash"))
    await engine.stop()

    again = await run(s)
    watch.mark("restarted: HALTED by flash_crash")
    assert again.trading_state == TradingState.HALTED
    assert again.state_info["actor"] == "monitor:flash_crash" and again.state_info["code"] == "flash_crash"
    assert again.state_info["values"]["symbol"] == "BTC/USDT"
    assert again.monitors.flash_tripped  # the resume criteria still apply after the restart
    await eventually(lambda: again.monitors.ticks >= again.settings.monitors.confirm_readings, message="read")
    refused = await again.execute(Resume(actor="operator:key"))
    assert not refused.ok and "flash_crash" in refused.message
    blocked = await again.execute(
        PlaceOrder(
            actor="strategy:ladder",
            symbol="BTC/USDT",
            side="buy",
            type="market",
            amount=Decimal("0.001"),
            stop_loss=Decimal("1"),
        )
    )
    assert not blocked.ok and "HALTED" in blocked.message
    # The restart sent and cancelled nothing (but the position's protective stop, which was there before it).
    assert [o["clientOrderId"] for o in sim.open_orders() if not o["clientOrderId"].startswith("cs-")] == [order]
    status = await cockpit(tmp_path, "status", "--json")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["trading_state"] == "HALTED" and state["tripped_by"]["code"] == "flash_crash"
    assert audited(tmp_path, "halt", "monitor:flash_crash")[-1]["ok"]
    assert not audited(tmp_path, "resume", "operator:key")[-1]["ok"]  # the refusal is in the audit trail too
    afterwards(
        again,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["TRADING_HALTED"],
        open_orders=1,
        btc_at_least=Decimal("0.0039"),
        audit=[("halt", "monitor:flash_crash")],
        kill_switch_by="monitor:flash_crash",
    )  # once calm, an operator resumes (the flash-crash scenario)


async def test_resume_is_refused_from_every_front_end_while_the_trigger_holds(sim, tmp_path, run, stopwatch):
    """Runbook 000 §3 "WebSocket Stale": "Do NOT resume until ..."; "Kill-Switch Activated" recovery: "if reason ==
    excessive_rest_errors: Verify API connectivity restored"; 001 §2 "Wait 30s, then resume". The ping fails with
    503 twice in the window: HALTED by rest_errors. Resume from a key and from another shell (`cockpit resume`) is
    refused with the reason while errors remain in the window, both refusals audited; once the venue answers and
    the window is clean, resume is accepted."""
    engine = await run(settings(sim, tmp_path))
    await buy(engine)
    await resting_buy(engine, below="0.5")
    watch = stopwatch("000 §3 Do NOT resume until, 001 §2", "2 errors in 3 s (runbook 2 in 60 s)")
    fault = sim.faults.inject("http-status", status=503, path="/api/v3/time")
    watch.fault("the ping answers 503")
    watch.mark("HALTED by rest_errors", await tripped(engine, "rest_errors"))
    by_key = await engine.execute(Resume(actor="operator:key"))
    assert not by_key.ok and "rest_errors" in by_key.message
    by_cli = await cockpit(tmp_path, "resume", "--reason", "trying too early")
    assert by_cli.returncode == 1 and "refused while the condition that tripped it still holds" in by_cli.stderr
    assert "rest_errors" in by_cli.stderr
    assert engine.trading_state == TradingState.HALTED
    sim.faults.clear(fault)
    await eventually(
        lambda: engine.monitors.rows["rest_errors"].status.value == "OK",
        timeout=10,
        message="the error window is clean",
    )
    watch.mark("trigger gone: resume allowed")
    assert (await engine.execute(Resume(actor="operator:key", reason="venue answers again"))).ok
    refusals = [r for r in audited(tmp_path, "resume") if not r["ok"]]
    assert {r["actor"].split(" ")[0] for r in refusals} == {"operator:key", "operator:cli"}
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["TRADING_HALTED"],
        open_orders=1,
        btc_at_least=Decimal("0.0099"),
        audit=[("halt", "monitor:rest_errors"), ("resume", audited(tmp_path, "resume")[-1]["actor"])],
        kill_switch_by="monitor:rest_errors",
    )
