"""Candles for the strategies: loaded from the venue at start (REST ``fetch_ohlcv``), kept live by the kline stream
(ccxt.pro ``watch_ohlcv``), and made whole from REST before a strategy decides on them.

A series is *suspect* from its start, after every stream failure (a drop, a reconnect, a refused handshake) and
at the stream's first message after one: candles the stream did not deliver meanwhile are missing, and the one that
was forming missed its last values. Before the next decision, ``ready`` fetches from the candle before the newest
held (or before the first hole) up to now, and checks that no open time is missing in between; while the stream
is down it does so before every decision (REST polling). When the venue cannot fill them, that strategy does not
decide (fail closed: no decision on a hole).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine.kernel.events import Severity
from engine.kernel.ports import AlertPort, VenueLink
from engine.kernel.tasks import TaskGroup
from engine.strategies.api import TIMEFRAMES_MS, Candle, Candles

log = logging.getLogger(__name__)

PAGE = 1000  # Binance's largest kline page
MAX_PAGES = 10  # a gap wider than this many pages is reloaded from the newest candles instead
BACKOFF_S = (1.0, 2.0, 4.0, 8.0)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


class CandleSeries:
    """One symbol's candles at one timeframe, by open time; at most ``keep`` closed ones and the forming one."""

    def __init__(self, symbol: str, timeframe: str, keep: int) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.tf_ms = TIMEFRAMES_MS[timeframe]
        self.keep = keep
        self.rows: dict[int, tuple[Decimal, Decimal, Decimal, Decimal, Decimal]] = {}
        self._raw: dict[int, tuple[Any, ...]] = {}  # each row as the venue last sent it (to skip what is unchanged)
        self._built: dict[int, Candle] = {}  # each row as the strategies read it, until the row changes
        self.suspect = True  # nothing loaded yet, or the stream failed (or came back) since the last fill from REST
        self.streaming = False  # the stream delivers now (False from a failure to its next message)
        self.filled = 0  # fills from REST after the first load (a reconnect's gap)
        self.loaded = False  # the history was fetched
        self._newest: int | None = None  # the newest open time held (asked at every settle check of a backtest)

    def merge(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add or update candles (``[open ms, o, h, l, c, v]``); only the newest ``keep + 1`` are kept."""
        for row in rows:
            ts, raw = int(row[0]), tuple(row[1:6])
            if self._raw.get(ts) == raw and ts in self.rows:
                continue  # as held: the settle loop of a backtest asks for the stream's last rows every turn
            self._raw[ts] = raw
            self._built.pop(ts, None)
            self.rows[ts] = (_dec(row[1]), _dec(row[2]), _dec(row[3]), _dec(row[4]), _dec(row[5]))
            if self._newest is None or ts > self._newest:
                self._newest = ts
        excess = len(self.rows) - (self.keep + 1)
        if excess > 0:
            for ts in sorted(self.rows)[:excess]:
                del self.rows[ts]
                self._raw.pop(ts, None)
                self._built.pop(ts, None)

    def clear(self) -> None:
        self._newest = None
        self.rows.clear()
        self._raw.clear()
        self._built.clear()

    def first_gap(self) -> int | None:
        """The open time of the last candle before the first missing one, or None when the series is whole."""
        times = sorted(self.rows)
        for before, after in zip(times, times[1:], strict=False):
            if after - before != self.tf_ms:
                return before
        return None

    def newest(self) -> int | None:
        """The newest open time held (kept by ``merge``: trimming drops the oldest only)."""
        return self._newest

    def candles(self) -> Candles:
        """The closed candles and the newest, which is the one forming (the venue's last row is the open one)."""
        built = self._built
        out = [
            built.get(ts) or built.setdefault(ts, Candle(datetime.fromtimestamp(ts / 1000, UTC), o, h, low, c, v))
            for ts, (o, h, low, c, v) in sorted(self.rows.items())
        ]
        if not out:
            return Candles(())
        last = out[-1]
        forming = Candle(last.ts, last.open, last.high, last.low, last.close, last.volume, closed=False)
        return Candles(out[:-1], forming)


class CandleFeed:
    """The series the strategies read, their stream loops, and the REST fills that make them whole."""

    def __init__(self, link: VenueLink, alert: AlertPort, backoff_s: Sequence[float] = BACKOFF_S) -> None:
        self.link = link
        self.alert = alert
        self.backoff = tuple(backoff_s) or BACKOFF_S
        self.series: dict[tuple[str, str], CandleSeries] = {}
        self.tasks = TaskGroup(self._crashed)

    def want(self, symbol: str, timeframe: str, history: int) -> None:
        """Keep ``history`` closed candles of ``symbol`` at ``timeframe`` (the largest of all who ask)."""
        series = self.series.get((symbol, timeframe))
        if series is None:
            self.series[(symbol, timeframe)] = CandleSeries(symbol, timeframe, max(history, 1))
        else:
            series.keep = max(series.keep, history)

    def start(self) -> None:
        if self.tasks.names():
            return
        for (symbol, timeframe), series in self.series.items():
            self.tasks.spawn(f"watch-candles-{symbol}-{timeframe}", self._watch(series))

    async def close(self) -> None:
        await self.tasks.close()

    def candles(self, symbol: str, timeframe: str) -> Candles:
        series = self.series.get((symbol, timeframe))
        return series.candles() if series is not None else Candles(())

    def catch_up(self) -> None:
        """Take what the streams delivered that no watch has returned yet (``Venue.streamed_ohlcv``)."""
        venue = self.link.venue
        if venue is None:
            return
        for series in self.series.values():
            if series.streaming:
                series.merge(venue.streamed_ohlcv(series.symbol, series.timeframe))

    async def ready(self, symbol: str, timeframe: str) -> bool:
        """Whether ``symbol``'s candles are whole and long enough to decide on, filling them from REST first when
        the stream failed since or a candle is missing; False (no decision) when the venue cannot fill them now."""
        series = self.series[(symbol, timeframe)]
        venue = self.link.venue
        if venue is not None and series.streaming:
            series.merge(venue.streamed_ohlcv(symbol, timeframe))
        if series.suspect or not series.streaming or series.first_gap() is not None:
            if venue is None or not venue.markets_loaded:
                return False
            try:
                await self._fill(series, venue)
            except Exception as exc:  # a venue error: no decision this step, the next one tries again
                series.suspect = True
                log.warning("candles %s %s not filled: %s: %s", symbol, timeframe, type(exc).__name__, exc)
                return False
        return series.first_gap() is None and len(series.rows) > series.keep

    async def _fill(self, series: CandleSeries, venue: Any) -> None:
        # Cleared before asking: a stream failure while the answer is on its way counts for the next decision.
        series.suspect = False
        if not series.loaded:
            # The history, newest first (the stream may have brought the forming candle already: merged over).
            series.merge(await venue.fetch_ohlcv(series.symbol, series.timeframe, None, min(series.keep + 1, PAGE)))
            if series.keep + 1 > PAGE:
                await self._page_back(series, venue)
            series.loaded = True
            if series.first_gap() is None:
                return
        start = series.first_gap()
        if start is None:
            start = series.newest()
        assert start is not None
        start -= series.tf_ms  # the candle before too: it may have closed with values the stream never sent
        for _ in range(MAX_PAGES):
            rows = await venue.fetch_ohlcv(series.symbol, series.timeframe, start, PAGE)
            series.merge(rows)
            if len(rows) < PAGE:
                break
            start = int(rows[-1][0])
        else:
            series.clear()  # too wide to page over: the newest candles, loaded afresh
            series.merge(await venue.fetch_ohlcv(series.symbol, series.timeframe, None, min(series.keep + 1, PAGE)))
        series.filled += 1
        log.info("candles %s %s filled from REST after a stream gap", series.symbol, series.timeframe)

    async def _page_back(self, series: CandleSeries, venue: Any) -> None:
        """History longer than one page: earlier pages, oldest last, until ``keep`` closed candles are held."""
        while len(series.rows) <= series.keep:
            oldest = min(series.rows)
            want = min(PAGE, series.keep + 1 - len(series.rows))
            rows = await venue.fetch_ohlcv(series.symbol, series.timeframe, oldest - want * series.tf_ms, want)
            before = len(series.rows)
            series.merge(rows)
            if len(series.rows) == before:
                return  # the venue has no older candles

    async def _watch(self, series: CandleSeries) -> None:
        """One kline stream, forever: every failure marks the series suspect, backs off, and watches again."""
        attempt = 0
        while True:
            venue = self.link.venue
            if venue is None or not venue.markets_loaded:
                series.suspect, series.streaming = True, False
                await asyncio.sleep(self.backoff[0])
                continue
            try:
                rows = await venue.watch_ohlcv(series.symbol, series.timeframe)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this loop is being stopped
                series.suspect, series.streaming = True, False  # ccxt cancelled it (a client closed or replaced)
            except Exception as exc:  # the boundary of one watch: any failure is a possible gap, and it goes on
                series.suspect, series.streaming = True, False
                log.info("candle stream %s %s: %s: %s", series.symbol, series.timeframe, type(exc).__name__, exc)
            else:
                attempt = 0
                if not series.streaming:
                    series.streaming = series.suspect = True  # back: what it missed is filled before a decision
                series.merge(rows)
                continue
            await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
            attempt += 1

    def _crashed(self, name: str, exc: BaseException) -> None:
        self.alert(Severity.CRIT, "TASK_CRASHED", f"{name} stopped: {type(exc).__name__}: {exc}")
