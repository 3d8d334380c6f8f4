"""The real `cockpit` in tmux, as an operator over SSH sees it: the screen is read with capture-pane, keys are
sent with send-keys; when the session is killed (the terminal goes away), the hang-up policy runs and the program
exits, releasing the data directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from eventually import eventually

from engine.store.db import Store

pytestmark = pytest.mark.usefixtures("tmux_installed")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def running(pid_file) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


async def test_operator_in_tmux_halts_with_h_and_a_killed_session_runs_the_hangup_policy(tmp_path):
    session = f"cockpit-test-{os.getpid()}"
    data = tmp_path / "data"
    pid_file = tmp_path / "pid"
    env = " ".join(f"{k}={v}" for k, v in {"TERM": "xterm-256color", "COCKPIT_STRATEGY__INTERVAL_S": "0.2"}.items())
    command = f"echo $$ > {pid_file}; exec env {env} {sys.executable} -m cockpit.cli --data-dir {data}"
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
    tops: set[int] = set()  # the orders panel's first row in every picture, from the first frame to the orders

    def seen(text: str) -> str:
        tops.update(i for i, line in enumerate(text.splitlines()) if "Open orders" in line)
        return text

    try:
        await eventually(lambda: "PAPER · ACTIVE" in seen(screen(session)), timeout=40, message="the main screen")
        await eventually(
            lambda: "OPEN" in (text := seen(screen(session))) and "ladder" in text,
            timeout=30,
            message="the ladder's orders",
        )
        # The engine's data arriving moves nothing (decision TUI-17): the markets panel's frame, then its table, was
        # a row shorter until its rows came.
        assert len(tops) == 1, f"the panels moved as the data arrived: the orders panel's top at rows {sorted(tops)}"
        text = screen(session)
        for part in ("Markets · positions", "Open orders", "Alerts", "monitors", "equity", "h Halt", "c Cancel all"):
            assert part in text, f"{part!r} not on screen:\n{text}"
        tmux("send-keys", "-t", session, "h")
        await eventually(
            lambda: "PAPER · HALTED by operator:key at" in screen(session), timeout=10, message="HALTED in the banner"
        )
        assert "u: resume" in screen(session)
        tmux("send-keys", "-t", session, "?")
        await eventually(lambda: "Keys: every binding" in screen(session), timeout=10, message="the help screen")
        tmux("send-keys", "-t", session, "Escape")
        await eventually(lambda: "Keys: every binding" not in screen(session), timeout=10)
        pid = running(pid_file)
        assert pid is not None
        start = time.monotonic()
        tmux("kill-session", "-t", session)
        await eventually(
            lambda: running(pid_file) is None, timeout=60, message="the program exits once its terminal is gone"
        )
        print(f"exited {time.monotonic() - start:.1f}s after its terminal went away")
    finally:
        tmux("kill-session", "-t", session)
        pid = running(pid_file)
        if pid is not None:
            os.kill(pid, 9)
    store = Store.in_dir(data, readonly=True)
    actors = [(r["command"], r["actor"]) for r in store.audit(limit=20)]
    assert ("halt", "operator:key") in actors
    assert ("cancel-all", "operator:hangup") in actors
    assert store.orders(open_only=True) == []
