"""Klines as Binance serves them: a seeded history at once, live candles from the tape, @kline streams."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import ccxt
import pytest

from engine.sim import Simulator

BTC = "BTC/USDT"
MINUTE = 60_000


async def test_history_is_there_at_once_and_ends_at_the_start_price(sim, client):
    candles = await client.fetch_ohlcv(BTC, "1m", limit=1000)
    assert len(candles) == 1000
    opens = [c[0] for c in candles]
    assert opens == list(range(opens[0], opens[0] + 1000 * MINUTE, MINUTE))  # contiguous minutes
    assert all(low <= min(o, c) and high >= max(o, c) for _, o, high, low, c, _ in candles)
    assert all(v > 0 for *_, v in candles[:-1])  # the current minute may have no trade yet
    history_end = [c for c in candles if c[0] < sim.clock.start_ms - sim.clock.start_ms % MINUTE]
    assert history_end[-1][4] == 65000.0  # the generated past ends where the live feed begins
    hourly = await client.fetch_ohlcv(BTC, "1h", limit=200)
    assert len(hourly) == 200 and hourly[1][0] - hourly[0][0] == 3_600_000
    assert (await client.fetch_ticker(BTC))["baseVolume"] > 0  # 24 h statistics include the history


async def test_history_depends_only_on_the_seed():
    async with Simulator(seed=42) as a, Simulator(seed=42) as b, Simulator(seed=43) as c:

        def closes(s: Simulator) -> list[Decimal]:
            return [
                k.close
                for k in s.feeds["ETHUSDT"].candles.aggregate(
                    900_000, start_ms=None, end_ms=s.clock.start_ms - 3_600_000, limit=50, now_ms=s.clock.now_ms()
                )
            ]

        assert closes(a) == closes(b) != closes(c)


async def test_klines_honour_start_end_and_limit(sim, client):
    start = sim.clock.start_ms - 10 * 3_600_000
    start -= start % 3_600_000
    rows = await client.public_get_klines({"symbol": "BTCUSDT", "interval": "1h", "startTime": start + 1, "limit": 3})
    assert [r[0] for r in rows] == [start + 3_600_000 * i for i in (1, 2, 3)]
    assert all(r[6] == r[0] + 3_599_999 and len(r) == 12 for r in rows)
    rows = await client.public_get_klines({"symbol": "BTCUSDT", "interval": "5m", "endTime": start, "limit": 4})
    assert [r[0] for r in rows][-1] == start and len(rows) == 4
    weekly = await client.fetch_ohlcv(BTC, "1w", limit=2)
    assert time.gmtime(weekly[-1][0] / 1000).tm_wday == 0  # weeks open on Monday
    with pytest.raises(ccxt.BadRequest):
        await client.public_get_klines({"symbol": "BTCUSDT", "interval": "7m"})


async def test_live_candle_follows_the_tape(sim, client):
    sim.pause_feed()
    sim.set_price("BTCUSDT", Decimal("65500"))
    sim.set_price("BTCUSDT", Decimal("64800"))
    last = (await client.fetch_ohlcv(BTC, "1m", limit=1))[-1]
    assert last[2] >= 65500.0 and last[3] <= 64800.0 and last[4] == 64800.0


async def test_watch_ohlcv_streams_and_closes_candles_at_high_speed(make_client):
    async with Simulator(seed=3, speed=600, tick_interval=0.02) as fast:  # ten market minutes per second
        client = build(fast)
        try:
            first = await asyncio.wait_for(client.watch_ohlcv(BTC, "1m"), 5)
            seen = {first[-1][0]}
            while len(seen) < 3:
                seen.update(c[0] for c in await asyncio.wait_for(client.watch_ohlcv(BTC, "1m"), 5))
            assert sorted(seen)[1] - sorted(seen)[0] == MINUTE
        finally:
            await client.close()


def build(sim: Simulator):
    from engine.venue.exchange import build_exchange

    ex = build_exchange(
        "binance",
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        timeout_ms=3_000,
    )
    ex.enableRateLimit, ex.timeout_on_exit = False, 0
    return ex


def test_minutes_from_a_start_are_those_of_the_whole_series_from_it():
    """The kline answer starts its walk at the first minute asked for (binary search), with the quiet minutes before
    it filled flat as before: the same candles as walking every minute held and keeping those from the start."""
    from engine.sim.candles import Candle, CandleSeries

    series = CandleSeries(tick_size=Decimal("0.01"), step_size=Decimal("0.0001"), typical_qty=Decimal(1), seed="t")
    t0 = 1_767_225_600_000
    held = [0, 1, 2, 5, 6, 9, 10, 11, 15]  # minutes with trades; the others are quiet
    series.preset(
        Candle(t0 + m * MINUTE, Decimal(100 + m), Decimal(101 + m), Decimal(99 + m), Decimal(100 + m)) for m in held
    )
    now = t0 + 18 * MINUTE
    every = [(c.start_ms, c.close) for c in series.minutes(now_ms=now)]
    assert len(every) == 19  # minutes 0..18, the quiet ones flat at the close before
    for start in range(-2, 20):
        for end in (None, t0 + 7 * MINUTE, t0 + 16 * MINUTE):
            got = [(c.start_ms, c.close) for c in series.minutes(t0 + start * MINUTE, end, now)]
            want = [r for r in every if r[0] >= t0 + start * MINUTE and (end is None or r[0] <= end)]
            assert got == want, (start, end)
