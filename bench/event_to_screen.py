"""Event to screen under load: the cockpit under Textual's Pilot on its paper venue while ``--orders`` order events
(fills of ``--open-orders`` resting orders) and ``--tickers`` tickers a second are published on the engine's bus
(as a busy venue's streams would), for ``--seconds``.

- event to widget: from an event's publication to the main screen having applied it to its widgets (the tables and
  the banner; drawn at the next refresh), for tickers (which coalesce: only the newest per symbol is drawn) and for
  order events (each one is drawn), p50 / p99;
- ``h`` to HALTED: from the key press to the banner's state changing, under the same load.
The main screen's handler is wrapped here, in the benchmark process, to take the time; nothing in the cockpit
changes.

Run: .venv/bin/python bench/event_to_screen.py [--seconds S] [--orders N] [--tickers M]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import emit, summary, until
from cockpit.app import CockpitApp
from cockpit.main_screen import MainScreen
from engine.commands import Resume
from engine.config import EngineConfig, Settings, StrategyConfig
from engine.core import Engine
from engine.events import OrderCreated, OrderStatus, OrderUpdated, TickerUpdated, utcnow
from widgets.banner import StatusBanner

PARAMS = {"seconds": 10.0, "orders": 1000, "tickers": 2000, "halts": 10, "open_orders": 20}
QUICK = {"seconds": 0.5, "orders": 100, "tickers": 200, "halts": 1, "open_orders": 4}

published: dict[int, float] = {}
applied: dict[str, list[float]] = {"ticker": [], "order": []}


def wrap_screen() -> Any:
    """Time each event the main screen applies (a class-level wrapper in this process); returns the original."""
    original = MainScreen.on_engine_event

    def timed(self: MainScreen, message: Any) -> None:
        original(self, message)
        sent = published.pop(id(message.event), None)
        if sent is not None:
            kind = "ticker" if isinstance(message.event, TickerUpdated) else "order"
            applied[kind].append((time.perf_counter() - sent) * 1000)

    MainScreen.on_engine_event = timed  # type: ignore[method-assign]
    return original


async def load(engine: Engine, seconds: float, orders: int, tickers: int, pool_size: int,
               stop: asyncio.Event) -> dict[str, int]:
    """Publish order updates and tickers at the given rates until ``seconds`` pass or ``stop`` is set. The order
    events are fills of resting orders, as a busy venue's user stream reports them, one store transaction per
    turn of the loop (what one stream read brings)."""
    counts = {"orders": 0, "tickers": 0}
    base = {s: engine.portfolio.last.get(s) or Decimal(100) for s in engine.symbols}
    pool = [engine.tracker.create("BTC/USDT", "buy", "limit", Decimal("1"), base["BTC/USDT"] / 2, "strategy:bench")
            for _ in range(pool_size)]
    filled = {o.client_id: Decimal(0) for o in pool}
    start = time.perf_counter()
    while not stop.is_set() and time.perf_counter() - start < seconds:
        elapsed = time.perf_counter() - start
        while counts["tickers"] < elapsed * tickers:
            i = counts["tickers"]
            symbol = engine.symbols[i % len(engine.symbols)]
            engine.bus.publish(TickerUpdated(symbol, base[symbol] + Decimal(i % 50) / 100, None, None, utcnow()))
            counts["tickers"] += 1
        with getattr(engine.store, "batch", contextlib.nullcontext)():
            while counts["orders"] < elapsed * orders:
                cid = pool[counts["orders"] % pool_size].client_id
                filled[cid] += Decimal("0.0001")
                engine.tracker.apply(cid, OrderStatus.PARTIALLY_FILLED, source="bench", filled=filled[cid])
                counts["orders"] += 1
        await asyncio.sleep(0.001)
    return counts


async def measure(seconds: float, orders: int, tickers: int, halts: int, open_orders: int) -> dict[str, Any]:
    original = wrap_screen()
    published.clear()
    applied["ticker"].clear()
    applied["order"].clear()
    try:
        return await _measure(seconds, orders, tickers, halts, open_orders)
    finally:
        MainScreen.on_engine_event = original  # type: ignore[method-assign]


async def _measure(seconds: float, orders: int, tickers: int, halts: int, open_orders: int) -> dict[str, Any]:
    settings = Settings(engine=EngineConfig(data_dir=Path(tempfile.mkdtemp(prefix="cockpit-bench-"))),
                        strategy=StrategyConfig(enabled=False))
    engine = Engine(settings)
    app = CockpitApp(engine)
    halted: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(engine.ready.wait(), 30)
        # Events are timed at their publication on the bus, as the store and every handler see them.
        engine.bus.add_handler(lambda e: published.__setitem__(id(e), time.perf_counter())
                               if isinstance(e, (TickerUpdated, OrderCreated, OrderUpdated)) else None)
        banner = app.query_one(StatusBanner)
        marks: dict[str, float] = {}
        app.watch(banner, "state", lambda state: marks.setdefault(state, time.perf_counter()), init=False)
        stop = asyncio.Event()
        loader = asyncio.create_task(load(engine, seconds, orders, tickers, open_orders, stop))
        await asyncio.sleep(min(1.0, seconds / 4))  # the load is on
        for _ in range(halts):
            if loader.done():
                break
            await engine.execute(Resume(reason="bench"))
            await until(lambda: "ACTIVE" in marks or banner.state == "ACTIVE", timeout=10)
            marks.clear()
            t = time.perf_counter()
            await pilot.press("h")
            await until(lambda: "HALTED" in marks, timeout=10)
            halted.append((marks["HALTED"] - t) * 1000)
            await asyncio.sleep(max(0.0, min(0.3, seconds / (2 * halts))))
        counts = await loader
        await asyncio.sleep(min(0.5, seconds))  # what is queued is drawn
    return {"benchmark": "event_to_screen", "seconds": seconds, "unit": "ms",
            "load_per_s": {"order_events": orders, "tickers": tickers}, "open_orders": open_orders,
            "published": counts, "applied": {k: len(v) for k, v in applied.items()},
            "ticker_to_widget": summary(applied["ticker"]), "order_event_to_widget": summary(applied["order"]),
            "key_h_to_halted": summary(halted),
            "goal": "keep p50 ~0.6 ms, p99 7-13 ms, h -> HALTED ~4 ms (issue 13's figures with tickers only)"}


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
