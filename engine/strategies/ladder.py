"""The demo ladder: one resting buy a little under the price and, while holding, one resting sell over entry.

It exists so paper mode has resting orders and positions to watch; the cockpit is the product, not alpha.
"""

from __future__ import annotations

from decimal import Decimal

from engine.kernel.config import LadderConfig
from engine.strategies.api import Intent, Strategy, View


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
            if not buys and held + self.cfg.order_quote <= self.cfg.max_holding_quote:
                price = last * (1 - self.spacing)
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
            # What is left under the venue's minimum amount or notional (a fee's remainder, dust) cannot be sold:
            # asking again every step only fills the audit with the same refusal (7 FAILED rows in 20 s once).
            market = view.market(symbol)
            if free <= 0 or free < market.min_amount or free * price < market.min_notional:
                continue
            intents.append(Intent("sell", symbol, amount=free, price=price, reason="rest an offer over the entry"))
        return intents
