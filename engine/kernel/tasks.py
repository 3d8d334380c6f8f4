"""Every background task is owned: kept referenced, named, and its failure logged and reported; periodic work
runs each tick in isolation, so one bad tick is reported and the loop goes on."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

from engine.kernel.clock import Clock
from engine.kernel.errors import EngineError

log = logging.getLogger(__name__)


class TaskGroup:
    """Spawns named tasks, keeps them, reports a crash through ``on_crash`` and cancels all on close."""

    def __init__(self, on_crash: Callable[[str, BaseException], None]) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_crash = on_crash
        self._closed = False
        self.spawned = 0  # tasks spawned so far (a validation run's driver: whether a tick started any work)

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.spawned += 1
        self._tasks.add(task)
        task.add_done_callback(self._done)
        if self._closed:
            task.cancel()  # asked for while the engine stops (an event published on the way out): never runs
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            if isinstance(exc, EngineError):  # explained (a bad symbol, a garbage venue): its sentence is enough
                log.error("task %s stopped: %s", task.get_name(), exc)
            else:
                log.error("task %s crashed", task.get_name(), exc_info=exc)
            self._on_crash(task.get_name(), exc)

    def names(self) -> list[str]:
        return sorted(t.get_name() for t in self._tasks)

    async def close(self, *, for_good: bool = False) -> None:
        """Cancel every task (and any spawned meanwhile); ``for_good``: whatever is spawned later is cancelled
        at once too (the engine stopping: an event published on its way out must not start work)."""
        self._closed = True
        while self._tasks:  # a task may spawn another as it is cancelled: that one is cancelled too
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
        self._closed = for_good


class Periodic:
    """Runs ``tick`` every ``interval_s`` for ever; an exception in one tick is reported once per failing
    episode through ``on_failure(name, exc)`` (and ``on_recovery(name)`` when a tick succeeds again), and the
    loop goes on. A tick that cannot run must not silently end the watch it belongs to.

    ``clock``: the loop waits on that clock's time (the engine's: simulated in a validation run); without it,
    on the wall clock. ``guard``: an async context each tick of a wall-clock loop runs in (the engine clock's
    ``quiet``, so a simulated clock holds still while the tick reads the venue)."""

    def __init__(
        self,
        name: str,
        tick: Callable[[], Awaitable[Any] | Any],
        interval_s: Callable[[], float] | float,
        *,
        on_failure: Callable[[str, BaseException], None],
        on_recovery: Callable[[str], None] | None = None,
        delay_first: bool = False,
        clock: Clock | None = None,
        guard: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        self.name = name
        self._clock = clock
        self._guard = guard
        self._tick = tick
        self._interval = interval_s
        self._on_failure = on_failure
        self._on_recovery = on_recovery
        self._delay_first = delay_first
        self.failing = False
        self.failures = 0

    def interval(self) -> float:
        return self._interval() if callable(self._interval) else self._interval

    async def run_once(self) -> bool:
        """One isolated tick; True when it succeeded."""
        try:
            if self._guard is None:
                await self._call()
            else:
                async with self._guard():
                    await self._call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the task boundary of one tick: reported, and the loop goes on
            self._failed(exc)
            return False
        self._succeeded()
        return True

    def run_plain(self) -> bool:
        """One isolated tick of a plain (not async) tick, called where it is (a stepped clock's driver calls it
        when it is due: ``repeat``); True when it succeeded."""
        try:
            result = self._tick()
            if inspect.isawaitable(result):  # not plain after all: it cannot be awaited here
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError(f"{self.name}'s tick returned an awaitable where a plain call was expected")
        except Exception as exc:  # the boundary of one tick: reported, and the loop goes on
            self._failed(exc)
            return False
        self._succeeded()
        return True

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if not self.failing:
            self.failing = True
            log.error("%s failed", self.name, exc_info=exc)
            self._on_failure(self.name, exc)
        else:
            log.debug("%s still failing: %s", self.name, exc)

    def _succeeded(self) -> None:
        if self.failing:
            self.failing = False
            log.info("%s runs again", self.name)
            if self._on_recovery:
                self._on_recovery(self.name)

    async def _call(self) -> None:
        result = self._tick()
        if inspect.isawaitable(result):
            await result

    async def _sleep(self) -> None:
        if self._clock is None:
            await asyncio.sleep(self.interval())
        else:
            await self._clock.sleep(self.interval(), self.name)

    async def run(self) -> None:
        # A stepped clock that calls a plain tick itself when it is due (GATE-21): this task only holds its place.
        repeat = getattr(self._clock, "repeat", None) if getattr(self._clock, "plain", False) else None
        if repeat is not None and self._guard is None and not inspect.iscoroutinefunction(self._tick):
            await repeat(self.name, self.interval, self.run_plain, delay_first=self._delay_first)
            return
        if self._delay_first:
            await self._sleep()
        elif self._clock is not None:
            # The clock's first moment: a validation run's stepped clock starts its loops when it starts time
            # (the wall clock just lets the event loop turn once).
            await self._clock.sleep(0, self.name)
        while True:
            await self.run_once()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A cancellation some library swallowed inside the tick (Python 3.11's wait_for does, when the
                # awaited future completes at the same moment): the loop stops as it was asked, not at the next tick.
                raise asyncio.CancelledError
            await self._sleep()
