"""Accelerated market time and CSV replay."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from eventually import eventually
from test_candles import build

from engine.sim import Simulator
from engine.sim.replay import ReplayError

BTC = "BTC/USDT"
T0 = 1_700_000_040_000  # a minute boundary


async def test_speed_runs_market_time_faster_but_signatures_use_the_wall_clock():
    async with Simulator(seed=2, speed=120, tick_interval=0.02) as fast:
        client = build(fast)
        try:
            wall0, market0 = time.time(), fast.clock.now_ms()
            await eventually(lambda: fast.clock.now_ms() - market0 >= 30_000, timeout=5)  # 30 s in well under 1 s
            assert time.time() - wall0 < 1.5
            assert abs(await client.fetch_time() - time.time() * 1000) < 2000  # serverTime stays wall time
            assert (await client.fetch_balance())["USDT"]["free"] == 10000.0
            order = await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "fast-1"})
            assert order["timestamp"] > time.time() * 1000 + 10_000  # stamped in market time, ahead
        finally:
            await client.close()


def write_csv(path, rows: list[tuple[int, str, str, str, str, str]], header: bool = True) -> None:
    lines = ["timestamp,open,high,low,close,volume"] if header else []
    lines += [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def candle_rows(n: int) -> list[tuple[int, str, str, str, str, str]]:
    rows, price = [], 30000
    for i in range(n):
        o, c = price, price + (50 if i % 2 == 0 else -20)
        rows.append((T0 + i * 60_000, f"{o}.00", f"{max(o, c) + 10}.00", f"{min(o, c) - 10}.00", f"{c}.00", "12.5"))
        price = c
    return rows


async def warm_ccxt() -> None:
    async with Simulator(seed=1) as sim:
        await build(sim).close()


@pytest.mark.usefixtures("collector_off")
async def test_csv_replay_gives_history_then_walks_the_file(tmp_path):
    path = tmp_path / "btc.csv"
    rows = candle_rows(20)
    write_csv(path, rows)
    # The first ccxt client a process makes takes about 0.2 s (its import, its class's API built): two minutes of
    # this 600x replay, with the event loop and so the price feed held, leaving them flat at the price before. Made
    # once before the replay's clock runs, the client below takes milliseconds. Nor a full collection while it runs
    # (``collector_off``): a 0.6 s stall one second in left a live candle flat below the file's low.
    await warm_ccxt()
    async with Simulator(seed=1, replay={"BTCUSDT": path}, speed=600, tick_interval=0.01) as sim:
        client = build(sim)
        try:
            assert sim.clock.start_ms >= T0 + 10 * 60_000  # half the file is history
            history = await client.fetch_ohlcv(BTC, "1m", since=T0, limit=10)
            assert [c[0] for c in history] == [r[0] for r in rows[:10]]
            assert [c[4] for c in history] == [float(r[4]) for r in rows[:10]]
            end = rows[-1][0] + 60_000
            await eventually(lambda: sim.clock.now_ms() > end + 60_000, timeout=10)
            assert sim.price("BTCUSDT") == Decimal(rows[-1][4])  # the file is over: the last close stays
            live = await client.fetch_ohlcv(BTC, "1m", since=rows[10][0], limit=10)
            for got, want in zip(live, rows[10:]):
                assert got[0] == want[0]
                assert float(want[3]) <= got[3] and got[2] <= float(want[2])  # within the file's range
            assert sum(c[5] for c in live) > 0
        finally:
            await client.close()


async def test_binance_kline_csv_without_header_in_microseconds(tmp_path):
    path = tmp_path / "BTCUSDT-1m.csv"
    rows = candle_rows(6)
    path.write_text(
        "".join(f"{t * 1000},{o},{h},{lo},{c},{v},{t * 1000 + 59_999_999},0,10,0,0,0\n" for t, o, h, lo, c, v in rows)
    )
    sim = Simulator(replay={"BTCUSDT": path}, replay_start=rows[2][0])
    assert sim.clock.start_ms == rows[2][0] and sim.price("BTCUSDT") == Decimal(rows[2][1])


def test_bad_csv_names_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    write_csv(path, [(T0, "1", "2", "0.5", "1.5", "3"), (T0 + 60_000, "1", "0.9", "0.5", "1.5", "3")])
    with pytest.raises(ReplayError, match="bad.csv:3"):
        Simulator(replay={"BTCUSDT": path})
    with pytest.raises(ReplayError, match="cannot read"):
        Simulator(replay={"BTCUSDT": tmp_path / "missing.csv"})


def write_wicks(tmp_path):
    """Four flat candles of history, then a rising candle with a deep lower wick, a falling one with a tall upper
    wick and a quiet one: the replay's CSV and its rows."""
    path = tmp_path / "btc.csv"
    rows = [
        (T0 + i * 60_000, *prices, "12.5")
        for i, prices in enumerate(
            [("30000.00", "30100.00", "29900.00", "30000.00")] * 4  # history
            + [
                ("30000.00", "30090.00", "29700.00", "30050.00"),  # rising, a deep lower wick
                ("30050.00", "30400.00", "29980.00", "30010.00"),  # falling, a tall upper wick
                ("30010.00", "30020.00", "30000.00", "30015.00"),
            ]
        )
    ]
    write_csv(path, rows)
    return path, rows


