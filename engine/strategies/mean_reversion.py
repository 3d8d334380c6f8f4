"""Mean reversion: buy when the price sits ``entry_z`` standard deviations under its mean, exit near the mean."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from engine.kernel.config import MeanReversionConfig
from engine.strategies.api import Intent, View
from engine.strategies.base import PerSymbol, entry, holding


def zscore(values: Sequence[Decimal]) -> Decimal | None:
    """The last value's z-score against all ``values`` (population std dev); None when they are all equal."""
    n = len(values)
    mean = sum(values, Decimal(0)) / n
    variance = sum(((v - mean) ** 2 for v in values), Decimal(0)) / n
    if variance == 0:
        return None
    return (values[-1] - mean) / variance.sqrt()


class MeanReversion(PerSymbol):
    """Long-only z-score reversion on each symbol over the last ``window`` closes."""

    name = "mean_reversion"
    timeframe = None  # decides on prices sampled once per step (``View.closes``)
    history = 0
    Params = MeanReversionConfig

    def __init__(self, cfg: MeanReversionConfig, symbols: tuple[str, ...]) -> None:
        super().__init__(cfg, symbols)
        self.cfg = cfg

    def decide_symbol(self, view: View, symbol: str) -> Intent | None:
        closes = list(view.closes(symbol))
        if len(closes) < self.cfg.window:
            return None
        window = closes[-self.cfg.window :]
        z = zscore(window)
        # A flat window has no deviation to revert from; dividing by zero would be noise, not a signal.
        if z is None:
            return None
        if holding(view, symbol, window[-1]):
            if z >= -self.cfg.exit_z:
                return Intent(kind="exit", symbol=symbol, reason=f"z-score {z:.2f} back within {self.cfg.exit_z}")
            return None
        if z > -self.cfg.entry_z:
            return None
        return entry(
            view,
            symbol,
            window[-1],
            self.cfg.order_quote,
            self.cfg.stop_loss_pct,
            f"z-score {z:.2f} at or under -{self.cfg.entry_z}",
        )
