"""How the engine's cost grows with the number of symbols it trades (issue 26): 1, 10, 50 and 100 synthetic markets
(``SYM01/USDT``...), each on a fresh simulator in a process of its own (``bench/simproc.py``) and a fresh engine in
a process of its own (this script run with ``--child N``), with the ladder on every symbol.

For each count, at steady state (the ladder resting an order on every symbol):
- ``idle_cpu_pct``: the engine process's CPU over ``--idle-s`` seconds, in % of one core (headless engine);
- ``rss_mb``: its resident memory then;
- ``startup_s``: from building the engine to ready and to "all symbols live" (a ticker from every symbol's stream);
- ``reconcile``: one reconciliation pass (``reconcile_all``): its time and the request weight it sent;
- ``cancel_all``: cancel-all of ``--orders`` resting orders per symbol through the engine's one command path, from
  the command to its answer, against its floor in the same run (``bench/floor.py``: a bare ccxt client's
  ``DELETE openOrders`` of each symbol in parallel, then the listing that confirms none is left), both under the
  venue's real limits (6,000 weight a minute, 100 orders per 10 s: lifted only while the orders are placed), with
  the venue's rate refusals (429 / 418) counted; judged on the pairs' own ratios (each engine run and its floor's
  right after it, ``benchlib.judge_paired``), the ratio of medians beside it, and the pass's profile per phase
  (``KillSwitch.marks``, ms from the command: first DELETE, cancels answered, listing confirmed, answered; and
  ``caught_up``, after the answer: the cancels' reports applied and the user stream's events held meanwhile handed
  on, decision BEN-09);
- ``close_all``: close-all of one position per symbol (a market buy of each first), against the floor's balance
  listing plus a market sell of each in parallel and the balances read back (close-all's verification);
- with a screen (the cockpit with its engine, as a headless Textual app, in a second engine process on the same
  venue): ``first_frame_s`` and ``all_live_s`` from the app's start, ``event_to_screen_ms`` (a ticker's publication
  on the bus to the end of the main screen's handling of the batch that carries it, as bench/tui_storm.py) and the
  process's CPU with its screen.

``growth`` gives each row at 100 symbols over the same at 10 (linear: at most 10x). The goals at 50 symbols: idle
CPU <= 15 % of one core, RSS <= 300 MB, event -> screen p99 <= 100 ms, cancel-all <= 1.5x its floor with no
refusal for rate, growth no worse than linear; ratios judged with their spread (``benchlib.judge``, cancel-all's
paired: ``benchlib.judge_paired``).

``--engines K`` (K > 0) measures instead K engines side by side on one host, each ``cockpit run --headless`` with
its own data directory and its own built-in simulator (its own account), every one on ``--engine-symbols`` symbols
with the ladder: their combined idle CPU and RSS.

Run: .venv/bin/python bench/scale.py [--counts 1,10,50,100] [--runs R] [--orders K] [--idle-s S] [--engines K]
[--quick]; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import HERE, Child, VenueAddress, emit, judge, judge_paired, sim_settings, summary, until

PARAMS: dict[str, Any] = {
    "counts": "1,10,50,100",
    "runs": 5,
    "orders": 20,
    "idle_s": 10.0,
    "engines": 0,
    "step_s": 3.0,
    "in_process": 0,
    "screen_only": 0,
}
# A smoke run of a few seconds: one small count, measured in this process, the ladder stepping fast.
QUICK: dict[str, Any] = {
    "counts": "2",
    "runs": 1,
    "orders": 1,
    "idle_s": 0.3,
    "engines": 0,
    "step_s": 0.2,
    "in_process": 1,
    "screen_only": 0,
}
GOALS = {"idle_cpu_pct": 15.0, "rss_mb": 300.0, "event_to_screen_p99_ms": 100.0, "cancel_all_vs_floor": 1.5}
REAL_LIMITS = {"weight": 6000, "orders_per_10s": 100}  # Binance spot's
LIFTED = {"weight": 10_000_000, "orders_per_10s": 10_000_000}  # while the benchmark places its own orders
USDT = "10000000"


def symbols_for(n: int) -> tuple[str, ...]:
    return tuple(f"SYM{k:02d}/USDT" for k in range(1, n + 1))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process (and its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engine_settings(address: VenueAddress, n: int, data_dir: Path, step_s: float) -> Any:
    from engine.kernel.config import LadderConfig

    settings = sim_settings(address, data_dir, strategy=True, max_concurrent_positions=n + 2)
    ladder = LadderConfig(order_quote=Decimal(10), max_holding_quote=Decimal(30))
    return settings.model_copy(
        update={
            "venue": settings.venue.model_copy(update={"symbols": symbols_for(n)}),
            "strategy": settings.strategy.model_copy(update={"ladder": ladder, "interval_s": step_s}),
        }
    )


def all_live(engine: Any) -> bool:
    return all(f"ticker {s}" in engine.sync.last_event for s in engine.symbols)


def steady(engine: Any) -> bool:
    """The ladder rests an order (or holds a position) on every symbol."""
    busy = {o.symbol for o in engine.tracker.open_orders()} | {p.symbol for p in engine.portfolio.positions()}
    return all(s in busy for s in engine.symbols)


# ------------------------------------------------------------------ one count of symbols, in a child process


def handed_on(engine: Any) -> bool:
    """The user stream holds nothing back (decision BEN-09)."""
    hold = engine.link.require().user_hold
    return not hold.held and not hold.holders


async def bounded(work: Any, at_once: int = 4) -> None:
    """The benchmark's own orders, a few symbols at a time: each order is committed to disk before it leaves
    (``synchronous=FULL``), and fifty placers at once kept the engine's loop in commits long enough for its
    requests to time out (10 s) and a monitor to halt it; an operator or a strategy does not place 1,000 at once."""
    gate = asyncio.Semaphore(at_once)

    async def one(coro: Any) -> None:
        async with gate:
            await coro

    await asyncio.gather(*(one(c) for c in work))


def step(venue: Any, symbol: str) -> Decimal:
    return Decimal(str(venue.market(symbol)["precision"]["amount"]))


async def place(engine: Any, symbol: str, n: int) -> None:
    from engine.kernel.commands import PlaceOrder

    venue = engine.link.require()
    last = engine.portfolio.last[symbol]
    for i in range(n):
        price = venue.price_to_precision(symbol, last * (Decimal("0.90") - Decimal(i) / 2000))
        amount = venue.amount_to_precision(symbol, Decimal(6) / price) + step(venue, symbol)
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
        assert result.ok, f"{symbol}: {result.message}"


async def buy(engine: Any, symbol: str) -> None:
    from engine.kernel.commands import PlaceOrder

    venue = engine.link.require()
    last = engine.portfolio.last[symbol]
    amount = venue.amount_to_precision(symbol, Decimal(12) / last) + step(venue, symbol)
    result = await engine.execute(
        PlaceOrder(
            symbol=symbol, side="buy", type="market", amount=amount, stop_loss=last * Decimal("0.5"), reason="bench"
        )
    )
    assert result.ok, f"{symbol}: {result.message}"


async def headless(
    n: int, sim: Child, address: VenueAddress, runs: int, orders: int, idle_s: float, step_s: float
) -> dict[str, Any]:
    """The engine alone: start, idle, one reconciliation, cancel-all and close-all against their floors."""
    from engine.core.engine import Engine
    from engine.kernel.commands import CancelAll, CloseAll, Resume

    symbols = list(symbols_for(n))
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    engine = Engine(engine_settings(address, n, Path(tempfile.mkdtemp(prefix="cockpit-scale-")), step_s))
    floor = Child("floor.py", env={"BENCH_VENUE": json.dumps(address.keys())})
    floor_started = asyncio.ensure_future(floor.start())  # its own process: started meanwhile
    await engine.start()
    await asyncio.wait_for(engine.ready.wait(), 120)
    ready = time.perf_counter() - t0
    await until(lambda: all_live(engine), timeout=120, interval=0.01)
    out["startup_s"] = {"ready": round(ready, 3), "all_symbols_live": round(time.perf_counter() - t0, 3)}
    await floor_started
    try:
        await until(lambda: steady(engine), timeout=120, interval=0.05)
        await asyncio.sleep(min(idle_s, 2.0))  # the first steps' orders settle
        c0, w0 = cpu_s(), time.perf_counter()
        await asyncio.sleep(idle_s)
        out["idle_cpu_pct"] = round((cpu_s() - c0) / (time.perf_counter() - w0) * 100, 1)
        out["rss_mb"] = rss_mb()
        out["streams"] = {
            "market_connections": len(getattr(engine.link.require().ex, "clients", {}) or {}),
        }
        # One reconciliation pass: its time and the weight it sent (every request's weight, as the budget counts).
        budget = engine.link.require().health.budget
        acquire, sent = budget.acquire, [0.0]

        async def counted(weight: float, urgent: bool = False) -> int:
            sent[0] += weight
            return await acquire(weight, urgent)

        budget.acquire = counted
        t = time.perf_counter()
        await engine.sync.reconcile_all()
        out["reconcile"] = {"ms": round((time.perf_counter() - t) * 1000, 1), "weight": round(sent[0])}
        budget.acquire = acquire
        # The kill switch: periodic reconciliation set aside, so the floor's own orders are not adopted meanwhile.
        engine.sync.monitors_cfg = engine.sync.monitors_cfg.model_copy(update={"reconcile_s": 3600.0})
        times: dict[str, list[float]] = {k: [] for k in ("cancel", "floor_cancel", "close", "floor_close")}
        refusals: dict[str, int] = {"cancel": 0, "floor_cancel": 0, "close": 0, "floor_close": 0}
        phases: dict[str, list[float]] = {}
        for _ in range(runs):
            await sim.ask(op="limits", **LIFTED)
            await engine.execute(Resume(reason="bench"))
            await bounded(place(engine, s, orders) for s in symbols)
            await sim.ask(op="limits", **REAL_LIMITS)
            t = time.perf_counter()
            result = await engine.execute(CancelAll(reason="bench"))
            times["cancel"].append((time.perf_counter() - t) * 1000)
            assert result.ok, result.message
            for phase, at in engine.kill_switch.marks.items():  # the pass's profile, ms from the command
                phases.setdefault(phase, []).append((at - t) * 1000)
            # What follows the answer (decision BEN-09): the cancels' reports applied and the user stream's events
            # held meanwhile handed on; not in the answer's time, but not free either.
            await until(lambda: handed_on(engine), timeout=30, interval=0.001)
            phases.setdefault("caught_up", []).append((time.perf_counter() - t) * 1000)
            refusals["cancel"] += (await sim.ask(op="refusals"))["refusals"]
            await sim.ask(op="limits", **LIFTED)
            await floor.ask(op="rest", symbols=symbols, per_symbol=orders)
            await sim.ask(op="limits", **REAL_LIMITS)
            answer = await floor.ask(op="cancel_rested", symbols=symbols)
            assert answer["left"] == 0, answer
            times["floor_cancel"].append(answer["confirmed"])
            refusals["floor_cancel"] += (await sim.ask(op="refusals"))["refusals"]
            # close-all of one position per symbol
            await sim.ask(op="limits", **LIFTED)
            await engine.execute(Resume(reason="bench"))
            await bounded(buy(engine, s) for s in symbols)
            await engine.execute(CancelAll(reason="bench"))  # the ladder's orders out of the way, untimed
            await asyncio.sleep(0.05)
            await sim.ask(op="limits", **REAL_LIMITS)
            t = time.perf_counter()
            result = await engine.execute(CloseAll(reason="bench"))
            times["close"].append((time.perf_counter() - t) * 1000)
            assert result.ok and f"closed {n} position(s)" in result.message, result.message
            refusals["close"] += (await sim.ask(op="refusals"))["refusals"]
            await sim.ask(op="limits", **LIFTED)
            await floor.ask(op="buy_each", symbols=symbols)
            await sim.ask(op="limits", **REAL_LIMITS)
            answer = await floor.ask(op="sell_each", symbols=symbols)
            times["floor_close"].append(answer["verified"])
            refusals["floor_close"] += (await sim.ask(op="refusals"))["refusals"]
        out["cancel_all"] = {
            "orders": orders * n,
            "done_ms": summary(times["cancel"]),
            "floor_ms": summary(times["floor_cancel"]),
            # Each engine run and its floor's right after it: judged on the pairs' own ratios (decision BEN-08).
            "vs_floor": judge_paired(times["cancel"], times["floor_cancel"], GOALS["cancel_all_vs_floor"]),
            "vs_floor_unpaired": judge(times["cancel"], times["floor_cancel"], GOALS["cancel_all_vs_floor"]),
            "phases": {p: summary(v) for p, v in phases.items()},
            "refusals_for_rate": refusals["cancel"],
            "floor_refusals_for_rate": refusals["floor_cancel"],
        }
        out["close_all"] = {
            "positions": n,
            "done_ms": summary(times["close"]),
            "floor_ms": summary(times["floor_close"]),
            "vs_floor": judge(times["close"], times["floor_close"], GOALS["cancel_all_vs_floor"]),
            "refusals_for_rate": refusals["close"],
        }
    finally:
        await floor.stop()
        await engine.stop()
    return out


async def with_screen(n: int, address: VenueAddress, idle_s: float, step_s: float) -> dict[str, Any]:
    """The cockpit with its engine (a headless Textual app): first frame, all symbols live, event -> screen."""
    from cockpit.app import CockpitApp
    from cockpit.main_screen import MainScreen
    from engine.core.engine import Engine
    from engine.kernel.events import TickerUpdated
    from widgets.banner import StatusBanner

    published: dict[int, float] = {}
    lags: list[float] = []
    handle = MainScreen.on_engine_events

    def measured(screen: Any, message: Any) -> None:
        handle(screen, message)
        done = time.perf_counter()
        for event in message.events:
            t0 = published.pop(id(event), None)
            if t0 is not None:
                lags.append((done - t0) * 1000)

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    engine = Engine(engine_settings(address, n, Path(tempfile.mkdtemp(prefix="cockpit-scale-")), step_s))
    app = CockpitApp(engine)
    MainScreen.on_engine_events = measured  # type: ignore[method-assign]
    try:
        async with app.run_test(size=(120, 40)):
            await until(lambda: bool(app.main_screen.query(StatusBanner)), timeout=60, interval=0.005)
            out["first_frame_s"] = round(time.perf_counter() - t0, 3)
            await until(lambda: engine.ready.is_set() and all_live(engine), timeout=120, interval=0.01)
            out["all_live_s"] = round(time.perf_counter() - t0, 3)
            await until(lambda: steady(engine), timeout=120, interval=0.05)

            def stamp(event: Any) -> None:
                if isinstance(event, TickerUpdated):
                    published[id(event)] = time.perf_counter()

            engine.bus.add_handler(stamp)
            c0, w0 = cpu_s(), time.perf_counter()
            await asyncio.sleep(max(idle_s, 0.5))
            out["cpu_pct_with_screen"] = round((cpu_s() - c0) / (time.perf_counter() - w0) * 100, 1)
            out["rss_mb_with_screen"] = rss_mb()
            out["event_to_screen_ms"] = summary(lags)
    finally:
        MainScreen.on_engine_events = handle  # type: ignore[method-assign]
    return out


async def child(n: int, runs: int, orders: int, idle_s: float, step_s: float, screen_only: int = 0) -> dict[str, Any]:
    """``screen_only``: the cockpit with its engine alone (the screen's rows), the engine's own rows left out."""
    sim = Child("simproc.py", "1", "--symbols", str(n), "--usdt", USDT)
    address = VenueAddress(**await sim.start())
    try:
        out: dict[str, Any] = {"symbols": n}
        if not screen_only:
            out.update(await headless(n, sim, address, runs, orders, idle_s, step_s))
        out.update(await with_screen(n, address, idle_s, step_s))
        return out
    finally:
        await sim.stop()


# ------------------------------------------------------------------ several engines on one host


async def engines_side_by_side(k: int, n: int, idle_s: float) -> dict[str, Any]:
    """``k`` × ``cockpit run --headless`` (each its own data directory and built-in simulator), ``n`` symbols each."""
    root = Path(tempfile.mkdtemp(prefix="cockpit-engines-"))
    procs: list[asyncio.subprocess.Process] = []
    symbols = ", ".join(f'"{s}"' for s in symbols_for(n))
    try:
        for i in range(k):
            home = root / f"engine{i + 1}"
            home.mkdir()
            (home / "config.toml").write_text(
                f'[venue]\nsymbols = [{symbols}]\n\n[engine]\ndata_dir = "{home / "data"}"\n\n'
                f"[risk]\nmax_concurrent_positions = {n + 2}\nstops_at_venue = false\n\n"
                '[strategy.ladder]\norder_quote = "10"\nmax_holding_quote = "30"\n'
            )
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    "from cockpit.cli import main; main()",
                    "run",
                    "--headless",
                    cwd=home,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        t0 = time.perf_counter()
        beacons = [root / f"engine{i + 1}" / "data" / "cockpit.sock" for i in range(k)]
        while not all(b.exists() for b in beacons):
            if time.perf_counter() - t0 > 120 or any(p.returncode is not None for p in procs):
                raise RuntimeError("an engine did not start")
            await asyncio.sleep(0.1)
        await asyncio.sleep(max(5.0, idle_s / 2))  # streams up and the ladder resting its orders
        c0 = sum(cpu_s(p.pid) for p in procs)
        w0 = time.perf_counter()
        await asyncio.sleep(idle_s)
        cpu = [(cpu_s(p.pid)) for p in procs]
        wall = time.perf_counter() - w0
        return {
            "engines": k,
            "symbols_each": n,
            "combined_idle_cpu_pct": round((sum(cpu) - c0) / wall * 100, 1),
            "combined_rss_mb": round(sum(rss_mb(p.pid) for p in procs), 1),
            "rss_mb_each": [rss_mb(p.pid) for p in procs],
            "note": "each engine runs its own simulator in its process (cockpit's built-in paper venue)",
            "one_cockpit_watching_all": await watch_all([root / f"engine{i + 1}" for i in range(k)]),
        }
    finally:
        for p in procs:
            if p.returncode is None:
                p.terminate()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 20)
            except TimeoutError:
                p.kill()
                await p.wait()


async def watch_all(homes: list[Path]) -> dict[str, Any]:
    """One cockpit (a headless Textual app) watching every engine through ``[[remote]]`` entries (their data
    directories' sockets), as `cockpit` builds it: how long until its engine list names each engine with its state."""
    from cockpit.app import CockpitApp
    from cockpit.fleet import FleetLink, watched
    from engine.kernel.config import EngineConfig, RemoteEngine, Settings
    from widgets.engines import EngineStrip

    settings = Settings(
        engine=EngineConfig(data_dir=homes[0] / "screen"),
        remote=tuple(RemoteEngine(name=home.name, data_dir=home / "data") for home in homes),
    )
    app = CockpitApp(link=FleetLink(watched(settings.remote, [], [], None)), settings=settings)
    t0 = time.perf_counter()
    async with app.run_test(size=(120, 40)):

        def listed() -> str:
            strips = list(app.main_screen.query(EngineStrip))
            return strips[0].render().plain if strips else ""

        def all_known() -> bool:
            text = listed()
            return all(h.name in text for h in homes) and text.count("ACTIVE") == len(homes)

        await until(all_known, timeout=30, interval=0.05)
        return {"engines_listed_s": round(time.perf_counter() - t0, 2), "engine_list": listed()}


# ------------------------------------------------------------------ the whole run


async def run_child(
    n: int, runs: int, orders: int, idle_s: float, step_s: float, screen_only: int = 0
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "scale.py"),
        "--child",
        str(n),
        "--runs",
        str(runs),
        "--orders",
        str(orders),
        "--idle-s",
        str(idle_s),
        "--step-s",
        str(step_s),
        "--screen-only",
        str(screen_only),
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 24,
    )
    stdout, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"scale.py --child {n} ended with exit {proc.returncode}")
    return dict(json.loads(stdout.decode().strip().splitlines()[-1]))


