"""Runbook scenarios of positions that do not match: a small difference (adopted), a large one (halt, the diff kept
for the operator), and trades made outside the engine on its account."""

from __future__ import annotations

from decimal import Decimal

from eventually import eventually
from runbook import afterwards, audited, buy, codes, first_alert, held, resting_buy, settings, store, tripped

from engine.kernel.commands import CancelAll, Reconcile, Resume
from engine.kernel.events import TradingState
from engine.venue.exchange import build_exchange

LEVELS = dict(mismatch_warn_pct=Decimal("0.1"), mismatch_halt_pct=Decimal("1"))


async def test_a_small_position_mismatch_is_adopted_and_trading_goes_on(sim, tmp_path, run, stopwatch):
    """Runbook 001 §6 "Position/Balance Sync Mismatch", Step 2 "Small mismatch": "Update local tracker to match
    Binance", "Log but don't stop trading". The venue's BTC grows by 0.0005 (~0.3 % of equity, between the 0.1 %
    and 1 % levels) without an order of the engine's: the difference is seen on two reconciliations, adopted and
    logged (WARN), and the engine's holdings equal the venue's; trading stays ACTIVE."""
    engine = await run(settings(sim, tmp_path, monitors=LEVELS))
    await buy(engine)
    await eventually(lambda: engine.holdings.baseline is not None, message="holdings baseline")
    watch = stopwatch("001 §6 Step 2 small mismatch", "0.1 % - 1 % of equity: adopt")
    sim.faults.inject("foreign-fill", symbol="BTCUSDT", side="BUY", qty="0.0005")
    watch.fault("0.0005 BTC appears at the venue")
    await eventually(lambda: "POSITION_ADOPTED" in codes(engine), timeout=10, message="small difference adopted")
    watch.mark("POSITION_ADOPTED WARN", first_alert(tmp_path, "POSITION_ADOPTED"))
    await eventually(
        lambda: engine.holdings.engine_amount("BTC") == held(sim, "BTC"),
        timeout=5,
        message="the engine holds what the venue holds",
    )
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["POSITION_ADOPTED"],
        absent=["TRADING_HALTED"],
        btc_at_least=Decimal("0.0104"),
        kill_switch_by="",
    )
    # The adoption is stored in the baseline, so it survives a restart (the own fills' net is the stored fills').
    saved = store(tmp_path).load_json("holdings")
    assert Decimal(saved["baseline"]["BTC"]) + engine.holdings.own["BTC"] == held(sim, "BTC")


async def test_a_large_position_mismatch_halts_with_the_diff_kept_for_the_operator(sim, tmp_path, run, stopwatch):
    """Runbook 001 §6 Step 2 "Large mismatch (> 1% of position)": "Potential lost order or double-fill", "Stop
    trading", "Investigate thoroughly"; Step 4 "Reconcile". 0.01 BTC (~6 % of equity) appears at the venue: HALTED by
    position_mismatch with the asset, the venue's and the engine's amounts kept (in the store too, for `cockpit
    reconcile`); resume is refused while the difference stands; the operator adopts the venue's amounts, then
    resumes."""
    engine = await run(settings(sim, tmp_path, monitors=LEVELS))
    await eventually(lambda: engine.holdings.baseline is not None, message="holdings baseline")
    watch = stopwatch("001 §6 Step 2 large mismatch", "over 1 % of equity: halt")
    sim.faults.inject("foreign-fill", symbol="BTCUSDT", side="BUY", qty="0.01")
    watch.fault("0.01 BTC appears at the venue")
    watch.mark("HALTED by position_mismatch", await tripped(engine, "position_mismatch"))
    assert engine.state_info["values"]["asset"] == "BTC"
    (kept,) = engine.holdings.mismatch
    assert kept.asset == "BTC" and kept.diff >= Decimal("0.0099") and kept.venue == held(sim, "BTC")
    assert store(tmp_path).load_json("holdings")["mismatch"][0]["asset"] == "BTC"
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "position_mismatch" in refused.message
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["TRADING_HALTED"],
        btc_at_least=Decimal("0.0099"),
        audit=[("halt", "monitor:position_mismatch")],
        kill_switch_by="monitor:position_mismatch",
    )
    adopted = await engine.execute(Reconcile(actor="operator:key", adopt=True))
    assert adopted.ok and adopted.details["adopted"][0]["asset"] == "BTC"
    await eventually(lambda: engine.monitors.rows["position_mismatch"].status.value != "CRIT", timeout=5)
    assert (await engine.execute(Resume(actor="operator:key", reason="diff investigated and adopted"))).ok
    assert audited(tmp_path, "reconcile", "operator:key")[-1]["ok"]


async def test_trades_made_outside_the_engine_are_seen_adopted_and_cancelled_by_the_kill_switch(
    sim, tmp_path, run, stopwatch
):
    """Runbook 001 §6 "Potential lost order or double-fill", Step 3 "Check trade history"; 000 §3 "WebSocket Stale"
    step 4: "if not tracker.get_order(...): Syncing missing order". Someone trades on the same account with another
    client (a second real ccxt client, the same keys): a resting limit buy and a market buy of 0.01 BTC. The engine
    adopts the open order it did not place (WARN), sees the venue's BTC move without a fill of its own (HALTED with
    the diff), and the operator's cancel-all cancels the foreign order too."""
    engine = await run(settings(sim, tmp_path, monitors=LEVELS))
    await resting_buy(engine)
    await eventually(lambda: engine.holdings.baseline is not None, message="holdings baseline")
    outsider = build_exchange(
        "binance", rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=sim.api_key, api_secret=sim.api_secret
    )
    try:
        watch = stopwatch("001 §6 (lost order / double fill), 000 §3 sync missing order", "over 1 % of equity: halt")
        price = float(engine.portfolio.last["BTC/USDT"] * Decimal("0.5"))
        foreign = await outsider.create_order(
            "BTC/USDT", "limit", "buy", 0.001, price, params={"newClientOrderId": "web_outside_1"}
        )
        await outsider.create_order("BTC/USDT", "market", "buy", 0.01, params={"newClientOrderId": "web_outside_2"})
        watch.fault("a limit and a market buy from another client on the account")
    finally:
        await outsider.close()
    await eventually(lambda: engine.tracker.get("web_outside_1") is not None, timeout=10, message="order adopted")
    watch.mark("ORDER_ADOPTED WARN (foreign order tracked)", first_alert(tmp_path, "ORDER_ADOPTED"))
    assert engine.tracker.get("web_outside_1").origin == "venue"
    watch.mark("HALTED by position_mismatch", await tripped(engine, "position_mismatch"))
    assert engine.holdings.mismatch[0].asset == "BTC"
    result = await engine.execute(CancelAll(actor="operator:key", reason="someone else is trading this account"))
    assert result.ok and result.message.startswith("HALTED; canceled 2 order(s)"), result.message
    # Every order but the position's protective stop (kept by tier 2: it only reduces risk).
    assert foreign["id"] and [o for o in sim.open_orders() if not o["clientOrderId"].startswith("cs-")] == []
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["ORDER_ADOPTED", "TRADING_HALTED"],
        open_orders=0,
        btc_at_least=Decimal("0.0099"),
        audit=[("halt", "monitor:position_mismatch"), ("cancel-all", "operator:key")],
    )
