"""Market data and a backtest through the real program: `cockpit data download` fetches candles from the simulator
through ccxt (page after page, resumable), `cockpit data list` shows their range and gaps, and `cockpit validate
--strategy NAME --replay DIR` runs a user strategy on them with the real engine and prints GO / NO-GO."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import random
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cockpit.cli import main
from engine.api.marketdata import replay_files
from engine.core.engine import Engine
from engine.core.validation import Plan, Validation, backtest
from engine.gate.scorecard import comparable
from engine.kernel.config import Settings, load_settings
from engine.kernel.events import AlertRaised, FillReceived, OrderCreated, RoundTripClosed
from engine.sim import Simulator

ROOT = Path(__file__).resolve().parents[2]


async def program(*argv: str) -> tuple[int, str, str]:
    """The real program in a process of its own (validate owns its signals and event loop)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cockpit.cli",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_download_list_and_backtest_a_user_strategy(tmp_path, capsys):
    sim = Simulator(seed=3, history_days=2)
    await sim.start()
    try:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[venue]\nexchange = "binance"\nrest_url = "{sim.rest_url}"\nws_url = "{sim.ws_url}"\n'
            '[engine]\ndata_dir = "data"\n[strategy]\npaths = ["mine"]\n'
            '[strategy.params.dip]\noversold = 60.0\noverbought = 55.0\norder_quote = "20"\n',
            encoding="utf-8",
        )
        c = ["--config", str(config)]
        assert await asyncio.to_thread(main, ["strategy", "new", "dip", *c]) == 0
        since = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - 30 * 3600))
        download = ["data", "download", "BTC/USDT", "ETH/USDT", "--since", since, *c]
        assert await asyncio.to_thread(main, download) == 0
        out = capsys.readouterr().out
        assert "BTC/USDT: +1799 candles" in out or "BTC/USDT: +1800 candles" in out, out
        assert await asyncio.to_thread(main, download) == 0  # resumed from the last candle: a minute or two more
        again = capsys.readouterr().out
        assert "BTC/USDT: +0 candles" in again or "BTC/USDT: +1 candles" in again, again
        assert await asyncio.to_thread(main, ["data", "list", "--json", *c]) == 0
        files = {f["symbol"]: f for f in json.loads(capsys.readouterr().out)}
        assert set(files) == {"BTCUSDT", "ETHUSDT"}
        assert files["BTCUSDT"]["gaps"] == [] and files["BTCUSDT"]["candles"] >= 1799
        with (tmp_path / "data" / "market" / "binance" / "BTCUSDT-1m.csv").open() as f:
            assert f.readline().strip() == "timestamp,open,high,low,close,volume"  # the replay's format

        data = str(tmp_path / "data" / "market" / "binance")
        validate = ["validate", "--strategy", "dip", "--replay", data, "--duration", "20m", "--json", *c]
        code, out, err = await program(*validate)
        report = json.loads(out)
        assert code == (0 if report["verdict"] == "GO" else 1)
        assert report["simulated"]["completed"] and report["run"]["error"] is None
        assert report["simulated"]["tick_s"] == 60  # one step a candle of the data (GATE-25), 20 in 20 minutes
        assert report["simulated"]["steps"] == 20
        assert report["config"]["symbols"] == ["BTC/USDT", "ETH/USDT"]
        assert report["config"]["strategy"]["run"] == ["dip"] and not report["config"]["strategy"]["ladder"]["enabled"]
        assert report["fills"] > 0  # the strategy traded on the replayed candles, through the engine
        assert "STRATEGY_FAILED" not in report["alert_codes"]  # steps back to back: each one's thread is done
        assert await asyncio.to_thread(main, ["validate", "--strategy", "nope", "--replay", data, *c]) == 2
        assert "strategy nope cannot run: not found under [strategy] paths" in capsys.readouterr().err
    finally:
        await sim.stop()


