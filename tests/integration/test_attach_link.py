"""The attached link (cockpit/attached.py) against the real program: `cockpit run --headless` in its own process,
followed over its socket as an attached screen follows it, with no screen (the link's messages collected). An
engine that goes silent (SIGSTOP: no close, no error, nothing) is found out within two seconds by the heartbeat; an
engine that stops and starts again is followed again from the journal number the link last saw, none missing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from eventually import eventually

from cockpit.attached import AttachedLink, Target
from cockpit.bridge import EngineEvents, LinkChanged
from cockpit.link import LinkState
from cockpit.main_screen import Snapshot
from engine.api import client
from engine.kernel.events import TradingStateChanged


def headless(data_dir, tmp_path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env["COCKPIT_STRATEGY__ENABLED"] = "false"
    return subprocess.Popen(
        [sys.executable, "-m", "cockpit.cli", "run", "--headless", "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def answering(data_dir) -> bool:
    try:
        status, answer = await asyncio.to_thread(client.call, data_dir, "GET", "/api/status", None, 2.0)
    except OSError:
        return False
    return status == 200 and answer.get("ready")


async def cli(data_dir, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cockpit.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


async def test_a_silent_engine_is_found_out_in_two_seconds_and_a_restarted_one_followed_with_nothing_missed(tmp_path):
    data = tmp_path / "data"
    engine = headless(data, tmp_path)
    link = AttachedLink(Target.local(data))
    seen: list[object] = []

    def post(message) -> None:
        seen.append(message)
        if isinstance(message, EngineEvents):
            message.drawn.set()  # drawn at once: no screen here

    following = None
    try:
        await eventually(lambda: answering(data), timeout=40, message="the headless engine serving its socket")
        await link.open()
        following = asyncio.ensure_future(link.follow(post))
        await eventually(lambda: link.up and any(isinstance(m, Snapshot) for m in seen), timeout=10)

        # Silent: stopped, its socket open, nothing said. Only the heartbeat can tell.
        os.kill(engine.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        await eventually(lambda: link.state == LinkState.DOWN, timeout=3.0, message="found out")
        found = time.monotonic() - stopped
        print(f"a silent engine found out in {1000 * found:.0f} ms")
        assert found <= 2.0, f"{found:.2f}s to find out a silent engine"
        # The link's state moves first; the message that tells the screen follows it on the loop.
        (lost,) = await eventually(
            lambda: [m for m in seen if isinstance(m, LinkChanged) and not m.up], message="the screen told"
        )
        assert lost.since is not None
        os.kill(engine.pid, signal.SIGCONT)
        woke = time.monotonic()
        await eventually(lambda: link.up, timeout=10, message="followed again once it answers")
        print(f"followed again {1000 * (time.monotonic() - woke):.0f} ms after SIGCONT")

        # Stopped and started again: what happened in between (a halt from a shell, with no engine) and after is
        # caught up from the journal, which numbers on across restarts.
        last = link.last_seq
        engine.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(engine.wait, 30) == 0
        await eventually(lambda: link.state == LinkState.DOWN, timeout=3.0)
        engine = headless(data, tmp_path)
        await eventually(lambda: answering(data), timeout=40, message="the engine back")
        halted = await cli(data, "halt", "--reason", "after the restart")
        assert halted.returncode == 0, halted.stderr
        await eventually(
            lambda: any(
                isinstance(e, TradingStateChanged) for m in seen if isinstance(m, EngineEvents) for e in m.events
            ),
            timeout=10,
            message="the halt on the stream",
        )
        numbers = list(link.seqs)
        after = [n for n in numbers if n > last]
        assert after and after == list(range(last + 1, after[-1] + 1)), f"a gap after {last}: {after}"
        assert link.gaps == 0
        assert sum(isinstance(m, Snapshot) for m in seen) >= 3  # a fresh first frame at every return
    finally:
        if following is not None:
            following.cancel()
        await link.close()
        if engine.poll() is None:
            os.kill(engine.pid, signal.SIGCONT)
            engine.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(engine.wait, 30)
            except subprocess.TimeoutExpired:
                engine.kill()
