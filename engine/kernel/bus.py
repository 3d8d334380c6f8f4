"""The event bus: synchronous handlers run inline at publish, async subscribers read from their own queue.

Persistence is a synchronous handler, so a record is on disk before the code that published it goes on
(an order is stored before it is sent). Front ends subscribe and never block the engine: an event with a
``coalesce_key`` (tickers, balances, positions, health) replaces the undelivered one with the same key in
place; every other event (a state change, an alert, an order event) is always delivered, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Hashable

from engine.kernel.events import Event

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]
# A reader this far behind on must-deliver events is logged once per crossing (it is not dropped).
BACKLOG_WARN = 10_000


class _Slot:
    """The place in the queue of the newest undelivered event with one coalesce key."""

    __slots__ = ("key",)

    def __init__(self, key: Hashable) -> None:
        self.key = key


class Subscription:
    """An event queue for one async reader: coalesced per key for fast data, lossless for the rest."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._queue: deque[Event | _Slot] = deque()
        self._latest: dict[Hashable, Event] = {}
        self._ready = asyncio.Event()
        self.coalesced = 0  # events replaced by a newer one before the reader got to them
        self._warned = False

    def offer(self, event: Event) -> None:
        key = event.coalesce_key
        if key is None:
            self._queue.append(event)
        elif key in self._latest:
            self.coalesced += 1
        else:
            self._queue.append(_Slot(key))
        if key is not None:
            self._latest[key] = event
        if len(self._queue) > BACKLOG_WARN and not self._warned:
            self._warned = True
            log.warning("an event reader is %d events behind", len(self._queue))
        self._ready.set()

    def pending(self) -> int:
        return len(self._queue)

    def get_nowait(self) -> Event | None:
        if not self._queue:
            return None
        item = self._queue.popleft()
        if not self._queue:
            self._warned = False
        if isinstance(item, _Slot):
            return self._latest.pop(item.key)
        return item

    async def get(self) -> Event:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        event = self.get_nowait()
        assert event is not None
        return event

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    """Fan-out of engine events to inline handlers and queued subscribers."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._subs: list[Subscription] = []

    def add_handler(self, handler: Handler, first: bool = False) -> None:
        """``first``: before every other handler (the store: a fact is on disk before anything acts on it)."""
        if first:
            self._handlers.insert(0, handler)
        else:
            self._handlers.append(handler)

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def publish(self, event: Event) -> None:
        for handler in self._handlers:
            handler(event)  # a failing handler (the store) must fail the caller: nothing unrecorded goes on
        for sub in self._subs:
            sub.offer(event)
