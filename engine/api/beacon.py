"""The engine's beacon: its trading state in a small file of fixed size that other shells read when the store
cannot tell them (a full disk leaves the engine HALTED in memory, unable to record it).

The file (``engine.state`` in the data directory) is created at start at its full size and from then on only
overwritten in place, never grown: a disk with no block free still takes the write. ``cockpit status`` reads it
and, while the engine that wrote it runs, believes it over the store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

BEACON_NAME = "engine.state"
SIZE = 4096


class Beacon:
    """The writer, held by the running engine."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / BEACON_NAME
        self._fd: int | None = None

    def open(self) -> None:
        """Create the file at its full size (at start, while the disk has room)."""
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, SIZE)
        if hasattr(os, "posix_fallocate"):  # the blocks themselves, not a sparse file that would need them later
            os.posix_fallocate(self._fd, 0, SIZE)

    def write(self, state: dict[str, Any]) -> bool:
        """Overwrite the beacon in place; False when it could not be written (it is advice, never a failure)."""
        if self._fd is None:
            return False
        data = json.dumps(state, default=str, separators=(",", ":")).encode()[: SIZE - 1]
        try:
            os.pwrite(self._fd, data + b" " * (SIZE - len(data)), 0)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read(data_dir: Path) -> dict[str, Any] | None:
    """What the beacon in ``data_dir`` says, or None (no engine has written one, or it is unreadable)."""
    try:
        raw = (Path(data_dir) / BEACON_NAME).read_bytes()
        value = json.loads(raw.decode().strip() or "null")
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
