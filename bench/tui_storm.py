"""Benchmark the cockpit's screen under a storm: order events and tickers published on the running engine's bus
at set rates, through the real bridge to the real main screen; then `h` pressed in the middle of it.

Measured:
- event -> widget: from an event's publication on the bus to the end of the screen's handling of the batch
  that carries it (its cells updated; Textual paints them at its next refresh, at most 1/60 s later);
- key -> HALTED: from `h` delivered to the app (as the terminal's driver delivers it) to the banner saying HALTED,
  while the storm goes on: up to ``--presses`` times (20 by default), evenly over the middle of the storm, each
  once the banner says ACTIVE again after trading was resumed through the engine (its ``n`` says how many);
- what was achieved: events published per second and batches drawn per second.

The engine runs on the built-in simulator with its strategy off, so the storm is the only load besides the
engine's own loops. By default the storm goes through the engine's bus, so its order events are also stored by
the engine (the store is the first handler), as real ones would be; `--screen-only` publishes it on a bus of its
own, bridged to the same screen the same way, to measure the screen apart from the store.

Run: .venv/bin/python bench/tui_storm.py [--seconds S] [--orders-per-s N] [--tickers-per-s M] [--presses P]
[--screen-only]
Prints one JSON object. Not part of the test run: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from benchlib import summary

from cockpit.app import CockpitApp
from cockpit.bridge import pump
from cockpit.main_screen import MainScreen
from engine.core.engine import Engine
from engine.kernel.bus import EventBus
from engine.kernel.commands import Resume
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import Order, OrderStatus, OrderUpdated, TickerUpdated, TradingState, utcnow
from widgets.banner import StatusBanner

TICK_S = 0.01


PARAMS = {"seconds": 10.0, "orders_per_s": 1000, "tickers_per_s": 2000, "presses": 20}  # what run_all.py runs
QUICK = {"seconds": 1.0, "orders_per_s": 200, "tickers_per_s": 400, "presses": 2}


async def measure(
    seconds: float, orders_per_s: int, tickers_per_s: int, presses: int = 20, screen_only: bool = False
) -> dict:
    return await main(seconds, orders_per_s, tickers_per_s, screen_only, presses)


async def main(
    seconds: float, orders_per_s: int, tickers_per_s: int, screen_only: bool = False, presses: int = 20
) -> dict:
    settings = Settings(engine=EngineConfig(data_dir=Path(tempfile.mkdtemp())), strategy=StrategyConfig(enabled=False))
    app = CockpitApp(Engine(settings))
    published: dict[int, float] = {}
    lags_ms: list[float] = []
    batches = 0
    handle = MainScreen.on_engine_events

    def measured(screen: MainScreen, message) -> None:
        nonlocal batches
        handle(screen, message)
        done = time.perf_counter()
        batches += 1
        for event in message.events:
            t0 = published.pop(id(event), None)
            if t0 is not None:
                lags_ms.append((done - t0) * 1000)

    MainScreen.on_engine_events = measured  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            engine = app.engine
            await asyncio.wait_for(engine.ready.wait(), 30)
            bus = engine.bus
            if screen_only:
                bus = EventBus()
                app.run_worker(pump(bus.subscribe(), app.main_screen.post_message), name="storm-bridge")
            banner = app.main_screen.query_one(StatusBanner)
            symbols = engine.symbols
            last = {s: engine.portfolio.last.get(s) or Decimal(100) for s in symbols}
            orders = [
                Order(
                    f"storm-{i}",
                    symbols[i % len(symbols)],
                    "buy",
                    "limit",
                    Decimal("1"),
                    last[symbols[i % len(symbols)]] * Decimal("0.5"),
                    OrderStatus.OPEN,
                    origin="bench",
                )
                for i in range(50)
            ]
            sent = 0
            key_to_halted_ms: list[float] = []
            # The presses, evenly over the middle 80 % of the storm (seconds from its start).
            press_at = [seconds * (0.1 + 0.8 * (k + 0.5) / presses) for k in range(presses)]
            start = time.perf_counter()
            n = 0
            while (now := time.perf_counter()) - start < seconds:
                n += 1
                for i in range(round(orders_per_s * TICK_S)):
                    o = orders[(n * 7 + i) % len(orders)]
                    filled = Decimal((n + i) % 100) / 100
                    event = OrderUpdated(replace(o, filled=filled, updated_at=utcnow()), OrderStatus.OPEN, "bench")
                    published[id(event)] = time.perf_counter()
                    bus.publish(event)
                    sent += 1
                for i in range(round(tickers_per_s * TICK_S)):
                    s = symbols[i % len(symbols)]
                    price = last[s] * (1 + Decimal((n + i) % 50 - 25) / 10000)
                    event = TickerUpdated(s, price, price, price, utcnow())
                    published[id(event)] = time.perf_counter()
                    bus.publish(event)
                    sent += 1
                # Pressed only while the banner says ACTIVE again (after the last resume): pressed on a banner
                # still saying HALTED, the wait below would end at once and time nothing.
                if press_at and now - start > press_at[0] and banner.state == TradingState.ACTIVE.value:
                    press_at.pop(0)
                    t = time.perf_counter()
                    app.simulate_key("h")  # as the terminal delivers it (Pilot.press would also wait for idle)
                    while banner.state != TradingState.HALTED.value:
                        await asyncio.sleep(0.001)
                    key_to_halted_ms.append((time.perf_counter() - t) * 1000)
                    await engine.execute(Resume(reason="bench"))
                await asyncio.sleep(max(0.0, start + n * TICK_S - time.perf_counter()))
            elapsed = time.perf_counter() - start
            await pilot.pause()
            coalesced = sum(s.coalesced for s in bus._subs)
    finally:
        MainScreen.on_engine_events = handle  # type: ignore[method-assign]
    return {
        "benchmark": "tui_storm",
        "path": "screen only (a bus of its own)" if screen_only else "engine bus (stored, then drawn)",
        "seconds": round(elapsed, 2),
        "target": {"order_events_per_s": orders_per_s, "tickers_per_s": tickers_per_s},
        "achieved_events_per_s": round(sent / elapsed),
        "batches_per_s": round(batches / elapsed, 1),
        "events_drawn": len(lags_ms),
        "events_coalesced_before_drawing": coalesced,
        "event_to_widget_ms": summary(lags_ms),
        "key_to_halted_ms": summary(key_to_halted_ms),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--orders-per-s", type=int, default=1000)
    parser.add_argument("--tickers-per-s", type=int, default=2000)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--screen-only", action="store_true", help="the storm on a bus of its own, not stored")
    args = parser.parse_args()
    result = main(args.seconds, args.orders_per_s, args.tickers_per_s, args.screen_only, args.presses)
    print(json.dumps(asyncio.run(result)))
