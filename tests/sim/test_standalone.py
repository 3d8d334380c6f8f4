"""The standalone runner (``cockpit sim``) in a real subprocess: announces itself, serves ccxt, stops on SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from engine.venue.exchange import build_exchange

RUNNER = "from engine.sim.standalone import main; raise SystemExit(main(0, 0, 5))"


async def test_runner_prints_its_addresses_serves_and_exits_cleanly_on_sigint():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUNNER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
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
        sys.executable, "-c", RUNNER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
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


async def test_runner_options_keys_file_speed_and_replay(tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text(
        '[main]\nkey = "paper-key"\nsecret = "paper-secret"\n\n'
        '[[keys]]\nkey = "withdraw-key"\nsecret = "w-secret"\ncan_withdraw = true\n'
    )
    csv = tmp_path / "eth.csv"
    csv.write_text("".join(f"{1_700_000_040_000 + i * 60_000},3000,3010,2990,3005,5\n" for i in range(10)))
    code = (
        f"from engine.sim.standalone import main; raise SystemExit(main(0, 0, 5, speed=30.0, "
        f"replay={{'ETHUSDT': {str(csv)!r}}}, keys_file={str(keys)!r}, history_days=1))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 10)).decode().rstrip("\n") for _ in range(5)]
        assert lines[2] == "API key paper-key" and lines[3] == "API secret paper-secret"
        rest_url = lines[0].split(" ", 1)[1]
        assert lines[4].startswith(f"Faults: cockpit sim fault NAME --rest {rest_url}")
        ex = build_exchange("binance", rest_url=rest_url, api_key="withdraw-key", api_secret="w-secret")
        ex.urls["api"]["sapi"] = f"{rest_url}/sapi/v1"
        try:
            assert (await ex.sapi_get_account_apirestrictions())["enableWithdrawals"] is True
            first = (await ex.fetch_ohlcv("ETH/USDT", "1m", limit=1))[0][0]
            assert first < 1_700_000_040_000 + 10 * 60_000  # market time is the file's, not today's
        finally:
            await ex.close()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_runner_refuses_a_bad_keys_file_with_exit_2(tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text('[[keys]]\nkey = "k"\nsecret = "s"\ncan_fly = true\n')
    code = f"from engine.sim.standalone import main; raise SystemExit(main(0, 0, 5, keys_file={str(keys)!r}))"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert "keys.toml: [[keys]] #1: unknown field(s) can_fly" in stderr.decode()
