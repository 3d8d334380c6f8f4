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
