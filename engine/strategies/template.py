"""The file `cockpit strategy new NAME` writes: a commented strategy that runs as written (docs/strategies.md).

``render`` fills in the name; the template is tested by loading and running what it renders.
"""

from __future__ import annotations

TEMPLATE = '''"""{name}: a cockpit strategy, written by `cockpit strategy new {name}` (the manual: docs/strategies.md).

It buys when the RSI of the closed 1-minute candles is oversold (with a stop-loss under the entry) and sells the
position at market when the RSI is overbought. Change it as you like; it runs as written.

- Run it:    add its name to [strategy] run in config.toml:  run = ["{name}"]
- Tune it:   [strategy.params.{name}] in config.toml (each value is checked against the bounds below at start)
- Check it:  `cockpit strategy list` (found? its parameters? an error?)
- Test it:   `cockpit validate --strategy {name} --replay DATA` on candles from `cockpit data download`
"""

from __future__ import annotations

from decimal import Decimal

# Indicators: talipp (pinned with cockpit, pure Python: no compiler needed). RSI, EMA, SMA, BB, MACD, ATR, ...
# take a list of floats and answer one value per input (None until they have enough).
from talipp.indicators import RSI

from engine.strategies.api import Field, Intent, Params, Strategy, View


class {cls}Params(Params):
    """The parameters: typed, with a default and bounds each."""

    period: int = Field(14, ge=2, le=200)  # RSI length, in candles
    oversold: float = Field(30.0, gt=0, lt=100)  # buy under this
    overbought: float = Field(70.0, gt=0, lt=100)  # sell over this
    order_quote: Decimal = Field(Decimal("50"), gt=0)  # each entry, in the quote currency (USDT)
    stop_loss_pct: Decimal = Field(Decimal("2"), gt=0, lt=50)  # the entry's stop, this far under the price
    take_profit_pct: Decimal = Field(Decimal("0"), ge=0, lt=100)  # 0: none; else sell this far above, with the stop


class {cls}(Strategy):
    """Long-only RSI reversion on every configured symbol."""

    name = "{name}"  # also its actor in the audit trail: strategy:{name}
    symbols = ()  # () trades every [venue] symbol; or name them: ("BTC/USDT",)
    timeframe = "1m"  # its candles: 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d
    history = 50  # closed candles it needs; it is not asked to decide before it has them
    Params = {cls}Params

    def decide(self, view: View) -> list[Intent]:
        """Called every [strategy] interval_s with a snapshot of the market and the account; returns intents."""
        p: {cls}Params = self.params
        intents: list[Intent] = []
        for symbol in self.symbols:
            candles = view.candles(symbol)  # closed candles, oldest first; candles.forming is the open one
            rsi = RSI(p.period, input_values=candles.closes())[-1]
            price = view.last(symbol)
            if rsi is None or price is None or view.open_orders(symbol):
                # Not enough data yet, or an order of ours is still working. The stop resting for the position is
                # not one of them (view.protection(symbol) lists it): the engine moves it, and an exit frees it.
                continue
            position = view.position(symbol)
            market = view.market(symbol)  # the venue's minimum amount and notional, and its amount step
            # Held, and enough of it for the venue to take a sale (a remainder under its minimum cannot be sold).
            holding = position is not None and market.tradable(position.amount, price)
            buyable = market.tradable(p.order_quote / price, price)  # order_quote is not under the minimum
            if holding and rsi > p.overbought:
                intents.append(Intent("exit", symbol, reason=f"RSI {{rsi:.1f}} over {{p.overbought}}"))
            elif not holding and buyable and rsi < p.oversold and view.free("USDT") >= p.order_quote:
                intents.append(
                    Intent(
                        "buy",
                        symbol,
                        quote_amount=p.order_quote,  # a market order of this much USDT
                        stop_loss=price * (1 - p.stop_loss_pct / 100),  # every entry carries its stop
                        # and may carry a take-profit: the two then rest at the venue as one OCO
                        take_profit=price * (1 + p.take_profit_pct / 100) if p.take_profit_pct else None,
                        reason=f"RSI {{rsi:.1f}} under {{p.oversold}}",
                    )
                )
        return intents
'''


def class_name(name: str) -> str:
    """``rsi_dip`` -> ``RsiDip``."""
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part) or "MyStrategy"


def render(name: str) -> str:
    return TEMPLATE.format(name=name, cls=class_name(name))
