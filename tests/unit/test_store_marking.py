"""cockpit's stores are marked (SQLite's application id, "CKPT"); an unmarked store an older cockpit made is adopted
only when all of cockpit's tables are there, columns included; anything else, and a damaged store, is refused before
a byte is written, with the right advice."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from engine.kernel.errors import StoreError
from engine.kernel.events import TradingState, TradingStateChanged
from engine.store.datadir import APPLICATION_ID, explain_store_error, inspect_store
from engine.store.db import DB_NAME, Store
from engine.store.schema import SCHEMA_VERSION, migrate, tables_at


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def app_id(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("pragma application_id").fetchone()[0]
    finally:
        conn.close()


def older_cockpit_store(path: Path, version: int) -> None:
    """A store as a cockpit before the mark made it: WAL, the schema at ``version``, application id 0."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite_utils.Database(path)
    db.enable_wal()
    migrate(db, path, upto=version)
    db.table("engine_state").insert(
        {"key": "trading_state", "value": "HALTED", "actor": "operator:key", "reason": "old", "ts": "2024-01-01"}
    )
    db.close()


def test_the_mark_is_ckpt_and_a_new_store_carries_it(tmp_path):
    assert APPLICATION_ID == int.from_bytes(b"CKPT", "big") == 0x434B5054
    Store.in_dir(tmp_path).close()
    path = tmp_path / DB_NAME
    assert app_id(path) == APPLICATION_ID
    assert path.read_bytes()[68:72] == b"CKPT"  # where SQLite keeps it, and where `file` reads it
    assert inspect_store(path).kind == "ours"


def test_an_empty_file_becomes_a_marked_store(tmp_path):
    path = tmp_path / DB_NAME
    path.touch()
    assert inspect_store(path).kind == "new"
    Store(path).close()
    assert app_id(path) == APPLICATION_ID


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION + 1))
def test_a_store_an_older_cockpit_made_is_adopted_and_brought_up_to_date(tmp_path, version):
    path = tmp_path / DB_NAME
    older_cockpit_store(path, version)
    assert app_id(path) == 0
    assert inspect_store(path).kind == "legacy" and inspect_store(path).version == version
    store = Store(path)
    try:
        assert store.trading_state()[0] == TradingState.HALTED  # its contents kept
        assert next(store.db.query("select value from meta where key = 'schema_version'"))["value"] == str(
            SCHEMA_VERSION
        )
    finally:
        store.close()
    assert app_id(path) == APPLICATION_ID


def test_the_schema_described_for_adoption_is_the_one_a_new_store_has(tmp_path):
    store = Store.in_dir(tmp_path)
    try:
        actual = {name: frozenset(store.db.table(name).columns_dict) for name in store.db.table_names()}
    finally:
        store.close()
    assert tables_at(SCHEMA_VERSION) == actual


def test_a_meta_table_with_a_schema_version_alone_is_not_cockpits(tmp_path):
    path = tmp_path / DB_NAME
    conn = sqlite3.connect(path)
    conn.execute("create table meta (key text primary key, value text)")
    conn.execute("insert into meta values ('schema_version', '1')")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match=r"not cockpit's \(tables: meta\): cockpit's schema 1 is not there"):
        Store(path)
    assert digest(path) == before and sorted(os.listdir(tmp_path)) == [DB_NAME]


def test_an_unmarked_store_missing_a_table_is_not_adopted(tmp_path):
    path = tmp_path / DB_NAME
    older_cockpit_store(path, 2)
    conn = sqlite3.connect(path)
    conn.execute("drop table refused_orders")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match="no refused_orders"):
        Store(path)
    assert digest(path) == before and app_id(path) == 0


def test_an_empty_sqlite_database_without_the_mark_is_not_cockpits(tmp_path):
    path = tmp_path / DB_NAME
    conn = sqlite3.connect(path)
    conn.execute("pragma user_version = 1")  # a header and nothing else
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match="not cockpit's.*no table and no cockpit mark"):
        Store(path)
    assert digest(path) == before


def test_a_store_damaged_inside_is_called_damaged_with_what_to_do(tmp_path):
    path = tmp_path / DB_NAME
    store = Store(path)
    store.handle(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator:key", "drill"))
    store.close()
    with open(path, "r+b") as fh:  # the schema's page overwritten, the header and the size intact
        fh.seek(100)
        fh.write(os.urandom(3996))
    before = digest(path)
    for readonly in (False, True):
        with pytest.raises(StoreError) as caught:
            Store(path, readonly=readonly)
        message = str(caught.value)
        assert "is damaged" in message and "move it aside" in message and "the venue keeps the truth" in message
        assert "permissions" not in message and "writable" not in message and "upgrade it" not in message
    assert digest(path) == before


def test_a_corrupt_error_from_sqlite_is_explained_as_damage_not_as_a_disk_problem(tmp_path):
    path = tmp_path / DB_NAME
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192 - 16))
    try:
        conn = sqlite3.connect(path)
        conn.execute("select * from sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        error = exc
    else:  # pragma: no cover - SQLite always refuses this file
        pytest.fail("SQLite read random pages as a database")
    for readonly in (False, True):
        message = explain_store_error(path, error, readonly=readonly)
        assert "is damaged" in message and "move it aside" in message, message


def test_a_truncated_store_is_damaged_for_reading_too(tmp_path):
    path = tmp_path / DB_NAME
    Store(path).close()
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 4096)
    with pytest.raises(StoreError, match="is damaged: it is truncated"):
        Store(path, readonly=True)


def test_a_newer_cockpits_store_is_refused_for_writing_before_any_write(tmp_path):
    path = tmp_path / DB_NAME
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("update meta set value = '9' where key = 'schema_version'")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match=r"newer cockpit \(schema 9 > 7\)"):
        Store(path)
    assert digest(path) == before


def test_a_wal_without_its_store_is_not_taken_for_a_new_store(tmp_path):
    path = tmp_path / DB_NAME
    (tmp_path / f"{DB_NAME}-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(60))
    with pytest.raises(StoreError, match="is damaged"):
        Store(path)
    assert not path.exists()
