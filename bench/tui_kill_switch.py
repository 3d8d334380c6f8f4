"""The kill switch from the keyboard: the cockpit under Textual's Pilot, on its built-in paper venue (the simulator
inside the process, as ``cockpit`` runs it), with ``--orders`` resting orders over 2 symbols.

- ``c`` (cancel all): from the key press to the command's audit record (``done``: the engine listed the venue's
  open orders again and saw none), and to the simulator holding no open order (``venue_clear``, for information:
  an event inside the simulator, which no client sees; one look at its open-order table per order event).
- ``h`` (halt): from the key press to the banner saying HALTED.
The floor does the same work and stops at the same point as ``done``, in a process with no engine in it
(``bench/floor.py``): a bare ccxt client's ``DELETE openOrders`` for the same number of its own orders (one per
symbol, in parallel), then the venue-wide listing that confirms none is left; on the same simulator, in the same
run. The ratio is judged with its spread (``benchlib.judge``).

Run: .venv/bin/python bench/tui_kill_switch.py [--runs N] [--orders K]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import Child, judge, summary, until

from cockpit.app import CockpitApp
from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder, Resume
from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig
from engine.kernel.events import CommandAudited
from widgets.banner import StatusBanner

PARAMS = {"runs": 20, "orders": 100, "settle_s": 0.2}
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
    clear: list[float] = []
    done: list[float] = []
    floor: list[float] = []
    floor_deletes: list[float] = []
    halted: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(engine.ready.wait(), 30)
        sim = engine.sim
        sim.limiter.orders_per_10s = 1_000_000  # the benchmark places orders faster than Binance allows
        audits: dict[str, float] = {}
        engine.bus.add_handler(
            lambda e: audits.setdefault(e.command, time.perf_counter()) if isinstance(e, CommandAudited) else None
        )
        keys = {"rest_url": sim.rest_url, "ws_url": sim.ws_url, "api_key": sim.api_key, "api_secret": sim.api_secret}
        bare = Child("floor.py", env={"BENCH_VENUE": json.dumps(keys)})
        await bare.start()
        banner = app.query_one(StatusBanner)
        # Times are taken where things happen (pilot.press returns only once the app is idle again): the simulator's
        # last cancel, the audit record, the banner's state attribute changing (drawn at the next refresh).
        marks: dict[str, float] = {}
        opened = sim.engine._open  # the matching engine's open orders (read only)
        sim.engine.listeners.append(
            lambda e: (
                marks.setdefault("clear", time.perf_counter())
                if not opened and type(e).__name__ == "OrderUpdate"
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
                # the floor: the same number of resting orders, cancelled by bare ccxt in its own process
                answer = await bare.ask(op="cancel", symbols=list(SYMBOLS), orders=orders, settle_s=settle_s)
                assert answer["left"] == 0, answer
                floor.append(answer["confirmed"])
                floor_deletes.append(answer["deletes"])
        finally:
            await bare.stop()
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
        "floor_bare_ccxt_deletes_and_listing": s_floor,
        "floor_bare_ccxt_deletes": summary(floor_deletes),
        "goals": {
            "key c -> done p50": judge(done, floor, 1.5),
            "key c -> done p99": judge(done, floor, 3.0, "p99"),
        },
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
