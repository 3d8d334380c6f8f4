"""One-minute candles of a symbol: a seeded history before the simulator started, then the live tape.

The history is generated backwards from the start price (so it ends exactly where the live feed begins), lazily
and only as far back as someone asks, up to ``max_minutes``; a replayed CSV supplies its own history instead.
Larger intervals (5m ... 1d) are aggregated from the minutes; ``stats`` gives the rolling 24 hours.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

MINUTE_MS = 60_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}
# Binance weeks open on Monday 00:00 UTC; 1970-01-01 was a Thursday, four days later.
WEEK_OFFSET_MS = 4 * DAY_MS


def align(t_ms: int, interval_ms: int) -> int:
    """Open time of the ``interval_ms`` candle holding ``t_ms``."""
    if interval_ms == WEEK_MS:
        return t_ms - (t_ms - WEEK_OFFSET_MS) % WEEK_MS
    return t_ms - t_ms % interval_ms


SECONDS_PER_YEAR = 365 * 24 * 60 * 60
ZERO = Decimal(0)


@dataclass
class Candle:
    """One candle (open time in ms; prices and volumes as Decimal)."""

    start_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    count: int = 0
    first_trade_id: int = -1
    last_trade_id: int = -1
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote: Decimal = ZERO


class ClosedMinutes:
    """Running figures of the complete minutes of a sliding 24-hour window (the ticker's statistics are asked for at
    every price push; a complete minute never changes, so each one is added once and taken off once)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Empty the window."""
        self.rows: deque[Candle] = deque()
        self.volume = ZERO
        self.quote_volume = ZERO
        self.count = 0
        self._highs: deque[Candle] = deque()  # decreasing highs: the front is the window's high
        self._lows: deque[Candle] = deque()  # increasing lows: the front is the window's low
        # The minutes with trades (a replay's history has none: a scan of them at every push cost a day's minutes).
        self._traded: deque[Candle] = deque()

    def update(self, closed: Sequence[Candle], lo: int = 0, hi: int | None = None) -> None:
        """Follow the window to ``closed[lo:hi]`` (its complete minutes, oldest first; read in place: a series'
        deque is not copied)."""
        if hi is None:
            hi = len(closed)
        if lo >= hi:
            self._reset()
            return
        first_ms, last_ms = closed[lo].start_ms, closed[hi - 1].start_ms
        rows = self.rows
        if rows and (rows[0].start_ms > first_ms or rows[-1].start_ms > last_ms):
            self._reset()  # history was prepended: start over
            rows = self.rows
        while rows and rows[0].start_ms < first_ms:
            self._drop()
        newest = rows[-1].start_ms if rows else None
        first_new = hi
        while first_new > lo and (newest is None or closed[first_new - 1].start_ms > newest):
            first_new -= 1
        for i in range(first_new, hi):
            self._add(closed[i])

    def _add(self, c: Candle) -> None:
        self.rows.append(c)
        self.volume += c.volume
        self.quote_volume += c.quote_volume
        self.count += c.count
        while self._highs and self._highs[-1].high <= c.high:
            self._highs.pop()
        self._highs.append(c)
        while self._lows and self._lows[-1].low >= c.low:
            self._lows.pop()
        self._lows.append(c)
        if c.first_trade_id >= 0 or c.last_trade_id >= 0:
            self._traded.append(c)

    def _drop(self) -> None:
        c = self.rows.popleft()
        self.volume -= c.volume
        self.quote_volume -= c.quote_volume
        self.count -= c.count
        if self._highs and self._highs[0] is c:
            self._highs.popleft()
        if self._lows and self._lows[0] is c:
            self._lows.popleft()
        if self._traded and self._traded[0] is c:
            self._traded.popleft()

    @property
    def high(self) -> Decimal | None:
        return self._highs[0].high if self._highs else None

    @property
    def low(self) -> Decimal | None:
        return self._lows[0].low if self._lows else None

    @property
    def first_trade_id(self) -> int:
        return next((c.first_trade_id for c in self._traded if c.first_trade_id >= 0), -1)

    @property
    def last_trade_id(self) -> int:
        return next((c.last_trade_id for c in reversed(self._traded) if c.last_trade_id >= 0), -1)


class CandleSeries:
    """Minute candles, oldest first: generated or preset history, then live minutes from ``record``."""

    def __init__(
        self,
        *,
        tick_size: Decimal,
        step_size: Decimal,
        typical_qty: Decimal,
        seed: str,
        annual_vol: float = 0.7,
        max_minutes: int = 14 * 1440,
    ) -> None:
        self.tick_size = tick_size
        self.step_size = step_size
        self.typical_qty = typical_qty
        self.annual_vol = annual_vol
        self.max_minutes = max_minutes
        self._rng = random.Random(f"{seed}:history")
        self._rows: deque[Candle] = deque()
        self._anchor_ms: int | None = None
        self._anchor_price: Decimal | None = None
        self._floor_ms = 0  # no history before this

    # ----- history ---------------------------------------------------------------------------------------
    def anchor(self, start_ms: int, price: Decimal) -> None:
        """Generate history (on demand) for the minutes before ``start_ms``, ending at ``price``."""
        self._anchor_ms = start_ms - start_ms % MINUTE_MS
        self._anchor_price = price
        self._floor_ms = self._anchor_ms - self.max_minutes * MINUTE_MS

    def preset(self, rows: Iterable[Candle]) -> None:
        """Use these candles (oldest first) as the history instead of generating one."""
        rows = list(rows)
        self._rows.extendleft(reversed(rows))
        self._anchor_ms = None
        if self._rows:
            self._floor_ms = self._rows[0].start_ms

    def ensure(self, from_ms: int) -> None:
        """Make sure the history reaches back to ``from_ms`` (as far as ``max_minutes`` allows)."""
        if self._anchor_ms is None or self._anchor_price is None:
            return
        earliest = (
            self._rows[0].start_ms if self._rows and self._rows[0].start_ms < self._anchor_ms else self._anchor_ms
        )
        target = max(from_ms - from_ms % MINUTE_MS, self._floor_ms)
        if target >= earliest:
            return
        close = float(self._rows[0].open if earliest < self._anchor_ms else self._anchor_price)
        sigma = self.annual_vol * math.sqrt(60 / SECONDS_PER_YEAR)
        tick = float(self.tick_size)
        generated = []
        t = earliest - MINUTE_MS
        while t >= target:
            r = self._rng.gauss(0.0, sigma)
            open_ = close / math.exp(r)
            wick = sigma * 0.6
            high = max(open_, close) * math.exp(abs(self._rng.gauss(0.0, wick)))
            low = min(open_, close) / math.exp(abs(self._rng.gauss(0.0, wick)))
            trades = self._rng.randint(20, 120)
            volume = self._qty(float(self.typical_qty) * trades * self._rng.uniform(0.5, 1.5))
            o, h, lo, c = (self._price(x, tick) for x in (open_, high, low, close))
            mid = (o + c) / 2
            buy_share = Decimal(repr(round(self._rng.uniform(0.35, 0.65), 4)))
            generated.append(
                Candle(
                    t,
                    o,
                    max(h, o, c),
                    min(lo, o, c),
                    c,
                    volume,
                    (volume * mid).quantize(Decimal("0.00000001")),
                    trades,
                    taker_buy_volume=self._qty(float(volume * buy_share)),
                    taker_buy_quote=(volume * buy_share * mid).quantize(Decimal("0.00000001")),
                )
            )
            close = open_
            t -= MINUTE_MS
        self._rows.extendleft(generated)  # generated newest first: extendleft puts the oldest first

    def _price(self, x: float, tick: float) -> Decimal:
        return Decimal(max(1, round(x / tick))) * self.tick_size

    def _qty(self, x: float) -> Decimal:
        return Decimal(max(1, int(x / float(self.step_size)))) * self.step_size

    # ----- live ------------------------------------------------------------------------------------------
    def record(self, price: Decimal, qty: Decimal, time_ms: int, trade_id: int, taker_buy: bool) -> None:
        """Add a trade to its minute."""
        start = time_ms - time_ms % MINUTE_MS
        rows = self._rows
        if not rows or rows[-1].start_ms < start:
            rows.append(Candle(start, price, price, price, price, first_trade_id=trade_id))
        elif rows[-1].start_ms > start:
            return  # a trade stamped before the last minute (clock moved back): ignore
        c = rows[-1]
        if c.high < price:
            c.high = price
        if c.low > price:
            c.low = price
        c.close = price
        c.volume += qty
        c.quote_volume += price * qty
        if taker_buy:
            c.taker_buy_volume += qty
            c.taker_buy_quote += price * qty
        c.count += 1
        if c.first_trade_id < 0:
            c.first_trade_id = trade_id
        c.last_trade_id = trade_id
        while len(rows) > self.max_minutes + 1440:
            rows.popleft()
            self._floor_ms = rows[0].start_ms

    # ----- queries ---------------------------------------------------------------------------------------
    def minutes(
        self, start_ms: int | None = None, end_ms: int | None = None, now_ms: int | None = None
    ) -> Iterator[Candle]:
        """Minute candles with ``start_ms <= open time <= end_ms`` (history generated as needed). Minutes
        without trades, up to ``now_ms``, come as flat candles at the previous close with no volume, as on
        Binance."""
        rows: Iterable[Candle] = self._rows
        if start_ms is not None:
            self.ensure(start_ms)
            # From the last candle before start_ms (the flat minutes after it may be asked for): a replay's rows
            # reach back weeks, and every kline push asks for the newest few.
            first = max(self._first_at(start_ms) - 1, 0)
            if first > len(self._rows) // 2:
                # Near the newest end (a kline push asks for the forming candle): read from that end, since
                # skipping to it from the oldest walks weeks of minutes at every push.
                tail = list(itertools.islice(reversed(self._rows), len(self._rows) - first))
                tail.reverse()
                rows = tail
            else:
                rows = itertools.islice(self._rows, first, None)
        previous: Candle | None = None
        for c in rows:
            if previous is not None:
                yield from self._flat(previous, c.start_ms, start_ms, end_ms)
            previous = c
            if start_ms is not None and c.start_ms < start_ms:
                continue
            if end_ms is not None and c.start_ms > end_ms:
                return
            yield c
        if previous is not None and now_ms is not None:
            yield from self._flat(previous, now_ms - now_ms % MINUTE_MS + MINUTE_MS, start_ms, end_ms)

    @staticmethod
    def _flat(before: Candle, until_ms: int, start_ms: int | None, end_ms: int | None) -> Iterator[Candle]:
        t = before.start_ms + MINUTE_MS
        while t < until_ms and (end_ms is None or t <= end_ms):
            if start_ms is None or t >= start_ms:
                p = before.close
                yield Candle(t, p, p, p, p)
            t += MINUTE_MS

    def aggregate(
        self, interval_ms: int, *, start_ms: int | None, end_ms: int | None, limit: int, now_ms: int
    ) -> list[Candle]:
        """Candles of ``interval_ms`` like GET /api/v3/klines: from ``start_ms`` forward, else the ``limit``
        ending at ``end_ms`` (or now)."""
        if start_ms is None:
            last_open = align(end_ms if end_ms is not None else now_ms, interval_ms)
            first = last_open - (limit - 1) * interval_ms
            self.ensure(first)
            rows = self._group(self.minutes(first, end_ms, now_ms), interval_ms)
            return rows[-limit:]
        first = align(start_ms, interval_ms)
        if first < start_ms:
            first += interval_ms  # Binance: the first candle opens at or after startTime
        self.ensure(first)
        upper = first + limit * interval_ms - 1
        rows = self._group(self.minutes(first, upper if end_ms is None else min(end_ms, upper), now_ms), interval_ms)
        return rows[:limit]

    @staticmethod
    def _group(minutes: Iterable[Candle], interval_ms: int) -> list[Candle]:
        rows: list[Candle] = []
        for m in minutes:
            open_time = align(m.start_ms, interval_ms)
            if rows and rows[-1].start_ms == open_time:
                r = rows[-1]
                r.high = max(r.high, m.high)
                r.low = min(r.low, m.low)
                r.close = m.close
                r.volume += m.volume
                r.quote_volume += m.quote_volume
                r.taker_buy_volume += m.taker_buy_volume
                r.taker_buy_quote += m.taker_buy_quote
                r.count += m.count
                if r.first_trade_id < 0:
                    r.first_trade_id = m.first_trade_id
                if m.last_trade_id >= 0:
                    r.last_trade_id = m.last_trade_id
            else:
                rows.append(
                    Candle(
                        open_time,
                        m.open,
                        m.high,
                        m.low,
                        m.close,
                        m.volume,
                        m.quote_volume,
                        m.count,
                        m.first_trade_id,
                        m.last_trade_id,
                        m.taker_buy_volume,
                        m.taker_buy_quote,
                    )
                )
        return rows

    def _first_at(self, start_ms: int) -> int:
        """The index of the first row opening at or after ``start_ms`` (binary search: the rows are sorted).

        Searched from the newest end first, doubling the stride: what is asked for at every push (the 24-hour
        window, the forming candle) lies near it, and a deque reaches an index in steps from its nearer end (a
        plain bisection of weeks of minutes walked to their middle at every probe)."""
        rows = self._rows
        lo, hi = 0, len(rows)
        stride = 1
        while stride < hi:
            probe = len(rows) - stride
            if rows[probe].start_ms < start_ms:
                lo = probe + 1
                break
            hi = probe
            stride *= 2
        while lo < hi:
            mid = (lo + hi) // 2
            if rows[mid].start_ms < start_ms:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def window(self, now_ms: int) -> list[Candle]:
        """Minute candles of the last 24 hours, oldest first."""
        rows, lo, hi = self.window_span(now_ms)
        return list(itertools.islice(rows, lo, hi))

    def window_span(self, now_ms: int) -> tuple[deque[Candle], int, int]:
        """The minute candles of the last 24 hours as ``rows[lo:hi]``, without copying them: every ticker push asks
        for this window (a day of minutes copied twice per push was most of the simulator's ticker)."""
        bound = now_ms - DAY_MS + 1
        self.ensure(bound)
        rows = self._rows
        lo, hi = self._first_at(bound), len(rows)
        while hi > lo and rows[hi - 1].start_ms > now_ms:
            hi -= 1
        return rows, lo, hi
