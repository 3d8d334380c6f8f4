"""The engine's clock: a context variable the engine and its tasks take (other engines keep the wall clock), and
the stepped clock a validation run drives: sleepers wake only when it moves, in (due time, name) order, one at a
time, and wall-clock loops wait while it moves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from eventually import eventually

from engine.gate.stepped import SteppedClock
from engine.kernel import clock
from engine.kernel.events import utcnow
from engine.kernel.tasks import Periodic

T0 = 1_736_121_600_000  # 2025-01-06T00:00:00Z


class Market:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms


async def test_the_engine_clock_is_the_wall_clock_unless_a_run_sets_another():
    market = Market()
    stepped = SteppedClock(market)
    assert clock.current() is clock.WALL
    with clock.use(stepped):
        assert utcnow() == datetime(2025, 1, 6, tzinfo=UTC)
        seen = asyncio.get_running_loop().create_task(_now())
    assert await seen == datetime(2025, 1, 6, tzinfo=UTC)  # a task made inside keeps the run's clock
    assert clock.current() is clock.WALL and utcnow() != datetime(2025, 1, 6, tzinfo=UTC)


async def _now() -> datetime:
    return utcnow()


async def test_sleepers_wake_when_the_driver_moves_time_in_due_then_name_order():
    market = Market()
    stepped = SteppedClock(market)
    woke: list[str] = []

    async def loop(name: str, every: float) -> None:
        while True:
            await stepped.sleep(every, name)
            woke.append(f"{name}@{(market.ms - T0) // 1000}")

    tasks = [asyncio.create_task(loop(n, s)) for n, s in (("strategies", 3), ("monitors", 1), ("equity", 10))]
    await eventually(lambda: stepped.next_due_ms() == T0 + 1000, message="all asleep")
    assert stepped.wake_next() is None  # nothing due: time has not moved
    market.ms += 10_000  # one tick of 10 s: each loop due within it runs once, at its end
    names = []
    while (name := stepped.wake_next()) is not None:
        names.append(name)
        await eventually(lambda: not stepped.busy, message=f"{name} asleep again")
    assert names == ["monitors", "strategies", "equity"]  # due at 1 s, 3 s, 10 s
    assert woke == ["monitors@10", "strategies@10", "equity@10"]
    assert stepped.next_due_ms() == T0 + 11_000
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert stepped.busy == {}


async def test_a_periodic_on_the_stepped_clock_starts_when_time_does_and_wall_loops_wait_while_it_moves():
    market = Market()
    stepped = SteppedClock(market)
    ticks: list[int] = []
    failures: list[str] = []
    periodic = Periodic(
        "strategies",
        lambda: ticks.append(market.ms),
        3.0,
        clock=stepped,
        on_failure=lambda name, exc: failures.append(name),
    )
    task = asyncio.create_task(periodic.run())
    await eventually(lambda: stepped.next_due_ms() == T0, message="waiting for the clock's first moment")
    assert ticks == []
    assert stepped.wake_next() == "strategies"
    await eventually(lambda: ticks == [T0] and not stepped.busy, message="first tick")
    wall: list[str] = []
    async with stepped.moving():
        guarded = asyncio.create_task(
            Periodic(
                "reconciliation", lambda: wall.append("read"), 60.0, guard=stepped.quiet, on_failure=lambda n, e: None
            ).run()
        )
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert wall == []  # the venue is not read while time moves
    await eventually(lambda: wall == ["read"], message="read once the step is over")
    for t in (task, guarded):
        t.cancel()
    await asyncio.gather(task, guarded, return_exceptions=True)
    assert failures == []


async def _run_three_loops(plain: bool) -> tuple[list[str], list[str], list[str]]:
    """Three loops on a stepped clock (two plain ticks, one async) through three wakes; what ran, in what order."""
    market = Market()
    stepped = SteppedClock(market, plain=plain)
    ran: list[str] = []
    reported: list[str] = []
    failing = iter([True, True])  # the equity curve's first two ticks fail

    def at(name: str) -> None:
        ran.append(f"{name}@{(market.ms - T0) // 1000}")

    def equity() -> None:
        at("equity curve")
        if next(failing, False):
            raise RuntimeError("no price yet")

    async def strategies() -> None:
        at("strategies")

    loops = [
        Periodic(
            name,
            tick,
            every,
            clock=stepped,
            on_failure=lambda n, e: reported.append(f"{n} failed: {e}"),
            on_recovery=lambda n: reported.append(f"{n} recovered"),
        )
        for name, tick, every in (
            ("monitors", lambda: at("monitors"), 1.0),
            ("strategies", strategies, 3.0),
            ("equity curve", equity, 10.0),
        )
    ]
    tasks = [asyncio.create_task(p.run()) for p in loops]
    await eventually(lambda: stepped.next_due_ms() == T0, message="waiting for the clock's first moment")
    names: list[str] = []
    for _ in range(3):
        while (name := stepped.wake_next()) is not None:
            names.append(name)
            if plain and name != "strategies":
                assert not stepped.busy  # called where it is: nothing to wait for
            await eventually(lambda: not stepped.busy, message=f"{name} asleep again")
        market.ms += 10_000
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert stepped.next_due_ms() is None and stepped.busy == {}
    return names, ran, reported


async def test_plain_loops_called_by_the_driver_run_as_woken_loops_would():
    """GATE-21: a plain tick is called by the driver in the same (due time, name) order, at the same times, with the
    same failure reporting, as when its loop is woken as a task."""
    called = await _run_three_loops(plain=True)
    woken = await _run_three_loops(plain=False)
    assert called == woken
    names, ran, reported = called
    assert names == ["equity curve", "monitors", "strategies"] + ["monitors", "strategies", "equity curve"] * 2
    assert ran[:3] == ["equity curve@0", "monitors@0", "strategies@0"] and ran[-1] == "equity curve@20"
    assert reported == ["equity curve failed: no price yet", "equity curve recovered"]  # once per failing episode
