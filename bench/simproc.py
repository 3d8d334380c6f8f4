"""The simulator in a process of its own, as a real venue is: the benchmarks' engine and floors reach it over
loopback only, and its matching, its streams and its HTTP server share no event loop with them.

It prints one JSON line (its addresses and API key), then answers JSON lines on stdin: ``{"op": "arm"}`` forgets
the last "venue clear" mark; ``{"op": "clear"}`` answers when the venue last went from some open orders to none
(``time.perf_counter()``, CLOCK_MONOTONIC: comparable across processes on Linux) and how many are open. EOF ends it.

The mark costs one dictionary look-up per order event (the open-order table's size), not a listing of the orders.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from engine.sim import Simulator


async def serve(seed: int) -> None:
    # Binance's order-rate limit lifted: the benchmarks place orders faster than 100 / 10 s.
    sim = Simulator(seed=seed, orders_per_10s=1_000_000)
    await sim.start()
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
            else:
                say({"error": f"unknown op {request['op']!r}"})
    finally:
        await sim.stop()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
