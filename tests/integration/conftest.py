"""Integration fixtures: a fast-ticking simulator on loopback (see fastsim.FAST for the settings that suit it)."""

from __future__ import annotations

import pytest

from engine.sim import Simulator


@pytest.fixture
async def sim():
    """A simulator ticking every 50 ms, stopped after the test."""
    simulator = Simulator(seed=5, tick_interval=0.05)
    await simulator.start()
    yield simulator
    await simulator.stop()
