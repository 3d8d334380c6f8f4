"""Balances, spot positions and equity in the quote currency, all Decimal.

A spot position is the base asset held against the quote. Its size is what the venue's balance says (the
truth); its average entry comes from the fills the engine saw, reset whenever the position goes flat.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.events import Balance, Fill, Position


@dataclass
class _Entry:
    amount: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)

    def apply(self, fill: Fill, base: str) -> None:
        received = fill.amount
        if fill.side == "buy":
            if fill.fee_asset == base:
                received -= fill.fee  # Binance takes a buy's fee out of the base received
            elif fill.fee_asset == _quote(fill.symbol):
                self.cost += fill.fee
            # A fee in a third asset (BNB) is not part of this position's entry price.
            self.amount += received
            self.cost += fill.price * fill.amount
        else:
            if self.amount > 0:
                avg = self.cost / self.amount
                sold = min(fill.amount, self.amount)
                self.amount -= sold
                self.cost -= avg * sold
            if self.amount <= 0:
                self.amount, self.cost = Decimal(0), Decimal(0)

    @property
    def avg(self) -> Decimal | None:
        return None if self.amount <= 0 else self.cost / self.amount


def _quote(symbol: str) -> str:
    return symbol.split("/")[1]


def _base(symbol: str) -> str:
    return symbol.split("/")[0]


class Portfolio:
    """Tracks balances from the venue, last prices and fills; computes positions and equity."""

    def __init__(self, symbols: tuple[str, ...], quote: str) -> None:
        self.symbols = symbols
        self.quote = quote
        self.balances: dict[str, Balance] = {}
        self.last: dict[str, Decimal] = {}
        self._entries: dict[str, _Entry] = {s: _Entry() for s in symbols}
        self._seen_trades: set[tuple[str, str]] = set()

    def set_balances(self, balances: tuple[Balance, ...]) -> None:
        for b in balances:
            self.balances[b.asset] = b

    def set_price(self, symbol: str, last: Decimal) -> None:
        self.last[symbol] = last

    def add_fill(self, fill: Fill) -> bool:
        """Count a fill once; return False if it was already seen."""
        key = (fill.symbol, fill.trade_id)
        if key in self._seen_trades:
            return False
        self._seen_trades.add(key)
        if fill.symbol in self._entries:
            self._entries[fill.symbol].apply(fill, _base(fill.symbol))
        return True

    def free(self, asset: str) -> Decimal:
        b = self.balances.get(asset)
        return b.free if b else Decimal(0)

    def positions(self) -> tuple[Position, ...]:
        out = []
        for symbol in self.symbols:
            b = self.balances.get(_base(symbol))
            if b is None or b.total <= 0:
                continue
            out.append(Position(symbol, b.total, self._entries[symbol].avg, self.last.get(symbol)))
        return tuple(out)

    def equity(self) -> Decimal | None:
        """Quote balance plus every held base valued at its last price; None until prices are known."""
        total = Decimal(0)
        for asset, b in self.balances.items():
            if asset == self.quote:
                total += b.total
                continue
            if b.total == 0:
                continue
            price = self.last.get(f"{asset}/{self.quote}")
            if price is None:
                return None
            total += b.total * price
        return total
