"""A stepped simulator (validation runs): market time and prices move only when its owner says so; signatures stay
on the wall clock; the order-rate limit counts market time."""

from __future__ import annotations

import time
from decimal import Decimal

import ccxt.async_support as ccxt_errors
import pytest
from test_candles import build

from engine.sim import Simulator

BTC = "BTC/USDT"
T0 = 1_736_121_600_000  # 2025-01-06T00:00:00Z


async def test_market_time_and_prices_move_only_when_stepped():
    async with Simulator(seed=4, stepped=True, start_ms=T0, tick_interval=15, history_days=0.1) as sim:
        client = build(sim)
        try:
            first = await client.fetch_ticker(BTC)
            again = await client.fetch_ticker(BTC)
            assert sim.clock.now_ms() == T0 and first["last"] == again["last"]  # nothing moves by itself
            assert abs(await client.fetch_time() - time.time() * 1000) < 2000  # the server clock is the wall's
            sim.clock.advance(15_000)
            sim.tick()
            moved = await client.fetch_ticker(BTC)
            assert moved["timestamp"] == T0 + 15_000 and moved["last"] == float(sim.price("BTCUSDT"))
            order = await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "step-1"})
            assert order["timestamp"] == T0 + 15_000  # stamped in market time
            with pytest.raises(RuntimeError):
                Simulator(seed=1).clock.advance(1)  # only a stepped clock is moved by hand
        finally:
            await client.close()


async def test_the_order_rate_limit_counts_market_time():
    async with Simulator(seed=4, stepped=True, start_ms=T0, orders_per_10s=2, history_days=0.1) as sim:
        client = build(sim)
        try:
            price = sim.price("BTCUSDT") * Decimal("0.9")
            for i in range(2):
                await client.create_order(BTC, "limit", "buy", 0.001, float(price), {"newClientOrderId": f"r-{i}"})
            with pytest.raises((ccxt_errors.RateLimitExceeded, ccxt_errors.DDoSProtection)):
                await client.create_order(BTC, "limit", "buy", 0.001, float(price), {"newClientOrderId": "r-2"})
            sim.clock.advance(10_000)  # ten simulated seconds later the window has passed, whatever the wall says
            await client.create_order(BTC, "limit", "buy", 0.001, float(price), {"newClientOrderId": "r-3"})
        finally:
            await client.close()
