"""The demo ladder: one resting buy a little under the price and, while holding, one resting sell over entry.

It exists so paper mode has resting orders and positions to watch; the cockpit is the product, not alpha.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from engine.kernel.config import LadderConfig
from engine.strategies.api import Intent, Strategy, View

log = logging.getLogger(__name__)


class Ladder(Strategy):
    """Rests a buy ``spacing_pct`` under the last price while it holds less than ``max_holding_quote``, and a sell of
    the free position the same distance over its entry; moves the buy when the price runs away from it."""

    name = "ladder"
    timeframe = None  # reads the last price only
    history = 0
    Params = LadderConfig

    def __init__(self, cfg: LadderConfig, symbols: tuple[str, ...]) -> None:
        super().__init__(cfg, symbols)
        self.cfg = cfg
        self.spacing = cfg.spacing_pct / Decimal(100)
        self._too_small: set[str] = set()  # symbols where order_quote is under the venue's minimum (said once)

    def decide(self, view: View) -> list[Intent]:
        intents: list[Intent] = []
        for symbol in self.symbols:
            last = view.last(symbol)
            if last is None:
                continue
            mine = view.open_orders(symbol)
            buys = [o for o in mine if o.side == "buy"]
            sells = [o for o in mine if o.side == "sell"]
            for order in buys:
                if order.price is not None and order.price < last * (1 - 3 * self.spacing):
                    intents.append(Intent("cancel", symbol, client_id=order.client_id, reason="price ran away"))
            position = view.position(symbol)
            held = position.value if position is not None and position.value is not None else Decimal(0)
            # Only while what it holds leaves room for one more buy: a falling price would otherwise fill buy after
            # buy until the risk limit refused the next one at every step.
            price = last * (1 - self.spacing)
            room = held + self.cfg.order_quote <= self.cfg.max_holding_quote
            if not buys and room and self._buys(view, symbol, price):
                intents.append(
                    Intent(
                        "buy",
                        symbol,
                        quote_amount=self.cfg.order_quote,
                        price=price,
                        stop_loss=price * (1 - self.cfg.stop_loss_pct / 100),
                        reason="rest a bid under the price",
                    )
                )
            if position is None or sells:
                continue
            free = view.free(symbol.split("/")[0])
            entry = position.avg_entry or last
            price = max(entry, last) * (1 + self.spacing)
            # What is left under the venue's minimum amount or notional once rounded down to its step (a fee's
            # remainder, dust) cannot be sold: asking again every step only fills the audit with the same refusal
            # (7 FAILED rows in 20 s once).
            if not view.market(symbol).tradable(free, price):
                continue
            intents.append(Intent("sell", symbol, amount=free, price=price, reason="rest an offer over the entry"))
        return intents

    def _buys(self, view: View, symbol: str, price: Decimal) -> bool:
        """Whether ``order_quote`` at ``price`` is an order the venue takes (its minimum notional and amount, after
        rounding to its step: 100 USDT buys 0.001 BTC on USDⓈ-M, 60 USDT, under its 100); said once when it is not,
        since asking every step would only be refused every step (decision STR-11)."""
        market = view.market(symbol)
        if market.tradable(self.cfg.order_quote / price, price):
            self._too_small.discard(symbol)
            return True
        if symbol not in self._too_small:
            self._too_small.add(symbol)
            amount = market.rounded(self.cfg.order_quote / price)
            log.warning(
                "ladder: [strategy.ladder] order_quote %s buys %s %s at %s (%s), under the market's minimum "
                "(notional %s, amount %s): no bid rests there; raise order_quote",
                self.cfg.order_quote,
                amount,
                symbol,
                f"{price:.8g}",
                f"{amount * price:.8g}",
                market.min_notional,
                market.min_amount,
            )
        return False
