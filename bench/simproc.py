"""The simulator in a process of its own, as a real venue is: the benchmarks' engine and floors reach it over
loopback only, and its matching, its streams and its HTTP server share no event loop with them.

It prints one JSON line (its addresses and API key), then answers JSON lines on stdin: ``{"op": "arm"}`` forgets
the last "venue clear" mark; ``{"op": "clear"}`` answers when the venue last went from some open orders to none
(``time.perf_counter()``, CLOCK_MONOTONIC: comparable across processes on Linux) and how many are open;
``{"op": "limits", "weight": W, "orders_per_10s": K}`` sets the venue's limits and starts a fresh count of its
refusals (a minute's weight and the order counts forgotten); ``{"op": "refusals"}`` answers how many requests it
refused for rate since (429 or 418, weight or order rate). EOF ends it.

``--symbols N`` lists N synthetic markets beside BTC and ETH (``SYM01USDT``...), ``--usdt`` the account's USDT.

The mark costs one dictionary look-up per order event (the open-order table's size), not a listing of the orders.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from decimal import Decimal
from typing import Any

from engine.sim import Simulator
from engine.sim.errors import VenueError
from engine.sim.limits import LimitRefusal


async def serve(seed: int, symbols: int = 0, usdt: str | None = None) -> None:
    # Binance's order-rate limit lifted: the benchmarks place orders faster than 100 / 10 s.
    balances = None if usdt is None else {"USDT": Decimal(usdt), "BTC": Decimal(0), "ETH": Decimal(0)}
    sim = Simulator(seed=seed, orders_per_10s=1_000_000, symbols=symbols, balances=balances)
    await sim.start()
    refused = count_refusals(sim.limiter)
    # Each market's synthetic day of history is made on its first 24-hour statistics (~0.1 s a market): made now,
    # before the address is given, so it is not counted against the engine's start (a venue has its history).
    now = sim.clock.now_ms()
    for feed in sim.engine.feeds.values():
        feed.stats(now)
    profile = None
    if os.environ.get("BENCH_SIM_PROFILE"):  # where to write a profile of the simulator's process, at its end
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    opened: dict[Any, Any] = sim.engine._open  # the matching engine's open orders, by id (read, never written)
    mark: dict[str, float] = {}

    def listener(event: Any) -> None:
        if not opened and "clear" not in mark and type(event).__name__ == "OrderUpdate":
            mark["clear"] = time.perf_counter()

    sim.engine.listeners.append(listener)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    say({"rest_url": sim.rest_url, "ws_url": sim.ws_url, "api_key": sim.api_key, "api_secret": sim.api_secret})
    try:
        while line := await reader.readline():
            request = json.loads(line)
            if request["op"] == "arm":
                mark.clear()
                say({"ok": True})
            elif request["op"] == "clear":
                say({"clear": mark.get("clear"), "open": len(opened)})
            elif request["op"] == "limits":
                sim.limiter.reset()
                sim.limiter.weight_limit = int(request.get("weight", sim.limiter.weight_limit))
                sim.limiter.orders_per_10s = int(request.get("orders_per_10s", sim.limiter.orders_per_10s))
                refused.clear()
                say({"ok": True})
            elif request["op"] == "refusals":
                say({"refusals": len(refused), "codes": sorted(set(refused))})
            else:
                say({"error": f"unknown op {request['op']!r}"})
    finally:
        await sim.stop()
        if profile is not None:
            profile.disable()
            profile.dump_stats(os.environ["BENCH_SIM_PROFILE"])


def count_refusals(limiter: Any) -> list[int]:
    """Every request the venue refuses for rate from now on (its HTTP status), by wrapping its two counters."""
    refused: list[int] = []
    charge, count_order = limiter.charge, limiter.count_order

    def charged(weight: int, now_ms: int) -> None:
        try:
            charge(weight, now_ms)
        except LimitRefusal as exc:
            refused.append(exc.status)
            raise

    def counted(now_ms: int) -> tuple[int, int]:
        try:
            return count_order(now_ms)  # type: ignore[no-any-return]
        except VenueError as exc:
            refused.append(exc.status)
            raise

    limiter.charge, limiter.count_order = charged, counted
    return refused


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("seed", type=int, nargs="?", default=1)
    parser.add_argument("--symbols", type=int, default=0)
    parser.add_argument("--usdt", default=None)
    args = parser.parse_args()
    asyncio.run(serve(args.seed, args.symbols, args.usdt))
