"""The kill switch from the keyboard of an attached cockpit, against the in-process one, in the same run.

The engine runs on its built-in simulator in this process, serving its API on the data directory's socket, as
`cockpit run --headless` does. Two cockpits drive it under Textual's Pilot, one after the other: the in-process one
(the app owns the engine: its keys call ``execute``) and an attached one (the app is a client of the socket: the
key's command crosses it as HTTP, the events come back on the WebSocket). For each, with ``--orders`` resting orders
over 2 symbols:

- ``h``: from the key press to the engine being HALTED (``halted_in_engine``) and to the banner saying so;
- ``c``: from the key press to the simulator holding no open order (``venue_clear``).

Run: .venv/bin/python bench/tui_attached.py [--runs N] [--orders K]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import judge, ratio, summary, until
from tui_kill_switch import rest_orders

from cockpit.app import CockpitApp
from cockpit.attached import AttachedLink, Target
from engine.core.engine import Engine
from engine.kernel.commands import Resume
from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig
from engine.kernel.events import TradingState, TradingStateChanged
from widgets.banner import StatusBanner

PARAMS = {"runs": 20, "orders": 100, "settle_s": 0.3}
QUICK = {"runs": 1, "orders": 4, "settle_s": 0.05}


def settings(data_dir: Path) -> Settings:
    return Settings(
        engine=EngineConfig(data_dir=data_dir),
        strategy=StrategyConfig(enabled=False),
        risk=RiskConfig(max_orders_per_minute=100_000, max_position_pct=Decimal(100)),
        monitors=MonitorsConfig(reconcile_s=3600.0),
    )


async def drive(app: CockpitApp, engine: Engine, runs: int, orders: int, settle_s: float) -> dict[str, list[float]]:
    """Press h and c ``runs`` times on ``app``; the times from each key to what it does."""
    out: dict[str, list[float]] = {"h_in_engine": [], "h_on_banner": [], "c_venue_clear": []}
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.wait_for(engine.ready.wait(), 30)
        engine.sim.limiter.orders_per_10s = 1_000_000  # the benchmark places orders faster than Binance allows
        await until(lambda: bool(app.main_screen.query(StatusBanner)), timeout=30)
        banner = app.main_screen.query_one(StatusBanner)
        await until(lambda: "ACTIVE" in banner.render().plain, timeout=30)
        sim = engine.sim
        marks: dict[str, float] = {}
        opened = sim.engine._open  # the matching engine's open orders (read only): one look per order event
        sim.engine.listeners.append(
            lambda e: (
                marks.setdefault("clear", time.perf_counter())
                if not opened and type(e).__name__ == "OrderUpdate"
                else None
            )
        )
        app.watch(banner, "state", lambda state: marks.setdefault(state, time.perf_counter()), init=False)
        # The engine's own moment (pilot.press returns only once the app is idle, much later).
        engine.bus.add_handler(
            lambda e: (
                marks.setdefault("engine_halted", time.perf_counter())
                if isinstance(e, TradingStateChanged) and e.state == TradingState.HALTED
                else None
            )
        )
        for _ in range(runs):
            await engine.execute(Resume(reason="bench"))
            await until(lambda: "ACTIVE" in banner.render().plain, timeout=10)
            marks.clear()
            t = time.perf_counter()
            await pilot.press("h")
            await until(lambda: "engine_halted" in marks, timeout=10)
            out["h_in_engine"].append((marks["engine_halted"] - t) * 1000)
            await until(lambda: "HALTED" in marks, timeout=10)
            out["h_on_banner"].append((marks["HALTED"] - t) * 1000)
            await engine.execute(Resume(reason="bench"))
            await until(lambda: "ACTIVE" in banner.render().plain, timeout=10)
            await rest_orders(engine, orders)
            await asyncio.sleep(settle_s)  # the screen has the orders; the engine has heard from the stream
            marks.clear()
            t = time.perf_counter()
            await pilot.press("c")
            await until(lambda: "clear" in marks, timeout=30)
            out["c_venue_clear"].append((marks["clear"] - t) * 1000)
        sim.engine.listeners.pop()
    return out


async def measure(runs: int, orders: int, settle_s: float) -> dict[str, Any]:
    # In process: the app owns its engine (it starts it when it mounts).
    owned = Engine(settings(Path(tempfile.mkdtemp(prefix="cockpit-bench-"))))
    in_process = await drive(CockpitApp(owned), owned, runs, orders, settle_s)
    # Attached: the engine runs on its own (here in this process, serving its socket), the app is its client.
    data_dir = Path(tempfile.mkdtemp(prefix="cockpit-bench-"))
    engine = Engine(settings(data_dir))
    await engine.start()
    try:
        app = CockpitApp(link=AttachedLink(Target.local(data_dir)), settings=settings(data_dir))
        attached = await drive(app, engine, runs, orders, settle_s)
    finally:
        await engine.stop()
    result: dict[str, Any] = {"benchmark": "tui_attached", "runs": runs, "orders": orders, "unit": "ms"}
    for key in ("h_in_engine", "h_on_banner", "c_venue_clear"):
        inside, outside = summary(in_process[key]), summary(attached[key])
        result[key] = {"in_process": inside, "attached": outside, "ratio": ratio(outside, inside)}
    result["goal"] = "attached p50 <= 1.5x in-process (h -> HALTED, c -> venue clear)"
    result["goals"] = {
        f"attached / in-process: {key} p50": judge(attached[key], in_process[key], 1.5)
        for key in ("h_in_engine", "c_venue_clear")
    }
    return result


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
