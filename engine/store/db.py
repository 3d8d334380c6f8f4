"""SQLite persistence (sqlite-utils, WAL): the store subscribes to engine events and can restore state.

``Store`` is the facade: it opens the file (``schema`` creates and migrates the tables), writes what events say with
group commit (``writer``), answers typed read queries (``queries``), and queues commands from other shells. Every
Decimal is stored as TEXT so no amount ever passes through a float (``rows``).
"""

from __future__ import annotations

import os
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlite_utils

from engine.kernel.errors import StoreError
from engine.kernel.events import utcnow
from engine.store.datadir import APPLICATION_ID, DB_NAME, explain_store_error, inspect_store, make_private
from engine.store.queries import Queries
from engine.store.rows import alert_from_row, dumps, fill_from_row
from engine.store.schema import SCHEMA_VERSION, migrate
from engine.store.writer import COMMIT_AT_ONCE, MAX_DEFER_S, Writer

# What others import from here (the names lived in this module before the store was split by concern).
__all__ = [
    "COMMIT_AT_ONCE",
    "APPLICATION_ID",
    "DB_NAME",
    "MAX_DEFER_S",
    "SCHEMA_VERSION",
    "Store",
    "alert_from_row",
    "dumps",
    "fill_from_row",
]


# The mark of a command the engine queued again itself at start (the inbox runs it whoever asked for it).
REQUEUED = "requeued: the engine stopped while running it"


