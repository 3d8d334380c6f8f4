"""The engine's clock: the wall clock, or a simulated one during a paper validation run.

What the engine decides on time (strategy steps, equity samples, the daily reset at UTC midnight, the monitors'
windows, the order rate limit, stop-loss retries, alert escalation) asks this module, never ``time`` or
``datetime`` directly, so that a validation run (``engine.core.validation``) can put the engine on the simulator's
clock and replay 48 hours in a minute. What is about the link to the venue (REST latency, stream staleness,
backoff between retries, the circuit breaker) stays on the wall clock: it is real time whatever the run.

The clock in force is a context variable: an engine started inside ``use(clock)`` takes it, and so do the tasks
it spawns (asyncio copies the context into every task), while other engines in the same process keep theirs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Engine time: now, a monotonic reading in seconds, and sleeping on it."""

    # True on a clock that moves only when its driver moves it (a backtest's): nothing runs beside the engine's woken
    # work, so a strategy's step may run on the engine's thread under a timer's deadline (decision GATE-27).
    lockstep: bool

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for intervals and windows)."""

    async def sleep(self, seconds: float, name: str = "") -> None:
        """Wait ``seconds`` of engine time; ``name`` says which loop waits (a simulated clock wakes loops due
        at the same time in the order of their names)."""

    def quiet(self) -> AbstractAsyncContextManager[None]:
        """Held by a loop that runs on the wall clock while it works: a simulated clock does not move
        meanwhile (so what it reads from the venue cannot straddle a step of simulated time)."""


class WallClock:
    """Real time: what a live or paper engine runs on."""

    lockstep = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float, name: str = "") -> None:
        await asyncio.sleep(seconds)

    @asynccontextmanager
    async def quiet(self) -> AsyncIterator[None]:
        yield


WALL = WallClock()
_current: ContextVar[Clock] = ContextVar("cockpit_engine_clock", default=WALL)


def current() -> Clock:
    """The clock in force here (the wall clock unless a validation run set another)."""
    return _current.get()


def now() -> datetime:
    """Engine time now, timezone-aware UTC."""
    return _current.get().now()


def monotonic() -> float:
    """Engine time in seconds, for intervals."""
    return _current.get().monotonic()


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Run what starts inside (an engine and every task it spawns) on ``clock``."""
    token = _current.set(clock)
    try:
        yield clock
    finally:
        _current.reset(token)
