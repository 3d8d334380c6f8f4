"""The books the order path keeps and other parts read: the order tracker, the portfolio, the day's statistics,
the stop of each held position and the drawdown from the equity peak. Built once, handed to each part whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Drawdown, Portfolio
from engine.trading.stats import DailyStats


@dataclass
class Books:
    """What the engine knows of its orders, holdings and day, in one place."""

    symbols: tuple[str, ...]
    tracker: OrderTracker
    portfolio: Portfolio
    stats: DailyStats
    stops: dict[str, Decimal] = field(default_factory=dict)  # symbol -> stop price of the position held (persisted)
    # symbol -> the take-profit its latest entry gave (persisted): it rests with the stop as one OCO at the venue
    take_profits: dict[str, Decimal] = field(default_factory=dict)
    drawdown: Drawdown = field(default_factory=Drawdown)
