"""The journal: one ordered stream of the engine's events, with sequence numbers, for every front end.

Each must-deliver event (a state change, an order event, an alert, an audit record: every event without a
``coalesce_key``) gets the next sequence number as it is published, is kept in memory (the newest ``keep_in_memory``)
and written to the store's ``journal`` table with the writes around it. Sequence numbers go on across restarts (the
next start reads the last one from the store), so a screen attached to an engine that restarted asks for what came
after the last number it saw and gets it, from memory or from the store.

Fast data (tickers, balances, positions, health, monitors) carries no number: each such event replaces the one
before it, and a front end that reconnects gets their current values in a fresh snapshot instead. A client that
asks for events the journal no longer has (pruned, or a store that could not be written) is told so (``complete``
is false) and starts again from a snapshot, never silently stale.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from engine.api import wire
from engine.kernel.events import Event

log = logging.getLogger(__name__)

KEEP_IN_MEMORY = 5_000
KEEP_IN_STORE = 200_000
WRITE_DELAY_S = 0.2  # numbered events reach the store in batches this far apart
PRUNE_EVERY = 10_000  # rows written between two prunings of the stored journal


class JournalStore(Protocol):
    def append_journal_rows(self, rows: list[tuple[int, str, str, str]]) -> None: ...
    def prune_journal(self, keep: int) -> None: ...
    def journal_last_seq(self) -> int: ...
    def journal_since(self, seq: int, limit: int = ...) -> list[tuple[int, str]]: ...


class Journal:
    """Numbers, keeps and replays the engine's must-deliver events (an inline bus handler).

    Numbering is at publish time, inline; putting the events into words (JSON) and into the store happens a moment
    later, in one batch (``WRITE_DELAY_S``), off the path of the command that published them: a cancel-all of a
    hundred orders does not wait for a hundred journal rows. What a crash takes with it is at most that moment of
    journal, which a client coming back is told (``complete`` false) and answers with a snapshot."""

    def __init__(
        self,
        store: JournalStore,
        now: Callable[[], str],
        keep_in_memory: int = KEEP_IN_MEMORY,
        keep_in_store: int = KEEP_IN_STORE,
    ) -> None:
        self.store = store
        self.now = now
        self.keep_in_store = keep_in_store
        try:
            self.seq = store.journal_last_seq()
        except sqlite3.Error as exc:
            log.error("the journal's last sequence number could not be read (%s): numbering from 0", exc)
            self.seq = 0
        self._recent: deque[tuple[int, Event]] = deque(maxlen=keep_in_memory)
        self._seq_of: dict[int, int] = {}  # id(event) -> seq, for the events in ``_recent``
        self._pending: list[tuple[int, str, Event]] = []  # numbered, not yet in the store: (seq, ts, event)
        self._timer: asyncio.TimerHandle | None = None
        self.unwritten_since: int | None = None  # the first number the store missed (a failing store)
        self._appended = 0

    @staticmethod
    def journaled(event: Event) -> bool:
        return event.coalesce_key is None and type(event) not in wire.NOT_SENT

    def on_event(self, event: Event) -> None:
        """Inline bus handler: number and keep a must-deliver event; the store gets it with the next batch."""
        if not self.journaled(event):
            return
        self.seq += 1
        if len(self._recent) == self._recent.maxlen:
            _, old = self._recent[0]
            self._seq_of.pop(id(old), None)
        self._recent.append((self.seq, event))
        self._seq_of[id(event)] = self.seq
        self._pending.append((self.seq, self.now(), event))
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(WRITE_DELAY_S, self.flush)
            except RuntimeError:  # no loop (a tool, a test): now
                self.flush()

    def flush(self) -> None:
        """Write the numbered events the store does not have yet (one batch)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            self.store.append_journal_rows(
                [(seq, ts, type(event).__name__, wire.dumps(wire.encode(event, seq))) for seq, ts, event in rows]
            )
            self._appended += len(rows)
            if self._appended >= PRUNE_EVERY:
                self._appended = 0
                self.store.prune_journal(self.keep_in_store)
        except (sqlite3.Error, OSError) as exc:
            if self.unwritten_since is None:
                self.unwritten_since = rows[0][0]
                log.error("the journal could not be written from event %d on (%s)", rows[0][0], exc)

    def seq_of(self, event: Event) -> int | None:
        """The sequence number of a journaled event still in memory (None: fast data, or long gone)."""
        return self._seq_of.get(id(event))

    def since(self, seq: int, limit: int = 10_000) -> tuple[list[dict[str, Any]], bool]:
        """The journaled events after ``seq`` (their JSON objects), oldest first, and whether that is all of them.
        False: some are gone (pruned, or the store missed them), there are more than ``limit``, or ``seq`` is a
        number this journal never gave (another data directory): the client starts again from a snapshot."""
        if seq == self.seq:
            return [], True
        if seq > self.seq or self.seq - seq > limit:
            return [], False
        if self._recent and self._recent[0][0] <= seq + 1:
            return [wire.encode(event, s) for s, event in self._recent if s > seq], True
        self.flush()  # what memory no longer has is read from the store: all of it written first
        try:
            rows = self.store.journal_since(seq, self.seq - seq)
        except sqlite3.Error as exc:
            log.error("the journal could not be read (%s)", exc)
            return [], False
        if [s for s, _ in rows] != list(range(seq + 1, self.seq + 1)):
            return [], False
        return [json.loads(body) for _, body in rows], True
