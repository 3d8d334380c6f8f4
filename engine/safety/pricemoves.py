"""Recent prices per symbol and how far they moved: the flash-crash monitor's arithmetic.

A move is the range of prices in a window (max - min, in percent of max). The runbooks' resume criterion after a
flash crash is calm: every minute of the last few minutes moved less than a small percent (runbook 001 §7: "< 1%
move in 1 min"). A fixed 1 % is a bar some markets never get under in normal times (the simulator's own walk:
about a third of its minutes reach 1 %), so the bar is each symbol's own normal: a high percentile of its window
ranges before the crash (``NORMAL_PERCENTILE`` x ``NORMAL_MARGIN``), never under the runbook's percent (a market
quieter than that is held to the runbook's rule, as written) and never over half the crash size (a move that large
is never calm). With too little history before the crash to know its normal, the runbook's percent is the bar.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

ZERO = Decimal(0)
# How much history before a crash tells a symbol's normal window range, and how that normal is read from it.
BASELINE_S = 1800.0
NORMAL_PERCENTILE = Decimal("0.95")
NORMAL_MARGIN = Decimal("1.25")
MIN_BASELINE_WINDOWS = 5  # less history before the crash than this many windows: the normal is not known


class PriceMoves:
    """Price samples per symbol over the last ``keep_s`` seconds, and per-bucket lows and highs over the last
    ``BASELINE_S`` more (for a symbol's normal window range)."""

    def __init__(self, symbols: tuple[str, ...], keep_s: float, window_s: float = 60.0) -> None:
        self.keep_s = keep_s
        self.samples: dict[str, deque[tuple[float, Decimal]]] = {s: deque() for s in symbols}
        # (bucket start, low, high) per symbol: a long history at a bounded cost (window / 10 per bucket).
        self.bucket_s = max(0.05, min(1.0, window_s / 10))
        self.history_s = keep_s + BASELINE_S
        self.buckets: dict[str, deque[list[float | Decimal]]] = {s: deque() for s in symbols}

    def record(self, symbol: str, now: float, price: Decimal) -> None:
        samples = self.samples[symbol]
        samples.append((now, price))
        while samples and samples[0][0] < now - self.keep_s:
            samples.popleft()
        buckets = self.buckets[symbol]
        start = now - now % self.bucket_s
        if buckets and buckets[-1][0] == start:
            last = buckets[-1]
            last[1], last[2] = min(last[1], price), max(last[2], price)
        else:
            buckets.append([start, price, price])
        while buckets and float(buckets[0][0]) < now - self.history_s:
            buckets.popleft()

    def move(self, symbol: str, window_s: float, now: float) -> Decimal:
        """The range of ``symbol``'s prices within ``window_s`` seconds ending at ``now``, in percent."""
        prices = [p for t, p in self.samples[symbol] if now - window_s <= t <= now]
        if len(prices) < 2 or max(prices) <= 0:
            return ZERO
        return (max(prices) - min(prices)) / max(prices) * 100

    def largest(self, window_s: float, now: float) -> tuple[Decimal, str]:
        """The largest move of any symbol in the window, and the symbol."""
        return max(((self.move(s, window_s, now), s) for s in self.samples), default=(ZERO, ""))

    def window_ranges(self, symbol: str, window_s: float, since: float, until: float) -> list[Decimal]:
        """The ranges (percent) of the complete windows of ``window_s`` that end every ``window_s / 6`` from
        ``until`` back to ``since + window_s``, from the bucketed history."""
        rows = [(float(b[0]), Decimal(b[1]), Decimal(b[2])) for b in self.buckets[symbol]]
        out: list[Decimal] = []
        if not rows or rows[0][0] > since:
            since = rows[0][0] if rows else until
        end = until
        while end - window_s >= since:
            inside = [(lo, hi) for t, lo, hi in rows if end - window_s <= t < end]
            if inside:
                high = max(hi for _, hi in inside)
                low = min(lo for lo, _ in inside)
                out.append((high - low) / high * 100 if high > 0 else ZERO)
            end -= window_s / 6
        return out

    def normal(self, symbol: str, window_s: float, before: float) -> Decimal | None:
        """``symbol``'s normal window range (percent) over the ``BASELINE_S`` before ``before``: a high
        percentile of its window ranges with a margin; None with too little history to tell."""
        ranges = sorted(self.window_ranges(symbol, window_s, before - BASELINE_S, before))
        if len(ranges) < MIN_BASELINE_WINDOWS * 6:  # windows step by a sixth: 6 per window length
            return None
        return ranges[int(NORMAL_PERCENTILE * (len(ranges) - 1))] * NORMAL_MARGIN

    def calm_bars(self, window_s: float, before: float, floor_pct: Decimal, ceiling_pct: Decimal) -> dict[str, Decimal]:
        """Per symbol, the range a calm window must stay under: its normal before ``before``, at least
        ``floor_pct`` (the runbook's), at most ``ceiling_pct``; ``floor_pct`` where the normal is not known."""
        bars = {}
        for symbol in self.samples:
            normal = self.normal(symbol, window_s, before)
            bar = floor_pct if normal is None else max(floor_pct, min(normal, ceiling_pct))
            bars[symbol] = bar.quantize(Decimal("0.01"))
        return bars

    def calm(self, period_s: float, pct: Decimal | dict[str, Decimal], now: float) -> bool:
        """Every minute (or the whole period, when shorter) of the last ``period_s`` moved less than ``pct`` (one
        for all, or per symbol), for every symbol, with samples covering the whole period."""
        return not self.not_calm(period_s, pct, now)

    def not_calm(self, period_s: float, pct: Decimal | dict[str, Decimal], now: float) -> dict[str, str]:
        """Symbol -> why it is not calm yet (empty when every symbol is)."""
        window = min(60.0, period_s) or 1.0
        out: dict[str, str] = {}
        for symbol, samples in self.samples.items():
            bar = pct if isinstance(pct, Decimal) else pct.get(symbol, min(pct.values(), default=ZERO))
            if not samples or now - samples[0][0] < period_s:
                out[symbol] = f"not {period_s:g}s of prices yet"
                continue
            t = now
            while t >= now - period_s + window:
                moved = self.move(symbol, window, t)
                if moved >= bar:
                    out[symbol] = f"moved {moved:.2f}% in {window:g}s (calm: under {bar}%)"
                    break
                t -= window / 6
        return out
