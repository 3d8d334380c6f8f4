"""Strategies: the public API users write against (``api``), the built-ins on it, the loader that finds strategies
in files and entry points, the candles they read, the runner that steps them and the losing-streak guard.

May import the order path (trading), the venue adapter (for candles) and the kernel; nothing above them.
"""

from __future__ import annotations

from engine.kernel.config import StrategyConfig
from engine.strategies.api import Strategy
from engine.strategies.ladder import Ladder
from engine.strategies.loader import load_strategies
from engine.strategies.ma_cross import MaCross
from engine.strategies.mean_reversion import MeanReversion
from engine.strategies.streak import LossStreakGuard

__all__ = ["Ladder", "LossStreakGuard", "MaCross", "MeanReversion", "build_strategies", "load_strategies"]


def build_strategies(cfg: StrategyConfig, symbols: tuple[str, ...]) -> list[Strategy]:
    """The strategies enabled in ``cfg``, each trading ``symbols``; none when the master switch is off."""
    return load_strategies(cfg, symbols).strategies
