"""Alert codes docs/alerts.md lists that no scenario asserts, each raised here through the real engine (on the
simulator, through ccxt) and asserted by name: tests/unit/test_alert_catalogue.py checks that every listed code
is asserted raised by some test, so the catalogue never again lists what does not happen."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest
from eventually import eventually
from pydantic import SecretStr
from runbook import buy, codes, resting_buy, settings, store, tripped

from engine.core.emergency import act_without_engine
from engine.core.engine import Engine
from engine.gate.checklist import Check, Checklist, Status
from engine.kernel.commands import CancelAll, CloseAll, ClosePosition, Halt, PlaceOrder, ReduceOnly, Resume, SetStrategy
from engine.kernel.config import HealthConfig, StrategyConfig
from engine.kernel.events import TradingState
from engine.store.db import Store


@pytest.fixture
def run(run):
    async def start(s):
        engine = await run(s)
        await eventually(lambda: engine.monitors.ticks > 0, message="monitors reading")
        return engine

    return start


async def test_state_changes_tiers_orders_and_strategies_raise_their_codes(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(stream_latency_warn_ms=0.001)))
    assert (await engine.execute(ReduceOnly(actor="operator:key"))).ok
    assert "TRADING_REDUCE_ONLY" in codes(engine)
    assert (await engine.execute(Resume(actor="operator:key"))).ok
    assert "TRADING_ACTIVE" in codes(engine)
    await eventually(lambda: "STREAM_LATENCY" in codes(engine), timeout=5, message="stream p95 over 0.001 ms")
    sim.faults.inject("order-reject", count=1)
    last = engine.portfolio.last["BTC/USDT"]
    refused = await engine.execute(
        PlaceOrder(
            actor="operator:key",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.9"),
            stop_loss=last * Decimal("0.5"),
        )
    )
    assert not refused.ok and "ORDER_REJECTED" in codes(engine)
    await buy(engine)  # the close right after: it waits for the entry's stop still on its way (decision SAF-39)
    assert (await engine.execute(ClosePosition(actor="operator:key", symbol="BTC/USDT"))).ok
    assert "CLOSE_POSITION" in codes(engine)
    await resting_buy(engine)
    assert (await engine.execute(CancelAll(actor="operator:key"))).ok
    engine.report_answered()  # its alert follows its answer (decision BEN-07)
    assert "CANCEL_ALL" in codes(engine)


async def test_an_operator_enabling_a_strategy_is_said(sim, tmp_path, run):
    s = settings(sim, tmp_path).model_copy(update={"strategy": StrategyConfig(enabled=True, interval_s=3600)})
    engine = await run(s)
    assert (await engine.execute(SetStrategy(actor="operator:key", strategy="ladder", enabled=False))).ok
    assert (await engine.execute(SetStrategy(actor="operator:key", strategy="ladder", enabled=True))).ok
    assert "STRATEGY_ENABLED" in codes(engine)


async def test_a_stop_crossed_while_halted_is_said(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(
        PlaceOrder(
            actor="operator:key",
            symbol="BTC/USDT",
            side="buy",
            type="market",
            amount=Decimal("0.002"),
            stop_loss=last * Decimal("0.97"),
        )
    )
    assert placed.ok, placed.message
    await eventually(lambda: engine.portfolio.free("BTC") > 0)
    assert (await engine.execute(Halt(actor="operator:key"))).ok
    sim.set_price("BTCUSDT", last * Decimal("0.9"))
    await eventually(lambda: "STOP_LOSS_WHILE_HALTED" in codes(engine), timeout=10, message="stop crossed, halted")


async def test_an_order_the_venue_does_not_know_is_lost(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    order = engine.tracker.create("BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal("1000"), origin="operator")
    await engine.sync.reconcile()
    assert engine.tracker.get(order.client_id).status == engine.tracker.get(order.client_id).status.EXPIRED
    assert "ORDER_LOST" in codes(engine)


async def test_the_breaker_opens_half_opens_closes_and_the_venue_is_down_meanwhile(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, venue=dict(breaker_failures=1, breaker_cooldown_s=0.5)))
    sim.faults.inject("http-status", status=502, path="/api/v3/account", count=1)
    with pytest.raises(Exception):  # the venue's 502, whatever ccxt calls it
        await engine.execution.refresh_balances()
    assert "VENUE_DOWN" in codes(engine) and "BREAKER_OPEN" in codes(engine)
    await eventually(lambda: "BREAKER_HALF_OPEN" in codes(engine), timeout=10, message="cool-down over: a probe")
    await eventually(lambda: "BREAKER_CLOSED" in codes(engine), timeout=10, message="the probe worked")


async def test_a_large_position_difference_raises_position_mismatch(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    await eventually(lambda: engine.holdings.baseline is not None, message="holdings baseline")
    sim.faults.inject("foreign-fill", symbol="BTCUSDT", side="BUY", qty="0.01")
    await tripped(engine, "position_mismatch")
    assert "POSITION_MISMATCH" in codes(engine)


async def test_a_refused_key_at_connect_is_venue_auth(sim, tmp_path):
    s = settings(sim, tmp_path)
    s = s.model_copy(update={"venue": s.venue.model_copy(update={"api_secret": SecretStr("not-the-secret")})})
    engine = Engine(s)
    await engine.start()
    try:
        await eventually(lambda: "VENUE_AUTH" in codes(engine), timeout=10, message="key refused at connect")
    finally:
        await engine.stop()


async def test_a_health_port_in_use_is_said(sim, tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        s = settings(sim, tmp_path).model_copy(update={"health": HealthConfig(port=taken.getsockname()[1])})
        engine = Engine(s)
        await engine.start()
        try:
            assert "HEALTH_PORT" in codes(engine)
        finally:
            await engine.stop()
    finally:
        taken.close()


async def test_the_emergency_path_raises_its_codes(sim, tmp_path):
    s = settings(sim, tmp_path)
    Store.in_dir(tmp_path).close()  # an engine ran here before
    assert (await act_without_engine(s, CancelAll(actor="operator:cli"), retry_for_s=0)).ok
    assert (await act_without_engine(s, CloseAll(actor="operator:cli"), retry_for_s=0)).ok
    kept = store(tmp_path)
    try:
        stored = {r["code"] for r in kept.alerts(limit=50)}
        assert "EMERGENCY_CANCEL_ALL" in stored and "EMERGENCY_CLOSE_ALL" in stored
        assert kept.trading_state()[0] == TradingState.HALTED
    finally:
        kept.close()


async def test_a_live_start_that_passes_with_warnings_says_each(tmp_path, monkeypatch):
    """The live gate itself (a live start cannot reach a real venue from a test): its checklist's WARNs alerted."""
    import engine.core.engine as core

    warned = Check("key_permissions", "API key permissions", Status.WARN, "the venue cannot say", fix="check by hand")

    async def checklist(*args, **kwargs):
        return Checklist((warned,), "live", "binance", "now", "engine:live start", 1.0)

    monkeypatch.setattr(core, "run_standalone", checklist)
    engine = Engine(settings_for_gate(tmp_path))
    await engine._live_gate()
    assert "PREFLIGHT_WARN" in codes(engine)


def settings_for_gate(tmp_path):
    from engine.kernel.config import Settings

    return Settings(engine={"data_dir": tmp_path})
