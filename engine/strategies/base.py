"""The strategy interface: a strategy reads a view of the market and says what it wants, as intents.

Strategies are pure: no I/O, no clock of their own, no engine access. The engine samples prices, calls
``decide`` every ``interval_s``, and turns each intent into orders through the same risk checks and
trading state as an operator's order. That keeps strategies testable with a hand-written view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from engine.kernel.events import Order, Position


@dataclass(frozen=True, slots=True)
class Intent:
    """One thing a strategy wants done.

    - ``buy`` / ``sell``: an order; ``quote_amount`` (buy) or ``amount`` (base) sizes it; ``price`` makes it a
      limit order, none a market order; an entry (a buy that opens or adds to a position) must carry ``stop_loss``.
    - ``exit``: close the whole position in ``symbol`` at market.
    - ``cancel``: cancel the strategy's own order ``client_id``.
    """

    kind: Literal["buy", "sell", "exit", "cancel"]
    symbol: str
    amount: Decimal | None = None
    quote_amount: Decimal | None = None
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    client_id: str | None = None
    reason: str = ""


class StrategyView(Protocol):
    """What a strategy may read."""

    now: datetime

    def closes(self, symbol: str) -> Sequence[Decimal]:
        """Prices sampled once per strategy step, oldest first (at most a few hundred)."""

    def last(self, symbol: str) -> Decimal | None:
        """The latest price."""

    def position(self, symbol: str) -> Position | None:
        """The position held in ``symbol`` (None when flat)."""

    def open_orders(self, symbol: str) -> Sequence[Order]:
        """This strategy's own open orders in ``symbol``."""

    def free(self, asset: str) -> Decimal:
        """The free balance of ``asset``."""


class Strategy(Protocol):
    """A trading strategy; ``name`` is also the origin recorded on its orders."""

    name: str
    symbols: tuple[str, ...]

    def decide(self, view: StrategyView) -> list[Intent]:
        """Return what to do now; an empty list means nothing."""


class PerSymbol:
    """Base for strategies that decide each symbol on its own: at most one intent per symbol per step."""

    name: str
    symbols: tuple[str, ...]

    def decide(self, view: StrategyView) -> list[Intent]:
        return [i for symbol in self.symbols if (i := self.decide_symbol(view, symbol)) is not None]

    def decide_symbol(self, view: StrategyView, symbol: str) -> Intent | None:
        raise NotImplementedError


def entry(
    view: StrategyView, symbol: str, fallback_price: Decimal, order_quote: Decimal, stop_loss_pct: Decimal, reason: str
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
