"""Backtest speed: `cockpit validate --strategy NAME --replay DIR` on 1-minute candles of two symbols, wall time and
pace against real time (simulated seconds per wall second).

The candles are written in the replay's format (what `cockpit data download` writes: ``DIR/BTCUSDT-1m.csv``,
``timestamp,open,high,low,close,volume``), a seeded random walk around the simulator's prices, ``--days`` days after
the replay's history (the first 1000 candles). The strategy is the template (`cockpit strategy new`), as written,
with thresholds that make it trade. The command runs in a process of its own, as an operator runs it; ``--hours``
limits the simulated span (0: all the data). The streams reach the engine in-process, the backtest's default
(decision GATE-17); ``--extra=--loopback`` measures them over loopback websockets (the report's ``run.path`` says
which ran).

Run: .venv/bin/python bench/backtest.py [--days 30] [--hours 0] [--extra ""] [--tree DIR] [--decisions FILE]; prints
one JSON object. ``--extra`` passes more options to `cockpit validate` (e.g. ``--tick 20``); ``--tree`` runs another
checkout's cockpit (the "before" figures: ``--tree /path/to/main``). ``--decisions FILE`` writes what the engine
decided to FILE, one JSON line each (every order placed: symbol, side, type, amount, price, time; every fill: price,
amount, fee, time; every round trip: symbol, PnL, close time; client ids as their order of appearance, since they are
random), and its SHA-256 into the output: two trees decided the same on the same data when their digests match.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARAMS: dict[str, Any] = {"days": 30, "hours": 0.0, "extra": "", "tree": "", "decisions": ""}
QUICK: dict[str, Any] = {"days": 1, "hours": 2.0, "extra": "", "tree": "", "decisions": ""}
HISTORY = 1000  # candles before the replay starts (the replay's history: at most 1000)
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
PRICES = {"BTCUSDT": (65_000.0, 2), "ETHUSDT": (3_500.0, 2)}  # start, decimals


def write_candles(directory: Path, days: int, seed: int = 5) -> dict[str, int]:
    """Seeded 1-minute random walks in the replay's format; the number of candles per file."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    count = HISTORY + days * 1440
    for symbol, (price, digits) in PRICES.items():
        lines = ["timestamp,open,high,low,close,volume"]
        for i in range(count):
            o = price
            c = max(o * (1 + rng.gauss(0, 0.0012)), 1.0)
            h = max(o, c) * (1 + abs(rng.gauss(0, 0.0004)))
            low = min(o, c) * (1 - abs(rng.gauss(0, 0.0004)))
            v = round(abs(rng.gauss(20, 5)) + 0.1, 4)
            lines.append(f"{START_MS + i * 60_000},{o:.{digits}f},{h:.{digits}f},{low:.{digits}f},{c:.{digits}f},{v}")
            price = c
        (directory / f"{symbol}-1m.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dict.fromkeys(PRICES, count)


# `cockpit` as `python -m cockpit.cli` runs it, with a bus handler writing the engine's decisions to a file (argv[1]).
RECORDER = """
import json, sys
import engine.core.engine as core
from engine.kernel.events import FillReceived, OrderCreated, RoundTripClosed

out, ids = open(sys.argv[1], "w", encoding="utf-8"), {}

def number(client_id):
    return ids.setdefault(client_id, f"{client_id[:3]}{len(ids)}")

def record(event):
    if isinstance(event, OrderCreated):
        o = event.order
        row = ["order", number(o.client_id), o.symbol, o.side, o.type, o.amount, o.price, o.created_at]
    elif isinstance(event, FillReceived):
        f = event.fill
        row = ["fill", number(f.client_id), f.symbol, f.side, f.price, f.amount, f.fee, f.ts]
    elif isinstance(event, RoundTripClosed):
        row = ["trip", event.symbol, event.pnl, event.closed_at]
    else:
        return
    out.write(json.dumps(row, default=str) + "\\n")

class Recording(core.Engine):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bus.add_handler(record)

core.Engine = Recording
from cockpit.cli import main
code = main(sys.argv[2:])
out.close()
sys.exit(code)
"""


async def cockpit(tree: Path, cwd: Path, *argv: str, decisions: str = "") -> tuple[int, str, str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *(["-c", RECORDER, decisions] if decisions else ["-m", "cockpit.cli"]),
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode(), time.perf_counter() - t0


async def measure(days: int, hours: float, extra: str, tree: str, decisions: str = "") -> dict[str, Any]:
    code_tree = Path(tree) if tree else ROOT
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-backtest-") as tmp:
        work = Path(tmp)
        data = work / "market"
        candles = write_candles(data, days)
        (work / "config.toml").write_text(
            '[engine]\ndata_dir = "data"\n[strategy]\npaths = ["strategies"]\n'
            '[strategy.params.rsi_bench]\noversold = 40.0\noverbought = 60.0\norder_quote = "50"\n',
            encoding="utf-8",
        )
        c = ["--config", str(work / "config.toml")]
        code, _, err, _ = await cockpit(code_tree, work, "strategy", "new", "rsi_bench", *c)
        if code != 0:
            raise RuntimeError(f"strategy new: {err}")
        argv = ["validate", "--strategy", "rsi_bench", "--replay", str(data), "--json", *c, *extra.split()]
        if hours:
            argv += ["--duration", f"{hours:g}h"]
        code, out, err, wall = await cockpit(code_tree, work, *argv, decisions=decisions)
        try:
            report = json.loads(out)
        except json.JSONDecodeError:
            raise RuntimeError(f"validate exit {code}: {err[-2000:]}") from None
    simulated_s = report["simulated"]["hours"] * 3600
    return {
        "benchmark": "backtest",
        "candles_per_symbol": candles,
        "symbols": 2,
        "timeframe": "1m",
        "command": "cockpit " + " ".join(a for a in argv if not a.startswith("/") and a != "--config"),
        "simulated_h": report["simulated"]["hours"],
        "steps": report["simulated"]["steps"],
        "tick_s": report["simulated"]["tick_s"],
        "wall_s_command": round(wall, 2),
        "wall_s_run": report["run"]["wall_s"],
        "cpu_s_run": report["run"].get("cpu_s"),
        "pace": round(simulated_s / wall, 1),
        "pace_run": report["run"]["speed_achieved"],
        "pace_on_cpu": report["run"].get("speed_on_cpu"),
        "thirty_days_at_this_pace_s": round(30 * 86400 / (simulated_s / wall), 1),
        "completed": report["simulated"]["completed"],
        "error": report["run"]["error"],
        "verdict": report["verdict"],
        "trades": report["trades"],
        "fills": report["fills"],
        "path": report["run"].get("path", "engine"),
        "tree": str(code_tree),
        "load_average": os.getloadavg()[0],
        **(_digest(Path(decisions)) if decisions else {}),
    }


def _digest(path: Path) -> dict[str, Any]:
    """What ``--decisions`` wrote: its SHA-256 and how many orders, fills and round trips it holds."""
    text = path.read_bytes()
    kinds = [json.loads(line)[0] for line in text.splitlines()]
    return {
        "decisions": str(path),
        "decisions_sha256": hashlib.sha256(text).hexdigest(),
        "decided": {k: kinds.count(k) for k in ("order", "fill", "trip")},
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
