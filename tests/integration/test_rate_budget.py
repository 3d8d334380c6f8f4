"""The venue's weight budget through the real ccxt client and simulator: no debt after a heavy call, routine calls
wait near the limit instead of drawing a 429, and the kill switch still goes at once (issue 13)."""

from __future__ import annotations

import asyncio
import time

from eventually import eventually
from fastsim import FAST

from engine.kernel.commands import CancelAll
from engine.kernel.config import EngineConfig, Settings, StrategyConfig, VenueConfig
from engine.sim import Simulator


def settings(sim: Simulator, tmp_path) -> Settings:
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            **FAST,
        ),
        engine=EngineConfig(data_dir=tmp_path),
        strategy=StrategyConfig(enabled=False),
    )


async def test_the_budget_learns_the_limit_and_follows_the_venues_count(tmp_path, run):
    sim = Simulator(seed=3, weight_limit=4000)
    await sim.start()
    try:
        engine = await run(settings(sim, tmp_path))
        venue = engine.link.require()
        budget = engine.venue_health.budget
        assert budget.limit == 4000  # from exchangeInfo's rateLimits
        for _ in range(3):  # weight 240: ccxt's own bucket would make the next call wait ~2.4 s
            await venue.fetch_open_orders(None)
        start = time.perf_counter()
        await venue.fetch_balances()
        assert time.perf_counter() - start < 1.2  # half that wait: a margin of 1.2 s either way on a busy machine
        assert budget.venue_used is not None  # the venue's own count, from X-MBX-USED-WEIGHT-1M
    finally:
        await engine.stop()
        await sim.stop()


async def test_routine_calls_wait_near_the_limit_and_the_kill_switch_goes_at_once(tmp_path, run):
    sim = Simulator(seed=3, weight_limit=2000)
    await sim.start()
    try:
        engine = await run(settings(sim, tmp_path))
        venue, budget = engine.link.require(), engine.venue_health.budget

        async def poll_balances() -> None:
            while True:
                await venue.fetch_balances()  # weight 20 each

        polling = asyncio.create_task(poll_balances())
        try:
            await eventually(lambda: budget.waits > 0, timeout=20, message="a routine call waits for the minute")
            assert engine.venue_health.paused_for() == 0  # the venue never had to say 429
            start = time.perf_counter()
            result = await engine.execute(CancelAll(reason="test"))
            assert result.ok, result.message
            assert time.perf_counter() - start < 5  # the kill switch used the reserve, it did not wait a minute
        finally:
            polling.cancel()
        assert engine.venue_health.paused_for() == 0 and engine.venue_health.banned_for() == 0
    finally:
        await engine.stop()
        await sim.stop()
