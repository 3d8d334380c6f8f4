"""The real `cockpit` in a pseudo-terminal, as over SSH: when the terminal goes away (SIGHUP), the configured
policy (by default halt and cancel every order) runs and is recorded before the program exits."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading

from eventually import eventually

from engine.store.db import Store


def drain(fd: int) -> None:
    """Read what the program draws, so it never blocks on a full terminal."""
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def open_orders(data_dir) -> int:
    try:
        store = Store.in_dir(data_dir, readonly=True)
    except Exception:  # the store may not exist yet while the program starts
        return 0
    try:
        return len(store.orders(open_only=True))
    except Exception:  # nor its tables
        return 0
    finally:
        # Closed at once: a connection left to the garbage collector from the store's first moments (before it
        # is in WAL mode) makes every later connection of this process read a stale file.
        store.close()


async def test_sighup_halts_and_cancels_every_order_and_records_it(tmp_path):
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(TERM="xterm-256color", COCKPIT_STRATEGY__INTERVAL_S="0.2")
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "cockpit.cli", "--data-dir", str(tmp_path / "data")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    threading.Thread(target=drain, args=(master,), daemon=True).start()
    try:
        await eventually(
            lambda: open_orders(tmp_path / "data") >= 2, timeout=40, message="the ladder's orders resting at the venue"
        )
        os.kill(proc.pid, signal.SIGHUP)
        code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    store = Store.in_dir(tmp_path / "data", readonly=True)
    (row,) = [r for r in store.audit(limit=20) if r["actor"] == "operator:hangup"]
    assert row["command"] == "cancel-all" and row["ok"] and "SIGHUP" in row["reason"]
    assert store.orders(open_only=True) == []
    assert store.trading_state()[0].value == "HALTED"
