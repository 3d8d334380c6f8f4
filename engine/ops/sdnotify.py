"""systemd's notify protocol (sd_notify(3)) with the standard library: a ``Type=notify`` service tells the manager
when it is ready, what it is doing and that it is stopping, and feeds ``WatchdogSec=``'s watchdog.

Each notification is one datagram of ``KEY=VALUE`` lines to the socket named by ``$NOTIFY_SOCKET`` (a path, or
``@name`` for Linux's abstract namespace). Without that variable (not started by systemd) nothing is sent and every
call answers False. The watchdog is fed from the engine's own event loop, at half the timeout systemd gives in
``$WATCHDOG_USEC`` (sd_watchdog_enabled(3)): a loop that freezes stops feeding it, and systemd kills and restarts
the service. A notification that cannot be sent is logged, never raised: the engine trades on without systemd.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

# How long one datagram may take to leave (the manager's queue full): a ping is not worth holding the loop longer.
SEND_TIMEOUT_S = 0.5
# How often the status line is looked at when systemd asks for no watchdog.
STATUS_EVERY_S = 5.0


def socket_address(value: str | None) -> str | None:
    """The address ``$NOTIFY_SOCKET`` names: a filesystem path as it is, ``@name`` in the abstract namespace (its
    ``@`` becomes a NUL byte); None when unset or of a kind this module does not speak (``vsock:``)."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%r is neither a path nor @abstract: systemd is not told anything", value)
    return None


def watchdog_usec(environ: Mapping[str, str], pid: int) -> int | None:
    """The watchdog timeout systemd set for this process, in microseconds, or None when there is none (no
    ``$WATCHDOG_USEC``, or ``$WATCHDOG_PID`` names another process)."""
    usec, owner = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    try:
        if owner and int(owner) != pid:
            return None
        value = int(usec) if usec else 0
    except ValueError:
        log.warning("WATCHDOG_USEC=%r / WATCHDOG_PID=%r are not numbers: no watchdog pings", usec, owner)
        return None
    return value if value > 0 else None


def status_line(mode: str, venue: str, state: str, info: Mapping[str, Any], ready: bool) -> str:
    """One line for ``systemctl status``: where the engine trades and its trading state (who set it and why when it
    is not ACTIVE), or that it is still connecting."""
    if not ready:
        return f"starting: {mode} on {venue}, connecting to the venue; trading {state}"
    line = f"{mode} on {venue}: trading {state}"
    if state != "ACTIVE" and info.get("actor"):
        line += f" (by {info.get('actor')}: {info.get('reason') or 'no reason given'})"
    return line


class ServiceNotifier:
    """The service's side of the notify protocol, for one process; a no-op unless systemd set ``$NOTIFY_SOCKET``."""

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = socket_address(env.get("NOTIFY_SOCKET"))
        self.watchdog_usec = watchdog_usec(env, os.getpid() if pid is None else pid) if self.address else None
        self._failing = False  # a send failed: said once, and again when one goes through

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def interval(self) -> float | None:
        """Seconds between two ``WATCHDOG=1``: half the timeout (sd_watchdog_enabled(3)), or None with no watchdog."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2 / 1_000_000

    def send(self, *assignments: str) -> bool:
        """One datagram of ``KEY=VALUE`` lines; True when it left."""
        if self.address is None or not assignments:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(SEND_TIMEOUT_S)
                sock.connect(self.address)
                sock.sendall("\n".join(assignments).encode("utf-8", "replace"))
        except OSError as exc:
            if not self._failing:
                log.warning("cannot notify systemd (%s): %s", assignments[0].split("=")[0], exc)
            self._failing = True
            return False
        if self._failing:
            log.info("systemd notifications go through again")
        self._failing = False
        return True

    def ready(self, status: str) -> bool:
        """Start-up is done: systemd marks the unit started and arms its watchdog."""
        return self.send("READY=1", f"STATUS={_one_line(status)}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={_one_line(status)}")

    def stopping(self, status: str) -> bool:
        """A clean stop has begun."""
        return self.send("STOPPING=1", f"STATUS={_one_line(status)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def extend_start(self) -> bool:
        """Still starting and alive: give the start another watchdog period past ``TimeoutStartSec=``."""
        if self.watchdog_usec is None:
            return False
        return self.send(f"EXTEND_TIMEOUT_USEC={self.watchdog_usec}")

    async def serve(self, ready: asyncio.Event, status: Callable[[], str]) -> None:
        """The protocol as one task on the engine's loop, until cancelled: ``STATUS=`` while starting, with the start
        timeout extended every half watchdog period while the venue is not reached yet; ``READY=1`` once ``ready`` is
        set; then ``WATCHDOG=1`` every half period, and ``STATUS=`` again whenever ``status()`` says something new.

        Every message leaves from this loop, so a loop that stops turning stops feeding the watchdog."""
        if not self.enabled:
            return
        said = status()
        self.status(said)
        every = self.interval
        while not ready.is_set():
            try:
                async with asyncio.timeout(every):  # not wait_for: it can lose a cancellation (Python 3.11)
                    await ready.wait()
            except TimeoutError:
                self.extend_start()
        said = status()
        self.ready(said)
        while True:
            await asyncio.sleep(every or STATUS_EVERY_S)
            now = status()
            assignments = (["WATCHDOG=1"] if every else []) + ([f"STATUS={_one_line(now)}"] if now != said else [])
            if assignments:
                self.send(*assignments)
            said = now


def _one_line(text: str) -> str:
    return " ".join(text.split())
