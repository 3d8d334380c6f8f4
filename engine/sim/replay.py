"""Replay an OHLCV CSV as a symbol's price path instead of the seeded random walk.

Accepted: ``timestamp,open,high,low,close,volume[,...]`` with or without a header (ccxt's OHLCV export), and
Binance's kline CSVs from data.binance.vision (12 columns, no header). Timestamps may be seconds, milliseconds,
microseconds or ISO 8601 (UTC if no zone). The candles before the replay start become the symbol's history;
from the start on, each candle is walked open -> first extreme -> second extreme -> close (low first in a rising
candle) in market time, each point on a tick where the ticks allow it, so the live candles rebuild the file's
candles, wicks included.
"""

from __future__ import annotations

import bisect
import csv
import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from .candles import Candle
from .market import SymbolSpec, round_to_step

log = logging.getLogger(__name__)


class ReplayError(ValueError):
    """The CSV cannot be replayed; the message names the file and the line."""


def _timestamp(raw: str) -> int:
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    if value > 1e14:
        return int(value // 1000)  # microseconds (Binance spot data since 2025)
    if value < 1e11:
        return int(value * 1000)  # seconds
    return int(value)


# Parsed files, by (path, modification time, size, tick size): a backtest reads its files before it starts (to say
# how long they run) and its simulator reads them again, and every point of a --sweep builds a simulator of its own.
# The rows are kept as tuples and each caller gets Candles of its own (the simulator's are its to change).
_PARSED: dict[tuple[str, int, int, Decimal], list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]]]
_PARSED = {}
_PARSED_KEEP = 8


