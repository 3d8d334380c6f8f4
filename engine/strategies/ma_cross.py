"""Moving-average crossover: go long when the fast SMA crosses above the slow one, exit when it crosses below."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from engine.kernel.config import MaCrossConfig
from engine.strategies.api import Intent, View
from engine.strategies.base import PerSymbol, entry, holding


def sma(values: Sequence[Decimal], n: int) -> Decimal:
    """The simple moving average of the last ``n`` values."""
    return sum(values[-n:], Decimal(0)) / n


class MaCross(PerSymbol):
    """Long-only SMA crossover on each symbol; one entry per upward cross, one exit per downward cross."""

    name = "ma_cross"
    timeframe = None  # decides on prices sampled once per step (``View.closes``)
    history = 0
    Params = MaCrossConfig

    def __init__(self, cfg: MaCrossConfig, symbols: tuple[str, ...]) -> None:
        super().__init__(cfg, symbols)
        self.cfg = cfg

    def decide_symbol(self, view: View, symbol: str) -> Intent | None:
        fast_n, slow_n = self.cfg.fast, self.cfg.slow
        closes = list(view.closes(symbol))
        # A cross needs both averages on this sample and the previous one.
        if len(closes) < slow_n + 1:
            return None
        previous = closes[:-1]
        fast, slow = sma(closes, fast_n), sma(closes, slow_n)
        prev_fast, prev_slow = sma(previous, fast_n), sma(previous, slow_n)
        if holding(view, symbol, closes[-1]):
            if prev_fast >= prev_slow and fast < slow:
                return Intent(kind="exit", symbol=symbol, reason="fast SMA crossed below slow")
            return None
        if not (prev_fast <= prev_slow and fast > slow):
            return None
        return entry(
            view, symbol, closes[-1], self.cfg.order_quote, self.cfg.stop_loss_pct, "fast SMA crossed above slow"
        )
