"""A stepped engine clock: engine time is the simulator's market time, and it moves only when its driver moves it.

A validation run (``engine.core.validation``) starts the engine inside
``engine.kernel.clock.use(SteppedClock(...))``. Every loop the engine runs on its own clock (strategy steps,
monitors, equity samples, the daily summary, alert escalation) then sleeps here: it waits for the driver to move
time past its due time and wake it. The driver wakes the loops due one at a time, in the order of (due time, loop
name), and waits for each one to be done (asleep again) before the next: that order, not the machine's load, decides
what happens, so the same seed gives the same run. Loops that watch the venue run on the wall clock and hold
``quiet()`` while they work; the driver holds the same gate while it moves time, so a REST answer never straddles a
step.

A loop whose tick is a plain call (the monitors, the equity sample, alert escalation, the daily summary) is not
woken at all (``repeat``): the driver calls its tick itself when it is due, at the very point of the order where
the woken loop would have run it, and it is due again an interval later, as if it had gone back to sleep. What it
does is the same; what is saved is the wake (the task's future, its turn of the event loop, the driver's wait for
it) at every step of a backtest (decision GATE-21).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(order=True)
class _Timer:
    due_ms: int
    name: str
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    task: asyncio.Task[object] | None = field(compare=False)
    # A plain loop (``repeat``): what the driver calls when it is due, and its interval (None: a sleeper to wake).
    call: Callable[[], object] | None = field(default=None, compare=False)
    interval: Callable[[], float] | None = field(default=None, compare=False)


class SteppedClock:
    """Engine time read from ``market_ms`` (the simulator's stepped market clock); sleepers wake only when the
    driver calls ``wake_next`` after moving market time."""

    lockstep = True

    def __init__(self, market_ms: Callable[[], int], *, plain: bool = True) -> None:
        self._market_ms = market_ms
        # Whether the driver calls a plain loop's tick itself (``repeat``); False: every loop is woken as a task.
        self.plain = plain
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._gate = asyncio.Lock()
        self._watched: set[asyncio.Task[object]] = set()
        self.busy: dict[asyncio.Task[object], str] = {}  # woken loops still working -> their names
        self._idle = asyncio.Event()  # set while no woken loop is working
        self._idle.set()

    # ------------------------------------------------------------ what the engine sees (engine.clock.Clock)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._market_ms() / 1000, UTC)

    def monotonic(self) -> float:
        return self._market_ms() / 1000

    async def sleep(self, seconds: float, name: str = "") -> None:
        task = asyncio.current_task()
        if task is not None:
            self._done(task)  # asleep again: its tick is done
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, _Timer(self._due(seconds), name, next(self._seq), future, task))
        try:
            await future
        except asyncio.CancelledError:
            future.cancel()  # dropped from the heap when it reaches the top
            raise

    async def repeat(
        self, name: str, interval: Callable[[], float], call: Callable[[], object], *, delay_first: bool = False
    ) -> None:
        """A loop whose tick is the plain call ``call`` (``engine.kernel.tasks.Periodic``): due now (or an interval
        from now), called by the driver when it is due, then due ``interval()`` later; the task that awaits this
        only holds the loop's place until it is cancelled."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        due = self._due(interval() if delay_first else 0)
        heapq.heappush(self._timers, _Timer(due, name, next(self._seq), future, None, call, interval))
        try:
            await future  # never set: the loop ends when its task is cancelled
        except asyncio.CancelledError:
            future.cancel()
            raise

    def _due(self, seconds: float) -> int:
        # A sleep of 0 is due now (the driver's next wake); any other is at least a millisecond long.
        return self._market_ms() + (0 if seconds <= 0 else max(1, round(seconds * 1000)))

    @asynccontextmanager
    async def quiet(self) -> AsyncIterator[None]:
        async with self._gate:
            yield

    # ------------------------------------------------------------ what the driver does

    @asynccontextmanager
    async def moving(self) -> AsyncIterator[None]:
        """Held while the driver moves time and wakes loops: no wall-clock loop reads the venue meanwhile."""
        async with self._gate:
            yield

    def next_due_ms(self) -> int | None:
        """When the next sleeper is due (None when none sleeps)."""
        self._drop_cancelled()
        return self._timers[0].due_ms if self._timers else None

    def wake_next(self) -> str | None:
        """Wake the first sleeper due by now (its name), marking it busy until it sleeps again; None if none is. A
        plain loop's (``repeat``) tick is called here and now, and it is due again an interval later."""
        self._drop_cancelled()
        if not self._timers or self._timers[0].due_ms > self._market_ms():
            return None
        timer = heapq.heappop(self._timers)
        if timer.call is not None and timer.interval is not None:
            try:
                timer.call()
            finally:  # asleep again, as a woken loop's next sleep would put it (its seq taken after its tick)
                again = _Timer(self._due(timer.interval()), timer.name, next(self._seq), timer.future, None)
                again.call, again.interval = timer.call, timer.interval
                heapq.heappush(self._timers, again)
            return timer.name
        if timer.task is not None:
            self.busy[timer.task] = timer.name
            self._idle.clear()
            if timer.task not in self._watched:
                self._watched.add(timer.task)
                timer.task.add_done_callback(self._ended)
        timer.future.set_result(None)
        return timer.name

    async def idle(self) -> None:
        """Until no woken loop is working: the driver waits here instead of turning the event loop over and over
        while a loop's work is in a thread (a strategy's ``decide``)."""
        await self._idle.wait()

    def _done(self, task: asyncio.Task[object]) -> None:
        self.busy.pop(task, None)
        if not self.busy:
            self._idle.set()

    def _ended(self, task: asyncio.Task[object]) -> None:
        self._done(task)
        self._watched.discard(task)

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0].future.done():
            heapq.heappop(self._timers)
