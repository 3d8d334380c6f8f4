"""Where the engine's local API listens: ``DATA_DIR/cockpit.sock``, and how to reach a path that long.

Standard library only: the command line imports this before anything else of the engine's.
"""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

SOCKET_NAME = "cockpit.sock"


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_NAME


def bindable(path: Path) -> tuple[str, int | None]:
    """A name ``bind``/``connect`` take for ``path``: the path itself, or (longer than a socket address holds,
    107 bytes) the same file reached through an open descriptor of its directory (``/proc/self/fd/N/name``)."""
    text = os.fsencode(path)
    if len(text) < 104:
        return str(path), None
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{path.name}", fd


def connect_unix(path: Path, timeout: float) -> socket.socket:
    """A connected socket to the engine's local API (OSError when no engine listens there)."""
    name, fd = bindable(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(name)
    except OSError:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return sock


def user_name(uid: int) -> str:
    """The login name of ``uid`` (``uid1001`` when it has none)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"
