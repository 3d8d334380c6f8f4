"""The kill switch from the keyboard: the cockpit under Textual's Pilot, on its built-in paper venue (the simulator
inside the process, as ``cockpit`` runs it), with ``--orders`` resting orders over 2 symbols.

- ``c`` (cancel all): from the key press to the simulator holding no open order (``venue_clear``: confirmed at the
  venue) and to the command's audit record (``done``: the engine listed the venue's open orders again and saw none).
- ``h`` (halt): from the key press to the banner saying HALTED.
The floor is a bare ccxt client's ``DELETE openOrders`` for the same orders (its own, one per symbol, in parallel)
on the same simulator, in the same run.

Run: .venv/bin/python bench/tui_kill_switch.py [--runs N] [--orders K]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import ratio, summary, until

from cockpit.app import CockpitApp
from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder, Resume
from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig
from engine.kernel.events import CommandAudited
from engine.venue.exchange import build_exchange
from widgets.banner import StatusBanner

PARAMS = {"runs": 10, "orders": 100, "settle_s": 0.2}
QUICK = {"runs": 1, "orders": 4, "settle_s": 0.02}
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def settings() -> Settings:
    return Settings(
        engine=EngineConfig(data_dir=Path(tempfile.mkdtemp(prefix="cockpit-bench-"))),
        strategy=StrategyConfig(enabled=False),
        risk=RiskConfig(max_orders_per_minute=100_000, max_position_pct=Decimal(100)),
        monitors=MonitorsConfig(reconcile_s=3600.0),
    )


async def rest_orders(engine: Engine, n: int) -> None:
    for k, symbol in enumerate(SYMBOLS):
        last = engine.portfolio.last[symbol]
        amount = Decimal("0.0002") if symbol.startswith("BTC") else Decimal("0.005")
        for i in range(n // 2 + (k < n % 2)):
            price = last * (Decimal("0.90") - Decimal(i) / 2000)
            result = await engine.execute(
                PlaceOrder(
                    symbol=symbol,
                    side="buy",
                    type="limit",
                    amount=amount,
                    price=price,
                    stop_loss=price * Decimal("0.9"),
                    reason="bench",
                )
            )
            assert result.ok, result.message


async def measure(runs: int, orders: int, settle_s: float) -> dict[str, Any]:
    engine = Engine(settings())
    app = CockpitApp(engine)
    clear, done, floor, halted = [], [], [], []
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(engine.ready.wait(), 30)
        sim = engine.sim
        sim.limiter.orders_per_10s = 1_000_000  # the benchmark places orders faster than Binance allows
        audits: dict[str, float] = {}
        engine.bus.add_handler(
            lambda e: audits.setdefault(e.command, time.perf_counter()) if isinstance(e, CommandAudited) else None
        )
        bare = build_exchange(
            "binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            rate_limit=False,
        )
        await bare.load_markets()
        banner = app.query_one(StatusBanner)
        # Times are taken where things happen (pilot.press returns only once the app is idle again): the simulator's
        # last cancel, the audit record, the banner's state attribute changing (drawn at the next refresh).
        marks: dict[str, float] = {}
        sim.engine.listeners.append(
            lambda e: (
                marks.setdefault("clear", time.perf_counter())
                if type(e).__name__ == "OrderUpdate" and not sim.open_orders()
                else None
            )
        )
        app.watch(banner, "state", lambda state: marks.setdefault(state, time.perf_counter()), init=False)
        try:
            for _ in range(runs):
                await engine.execute(Resume(reason="bench"))
                await until(lambda: "ACTIVE" in banner.render().plain)
                await rest_orders(engine, orders)
                await asyncio.sleep(settle_s)  # the screen has drawn the orders; the stream has told the engine
                audits.clear()
                marks.clear()
                t = time.perf_counter()
                await pilot.press("c")
                await until(lambda: "clear" in marks, timeout=30)
                clear.append((marks["clear"] - t) * 1000)
                await until(lambda: "cancel-all" in audits, timeout=30)
                done.append((audits["cancel-all"] - t) * 1000)
                # halt on the keyboard
                await engine.execute(Resume(reason="bench"))
                await until(lambda: "ACTIVE" in banner.render().plain)
                marks.clear()
                t = time.perf_counter()
                await pilot.press("h")
                await until(lambda: "HALTED" in marks)
                halted.append((marks["HALTED"] - t) * 1000)
                # the floor: the same number of resting orders, cancelled by bare ccxt
                for k, symbol in enumerate(SYMBOLS):
                    last = float(engine.portfolio.last[symbol])
                    amount = "0.0002" if symbol.startswith("BTC") else "0.005"
                    for i in range(orders // 2 + (k < orders % 2)):
                        await bare.create_order(
                            symbol, "limit", "buy", amount, bare.price_to_precision(symbol, last * (0.9 - i / 2000))
                        )
                await asyncio.sleep(settle_s)
                t = time.perf_counter()
                await asyncio.gather(*(bare.cancel_all_orders(s) for s in SYMBOLS))
                floor.append((time.perf_counter() - t) * 1000)
        finally:
            await bare.close()
    s_clear, s_done, s_floor = summary(clear), summary(done), summary(floor)
    return {
        "benchmark": "tui_kill_switch",
        "runs": runs,
        "orders": orders,
        "symbols": len(SYMBOLS),
        "unit": "ms",
        "key_c_to_venue_clear": s_clear,
        "key_c_to_done": s_done,
        "key_h_to_halted_on_screen": summary(halted),
        "floor_bare_ccxt_deletes": s_floor,
        "ratio_venue_clear": ratio(s_clear, s_floor),
        "ratio_done": ratio(s_done, s_floor),
        "goal": "p50 <= 25 ms, p99 <= 100 ms",
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
