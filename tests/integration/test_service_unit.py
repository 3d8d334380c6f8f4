"""The engine as a systemd service (docs/deploy/): the unit file passes ``systemd-analyze verify``; the real program
(``python -m cockpit.cli run --headless`` on the built-in simulator) speaks the notify protocol to a fake manager
(READY=1 once connected, WATCHDOG=1 at half ``WATCHDOG_USEC``, STOPPING=1 on SIGTERM); and a start after an unclean
stop (``kill -9``) comes back HALTED with an incident, seen from another shell, while a clean stop keeps its state."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from eventually import eventually

from cockpit.app import CockpitApp
from engine.core.engine import UNCLEAN_STOP_ACTOR, UNCLEAN_STOP_REASON, Engine
from engine.kernel.config import ConfigError, EngineConfig, Settings, StrategyConfig, load_settings
from engine.store.db import Store

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "docs" / "deploy" / "cockpit.service"
WATCHDOG_USEC = 1_000_000  # pings every 0.5 s
# The engine on the built-in simulator, strategies off: nothing trades, so a simulator that starts afresh with
# every engine process finds no position to disagree about.
CONFIG = """[engine]
data_dir = "data"
after_unclean_stop = "{policy}"
[alerts]
daily_summary = false
[strategy]
enabled = false
"""


# ------------------------------------------------------------------------------------------------ the unit file


def unit_lines(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, by key (a key may repeat)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_is_a_notify_service_with_a_watchdog_restarted_on_failure():
    keys = unit_lines(UNIT.read_text())
    assert keys["Type"] == ["notify"] and keys["NotifyAccess"] == ["main"]
    assert keys["WatchdogSec"] and keys["Restart"] == ["on-failure"]
    assert keys["ExecStart"][0].split()[1:3] == ["run", "--headless"]
    assert keys["EnvironmentFile"] == ["/etc/cockpit/cockpit.env"]


def test_systemd_analyze_verifies_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)")
    # verify checks that ExecStart's program exists and is executable: this checkout's own `cockpit`.
    program = Path(sys.executable).with_name("cockpit")
    assert program.is_file(), f"{program}: the project is not installed in this environment"
    text = UNIT.read_text().replace("/opt/cockpit/.venv/bin/cockpit", str(program))
    assert str(program) in text
    copy = tmp_path / "cockpit.service"
    copy.write_text(text)
    # --recursive-errors=no: a warning (an unknown key, a misspelled section) fails verify too.
    out = subprocess.run(
        [analyze, "verify", "--man=no", "--recursive-errors=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    # And verify would have said so: the same unit with a misspelled key fails.
    copy.write_text(text.replace("WatchdogSec=", "WatchDogSec="))
    out = subprocess.run(
        [analyze, "verify", "--man=no", "--recursive-errors=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "WatchDogSec" in out.stderr


def test_a_bad_after_unclean_stop_names_the_key_and_the_values(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[engine]\nafter_unclean_stop = "resume"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message and "engine.after_unclean_stop" in message and "'halted' or 'keep'" in message
    assert load_settings().engine.after_unclean_stop == "halted"  # the default


# ------------------------------------------------------------------------------------------------ the real program


class FakeManager:
    """systemd's end of ``$NOTIFY_SOCKET``: a datagram socket in the abstract namespace, read as messages come."""

    def __init__(self) -> None:
        self.name = f"cockpit-notify-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.received: list[tuple[float, str]] = []  # (monotonic time it arrived, the datagram)

    def until(self, wanted: Callable[[str], bool], timeout: float, what: str) -> tuple[float, str]:
        """Read datagrams until one is ``wanted``; return it with the time it came."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout}s; received {[m for _, m in self.received]}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data.decode()))
            if wanted(self.received[-1][1]):
                return self.received[-1]

    def close(self) -> None:
        self.sock.close()


class Headless:
    """``cockpit run --headless`` in a working directory holding its config.toml, under a fake manager."""

    def __init__(self, work: Path, manager: FakeManager) -> None:
        self.work = work
        self.manager = manager
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
        self.env.update(NOTIFY_SOCKET="@" + manager.name, WATCHDOG_USEC=str(WATCHDOG_USEC))
        self.proc: subprocess.Popen | None = None

    def configure(self, policy: str) -> None:
        (self.work / "config.toml").write_text(CONFIG.format(policy=policy))

    def start(self) -> tuple[float, str]:
        """Start it and wait for READY=1; (seconds from start to READY=1, its STATUS= line)."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cockpit.cli", "run", "--headless"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / "engine.log", "ab"),
            cwd=self.work,
            env=self.env,
        )
        at, message = self.manager.until(lambda m: m.startswith("READY=1"), 60, "READY=1")
        return at - started, message.partition("STATUS=")[2]

    def kill_9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=30) == -signal.SIGKILL

    def terminate(self) -> str:
        """SIGTERM, as ``systemctl stop`` sends it: the STOPPING=1 message, and exit 0."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        _, message = self.manager.until(lambda m: m.startswith("STOPPING=1"), 30, "STOPPING=1")
        assert self.proc.wait(timeout=30) == 0
        return message

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command from another shell, on the same config."""
        env = {k: v for k, v in self.env.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        return subprocess.run(
            [sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True, cwd=self.work, env=env
        )

    def status(self) -> dict:
        out = self.cli("status", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def incidents(self) -> list[dict]:
        out = self.cli("incidents", "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def stop_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def headless(tmp_path):
    manager = FakeManager()
    engine = Headless(tmp_path, manager)
    engine.configure("halted")
    yield engine
    engine.stop_if_running()
    manager.close()


def test_ready_then_watchdog_pings_at_half_the_timeout_then_stopping_on_sigterm(headless):
    ready_s, status = headless.start()
    assert ready_s < 30 and status.startswith("paper on sim 127.0.0.1:") and status.endswith("trading ACTIVE")
    before = [m for _, m in headless.manager.received[:-1]]
    # Before READY=1 only the status and the start timeout extended (while the venue was being reached).
    assert all(m.startswith(("STATUS=starting:", "EXTEND_TIMEOUT_USEC=")) for m in before), before
    for _ in range(6):
        headless.manager.until(lambda m: m == "WATCHDOG=1", 5, "WATCHDOG=1")
    pings = [t for t, m in headless.manager.received if m == "WATCHDOG=1"]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < WATCHDOG_USEC / 1e6, gaps  # never as late as the timeout
    assert 0.4 < statistics.median(gaps) < 0.7, gaps  # about half of it
    assert headless.terminate() == "STOPPING=1\nSTATUS=stopping: signal received"


def test_a_kill_9_comes_back_halted_with_an_incident_and_a_clean_stop_keeps_the_state(headless):
    headless.start()
    headless.kill_9()
    # The next start: HALTED by the engine itself, an incident open, both seen from another shell.
    _, status = headless.start()
    assert status.endswith(f"trading HALTED (by {UNCLEAN_STOP_ACTOR}: {UNCLEAN_STOP_REASON})"), status
    seen = headless.status()
    assert seen["trading_state"] == "HALTED"
    assert seen["state_changed"]["actor"] == UNCLEAN_STOP_ACTOR
    assert seen["state_changed"]["reason"] == UNCLEAN_STOP_REASON == "restarted after an unclean stop"
    assert seen["state_changed"]["values"]["run"] == 1  # the run that never recorded its stop
    assert any(a["code"] == "TRADING_HALTED" and a["severity"] == "CRIT" for a in seen["alerts"])
    (incident,) = headless.incidents()
    assert incident["actor"] == UNCLEAN_STOP_ACTOR and incident["reason"] == UNCLEAN_STOP_REASON
    assert incident["recovered_at"] is None
    # Killed again while HALTED: still HALTED, the same incident, no second one.
    headless.kill_9()
    headless.start()
    assert headless.status()["trading_state"] == "HALTED"
    assert [i["id"] for i in headless.incidents()] == [incident["id"]]
    # A person looked and resumed; a clean stop (SIGTERM) and a start keep ACTIVE.
    resumed = headless.cli("resume", "--reason", "looked at the crash: fine")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert headless.incidents()[0]["recovered_at"] is not None
    headless.terminate()
    _, status = headless.start()
    assert status.endswith("trading ACTIVE"), status
    assert headless.status()["trading_state"] == "ACTIVE" and len(headless.incidents()) == 1
    headless.terminate()
    # Every run is recorded, and only the two killed ones never recorded a stop.
    store = Store.in_dir(headless.work / "data", readonly=True)
    try:
        runs = store.engine_runs(since="")
    finally:
        store.close()
    assert [bool(r["stopped_at"]) for r in runs] == [False, False, True, True]


def test_after_unclean_stop_keep_keeps_the_state(headless):
    headless.configure("keep")
    headless.start()
    headless.kill_9()
    _, status = headless.start()
    assert status.endswith("trading ACTIVE"), status
    assert headless.status()["trading_state"] == "ACTIVE" and headless.incidents() == []
    headless.terminate()
    log = (headless.work / "engine.log").read_text()
    assert "did not stop cleanly; the trading state is kept: ACTIVE (after_unclean_stop = keep)" in log


# ------------------------------------------------------------------------------------------------ the cockpit


async def test_the_cockpit_s_engine_records_its_run_and_its_clean_stop(tmp_path):
    """What tells a clean stop from an unclean one (``engine_runs``) is written by the TUI's engine too: its run at
    connect, its stop when the cockpit quits (so the next start keeps the state)."""
    settings = Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=False))
    app = CockpitApp(Engine(settings))
    async with app.run_test(size=(100, 30)):
        await eventually(app.engine.ready.is_set, timeout=20)
        store = Store.in_dir(tmp_path, readonly=True)
        try:
            (run,) = store.engine_runs(since="")
        finally:
            store.close()
        assert run["stopped_at"] is None  # running
    store = Store.in_dir(tmp_path, readonly=True)
    try:
        (run,) = store.engine_runs(since="")
    finally:
        store.close()
    assert run["stopped_at"] is not None
