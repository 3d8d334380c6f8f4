"""The store's place in the engine: first on the bus (a fact is on disk before anything acts on it), one
transaction per burst of events, and what happens when the disk refuses (trading halts, nothing unrecorded is
sent) and when it writes again."""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path

from engine.kernel.errors import StoreError, os_reason, unwritable
from engine.kernel.events import Event, OrderCreated, Severity, TradingState, TradingStateChanged, utcnow
from engine.kernel.ports import AlertPort, Durability
from engine.store.db import Store
from engine.trading.state import TradingStateMachine

log = logging.getLogger(__name__)

UNWRITTEN_MAX = 10_000


class StoreGuard:
    """Writes every event to the store (once it is open) and fails closed when it cannot."""

    def __init__(
        self,
        data_dir: Path,
        state: TradingStateMachine,
        alert: AlertPort,
        on_recovered: Callable[[datetime], None] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.state = state
        self.alert = alert
        self.store: Store | None = None
        self.failure: str | None = None  # why the store cannot be written now (a full disk...), or None
        self.failed_at: datetime | None = None  # since when
        # Told once the store writes again, with the time it began to fail: the engine then writes what the store
        # missed (a commit that failed lost its whole transaction, a fill's row included) from memory and the venue.
        self.on_recovered = on_recovered
        # Events whose write failed, in order, written once the store can (an audit record of a command carried out
        # by signal, an alert, an order's event): the store loses nothing the engine did meanwhile. Bounded: past
        # it, the oldest go, and the catch-up from memory and the venue still restores orders and fills.
        self.unwritten: deque[Event] = deque(maxlen=UNWRITTEN_MAX)
        self.in_transaction: list[Event] = []  # written into the open transaction, not yet committed

    @property
    def durability(self) -> Durability:
        """What the order path calls to batch and commit through this store."""
        return Durability(self.batch, self.commit, self.joining_batch, self.commits, self.latch, self.synced)

    def commits(self) -> tuple[int, int]:
        """How many commits and rollbacks the store has made (``Durability.commits``)."""
        return (self.store.commits, self.store.rollbacks) if self.store is not None else (0, 0)

    def batch(self, answer_first: bool = False) -> AbstractContextManager[None]:
        """One store transaction for a burst of events (group commit); nothing to batch before the store opens.
        ``answer_first``: committed after the answer (``Writer.batch``)."""
        return self.store.batch(answer_first=answer_first) if self.store is not None else nullcontext()

    def latch(self) -> AbstractContextManager[None]:
        """A kill-switch tier's halt: in the OS at once, on the disk by ``synced`` (``Writer.latch``)."""
        return self.store.latch() if self.store is not None else nullcontext()

    async def synced(self) -> None:
        """Every latched halt on the disk; a failed sync halts and alerts as a failed commit does (``failed``)."""
        if self.store is not None:
            await self.store.synced()

    def joining_batch(self) -> AbstractContextManager[None]:
        """A batch of what the venue keeps (a stream read) that joins a command's open batch (``Writer.batch``)."""
        return self.store.batch(join=True) if self.store is not None else nullcontext()

    def commit(self) -> None:
        """Commit what the store holds for a batch: the order path calls it before a new client id leaves. A commit
        that fails (a full disk) fails the order closed: it is not sent."""
        if self.store is None:
            return
        try:
            self.store.flush()
        except (sqlite3.Error, OSError) as exc:
            self.store.abandon()
            reason = self.failed(exc)
            raise StoreError(f"order not sent: the store cannot record it ({reason})") from None
        self.in_transaction.clear()  # committed

    def persist(self, event: Event) -> None:
        """The store first: a fact is on disk before anything acts on it. When the disk refuses (full, gone
        read-only), trading halts in memory with a CRIT alert and an order whose client id cannot be stored is not
        sent; everything else goes on (the venue keeps the truth, reconciled at the next start). Once the store
        writes again the trading state is recorded again."""
        assert self.store is not None
        try:
            self.store.handle(event)
        except (sqlite3.Error, OSError) as exc:
            self.store.abandon()  # the failed write leaves its transaction's fate unknown: end it, write it again
            reason = self.failed(exc)
            self._keep(self.in_transaction)
            self.in_transaction.clear()
            self._keep([event])
            if isinstance(event, OrderCreated):
                raise StoreError(f"order not sent: the store cannot record it ({reason})") from None
            return
        if self.store.uncommitted:
            self.in_transaction.append(event)
        else:
            self.in_transaction.clear()  # committed, with everything before it
        if self.failure is not None and unwritable(self.data_dir) is None:
            self._recovered()

    def _keep(self, events: list[Event]) -> None:
        """Keep events to write once the store can; an order whose record failed was never sent (its client id is
        committed before its request leaves), so its creation is not written afterwards."""
        self.unwritten.extend(e for e in events if not isinstance(e, OrderCreated))

    def _recovered(self) -> None:
        assert self.store is not None
        state, info = self.state.state, self.state.info
        try:
            self.store.handle(
                TradingStateChanged(
                    state,
                    state,
                    info.get("actor") or "engine",
                    f"{info.get('reason') or ''} (recorded again once the store could write)".strip(),
                    code=info.get("code") or "",
                    values=info.get("values") or {},
                )
            )
        except (sqlite3.Error, OSError):
            return  # not yet
        while self.unwritten:
            try:
                self.store.handle(self.unwritten[0])
            except (sqlite3.Error, OSError):
                return  # not yet: the rest waits for the next write
            self.unwritten.popleft()
        since, self.failure, self.failed_at = self.failed_at or utcnow(), None, None
        self.alert(
            Severity.WARN,
            "STORE_RECOVERED",
            "the cockpit store writes again; what it missed meanwhile is written again from the engine's memory "
            "and the venue's trades",
        )
        if self.on_recovered is not None:
            self.on_recovered(since)

    def failed(self, exc: BaseException) -> str:
        """The store could not write or commit (found at the write, or at a batch's commit): HALT once, say so.
        Returns the reason in words."""
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        if self.store is not None and not self.store.uncommitted:  # a commit failed: its transaction is gone
            self._keep(self.in_transaction)
            self.in_transaction.clear()
        if self.failure is None:
            self.failure, self.failed_at = reason, utcnow()
            log.error("cannot write the store: %s", reason)
            self.state.tripped()
            self.state.move(TradingState.HALTED, "monitor:store", f"the store cannot be written: {reason}", "store")
            self.alert(
                Severity.CRIT,
                "STORE_WRITE_FAILED",
                f"cannot write the cockpit store ({reason}): trading HALTED, no order can be recorded so "
                f"none is sent; orders at the venue stay. Free space in {self.data_dir} "
                "(or make it writable); the engine records again by itself",
            )
        return reason
