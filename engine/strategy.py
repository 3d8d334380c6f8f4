"""A small strategy interface and the built-in ladder, so paper mode has orders and positions to watch.

The cockpit is the product, not alpha: the ladder rests one buy a little under the price and, while it
holds a position, one sell a little over its entry. It only ever asks through the engine's order path, so
every risk check and the trading state apply to it exactly as to the operator.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from engine.config import StrategyConfig
from engine.events import TradingState

if TYPE_CHECKING:
    from engine.core import Engine


class Strategy(Protocol):
    """Called every ``interval_s`` while the engine runs; places and cancels through the engine only."""

    name: str

    async def step(self, engine: "Engine") -> None: ...


class Ladder:
    """One resting buy ``spacing_pct`` under the last price; one resting sell the same distance over entry."""

    name = "ladder"

    def __init__(self, cfg: StrategyConfig) -> None:
        self.cfg = cfg
        self.spacing = cfg.spacing_pct / Decimal(100)

    async def step(self, engine: "Engine") -> None:
        if engine.trading_state == TradingState.HALTED:
            return
        for symbol in engine.symbols:
            last = engine.portfolio.last.get(symbol)
            if last is None:
                continue
            mine = [o for o in engine.tracker.open_orders() if o.symbol == symbol and o.origin == self.name]
            buys = [o for o in mine if o.side == "buy"]
            sells = [o for o in mine if o.side == "sell"]
            for order in buys:
                # Price ran away: the resting buy is no longer "a little under" it; move it.
                if order.price is not None and order.price < last * (1 - 3 * self.spacing):
                    await engine.cancel_order(order.client_id, actor=self.name)
            if not buys and engine.trading_state == TradingState.ACTIVE:
                price = last * (1 - self.spacing)
                await engine.place_order(symbol, "buy", "limit", self.cfg.order_quote / price, price, self.name)
            position = next((p for p in engine.portfolio.positions() if p.symbol == symbol), None)
            if position is None or sells:
                continue
            base = symbol.split("/")[0]
            amount = engine.venue.amount_to_precision(symbol, engine.portfolio.free(base))
            if amount < engine.venue.min_amount(symbol):
                continue
            entry = position.avg_entry or last
            price = max(entry, last) * (1 + self.spacing)
            if amount * price < engine.venue.min_cost(symbol):
                continue
            await engine.place_order(symbol, "sell", "limit", amount, price, self.name)