class Store(Writer, Queries):
    """The engine's SQLite file: orders, order events, fills, balances, alerts and engine state."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        super().__init__()  # the writer's group-commit state
        # Before anything is written, created or chmod-ed: a file that is not cockpit's, or a damaged store, is
        # refused (StoreError), left byte for byte as it was, with no -wal or -shm beside it.
        found = inspect_store(path, writing=not readonly)
        try:
            if readonly:
                self.db = sqlite_utils.Database(_read_only(path))
                return
            make_private(path.parent, store_checked=True)  # owner-only: the directory, its files, what comes next
            if found.kind == "new":
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # its -wal and -shm get its mode
            self.db = sqlite_utils.Database(path)
            if found.kind != "ours":  # a new store, or one an older cockpit made: marked as cockpit's
                self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=FULL")
            migrate(self.db, self.path)
        except (sqlite3.Error, OSError, StoreError) as exc:
            # Hold no connection to a file refused or half-opened: left to the garbage collector, a connection from
            # before the store is in WAL mode makes every later connection of this process read a stale file.
            if getattr(self, "db", None) is not None:
                self.db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(explain_store_error(path, exc, readonly)) from None

    @classmethod
    def in_dir(cls, data_dir: Path, readonly: bool = False) -> Store:
        return cls(Path(data_dir) / DB_NAME, readonly=readonly)

    @classmethod
    def reader(cls, data_dir: Path) -> Store:
        """Another read-only connection for the process that holds the store open (the engine: its queries in
        threads, its token checks). The file is never opened outside SQLite here: closing any descriptor of it
        would drop every POSIX lock the process holds on it (the engine's own connection's too), and another
        process closing its connection would then take the engine for gone and delete the write-ahead log under it
        ("disk I/O error"; SQLite's "How To Corrupt" §2.2). The engine checked the file when it opened it."""
        store = cls.__new__(cls)
        store.path = Path(data_dir) / DB_NAME
        Writer.__init__(store)
        try:
            store.db = sqlite_utils.Database(
                sqlite3.connect(f"file:{quote(str(store.path), safe='/')}?mode=ro", uri=True)
            )
        except sqlite3.Error as exc:
            raise StoreError(explain_store_error(store.path, exc, True)) from None
        return store

    def close(self) -> None:
        self.write_pending()
        self.flush()
        self.close_sync()
        self.db.close()

    # ------------------------------------------------------------ commands from other shells

    def submit_command(self, command: str, actor: str, reason: str, args: dict[str, Any] | None = None) -> int:
        """Queue a command for the running engine; return its id."""
        self.flush()  # its own transaction follows: nothing written before may wait on it
        table = self.db.table("commands")
        table.insert(
            {
                "ts": utcnow().isoformat(),
                "command": command,
                "args": dumps(args or {}),
                "actor": actor,
                "reason": reason,
                "status": "pending",
            }
        )
        if table.last_rowid is None:  # sqlite3 sets it for every row inserted: never seen
            raise StoreError(f"the command {command!r} was not queued")
        return table.last_rowid  # the id: ``id`` is the table's rowid

    def pending_commands(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from commands where status = 'pending' order by id"))

    def abandon_running_commands(self, rerun: tuple[str, ...] = ()) -> int:
        """At start: commands a previous engine was running when it stopped are failed (never run twice), except
        those in ``rerun`` (the kill switch's: running one again is safe), which are queued again."""
        self.flush()  # its own transaction follows: nothing written before may wait on it
        marks = ", ".join("?" for _ in rerun) or "''"
        with self.db.conn:
            self.db.execute(
                f"update commands set status = 'pending', ts = ?, result = '{REQUEUED}' where status = 'running' "
                f"and command in ({marks})",
                [utcnow().isoformat(), *rerun],
            )
            cursor = self.db.execute(
                "update commands set status = 'failed', result = 'the engine stopped while running it; check "
                "`cockpit audit` and `cockpit status` for what it did', done_ts = ? where status = 'running'",
                [utcnow().isoformat()],
            )
        return cursor.rowcount

    def record_running_command(self, command: str, actor: str, reason: str, args: dict[str, Any] | None) -> int:
        """A command the engine received by its API and runs now: on disk (running) before it acts, so a crash
        in the middle is found at the next start (a kill-switch command runs again, any other is failed)."""
        self.flush()  # its own transaction follows: nothing written before may wait on it
        with self.db.conn:
            cursor = self.db.execute(
                "insert into commands (ts, command, args, actor, reason, status) values (?, ?, ?, ?, ?, 'running')",
                [utcnow().isoformat(), command, dumps(args or {}), actor, reason],
            )
        return int(cursor.lastrowid or 0)

    def note_running_command(self, command: str, actor: str, reason: str, args: dict[str, Any] | None) -> int:
        """``record_running_command`` inside the open transaction, without a commit of its own: a kill-switch tier's
        row rides on the halt's commit, which comes before its first request leaves (decision BEN-07)."""
        cursor = self.conn.execute(
            "insert into commands (ts, command, args, actor, reason, status) values (?, ?, ?, ?, ?, 'running')",
            [utcnow().isoformat(), command, dumps(args or {}), actor, reason],
        )
        self._wrote()
        return int(cursor.lastrowid or 0)

    def note_command_done(self, command_id: int, ok: bool, result: str, details: Any = None) -> None:
        """``finish_command`` inside the open transaction: committed with what follows a tier's answer."""
        self.conn.execute(
            "update commands set status = ?, result = ?, done_ts = ?, details = ? where id = ?",
            ["done" if ok else "failed", result, utcnow().isoformat(), dumps(details) if details else None, command_id],
        )
        self._wrote()

    def requeue_command(self, command_id: int) -> None:
        self.flush()  # its own transaction follows: nothing written before may wait on it
        self.db.execute("update commands set status = 'pending' where id = ? and status = 'running'", [command_id])
        self.db.conn.commit()

    def claim_command(self, command_id: int) -> bool:
        """Mark a pending command running; False if it was not pending (it runs at most once)."""
        self.flush()  # its own transaction follows: nothing written before may wait on it
        with self.db.conn:
            cursor = self.db.execute(
                "update commands set status = 'running' where id = ? and status = 'pending'", [command_id]
            )
        return cursor.rowcount == 1

    def finish_command(self, command_id: int, ok: bool, result: str, details: Any = None) -> None:
        self.flush()  # its own transaction follows: nothing written before may wait on it
        self.db.table("commands").update(
            command_id,
            {
                "status": "done" if ok else "failed",
                "result": result,
                "done_ts": utcnow().isoformat(),
                "details": dumps(details) if details else None,
            },
        )

    def command(self, command_id: int) -> dict[str, Any]:
        return self.db.table("commands").get(command_id)

    # ------------------------------------------------------------ curves, counters, blobs

    def record_equity(self, equity: Decimal, peak: Decimal, drawdown_pct: Decimal) -> None:
        self._put_equity(equity, peak, drawdown_pct)
        self._wrote()

    def save_day(self, data: dict[str, Any]) -> None:
        self._put_day(data)
        self._wrote()

    def save_json(self, key: str, value: Any) -> None:
        self._put_json(key, value)
        self._wrote()


def _read_only(path: Path) -> sqlite3.Connection:
    """Open for reading only; on a read-only directory (no -shm can be made) read it as immutable."""
    if not path.exists():
        raise sqlite3.OperationalError("no such file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("select count(*) from sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if os.access(path.parent, os.W_OK):
            raise
        # A read-only directory: the WAL index cannot be made, so read the file as it is (what the last
        # checkpoint holds; a halt still only in the WAL is not seen: the message of `status` says so).
        return sqlite3.connect(f"file:{path}?immutable=1", uri=True)
