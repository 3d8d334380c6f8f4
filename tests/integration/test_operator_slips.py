"""What an operator trips on, driven through the real program (issue 25 §4 and §7): a [keys] section cannot take
the kill switch's keys away, bind one key twice or name a key that does not exist (exit 2, in words, before the
screen opens); a pipe closed early (`cockpit audit | head -1`) is not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.kernel.events import CommandAudited
from engine.store.db import Store

COCKPIT = [sys.executable, "-m", "cockpit.cli"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}


@pytest.mark.parametrize(
    "keys, words",
    [
        ('snapshot = "h"', "'h' is the kill switch's key for halt"),
        ('quit = "x"', "'x' is the kill switch's key for close_all"),
        ('snapshot = "a"', "bound to both ack and snapshot"),
        ('halt = "nosuchkey"', "not a key name"),
        ('bogus = "z"', "bogus: no such binding"),
    ],
)
def test_a_keymap_that_would_weaken_the_kill_switch_is_refused_before_the_screen(tmp_path, keys, words):
    config = tmp_path / "c.toml"
    config.write_text(f"[keys]\n{keys}\n")
    result = subprocess.run(
        [*COCKPIT, "--config", str(config), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert words in result.stderr and "Traceback" not in result.stderr


def test_a_pipe_closed_early_ends_quietly(tmp_path):
    data = tmp_path / "d"
    store = Store.in_dir(data)
    for n in range(3000):  # more than a pipe holds: the writer meets the closed pipe mid-print
        store.handle(
            CommandAudited(
                command="halt",
                actor="operator:cli",
                reason=f"drill {n}",
                args={},
                values={},
                ok=True,
                result="HALTED",
                duration_ms=0.1,
            )
        )
    store.close()
    for command in (["audit", "--limit", "3000"], ["status"], ["incidents"]):
        shell = " ".join([*COCKPIT, *command, "--data-dir", str(data)]) + " | head -1"
        result = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, env=_env(), timeout=60)
        assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, (command, result.stderr)
        assert result.stdout.count("\n") == 1, (command, result.stdout)


def test_the_data_directory_is_the_users_wherever_cockpit_runs_from(tmp_path):
    """No --data-dir: one per-user state directory ($XDG_STATE_HOME/cockpit), so `cockpit halt` from any directory
    reaches the store the cockpit uses; a relative data_dir in a config file is relative to that file."""
    state = tmp_path / "state"
    env = {**_env(), "XDG_STATE_HOME": str(state)}
    Store.in_dir(state / "cockpit").close()  # a cockpit ran here before
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for where, reason in ((one, "from one"), (two, "from two")):
        result = subprocess.run(
            [*COCKPIT, "halt", "--reason", reason], cwd=where, capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, result.stderr
    store = Store.in_dir(state / "cockpit", readonly=True)
    try:
        assert [r["reason"] for r in store.audit(limit=5)][:2] == ["from two", "from one"]
    finally:
        store.close()
    config = tmp_path / "conf" / "c.toml"
    config.parent.mkdir()
    config.write_text('[engine]\ndata_dir = "desk"\n')
    Store.in_dir(config.parent / "desk").close()
    result = subprocess.run(
        [*COCKPIT, "halt", "--reason", "by file", "--config", str(config)],
        cwd=two,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not (two / "desk").exists()
