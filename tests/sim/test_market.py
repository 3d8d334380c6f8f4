"""Unit tests of the seeded price feed and the matching engine (no network)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from engine.sim.errors import VenueError
from engine.sim.market import SYMBOLS, PriceFeed
from engine.sim.matching import MatchingEngine


def prices(seed: int, symbol: str = "BTCUSDT", n: int = 100) -> list[Decimal]:
    feed = PriceFeed(SYMBOLS[symbol], seed)
    return [feed.next_price() for _ in range(n)]


def test_same_seed_gives_same_first_100_prices():
    assert prices(42) == prices(42)
    assert prices(42, "ETHUSDT") == prices(42, "ETHUSDT")


def test_different_seed_or_symbol_gives_another_path():
    assert prices(42) != prices(43)
    assert [p / SYMBOLS["BTCUSDT"].start_price for p in prices(42)] != [
        p / SYMBOLS["ETHUSDT"].start_price for p in prices(42, "ETHUSDT")
    ]


def test_prices_are_decimals_on_the_tick_and_near_the_start():
    path = prices(5, n=400)
    assert all(isinstance(p, Decimal) and p % Decimal("0.01") == 0 for p in path)
    assert all(Decimal(50000) < p < Decimal(80000) for p in path)


def test_volatility_is_realistic():
    feed = PriceFeed(SYMBOLS["BTCUSDT"], 9, tick_interval=1.0, jump_probability=0.0)
    path = [feed.price] + [feed.next_price() for _ in range(5000)]
    returns = [math.log(b / a) for a, b in zip(path, path[1:])]
    per_tick = math.sqrt(sum(r * r for r in returns) / len(returns))
    annualised = per_tick * math.sqrt(365 * 24 * 3600)
    assert 0.5 < annualised < 0.9


def test_bid_ask_straddle_the_price_by_about_one_basis_point():
    feed = PriceFeed(SYMBOLS["BTCUSDT"], 1)
    bid, ask = feed.bid_ask()
    assert bid < feed.price < ask
    assert Decimal("0.00005") < (ask - bid) / feed.price < Decimal("0.00015")


def test_stats_track_open_high_low_volume():
    feed = PriceFeed(SYMBOLS["ETHUSDT"], 1)
    now = 1_700_000_000_000
    for i, price in enumerate(["3500", "3510", "3490", "3505"]):
        feed.set_price(Decimal(price))
        feed.record_trade(feed.price, Decimal("0.5"), now + i * 1000, buyer_is_maker=False)
    s = feed.stats(now + 5000)
    assert (s.open, s.high, s.low, s.last) == (Decimal(3500), Decimal(3510), Decimal(3490), Decimal(3505))
    assert s.volume == Decimal("2.0") and s.count == 4
    # A day later the window is empty again.
    assert feed.stats(now + 25 * 3600 * 1000).count == 0


def engine(**balances: str) -> MatchingEngine:
    feeds = {s: PriceFeed(spec, 1) for s, spec in SYMBOLS.items()}
    return MatchingEngine(
        feeds,
        {k: Decimal(v) for k, v in balances.items()},
        taker_fee=Decimal("0.001"),
        maker_fee=Decimal("0.0005"),
        clock=lambda: 1,
    )


def test_resting_sell_locks_base_and_fills_at_its_price_as_maker():
    eng = engine(USDT="0", BTC="1")
    order = eng.new_order(
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        quantity=Decimal("0.5"),
        price=Decimal("66000"),
        time_in_force="GTC",
    )
    assert eng.balance("BTC") == (Decimal("0.5"), Decimal("0.5"))
    eng.feeds["BTCUSDT"].set_price(Decimal("66000.01"))
    eng.on_price("BTCUSDT")
    assert order.status == "FILLED"
    assert eng.balance("BTC") == (Decimal("0.5"), Decimal(0))
    assert eng.balance("USDT") == (Decimal("33000") - Decimal("16.5"), Decimal(0))
    assert eng.trades[-1].is_maker


def test_stop_loss_limit_waits_for_its_stop_then_fills():
    eng = engine(BTC="1")
    order = eng.new_order(
        symbol="BTCUSDT",
        side="SELL",
        type="STOP_LOSS_LIMIT",
        quantity=Decimal("0.1"),
        price=Decimal("60000"),
        stop_price=Decimal("61000"),
        time_in_force="GTC",
    )
    assert not order.is_working
    eng.feeds["BTCUSDT"].set_price(Decimal("61000"))
    eng.on_price("BTCUSDT")
    assert order.status == "FILLED" and order.fills[0].price > Decimal("60990")


def test_ioc_limit_that_cannot_fill_expires_and_limit_maker_that_would_take_is_rejected():
    eng = engine(USDT="10000")
    order = eng.new_order(
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        quantity=Decimal("0.01"),
        price=Decimal("60000"),
        time_in_force="IOC",
    )
    assert order.status == "EXPIRED" and eng.balance("USDT") == (Decimal("10000"), Decimal(0))
    with pytest.raises(VenueError) as err:
        eng.new_order(
            symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity=Decimal("0.01"), price=Decimal("70000")
        )
    assert err.value.code == -2010


def test_ticker_stats_and_forming_candles_after_weeks_of_minutes_are_those_of_a_walk_over_them():
    """The 24-hour ticker keeps its window's figures as the window slides and reads the series in place; the forming
    candle of a kline push is read from the series' newest end: both give what a walk over every minute held gives,
    once the series holds more minutes than a day (here its cap, lowered to keep this short)."""
    from dataclasses import astuple

    from engine.sim.candles import DAY_MS, MINUTE_MS, Candle, CandleSeries

    feed = PriceFeed(SYMBOLS["ETHUSDT"], 3)
    series = feed.candles
    series.max_minutes = 400  # the series keeps 400 + 1440 minutes: it trims while the window slides
    t0 = 1_767_225_600_000
    flat = Decimal(3500)
    history = [Candle(t0 + m * MINUTE_MS, flat, flat + 1, flat - 1, flat) for m in range(90)]
    series.preset(history)  # a replay's history: no trade ids
    now, checked = t0 + 90 * MINUTE_MS, 0
    for i in range(4 * 2100):
        now += 15_000
        if (now // MINUTE_MS) % 97 in (3, 4, 5):
            continue  # quiet minutes: flat candles, no row
        feed.set_price(Decimal(3500) + Decimal((i * 37) % 211 - 105) / 10)
        feed.record_trade(feed.price, Decimal("0.05") * (1 + i % 5), now, buyer_is_maker=i % 3 == 0)
        if i % 167:
            continue
        rows = [c for c in series._rows if now - DAY_MS < c.start_ms <= now]
        closed, current = rows[:-1], rows[-1]
        traded = [c for c in closed if c.first_trade_id >= 0]
        s = feed.stats(now)
        assert (s.open, s.high, s.low, s.last) == (
            rows[0].open,
            max([c.high for c in rows] + [feed.price]),
            min([c.low for c in rows] + [feed.price]),
            feed.price,
        )
        assert (s.volume, s.quote_volume, s.count) == (
            sum((c.volume for c in rows), Decimal(0)),
            sum((c.quote_volume for c in rows), Decimal(0)),
            sum(c.count for c in rows),
        )
        assert (s.open_time, s.first_trade_id, s.last_trade_id) == (
            max(rows[0].start_ms, now - DAY_MS),
            traded[0].first_trade_id if traded else current.first_trade_id,
            current.last_trade_id,
        )
        every = list(series.minutes(now_ms=now))  # from the oldest minute held
        for interval in (MINUTE_MS, 5 * MINUTE_MS):
            walked = CandleSeries._group(every[-10:], interval)[-1:]
            pushed = series.aggregate(interval, start_ms=None, end_ms=None, limit=1, now_ms=now)
            assert [astuple(c) for c in pushed] == [astuple(c) for c in walked]
        checked += 1
    assert checked > 40 and len(series._rows) == 400 + 1440  # the series was trimmed while the window slid
