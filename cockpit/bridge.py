"""The one bridge: a long-lived worker reads the engine's events and posts them to the screen in batches.

The engine's subscription already keeps only the newest ticker per symbol and the newest balances, positions
and health (state changes, orders and alerts are never dropped). The bridge takes everything waiting at once
into one message, so under a storm the screen draws once per batch, not once per event, and a halt behind a
thousand order events is drawn in the same frame as they are.
"""

from __future__ import annotations

import time

from textual.message import Message

from engine.bus import Subscription
from engine.events import Event

MAX_BATCH = 2000


class EngineEvents(Message):
    """Engine events delivered to the UI, oldest first, with when the bridge took them (monotonic)."""

    def __init__(self, events: list[Event], taken: float) -> None:
        super().__init__()
        self.events = events
        self.taken = taken


async def pump(subscription: Subscription, post) -> None:
    """Forward every event from ``subscription`` to ``post`` in batches, until cancelled."""
    while True:
        events = [await subscription.get()]
        while len(events) < MAX_BATCH:
            event = subscription.get_nowait()
            if event is None:
                break
            events.append(event)
        post(EngineEvents(events, time.monotonic()))
