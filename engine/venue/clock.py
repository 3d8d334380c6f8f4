"""Signed calls stamped with the venue's clock, and kept so when the venue's clock moves.

A Binance-style venue refuses a signed request whose timestamp is more than 1 s ahead of its clock or older than
``recvWindow`` (-1021, ccxt's InvalidNonce), before acting on it ("Timing security": "if (timestamp < serverTime +
1000 && serverTime - timestamp <= recvWindow) process request, else reject request"). ccxt stamps each signed call
with our clock minus ``options['timeDifference']``; this module owns that offset for both of a venue's clients:

- every ping measures the venue's clock against ours (not against the offset), and the offset follows it when they
  differ by more than ``FOLLOW_MS``: a skew that starts or ends is taken within one ping;
- a signed call refused for its timestamp resyncs the offset (one resync at a time: calls refused together share
  it) and is sent once more. It was not executed, so sending it again is safe, an order included (same client id;
  the venue also refuses a client id already open);
- a refusal that survives the resync is recorded in ``VenueHealth``: the clock_skew monitor halts on them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from engine.venue import errors as vx
from engine.venue.health import VenueHealth
from engine.venue.resilience import is_timestamp_refusal

log = logging.getLogger(__name__)

T = TypeVar("T")

# The offset follows a ping that finds it off by more than this. Binance allows 1000 ms ahead of its clock; a
# measurement's own error is at most half its round trip, so a smaller margin would chase the network's jitter.
FOLLOW_MS = 250.0

# (sent, answered) wall times of this task's latest HTTP request: what a time reading is measured against. A
# context variable, so that a ping and a resync running at once each read their own request's round trip.
_round_trip: ContextVar[tuple[float, float] | None] = ContextVar("venue_round_trip", default=None)


def note_round_trip(sent: float, answered: float) -> None:
    """Called by the HTTP layer when a request's answer is in (in the task that made the request)."""
    _round_trip.set((sent, answered))


def skew_from(server_ms: Any) -> float | None:
    """The venue's clock minus ours in ms, from its server time and the middle of the request's own round trip (a
    wait for the weight budget before the request left would otherwise make the venue look behind)."""
    if server_ms is None:
        return None
    now = time.time()
    sent, answered = _round_trip.get() or (now, now)
    return float(server_ms) - (sent + answered) / 2 * 1000


class VenueClock:
    """The clock offset both clients of one venue sign with; built with the offset in force (a reconnect's new
    clients sign with it from their first call)."""

    def __init__(
        self, clients: tuple[Any, ...], health: VenueHealth, measure: Callable[[], Awaitable[float | None]]
    ) -> None:
        self.clients = clients
        self.health = health
        self._measure = measure  # one reading of the venue's clock minus ours
        self._lock = asyncio.Lock()
        self.generation = 0  # moves with every offset taken: a call refused under an older one is just sent again
        self.resyncs = 0
        self._set(health.offset_ms)

    @property
    def offset_ms(self) -> float:
        return self.health.offset_ms

    def _set(self, offset_ms: float) -> None:
        for ex in self.clients:
            ex.options["timeDifference"] = -round(offset_ms)  # ccxt: timestamp = our ms - timeDifference
        self.health.offset_ms = offset_ms
        self.generation += 1

    def sign_with(self, offset_ms: float, why: str) -> None:
        previous = self.health.offset_ms
        self._set(offset_ms)
        # A resync that finds the offset unchanged (a venue no resync can fix) is not news at every refused call.
        level = logging.WARNING if abs(offset_ms - previous) > FOLLOW_MS else logging.INFO
        log.log(level, "signing with the venue's clock: offset %+.0f ms (was %+.0f ms): %s", offset_ms, previous, why)

    def follow(self, skew_ms: float | None) -> None:
        """A ping's reading: take it when the offset in force is off by more than ``FOLLOW_MS``."""
        if skew_ms is not None and abs(skew_ms - self.health.offset_ms) > FOLLOW_MS:
            self.sign_with(skew_ms, f"the venue's clock is {skew_ms:+.0f} ms off ours (ping)")

    async def resync(self, seen: int | None = None) -> bool:
        """Read the venue's clock now and sign with it, one resync at a time: a caller that waited while another
        resynced (after generation ``seen``) takes that one's offset. False when the venue's time cannot be read."""
        async with self._lock:
            if seen is not None and seen != self.generation:
                return True
            try:
                skew = await self._measure()
            except vx.BaseError as exc:
                log.warning("cannot read the venue's clock to resync: %s: %s", type(exc).__name__, exc)
                return False
            if skew is None:
                return False
            self.health.ping(skew)
            self.resyncs += 1
            self.sign_with(skew, "resynced after a signed call was refused for its timestamp (-1021)")
            return True

    async def in_time(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` (a signed request); refused for its timestamp, resync and send it once more. What the second
        attempt raises is the caller's to count (a refusal again: the clock_skew monitor's)."""
        seen = self.generation
        try:
            return await call()
        except vx.BaseError as exc:
            if not is_timestamp_refusal(exc):
                raise
            log.warning(
                "%s refused for its timestamp (%s); resyncing the clock and sending it once more", name, str(exc)[:120]
            )
            if not await self.resync(seen):
                raise
        return await call()
