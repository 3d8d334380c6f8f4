"""Runs the strategies: samples prices, asks each enabled strategy for intents, executes them.

A strategy that loses ``max_consecutive_losses`` round trips in a row is stood down for ``cooldown_s``
(runbook 003 "Strategy Underperforming"); the operator can disable and enable any strategy by name.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Sequence

from engine.events import Order, Position, Severity, TradingState, utcnow
from engine.portfolio import RoundTrip
from engine.strategies import LossStreakGuard
from engine.strategy import Intent, Strategy

if TYPE_CHECKING:
    from engine.core import Engine

log = logging.getLogger(__name__)

HISTORY = 500


@dataclass
class _View:
    """The read-only view one strategy gets for one step."""

    engine: "Engine"
    strategy: str
    closes_by_symbol: dict[str, deque[Decimal]]
    now: datetime

    def closes(self, symbol: str) -> Sequence[Decimal]:
        return tuple(self.closes_by_symbol.get(symbol, ()))

    def last(self, symbol: str) -> Decimal | None:
        return self.engine.portfolio.last.get(symbol)

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.engine.portfolio.positions() if p.symbol == symbol), None)

    def open_orders(self, symbol: str) -> Sequence[Order]:
        return [o for o in self.engine.tracker.open_orders() if o.symbol == symbol and o.origin == self.strategy]

    def free(self, asset: str) -> Decimal:
        return self.engine.portfolio.free(asset)


class StrategyRunner:
    """Steps every strategy each ``interval_s`` while the engine is connected and not HALTED."""

    def __init__(self, engine: "Engine", strategies: list[Strategy]) -> None:
        cfg = engine.settings.strategy
        self.engine = engine
        self.strategies = {s.name: s for s in strategies}
        self.guard = LossStreakGuard(cfg.max_consecutive_losses, cfg.cooldown_s)
        self.closes: dict[str, deque[Decimal]] = {s: deque(maxlen=HISTORY) for s in engine.symbols}
        self._exiting: set[str] = set()

    def status(self) -> list[dict]:
        now = utcnow()
        return [self.guard.status(name, now) for name in self.strategies]

    def set_enabled(self, name: str, enabled: bool, reason: str) -> str | None:
        """Operator control; returns an error sentence for an unknown name."""
        if name not in self.strategies:
            return f"no strategy {name!r}; running: {', '.join(self.strategies) or 'none'}"
        if enabled:
            self.guard.enable(name)
        else:
            self.guard.disable(name, utcnow(), reason)
        return None

    def round_trip(self, trip: RoundTrip) -> None:
        """Count a closed round trip against the strategy that opened it."""
        if trip.opened_by not in self.strategies:
            return
        if self.guard.record(trip.opened_by, trip.pnl, trip.closed_at):
            cfg = self.engine.settings.strategy
            self.engine.alert(Severity.WARN, "STRATEGY_DISABLED",
                              f"{trip.opened_by} lost {cfg.max_consecutive_losses} round trips in a row; "
                              f"disabled for {cfg.cooldown_s:g}s")

    async def run(self) -> None:
        interval = self.engine.settings.strategy.interval_s
        while True:
            await self.step()
            await asyncio.sleep(interval)

    async def step(self) -> None:
        e = self.engine
        if not e.connected or e.trading_state == TradingState.HALTED:
            return
        for symbol, closes in self.closes.items():
            last = e.portfolio.last.get(symbol)
            if last is not None:
                closes.append(last)
        now = utcnow()
        for name, strategy in self.strategies.items():
            if not self.guard.is_enabled(name, now):
                continue
            for intent in strategy.decide(_View(e, name, self.closes, now)):
                if e.trading_state == TradingState.HALTED:
                    return
                await self.execute(name, intent)

    async def execute(self, name: str, intent: Intent) -> None:
        e = self.engine
        if intent.kind == "cancel" and intent.client_id:
            await e.execution.cancel(intent.client_id, actor=name)
            return
        if intent.kind == "exit":
            if intent.symbol in self._exiting:
                return
            self._exiting.add(intent.symbol)
            try:
                result = await e.execution.exit_position(intent.symbol, name, intent.reason)
            finally:
                self._exiting.discard(intent.symbol)
        else:
            price = intent.price
            ref = price if price is not None else e.portfolio.last.get(intent.symbol)
            amount = intent.amount
            if amount is None and intent.quote_amount is not None and ref:
                amount = intent.quote_amount / ref
            if amount is None:
                log.warning("%s intent without a size ignored: %s", name, intent)
                return
            result = await e.execution.place(intent.symbol, intent.kind, "market" if price is None else "limit",
                                              amount, price, actor=name, stop_loss=intent.stop_loss)
        if not result.ok:
            log.info("%s: %s %s not done: %s", name, intent.kind, intent.symbol, result.message)
