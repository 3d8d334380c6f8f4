"""Errors classified once; retries with backoff and Retry-After; the breaker's table; latency percentiles."""

import ccxt.async_support as ccxt
import pytest

from engine.venue.resilience import (
    BREAKER_TRANSITIONS,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    Kind,
    LatencyStats,
    classify,
    retry_after_s,
    with_retries,
)


@pytest.mark.parametrize(
    "exc,kind",
    [
        (ccxt.DDoSProtection("429"), Kind.TEMPORARY),  # 429 is DDoSProtection, not RateLimitExceeded
        (ccxt.RateLimitExceeded("-1003"), Kind.TEMPORARY),
        (ccxt.RequestTimeout("slow"), Kind.TEMPORARY),
        (ccxt.ExchangeNotAvailable("502"), Kind.TEMPORARY),
        # Maintenance and a refused key are reasons to halt, never blips to retry (issue 8), whatever ccxt's class.
        (ccxt.OnMaintenance("maint"), Kind.PERMANENT),
        (ccxt.ExchangeNotAvailable('binance {"code":1,"msg":"System is under maintenance."}'), Kind.PERMANENT),
        (
            ccxt.DDoSProtection('binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'),
            Kind.PERMANENT,
        ),
        (ccxt.OperationFailed("-1001"), Kind.TEMPORARY),
        (ccxt.AuthenticationError("-2015"), Kind.PERMANENT),
        (ccxt.InsufficientFunds("-2010"), Kind.PERMANENT),
        (ccxt.InvalidOrder("LOT_SIZE"), Kind.PERMANENT),
        (ccxt.OrderNotFound("-2013"), Kind.PERMANENT),
        (ccxt.InvalidNonce("-1021"), Kind.PERMANENT),
        (ccxt.BadSymbol("-1121"), Kind.PERMANENT),
    ],
)
def test_classification(exc, kind):
    assert classify(exc) == kind


async def test_retries_temporary_with_backoff_then_succeeds():
    calls, slept = [], []

    async def call():
        calls.append(1)
        if len(calls) < 3:
            raise ccxt.ExchangeNotAvailable("502")
        return "ok"

    async def sleep(s):
        slept.append(s)

    assert await with_retries(call, name="t", sleep=sleep) == "ok"
    assert slept == [1.0, 2.0]


async def test_gives_up_after_three_retries_and_honours_retry_after():
    slept = []

    async def call():
        raise ccxt.DDoSProtection("429")

    async def sleep(s):
        slept.append(s)

    with pytest.raises(ccxt.DDoSProtection):
        await with_retries(call, name="t", sleep=sleep, retry_after=lambda: 3.0)
    assert slept == [3.0, 3.0, 4.0]  # the longer of backoff and Retry-After


async def test_permanent_is_never_retried():
    calls = []

    async def call():
        calls.append(1)
        raise ccxt.InsufficientFunds("no")

    with pytest.raises(ccxt.InsufficientFunds):
        await with_retries(call, name="t", sleep=None)
    assert len(calls) == 1


def test_retry_after_header():
    assert retry_after_s({"Retry-After": "7"}) == 7.0
    assert retry_after_s({"retry-after": "x"}) is None
    assert retry_after_s(None) is None


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def test_breaker_opens_probes_and_closes():
    clock, changes = Clock(), []
    b = CircuitBreaker(threshold=3, cooldown_s=10, clock=clock, on_change=lambda a, b_, why: changes.append(b_))
    for _ in range(3):
        b.before_call()
        b.failure(ccxt.RequestTimeout("x"))
    assert b.state == BreakerState.OPEN
    with pytest.raises(CircuitOpen, match="suspended"):
        b.before_call()
    clock.t = 10
    b.before_call()  # the probe
    assert b.state == BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen, match="probe"):
        b.before_call()  # only one probe at a time
    b.failure(ccxt.RequestTimeout("x"))
    assert b.state == BreakerState.OPEN
    clock.t = 20
    b.before_call()
    b.success()
    assert b.state == BreakerState.CLOSED
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_permanent_errors_do_not_open_the_breaker():
    b = CircuitBreaker(threshold=1)
    b.failure(ccxt.InvalidOrder("x"))
    assert b.state == BreakerState.CLOSED


def test_breaker_table_has_every_state():
    assert set(BREAKER_TRANSITIONS) == set(BreakerState)
    assert BreakerState.CLOSED not in BREAKER_TRANSITIONS[BreakerState.OPEN]  # must probe first


def test_latency_percentiles():
    stats = LatencyStats(window=100)
    for ms in range(1, 101):
        stats.record("fetch_ticker", float(ms))
    stats.record("create_order", 500.0)
    assert stats.percentile("fetch_ticker", 50) == 50.0
    assert stats.percentile("fetch_ticker", 95) == 95.0
    assert stats.percentile(None, 100) == 500.0
    assert stats.percentile("nothing", 50) is None
    assert stats.summary()["create_order"]["n"] == 1
