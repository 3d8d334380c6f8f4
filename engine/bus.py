"""The event bus: synchronous handlers run inline at publish, async subscribers read from their own queue.

Persistence is a synchronous handler, so a record is on disk before the code that published it goes on
(an order is stored before it is sent). Front ends subscribe with a queue and never block the engine.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from engine.events import Event

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]


class Subscription:
    """A bounded queue of events for one async reader; the oldest is dropped if the reader falls behind."""

    def __init__(self, bus: "EventBus", maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.queue.get_nowait()
            self.dropped += 1
            self.queue.put_nowait(event)

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    """Fan-out of engine events to inline handlers and queued subscribers."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._subs: list[Subscription] = []

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def subscribe(self, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, maxsize)
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
