"""Soak: the engine's memory (RSS) over a simulated trading session, as growth per simulated hour.

The engine runs on the built-in simulator with the default ladder strategy, the simulator's clock and the strategy's
step sped up ``--speed`` times (prices move, orders rest, fill and are replaced ``--speed`` times faster), for
``--seconds`` of wall time after ``--warmup`` seconds (imports, caches, the first orders). Reconciliation, the
monitors and the venue's request-weight budget run at their real pace. RSS is read from /proc at 30 points after the
warm-up; the growth is the slope of a least-squares line through them (not the last reading less the first), with
the spread of that slope over resamples of the points, given per simulated hour (the trading's pace) and per wall
hour (the pace of reconciliation and the monitors, which one simulated hour here does not stand for: only
``--seconds`` of them ran). Goal: at most 10 MB per simulated hour.

Run: .venv/bin/python bench/soak.py [--seconds S] [--speed X] [--warmup W]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from decimal import Decimal
from typing import Any

from benchlib import sim_settings, started

from engine.core.engine import Engine
from engine.kernel.config import LadderConfig, StrategyConfig
from engine.sim import Simulator

PARAMS = {"seconds": 60.0, "speed": 60.0, "warmup": 10.0}
QUICK = {"seconds": 0.3, "speed": 10.0, "warmup": 0.1}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


async def measure(seconds: float, speed: float, warmup: float) -> dict[str, Any]:
    sim = Simulator(seed=4, speed=speed, orders_per_10s=1_000_000)
    await sim.start()
    settings = sim_settings(sim, strategy=True, max_position_pct=Decimal(3))
    # The ladder at the simulator's pace: it steps ``speed`` times as often, with a tighter spacing so that
    # orders fill and turn over as they would in an hour.
    strategy = StrategyConfig(
        enabled=True, interval_s=max(0.05, 3.0 / speed), ladder=LadderConfig(spacing_pct=Decimal("0.05"))
    )
    settings = settings.model_copy(update={"strategy": strategy})
    engine = await started(Engine(settings))
    samples: list[tuple[float, float]] = []
    try:
        await asyncio.sleep(warmup)
        gc.collect()
        start_rss, start = rss_mb(), time.perf_counter()
        orders_before = len(engine.tracker.all())
        while time.perf_counter() - start < seconds:
            await asyncio.sleep(seconds / 30)
            samples.append((round(time.perf_counter() - start, 2), round(rss_mb(), 2)))
        gc.collect()
        end_rss, elapsed = rss_mb(), time.perf_counter() - start
        orders = len(engine.tracker.all()) - orders_before
        fills = engine.stats.current().trades_count
    finally:
        await engine.stop()
        await sim.stop()
    hours = elapsed * speed / 3600
    slope, spread = growth(samples)  # MB per wall second
    return {
        "benchmark": "soak",
        "wall_s": round(elapsed, 1),
        "speed": speed,
        "simulated_hours": round(hours, 3),
        "rss_mb_after_warmup": round(start_rss, 1),
        "rss_mb_end": round(end_rss, 1),
        "orders_placed": orders,
        "fills_today": fills,
        "samples": samples,
        "growth_mb_per_simulated_hour": round(slope * 3600 / speed, 2) if slope is not None else None,
        "growth_spread_mb_per_simulated_hour": round(spread * 3600 / speed, 2) if spread is not None else None,
        "growth_mb_per_wall_hour": round(slope * 3600, 1) if slope is not None else None,
        "growth_end_less_start_mb_per_simulated_hour": round((end_rss - start_rss) / hours, 2) if hours else None,
        "goal": "<= 10 MB per simulated hour",
    }


def slope_of(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def growth(points: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    """The least-squares slope of RSS over time, and half the width of its 90 % band over resamples."""
    if len(points) < 3:
        return None, None
    rng = random.Random(1)
    draws = sorted(slope_of(rng.choices(points, k=len(points))) for _ in range(400))
    return slope_of(points), (draws[379] - draws[19]) / 2


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
