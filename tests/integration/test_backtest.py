"""Market data and a backtest through the real program: `cockpit data download` fetches candles from the simulator
through ccxt (page after page, resumable), `cockpit data list` shows their range and gaps, and `cockpit validate
--strategy NAME --replay DIR` runs a user strategy on them with the real engine and prints GO / NO-GO."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from cockpit.cli import main
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
        assert report["config"]["symbols"] == ["BTC/USDT", "ETH/USDT"]
        assert report["config"]["strategy"]["run"] == ["dip"] and not report["config"]["strategy"]["ladder"]["enabled"]
        assert report["fills"] > 0  # the strategy traded on the replayed candles, through the engine
        assert "STRATEGY_FAILED" not in report["alert_codes"]  # steps back to back: each one's thread is done
        assert await asyncio.to_thread(main, ["validate", "--strategy", "nope", "--replay", data, *c]) == 2
        assert "strategy nope cannot run: not found under [strategy] paths" in capsys.readouterr().err
    finally:
        await sim.stop()
