"""``cockpit halt``, ``cancel-all`` and ``status`` end to end with an engine running: from the command's start to
its process's exit with the engine's answer, through the engine's socket (``cockpit.quick``: the service API before
the rest of the program is imported), each paired with a bare interpreter started just before it the same way (the
floor: ``python -c pass``), interleaved, in the same run; ``paired_ratio_*`` are those pairs' ratios. The halt also
through the store's inbox (the path before the socket, polled every 0.2 s; measured by taking the socket away).
Each halt and cancel-all is undone in the engine before the next.

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
GOAL = 6.0  # issue 27: halt, cancel-all and status from a second shell, each at most 6x a bare interpreter
QUICK = {"runs": 2}


def cockpit_argv() -> list[str]:
    script = Path(sys.executable).with_name("cockpit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cockpit.cli"]


async def timed(argv: list[str], cwd: str) -> tuple[float, int]:
    start = time.perf_counter()
    child = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await child.communicate()
    took = (time.perf_counter() - start) * 1000
    if child.returncode:
        print(f"{' '.join(argv[-5:])}: exit {child.returncode}: {err.decode(errors='replace')[-400:]}", file=sys.stderr)
    return took, child.returncode or 0


async def measure(runs: int) -> dict[str, Any]:
    cwd = tempfile.mkdtemp(prefix="cockpit-bench-")
    data = Path(cwd) / "data"
    engine = await started(Engine(Settings(engine=EngineConfig(data_dir=data), strategy=StrategyConfig(enabled=False))))
    where = ["--data-dir", str(data)]
    commands = {
        "halt": [*cockpit_argv(), "halt", *where, "--reason", "bench"],
        "cancel_all": [*cockpit_argv(), "cancel-all", *where, "--reason", "bench"],
        "status": [*cockpit_argv(), "status", *where],
    }
    bare = [sys.executable, "-c", "pass"]
    took: dict[str, list[float]] = {name: [] for name in commands}
    paired: dict[str, list[float]] = {name: [] for name in commands}  # each run over the bare run just before it
    by_inbox: list[float] = []
    floor: list[float] = []
    codes: set[int] = set()
    try:
        for _ in range(runs):  # interleaved: a bare interpreter, then each command, under the same load
            for name, argv in commands.items():
                base, _code = await timed(bare, cwd)
                floor.append(base)
                ms, code = await timed(argv, cwd)
                codes.add(code)
                took[name].append(ms)
                paired[name].append(ms / base)
                if name != "status":
                    assert engine.trading_state == TradingState.HALTED, f"the {name} did not land"
                    await engine.execute(Resume(actor="operator:bench", reason="next run"))
        assert engine.api_server is not None
        await engine.api_server.stop()  # no socket: the CLI goes through the store's inbox
        for _ in range(max(2, runs // 4)):
            ms, code = await timed(commands["halt"], cwd)
            codes.add(code)
            assert engine.trading_state == TradingState.HALTED, f"the halt did not land (exit {code})"
            by_inbox.append(ms)
            await engine.execute(Resume(actor="operator:bench", reason="next run"))
    finally:
        await engine.stop()
    floor_s = summary(floor)
    result: dict[str, Any] = {"benchmark": "cli_halt", "runs": runs, "unit": "ms"}
    for name, values in took.items():
        result[f"{name}_by_socket"] = summary(values)
        result[f"ratio_{name}_to_floor"] = ratio(summary(values), floor_s)
        result[f"paired_ratio_{name}"] = summary(paired[name], digits=2)
    result["halt_by_inbox"] = summary(by_inbox)
    result["floor_bare_python"] = floor_s
    result["ratio_socket_to_floor"] = result["ratio_halt_to_floor"]
    result["ratio_inbox_to_socket"] = ratio(summary(by_inbox), result["halt_by_socket"])
    result["goal_ratio"] = GOAL
    result["goals"] = {
        f"cockpit {name.replace('_', '-')} (socket) / python -c pass p50": judge(took[name], floor, GOAL)
        for name in took
    }
    result["exit_codes"] = sorted(codes)
    result["cpu_count"] = os.cpu_count()
    return result


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
