"""Runbook 002's perpetual-futures scenarios on the simulator's USDⓈ-M market: a high-leverage warning (with a
margin type the venue would not change), the liquidation distance's CRIT closing the position, a funding spike and a
mark price that leaves the market, a liquidation found at reconciliation, and close-all with no engine running."""

from __future__ import annotations

from decimal import Decimal

from eventually import eventually
from perpvenue import PERP, bare, perp_settings, usdm_fixture, venue_positions  # noqa: F401  (the usdm fixture)
from runbook import afterwards, audited, codes, first_alert, store, tripped

from engine.core.emergency import act_without_engine
from engine.kernel.commands import CloseAll, PlaceOrder
from engine.kernel.events import TradingState

NEAR = {"liq_warn_pct": Decimal("25"), "liq_crit_pct": Decimal("20")}  # a 3x short's room is about 33 %


async def short(engine, amount: str = "0.02") -> None:
    result = await engine.execute(PlaceOrder(symbol=PERP, side="sell", type="market", amount=Decimal(amount)))
    assert result.ok, result.message
    await eventually(lambda: engine.portfolio.held_amount(PERP) == -Decimal(amount), message="the short is known")


async def test_high_leverage_warning_and_a_margin_type_the_venue_will_not_change(usdm, tmp_path, run, stopwatch):
    """Runbook 002 "Issue: High Leverage Warning" (leverage approaching maximum) and "Key Metrics": leverage vs
    maximum. A 0.4 BTC short (2.6x the account) was opened in cross margin before the engine started: the engine
    cannot make the symbol isolated while it is held (PERP_SETUP_FAILED, CRIT: no entry there), takes the position
    as its own and warns of the leverage at 2.6x, over 80 % of [risk] max_leverage = 3."""
    ex = bare(usdm)
    try:
        await ex.load_markets()
        await ex.set_leverage(3, PERP)  # the venue's default margin type: cross
        await ex.create_order(PERP, "market", "sell", 0.4)
    finally:
        await ex.close()
    watch = stopwatch("002 High Leverage Warning", "80 % of max_leverage 3: WARN")
    watch.fault("a 2.6x short held at start")
    engine = await run(perp_settings(usdm, tmp_path))
    await eventually(lambda: "LEVERAGE" in codes(engine), timeout=10, message="leverage WARN")
    watch.mark("LEVERAGE WARN", first_alert(tmp_path, "LEVERAGE"))
    assert first_alert(tmp_path, "LEVERAGE")["severity"] == "WARN"
    assert "PERP_SETUP_FAILED" in codes(engine)
    assert PERP not in engine.execution.leverage  # not confirmed: no entry in it
    refused = await engine.execute(PlaceOrder(symbol=PERP, side="sell", type="market", amount=Decimal("0.01")))
    assert not refused.ok, refused.message
    # Reducing goes on (runbook 002: "Reduce position size immediately").
    reduced = await engine.execute(PlaceOrder(symbol=PERP, side="buy", type="market", amount=Decimal("0.1")))
    assert reduced.ok, reduced.message
    await eventually(lambda: venue_positions(usdm) == {"BTCUSDT": Decimal("-0.3")}, message="reduced at the venue")
    afterwards(engine, usdm, tmp_path, state=TradingState.ACTIVE, absent=["TRADING_HALTED"])


async def test_liquidation_distance_crit_closes_the_position(usdm, tmp_path, run, stopwatch):
    """Runbook 002 "Key Metrics": Liquidation Distance; "Golden Rules" 7: maintain adequate liquidation buffers. The
    price rises to within 15 % of a 3x short's liquidation price (CRIT under 20 %): confirmed, the position is closed
    with a reduce-only market order by ``monitor:liquidation_distance`` (liq_crit_action = "close"), flat at the
    venue; trading stays ACTIVE (the action is the position's, not a halt)."""
    engine = await run(perp_settings(usdm, tmp_path, monitors=NEAR))
    await short(engine)
    await eventually(lambda: engine.portfolio.positions(), message="position read")
    liquidation = engine.portfolio.positions()[0].liquidation_price
    watch = stopwatch("002 Liquidation Distance", "under 20 %: close")
    usdm.set_price("BTCUSDT", liquidation / Decimal("1.15"))
    watch.fault("mark 15 % under the liquidation price")
    await eventually(lambda: venue_positions(usdm) == {}, timeout=10, message="closed at the venue")
    await eventually(lambda: audited(tmp_path, "close", "monitor:liquidation_distance"), message="audited")
    [record] = audited(tmp_path, "close", "monitor:liquidation_distance")
    watch.mark("closed (monitor:liquidation_distance)", record)
    assert record["ok"] and record["args"]["symbol"] == PERP, record
    alerts = [a["severity"] for a in [first_alert(tmp_path, "LIQUIDATION_DISTANCE")]]
    assert alerts == ["WARN"]  # the CRIT reading being confirmed, then the CRIT that acts
    afterwards(
        engine,
        usdm,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["LIQUIDATION_DISTANCE", "CLOSE_POSITION"],
        audit=[("close", "monitor:liquidation_distance")],
    )


