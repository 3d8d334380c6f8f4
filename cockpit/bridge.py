"""The one bridge: a long-lived worker reads the engine's events and posts them to the app as messages.

High-rate events (tickers, balances, positions) replace their unprocessed predecessors in the message
queue (``can_replace``), so a burst of prices never delays a halt being drawn.
"""

from __future__ import annotations

from textual.message import Message

from engine.bus import Subscription
from engine.events import BalancesUpdated, Event, HealthUpdated, PositionsUpdated, TickerUpdated

COALESCED = (BalancesUpdated, PositionsUpdated, HealthUpdated)


class EngineEvent(Message):
    """An engine event delivered to the UI."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        if not isinstance(message, EngineEvent):
            return False
        old, new = message.event, self.event
        if isinstance(new, TickerUpdated) and isinstance(old, TickerUpdated):
            return old.symbol == new.symbol
        return isinstance(new, COALESCED) and type(old) is type(new)


async def pump(subscription: Subscription, post) -> None:
    """Forward every event from ``subscription`` to ``post`` until cancelled."""
    while True:
        post(EngineEvent(await subscription.get()))
