"""Runs the strategies: samples prices, asks each enabled strategy for intents, submits them as commands.

Each intent becomes a command (actor ``strategy:<name>``) through the one ``execute``, so a strategy's order
passes the same trading-state table, risk checks and audit as an operator's. A strategy that loses
``max_consecutive_losses`` round trips in a row is stood down for ``cooldown_s`` (runbook 003 "Strategy
Underperforming"); the operator can disable and enable any strategy by name.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.kernel.commands import CancelOrder, Command, ExitPosition, Permit, PlaceOrder
from engine.kernel.config import StrategyConfig
from engine.kernel.events import Event, Order, Position, RoundTripClosed, Severity, StrategyGuardChanged, utcnow
from engine.kernel.ports import Ports, VenueLink
from engine.strategies import LossStreakGuard
from engine.strategies.base import Intent, Strategy
from engine.trading.books import Books
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio
from engine.trading.state import TradingStateMachine

log = logging.getLogger(__name__)

HISTORY = 500
PREFIX = "strategy:"


def actor_of(name: str) -> str:
    return PREFIX + name


def strategy_of(origin: str | None) -> str | None:
    """The strategy an order's origin names (``strategy:ladder``, or ``ladder`` from older stores)."""
    if origin is None:
        return None
    return origin.removeprefix(PREFIX)


@dataclass
class _View:
    """The read-only view one strategy gets for one step."""

    portfolio: Portfolio
    tracker: OrderTracker
    strategy: str
    closes_by_symbol: dict[str, deque[Decimal]]
    now: datetime

    def closes(self, symbol: str) -> Sequence[Decimal]:
        return tuple(self.closes_by_symbol.get(symbol, ()))

    def last(self, symbol: str) -> Decimal | None:
        return self.portfolio.last.get(symbol)

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.portfolio.positions() if p.symbol == symbol), None)

    def open_orders(self, symbol: str) -> Sequence[Order]:
        return [o for o in self.tracker.open_orders() if o.symbol == symbol and strategy_of(o.origin) == self.strategy]

    def free(self, asset: str) -> Decimal:
        return self.portfolio.free(asset)


class StrategyRunner:
    """Steps every strategy each ``interval_s`` while the venue is connected and the state permits orders."""

    def __init__(
        self,
        cfg: StrategyConfig,
        strategies: list[Strategy],
        books: Books,
        state: TradingStateMachine,
        link: VenueLink,
        ports: Ports,
    ) -> None:
        self.cfg = cfg
        symbols = books.symbols
        self.portfolio = books.portfolio
        self.tracker = books.tracker
        self.state = state
        self.link = link
        self.submit = ports.submit
        self.publish = ports.publish
        self.alert = ports.alert
        self.strategies = {s.name: s for s in strategies}
        self.guard = LossStreakGuard(cfg.max_consecutive_losses, cfg.cooldown_s)
        self.closes: dict[str, deque[Decimal]] = {s: deque(maxlen=HISTORY) for s in symbols}
        self._exiting: set[str] = set()

    def status(self) -> list[dict[str, Any]]:
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
        self.publish(StrategyGuardChanged(self.guard.to_dict()))
        return None

    def on_event(self, event: Event) -> None:
        """Inline bus handler: count each closed round trip against the strategy that opened it."""
        if not isinstance(event, RoundTripClosed):
            return
        name = strategy_of(event.opened_by)
        if name not in self.strategies:
            return
        if self.guard.record(name, event.pnl, event.closed_at):
            self.alert(
                Severity.WARN,
                "STRATEGY_DISABLED",
                f"{name} lost {self.cfg.max_consecutive_losses} round trips in a row; "
                f"disabled for {self.cfg.cooldown_s:g}s",
            )
        self.publish(StrategyGuardChanged(self.guard.to_dict()))

    async def step(self) -> None:
        if not self.link.connected or not self.state.permits(Permit.REDUCE):
            return
        for symbol, closes in self.closes.items():
            last = self.portfolio.last.get(symbol)
            if last is not None:
                closes.append(last)
        now = utcnow()
        for name, strategy in self.strategies.items():
            if not self.guard.is_enabled(name, now):
                continue
            for intent in strategy.decide(_View(self.portfolio, self.tracker, name, self.closes, now)):
                if not self.state.permits(Permit.REDUCE):
                    return
                await self.execute(name, intent)

    async def execute(self, name: str, intent: Intent) -> None:
        command = self._command(name, intent)
        if command is None:
            return
        if isinstance(command, ExitPosition):
            if command.symbol in self._exiting:
                return
            self._exiting.add(command.symbol)
        try:
            result = await self.submit(command)
        finally:
            if isinstance(command, ExitPosition):
                self._exiting.discard(command.symbol)
        if not result.ok:
            log.info("%s: %s %s not done: %s", name, intent.kind, intent.symbol, result.message)

    def _command(self, name: str, intent: Intent) -> Command | None:
        actor = actor_of(name)
        if intent.kind == "cancel":
            return CancelOrder(actor=actor, reason=intent.reason, client_id=intent.client_id or "")
        if intent.kind == "exit":
            return ExitPosition(actor=actor, reason=intent.reason, symbol=intent.symbol)
        price = intent.price
        ref = price if price is not None else self.portfolio.last.get(intent.symbol)
        amount = intent.amount
        if amount is None and intent.quote_amount is not None and ref:
            amount = intent.quote_amount / ref
        if amount is None:
            log.warning("%s intent without a size ignored: %s", name, intent)
            return None
        return PlaceOrder(
            actor=actor,
            reason=intent.reason,
            symbol=intent.symbol,
            side=intent.kind,
            type="market" if price is None else "limit",
            amount=amount,
            price=price,
            stop_loss=intent.stop_loss,
        )
