"""The real programs as an operator runs them: `cockpit run --headless` in its own process, two `cockpit` screens
attached to it in tmux (started on its data directory, they attach instead of refusing), and a third attached from
"elsewhere" with `--url` and a token file (the remote API on 127.0.0.1). A halt from any one of them is on every
screen within a second; `q` on an attached screen detaches and the engine runs on. One screen is 80×24, and its
panels stay where its first frame put them (decision TUI-18)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from eventually import eventually

from engine.api import client

pytestmark = pytest.mark.usefixtures("tmux_installed")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


# A watched session's panels' edges (the rows of their top and bottom borders) in every picture, and when the first
# picture was taken.
TOPS: dict[str, set[tuple[int, ...]]] = {}
FIRST: dict[str, float] = {}
WATCH_S = 1.5  # an attached screen said where it was ~0.5 s after its first frame, on a line that took a panel's row


def screen(session: str) -> str:
    text = tmux("capture-pane", "-p", "-t", session)
    if session in TOPS and "Open orders" in text:
        lines = text.splitlines()
        TOPS[session].add(tuple(i for i, line in enumerate(lines) if line[:1] in ("╭", "╰")))
        FIRST.setdefault(session, time.monotonic())
    return text


async def watched(session: str) -> None:
    """The session's pictures from its first frame for WATCH_S at least: its panels stayed on their rows."""
    await eventually(
        lambda: bool(screen(session)) and time.monotonic() - FIRST[session] > WATCH_S,
        timeout=10,
        interval=0.01,
        message="the screen watched",
    )
    tops = TOPS.pop(session)
    assert len(tops) == 1, f"the panels moved by themselves: their borders on rows {sorted(tops)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}


async def all_show(sessions: list[str], text: str, since: float) -> float:
    """Wait until every session's screen shows ``text``; the seconds it took from ``since``."""
    await eventually(lambda: all(text in screen(s) for s in sessions), timeout=10, interval=0.01, message=text)
    return time.monotonic() - since


async def test_a_halt_from_any_screen_is_on_every_screen_within_a_second_and_q_detaches(tmp_path):
    data, port = tmp_path / "data", free_port()
    config = tmp_path / "config.toml"
    # allow_plaintext: loopback needs none, but Engine._check_api reads the bare host as a URL (is_loopback("127.0.0.1")
    # is False today) and would refuse to start; said in the report of the attach work.
    config.write_text(
        f'[api]\nhost = "127.0.0.1"\nport = {port}\nallow_plaintext = true\n\n[strategy]\nenabled = false\n'
    )
    cockpit = f"{sys.executable} -m cockpit.cli"
    engine = await asyncio.to_thread(
        subprocess.Popen,
        [*cockpit.split(), "run", "--headless", "--config", str(config), "--data-dir", str(data)],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sessions = [f"cockpit-attach-{os.getpid()}-{n}" for n in ("a", "b", "remote")]
    try:

        def answering() -> bool:
            try:
                status, answer = client.call(data, "GET", "/api/status", None, 2.0)
            except OSError:
                return False
            return status == 200 and bool(answer.get("ready"))

        await eventually(answering, timeout=40, message="the headless engine up")
        made = await asyncio.to_thread(
            subprocess.run,
            [*cockpit.split(), "api", "token", "create", "desk", "--role", "operator", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            env=environment(),
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        token_file = tmp_path / "desk.token"
        token_file.write_text(made.stdout.strip() + "\n")
        token_file.chmod(0o600)
        shell = f"env -u COLUMNS -u LINES TERM=xterm-256color {cockpit} --config {config}"
        commands = {
            sessions[0]: f"{shell} --data-dir {data}",
            sessions[1]: f"{shell} --data-dir {data}",
            # Elsewhere: another data directory (none), the engine reached by its URL and a token.
            sessions[2]: f"{shell} --data-dir {tmp_path / 'elsewhere'} --url http://127.0.0.1:{port} "
            f"--token-file {token_file}",
        }
        TOPS[sessions[1]] = set()  # from its first frame to its first key: nothing moves by itself
        for session, command in commands.items():
            # The shell stays after the program, so what it said on the way out can be read. b: the smallest screen.
            size = ("80", "24") if session == sessions[1] else ("100", "30")
            tmux("new-session", "-d", "-s", session, "-x", size[0], "-y", size[1], f"{command}; echo exit=$?; sleep 60")
        await eventually(lambda: "Open orders" in screen(sessions[1]), timeout=40, interval=0.01, message="b's frame")
        await all_show(sessions, "PAPER · ACTIVE", time.monotonic())
        assert all("attached to " in screen(s) and "q detaches" in screen(s) for s in sessions)

        for where, actor in ((sessions[0], "operator:key"), (sessions[2], "api:desk")):
            tmux("send-keys", "-t", where, "h")
            took = await all_show(sessions, f"PAPER · HALTED by {actor}", time.monotonic())
            print(
                f"h in {where[-1:] if where != sessions[2] else 'remote'}: HALTED on all three in {1000 * took:.0f} ms"
            )
            assert took < 1.0, f"{took:.2f}s for a halt to reach every screen"
            if sessions[1] in TOPS:  # b's first key: what a key did is said on a line of its own
                await watched(sessions[1])
            tmux("send-keys", "-t", sessions[1], "u")
            await eventually(lambda: "Resume trading?" in screen(sessions[1]), timeout=10)
            tmux("send-keys", "-t", sessions[1], "y")
            await all_show(sessions, "PAPER · ACTIVE", time.monotonic())

        tmux("send-keys", "-t", sessions[1], "q")
        await eventually(lambda: "exit=0" in screen(sessions[1]), timeout=15, message="the screen quit")
        assert "detached; the engine keeps running (pid" in screen(sessions[1])
        assert engine.poll() is None and answering()  # the engine runs on
        tmux("send-keys", "-t", sessions[0], "h")
        await all_show([sessions[0], sessions[2]], "PAPER · HALTED by operator:key", time.monotonic())
    finally:
        for session in sessions:
            tmux("kill-session", "-t", session)
        if engine.poll() is None:
            engine.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(engine.wait, 30)
            except subprocess.TimeoutExpired:
                engine.kill()
    assert engine.returncode == 0
