"""The data directory: whose files are in it (cockpit's store is marked as cockpit's and anything else is refused
before a byte is written), who may read them (its owner only), and one engine per directory (a lock file keeps a
second instance from sharing state by accident)."""

from __future__ import annotations

import fcntl
import fnmatch
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import quote

from engine.kernel.errors import StoreError, os_reason, unwritable
from engine.store.schema import SCHEMA_VERSION, newer, tables_at

# The SQLite store's file in a data directory (``engine.store.db``); here so that a command can look for it without
# importing the store.
DB_NAME = "cockpit.db"
SQLITE_MAGIC = b"SQLite format 3\x00"

# cockpit's mark on its stores: SQLite's ``PRAGMA application_id`` (the 4 bytes at offset 68 of the file's header,
# meant for exactly this), set when cockpit creates a store or adopts one an older cockpit made. It is the ASCII
# bytes "CKPT" read as a big-endian integer: 0x434B5054 = 1129009236 (``file(1)`` shows it too). A file whose id is
# another program's is never opened for writing; one with id 0 is cockpit's only if it holds every table of
# cockpit's schema at its ``meta.schema_version``, columns included (a store from before the mark).
APPLICATION_ID = int.from_bytes(b"CKPT", "big")

# The process umask once cockpit runs: what it writes (the store and its journal, logs, snapshots, incident
# reports, validation reports, the lock) is trading history, positions and balances, for its owner alone. umask is
# the one setting that covers every file the process makes, by any module or library, now or later added, and its
# children (a notifier's command) inherit it; cockpit writes nothing meant for another user to read.
PRIVATE_UMASK = 0o077

# What cockpit itself makes in a data directory (file names; rotated logs get .1, .2...). Only these are made
# owner-only by ``make_private``, and the directory only when it holds nothing else.
_STORE_FILES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal")
_OWN_FILES = (
    "engine.lock",
    "engine.state",  # the beacon (engine.api.beacon)
    "cockpit.log",
    "cockpit.log.[0-9]*",
    "trading.log",
    "trading.log.[0-9]*",
    "errors.log",
    "errors.log.[0-9]*",
    "trades.log",
    "trades.log.[0-9]*",
    "incident_*.md",
    "validation_report_*.json",
)
_SNAPSHOTS = "snapshots"
_SNAPSHOT_FILES = ("snapshot_*.zip",)


@dataclass(frozen=True)
class StoreFile:
    """What a store file is: ``new`` (none yet, or 0 bytes: cockpit's to create), ``ours`` (marked as cockpit's),
    or ``legacy`` (an older cockpit's, unmarked but with all of cockpit's tables); ``version`` its schema's."""

    kind: Literal["new", "ours", "legacy"]
    version: int = 0


