"""The narrow ports the engine's parts receive instead of the engine: raise an alert, submit a command, spawn
an owned task, and the link to the venue (swapped whole on reconnect).

No part reaches through another: execution, sync, monitors, the runner and the kill switch each get only these
and the state objects they read (tracker, portfolio, stats, the trading-state machine).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.kernel.commands import Command, CommandResult
from engine.kernel.errors import EngineError
from engine.kernel.events import Event, Severity, VenueConnection

if TYPE_CHECKING:  # the type only: a front end importing the ports imports no venue (nor ccxt's wrappers)
    from engine.venue.adapter import Venue

log = logging.getLogger(__name__)

Publish = Callable[[Event], None]
Submit = Callable[[Command], Coroutine[Any, Any, CommandResult]]
Spawn = Callable[[str, Coroutine[Any, Any, Any]], Any]
# A store transaction for one synchronous burst of events (group commit; see ``Store.batch``).
Batch = Callable[[], AbstractContextManager[None]]


class AlertPort(Protocol):
    def __call__(self, severity: Severity, code: str, message: str, values: Mapping[str, Any] | None = None) -> object:
        """Raise an alert: logged, stored, shown (what it returns, if anything, is the caller's to ignore)."""


def _nothing_to_commit() -> None:
    """No store behind this order path: nothing to make durable."""


def _no_commits() -> tuple[int, int]:
    return 0, 0


async def _nothing_to_sync() -> None:
    return None


@dataclass(frozen=True)
class Ports:
    """What a part may call instead of reaching for the engine: publish an event, raise an alert, submit a command
    through the one ``execute``, spawn an owned task."""

    publish: Publish
    alert: AlertPort
    submit: Submit
    spawn: Spawn


@dataclass(frozen=True)
class Durability:
    """How the order path makes what it writes durable: one store transaction per burst of events (``batch``),
    and a commit before a new client id leaves (``commit``), so a retry or a restart never places it twice.
    ``joining``: a batch for what the venue keeps anyway (a stream read), committed with a command's batch when
    one is open instead of on its own (``Writer.batch``). ``commits``: how many commits and rollbacks the store has
    made (a write followed by a commit and no rollback is on disk: the kill switch's sells recorded before the
    halt ride on its commit, decision BEN-11). ``latch``: a kill-switch tier's halt committed inside it is in the
    OS when it returns and on the disk once ``synced`` returns, its sync made while the tier acts (``Writer.latch``,
    decision BEN-13)."""

    batch: Batch = nullcontext
    commit: Callable[[], None] = _nothing_to_commit
    joining: Batch = nullcontext
    commits: Callable[[], tuple[int, int]] = _no_commits
    latch: Batch = nullcontext
    synced: Callable[[], Awaitable[None]] = _nothing_to_sync


class VenueLink:
    """The venue the engine talks to now (None until connected) and whether it is reachable."""

    def __init__(self, publish: Publish, alert: AlertPort) -> None:
        self._publish = publish
        self._alert = alert
        self.venue: Venue | None = None
        self.connected = False
        self.label = ""

    def require(self) -> Venue:
        if self.venue is None or not self.venue.markets_loaded:
            raise EngineError("the venue is not connected yet")
        return self.venue

    def set_connected(self, connected: bool, detail: str) -> None:
        if connected == self.connected and connected:
            return
        was = self.connected
        self.connected = connected
        self._publish(VenueConnection(connected, detail))
        if not connected:
            self._alert(Severity.WARN, "VENUE_DOWN", f"venue connection lost: {detail}")
        elif not was:
            log.info("venue connected: %s", self.label)