async def test_funding_spike_and_a_mark_price_away_from_the_market(usdm, tmp_path, run, stopwatch):
    """Runbook 002 "Key Metrics" (P&L, mark staleness) and "Issue: Stale Market Data" (mark prices): a long of
    0.1 BTC (~6,500 USDT) facing a funding spike to 1 % pays ~65 USDT at the next funding, 0.65 % of equity, over
    funding_warn_pct 0.1 %: FUNDING WARN; it is charged and shown as funding paid. Then the mark stands 2 % from the
    last price: MARK_DIVERGENCE WARN (over 1 %), and at 4 % CRIT: REDUCE_ONLY."""
    engine = await run(perp_settings(usdm, tmp_path, risk={"max_position_pct": Decimal("100")}))
    result = await engine.execute(PlaceOrder(symbol=PERP, side="buy", type="market", amount=Decimal("0.1")))
    assert result.ok, result.message
    watch = stopwatch("002 funding spike", "funding over 0.1 % of equity: WARN")
    usdm.faults.inject("funding-spike", rate="0.01")
    watch.fault("next funding rate 1 %")
    await eventually(lambda: "FUNDING" in codes(engine), timeout=10, message="funding WARN")
    watch.mark("FUNDING WARN", first_alert(tmp_path, "FUNDING"))
    usdm.schedule_funding(0.2)
    await eventually(
        lambda: (engine.portfolio.positions()[0].funding or 0) < Decimal("-60"), timeout=10, message="funding paid"
    )
    usdm.faults.inject("mark-divergence", percent="2")
    await eventually(lambda: "MARK_DIVERGENCE" in codes(engine), timeout=10, message="mark divergence WARN")
    usdm.faults.clear()
    usdm.faults.inject("mark-divergence", percent="-4")
    await eventually(
        lambda: engine.trading_state == TradingState.REDUCE_ONLY, timeout=10, message="REDUCE_ONLY on divergence"
    )
    afterwards(
        engine,
        usdm,
        tmp_path,
        state=TradingState.REDUCE_ONLY,
        alerts=["FUNDING", "MARK_DIVERGENCE"],
        audit=[("reduce-only", "monitor:mark_divergence")],
    )


async def test_a_liquidation_found_at_reconciliation_halts_with_an_incident(usdm, tmp_path, run, stopwatch):
    """Runbook 002 "After Large Loss" / "Document the incident": the price jumps past a 3x short's liquidation price
    at once; the venue liquidates it (an ``autoclose-`` order). Reconciliation finds the position gone with no fill of
    the engine's: CRIT LIQUIDATED, halted by ``monitor:liquidated``, an incident opened; the engine takes the
    venue's flat position (no mismatch is kept)."""
    # The loss of the jump (~4 % of equity) must not halt by daily_loss first: this is about the liquidation.
    engine = await run(perp_settings(usdm, tmp_path, risk={"daily_loss_limit_pct": Decimal("50")}))
    await short(engine)
    await eventually(lambda: engine.holdings.baseline is not None and engine.portfolio.positions(), message="read")
    liquidation = engine.portfolio.positions()[0].liquidation_price
    watch = stopwatch("002 liquidation at the venue", "found by reconciliation: halt")
    usdm.set_price("BTCUSDT", liquidation * Decimal("1.02"))
    watch.fault("price 2 % past the liquidation price")
    await eventually(lambda: venue_positions(usdm) == {}, timeout=5, message="liquidated at the venue")
    at = await tripped(engine, "liquidated")
    watch.mark("LIQUIDATED: halted", at)
    assert first_alert(tmp_path, "LIQUIDATED")["severity"] == "CRIT"
    await eventually(lambda: engine.incidents.current is not None, message="incident opened")
    assert engine.holdings.mismatch == [] and engine.portfolio.positions() == ()
    afterwards(engine, usdm, tmp_path, state=TradingState.HALTED, alerts=["LIQUIDATED", "TRADING_HALTED"])


async def test_emergency_close_all_with_no_engine_flattens_a_short_and_a_long(usdm, tmp_path):
    """Runbook 002 "2. CLOSE ALL POSITIONS" ("Manual position closure via API": emergency_close_positions.py):
    `cockpit close-all` with no engine running, on perps: the resting order cancelled (and counted), the short bought
    back and the long sold with reduce-only market orders, the venue flat, HALTED latched."""
    ex = bare(usdm)
    try:
        await ex.load_markets()
        await ex.create_order(PERP, "market", "sell", 0.02)
        await ex.create_order("ETH/USDT:USDT", "market", "buy", 0.05)
        await ex.create_order(PERP, "limit", "sell", 0.002, 80000)
    finally:
        await ex.close()
    settings = perp_settings(usdm, tmp_path, venue={"symbols": (PERP, "ETH/USDT:USDT")})
    result = await act_without_engine(settings, CloseAll(actor="operator:cli", reason="runbook 002"), retry_for_s=5)
    assert result.ok, result.message
    assert "canceled 1 order(s)" in result.message and "closed 2 position(s)" in result.message, result.message
    assert venue_positions(usdm) == {} and usdm.futures.open_orders() == []
    assert all(o["reduceOnly"] for o in usdm.account()["futures"]["orders"] if o["clientOrderId"].startswith("ck-"))
    assert store(tmp_path).trading_state()[0] == TradingState.HALTED