ROWS = {
    "idle CPU % of one core": lambda r: r["idle_cpu_pct"],
    "RSS MB": lambda r: r["rss_mb"],
    "event -> screen p99 ms": lambda r: r["event_to_screen_ms"].get("p99"),
    "reconciliation pass ms": lambda r: r["reconcile"]["ms"],
    "reconciliation pass weight": lambda r: r["reconcile"]["weight"],
    "startup to first frame s": lambda r: r["first_frame_s"],
    "startup to all symbols live s": lambda r: r["startup_s"]["all_symbols_live"],
    "cancel-all ms (median)": lambda r: r["cancel_all"]["done_ms"].get("median"),
    "cancel-all floor ms (median)": lambda r: r["cancel_all"]["floor_ms"].get("median"),
    "cancel-all / floor": lambda r: r["cancel_all"]["vs_floor"]["ratio"],
    "close-all ms (median)": lambda r: r["close_all"]["done_ms"].get("median"),
    "close-all floor ms (median)": lambda r: r["close_all"]["floor_ms"].get("median"),
    "close-all / floor": lambda r: r["close_all"]["vs_floor"]["ratio"],
}
# The floors are the venue's own cost (a bare client on the same simulator): their growth is shown, not judged. The
# kill switch's rows do work that grows with the symbols (20 orders, one position each): their growth is judged on
# the ratio to their floor in the same run (the engine's share), not on time alone.
NOT_JUDGED = {
    "cancel-all floor ms (median)",
    "close-all floor ms (median)",
    "cancel-all ms (median)",
    "close-all ms (median)",
}
SPREADS = {
    "cancel-all / floor": lambda r: r["cancel_all"]["vs_floor"]["spread"],
    "close-all / floor": lambda r: r["close_all"]["vs_floor"]["spread"],
}


