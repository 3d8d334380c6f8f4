"""The weight budget follows the venue's count per minute, carries no debt across idle time, and lets the kill
switch's calls go first (issue 13)."""

from __future__ import annotations

import asyncio

from engine.venue.ratelimit import WeightBudget, weight_limit_from


class Clock:
    """The venue's clock, moved by the budget's own waits (no real time passes in these tests)."""

    def __init__(self, now: float = 1_000_040.0) -> None:  # 20 s into a minute
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def budget(limit: int = 1000) -> tuple[WeightBudget, Clock]:
    clock = Clock()
    return WeightBudget(limit=limit, routine_share=0.9, venue_clock=clock, sleep=clock.sleep), clock


async def test_a_heavy_call_leaves_no_debt_for_the_next_one():
    b, clock = budget()
    minute = await b.acquire(80)  # a venue-wide open-orders listing
    b.settled(80, minute)
    await b.acquire(20)  # the balance after it goes at once: ccxt's bucket would make it wait
    assert clock.slept == [] and b.used() == 100


async def test_routine_calls_wait_for_the_next_minute_near_the_limit_and_the_kill_switch_does_not():
    b, clock = budget()
    await b.acquire(880)
    await b.acquire(20, urgent=True)  # the kill switch may use the last tenth
    assert clock.slept == []
    routine = asyncio.create_task(b.acquire(30))
    await asyncio.sleep(0)
    assert not routine.done()  # 930 of a routine cap of 900: waits for the venue's next minute
    await routine
    assert len(clock.slept) == 1 and 40 < clock.slept[0] < 41  # the rest of the minute and a margin
    assert b.used() == 30 and b.waits == 1


async def test_the_venues_count_is_followed_when_others_used_the_minute():
    b, clock = budget()
    b.observe({"X-MBX-USED-WEIGHT-1M": "895"})  # another process on the same IP used most of the minute
    waiting = asyncio.create_task(b.acquire(10))
    await asyncio.sleep(0)
    assert not waiting.done()
    await waiting
    assert clock.slept


async def test_at_the_turn_of_the_minute_the_kill_switch_goes_first():
    b, clock = budget()
    await b.acquire(1000, urgent=True)
    order: list[str] = []

    async def call(name: str, urgent: bool) -> None:
        await b.acquire(600, urgent=urgent)
        order.append(name)

    await asyncio.gather(call("routine", False), call("kill switch", True))
    assert order[0] == "kill switch"


async def test_requests_in_flight_count_until_answered():
    b, _ = budget()
    minute = await b.acquire(50)
    b.observe({"x-mbx-used-weight-1m": "10"})  # an older answer: ours is not in it yet
    assert b.used() == 60
    b.settled(50, minute)
    assert b.used() == 50  # what we sent ourselves is never forgotten within the minute


def test_the_limit_comes_from_exchange_info():
    info = {
        "rateLimits": [
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        ]
    }
    assert weight_limit_from(info) == 6000 and weight_limit_from({}) is None and weight_limit_from(None) is None


async def test_background_refreshes_are_paced_over_the_minute():
    b, clock = budget(limit=1000)  # background share 0.5: 500 a minute, spread over it
    clock.now = 1_000_020.0  # the turn of a minute (1,000,020 = 16,667 minutes)
    refreshes = []
    for _ in range(600):  # a refresh every 0.1 s wanting weight 50: ten times what the budget allows
        if b.spare_for_background(50):
            refreshes.append(clock.now)
            b.settled(50, await b.acquire(50))
        clock.now += 0.1
    per_minute = [t for t in refreshes if t < 1_000_080.0]
    assert 9 <= len(per_minute) <= 11  # half the limit in the minute, no more
    gaps = [b - a for a, b in zip(per_minute, per_minute[1:])]
    assert max(gaps) < 15  # spread over the minute, not spent in its first seconds then starved for 50 s
    assert b.skipped > 500
    assert b.room(urgent=False) > 0  # what is left stays for orders, reconnects and the kill switch


async def test_a_busy_foreground_does_not_starve_the_background_share():
    b, clock = budget(limit=1000)
    clock.now = 1_000_020.0  # the turn of a minute
    b.settled(400, await b.acquire(400))  # a restart's reloads and orders: 40 % of the minute at once
    clock.now += 6.0  # a tenth of the minute gone: 50 of background allowed
    assert b.spare_for_background(50)
    assert not b.spare_for_background(50)  # its share so far is spent
    clock.now += 6.0
    assert b.spare_for_background(50)
    b.settled(480, await b.acquire(480))  # the routine cap (900) is nearly reached by everything together
    clock.now += 30.0
    assert not b.spare_for_background(50)  # the cap holds for all of it
