"""The one error the engine raises to a front end: it cannot do what was asked, and the message says why."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class EngineError(Exception):
    """The engine cannot do what was asked; the message says why and what to do."""


class StoreError(EngineError):
    """The store cannot be used: not cockpit's, damaged, or not writable; the message says what to do."""


def unwritable(directory: Path) -> str | None:
    """What keeps ``directory`` from being written, in the operator's words (None when nothing seems to)."""
    try:
        stat = os.statvfs(directory)
    except OSError:
        return None
    if stat.f_flag & os.ST_RDONLY:
        return "the file system is read-only"
    if not os.access(directory, os.W_OK):
        return "no permission to write there"
    if stat.f_bavail == 0:
        return "the disk is full"
    return None


def os_reason(exc: OSError) -> str:
    """An OS error in the operator's words."""
    return {
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "no permission to write there",
        errno.EPERM: "no permission to write there",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
    }.get(exc.errno or 0, exc.strerror or str(exc))