SCREEN_ROWS = {
    "event -> screen median ms": lambda r: r["event_to_screen_ms"].get("median"),
    "event -> screen p99 ms": lambda r: r["event_to_screen_ms"].get("p99"),
    "CPU % with the screen": lambda r: r["cpu_pct_with_screen"],
}


def table(by_count: dict[int, dict[str, Any]], rows_read: dict[str, Any] = ROWS) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    counts = sorted(by_count)
    lo, hi = (10, 100) if 10 in by_count and 100 in by_count else (counts[0], counts[-1])
    for name, read in rows_read.items():
        values = {n: read(by_count[n]) for n in counts}
        growth = values[hi] / values[lo] if values.get(lo) and values.get(hi) is not None else None
        # Linear: the figure grows at most as the symbols do. A ratio to the floor (the same work) should not grow:
        # judged against the two ratios' spreads, since five runs of each leave them wide.
        linear = None if growth is None or name in NOT_JUDGED else growth <= hi / lo
        if name in SPREADS and growth is not None:
            slack = (SPREADS[name](by_count[lo]) or 0) + (SPREADS[name](by_count[hi]) or 0)
            linear = values[hi] - values[lo] <= slack
        rows[name] = {
            **{str(n): v for n, v in values.items()},
            f"growth_{lo}_to_{hi}": None if growth is None else round(growth, 2),
            "linear_or_better": linear,
        }
    return rows