def test_a_replay_stepped_at_15_s_lands_on_each_candle_s_wicks(tmp_path):
    """At a validation run's 15-second tick a replayed 1-minute candle is open, first extreme, second extreme, close
    (low first in a rising candle): a stop inside a wick is reached, and the live candles are the file's. A tick of a
    third of a candle or more walks it evenly, as before."""
    path, rows = write_wicks(tmp_path)
    sim = Simulator(seed=1, replay={"BTCUSDT": path}, stepped=True, tick_interval=15, replay_start=rows[4][0])
    seen = [sim.price("BTCUSDT")]
    for _ in range(8):
        sim.clock.advance(15_000)
        sim.tick()
        seen.append(sim.price("BTCUSDT"))
    assert seen == [Decimal(p) for p in "30000 29700 30090 30050 30050 30400 29980 30010 30010".split()]
    candles = sim.feeds["BTCUSDT"].candles
    [candle] = candles.aggregate(60_000, start_ms=rows[4][0], end_ms=None, limit=1, now_ms=sim.clock.now_ms())
    assert (candle.high, candle.low) == (Decimal("30090"), Decimal("29700"))  # the file's wicks, rebuilt live

    coarse = Simulator(seed=1, replay={"BTCUSDT": path}, stepped=True, tick_interval=20, replay_start=rows[4][0])
    walked = []
    for _ in range(3):
        coarse.clock.advance(20_000)
        coarse.tick()
        walked.append(coarse.price("BTCUSDT"))
    assert walked == [Decimal("29700"), Decimal("30090"), Decimal("30050")]  # open -> low -> high -> the next open


def test_a_coarse_tick_walks_the_candles_it_steps_over_so_a_stop_in_a_wick_fills(tmp_path):
    """At a tick of a whole candle (a backtest at the data's resolution) the venue walks each candle's open, first
    extreme, second extreme and close a quarter of a candle apart, at their own market times, between the ticks
    (``walk_to``): a stop resting inside a wick fills there and then, the live candle is the file's (wicks and
    volume), and the ticks read the last point reached. At a 15-second tick there is nothing between ticks to walk."""
    path, rows = write_wicks(tmp_path)
    start = rows[4][0]

    def bar_sim():
        sim = Simulator(seed=1, replay={"BTCUSDT": path}, stepped=True, tick_interval=60, replay_start=start)
        sim.engine.adjust_balance("BTC", Decimal("1"))
        stop = sim.engine.new_order(
            symbol="BTCUSDT", side="SELL", type="STOP_LOSS", quantity=Decimal("0.1"), stop_price=Decimal("29800")
        )
        return sim, stop

    walked, stop = bar_sim()
    seen = []
    for _ in range(2):
        target = walked.clock.now_ms() + 60_000
        walked.walk_to(target)
        walked.clock.advance(target - walked.clock.now_ms())
        walked.tick()
        seen.append(walked.price("BTCUSDT"))
    assert seen == [Decimal("30050"), Decimal("30010")]  # each tick: the next candle's open (the close before)
    assert stop.status == "FILLED"
    [fill] = stop.fills
    assert fill.time == start + 15_000 and fill.price <= Decimal("29800")  # in the wick, at the wick's own time
    [first, second] = walked.feeds["BTCUSDT"].candles.aggregate(
        60_000, start_ms=start, end_ms=start + 120_000, limit=2, now_ms=walked.clock.now_ms()
    )
    # The file's wicks, rebuilt live (the stop's own sale, at the bid under the wick, prints too).
    assert (first.high, first.close) == (Decimal("30090"), Decimal("30050")) and first.low == fill.price
    assert (second.high, second.low) == (Decimal("30400"), Decimal("29980"))
    assert second.volume == Decimal("12.5")  # four prints of a quarter of the file's volume each

    unwalked, missed = bar_sim()  # the tick alone, as before: the wick is stepped over
    unwalked.clock.advance(60_000)
    unwalked.tick()
    assert missed.status == "NEW"

    fine = Simulator(seed=1, replay={"BTCUSDT": path}, stepped=True, tick_interval=15, replay_start=start)
    assert fine.replays["BTCUSDT"].points_between(start, start + 15_000, 15_000) == []
