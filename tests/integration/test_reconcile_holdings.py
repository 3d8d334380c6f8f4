"""What the engine holds after a crash: its own holdings come from its stored fills, so a kill between a fill and
the holdings record that counted it (found by tests/crashloop.py during a close-all) leaves nothing to disagree on
with the venue at the restart: no position_mismatch halt, no resume refused."""

from __future__ import annotations

from decimal import Decimal

from eventually import eventually
from runbook import buy, codes, held, settings

from engine.kernel.commands import ExitPosition, Resume
from engine.kernel.events import TradingState
from engine.store.db import Store

LEVELS = dict(mismatch_warn_pct=Decimal("0.1"), mismatch_halt_pct=Decimal("1"))


async def test_a_crash_between_a_fill_and_the_holdings_record_leaves_no_mismatch(sim, tmp_path, run):
    """The store holds the sell's fill but the holdings record from before it (the process died between the two
    writes): at the restart the engine holds what the venue holds, and stays ACTIVE reconciliation after
    reconciliation."""
    cfg = settings(sim, tmp_path, monitors=LEVELS)
    engine = await run(cfg)
    await eventually(lambda: engine.holdings.baseline is not None, message="holdings baseline")
    await buy(engine, amount="0.003")  # ~180 USDT of 10,000: ~1.8 % of equity, over the 1 % halt level
    await eventually(
        lambda: engine.holdings.engine_amount("BTC") == held(sim, "BTC") > 0,
        message="the buy counted as the engine's own",
    )
    store = Store.in_dir(tmp_path, readonly=True)
    try:
        # The record as it was before the sell, in the form a store written before this fix kept it: with the net
        # of the engine's own fills, which the sell's fill never reached.
        before_the_sell = {**store.load_json("holdings"), "own": {k: str(v) for k, v in engine.holdings.own.items()}}
        fills_before = len(store.fills())
    finally:
        store.close()
    sold = await engine.execute(ExitPosition(symbol="BTC/USDT", actor="operator:key", reason="close all"))
    assert sold.ok, sold.message
    await eventually(lambda: engine.holdings.engine_amount("BTC") == held(sim, "BTC"), message="the sell counted")
    await engine.stop()

    # The crash window: the sell's fill is stored, the holdings record is the one from before it.
    store = Store.in_dir(tmp_path)
    try:
        assert len(store.fills()) > fills_before
        store.save_json("holdings", before_the_sell)
    finally:
        store.close()

    engine = await run(cfg)
    assert engine.holdings.engine_amount("BTC") == held(sim, "BTC"), "holdings rebuilt from the stored fills"
    for _ in range(3):  # a difference halts once seen on two reconciliations in a row
        await engine.sync.reconcile_all()
    assert engine.holdings.differences() == [] and engine.holdings.mismatch == []
    await eventually(lambda: engine.monitors.ticks > 2, message="monitors reading")
    assert engine.trading_state == TradingState.ACTIVE, engine.state_info
    assert "POSITION_ADOPTED" not in codes(engine) and "TRADING_HALTED" not in codes(engine)
    assert (await engine.execute(Resume(actor="operator:key"))).ok  # nothing blocks it
