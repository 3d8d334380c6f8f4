"""Helpers the built-in strategies share, on the public API (``engine.strategies.api``).

``PerSymbol`` decides each symbol on its own; ``entry`` builds a long entry with its stop-loss.
"""

from __future__ import annotations

from decimal import Decimal

from engine.strategies.api import Intent, Strategy, View

StrategyView = View  # the name the built-ins were written against

__all__ = ["Intent", "PerSymbol", "Strategy", "StrategyView", "entry"]


class PerSymbol(Strategy):
    """Base for strategies that decide each symbol on its own: at most one intent per symbol per step."""

    def decide(self, view: View) -> list[Intent]:
        return [i for symbol in self.symbols if (i := self.decide_symbol(view, symbol)) is not None]

    def decide_symbol(self, view: View, symbol: str) -> Intent | None:
        raise NotImplementedError


def entry(
    view: View, symbol: str, fallback_price: Decimal, order_quote: Decimal, stop_loss_pct: Decimal, reason: str
) -> Intent | None:
    """A long entry of ``order_quote`` with its stop ``stop_loss_pct`` under the price; none while one of the
    strategy's own orders in ``symbol`` is open (an entry already under way would double the size)."""
    if view.open_orders(symbol):
        return None
    last = view.last(symbol)
    if last is None:
        last = fallback_price
    return Intent(
        kind="buy", symbol=symbol, quote_amount=order_quote, stop_loss=last * (1 - stop_loss_pct / 100), reason=reason
    )
