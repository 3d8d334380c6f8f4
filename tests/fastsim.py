"""A fast-ticking simulator for engine tests: the ``sim`` and ``run`` fixtures (imported by the integration and
scenario conftests) and venue settings whose backoff, polling and staleness are small enough that fault tests
finish in seconds."""

from __future__ import annotations

import pytest
from eventually import eventually

from engine.core.engine import Engine
from engine.kernel.config import Settings
from engine.sim import Simulator

FAST = dict(retry_backoff_s=(0.05, 0.1, 0.2), poll_s=0.1, stale_s=0.5)


@pytest.fixture
async def sim():
    """A simulator ticking every 50 ms, stopped after the test."""
    simulator = Simulator(seed=5, tick_interval=0.05)
    await simulator.start()
    yield simulator
    await simulator.stop()


class Engines:
    """Engines started for one test, each waited for until connected; ``stop_all`` at its end."""

    def __init__(self) -> None:
        self.engines: list[Engine] = []

    async def start(self, settings: Settings) -> Engine:
        engine = Engine(settings)
        self.engines.append(engine)
        await engine.start()
        await eventually(engine.ready.is_set, timeout=20, message="engine connected")
        return engine

    async def stop_all(self) -> None:
        for engine in self.engines:
            await engine.stop()


@pytest.fixture
async def run():
    """Start engines on given settings, each waited for until connected; all stopped after the test."""
    engines = Engines()
    yield engines.start
    await engines.stop_all()
