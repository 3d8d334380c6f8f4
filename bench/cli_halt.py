"""``cockpit halt`` end to end with an engine running: from the command's start to its process's exit with the
engine's answer, through the engine's socket (the service API), against the store's inbox (the path before it,
polled every 0.2 s; measured by taking the socket away) and against a bare interpreter started the same way (the
floor), alternating, in the same run. Each halt is undone in the engine before the next.

Run: .venv/bin/python bench/cli_halt.py [--runs N]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import judge, ratio, started, summary

from engine.core.engine import Engine
from engine.kernel.commands import Resume
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import TradingState

PARAMS = {"runs": 20}
QUICK = {"runs": 2}


def cockpit_argv() -> list[str]:
    script = Path(sys.executable).with_name("cockpit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cockpit.cli"]


async def timed(argv: list[str], cwd: str) -> tuple[float, int]:
    start = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    code = await child.wait()
    return (time.perf_counter() - start) * 1000, code


async def measure(runs: int) -> dict[str, Any]:
    cwd = tempfile.mkdtemp(prefix="cockpit-bench-")
    data = Path(cwd) / "data"
    engine = await started(Engine(Settings(engine=EngineConfig(data_dir=data), strategy=StrategyConfig(enabled=False))))
    halt = [*cockpit_argv(), "halt", "--data-dir", str(data), "--reason", "bench"]
    by_socket: list[float] = []
    by_inbox: list[float] = []
    floor: list[float] = []
    codes: set[int] = set()
    try:
        for inbox in (False, True):
            if inbox:
                assert engine.api_server is not None
                await engine.api_server.stop()  # no socket: the CLI goes through the store's inbox
            for _ in range(runs):
                ms, code = await timed(halt, cwd)
                codes.add(code)
                assert engine.trading_state == TradingState.HALTED, "the halt did not land"
                (by_inbox if inbox else by_socket).append(ms)
                await engine.execute(Resume(actor="operator:bench", reason="next run"))
                ms, _ = await timed([sys.executable, "-c", "pass"], cwd)
                floor.append(ms)
    finally:
        await engine.stop()
    socket_s, inbox_s, floor_s = summary(by_socket), summary(by_inbox), summary(floor)
    return {
        "benchmark": "cli_halt",
        "runs": runs,
        "unit": "ms",
        "halt_by_socket": socket_s,
        "halt_by_inbox": inbox_s,
        "floor_bare_python": floor_s,
        "ratio_socket_to_floor": ratio(socket_s, floor_s),
        "ratio_inbox_to_socket": ratio(inbox_s, socket_s),
        "goals": {"cockpit halt (socket) / python -c pass p50": judge(by_socket, floor, 6.0)},
        "exit_codes": sorted(codes),
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
