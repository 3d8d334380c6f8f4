"""Helpers the built-in strategies share, on the public API (``engine.strategies.api``).

``PerSymbol`` decides each symbol on its own; ``entry`` builds a long entry with its stop-loss.
"""

from __future__ import annotations

from decimal import Decimal

from engine.strategies.api import Intent, Strategy, View

StrategyView = View  # the name the built-ins were written against

__all__ = ["Intent", "PerSymbol", "Strategy", "StrategyView", "entry", "holding"]


class PerSymbol(Strategy):
    """Base for strategies that decide each symbol on its own: at most one intent per symbol per step."""

    def decide(self, view: View) -> list[Intent]:
        return [i for symbol in self.symbols if (i := self.decide_symbol(view, symbol)) is not None]

    def decide_symbol(self, view: View, symbol: str) -> Intent | None:
        raise NotImplementedError


def holding(view: View, symbol: str, price: Decimal) -> bool:
    """Whether a long position in ``symbol`` is held that the venue would let an exit sell: a remainder under its
    minimum notional or amount (dust) cannot be sold, and asking every step is refused every step."""
    position = view.position(symbol)
    return position is not None and position.amount > 0 and view.market(symbol).tradable(position.amount, price)


def entry(
    view: View, symbol: str, fallback_price: Decimal, order_quote: Decimal, stop_loss_pct: Decimal, reason: str
) -> Intent | None:
    """A long entry of ``order_quote`` with its stop ``stop_loss_pct`` under the price; none while one of the
    strategy's own orders in ``symbol`` is open (an entry already under way would double the size), nor when the
    venue would refuse it as too small (its minimum notional or amount: refused again at every step)."""
    if view.open_orders(symbol):
        return None
    last = view.last(symbol)
    if last is None:
        last = fallback_price
    if not view.market(symbol).tradable(order_quote / last, last):
        return None
    return Intent(
        kind="buy", symbol=symbol, quote_amount=order_quote, stop_loss=last * (1 - stop_loss_pct / 100), reason=reason
    )
