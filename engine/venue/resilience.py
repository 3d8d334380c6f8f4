"""Errors classified once, retries with backoff, a circuit breaker, and latency per endpoint.

Temporary errors (network, timeouts, 429/418, 5xx, maintenance) are retried with backoff 1, 2, 4, 8 s, at most
three retries, honouring ``Retry-After`` (runbook 000 §3 "REST errors": auto-remediation by exponential backoff).
Permanent errors (bad key, bad order, insufficient funds, unknown order) surface at once and are never retried.
Note from the ccxt facts: HTTP 429 raises DDoSProtection, a sibling of RateLimitExceeded, not a subclass.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.venue import errors as vx

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
MAX_RETRIES = 3

# Order matters: the first matching class decides. OnMaintenance is an ExchangeNotAvailable (a NetworkError).
# ccxt's class names (engine.venueerrors gives the classes once ccxt is imported).
PERMANENT = (
    "AuthenticationError",
    "PermissionDenied",
    "AccountSuspended",
    "InsufficientFunds",
    "InvalidOrder",
    "OrderNotFound",
    "BadSymbol",
    "BadRequest",
    "NotSupported",
    # Clock skew: retrying with the same clock fails the same way. The venue adapter resyncs and retries once
    # itself; a refusal that survives that is counted by the clock_skew monitor, which halts (fail closed).
    "InvalidNonce",
)
TEMPORARY = (
    "NetworkError",  # RequestTimeout, ExchangeNotAvailable, OnMaintenance, DDoSProtection, RateLimitExceeded
    "OperationFailed",
    "VenueGarbage",  # a proxy's error page or a cut-off body: like a 5xx, counted, retried where safe, it halts
)
# What parsing a garbage answer raises, inside ccxt or in our own parsing of its result.
GARBAGE_SYMPTOMS = (AttributeError, TypeError, KeyError, ValueError, IndexError, ArithmeticError)


def garbage(what: str, exc: BaseException) -> Exception:
    """The error (a ``VenueGarbage``) for an answer that could not be parsed, naming what was asked for."""
    return vx.own_class("VenueGarbage")(
        f"the venue answered garbage to {what} ({type(exc).__name__}: {str(exc)[:80]}); check [venue] rest_url and "
        "the venue's status"
    )


def _classes(names: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    return tuple(getattr(vx, name) for name in names)


class Kind(str, enum.Enum):
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


# Binance codes that mean the key is refused, whatever class ccxt gave them (-2015 after a successful private
# call comes out as DDoSProtection in ccxt 4.5.90: facts note §3).
AUTH_CODES = ("-2015", "-2014", "-1022", "-1002")
_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')


def venue_code(exc: BaseException) -> str | None:
    """The Binance error code in a ccxt error's message, if any."""
    match = _CODE.search(str(exc))
    return match.group(1) if match else None


def is_auth_failure(exc: BaseException) -> bool:
    """The venue refuses the key (401/403, -2015/-2014/-1022/-1002): retrying cannot help, halting can."""
    return (
        isinstance(exc, (vx.AuthenticationError, vx.PermissionDenied, vx.AccountSuspended))
        or venue_code(exc) in AUTH_CODES
    )


def is_timestamp_refusal(exc: BaseException) -> bool:
    """A signed call refused for its timestamp (Binance -1021, ccxt InvalidNonce): our clock, or the offset we sign
    with, is off the venue's. Binance refuses such a request before acting on it ("Timing security")."""
    return isinstance(exc, vx.InvalidNonce) or venue_code(exc) == "-1021"


def is_maintenance(exc: BaseException) -> bool:
    """The venue says it is in maintenance: not a blip to retry through, a reason to halt (runbook 002)."""
    return isinstance(exc, vx.OnMaintenance) or "under maintenance" in str(exc).lower()


def classify(exc: BaseException) -> Kind:
    """Temporary (worth retrying later) or permanent (retrying cannot help).

    A refused key and maintenance are permanent whatever ccxt's class says: they are never retried as blips.
    """
    if isinstance(exc, _classes(PERMANENT)) or is_auth_failure(exc) or is_maintenance(exc):
        return Kind.PERMANENT
    if isinstance(exc, _classes(TEMPORARY)):
        return Kind.TEMPORARY
    if isinstance(exc, (asyncio.TimeoutError, ConnectionError)):
        return Kind.TEMPORARY
    return Kind.PERMANENT


def __getattr__(name: str) -> Any:
    """``CircuitOpen``: calls are suspended after repeated failures; the message says until when. It is a ccxt
    ExchangeNotAvailable (every caller already handles those). ``VenueGarbage``: the venue answered garbage (not
    JSON, or JSON of the wrong shape), a ccxt BadResponse counted like a 5xx. Both are made once ccxt is imported."""
    if name in ("CircuitOpen", "VenueGarbage"):
        return vx.own_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BreakerState(str, enum.Enum):
    CLOSED = "CLOSED"  # calls flow
    OPEN = "OPEN"  # calls fail fast
    HALF_OPEN = "HALF_OPEN"  # one probe call is allowed through


# The breaker's transition table (one per state machine: an illegal change is a bug).
BREAKER_TRANSITIONS = {
    BreakerState.CLOSED: frozenset({BreakerState.OPEN}),
    BreakerState.OPEN: frozenset({BreakerState.HALF_OPEN}),
    BreakerState.HALF_OPEN: frozenset({BreakerState.CLOSED, BreakerState.OPEN}),
}


