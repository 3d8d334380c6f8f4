"""What every benchmark shares: percentiles, the JSON it prints, and an engine on the built-in simulator.

Timings depend on the machine and on what else runs on it: each benchmark measures its floor (the same work
without the engine: bare ccxt, raw SQLite, a bare Textual app, a bare interpreter) in the same run, alternating
with the measured work where it can, and reports the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig, VenueConfig


def summary(values: Iterable[float], digits: int = 3) -> dict[str, Any]:
    """n, min, median, p95, p99 and max (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {
        "n": len(ordered),
        "min": round(ordered[0], digits),
        "median": round(statistics.median(ordered), digits),
        "p95": round(rank(95), digits),
        "p99": round(rank(99), digits),
        "max": round(ordered[-1], digits),
    }


def ratio(measured: dict[str, Any], floor: dict[str, Any], key: str = "median") -> float | None:
    """How many times the floor ``measured`` takes, on ``key``."""
    if not measured.get(key) or not floor.get(key):
        return None
    return round(measured[key] / floor[key], 2)


def emit(result: dict[str, Any]) -> None:
    """The one JSON object a benchmark prints on stdout."""
    print(json.dumps(result, default=str))
    sys.stdout.flush()


def sim_settings(sim: Any, data_dir: Path | None = None, *, strategy: bool = False, **risk: Any) -> Settings:
    """Settings for an engine on ``sim`` (reached over loopback like any Binance venue); strategies off, limits
    wide enough for the benchmark's own orders, and no protective stops at the venue unless asked: the benchmarks
    time the engine's paths against bare ccxt orders on the same account, whose sells a resting stop would lock."""
    return Settings(
        venue=VenueConfig(
            exchange="binance", rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=sim.api_key, api_secret=sim.api_secret
        ),
        engine=EngineConfig(data_dir=data_dir or Path(tempfile.mkdtemp(prefix="cockpit-bench-"))),
        risk=RiskConfig(
            **{"max_orders_per_minute": 100_000, "max_position_pct": Decimal(100), "stops_at_venue": False, **risk}
        ),
        monitors=MonitorsConfig(),
        strategy=StrategyConfig(enabled=strategy),
    )


async def started(engine: Any, timeout: float = 30.0) -> Any:
    await engine.start()
    await asyncio.wait_for(engine.ready.wait(), timeout)
    return engine


async def until(predicate: Any, timeout: float = 10.0, interval: float = 0.0005) -> None:
    """Wait for ``predicate()`` to hold, checking every ``interval`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(interval)


def cli(measure: Callable[..., Awaitable[dict[str, Any]]], params: dict[str, Any], doc: str | None) -> None:
    """``--name value`` for each of ``params`` (the defaults), then print what ``measure`` returns as JSON."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in params.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=type(default), default=default)
    emit(asyncio.run(measure(**vars(parser.parse_args()))))


# ------------------------------------------------------------------ judging a ratio against its goal

BOOTSTRAP_ROUNDS = 400
MIN_SAMPLES = 20  # fewer samples than this decide nothing


def _stat(values: list[float], key: str) -> float:
    ordered = sorted(values)
    if key == "median":
        return statistics.median(ordered)
    p = float(key.lstrip("p"))
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def judge(measured: list[float], floor: list[float], goal: float, key: str = "median") -> dict[str, Any]:
    """The ratio ``key(measured) / key(floor)`` against ``goal`` (at most), with its spread: half the width of the
    90 % band of the same ratio over resamples of both series (a fixed seed, so a run is repeatable).

    A ratio whose spread is wider than its distance to the goal is "not decided": another run under another load
    could land on the other side. Only a ratio clear of its goal by more than its spread, from at least
    ``MIN_SAMPLES`` samples on each side, is a "pass" (or "fail")."""
    if len(measured) < 2 or len(floor) < 2:
        return {"ratio": None, "spread": None, "goal": goal, "n": min(len(measured), len(floor)), "verdict": "no data"}
    value = _stat(measured, key) / _stat(floor, key)
    rng = random.Random(1)
    draws = sorted(
        _stat(rng.choices(measured, k=len(measured)), key) / _stat(rng.choices(floor, k=len(floor)), key)
        for _ in range(BOOTSTRAP_ROUNDS)
    )
    return _verdict(value, draws, goal, key, min(len(measured), len(floor)))


def _verdict(value: float, draws: list[float], goal: float, stat: str, n: int) -> dict[str, Any]:
    """A ratio judged against its goal: its spread is half the 90 % band of ``draws`` (sorted resampled ratios);
    "not decided" when the spread reaches the goal or fewer than ``MIN_SAMPLES`` were taken."""
    spread = (draws[int(0.95 * (len(draws) - 1))] - draws[int(0.05 * (len(draws) - 1))]) / 2
    if abs(value - goal) <= spread or n < MIN_SAMPLES:
        verdict = "not decided"
    else:
        verdict = "pass" if value <= goal else "fail"
    return {
        "ratio": round(value, 2),
        "spread": round(spread, 2),
        "goal": goal,
        "stat": stat,
        "n": n,
        "verdict": verdict,
    }


def judge_paired(measured: list[float], floor: list[float], goal: float) -> dict[str, Any]:
    """``judge`` for series measured in pairs, one right after the other (run i of the engine, then run i of its
    floor): the median of the pairs' own ratios, its spread over resamples of the pairs. The load of the moment
    weighs on both halves of a pair alike, so it cancels in the pair's ratio instead of widening the spread; the
    unpaired ``judge`` of the same series is kept beside it."""
    pairs = [m / f for m, f in zip(measured, floor) if f > 0]
    if len(pairs) < 2:
        return {"ratio": None, "spread": None, "goal": goal, "n": len(pairs), "verdict": "no data", "paired": True}
    value = statistics.median(pairs)
    rng = random.Random(1)
    draws = sorted(statistics.median(rng.choices(pairs, k=len(pairs))) for _ in range(BOOTSTRAP_ROUNDS))
    return {**_verdict(value, draws, goal, "median of the pairs' ratios", len(pairs)), "paired": True}


# ------------------------------------------------------------------ the simulator and the floors in other processes

HERE = Path(__file__).resolve().parent


class Child:
    """A helper process of this directory spoken to in JSON lines (one request, one answer), killed at the end."""

    def __init__(self, script: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.argv = [sys.executable, str(HERE / script), *args]
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> dict[str, Any]:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,
            env={**os.environ, **(self.env or {})},
        )
        return await self._read()

    async def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        if not line:
            raise RuntimeError(f"{self.argv[1]} ended (exit {await self.proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.argv[1]}: {answer['error']}")
        return answer

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the child ends at EOF
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class VenueAddress:
    """Where a simulator serves (what an engine's or a bare client's settings need)."""

    def __init__(self, rest_url: str, ws_url: str, api_key: str, api_secret: str) -> None:
        self.rest_url, self.ws_url, self.api_key, self.api_secret = rest_url, ws_url, api_key, api_secret

    def keys(self) -> dict[str, str]:
        return {
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
        }
