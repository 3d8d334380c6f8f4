"""One engine per data directory: a lock file keeps a second instance from sharing state by accident."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


# The SQLite store's file in a data directory (``engine.store``); here so that a command can look for it without
# importing the store.
DB_NAME = "cockpit.db"


class DataDirBusy(Exception):
    """Another engine already runs on this data directory."""


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<data_dir>/engine.lock``, released on exit or crash."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "engine.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
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
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
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
