"""A store that is not cockpit's is refused untouched; a read-only or damaged one gets a message that says what to
do; `cockpit status` reads a store it cannot write."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest
from needs import read_only

from engine.kernel.errors import StoreError
from engine.kernel.events import TradingState, TradingStateChanged
from engine.store.db import DB_NAME, Store


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return subprocess.run(
        [sys.executable, "-m", "cockpit.cli", *args, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )


def test_random_bytes_are_refused_and_left_as_they_were(tmp_path):
    path = tmp_path / DB_NAME
    path.write_bytes(os.urandom(4096))
    before = digest(path)
    with pytest.raises(StoreError, match="not an SQLite database.*move it away or pass another --data-dir"):
        Store(path)
    assert digest(path) == before
    result = cli(tmp_path, "halt")
    assert result.returncode == 2 and "is not a cockpit store" in result.stderr and "Traceback" not in result.stderr
    assert digest(path) == before


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / DB_NAME
    conn = sqlite3.connect(path)
    conn.execute("create table customers (id integer primary key, name text)")
    conn.execute("insert into customers (name) values ('alice')")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match="not cockpit's \\(tables: customers\\)"):
        Store(path)
    for command in (["status"], ["halt"], ["audit"]):
        result = cli(tmp_path, *command)
        assert result.returncode == 2 and "not cockpit's" in result.stderr, (command, result.stderr)
    assert digest(path) == before
    assert sorted(os.listdir(tmp_path)) == [DB_NAME]  # not even a -wal or -shm file


def test_a_read_only_data_dir_is_read_and_refused_for_writing_with_a_reason(tmp_path):
    """Read-only by file modes for a user, by a read-only bind mount for root (CI runs as root): never skipped."""
    data = tmp_path / "data"
    store = Store.in_dir(data)
    store.handle(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator:key", "drill"))
    store.close()
    with read_only(data) as reason:
        status = cli(data, "status", "--json")
        assert status.returncode == 0 and '"trading_state": "HALTED"' in status.stdout
        with pytest.raises(StoreError, match="cannot write the cockpit store") as refused:
            Store.in_dir(data)
        assert reason in str(refused.value)


def test_a_store_opened_for_reading_never_writes(tmp_path):
    Store.in_dir(tmp_path).close()
    path = tmp_path / DB_NAME
    before = digest(path)
    store = Store.in_dir(tmp_path, readonly=True)
    assert store.trading_state()[0] == TradingState.ACTIVE
    with pytest.raises(sqlite3.OperationalError):
        store.db.execute("insert into meta (key, value) values ('x', 'y')")
    store.close()
    assert digest(path) == before