def goals_at(r: dict[str, Any], rows: dict[str, Any]) -> dict[str, Any]:
    def at_most(value: float | None, goal: float) -> dict[str, Any]:
        verdict = "no data" if value is None else "pass" if value <= goal else "fail"
        return {"value": value, "goal": goal, "verdict": verdict}

    growth = [row["linear_or_better"] for row in rows.values() if row["linear_or_better"] is not None]
    return {
        "idle CPU <= 15 % of one core": at_most(r["idle_cpu_pct"], GOALS["idle_cpu_pct"]),
        "RSS <= 300 MB": at_most(r["rss_mb"], GOALS["rss_mb"]),
        "event -> screen p99 <= 100 ms": at_most(r["event_to_screen_ms"].get("p99"), GOALS["event_to_screen_p99_ms"]),
        "cancel-all <= 1.5x floor": r["cancel_all"]["vs_floor"],
        "cancel-all: no 429": {
            "value": r["cancel_all"]["refusals_for_rate"],
            "verdict": "pass" if r["cancel_all"]["refusals_for_rate"] == 0 else "fail",
        },
        "growth no worse than linear in every row": {
            "value": f"{sum(growth)} of {len(growth)} rows",
            "verdict": "no data" if not growth else "pass" if all(growth) else "fail",
        },
    }


