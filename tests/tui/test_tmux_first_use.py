"""Issue 25 §7 in the real program, in tmux (``capture-pane``), as a new user met it: the banner's first second,
and a small terminal on a HALTED store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from eventually import eventually

from engine.core.engine import Engine
from engine.kernel.commands import Halt
from engine.kernel.config import EngineConfig, Settings, StrategyConfig

pytestmark = [
    pytest.mark.usefixtures("tmux_installed"),
    pytest.mark.slow,  # the real program started in tmux, and its hang-up policy waited out
]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


def start(session: str, data, width: int, height: int) -> None:
    command = f"exec env -u COLUMNS -u LINES TERM=xterm-256color {sys.executable} -m cockpit.cli --data-dir {data}"
    tmux("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command)


async def stop(session: str, data) -> None:
    tmux("kill-session", "-t", session)
    await eventually(lambda: _unlocked(data), timeout=60, message="the cockpit exits once its terminal is gone")


def _unlocked(data) -> bool:
    try:
        from engine.store.datadir import engine_pid

        return engine_pid(data) is None
    except Exception:
        return False


async def test_from_its_first_frame_the_banner_never_says_active_before_the_venue_is_connected(tmp_path):
    """Every frame from the start until the venue is connected: before, ``PAPER · ACTIVE`` stood over
    ``● DISCONNECTED`` for a second or more."""
    session = f"cockpit-connecting-{os.getpid()}"
    data = tmp_path / "data"
    start(session, data, 80, 24)
    frames: list[str] = []

    async def connected_and_active() -> bool:
        frame = await asyncio.to_thread(tmux, "capture-pane", "-p", "-t", session)
        frames.append(frame)  # every frame seen on the way: what is asserted below
        return "● connected" in frame and "PAPER · ACTIVE" in frame

    try:
        try:
            await eventually(connected_and_active, timeout=40, interval=0.03)
        except AssertionError:
            pytest.fail("the cockpit never showed PAPER · ACTIVE over ● connected:\n" + frames[-1])
        before = [f for f in frames if "● connected" not in f]
        claims = [f for f in before if "PAPER · ACTIVE" in f]
        assert not claims, "ACTIVE claimed before the venue was connected:\n" + claims[0]
        assert any("PAPER · CONNECTING (trading ACTIVE)" in f for f in before), "\n\n".join(before[-3:])
    finally:
        await stop(session, data)


async def test_a_small_terminal_on_a_halted_store_opens_on_the_banner(tmp_path):
    data = tmp_path / "data"
    settings = Settings(engine=EngineConfig(data_dir=data), strategy=StrategyConfig(enabled=False))
    first = Engine(settings)
    await first.start()
    await first.execute(Halt(actor="operator:cli", reason="closing time"))
    await first.stop()
    session = f"cockpit-small-{os.getpid()}"
    start(session, data, 40, 10)
    try:

        def banner_first() -> bool:
            frame = tmux("capture-pane", "-p", "-t", session)
            assert "PAPER · HALTED" in frame.splitlines()[0], frame  # before: scrolled, the banner off screen
            assert "still working here: h: halt" in frame, frame
            return True

        await eventually(banner_first, timeout=40, message="the banner on the first line")
        await eventually(lambda: not _unlocked(data), timeout=20, message="the engine up")
        assert banner_first()  # and still there once the engine is up
    finally:
        await stop(session, data)
