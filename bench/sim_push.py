"""What one push of the simulator's market streams costs as a run goes on: the 24-hour ticker's figures, the forming
candle of a kline push and the touch, per call, after ``--minutes`` minutes of 15-second trades (decision GATE-22).

A replay's feed holds its history (here 1,000 minutes) then every live minute, up to 14 days + 1 day (21,600): a
30-day backtest spends its second half at that cap. Each call is timed ``--calls`` times on the process's CPU clock.

Run: PYTHONPATH=TREE .venv/bin/python bench/sim_push.py [--minutes 21000] [--calls 2000]; prints one JSON object
(``PYTHONPATH=/path/to/main`` for the "before" figures: the tree imported is the one measured).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

PARAMS: dict[str, Any] = {"minutes": 21000, "calls": 2000}
QUICK: dict[str, Any] = {"minutes": 1440, "calls": 200}
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z


def per_call_us(call: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        call()
    return round((time.process_time() - start) / calls * 1e6, 2)


async def measure(minutes: int, calls: int) -> dict[str, Any]:
    import engine
    from engine.sim.candles import Candle
    from engine.sim.market import SYMBOLS, PriceFeed

    feed = PriceFeed(SYMBOLS["BTCUSDT"], seed=1)
    flat = Decimal("65000.00")
    feed.candles.preset(Candle(START_MS + i * 60_000, flat, flat + 10, flat - 10, flat) for i in range(1000))
    now = START_MS + 1000 * 60_000
    for i in range(minutes * 4):
        now += 15_000
        feed.record_trade(flat + i % 7, Decimal("0.01"), now, buyer_is_maker=i % 2 == 0)
        if i >= minutes * 4 - 1000:
            feed.stats(now)  # the ticker follows the window from a day before the end, as in a run
    return {
        "benchmark": "sim_push",
        "tree": str(engine.__file__).rsplit("/engine/", 1)[0],
        "minutes_held": len(feed.candles._rows),
        "stats_us": per_call_us(lambda: feed.stats(now), calls),
        "forming_candle_us": per_call_us(
            lambda: feed.candles.aggregate(60_000, start_ms=None, end_ms=None, limit=1, now_ms=now), calls
        ),
        "touch_us": per_call_us(feed.bid_ask, calls),
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