def load_csv(path: str | Path, spec: SymbolSpec) -> list[Candle]:
    """Candles of an OHLCV CSV, oldest first, prices rounded to the symbol's tick."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc}") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, spec.tick_size)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = [(c.start_ms, c.open, c.high, c.low, c.close, c.volume, c.quote_volume) for c in _parse(path, spec)]
        if len(_PARSED) >= _PARSED_KEEP:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[key] = parsed
    return [Candle(*row) for row in parsed]


def _parse(path: Path, spec: SymbolSpec) -> list[Candle]:
    rows: list[Candle] = []
    try:
        with path.open(newline="") as handle:
            for line_no, fields in enumerate(csv.reader(handle), start=1):
                if not fields or not fields[0].strip() or fields[0].lstrip().startswith("#"):
                    continue
                if (
                    line_no == 1
                    and not fields[0].strip().lstrip("-").replace(".", "").isdigit()
                    and fields[0].strip()[:2] not in ("19", "20")
                ):
                    continue  # header
                if len(fields) < 6:
                    raise ReplayError(f"{path}:{line_no}: expected timestamp,open,high,low,close,volume")
                try:
                    t = _timestamp(fields[0])
                    o, h, lo, c = (round_to_step(Decimal(f.strip()), spec.tick_size) for f in fields[1:5])
                    v = Decimal(fields[5].strip())
                except (ValueError, InvalidOperation) as exc:
                    raise ReplayError(f"{path}:{line_no}: {exc}") from None
                if not (lo <= min(o, c) and h >= max(o, c) and lo > 0):
                    raise ReplayError(f"{path}:{line_no}: high/low do not contain open/close")
                rows.append(Candle(t, o, h, lo, c, v, (v * (o + c) / 2).quantize(Decimal("0.00000001"))))
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc}") from None
    if len(rows) < 2:
        raise ReplayError(f"{path}: needs at least two candles")
    rows.sort(key=lambda r: r.start_ms)
    return rows


class Replay:
    """A symbol's price path from CSV candles; history is what lies before ``start_ms``."""

    def __init__(self, symbol: str, candles: list[Candle], start_ms: int | None = None) -> None:
        self.symbol = symbol
        self.candles = candles
        gaps = sorted(b.start_ms - a.start_ms for a, b in zip(candles, candles[1:]))
        self.interval_ms = max(gaps[len(gaps) // 2], 1000)
        self._starts = [c.start_ms for c in candles]
        if start_ms is None:
            # Half the file (at most 1000 candles) is history, so charts and strategies have candles at once.
            self.start_index = min(len(candles) // 2, 1000)
        else:
            self.start_index = min(bisect.bisect_left(self._starts, start_ms), len(candles) - 1)
        self.start_ms = candles[self.start_index].start_ms
        self.end_ms = candles[-1].start_ms + self.interval_ms
        self._finished_logged = False
        self._qty_of: tuple[tuple[int, float], Decimal] | None = None  # the last candle's print size (``trade_qty``)

    @property
    def history(self) -> list[Candle]:
        """The candles before the replay start."""
        return self.candles[: self.start_index]

    @property
    def start_price(self) -> Decimal:
        """Open of the first replayed candle."""
        return self.candles[self.start_index].open

    def candle_at(self, t_ms: int) -> Candle:
        """The candle replayed at market time ``t_ms`` (the last one once the file is over)."""
        i = bisect.bisect_right(self._starts, t_ms) - 1
        return self.candles[max(i, self.start_index)]

    def price_at(self, t_ms: int, tick: Decimal, tick_ms: float | None = None, walk: bool = False) -> Decimal:
        """The replayed price at market time ``t_ms``. A candle is walked open -> first extreme -> second extreme ->
        close (low first in a rising candle). With ``tick_ms``, the market time between two price moves, the four
        points sit a whole number of ticks apart, three of them inside the candle, so a tick lands on each (at a
        15-second tick on 1-minute candles: open, extreme, extreme, close), and the close holds until the next open:
        a stop inside a wick is reached, as on the venue. A tick too coarse for that (over a third of a candle)
        walks the candle evenly from open to close, as without ``tick_ms``; with ``walk`` (the venue visits the
        points between ticks itself, ``points_between``) the points sit a quarter of a candle apart instead, and a
        tick reads the last one reached."""
        if t_ms >= self.end_ms:
            if not self._finished_logged:
                self._finished_logged = True
                log.info("replay of %s finished: price stays at the last close", self.symbol)
            return self.candles[-1].close
        c = self.candle_at(t_ms)
        points = self._points(c)
        elapsed = max(0, min(t_ms - c.start_ms, self.interval_ms))
        spacing = self.spacing_ms(tick_ms)
        if spacing == 0 and walk:  # the last point the venue's walk reached
            return round_to_step(points[min(elapsed // (self.interval_ms // 4), 3)], tick)
        if spacing > 0:
            seg = elapsed // spacing
            if seg >= 3:
                return c.close
            local = Decimal(elapsed - seg * spacing) / Decimal(spacing)
        else:
            f = Decimal(elapsed) / Decimal(self.interval_ms)
            seg = min(int(f * 3), 2)
            local = f * 3 - seg
        price = points[seg] + (points[seg + 1] - points[seg]) * local
        return round_to_step(price, tick)

    @staticmethod
    def _points(c: Candle) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """A candle's path: open, first extreme, second extreme, close (the low first in a rising candle)."""
        first, second = (c.low, c.high) if c.close >= c.open else (c.high, c.low)
        return c.open, first, second, c.close

    def spacing_ms(self, tick_ms: float | None) -> int:
        """Market time between a candle's points when a tick lands on each (a whole number of ticks, three of them
        inside the candle), or 0 when a tick is too coarse for that (over a third of a candle)."""
        if not tick_ms or tick_ms <= 0:
            return 0
        return round(tick_ms) * ((self.interval_ms - 1) // (3 * round(tick_ms)))

    def points_between(self, after_ms: int, before_ms: int, tick_ms: float) -> list[tuple[int, Decimal]]:
        """The path's points strictly between two ticks a coarse tick (``spacing_ms`` 0) steps over, with their
        market times: each candle's open, extremes and close, a quarter of a candle apart. Nothing when the ticks
        land on every point themselves, or past the file's end."""
        if self.spacing_ms(tick_ms) > 0:
            return []
        quarter = self.interval_ms // 4
        found: list[tuple[int, Decimal]] = []
        i = max(bisect.bisect_right(self._starts, after_ms) - 1, self.start_index)
        while i < len(self.candles) and self.candles[i].start_ms < before_ms:
            c = self.candles[i]
            for k, price in enumerate(self._points(c)):
                t = c.start_ms + k * quarter
                if after_ms < t < before_ms and t < self.end_ms:
                    found.append((t, price))
            i += 1
        return found

    def print_ms(self, tick_ms: float, walk: bool) -> float:
        """The market time one print stands for (its share of the candle's volume): a tick's, or a quarter of a
        candle when the venue walks the points between coarse ticks."""
        return self.interval_ms / 4 if walk and self.spacing_ms(tick_ms) == 0 else tick_ms

    def trade_qty(self, t_ms: int, market_ms_per_tick: float, spec: SymbolSpec) -> Decimal:
        """Size of one synthetic print so the ticks of a candle add up to its volume (kept for the candle: its
        prints are asked for in turn)."""
        c = self.candle_at(t_ms)
        key = (c.start_ms, market_ms_per_tick)
        if self._qty_of is not None and self._qty_of[0] == key:
            return self._qty_of[1]
        share = Decimal(repr(min(1.0, market_ms_per_tick / self.interval_ms)))
        qty = max(round_to_step(c.volume * share, spec.step_size), spec.min_qty)
        self._qty_of = (key, qty)
        return qty
