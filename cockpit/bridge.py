"""The one bridge: a long-lived worker reads the engine's events and posts them to the screen in batches.

The engine's subscription keeps only the newest ticker per symbol and the newest balances, positions and
health (state changes, orders and alerts are never dropped). The bridge takes everything waiting at once into
one message and waits until the screen has drawn it before taking the next: under a storm, events wait in the
subscription, where fast data coalesces, not in the screen's queue, so the screen draws once per batch and a
halt is never more than one batch behind.
"""

from __future__ import annotations

import asyncio
import time

from textual.message import Message

from engine.kernel.bus import Subscription
from engine.kernel.events import Event

MAX_BATCH = 2000


class EngineEvents(Message):
    """Engine events delivered to the UI, oldest first, with when the bridge took them (monotonic)."""

    def __init__(self, events: list[Event], taken: float) -> None:
        super().__init__()
        self.events = events
        self.taken = taken
        self.drawn = asyncio.Event()  # set by the screen once it has handled the batch


async def pump(subscription: Subscription, post) -> None:
    """Forward every event from ``subscription`` to ``post`` in batches, until cancelled."""
    while True:
        events = [await subscription.get()]
        while len(events) < MAX_BATCH:
            event = subscription.get_nowait()
            if event is None:
                break
            events.append(event)
        batch = EngineEvents(events, time.monotonic())
        post(batch)
        await batch.drawn.wait()