def inspect_store(path: Path, writing: bool = True) -> StoreFile:
    """What the file at ``path`` is, found without a lock, a journal or a byte written; StoreError saying what to do
    when cockpit must not use it: not an SQLite file, another program's database, a damaged (truncated) store, or,
    when ``writing``, one a newer cockpit wrote."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(100)
    except FileNotFoundError:
        if _wal_size(path):
            raise StoreError(damaged(path, f"its write-ahead log {path.name}-wal is there but not the store")) from None
        return StoreFile("new")
    except IsADirectoryError:
        raise StoreError(
            f"{path} is a directory, not a cockpit store: move it away or pass another --data-dir"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}; check the data directory's permissions") from None
    wal = _wal_size(path)
    if size == 0:
        if wal:
            raise StoreError(damaged(path, f"it is empty, and its write-ahead log {path.name}-wal is not"))
        return StoreFile("new")
    if head[:16] != SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not a cockpit store: it is not an SQLite database. cockpit never writes to a "
            "file that is not its own: move it away or pass another --data-dir"
        )
    problem = _header_problem(head, size, wal)
    if problem:
        raise StoreError(damaged(path, problem))
    app_id = int.from_bytes(head[68:72], "big")
    if app_id not in (0, APPLICATION_ID):
        raise StoreError(
            f"{path} is an SQLite database but not cockpit's: its application id ({app_id:#010x}) is another "
            "program's. cockpit never writes to a file that is not its own: move it away or pass another --data-dir"
        )
    conn = _peek(path, wal)
    try:
        found = _classify(conn, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(explain_store_error(path, exc, readonly=True)) from None
    finally:
        conn.close()
    if writing and found.version > SCHEMA_VERSION:
        raise StoreError(newer(path, found.version))
    return found


def refuse_foreign(path: Path) -> None:
    """StoreError for a file that cockpit must not write (see ``inspect_store``): nothing is created or removed (a
    front end checks before it starts the engine, which opens the store for writing)."""
    inspect_store(path, writing=True)


def _wal_size(path: Path) -> int:
    try:
        return os.stat(f"{path}-wal").st_size
    except OSError:
        return 0


def _header_problem(head: bytes, size: int, wal: int) -> str | None:
    """What the SQLite header says is wrong with the file, read from its 100 bytes (None when nothing)."""
    if len(head) < 100:
        return f"it ends after {size} bytes, inside its header"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return "its header is corrupt"
    pages = int.from_bytes(head[28:32], "big")
    # The size in the header is valid when the change counter matches "version-valid-for". With a write-ahead log
    # the file may be mid-checkpoint (page 1 written before the pages it counts): SQLite's own reads judge it then.
    if not wal and pages and head[24:28] == head[92:96] and size < pages * page_size:
        return f"it is truncated: {size} bytes of the {pages * page_size} its header says it holds"
    return None


def _peek(path: Path, wal: int) -> sqlite3.Connection:
    """A connection that reads ``path`` and writes nothing, not even a -wal or -shm file: the file alone, unless a
    write-ahead log is there (an engine running, or one that stopped abruptly), which is read too."""
    uri = "file:" + quote(str(path), safe="/")
    if wal:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()  # a read-only directory: what the file itself holds
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def _classify(conn: sqlite3.Connection, path: Path) -> StoreFile:
    app_id = conn.execute("pragma application_id").fetchone()[0]
    names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' order by rowid")]
    row = conn.execute("select value from meta where key = 'schema_version'").fetchone() if "meta" in names else None
    text = None if row is None else row[0]
    try:
        version = None if text is None else int(text)
    except (TypeError, ValueError):
        if app_id == APPLICATION_ID:
            raise StoreError(damaged(path, f"its schema version {text!r} is not a number")) from None
        version = None
    if app_id == APPLICATION_ID:
        return StoreFile("ours", version or 0)
    if app_id != 0:
        raise StoreError(
            f"{path} is an SQLite database but not cockpit's: its application id ({app_id:#010x}) is another "
            "program's. cockpit never writes to a file that is not its own: move it away or pass another --data-dir"
        )
    # Unmarked: an older cockpit's store only if every table of cockpit's schema at its version is there.
    listed = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "") if names else "none"
    why = _not_cockpits_schema(conn, names, version)
    if why:
        raise StoreError(
            f"{path} is an SQLite database but not cockpit's (tables: {listed}): {why}. cockpit never writes to a "
            "file that is not its own: move it away or pass another --data-dir"
        )
    assert version is not None
    return StoreFile("legacy", version)


def _not_cockpits_schema(conn: sqlite3.Connection, names: list[str], version: int | None) -> str | None:
    """Why an unmarked SQLite database is not a store an older cockpit made (None when it is one)."""
    if not names:
        return "it holds no table and no cockpit mark"
    if "meta" not in names:
        return "it has no cockpit mark and no cockpit schema"
    if version is None:
        return "it has a meta table but no cockpit schema version"
    if not 1 <= version <= SCHEMA_VERSION:
        return f"no cockpit wrote schema version {version} without marking the file as cockpit's"
    missing: list[str] = []
    for table, columns in sorted(tables_at(version).items()):
        if table not in names:
            missing.append(table)
            continue
        have = {r[1] for r in conn.execute("select * from pragma_table_info(?)", (table,))}
        missing.extend(f"{table}.{c}" for c in sorted(columns - have))
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        return f"cockpit's schema {version} is not there (no {shown})"
    return None


def damaged(path: Path, reason: str) -> str:
    """What to say of a store that is cockpit's but damaged, and what to do."""
    return (
        f"the cockpit store {path} is damaged: {reason}. cockpit never writes to a damaged store: move it aside "
        f"(with its {path.name}-wal and {path.name}-shm files, if any) and start cockpit, which creates a new one; the "
        "venue keeps the truth (open orders and balances are read back from it at the start), and the moved file "
        "keeps the history for whoever wants to recover it"
    )