async def measure(
    counts: str,
    runs: int,
    orders: int,
    idle_s: float,
    engines: int = 0,
    step_s: float = 3.0,
    in_process: int = 0,
    engine_symbols: int = 50,
    screen_only: int = 0,
) -> dict[str, Any]:
    """``in_process``: each count measured in this process (a smoke run), not in a fresh one. ``screen_only``: the
    screen's rows alone (event -> screen, CPU with the screen), without the engine's (no kill switch runs)."""
    result: dict[str, Any] = {"benchmark": "scale", "runs": runs, "orders_per_symbol": orders, "idle_s": idle_s}
    if engines > 0:
        result["side_by_side"] = await engines_side_by_side(engines, engine_symbols, idle_s)
        return result
    by_count = {}
    for n in (int(c) for c in counts.split(",") if c):
        if in_process:
            by_count[n] = await child(n, runs, orders, idle_s, step_s, screen_only)
        else:
            by_count[n] = await run_child(n, runs, orders, idle_s, step_s, screen_only)
    result["by_symbols"] = {str(n): r for n, r in by_count.items()}
    if screen_only:
        result["table"] = table(by_count, SCREEN_ROWS)
        return result
    result["table"] = table(by_count)
    at = 50 if 50 in by_count else max(by_count)
    result["goals_at_symbols"] = at
    result["goals"] = {k: v for k, v in goals_at(by_count[at], result["table"]).items() if "ratio" in v}
    result["checks"] = goals_at(by_count[at], result["table"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in PARAMS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=type(default), default=default)
    parser.add_argument("--engine-symbols", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="tiny parameters: a smoke run of a few seconds")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        import logging

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # what went wrong, if anything, on stderr
        profile = None
        if os.environ.get("BENCH_ENGINE_PROFILE"):  # where to write a profile of the engine's process
            import cProfile

            profile = cProfile.Profile()
            profile.enable()
        try:
            emit(asyncio.run(child(args.child, args.runs, args.orders, args.idle_s, args.step_s, args.screen_only)))
        finally:
            if profile is not None:
                profile.disable()
                profile.dump_stats(os.environ["BENCH_ENGINE_PROFILE"])
        return
    params = dict(QUICK) if args.quick else {k: getattr(args, k) for k in PARAMS}
    emit(asyncio.run(measure(**params, engine_symbols=args.engine_symbols)))


if __name__ == "__main__":
    main()
