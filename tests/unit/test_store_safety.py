"""A store that is not cockpit's is refused untouched; a read-only or damaged one gets a message that says what to
do; `cockpit status` reads a store it cannot write."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest

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


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_a_read_only_data_dir_is_read_and_refused_for_writing_with_a_reason(tmp_path):
    store = Store.in_dir(tmp_path)
    store.handle(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator:key", "drill"))
    store.close()
    os.chmod(tmp_path, 0o555)
    try:
        status = cli(tmp_path, "status", "--json")
        assert status.returncode == 0 and '"trading_state": "HALTED"' in status.stdout
        with pytest.raises(StoreError, match="cannot write the cockpit store"):
            Store.in_dir(tmp_path)
    finally:
        os.chmod(tmp_path, 0o755)


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
