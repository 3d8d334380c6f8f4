"""The simulator is part of the headless engine: importing and running it must not pull in Textual."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import asyncio, sys
from engine.sim import Simulator

async def run():
    async with Simulator(tick_interval=0.01) as sim:
        sim.tick()

asyncio.run(run())
assert "textual" not in sys.modules, "engine.sim imported textual"
"""


def test_engine_sim_does_not_import_textual():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
