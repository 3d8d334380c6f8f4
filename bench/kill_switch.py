"""Benchmark the kill switch on the built-in simulator: halt latency, cancel-all and close-all duration.

close-all is timed from the command to its answer, which comes only after the venue's balances were read back
and hold nothing but dust (2 positions, BTC and ETH, bought at market before each run).

Run: .venv/bin/python bench/kill_switch.py [--runs N] [--orders K]
Prints one JSON object. Not part of the test run: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from engine.config import EngineConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.core import Engine
from engine.commands import CancelAll, CloseAll, Halt, PlaceOrder, Resume
from engine.sim import Simulator


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)


async def main(runs: int, orders: int) -> dict:
    # A venue of our own with Binance's order-rate limit lifted: the benchmark places orders faster than 100/10 s,
    # and what it measures is the kill switch, not the venue's limit.
    sim = Simulator(seed=1, orders_per_10s=1_000_000)
    await sim.start()
    settings = Settings(
        venue=VenueConfig(exchange="binance", rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=sim.api_key,
                          api_secret=sim.api_secret),
        engine=EngineConfig(data_dir=Path(tempfile.mkdtemp())),
        risk=RiskConfig(max_orders_per_minute=100_000, max_position_pct=Decimal(100)),
        strategy=StrategyConfig(enabled=False),
    )
    engine = Engine(settings)
    await engine.start()
    await asyncio.wait_for(engine.ready.wait(), 30)
    halt_ms, cancel_ms, close_ms = [], [], []
    try:
        for _ in range(runs):
            await engine.execute(Resume(reason="bench"))
            last = engine.portfolio.last["BTC/USDT"]
            for i in range(orders):
                price = last * (Decimal("0.90") - Decimal(i) / 1000)
                result = await engine.execute(PlaceOrder(symbol="BTC/USDT", side="buy", type="limit",
                                                         amount=Decimal("0.0002"), price=price,
                                                         stop_loss=price * Decimal("0.9")))
                assert result.ok, result.message
            t = time.perf_counter()
            await engine.execute(Halt(reason="bench"))
            halt_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            result = await engine.execute(CancelAll(reason="bench"))
            cancel_ms.append((time.perf_counter() - t) * 1000)
            assert result.ok and sim.open_orders() == [], result.message
        for _ in range(runs):
            await engine.execute(Resume(reason="bench"))
            for symbol, amount in (("BTC/USDT", "0.002"), ("ETH/USDT", "0.05")):
                last = engine.portfolio.last[symbol]
                result = await engine.execute(PlaceOrder(symbol=symbol, side="buy", type="market",
                                                         amount=Decimal(amount), stop_loss=last * Decimal("0.5")))
                assert result.ok, result.message
            t = time.perf_counter()
            result = await engine.execute(CloseAll(reason="bench"))
            close_ms.append((time.perf_counter() - t) * 1000)
            assert result.ok and "closed 2 position(s)" in result.message, result.message
            assert sum(sim.balance("BTC")) < Decimal("0.00001") and sum(sim.balance("ETH")) < Decimal("0.0001")
    finally:
        await engine.stop()
        await sim.stop()
    return {
        "benchmark": "kill_switch",
        "runs": runs,
        "open_orders_per_run": orders,
        "halt_ms": {"p50": pct(halt_ms, 50), "p95": pct(halt_ms, 95), "max": round(max(halt_ms), 3)},
        "cancel_all_ms": {"p50": pct(cancel_ms, 50), "p95": pct(cancel_ms, 95), "max": round(max(cancel_ms), 3),
                          "mean": round(statistics.mean(cancel_ms), 3)},
        "close_all_2_positions_ms": {"p50": pct(close_ms, 50), "p95": pct(close_ms, 95),
                                     "max": round(max(close_ms), 3), "mean": round(statistics.mean(close_ms), 3)},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--orders", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.runs, args.orders))))
