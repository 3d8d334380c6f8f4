"""A client of the service API for the command line: HTTP over the data directory's Unix socket, stdlib only.

``cockpit halt`` and the other commands talk to a running engine here, and get its answer in milliseconds. The
socket's peer credentials tell the engine who is asking; nothing the client sends can change that.
"""

from __future__ import annotations

import http.client
import json
import logging
from pathlib import Path
from typing import Any

from engine.api.local import connect_unix, socket_path

log = logging.getLogger(__name__)


class EngineUnreachable(OSError):
    """No engine answers on the data directory's socket (none runs, or it is not listening yet)."""


class NotYours(PermissionError):
    """The engine on this data directory runs as another user: its socket (and store) are that user's alone."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = connect_unix(self.path, self.timeout if isinstance(self.timeout, (int, float)) else 30.0)


def call(
    data_dir: Path,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    timeout: float = 30.0,
    front_end: str = "cli",
) -> tuple[int, Any]:
    """One request to the engine on ``data_dir``: (HTTP status, decoded JSON answer). EngineUnreachable when no
    engine listens; an engine that answered is never retried (a command runs at most once)."""
    conn = _UnixConnection(socket_path(data_dir), timeout)
    try:
        try:
            conn.connect()
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise EngineUnreachable(str(exc)) from None
        except PermissionError:
            raise NotYours(
                f"the engine's socket {socket_path(data_dir)} belongs to another user: run the command as the "
                "engine's user (e.g. sudo -u cockpit cockpit ...)"
            ) from None
        payload = None if body is None else json.dumps(body).encode()
        headers = {"X-Cockpit-Front-End": front_end, "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    except TimeoutError:
        raise TimeoutError(f"the engine did not answer {method} {path} within {timeout:g}s") from None
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw or b"null")
    except ValueError:
        return response.status, {"ok": False, "message": raw[:200].decode("utf-8", "replace")}


def command(
    data_dir: Path, name: str, args: dict[str, Any] | None, reason: str, timeout: float = 30.0
) -> tuple[bool, str, dict[str, Any] | None]:
    """Run command ``name`` on the running engine: (ok, message, details)."""
    status, answer = call(
        data_dir, "POST", f"/api/commands/{name}", {"args": args or {}, "reason": reason}, timeout=timeout
    )
    if not isinstance(answer, dict):
        return False, f"the engine answered {status} with no message", None
    return bool(answer.get("ok")), str(answer.get("message", "")), answer.get("details")


def command_if_running(
    data_dir: Path, name: str, args: dict[str, Any] | None, reason: str, timeout: float
) -> tuple[bool, str, dict[str, Any] | None] | None:
    """Command ``name`` through the engine's socket: its answer (or why there is none from an engine that got it),
    or None when no engine listens there (none runs, or it has not served its socket yet)."""
    if not socket_path(data_dir).exists():
        return None
    try:
        return command(data_dir, name, args, reason, timeout)
    except EngineUnreachable:
        return None  # a dead engine's socket file
    except TimeoutError as exc:
        return False, f"{exc}; see `cockpit audit` for whether it ran", None
    except NotYours as exc:
        return False, str(exc), None
    except OSError as exc:
        log.warning("the engine's socket failed (%s): the command goes another way", exc)
        return None
