"""Recent prices per symbol and how far they moved: the flash-crash monitor's arithmetic.

A move is the range of prices in a window (max - min, in percent of max). The runbooks' resume criterion after a
flash crash is calm: every minute of the last few minutes moved less than a small percent.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

ZERO = Decimal(0)


class PriceMoves:
    """Price samples per symbol over the last ``keep_s`` seconds."""

    def __init__(self, symbols: tuple[str, ...], keep_s: float) -> None:
        self.keep_s = keep_s
        self.samples: dict[str, deque[tuple[float, Decimal]]] = {s: deque() for s in symbols}

    def record(self, symbol: str, now: float, price: Decimal) -> None:
        samples = self.samples[symbol]
        samples.append((now, price))
        while samples and samples[0][0] < now - self.keep_s:
            samples.popleft()

    def move(self, symbol: str, window_s: float, now: float) -> Decimal:
        """The range of ``symbol``'s prices within ``window_s`` seconds ending at ``now``, in percent."""
        prices = [p for t, p in self.samples[symbol] if now - window_s <= t <= now]
        if len(prices) < 2 or max(prices) <= 0:
            return ZERO
        return (max(prices) - min(prices)) / max(prices) * 100

    def largest(self, window_s: float, now: float) -> tuple[Decimal, str]:
        """The largest move of any symbol in the window, and the symbol."""
        return max(((self.move(s, window_s, now), s) for s in self.samples), default=(ZERO, ""))

    def calm(self, period_s: float, pct: Decimal, now: float) -> bool:
        """Every minute (or the whole period, when shorter) of the last ``period_s`` moved less than ``pct``, for
        every symbol, with samples covering the whole period."""
        window = min(60.0, period_s) or 1.0
        for symbol, samples in self.samples.items():
            if not samples or now - samples[0][0] < period_s:
                return False
            t = now
            while t >= now - period_s + window:
                if self.move(symbol, window, t) >= pct:
                    return False
                t -= window / 6
        return True
