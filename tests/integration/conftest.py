"""Integration fixtures: a fast-ticking simulator on loopback (see fastsim.FAST for the settings that suit it)."""

from __future__ import annotations

import pytest

from engine.config import Settings
from engine.core import Engine
from engine.sim import Simulator
from eventually import eventually


@pytest.fixture
async def sim():
    """A simulator ticking every 50 ms, stopped after the test."""
    simulator = Simulator(seed=5, tick_interval=0.05)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def run():
    """Start engines on given settings, each waited for until connected; all stopped after the test."""
    engines: list[Engine] = []

    async def start(settings: Settings) -> Engine:
        engine = Engine(settings)
        engines.append(engine)
        await engine.start()
        await eventually(engine.ready.is_set, timeout=20, message="engine connected")
        return engine

    yield start
    for engine in engines:
        await engine.stop()
