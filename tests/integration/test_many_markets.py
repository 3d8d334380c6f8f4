"""The simulator's synthetic markets (`cockpit sim --symbols N`, or a configuration that names them): the real
engine on its built-in simulator through the real ccxt client, with markets from 2,450 USDT down to 0.0264 USDT,
each with the tick, lot and minimum notional of a market of its price, trading like BTC and ETH."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from eventually import eventually

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, PlaceOrder
from engine.kernel.config import EngineConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.sim.market import markets, synthetic_needed


def test_names_are_stable_and_a_configuration_says_how_many_it_needs():
    assert list(markets(3)) == ["BTCUSDT", "ETHUSDT", "SYM01USDT", "SYM02USDT", "SYM03USDT"]
    assert list(markets(12))[-1] == "SYM12USDT" and "SYM100USDT" in markets(100)
    assert synthetic_needed(["BTC/USDT", "SYM07/USDT", "SYM03/USDT"]) == 7
    assert synthetic_needed(["BTC/USDT"]) == 0
    with pytest.raises(ValueError, match="give 0 to 999"):
        markets(1000)


async def test_an_engine_trades_and_cancels_on_synthetic_markets_of_every_price(tmp_path):
    symbols = ("BTC/USDT", "SYM01/USDT", "SYM09/USDT", "SYM12/USDT")
    engine = Engine(
        Settings(
            venue=VenueConfig(symbols=symbols),
            engine=EngineConfig(data_dir=tmp_path / "data"),
            strategy=StrategyConfig(enabled=False),
        )
    )
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        await eventually(lambda: all(s in engine.portfolio.last for s in symbols), message="a price for each")
        specs = markets(12)
        for symbol in symbols[1:]:
            spec = specs[symbol.replace("/", "")]
            last = engine.portfolio.last[symbol]
            price = (last * Decimal("0.9")).quantize(spec.tick_size)
            amount = (Decimal(12) / price).quantize(spec.step_size)  # above the minimum notional of 5
            placed = await engine.execute(
                PlaceOrder(
                    symbol=symbol,
                    side="buy",
                    type="limit",
                    amount=amount,
                    price=price,
                    stop_loss=price * Decimal("0.9"),
                )
            )
            assert placed.ok, f"{symbol}: {placed.message}"
        assert {o["symbol"] for o in engine.sim.open_orders()} == {s.replace("/", "") for s in symbols[1:]}
        done = await engine.execute(CancelAll(actor="operator:test", reason="many markets"))
        assert done.ok and engine.sim.open_orders() == []
    finally:
        await engine.stop()


async def test_a_strategys_refusals_are_logged_once_when_they_appear_not_per_symbol_per_step(tmp_path, caplog):
    """The ladder on four markets in REDUCE_ONLY: every buy it wants is refused at every step. The log says so once,
    naming the symbols, not once per symbol per step (at 50 symbols that was ~28 lines a second)."""
    symbols = ("BTC/USDT", "ETH/USDT", "SYM01/USDT", "SYM02/USDT")
    engine = Engine(
        Settings(
            venue=VenueConfig(symbols=symbols),
            engine=EngineConfig(data_dir=tmp_path / "data"),
            risk=RiskConfig(reduce_only=True),
            strategy=StrategyConfig(interval_s=3600.0),  # stepped by hand below
        )
    )
    caplog.set_level(logging.INFO, logger="engine.strategies.runner")
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        await eventually(lambda: all(s in engine.portfolio.last for s in symbols), message="a price for each")

        def said() -> list[str]:
            return [r.getMessage() for r in caplog.records if "not done on" in r.getMessage()]

        for _ in range(3):
            await engine.runner.step()
        assert len(said()) == 1, said()
        assert said()[0].startswith("ladder: buy not done on 4 symbol(s) (BTC/USDT, ETH/USDT, SYM01/USDT, SYM02/USDT)")
    finally:
        await engine.stop()
