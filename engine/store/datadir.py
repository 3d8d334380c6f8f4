"""One engine per data directory: a lock file keeps a second instance from sharing state by accident."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import IO

from engine.kernel.errors import StoreError, os_reason, unwritable

# The SQLite store's file in a data directory (``engine.store.db``); here so that a command can look for it without
# importing the store.
DB_NAME = "cockpit.db"
SQLITE_MAGIC = b"SQLite format 3\x00"


def refuse_foreign(path: Path) -> None:
    """StoreError for a file that is not cockpit's, read without locks or journals: nothing is created or removed
    (a front end checks before it starts the engine, which opens the store for writing). Here, not in the store,
    so that the check costs no import of it."""
    check_own(path)
    if not path.exists():
        return
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        check_tables(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(explain_store_error(path, exc, readonly=True)) from None
    finally:
        conn.close()


def explain_store_error(path: Path, exc: BaseException, readonly: bool) -> str:
    """What is wrong with the store at ``path`` and what to do, for an error SQLite or the OS raised opening it."""
    reason = getattr(exc, "strerror", None) or str(exc)
    if readonly:
        return (
            f"cannot read the cockpit store {path}: {reason}. If an older cockpit wrote it, start the engine "
            "once to upgrade it"
        )
    reason = unwritable(path.parent) or reason  # SQLite says "unable to open database file" for all of them
    return (
        f"cannot write the cockpit store {path}: {reason}. cockpit needs a writable data directory "
        f"({path.parent}) with free space: fix its permissions, remount it writable or free space, or pass "
        f"another --data-dir (cockpit status --data-dir {path.parent} still reads it)"
    )


def check_own(path: Path) -> None:
    """Refuse, before writing a byte, a file that is not an SQLite database."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}; check the data directory's permissions") from None
    if head and head != SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not a cockpit store: it is not an SQLite database. cockpit never writes to a "
            "file that is not its own: move it away or pass another --data-dir"
        )


def check_tables(conn: sqlite3.Connection, path: Path) -> None:
    """An SQLite file with tables but no cockpit schema is someone else's: refuse it, untouched."""
    names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
    if names and "meta" not in names:
        raise StoreError(
            f"{path} is an SQLite database but not cockpit's (tables: {', '.join(names[:6])}). cockpit "
            "never writes to a file that is not its own: move it away or pass another --data-dir"
        )
    if "meta" in names:
        row = conn.execute("select value from meta where key = 'schema_version'").fetchone()
        if row is None:
            raise StoreError(
                f"{path} has a meta table but no cockpit schema version: it is not cockpit's. Move it "
                "away or pass another --data-dir"
            )


class DataDirBusy(Exception):
    """Another engine already runs on this data directory."""


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<data_dir>/engine.lock``, released on exit or crash."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "engine.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise StoreError(cannot_write(self.path.parent, exc)) from None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "unknown"
            fh.close()
            raise DataDirBusy(
                f"another cockpit engine (pid {pid}) is running on {self.path.parent}; "
                "command it with `cockpit halt` / `cockpit status`, or start this one with --data-dir DIR"
            ) from None
        try:  # unbuffered, so that nothing is left to flush on a disk that refused it
            os.ftruncate(fh.fileno(), 0)
            os.pwrite(fh.fileno(), str(os.getpid()).encode(), 0)
        except OSError as exc:  # a full disk: not even the pid fits
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
            raise StoreError(cannot_write(self.path.parent, exc)) from None
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def engine_pid(data_dir: Path) -> str | None:
    """The pid of the engine running on ``data_dir``, or None when none holds its lock."""
    path = Path(data_dir) / "engine.lock"
    if not path.exists():
        return None
    with open(path, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            return fh.read().strip() or "unknown"
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None


def cannot_write(data_dir: Path, exc: OSError | None = None) -> str:
    """Why a data directory cannot be used for writing, and what to do."""
    reason = unwritable(data_dir) or (os_reason(exc) if exc is not None else "it cannot be written")
    return (
        f"cannot use the data directory {data_dir}: {reason}. cockpit keeps its store, lock and logs there and "
        "must write them: make it writable (permissions, remount, free space) or pass another --data-dir. "
        f"What it holds can still be read: cockpit status --data-dir {data_dir}"
    )


def check_writable(data_dir: Path) -> None:
    """Create ``data_dir`` if needed and make sure it can be written; StoreError saying why not and what to do."""
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(cannot_write(data_dir, exc)) from None
    if unwritable(data_dir):
        raise StoreError(cannot_write(data_dir))
