"""The engine against the real simulator over loopback, with its state in a real SQLite file."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eventually import eventually

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, CancelOrder, Halt, PlaceOrder, Resume
from engine.kernel.config import EngineConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import OrderStatus, TradingState
from engine.sim import Simulator
from engine.store.datadir import DataDirBusy
from engine.store.db import Store


@pytest.fixture
async def standalone_sim():
    """A simulator outside the engine, so it keeps its orders across an engine restart."""
    sim = Simulator(seed=11)
    await sim.start()
    yield sim
    await sim.stop()


def settings_for(sim: Simulator, data_dir, strategy: bool = False) -> Settings:
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            timeout_ms=5000,
        ),
        engine=EngineConfig(data_dir=data_dir),
        strategy=StrategyConfig(enabled=strategy, interval_s=0.2),
    )


async def started(settings: Settings) -> Engine:
    engine = Engine(settings)
    await engine.start()
    await eventually(engine.ready.is_set, timeout=20, message="engine connected to the simulator")
    return engine


async def test_place_track_cancel_and_restart(standalone_sim, tmp_path):
    sim = standalone_sim
    engine = await started(settings_for(sim, tmp_path))
    try:
        last = engine.portfolio.last["BTC/USDT"]
        result = await engine.execute(
            PlaceOrder(
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.002"),
                price=last * Decimal("0.9"),
                stop_loss=last * Decimal("0.8"),
            )
        )
        assert result.ok, result.message
        (order,) = engine.tracker.open_orders()
        assert order.status == OrderStatus.OPEN and order.venue_id
        venue_side = sim.open_orders("BTCUSDT")
        assert [o["clientOrderId"] for o in venue_side] == [order.client_id]
        store = Store.in_dir(tmp_path)
        assert [e["status"] for e in store.order_events(order.client_id)][:2] == ["NEW", "OPEN"]

        eth = engine.portfolio.last["ETH/USDT"]
        market = await engine.execute(
            PlaceOrder(
                symbol="ETH/USDT", side="buy", type="market", amount=Decimal("0.05"), stop_loss=eth * Decimal("0.9")
            )
        )
        assert market.ok and "FILLED" in market.message
        await eventually(
            lambda: any(p.symbol == "ETH/USDT" for p in engine.portfolio.positions()),
            message="ETH position from the fill",
        )
        assert store.fills() and store.fills()[0]["symbol"] == "ETH/USDT"
    finally:
        await engine.stop()

    # Restart from the same file: the open order is known, and still open at the venue.
    engine = await started(settings_for(sim, tmp_path))
    try:
        (restored,) = [o for o in engine.tracker.open_orders() if o.type == "limit"]
        assert restored.client_id == order.client_id and restored.status == OrderStatus.OPEN
        # The ETH position's protective stop is known too, the same one: the restart placed no second.
        (stop,) = [o for o in engine.tracker.open_orders() if o.type == "stop_limit"]
        assert stop.symbol == "ETH/USDT" and [o["clientOrderId"] for o in sim.open_orders("ETHUSDT")] == [
            stop.client_id
        ]
        cancel = await engine.execute(CancelOrder(client_id=restored.client_id))
        assert cancel.ok, cancel.message
        assert engine.tracker.get(order.client_id).status == OrderStatus.CANCELED
        assert sim.open_orders("BTCUSDT") == []
    finally:
        await engine.stop()
    assert [o.client_id for o in Store.in_dir(tmp_path).orders(open_only=True)] == [stop.client_id]


async def test_halt_blocks_orders_and_survives_restart(standalone_sim, tmp_path):
    engine = await started(settings_for(standalone_sim, tmp_path))
    try:
        assert (await engine.execute(Halt(reason="test"))).ok
        refused = await engine.execute(
            PlaceOrder(symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001"))
        )
        assert not refused.ok and "HALTED" in refused.message
        assert standalone_sim.open_orders() == []
    finally:
        await engine.stop()
    engine = await started(settings_for(standalone_sim, tmp_path))
    try:
        assert engine.trading_state == TradingState.HALTED
        assert engine.state_info["reason"] == "test"
        assert (await engine.execute(Resume(reason="checked"))).ok
        assert engine.trading_state == TradingState.ACTIVE
    finally:
        await engine.stop()
    assert Store.in_dir(tmp_path).trading_state()[0] == TradingState.ACTIVE


async def test_cancel_all_clears_the_venue_and_halts(standalone_sim, tmp_path):
    engine = await started(settings_for(standalone_sim, tmp_path, strategy=True))
    try:
        await eventually(
            lambda: len(standalone_sim.open_orders()) >= 2, timeout=15, message="the ladder resting orders at the venue"
        )
        result = await engine.execute(CancelAll(reason="test"))
        assert result.ok, result.message
        assert engine.trading_state == TradingState.HALTED
        assert standalone_sim.open_orders() == []
        # The cancels' reports are applied right after the answer (decision BEN-09).
        await eventually(lambda: engine.tracker.open_orders() == [], message="the cancels applied after the answer")
    finally:
        await engine.stop()


async def test_venue_rejection_is_recorded(standalone_sim, tmp_path):
    # Past the engine's own checks (a sell only shrinks a position), the venue refuses: no BTC is held.
    engine = await started(settings_for(standalone_sim, tmp_path))
    try:
        last = engine.portfolio.last["BTC/USDT"]
        result = await engine.execute(
            PlaceOrder(symbol="BTC/USDT", side="sell", type="limit", amount=Decimal("5"), price=last * 2)
        )
        assert not result.ok and "insufficient" in result.message.lower()
        (order,) = engine.tracker.all()
        assert order.status == OrderStatus.REJECTED
    finally:
        await engine.stop()


async def test_second_engine_on_same_data_dir_is_refused(standalone_sim, tmp_path):
    engine = await started(settings_for(standalone_sim, tmp_path))
    try:
        with pytest.raises(DataDirBusy, match="--data-dir"):
            await Engine(settings_for(standalone_sim, tmp_path)).start()
    finally:
        await engine.stop()


async def test_builtin_sim_venue(tmp_path):
    """exchange = "sim" starts the simulator inside the engine."""
    engine = await started(Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=False)))
    try:
        assert engine.sim is not None and engine.venue_label.startswith("sim 127.0.0.1:")
        assert engine.portfolio.balances["USDT"].free > 0
    finally:
        await engine.stop()
