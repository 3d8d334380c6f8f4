"""Shared fixtures: a real simulator on loopback and a real ccxt client pointed at it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

# Stateful property tests drive a real engine: slow examples, no example database written into the tree. The default
# run is small; `--hypothesis-profile=long` is the long one (README "Proof suites").
_SLOW = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("cockpit", max_examples=3, stateful_step_count=10, **_SLOW)
settings.register_profile("long", max_examples=100, stateful_step_count=40, **_SLOW)
settings.load_profile("cockpit")

from engine.sim import Simulator  # noqa: E402
from engine.venue.exchange import build_exchange  # noqa: E402

RUNBOOK_TOGGLES = ("DRY_RUN", "RISK_KILL_SWITCH_ENABLED", "RISK_REDUCE_ONLY_MODE")


@pytest.fixture(autouse=True)
def isolated_from_the_operator(monkeypatch, tmp_path):
    """No test reads the developer's COCKPIT_* variables, runbook toggles or a .env in the working directory:
    an operator's .env could otherwise point a test at a real exchange."""
    for key in list(os.environ):
        if key.startswith("COCKPIT_") or key in RUNBOOK_TOGGLES:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
async def sim():
    """A fresh simulator on free loopback ports, stopped after the test."""
    simulator = Simulator(seed=7)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def exchange(sim):
    """The real ccxt.pro binance client, pointed at the simulator with its paper keys."""
    ex = build_exchange(
        "binance",
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        timeout_ms=5_000,
    )
    try:
        yield ex
    finally:
        await ex.close()
