"""The clock offset signed calls are stamped with: it follows the ping, and a call refused for its timestamp
resyncs it (one resync for calls refused together) and is sent once more, never twice."""

import asyncio

import ccxt.async_support as ccxt
import pytest

from engine.venue.clock import FOLLOW_MS, VenueClock
from engine.venue.health import VenueHealth


class Client:
    """Stands for a ccxt client: only its options are touched."""

    def __init__(self) -> None:
        self.options: dict = {"timeDifference": 0}


class Venue:
    """A venue whose clock is ``skew_ms`` ahead of ours and refuses calls stamped with another offset."""

    def __init__(self, skew_ms: float, readable: bool = True) -> None:
        self.skew_ms = skew_ms
        self.readable = readable
        self.readings = 0
        self.calls = 0

    async def measure(self) -> float:
        self.readings += 1
        for _ in range(5):  # the reading takes a few turns of the loop: calls refused meanwhile must wait for it
            await asyncio.sleep(0)
        if not self.readable:
            raise ccxt.RequestTimeout("no answer")
        return self.skew_ms

    def signed(self, client: Client):
        async def call() -> str:
            self.calls += 1
            await asyncio.sleep(0)
            if abs(-client.options["timeDifference"] - self.skew_ms) > 1000:
                raise ccxt.InvalidNonce(
                    'binance {"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}'
                )
            return "ok"

        return call


def make(venue: Venue, health: VenueHealth | None = None) -> tuple[VenueClock, Client, Client]:
    routine, urgent = Client(), Client()
    return VenueClock((routine, urgent), health or VenueHealth(60.0), venue.measure), routine, urgent


def test_the_offset_follows_a_ping_that_finds_it_off_and_ignores_jitter():
    clock, routine, urgent = make(Venue(0))
    clock.follow(FOLLOW_MS - 1)
    assert clock.offset_ms == 0 and routine.options["timeDifference"] == 0
    clock.follow(3000.4)
    assert clock.offset_ms == 3000.4
    assert routine.options["timeDifference"] == urgent.options["timeDifference"] == -3000
    clock.follow(12.0)  # the skew ended: back to the venue's clock, not left 3 s ahead of it
    assert clock.offset_ms == 12.0 and urgent.options["timeDifference"] == -12


def test_clients_built_by_a_reconnect_sign_with_the_offset_in_force():
    health = VenueHealth(60.0)
    make(Venue(0), health)[0].follow(-4000.0)
    _, routine, urgent = make(Venue(0), health)
    assert routine.options["timeDifference"] == urgent.options["timeDifference"] == 4000


async def test_calls_refused_together_share_one_resync_and_are_each_sent_once_more():
    venue = Venue(15_000)
    clock, routine, urgent = make(venue)
    calls = [venue.signed(routine) for _ in range(4)] + [venue.signed(urgent)]
    assert await asyncio.gather(*(clock.in_time("fetch_balance", c) for c in calls)) == ["ok"] * 5
    assert venue.readings == 1 and clock.resyncs == 1 and venue.calls == 10
    assert clock.offset_ms == 15_000


async def test_a_refusal_that_survives_the_resync_is_raised_and_not_sent_a_third_time():
    venue = Venue(15_000)
    clock, routine, _ = make(venue)

    async def refused() -> str:
        venue.calls += 1
        raise ccxt.InvalidNonce("-1021")

    with pytest.raises(ccxt.InvalidNonce):
        await clock.in_time("create_order", refused)
    assert venue.calls == 2 and venue.readings == 1


async def test_no_retry_when_the_venue_clock_cannot_be_read_and_none_for_other_errors():
    venue = Venue(15_000, readable=False)
    clock, routine, _ = make(venue)
    with pytest.raises(ccxt.InvalidNonce):
        await clock.in_time("fetch_balance", venue.signed(routine))
    assert venue.calls == 1 and clock.offset_ms == 0

    async def broken() -> str:
        venue.calls += 1
        raise ccxt.RequestTimeout("slow")

    with pytest.raises(ccxt.RequestTimeout):
        await clock.in_time("fetch_balance", broken)
    assert venue.calls == 2 and venue.readings == 1


def test_refusals_are_counted_by_the_health_for_the_clock_skew_monitor():
    health = VenueHealth(60.0)
    health.error("create_order", ccxt.InvalidNonce('binance {"code":-1021}'))
    assert health.recent_timestamp_refusals() == ["create_order: InvalidNonce"]
    assert health.recent_errors() == []  # not a REST error too: one monitor acts on it, not two


def test_a_fill_without_a_time_is_stamped_on_the_engines_clock():
    """Binance's answer to a market order lists its fills with no time: they are stamped now on the engine's clock,
    the simulator's in a validation run (the wall clock stamped a backtest's round trips months after its simulated
    time, and its losing-streak stand-down never ended)."""
    from datetime import UTC, datetime

    from engine.gate.stepped import SteppedClock
    from engine.kernel import clock
    from engine.venue.parse import parse_fill

    simulated = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    trade = {"id": "1", "symbol": "BTC/USDT", "side": "buy", "price": 65000, "amount": 0.001, "timestamp": None}
    with clock.use(SteppedClock(lambda: int(simulated.timestamp() * 1000))):
        assert parse_fill(trade).ts == simulated
        assert parse_fill({**trade, "timestamp": 1_767_225_600_000}).ts == datetime(2026, 1, 1, tzinfo=UTC)
