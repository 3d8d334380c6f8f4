"""Trading history and positions are private (issue 25 §6): the data directory is its owner's alone (0700) and so is
every file cockpit writes there (0600): the store and its -wal and -shm, the logs, the lock, snapshots and incident
reports; what an older cockpit left world-readable is taken down to owner-only, and nothing that is not cockpit's
is ever chmod-ed. Mode bits are checked with stat, which holds for root too."""

from __future__ import annotations

import os
import sqlite3
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from eventually import eventually

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, PlaceOrder
from engine.kernel.config import EngineConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.errors import StoreError
from engine.sim import Simulator
from engine.store.datadir import check_writable
from engine.store.db import DB_NAME, Store


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    """Each test starts as a freshly started program would: with the common umask 022, restored afterwards."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def world_readable(path: Path, content: bytes = b"x") -> Path:
    path.write_bytes(content)
    os.chmod(path, 0o644)
    return path


def test_a_new_data_dir_and_store_are_owner_only_and_so_is_what_comes_after(tmp_path):
    data = tmp_path / "data"
    store = Store.in_dir(data)
    try:
        store.save_json("x", {"a": 1})
        assert mode(data) == 0o700
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
            assert (data / name).exists(), name
            assert mode(data / name) == 0o600, (name, oct(mode(data / name)))
        later = data / "later.txt"
        later.write_text("a file this process writes afterwards")
        assert mode(later) == 0o600, oct(mode(later))
        (data / "sub").mkdir()
        assert mode(data / "sub") == 0o700
    finally:
        store.close()


def test_check_writable_creates_the_data_dir_owner_only(tmp_path):
    data = tmp_path / "deep" / "data"
    check_writable(data)
    assert mode(data) == 0o700
    assert os.umask(0o022) == 0o077  # and the process keeps creating owner-only files


def test_what_an_older_cockpit_left_world_readable_is_taken_down_to_owner_only(tmp_path):
    data = tmp_path / "data"
    Store.in_dir(data).close()
    os.chmod(data / DB_NAME, 0o644)
    os.chmod(data, 0o755)
    names = ("engine.lock", "trading.log", "errors.log.1", "trades.log", "cockpit.log", "incident_3.md")
    for name in names:
        world_readable(data / name)
    (data / "snapshots").mkdir(mode=0o755)
    os.chmod(data / "snapshots", 0o755)
    world_readable(data / "snapshots" / "snapshot_20240101T000000.000000Z.zip")
    Store.in_dir(data).close()
    assert mode(data) == 0o700 and mode(data / "snapshots") == 0o700
    for name in (DB_NAME, *names, "snapshots/snapshot_20240101T000000.000000Z.zip"):
        assert mode(data / name) == 0o600, (name, oct(mode(data / name)))


def test_nothing_that_is_not_cockpits_is_ever_chmodded(tmp_path):
    data = tmp_path / "data"
    Store.in_dir(data).close()
    os.chmod(data, 0o755)
    notes = world_readable(data / "notes.txt")  # the operator's own file in the data directory
    elsewhere = world_readable(tmp_path / "elsewhere.log")
    (data / "trading.log").symlink_to(elsewhere)  # a link named like a log: its target is not cockpit's
    Store.in_dir(data).close()
    assert mode(notes) == 0o644 and mode(elsewhere) == 0o644
    assert mode(data) == 0o755, "a directory that holds someone else's file is not cockpit's to close"
    assert mode(data / DB_NAME) == 0o600

    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o755)
    os.chmod(foreign, 0o755)
    conn = sqlite3.connect(foreign / DB_NAME)
    conn.execute("create table invoices (id integer primary key)")
    conn.commit()
    conn.close()
    os.chmod(foreign / DB_NAME, 0o644)
    log = world_readable(foreign / "trading.log")
    with pytest.raises(StoreError, match="not cockpit's"):
        Store.in_dir(foreign)
    assert mode(foreign / DB_NAME) == 0o644 and mode(foreign) == 0o755 and mode(log) == 0o644
    from engine.store.datadir import make_private

    make_private(foreign)  # as a front end calls it: cockpit's log is closed, the foreign store and its dir are not
    assert mode(foreign / DB_NAME) == 0o644 and mode(foreign) == 0o755 and mode(log) == 0o600


def test_a_shared_directory_is_never_closed(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp
    Store.in_dir(shared).close()
    assert mode(shared) == 0o1777
    assert mode(shared / DB_NAME) == 0o600


@pytest.mark.slow  # a real engine on the simulator, through a kill-switch trip
async def test_every_file_an_engine_run_writes_is_owner_only(sim: Simulator, tmp_path):
    data = tmp_path / "data"
    engine = Engine(
        Settings(
            venue=VenueConfig(
                exchange="binance",
                rest_url=sim.rest_url,
                ws_url=sim.ws_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
            ),
            engine=EngineConfig(data_dir=data),
            risk=RiskConfig(max_position_pct=Decimal("20")),
            strategy=StrategyConfig(enabled=False),
        )
    )
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        last = engine.portfolio.last["BTC/USDT"]
        placed = await engine.execute(
            PlaceOrder(
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.002"),
                price=last * Decimal("0.9"),
                stop_loss=last * Decimal("0.5"),
            )
        )
        assert placed.ok, placed.message
        assert (await engine.execute(CancelAll(actor="operator:test", reason="drill"))).ok
        await eventually(lambda: list((data / "snapshots").glob("*.zip")), timeout=10, message="incident snapshot")
    finally:
        await engine.stop()
    seen = {p.relative_to(data).as_posix(): mode(p) for p in data.rglob("*")}
    assert {DB_NAME, "engine.lock", "trading.log", "snapshots"} <= set(seen), seen
    assert mode(data) == 0o700
    wrong = {name: oct(m) for name, m in seen.items() if m != (0o700 if (data / name).is_dir() else 0o600)}
    assert not wrong, wrong
