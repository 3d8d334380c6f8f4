"""What the venue's answers say about its health: errors in a window, auth failures, maintenance, 429 pauses and
418 bans, clock skew, the clock offset signed calls are stamped with and the signed calls refused for their timestamp.
Fed by the venue adapter on every call; read by the monitors. It survives a reconnect.

HTTP 429 makes every new request wait for the venue's Retry-After, venue-wide (runbook 001 §2; Binance bans the
IP with 418 when a client keeps sending); a 418 is a ban until its Retry-After. The weight budget (``budget``,
``engine.venue.ratelimit``) follows the venue's count of used weight from every answer, so requests stay under the
limit.

A 429 (or 418) is not a REST error: it is the venue asking to slow down, which the engine does (runbook 001 §3
"Incident Response Playbook": rate limiting backs off and WARNs; a ban halts). Those answers are counted apart
(``rate_limited``) and read by the rate-limit monitor; ``recent_errors`` (the REST-error monitor, which halts)
never counts them, so two 429s in a minute slow the engine down instead of halting it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from engine.venue import errors as vx
from engine.venue.ratelimit import WeightBudget
from engine.venue.resilience import Kind, classify, is_auth_failure, is_maintenance, is_timestamp_refusal, retry_after_s

log = logging.getLogger(__name__)

DEFAULT_429_PAUSE_S = 1.0
DEFAULT_418_BAN_S = 120.0


def is_rate_limited(exc: BaseException) -> bool:
    """The venue pacing this client: a 429 or 418 (ccxt's DDoSProtection) or -1003 (RateLimitExceeded). Not a key
    refused that ccxt also calls DDoSProtection (Binance's -2015 after a first success) nor maintenance."""
    return (
        isinstance(exc, (vx.DDoSProtection, vx.RateLimitExceeded))
        and not is_auth_failure(exc)
        and not is_maintenance(exc)
    )


class VenueHealth:
    """Counts and flags from every venue answer, and the venue-wide pause after a 429 or 418."""

    def __init__(self, errors_window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.errors_window_s = errors_window_s
        self.errors: deque[tuple[float, str]] = deque()  # (when, "endpoint: ErrorClass") of temporary failures
        # (when, "endpoint: ErrorClass") of calls the venue turned away for the rate (429 / 418): not REST errors
        self.rate_limited: deque[tuple[float, str]] = deque()
        self.auth_failure: str | None = None  # why, while the key is refused (cleared by a private call that works)
        self.maintenance: str | None = None  # why, while the venue says it is in maintenance
        self.pause_until = 0.0  # no new request before this (429 / 418 Retry-After)
        self.banned_until = 0.0  # a 418: banned until
        self.skew_ms: float | None = None  # venue clock minus ours, as the latest ping measured it
        # The venue's clock minus ours that signed calls are stamped with (ccxt's timeDifference, negated): kept
        # here so that a client built by a reconnect signs with it from its first call.
        self.offset_ms = 0.0
        # (when, "endpoint: ErrorClass") of signed calls refused for their timestamp even after a resync
        self.timestamp_refusals: deque[tuple[float, str]] = deque()
        # The venue's request-weight minute, shared by every client of the venue and kept across reconnects.
        self.budget = WeightBudget(venue_clock=lambda: time.time() + (self.skew_ms or 0.0) / 1000)

    # ------------------------------------------------------------ fed by the venue

    def response(self, status: int, headers: Mapping[str, Any] | None) -> None:
        """Every HTTP answer, before ccxt turns an error status into an exception."""
        self.budget.observe(headers)
        if status not in (429, 418):
            return
        wait = retry_after_s(dict(headers or {}))
        now = self.clock()
        if status == 418:
            wait = wait if wait is not None else DEFAULT_418_BAN_S
            self.banned_until = max(self.banned_until, now + wait)
            log.error("venue banned this client (HTTP 418) for %.0fs", wait)
        else:
            wait = wait if wait is not None else DEFAULT_429_PAUSE_S
            log.warning("venue rate limit (HTTP 429): every request waits %.1fs", wait)
        self.pause_until = max(self.pause_until, now + wait)

    def error(self, endpoint: str, exc: BaseException) -> None:
        if is_rate_limited(exc):
            # 429 / 418 (ccxt's DDoSProtection, or -1003 as RateLimitExceeded): the venue's pacing, answered by
            # waiting for its Retry-After (``response``); the rate-limit monitor reads it, the error count does not.
            self.rate_limited.append((self.clock(), f"{endpoint}: {type(exc).__name__}"))
            return
        if is_auth_failure(exc):
            self.auth_failure = f"{endpoint}: {type(exc).__name__}: {str(exc)[:160]}"
            return
        if is_maintenance(exc):
            self.maintenance = f"{endpoint}: {str(exc)[:160]}"
        if is_timestamp_refusal(exc):
            self.timestamp_refusals.append((self.clock(), f"{endpoint}: {type(exc).__name__}"))
        if classify(exc) == Kind.TEMPORARY:
            self.errors.append((self.clock(), f"{endpoint}: {type(exc).__name__}"))

    def success(self, endpoint: str, private: bool) -> None:
        self.maintenance = None
        if private:
            self.auth_failure = None

    def ping(self, skew_ms: float | None) -> None:
        """A ping answered: the venue's clock against ours (its round trip is in the latency stats)."""
        self.skew_ms = skew_ms

    # ------------------------------------------------------------ read by the monitors and the venue

    def recent_errors(self) -> list[str]:
        return self._recent(self.errors)

    def recent_rate_limits(self) -> list[str]:
        """Calls turned away for the rate (429 / 418) within the error window."""
        return self._recent(self.rate_limited)

    def recent_timestamp_refusals(self) -> list[str]:
        """Signed calls refused for their timestamp within the error window (each after a resync and a retry)."""
        return self._recent(self.timestamp_refusals)

    def _recent(self, events: deque[tuple[float, str]]) -> list[str]:
        cutoff = self.clock() - self.errors_window_s
        while events and events[0][0] < cutoff:
            events.popleft()
        return [what for _, what in events]

    def paused_for(self) -> float:
        return max(0.0, self.pause_until - self.clock())

    def banned_for(self) -> float:
        return max(0.0, self.banned_until - self.clock())

    async def wait_if_paused(self) -> None:
        """Every new request waits out a 429's or 418's Retry-After: never provoke a ban."""
        while (delay := self.paused_for()) > 0:
            await asyncio.sleep(delay)
