"""A store that is not cockpit's, or a damaged one, is never changed (issue 25 §3): `cockpit halt` from another
shell says what the file is and what to do (exit 2, no traceback) and leaves it byte for byte as it was, with no
-wal or -shm beside it; a store an older cockpit made is adopted (marked) and used; and the emergency cancel-all
still cancels at the venue when the store cannot be used, saying that nothing could be recorded."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from eventually import eventually

from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder
from engine.kernel.config import EngineConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import TradingState, TradingStateChanged
from engine.sim import Simulator
from engine.store.db import DB_NAME, Store

# cockpit's mark on its stores (engine.store.datadir.APPLICATION_ID), spelled out: the test states the contract.
APPLICATION_ID = int.from_bytes(b"CKPT", "big")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def env_without_cockpit() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}


def halt(data_dir: Path) -> subprocess.CompletedProcess:
    """`cockpit halt` from another shell, as an operator types it."""
    return subprocess.run(
        [sys.executable, "-m", "cockpit.cli", "halt", "--reason", "x", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        cwd=data_dir.parent,
        env=env_without_cockpit(),
        timeout=60,
    )


# ------------------------------------------------------------------ files cockpit must not write


def foreign_meta(version: int) -> Callable[[Path], None]:
    """Another program's database with a ``meta(key, value)`` table holding a ``schema_version``."""

    def make(path: Path) -> None:
        conn = sqlite3.connect(path)
        conn.execute("create table meta (key text primary key, value text)")
        conn.execute("insert into meta values ('schema_version', ?)", (str(version),))
        conn.execute("create table notes (id integer primary key, body text)")
        conn.execute("insert into notes (body) values ('someone else''s data')")
        conn.commit()
        conn.close()

    return make


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def cockpit_store(path: Path) -> None:
    """A real store with something in it (a latched halt), closed as an engine leaves it."""
    store = Store(path)
    store.handle(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator:key", "drill"))
    store.close()


def truncated_store(path: Path) -> None:
    """A cockpit store cut short (a copy that stopped half-way, a disk that filled)."""
    cockpit_store(path)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def another_programs_mark(path: Path) -> None:
    """cockpit's very tables, in a file another program marked as its own (SQLite's application id)."""
    cockpit_store(path)
    conn = sqlite3.connect(path)
    conn.execute("pragma application_id = 305419896")  # 0x12345678
    conn.close()


def unmarked_lookalike(path: Path) -> None:
    """An unmarked file with cockpit's tables at schema 4 but for one column: not a store any cockpit wrote."""
    cockpit_store(path)
    conn = sqlite3.connect(path)
    conn.execute("pragma application_id = 0")
    conn.execute("alter table audit drop column kill_switch")
    conn.commit()
    conn.close()


def newer_store(path: Path) -> None:
    """A store a newer cockpit wrote (schema 8)."""
    cockpit_store(path)
    conn = sqlite3.connect(path)
    conn.execute("update meta set value = '8' where key = 'schema_version'")
    conn.commit()
    conn.close()


FOREIGN = ("not cockpit's", "move it away")
DAMAGED = ("is damaged", "truncated", "move it aside", "creates a new one", "the venue keeps the truth")


@pytest.mark.parametrize(
    "make, words",
    [
        pytest.param(foreign_meta(1), (*FOREIGN, "tables: meta, notes"), id="foreign-meta-schema-1"),
        pytest.param(foreign_meta(4), (*FOREIGN, "tables: meta, notes"), id="foreign-meta-schema-4"),
        pytest.param(foreign_meta(7), (*FOREIGN, "tables: meta, notes"), id="foreign-meta-schema-7"),
        pytest.param(random_bytes, ("is not a cockpit store", "not an SQLite database", "move it away"), id="junk"),
        pytest.param(truncated_store, DAMAGED, id="truncated-cockpit-store"),
        pytest.param(another_programs_mark, (*FOREIGN, "0x12345678", "another program's"), id="other-app-id"),
        pytest.param(unmarked_lookalike, (*FOREIGN, "audit.kill_switch"), id="lookalike-missing-a-column"),
        pytest.param(newer_store, ("newer cockpit (schema 8 > 7)", "upgrade cockpit"), id="newer-cockpit"),
    ],
)
def test_halt_refuses_a_store_it_must_not_write_and_leaves_it_byte_for_byte(tmp_path, make, words):
    data = tmp_path / "data"
    data.mkdir()
    db = data / DB_NAME
    make(db)
    before, mode = digest(db), db.stat().st_mode
    result = halt(data)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, f"{word!r} not in {result.stderr!r}"
    assert "halt: NOT done" in result.stderr
    if words is DAMAGED:  # a damaged store is not a disk problem, nor an old one
        for wrong in ("read-only", "permissions", "writable", "upgrade it"):
            assert wrong not in result.stderr, result.stderr
    assert digest(db) == before, "the file was changed"
    assert db.stat().st_mode == mode, "the file's permissions were changed"
    assert sorted(os.listdir(data)) == [DB_NAME], "something was created beside it (-wal, -shm, a lock)"


def test_an_empty_file_is_cockpits_to_create(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / DB_NAME).touch()
    result = halt(data)
    assert result.returncode == 0, result.stderr
    store = Store.in_dir(data, readonly=True)
    try:
        assert store.db.execute("pragma application_id").fetchone()[0] == APPLICATION_ID
        assert store.trading_state()[0] == TradingState.HALTED
    finally:
        store.close()


def test_a_store_an_older_cockpit_made_is_adopted_marked_and_halted(tmp_path):
    data = tmp_path / "data"
    db = data / DB_NAME
    Store.in_dir(data).close()
    conn = sqlite3.connect(db)
    conn.execute("pragma application_id = 0")  # as every store was before the mark
    conn.close()
    result = halt(data)
    assert result.returncode == 0, result.stderr
    store = Store.in_dir(data, readonly=True)
    try:
        assert store.db.execute("pragma application_id").fetchone()[0] == APPLICATION_ID
        assert store.trading_state()[0] == TradingState.HALTED
    finally:
        store.close()
    assert db.read_bytes()[68:72] == b"CKPT"


# ------------------------------------------------------------------ the emergency path with no usable store


def write_config(sim: Simulator, folder: Path) -> dict[str, str]:
    """A config.toml pointing at the simulator (data_dir: ./data), and the environment with its keys."""
    (folder / "config.toml").write_text(
        f'[venue]\nexchange = "binance"\nrest_url = "{sim.rest_url}"\nws_url = "{sim.ws_url}"\n'
        '[risk]\nmax_position_pct = "20"\n[strategy]\nenabled = false\n[engine]\ndata_dir = "data"\n'
    )
    env = env_without_cockpit()
    env.update(COCKPIT_VENUE__API_KEY=sim.api_key, COCKPIT_VENUE__API_SECRET=sim.api_secret)
    return env


async def rest_an_order(sim: Simulator, data_dir: Path) -> None:
    """An engine (on its own data directory) leaves a resting buy at the venue, then stops."""
    engine = Engine(
        Settings(
            venue=VenueConfig(
                exchange="binance",
                rest_url=sim.rest_url,
                ws_url=sim.ws_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
            ),
            engine=EngineConfig(data_dir=data_dir),
            risk=RiskConfig(max_position_pct=Decimal("20")),
            strategy=StrategyConfig(enabled=False),
        )
    )
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        last = engine.portfolio.last["BTC/USDT"]
        result = await engine.execute(
            PlaceOrder(
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.002"),
                price=last * Decimal("0.9"),
                stop_loss=last * Decimal("0.5"),
            )
        )
        assert result.ok, result.message
    finally:
        await engine.stop()
    assert len(sim.open_orders()) == 1


@pytest.mark.slow  # an engine, then the real program in another process
@pytest.mark.parametrize(
    "make, why",
    [
        pytest.param(foreign_meta(1), "not cockpit's", id="foreign"),
        pytest.param(truncated_store, "is damaged", id="damaged"),
    ],
)
async def test_emergency_cancel_all_acts_on_the_venue_when_the_store_cannot_be_used(sim, tmp_path, make, why):
    env = write_config(sim, tmp_path)
    await rest_an_order(sim, tmp_path / "engine-data")
    data = tmp_path / "data"
    data.mkdir()
    db = data / DB_NAME
    make(db)
    before = digest(db)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cockpit.cli", "cancel-all", "--reason", "drill", "--retry-for", "5"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=90,
    )
    said = result.stdout + result.stderr
    assert "Traceback" not in said, said
    assert result.returncode == 0, said
    assert sim.open_orders() == [], "the order at the venue was not canceled"
    assert "canceled 1 order(s)" in said and "acted on the venue directly" in said
    assert "NOTHING could be recorded in the store" in said and why in said
    assert digest(db) == before, "the unusable store was written"
    assert not (data / f"{DB_NAME}-wal").exists() and not (data / f"{DB_NAME}-shm").exists()
