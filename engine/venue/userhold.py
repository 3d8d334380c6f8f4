"""Holding the user stream's events while the kill switch's cancels are out, and handing them on after its answer.

A cancel-all of n orders makes the venue push n execution reports (and as many account updates) while its
``DELETE``s are out. Parsed by ccxt and applied as they come, they held the engine's one event loop while the
answers to those ``DELETE``s waited behind them: a cancel-all of 100 orders took 1.5-1.7x a bare client with no
stream (issue 27). While held, each event is only kept (ccxt's JSON decoding done, nothing else); on release they
are handed to ccxt in the order they came, a few at a time per turn of the loop, and any that come meanwhile wait
behind them. Nothing is dropped: the venue said it, and it is applied, only later (decision BEN-09).

Only the order events are held (execution reports, OCO list updates): account and balance updates pass, so the
balances the cancels freed are the engine's as soon as the venue says so (a close that follows sizes its sells from
them), and market data and the WS-API's own answers pass as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

log = logging.getLogger(__name__)

# Binance's order events on the user stream (spot and USDⓈ-M) as ccxt dispatches them (``binance.handle_message``).
USER_EVENTS = frozenset({"executionReport", "orderReport", "listStatus", "ORDER_TRADE_UPDATE", "ALGO_UPDATE"})
# Events handed on per turn of the loop once released (1,000 held would otherwise hold the loop ~0.1 s at once).
RELEASE_CHUNK = 50
# A hold is released after this long at the latest, whatever its holder does (a pass that failed before releasing).
HOLD_MAX_S = 5.0


def is_user_event(message: Any) -> bool:
    """Whether a decoded stream message is an order event of the user stream (spot's WS-API wraps it in ``event``)."""
    if not isinstance(message, dict):
        return False
    body = message.get("event", message)
    return isinstance(body, dict) and body.get("e") in USER_EVENTS


class UserStreamHold:
    """Sits between a ccxt client's websocket connections and its message handler (set before any connection is
    made: ccxt gives each connection the handler it has then)."""

    def __init__(self, ex: Any) -> None:
        self._handle = ex.handle_message
        ex.handle_message = self._on_message
        self.holders = 0
        self._held: deque[tuple[Any, Any]] = deque()
        self._releasing = False
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def held(self) -> int:
        """Events kept and not yet handed on."""
        return len(self._held)

    def _on_message(self, client: Any, message: Any) -> None:
        if (self.holders or self._held) and is_user_event(message):
            self._held.append((client, message))  # behind those held already: the venue's order is kept
            return
        self._handle(client, message)

    def hold(self) -> None:
        """Keep the user-data events from now until ``release`` (holds nest; ``HOLD_MAX_S`` at most)."""
        self.holders += 1
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().call_later(HOLD_MAX_S, self._expired)

    def release(self) -> None:
        """End one hold; when none is left, hand what was kept on to ccxt, in order, a chunk per turn of the loop."""
        self.holders = max(0, self.holders - 1)
        if self.holders:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._held and not self._releasing:
            self._releasing = True
            asyncio.get_running_loop().call_soon(self._hand_on)

    def _expired(self) -> None:
        self._deadline = None
        if self.holders:
            log.warning("user stream held past %.0fs; its events are handed on", HOLD_MAX_S)
            self.holders = 1
            self.release()

    def _hand_on(self) -> None:
        """Hand a chunk of the held events to ccxt; the rest at the next turn, until none is left."""
        for _ in range(min(RELEASE_CHUNK, len(self._held))):
            client, message = self._held.popleft()
            try:
                self._handle(client, message)
            except Exception as exc:  # as ccxt's own receive loop would meet it: one message, not the stream
                log.error("a held user-stream event failed in the client", exc_info=exc)
        if self._held and not self.holders:
            asyncio.get_running_loop().call_soon(self._hand_on)
        else:
            self._releasing = False