def write_walk(path: Path, minutes: int, start: float, seed: int) -> None:
    """A seeded 1-minute random walk in the replay's format (what `cockpit data download` writes)."""
    rng = random.Random(seed)
    lines, price = ["timestamp,open,high,low,close,volume"], start
    for i in range(minutes):
        close = price * (1 + rng.gauss(0, 0.0015))
        high, low = (
            max(price, close) * (1 + abs(rng.gauss(0, 0.0004))),
            min(price, close) * (1 - abs(rng.gauss(0, 0.0004))),
        )
        lines.append(
            f"{1_767_225_600_000 + i * 60_000},{price:.2f},{high:.2f},{low:.2f},{close:.2f},{rng.uniform(5, 30):.4f}"
        )
        price = close
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def test_the_in_process_streams_decide_as_the_loopback_websockets(tmp_path):
    """GATE-17 and GATE-21: the same backtest with the simulator's streams in-process and the lean driver (the
    plain loops called by the driver, no loop turn after a loop that set nothing going), and over loopback
    websockets with every loop woken as a task and followed by a full settle check, places the same orders (client
    id, side, type, amount, price, when), gets the same fills, closes the same round trips, raises the same alerts
    and gives the same scorecard and verdict."""
    data = tmp_path / "market"
    data.mkdir()
    write_walk(data / "BTCUSDT-1m.csv", 1000 + 150, 65_000.0, seed=11)
    write_walk(data / "ETHUSDT-1m.csv", 1000 + 150, 3_500.0, seed=12)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[engine]\ndata_dir = "{tmp_path / "data"}"\n[strategy]\npaths = ["{tmp_path / "mine"}"]\n'
        '[strategy.params.dip]\noversold = 45.0\noverbought = 55.0\norder_quote = "50"\n',
        encoding="utf-8",
    )
    assert await asyncio.to_thread(main, ["strategy", "new", "dip", "--config", str(config)]) == 0
    settings, _, _ = backtest(load_settings(config), "dip", replay_files(data))

    async def run(in_process: bool) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
        seen: list[tuple[Any, ...]] = []

        def record(event: Any) -> None:
            if isinstance(event, OrderCreated):
                o = event.order
                seen.append(("order", o.client_id, o.symbol, o.side, o.type, o.amount, o.price, o.created_at))
            elif isinstance(event, FillReceived):
                f = event.fill
                seen.append(("fill", f.client_id, f.side, f.price, f.amount, f.fee, f.ts))
            elif isinstance(event, RoundTripClosed):
                seen.append(("trip", event.symbol, event.pnl, event.closed_at))
            elif isinstance(event, AlertRaised):
                seen.append(("alert", event.alert.code, event.alert.ts))

        def make_engine(s: Settings, **kwargs: Any) -> Engine:
            engine = Engine(s, **kwargs)
            engine.bus.add_handler(record)
            return engine

        plan = Plan(duration_s=2.5 * 3600, speed=math.inf, tick_s=15, seed=1, replay=replay_files(data))
        plan = dataclasses.replace(plan, in_process=in_process, lean=in_process)
        report = await Validation(settings, plan, make_engine, tmp_path / f"run-{in_process}").run()
        assert report["run"]["error"] is None and report["run"]["path"] == ("in-process" if in_process else "loopback")
        return seen, report

    def numbered(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Client ids are random (uuid4): each one as its prefix and the order of its first appearance."""
        ids: dict[str, str] = {}
        return [
            tuple(ids.setdefault(v, f"{v[:3]}{len(ids)}") if isinstance(v, str) and v[:3] in ("ck-", "cs-") else v
                  for v in e)
            for e in events
        ]  # fmt: skip

    loopback, by_websockets = await run(False)
    in_process, by_links = await run(True)
    loopback, in_process = numbered(loopback), numbered(in_process)
    kinds = {k: sum(1 for e in loopback if e[0] == k) for k in ("order", "fill", "trip")}
    assert kinds["order"] >= 4 and kinds["fill"] >= 4 and kinds["trip"] >= 2, kinds  # it traded: a comparison
    assert in_process == loopback
    assert comparable(by_links) == comparable(by_websockets)
    assert by_links["verdict"] == by_websockets["verdict"]


# Decides on candles; its third decision takes longer than its step (0.25 s); notes the thread of each one.
SLOWPOKE = """
import threading
import time
from pathlib import Path

from engine.strategies.api import Strategy


class Slowpoke(Strategy):
    name = "slowpoke"
    timeframe = "1m"
    history = 5
    steps = 0

    def decide(self, view):
        type(self).steps += 1
        with Path(__file__).with_suffix(".threads").open("a") as f:
            f.write(("main" if threading.current_thread() is threading.main_thread() else "other") + "\\n")
        if type(self).steps == 3:
            threading.Event().wait(20)  # hangs, as far as the run can tell
        return []
"""


async def test_a_backtest_disables_a_strategy_that_hangs_and_goes_on(tmp_path):
    """GATE-19 and GATE-27: in a backtest `decide` runs on the engine's thread under a deadline of one step kept by
    the interval timer: one that never returns is interrupted at its deadline, disabled with STRATEGY_FAILED, and
    the run goes on to its end and its report (live, it runs on a thread of its own: `test_user_strategies`)."""
    data = tmp_path / "market"
    data.mkdir()
    write_walk(data / "BTCUSDT-1m.csv", 1000 + 10, 65_000.0, seed=11)
    write_walk(data / "ETHUSDT-1m.csv", 1000 + 10, 3_500.0, seed=12)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "slowpoke.py").write_text(SLOWPOKE, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[engine]\ndata_dir = "{tmp_path / "data"}"\n[strategy]\ninterval_s = 0.25\npaths = ["{mine}"]\n',
        encoding="utf-8",
    )
    settings, _, _ = backtest(load_settings(config), "slowpoke", replay_files(data))
    plan = Plan(duration_s=5 * 60, speed=math.inf, tick_s=15, seed=1, replay=replay_files(data))
    started = time.monotonic()
    report = await Validation(settings, plan, Engine, tmp_path / "run").run()
    assert report["run"]["error"] is None and report["simulated"]["completed"]
    assert time.monotonic() - started < 15  # the hang (20 s) was cut at its deadline (0.25 s and a second's grace)
    assert report["alert_codes"].get("STRATEGY_FAILED") == 1, report["alert_codes"]
    threads = (mine / "slowpoke.threads").read_text().split()
    assert threads == ["main"] * 3, threads  # disabled at its third: none after


# Buys BTC/USDT once, at its first step, with a stop 1 % under the price; never again.
ONCE = """
from decimal import Decimal

from engine.strategies.api import Intent, Strategy


class Once(Strategy):
    name = "once"
    timeframe = "1m"
    history = 5
    bought = False

    def decide(self, view):
        price = view.last("BTC/USDT")
        if type(self).bought or price is None:
            return []
        type(self).bought = True
        return [Intent("buy", "BTC/USDT", quote_amount=Decimal("100"), stop_loss=price * Decimal("0.99"))]
"""


async def test_a_backtest_on_candles_fills_a_stop_inside_a_wick(tmp_path):
    """GATE-25: a backtest steps once a candle, and between steps the venue walks each candle's open, extremes and
    close: the entry's protective stop, resting at the venue, fills inside the next candle's wick (1.1 % under the
    entry, back by the close) at the wick's own time, through the whole engine, and the round trip is a loss."""
    data = tmp_path / "market"
    data.mkdir()
    t0 = 1_767_225_600_000
    flat = "65000.00,65010.00,64990.00,65000.00,10"
    btc = [flat] * 8 + ["65000.00,65020.00,64285.00,65000.00,10"] + [flat] * 3  # half the file is history
    for name, rows in (("BTCUSDT", btc), ("ETHUSDT", ["3500.00,3501.00,3499.00,3500.00,10"] * 12)):
        lines = ["timestamp,open,high,low,close,volume"] + [f"{t0 + i * 60_000},{r}" for i, r in enumerate(rows)]
        (data / f"{name}-1m.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "once.py").write_text(ONCE, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f'[engine]\ndata_dir = "{tmp_path / "data"}"\n[strategy]\npaths = ["{mine}"]\n', encoding="utf-8")
    settings, covered, candle_s = backtest(load_settings(config), "once", replay_files(data))
    assert candle_s == 60  # the data's step: what `cockpit validate --strategy once --replay DATA` steps at
    fills: list[tuple[str, Decimal, datetime]] = []

    def make_engine(s: Settings, **kwargs: Any) -> Engine:
        engine = Engine(s, **kwargs)
        engine.bus.add_handler(
            lambda e: fills.append((e.fill.side, e.fill.price, e.fill.ts)) if isinstance(e, FillReceived) else None
        )
        return engine

    plan = Plan(duration_s=covered or 0, speed=math.inf, tick_s=candle_s, seed=1, replay=replay_files(data))
    report = await Validation(settings, plan, make_engine, tmp_path / "run").run()
    assert report["run"]["error"] is None and report["simulated"]["completed"]
    assert report["simulated"]["steps"] == 6  # six candles after the history, one step each
    assert report["round_trips"] == {"won": 0, "lost": 1, "flat": 0}, report["round_trips"]
    [(buy, entry, bought_at), (sell, exit_price, sold_at)] = fills
    stop = entry * Decimal("0.99")
    assert (buy, sell) == ("buy", "sell") and stop * Decimal("0.995") <= exit_price <= stop  # under the stop, at
    # the bid in the wick, above the stop-limit's limit ([risk] stop_limit_offset_pct)
    wick_ms = t0 + 8 * 60_000  # the replay's third candle: bought at the second's open, stopped in the third
    assert wick_ms < sold_at.timestamp() * 1000 < wick_ms + 60_000, (bought_at, sold_at)  # inside it, not at a step