def explain_store_error(path: Path, exc: BaseException, readonly: bool) -> str:
    """What is wrong with the store at ``path`` and what to do, for an error SQLite or the OS raised opening it."""
    reason = getattr(exc, "strerror", None) or str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return damaged(path, f"SQLite says {reason!r}")
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


# ---------------------------------------------------------------- owner-only files


def private_umask() -> None:
    """From now on every file and directory this process creates is its owner's alone (see ``PRIVATE_UMASK``)."""
    os.umask(PRIVATE_UMASK)


def make_private(data_dir: Path, store_checked: bool = False) -> None:
    """Make ``data_dir`` its owner's alone: the umask (``private_umask``), the directory created 0700, and what
    cockpit made there before (an older cockpit's 0644 store, logs, snapshots) taken down to owner-only. Only
    cockpit's own files are changed (by name, owned by this user, the store only once it is known to be cockpit's,
    ``store_checked`` saying the caller checked it), and an existing directory only when it holds nothing else and
    is not a shared one (sticky, like /tmp); permissions are only ever taken away, never given. OSError: the
    directory cannot be created; a change the file system refuses (read-only) is left undone."""
    private_umask()
    data_dir = Path(data_dir)
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
        _owner_only(data_dir)
        return
    if not store_checked:
        try:
            inspect_store(data_dir / DB_NAME, writing=False)
            store_checked = True
        except StoreError:
            store_checked = False  # another program's file, or a damaged one: left exactly as it is
    if _private_entries(data_dir, (*_OWN_FILES, *(_STORE_FILES if store_checked else ())), _SNAPSHOTS):
        _owner_only(data_dir)


def _private_entries(folder: Path, patterns: tuple[str, ...], subfolder: str | None) -> bool:
    """Take cockpit's files in ``folder`` down to owner-only; True when it holds nothing that is not cockpit's."""
    only_ours = True
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    for entry in entries:
        if subfolder is not None and entry.name == subfolder and entry.is_dir(follow_symlinks=False):
            if _private_entries(Path(entry.path), _SNAPSHOT_FILES, None):
                _owner_only(Path(entry.path))
            else:
                only_ours = False
        elif any(fnmatch.fnmatchcase(entry.name, p) for p in patterns) and entry.is_file(follow_symlinks=False):
            _owner_only(Path(entry.path))
        else:
            only_ours = False
    return only_ours


def _owner_only(path: Path) -> None:
    """Take the group's and others' permissions off ``path`` (a file or directory of this user, not a link, not a
    shared directory): 0644 becomes 0600 and 0755 0700; what its owner may do is kept as it is, never added to."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if st.st_uid != os.geteuid() or stat.S_ISLNK(st.st_mode) or st.st_mode & stat.S_ISVTX:
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        try:
            os.chmod(path, mode & ~0o077)
        except OSError:
            pass  # a read-only file system: its files stay as they are (and nothing new is written there either)


def _private_file(path: str, flags: int) -> int:
    """An ``opener`` creating a file owner-only whatever the umask."""
    return os.open(path, flags, 0o600)


class DataDirBusy(Exception):
    """Another engine already runs on this data directory."""


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<data_dir>/engine.lock``, released on exit or crash."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "engine.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fh = open(self.path, "a+", encoding="utf-8", opener=_private_file)
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
        make_private(data_dir)
    except OSError as exc:
        raise StoreError(cannot_write(data_dir, exc)) from None
    if unwritable(data_dir):
        raise StoreError(cannot_write(data_dir))
