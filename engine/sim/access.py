"""Who may talk to the simulator: loopback peers, a ``Host:`` naming loopback, and a token for the control API.

- Every HTTP request and websocket handshake must carry one ``Host:`` header naming loopback (127.0.0.0/8,
  ``localhost``, ``[::1]``, with or without a port) or the address the simulator is bound to. A web page that
  re-binds its own DNS name to 127.0.0.1 sends its own name and is refused (421): the DNS-rebinding defence.
- The control API (``/sim/...``) also needs the simulator's control token, generated at start
  (``Simulator.control_token``), as ``Authorization: Bearer <token>`` or ``X-Cockpit-Sim-Token: <token>``.
  ``cockpit sim`` prints it and writes it to a file only its owner can read (:func:`default_token_file`, by REST
  port), where ``cockpit sim fault`` finds it.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

TOKEN_HEADER = "X-Cockpit-Sim-Token"
ENV_TOKEN = "COCKPIT_SIM_TOKEN"
TOKEN_DIR_NAME = "cockpit-sim"
LOOPBACK_NAMES = "127.0.0.1, localhost or [::1]"


class TokenFileError(Exception):
    """The token file's directory is not private to this user (or cannot be made so)."""


def is_loopback(remote: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 peers (and the name ``localhost``)."""
    if not remote:
        return False
    if remote.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(remote.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack listener
    return (mapped or address).is_loopback


def host_name(header: str) -> str | None:
    """The name in a ``Host:`` value (``127.0.0.1:8080`` -> ``127.0.0.1``, ``[::1]:80`` -> ``::1``), lower case,
    without a trailing dot; None if it is not a well-formed host[:port]."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, port = value[1:end], value[end + 1 :]
    else:
        name, colon, digits = value.partition(":")
        port = colon + digits
    if port and not (port[0] == ":" and port[1:].isdigit()):
        return None
    name = name.removesuffix(".")
    return name or None


class HostCheck:
    """Accepts a ``Host:`` naming loopback, or the IP address the simulator is bound to (never a DNS name other
    than localhost: a name is what a DNS-rebinding page sends)."""

    def __init__(self, bound_host: str = "127.0.0.1") -> None:
        self.extra: frozenset[str] = frozenset()
        try:
            address = ipaddress.ip_address(bound_host.strip("[]"))
        except ValueError:
            return
        if not address.is_unspecified:  # 0.0.0.0 / :: are not addresses a client can name
            self.extra = frozenset({str(address)})

    def allows(self, headers: Sequence[str]) -> bool:
        """``headers``: every ``Host:`` value of the request; exactly one, naming loopback or the bound address."""
        if len(headers) != 1:
            return False
        name = host_name(headers[0])
        if name is None:
            return False
        return is_loopback(name) or name in self.extra

    def refusal(self, headers: Sequence[str]) -> str:
        """The message of a refused request."""
        shown = ", ".join(repr(h[:100]) for h in headers) or "none"
        return (
            f"Misdirected request: this simulator answers requests for {LOOPBACK_NAMES} only "
            f"(Host: {shown}); a web page's own name is refused (DNS rebinding)"
        )


# ----- the control token ---------------------------------------------------------------------------------------
def new_token() -> str:
    """A fresh control token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def request_token(authorization: str | None, header_token: str | None) -> str | None:
    """The token a request carries: ``Authorization: Bearer <token>`` or ``X-Cockpit-Sim-Token: <token>``."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if header_token and header_token.strip():
        return header_token.strip()
    return None


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (a wrong token's first characters tell nothing)."""
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def token_dir() -> Path:
    """Where ``cockpit sim`` keeps its token files: ``$XDG_RUNTIME_DIR/cockpit-sim`` (a per-user tmpfs), else
    ``<tmp>/cockpit-sim-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / TOKEN_DIR_NAME
    return Path(tempfile.gettempdir()) / f"{TOKEN_DIR_NAME}-{os.getuid()}"


def default_token_file(rest_port: int) -> Path:
    """The token file of the simulator serving REST on ``rest_port`` (what ``cockpit sim fault`` reads)."""
    return token_dir() / f"rest-{rest_port}.token"


def _private_dir(path: Path) -> None:
    """Create ``path`` 0700, or check that it is a directory of this user's that nobody else can enter."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise TokenFileError(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise TokenFileError(f"{path} belongs to another user")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable and writable by its owner only (0600), atomically. The default
    directory (:func:`token_dir`) is created 0700 and must belong to this user."""
    if path.parent == token_dir():
        _private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, f"{token}\n".encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_token_file(path: Path) -> str | None:
    """The token in ``path``, or None if there is no readable token there."""
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def remove_token_file(path: Path, token: str) -> None:
    """Delete ``path`` if it still holds ``token`` (not a newer simulator's)."""
    if read_token_file(path) == token:
        path.unlink(missing_ok=True)


def mask_key(key: str) -> str:
    """An API key as shown by ``/sim/status``: enough to tell keys apart, not enough to use one."""
    if len(key) >= 16:
        return f"{key[:4]}...{key[-4:]}"
    return f"{key[:2]}..."
