"""The standalone runner (``cockpit sim``) in a real subprocess: announces itself, serves ccxt, stops on SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from engine.exchange import build_exchange

RUNNER = "from engine.sim.standalone import main; raise SystemExit(main(0, 0, 5))"


async def test_runner_prints_its_addresses_serves_and_exits_cleanly_on_sigint():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUNNER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 10)).decode().rstrip("\n") for _ in range(4)]
        assert lines[0].startswith("REST http://127.0.0.1:")
        assert lines[1].startswith("WS ws://127.0.0.1:")
        assert lines[2].startswith("API key ") and lines[3].startswith("API secret ")
        rest_url, ws_url = lines[0].split(" ", 1)[1], lines[1].split(" ", 1)[1]
        key, secret = lines[2].split(" ", 2)[2], lines[3].split(" ", 2)[2]

        ex = build_exchange("binance", rest_url=rest_url, ws_url=ws_url, api_key=key, api_secret=secret)
        try:
            balance = await ex.fetch_balance()
            assert balance["USDT"]["free"] == 10000.0
            ticker = await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 5)
            assert ticker["last"] > 0
        finally:
            await ex.close()

        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        stderr = (await proc.stderr.read()).decode()
        assert "Traceback" not in stderr
        assert secret not in stderr
        assert "simulator serving" in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_runner_exits_cleanly_on_sigterm_too():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUNNER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        for _ in range(4):
            await asyncio.wait_for(proc.stdout.readline(), 10)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert "Traceback" not in (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