@dataclass
class CircuitBreaker:
    """Opens after ``threshold`` consecutive temporary failures; after ``cooldown_s`` lets one probe through."""

    threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    on_change: Callable[[BreakerState, BreakerState, str], None] | None = None
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _probing: bool = False

    def _move(self, target: BreakerState, why: str) -> None:
        if target not in BREAKER_TRANSITIONS[self.state]:
            raise RuntimeError(f"breaker {self.state.value} -> {target.value} is not allowed")
        previous, self.state = self.state, target
        log.warning("circuit breaker %s -> %s: %s", previous.value, target.value, why)
        if self.on_change:
            self.on_change(previous, target, why)

    def refusal(self) -> str | None:
        """Why a call would be refused right now (without taking the probe), or None."""
        if self.state == BreakerState.OPEN:
            remaining = self.cooldown_s - (self.clock() - self.opened_at)
            if remaining > 0:
                return f"venue calls suspended for {remaining:.0f}s more after repeated failures (circuit breaker)"
        return None

    def release_probe(self) -> None:
        """A probe that ended without a venue answer (cancelled, or a non-venue error) frees the slot."""
        self._probing = False

    def before_call(self) -> None:
        """Raise CircuitOpen when calls must not go out now."""
        if self.state == BreakerState.OPEN:
            remaining = self.cooldown_s - (self.clock() - self.opened_at)
            if remaining > 0:
                raise vx.circuit_open_class()(
                    f"venue calls suspended for {remaining:.0f}s more after repeated failures"
                )
            self._move(BreakerState.HALF_OPEN, "cool-down over; probing")
        if self.state == BreakerState.HALF_OPEN:
            if self._probing:
                raise vx.circuit_open_class()("venue calls suspended: a probe call is in flight")
            self._probing = True

    def success(self) -> None:
        self.failures = 0
        if self.state == BreakerState.HALF_OPEN:
            self._probing = False
            self._move(BreakerState.CLOSED, "probe succeeded")

    def failure(self, exc: BaseException) -> None:
        if classify(exc) != Kind.TEMPORARY:
            if self.state == BreakerState.HALF_OPEN:
                self._probing = False
                self._move(BreakerState.CLOSED, "probe reached the venue")
            return
        self.failures += 1
        if self.state == BreakerState.HALF_OPEN:
            self._probing = False
            self.opened_at = self.clock()
            self._move(BreakerState.OPEN, f"probe failed: {type(exc).__name__}")
        elif self.state == BreakerState.CLOSED and self.failures >= self.threshold:
            self.opened_at = self.clock()
            self._move(BreakerState.OPEN, f"{self.failures} consecutive failures, last {type(exc).__name__}")


@dataclass
class LatencyStats:
    """Latency samples per endpoint over a sliding window of the last ``window`` calls."""

    window: int = 200
    samples: dict[str, deque[float]] = field(default_factory=dict)
    on_record: Callable[[str, float], None] | None = None  # every sample, e.g. into a metrics histogram

    # The samples of every endpoint, sorted, as of the ``record`` count they were sorted at: the REST latency monitor
    # asks for the overall percentile at every check (each step of a backtest), samples come a few per minute.
    _sorted_all: tuple[int, list[float]] | None = field(default=None, init=False, repr=False)
    _recorded: int = field(default=0, init=False, repr=False)

    def record(self, endpoint: str, ms: float) -> None:
        self.samples.setdefault(endpoint, deque(maxlen=self.window)).append(ms)
        self._recorded += 1
        if self.on_record is not None:
            self.on_record(endpoint, ms)

    def percentile(self, endpoint: str | None, pct: float) -> float | None:
        """The pct-th percentile (nearest rank) for one endpoint, or over all when ``endpoint`` is None."""
        if endpoint is None:
            if self._sorted_all is None or self._sorted_all[0] != self._recorded:
                self._sorted_all = self._recorded, sorted(v for d in self.samples.values() for v in d)
            values = self._sorted_all[1]
        else:
            values = sorted(self.samples.get(endpoint, ()))
        if not values:
            return None
        rank = max(1, min(len(values), math.ceil(pct / 100 * len(values))))
        return values[rank - 1]

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        return {
            name: {"p50": self.percentile(name, 50), "p95": self.percentile(name, 95), "n": len(d)}
            for name, d in sorted(self.samples.items())
        }


def retry_after_s(headers: dict[str, Any] | None) -> float | None:
    """The venue's Retry-After, in seconds, if it sent one."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    name: str,
    on_retry: Callable[[BaseException, float], None] | None = None,
    retry_after: Callable[[], float | None] = lambda: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    backoff: tuple[float, ...] = BACKOFF_S,
    max_retries: int = MAX_RETRIES,
    give_up: Callable[[], bool] = lambda: False,
) -> T:
    """Run ``call``; retry temporary errors after 1, 2, 4 s (or the venue's Retry-After if longer)."""
    attempt = 0
    while True:
        try:
            return await call()
        except vx.BaseError as exc:
            if (
                classify(exc) != Kind.TEMPORARY
                or attempt >= max_retries
                or isinstance(exc, vx.CircuitOpen)
                or give_up()
            ):
                raise
            delay = backoff[min(attempt, len(backoff) - 1)]
            venue_delay = retry_after()
            if venue_delay is not None:
                delay = max(delay, venue_delay)
            attempt += 1
            log.warning(
                "%s failed (%s: %s); retry %d/%d in %.1fs", name, type(exc).__name__, exc, attempt, max_retries, delay
            )
            if on_retry:
                on_retry(exc, delay)
            await sleep(delay)
