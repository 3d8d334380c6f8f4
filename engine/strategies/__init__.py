"""The built-in strategies and the losing-streak guard that stands a strategy down."""

from __future__ import annotations

from engine.kernel.config import StrategyConfig
from engine.strategies.base import Strategy
from engine.strategies.ladder import Ladder
from engine.strategies.ma_cross import MaCross
from engine.strategies.mean_reversion import MeanReversion
from engine.strategies.streak import LossStreakGuard

__all__ = ["Ladder", "LossStreakGuard", "MaCross", "MeanReversion", "build_strategies"]


def build_strategies(cfg: StrategyConfig, symbols: tuple[str, ...]) -> list[Strategy]:
    """The strategies enabled in ``cfg``, each trading ``symbols``; none when the master switch is off."""
    if not cfg.enabled:
        return []
    strategies: list[Strategy] = []
    if cfg.ladder.enabled:
        strategies.append(Ladder(cfg.ladder, symbols))
    if cfg.ma_cross.enabled:
        strategies.append(MaCross(cfg.ma_cross, symbols))
    if cfg.mean_reversion.enabled:
        strategies.append(MeanReversion(cfg.mean_reversion, symbols))
    return strategies
