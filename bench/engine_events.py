"""Engine events per second with no network: venue reports and prices through the engine's own path.

An engine is started on a data directory with a venue that does not answer (it keeps trying in the background),
then fed what the venue would say, as the stream handlers feed it:
- order reports: each one moves an order OPEN then CANCELED through the tracker's transition table, the bus and
  every handler (the store on disk, trades.log, holdings, metrics, incidents, a front end's queue), one report per
  call (``single``: each its own store transaction) and ``--batch`` per call (``batch``: one stream read);
- tickers: prices through ``VenueSync.on_ticker`` (portfolio, stop-losses, the front end's coalescing queue).
The floor is the tracker alone on a bus with no handler (the transition table and the event records).

Run: .venv/bin/python bench/engine_events.py [--events N] [--batch B]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import ratio

from engine.core.engine import Engine
from engine.kernel.bus import EventBus
from engine.kernel.config import EngineConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import OrderStatus
from engine.trading.orders import OrderTracker
from engine.venue.adapter import OrderReport

PARAMS = {"events": 20_000, "batch": 100}
QUICK = {"events": 200, "batch": 50}


def reports(orders: list[Any], status: OrderStatus) -> list[OrderReport]:
    return [
        OrderReport(o.client_id, str(i), o.symbol, o.side, "limit", status, o.amount, Decimal(0), o.price, None)
        for i, o in enumerate(orders)
    ]


async def measure(events: int, batch: int) -> dict[str, Any]:
    settings = Settings(
        engine=EngineConfig(data_dir=Path(tempfile.mkdtemp(prefix="cockpit-bench-"))),
        venue=VenueConfig(exchange="binance", rest_url="http://127.0.0.1:9"),
        strategy=StrategyConfig(enabled=False),
    )
    engine = Engine(settings)
    await engine.start()
    front_end = engine.bus.subscribe()  # a front end's queue, drained as the TUI's bridge would
    out: dict[str, Any] = {"benchmark": "engine_events", "events": events}
    try:
        n = max(2, events // 2)
        for name, per_call in (("single", 1), ("batch", batch)):
            orders = [
                engine.tracker.create(
                    "BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal(50_000 + i), "strategy:bench"
                )
                for i in range(n)
            ]
            while front_end.get_nowait() is not None:
                pass
            todo = reports(orders, OrderStatus.OPEN) + reports(orders, OrderStatus.CANCELED)
            start = time.perf_counter()
            apply = getattr(engine.execution, "apply_reports", None)  # one stream read (before issue 13: one by one)
            for i in range(0, len(todo), per_call):
                if apply is not None:
                    apply(todo[i : i + per_call], "stream")
                else:
                    for report in todo[i : i + per_call]:
                        engine.execution.apply_report(report, "stream")
                while front_end.get_nowait() is not None:
                    pass
            seconds = time.perf_counter() - start
            out[f"order_reports_{name}"] = {
                "per_s": round(len(todo) / seconds),
                "us_each": round(seconds / len(todo) * 1e6, 1),
                "per_call": per_call,
            }
            await asyncio.sleep(0)  # trades.log lines are written when the loop turns
        tick = {"last": 50_000.0, "bid": 49_999.0, "ask": 50_001.0, "timestamp": None}
        start = time.perf_counter()
        for i in range(events):
            engine.sync.on_ticker("BTC/USDT" if i % 2 else "ETH/USDT", {**tick, "last": 50_000.0 + i % 100})
            if i % 100 == 0:
                while front_end.get_nowait() is not None:
                    pass
        seconds = time.perf_counter() - start
        out["tickers"] = {"per_s": round(events / seconds), "us_each": round(seconds / events * 1e6, 1)}
    finally:
        await engine.stop()
    # Floor: the transition table and event records alone.
    tracker = OrderTracker(EventBus())
    orders = [
        tracker.create("BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal(50_000 + i), "bench")
        for i in range(max(2, events // 2))
    ]
    todo = reports(orders, OrderStatus.OPEN) + reports(orders, OrderStatus.CANCELED)
    start = time.perf_counter()
    for r in todo:
        tracker.apply(r.client_id, r.status, source="stream", filled=r.filled, venue_id=r.venue_id)
    seconds = time.perf_counter() - start
    out["floor_tracker_alone"] = {"per_s": round(len(todo) / seconds), "us_each": round(seconds / len(todo) * 1e6, 1)}
    out["ratio_batch_vs_floor"] = ratio(
        {"median": out["order_reports_batch"]["us_each"]}, {"median": out["floor_tracker_alone"]["us_each"]}
    )
    return out


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
