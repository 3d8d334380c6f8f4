"""Runbook 002's dead-man's switch: ``kill -9`` of the real engine process (``cockpit run --headless``) with working
orders at the venue; the venue's countdownCancelAll, armed and renewed by the engine every ``deadman_s / 3``,
cancels them within ``[venue] deadman_s`` with no one left to do it. And a renewal the venue refuses is a WARN."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from eventually import eventually
from perpvenue import PERP, perp_settings, usdm_fixture  # noqa: F401  (the usdm fixture)
from runbook import codes, first_alert

from engine.kernel.events import TradingState

ROOT = Path(__file__).resolve().parents[2]
DEADMAN_S = 2.0
CONFIG = """
[venue]
exchange = "binance"
market = "usdm"
rest_url = "{rest}"
ws_url = "{ws}"
symbols = ["BTC/USDT:USDT"]
deadman_s = {deadman_s}
retry_backoff_s = [0.1, 0.2]
poll_s = 0.2

[engine]
data_dir = "data"

[risk]
require_stop_loss = false
stops_at_venue = false
max_position_pct = 50

[strategy]
enabled = false
"""


def log_file(work: Path) -> BinaryIO:
    return open(work / "engine.log", "ab")  # the engine process writes it


async def cli(work: Path, env: dict[str, str], *args: str) -> str:
    """A command from another shell, without blocking the loop the simulator answers on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cockpit.cli", *args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out + err).decode()
    return out.decode()


async def test_kill_9_with_working_orders_then_the_dead_mans_switch_cancels_them(usdm, tmp_path):
    """Runbook 002 "Issue: Connection/Network Problems" and "EMERGENCY KILL SWITCH" (the process gone): the engine
    arms countdownCancelAll for its symbol; an order rests; the engine is killed with SIGKILL. Within deadman_s the
    venue has cancelled it (and not before the engine died: it was renewed while alive)."""
    (tmp_path / "config.toml").write_text(CONFIG.format(rest=usdm.rest_url, ws=usdm.ws_url, deadman_s=DEADMAN_S))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(COCKPIT_VENUE__API_KEY=usdm.api_key, COCKPIT_VENUE__API_SECRET=usdm.api_secret)
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cockpit.cli",
        "run",
        "--headless",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file(tmp_path),
    )
    try:
        await eventually(
            lambda: usdm.account()["futures"]["countdowns"].get("BTCUSDT") == int(DEADMAN_S * 1000),
            timeout=30,
            message="the engine armed the dead-man's switch",
        )
        price = usdm.price("BTCUSDT") * Decimal("0.9")
        await cli(tmp_path, env, "order", "buy", PERP, "0.01", "--price", f"{price:.1f}", "--reason", "working")
        assert len(usdm.futures.open_orders("BTCUSDT")) == 1
        armed = usdm.futures.countdowns["BTCUSDT"].deadline_ms  # the countdown running when the order rested

        def renewed_past_its_deadline() -> bool:
            countdown = usdm.futures.countdowns.get("BTCUSDT")
            assert countdown is not None, "the countdown fired while the engine was alive"
            return usdm.clock.server_ms() > armed + 200 and countdown.deadline_ms > armed

        await eventually(renewed_past_its_deadline, timeout=DEADMAN_S * 3, message="the engine renews the countdown")
        assert len(usdm.futures.open_orders("BTCUSDT")) == 1, "cancelled while the engine was alive"
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert await proc.wait() == -signal.SIGKILL
        await eventually(
            lambda: not usdm.futures.open_orders("BTCUSDT"), timeout=DEADMAN_S + 2, message="cancelled by the venue"
        )
        assert time.monotonic() - killed <= DEADMAN_S + 0.5
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_refused_renewal_of_the_dead_mans_switch_is_a_warn(usdm, tmp_path, run):
    """Runbook 002 "Issue: Connection/Network Problems": the venue answers 500 to countdownCancelAll; the engine
    says so once (WARN DEADMAN_FAILED: its working orders may be cancelled by the venue) and arms it again when the
    venue answers."""
    engine = await run(perp_settings(usdm, tmp_path, venue={"deadman_s": 1.5}))
    await eventually(lambda: engine.deadman.renewed_at is not None, message="armed")
    usdm.faults.inject("http-status", status=500, path="/fapi/v1/countdownCancelAll")
    await eventually(lambda: "DEADMAN_FAILED" in codes(engine), timeout=5, message="renewal failed")
    assert first_alert(tmp_path, "DEADMAN_FAILED")["severity"] == "WARN"
    usdm.faults.clear()
    await eventually(lambda: engine.deadman.failure is None, timeout=5, message="renewed again")
    assert engine.trading_state == TradingState.ACTIVE  # a WARN: trading goes on
