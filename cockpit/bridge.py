"""The one bridge: a long-lived worker reads the engine's events and posts them to the screen in batches.

The events come from the engine's subscription (an engine in this process) or from an attached link's feed (the
service API's event stream); both keep only the newest ticker per symbol and the newest balances, positions and
health (state changes, orders and alerts are never dropped). The bridge takes everything waiting at once into one
message and waits until the screen has drawn it before taking the next: under a storm, events wait where fast data
coalesces, not in the screen's queue, so the screen draws once per batch and a halt is never more than one batch
behind. A link's own messages (a first frame, the link lost or back) are posted in their place between batches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from textual.message import Message

if TYPE_CHECKING:  # names only: the engine's records are loaded after the first frame (decision BEN-10)
    from engine.kernel.events import Event


MAX_BATCH = 2000


class EngineEvents(Message):
    """Engine events delivered to the UI, oldest first, with when the bridge took them (monotonic)."""

    def __init__(self, events: list[Event], taken: float) -> None:
        super().__init__()
        self.events = events
        self.taken = taken
        self.drawn = asyncio.Event()  # set by the screen once it has handled the batch


class LinkChanged(Message):
    """An attached screen lost its engine (``up`` False, since when and why) or reached it again."""

    def __init__(self, up: bool, since: datetime | None = None, detail: str = "") -> None:
        super().__init__()
        self.up = up
        self.since = since
        self.detail = detail


class EnginesChanged(Message):
    """A cockpit watching several engines: the engine list to draw (``cockpit.fleet.EngineLine``s), and what to
    tell the operator of an engine not on the screen (lost, or its state moved), if anything."""

    def __init__(self, lines: list, notice: str | None = None) -> None:
        super().__init__()
        self.lines = lines
        self.notice = notice


class Source(Protocol):
    """Where events wait: the engine's ``Subscription`` or an attached link's ``Feed``."""

    def get(self) -> Awaitable[Event | Message]: ...

    def get_nowait(self) -> Event | Message | None: ...


async def pump(source: Source, post: Callable[[Message], object]) -> None:
    """Forward every event from ``source`` to ``post`` in batches, and the link's messages in their place, until
    cancelled."""
    while True:
        item: Event | Message | None = await source.get()
        events: list[Event] = []
        while item is not None:
            if isinstance(item, Message):
                await _send(events, post)
                events = []
                post(item)
            else:
                events.append(item)
                if len(events) >= MAX_BATCH:
                    break
            item = source.get_nowait()
        await _send(events, post)


async def _send(events: list[Event], post: Callable[[Message], object]) -> None:
    if not events:
        return
    batch = EngineEvents(events, time.monotonic())
    post(batch)
    await batch.drawn.wait()
