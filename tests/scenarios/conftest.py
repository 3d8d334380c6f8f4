"""Runbook scenarios: a fast-ticking simulator, engines that have taken their first monitor reading, and a
stopwatch per scenario whose fault -> action times are written to build/proof/scenarios.md and printed at the end."""

from __future__ import annotations

import pytest
from eventually import eventually
from fastsim import Engines, sim  # noqa: F401  (sim: a fixture)
from runbook import RESULTS, Stopwatch, write_results

from engine.core.engine import Engine
from engine.kernel.config import Settings


@pytest.fixture
async def run():
    """Start engines on given settings, each waited for until connected and its monitors' first reading; all
    stopped after the test."""
    engines = Engines()

    async def start(s: Settings) -> Engine:
        engine = await engines.start(s)
        await eventually(lambda: engine.monitors.ticks > 0, message="monitors reading")
        return engine

    yield start
    await engines.stop_all()


@pytest.fixture
def stopwatch(request):
    """``stopwatch(runbook_section, thresholds)``: this scenario's fault -> action clock."""

    def make(runbook: str, threshold: str = "") -> Stopwatch:
        return Stopwatch(request.node.name.removeprefix("test_"), runbook, threshold)

    return make


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        path = write_results(RESULTS)
        terminalreporter.section(f"runbook scenarios: fault -> action (with runbook sections: {path})")
        for r in RESULTS:
            terminalreporter.write_line(f"{r['seconds']:6.2f}s  {r['scenario'][:60]}: {r['action']}")
