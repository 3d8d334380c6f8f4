"""The client-side rate limiter: the venue's own weight budget per minute, followed from its answers, with no debt.

ccxt 4.5.90's limiter is a token bucket that refills only while requests queue: the weight of a heavy call (80 for
a venue-wide open-orders listing) is paid by the next call, even minutes later, and after every fill the balance
fetch made the next order wait ~200 ms. Binance counts request weight per IP per minute of its clock and says in
every answer how much of the minute is used (``X-MBX-USED-WEIGHT-1M``; limit 6000, in exchangeInfo's
``rateLimits``). This budget lets a request go at once while the minute has room for it, and otherwise waits for the
next minute: idle time costs nothing, and a burst is only slowed where the venue would refuse it.

Routine calls stop at ``routine_share`` of the limit; the kill switch's calls (``urgent``) may use the rest, and
when both must wait for the next minute the kill switch's go first. Background refreshes (periodic reconciliation,
REST polling while a stream is down) skip their turn past ``background_share``, paced over the minute: with
small intervals a venue-wide open-orders listing (weight 80) every few hundred milliseconds would spend the
minute's budget in seconds, and orders, a reconnect's market reload and the kill switch would then wait for the
next minute. A 429 or 418 is still handled venue-wide by
``VenueHealth`` (every request waits its Retry-After); staying under the limit is what keeps a 418 from happening.
A venue that sends no weight header is counted locally against the same minute budget.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

WEIGHT_HEADER = "x-mbx-used-weight-1m"
MINUTE_S = 60.0
# After the venue's minute turns, wait this much longer before counting on a fresh budget: our idea of the venue's
# clock may be off by a little (a skew over 500 ms is resynchronised by the clock_skew monitor).
ROLLOVER_MARGIN_S = 0.5
# Routine calls wait behind the kill switch's at a turn of the minute.
URGENT_HEAD_START_S = 0.05


class WeightBudget:
    """Request weight used in the venue's current minute: the venue's last count plus what left since, against its
    limit. ``acquire`` before a request, ``observe`` every answer's headers, ``settled`` when the request ends."""

    def __init__(
        self,
        limit: int = 6000,
        routine_share: float = 0.9,
        background_share: float = 0.5,
        venue_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self.sleep = sleep
        self.routine_share = routine_share
        self.background_share = background_share
        self.skipped = 0  # background refreshes skipped for the budget (for the metrics and the benchmarks)
        self.background_sent = 0.0  # what background refreshes were allowed this minute (their estimate)
        self.venue_clock = venue_clock  # seconds, on the venue's clock (ours plus the measured skew)
        self.minute = -1
        self.sent = 0.0  # weight we sent in this minute
        self.venue_used: float | None = None  # the venue's last count for this minute
        self.in_flight = 0.0  # weight sent this minute and not answered yet (the venue's count may not include it)
        self.urgent_waiting = 0
        self.waits = 0  # requests that had to wait for a minute to turn (for the metrics and the benchmarks)

    # ------------------------------------------------------------ reading

    def used(self) -> float:
        """The best estimate of this minute's used weight (never below what we sent ourselves)."""
        self._roll()
        venue = (self.venue_used or 0.0) + self.in_flight
        return max(self.sent, venue)

    def room(self, urgent: bool) -> float:
        cap = self.limit if urgent else self.limit * self.routine_share
        return cap - self.used()

    def spare_for_background(self, weight: float) -> bool:
        """Whether a background refresh of about ``weight`` may go now; counted as background spend when it may,
        as skipped when it may not. Background refreshes have their own share of the minute (``background_share``
        of the limit), paced over it: what they spent so far must stay under that share times the part of the
        minute gone by (at least a tenth). An interval too short for the venue's budget slows to what the share
        allows, spread over the minute: it neither spends half the minute in its first seconds and starves for the
        rest, nor is starved by a busy foreground (orders, a restart's reloads). The routine cap still holds for
        all of it together."""
        now = self.venue_clock()
        elapsed = (now - math.floor(now / MINUTE_S) * MINUTE_S) / MINUTE_S
        allowance = self.limit * self.background_share * max(0.1, elapsed)
        if self.background_sent + weight <= allowance and self.room(urgent=False) >= weight:
            self.background_sent += weight
            return True
        self.skipped += 1
        return False

    def _roll(self) -> None:
        minute = math.floor(self.venue_clock() / MINUTE_S)
        if minute != self.minute:
            # Requests still in flight were charged by the venue in the minute they reached it, not in this one.
            self.minute, self.sent, self.venue_used, self.in_flight = minute, 0.0, None, 0.0
            self.background_sent = 0.0

    def _seconds_to_next_minute(self) -> float:
        now = self.venue_clock()
        return (math.floor(now / MINUTE_S) + 1) * MINUTE_S - now + ROLLOVER_MARGIN_S

    # ------------------------------------------------------------ requests

    async def acquire(self, weight: float, urgent: bool = False) -> int:
        """Return once a request of ``weight`` may go without exceeding the venue's limit; counted as sent. Returns
        the minute it is counted in (for ``settled``)."""
        waited = False
        while True:
            fresh = self.used() == 0  # one request heavier than the share still goes on a fresh minute
            if (urgent or not self.urgent_waiting) and (self.room(urgent) >= weight or fresh):
                break
            if not waited:
                waited = True
                self.waits += 1
                log.warning(
                    "request weight %.0f of %d used this minute: %s call waits %.1fs for the next minute",
                    self.used(),
                    self.limit,
                    "kill-switch" if urgent else "routine",
                    self._seconds_to_next_minute(),
                )
            delay = self._seconds_to_next_minute() + (0.0 if urgent else URGENT_HEAD_START_S)
            if urgent:
                self.urgent_waiting += 1
            try:
                await self.sleep(delay)
            finally:
                if urgent:
                    self.urgent_waiting -= 1
        self.sent += weight
        self.in_flight += weight
        return self.minute

    def settled(self, weight: float, minute: int) -> None:
        """A request acquired with ``weight`` in ``minute`` got its answer (or failed): the venue's count holds it."""
        self._roll()
        if minute == self.minute:
            self.in_flight = max(0.0, self.in_flight - weight)

    def observe(self, headers: Mapping[str, Any] | None) -> None:
        """The venue's count of this minute's weight, from an answer's ``X-MBX-USED-WEIGHT-1M``."""
        if not headers:
            return
        for key, value in headers.items():
            if key.lower() == WEIGHT_HEADER:
                try:
                    used = float(value)
                except (TypeError, ValueError):
                    return
                self._roll()
                # Answers can arrive out of order; the highest count of the minute is the latest.
                self.venue_used = used if self.venue_used is None else max(self.venue_used, used)
                return


def weight_limit_from(exchange_info: Any) -> int | None:
    """Binance's REQUEST_WEIGHT per minute from an exchangeInfo answer, if it says."""
    if not isinstance(exchange_info, Mapping):
        return None
    for rule in exchange_info.get("rateLimits") or ():
        if (
            isinstance(rule, Mapping)
            and rule.get("rateLimitType") == "REQUEST_WEIGHT"
            and rule.get("interval") == "MINUTE"
        ):
            try:
                return int(rule["limit"]) // max(1, int(rule.get("intervalNum") or 1))
            except (KeyError, TypeError, ValueError):
                return None
    return None
