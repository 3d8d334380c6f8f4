"""An entry's fill to its protective stop resting at the venue (issue 22), against one bare ccxt order round trip.

The engine buys at market with a stop; from the fill (the entry's ``FillReceived``) to the stop's acknowledgement
by the venue (its ``OrderUpdated`` to OPEN) the engine notices the position, submits ``protect`` through
``execute`` (audited), stores the stop's client id and sends it. The floor is one bare ccxt ``create_order`` of a
resting limit order on the same simulator. Each entry is closed again (``exit``) before the next. Every entry is made
twice: once with a stop alone, once with a take-profit too, whose protection is one OCO (Binance's order list: both
legs acknowledged, ``fill_to_oco_resting``).

Run: .venv/bin/python bench/venue_stops.py [--entries N]; prints one JSON object.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from benchlib import ratio, sim_settings, started, summary, until

from engine.core.engine import Engine
from engine.kernel.commands import ExitPosition, PlaceOrder
from engine.kernel.events import Event, FillReceived, OrderStatus, OrderUpdated
from engine.sim import Simulator
from engine.venue.exchange import build_exchange

PARAMS = {"entries": 40}
QUICK = {"entries": 2}
SYMBOL = "BTC/USDT"
AMOUNT = Decimal("0.0005")


async def measure(entries: int) -> dict[str, Any]:
    sim = Simulator(seed=3, orders_per_10s=1_000_000)
    await sim.start()
    sim.pause_feed()
    engine = await started(Engine(sim_settings(sim, stops_at_venue=True)))
    bare = build_exchange(
        "binance", rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=sim.api_key, api_secret=sim.api_secret
    )
    bare.enableRateLimit = False
    await bare.load_markets()
    marks: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, FillReceived) and event.fill.side == "buy":
            marks.setdefault("fill", time.perf_counter())
        elif isinstance(event, OrderUpdated) and event.order.status == OrderStatus.OPEN:
            if event.order.is_protective_stop:
                marks.setdefault("stop", time.perf_counter())
            elif event.order.is_take_profit_leg:
                marks.setdefault("take_profit", time.perf_counter())

    engine.bus.add_handler(on_event)
    fill_to_rest: list[float] = []
    fill_to_oco: list[float] = []
    floor: list[float] = []
    last = engine.portfolio.last[SYMBOL]
    try:
        for _ in range(entries):
            for take_profit, series in ((None, fill_to_rest), (last * Decimal("1.1"), fill_to_oco)):
                marks.clear()
                legs = ("stop",) if take_profit is None else ("stop", "take_profit")
                bought = await engine.execute(
                    PlaceOrder(
                        symbol=SYMBOL,
                        side="buy",
                        type="market",
                        amount=AMOUNT,
                        stop_loss=last * Decimal("0.9"),
                        take_profit=take_profit,
                    )
                )
                assert bought.ok, bought.message
                await until(lambda legs=legs: all(k in marks for k in legs) and engine.venue_stops.at_venue(SYMBOL))
                series.append((max(marks[k] for k in legs) - marks["fill"]) * 1000)
                out = await engine.execute(ExitPosition(symbol=SYMBOL, actor="bench", reason="flat for the next"))
                assert out.ok, out.message
                await until(lambda: not engine.venue_stops.resting(SYMBOL) and not engine.portfolio.positions())
            t = time.perf_counter()
            order = await bare.create_order(SYMBOL, "limit", "buy", str(AMOUNT), str(last * Decimal("0.9")))
            floor.append((time.perf_counter() - t) * 1000)
            await bare.cancel_order(order["id"], SYMBOL)
    finally:
        await bare.close()
        await engine.stop()
        await sim.stop()
    measured, oco, bare_order = summary(fill_to_rest), summary(fill_to_oco), summary(floor)
    return {
        "benchmark": "venue_stops",
        "entries": entries,
        "unit": "ms",
        "fill_to_stop_resting": measured,
        "fill_to_oco_resting": oco,
        "floor_bare_ccxt_order": bare_order,
        "ratio_vs_bare_order": ratio(measured, bare_order),
        "oco_ratio_vs_bare_order": ratio(oco, bare_order),
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
