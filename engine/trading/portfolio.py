"""Balances, spot positions, realised and unrealised PnL with fees, equity and drawdown, all Decimal.

A spot position is the base asset held against the quote. Its size is what the venue's balance says (the
truth); its average entry and realised PnL come from the fills the engine saw. A round trip closes when the
position shrinks to dust (below the venue's smallest tradable amount), but the dust stays in the fills book at
its cost: equity counts it at the last price, so PnL must too, and the next entry averages it in. With that,
realised plus unrealised PnL is the change in equity, fees in the quote or the base included.
Fees are counted in the quote currency: a fee in the base is valued at the fill price (on a sell, the base units
it takes leave the book at their cost, like the units sold); a fee in a third asset (BNB) is valued at that
asset's last price against the quote when known.

Perpetual futures (``market = "usdm"``, runbook 002): a position is what the venue reports (``set_perps``),
signed, with its leverage, margin and liquidation price; equity is the margin balance (the wallet plus the
unrealised PnL the venue counts), and a position's value is its notional. Round trips and realised PnL come from the
engine's own fills, longs and shorts, with commissions and funding (``engine.trading.perpbook``, decision PERP-08).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from engine.kernel.events import Balance, Fill, Position
from engine.trading.perpbook import PerpBook
from engine.venue.adapter import PerpPosition

ZERO = Decimal(0)


def base_of(symbol: str) -> str:
    return symbol.split("/")[0]


def quote_of(symbol: str) -> str:
    """The quote of ``BTC/USDT``, and of the perpetual ``BTC/USDT:USDT`` (settled in USDT)."""
    return symbol.split("/")[1].split(":")[0]


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A position opened and closed again: its realised PnL after fees, and who opened it."""

    symbol: str
    pnl: Decimal
    opened_by: str | None
    closed_at: datetime


@dataclass
class _Book:
    """Fills-based view of one symbol's position."""

    amount: Decimal = ZERO  # dust included: it is still held and still cost something
    cost: Decimal = ZERO  # quote spent on what is still held, fees on entry included
    trip_pnl: Decimal = ZERO  # realised in the round trip now open
    opened_by: str | None = None
    # What the venue's balances took off the book before a fill said why (a balance read can overtake the sell's
    # fill): units and their cost, kept until a sell that exceeds the book claims them.
    shrunk: Decimal = ZERO
    shrunk_cost: Decimal = ZERO


@dataclass
class Portfolio:
    """Tracks balances from the venue, last prices and fills; computes positions, PnL and equity."""

    symbols: tuple[str, ...]
    quote: str
    balances: dict[str, Balance] = field(default_factory=dict)
    last: dict[str, Decimal] = field(default_factory=dict)
    realized: dict[str, Decimal] = field(default_factory=dict)
    fees: Decimal = ZERO
    # Below the venue's smallest tradable amount a balance is dust: it cannot be sold, so a position that
    # shrinks under it is closed (the fee taken in the base leaves such a remainder after every exit).
    dust: dict[str, Decimal] = field(default_factory=dict)
    _books: dict[str, _Book] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    market: str = "spot"
    perps: dict[str, PerpPosition] = field(default_factory=dict)  # symbol -> the venue's open position (perps)
    funding: dict[str, Decimal] = field(default_factory=dict)  # symbol -> funding received (+) / paid (-)
    _perp_books: dict[str, PerpBook] = field(default_factory=dict)  # symbol -> the fills' signed position (perps)
    # symbol -> (the venue's mark price, its index price from the same answer) (perps)
    marks: dict[str, tuple[Decimal, Decimal | None]] = field(default_factory=dict)
    # symbol -> (the funding rate about to be charged, when in ms) (perps)
    funding_rates: dict[str, tuple[Decimal | None, int | None]] = field(default_factory=dict)

    @property
    def usdm(self) -> bool:
        return self.market == "usdm"

    def set_perps(self, positions: list[PerpPosition]) -> None:
        """The venue's open positions (perps) as truth; a symbol it does not list is flat."""
        self.perps = {p.symbol: p for p in positions if p.symbol in self.symbols}

    def held_amount(self, symbol: str) -> Decimal:
        """What is held of ``symbol`` at the venue: the signed position (perps), or the base balance (spot)."""
        if self.usdm:
            pos = self.perps.get(symbol)
            return pos.amount if pos else ZERO
        b = self.balances.get(base_of(symbol))
        return b.total if b else ZERO

    def set_balances(self, balances: tuple[Balance, ...]) -> None:
        """Take the venue's balances as truth; a fills book that holds more than the venue says is shrunk to
        it at the same average entry (sold outside the engine, or a paper venue that started afresh). Shrunk
        to dust, the book keeps the dust at that entry: the next buy opens a new round trip over it."""
        for b in balances:
            self.balances[b.asset] = b
        for symbol, book in self._books.items():
            base = self.balances.get(base_of(symbol))
            held = base.total if base else ZERO
            if book.amount > held:
                # Kept aside at their cost, not forgotten: when the balance read overtook the sell's own fill, the
                # fill claims them and realises their PnL (otherwise realised plus unrealised would miss it).
                share = book.cost * (book.amount - held) / book.amount
                book.shrunk += book.amount - held
                book.shrunk_cost += share
                book.cost -= share
                book.amount = held
            elif book.shrunk > 0 and held > book.amount:
                # A later read shows them held after all: the read that took them off lagged a buy's fill (the
                # venue's reports reordered), not a sale. They come back at the cost they were kept at, or the
                # held units would be valued at the book's new average and PnL would drift from equity.
                back = min(held - book.amount, book.shrunk)
                share = book.shrunk_cost * back / book.shrunk
                book.shrunk -= back
                book.shrunk_cost -= share
                book.amount += back
                book.cost += share

    def set_price(self, symbol: str, last: Decimal) -> None:
        self.last[symbol] = last

    def fee_in_quote(self, fill: Fill) -> Decimal:
        quote = quote_of(fill.symbol)
        if not fill.fee or fill.fee_asset in (None, quote):
            return fill.fee
        if fill.fee_asset == base_of(fill.symbol):
            return fill.fee * fill.price
        price = self.last.get(f"{fill.fee_asset}/{quote}")
        return fill.fee * price if price is not None else ZERO

    def add_fill(self, fill: Fill, origin: str | None = None) -> tuple[bool, RoundTrip | None]:
        """Count a fill once. Returns (new, round trip closed by it or None)."""
        key = (fill.symbol, fill.trade_id)
        if key in self._seen:
            return False, None
        self._seen.add(key)
        fee_q = self.fee_in_quote(fill)
        self.fees += fee_q
        if self.usdm:
            return True, self._perp_fill(fill, fee_q, origin)
        book = self._books.setdefault(fill.symbol, _Book())
        dust = self.dust.get(fill.symbol, ZERO)
        fee_base = fill.fee if fill.fee_asset == base_of(fill.symbol) else ZERO
        if fill.side == "buy":
            if book.amount <= dust:  # flat but for dust: a new round trip, over the dust and its cost
                book.opened_by, book.trip_pnl = origin, ZERO
            book.amount += fill.amount - fee_base
            book.cost += fill.price * fill.amount + (fee_q if not fee_base else ZERO)
            return True, None
        # A fee taken in the base leaves the account with the units sold: both leave the book at their cost,
        # the fee's units as if sold at the fill price and paid out as the fee (fee_q). Units the book never
        # saw bought (held before the engine, or a fill still missing) have no cost and count no proceeds.
        sold = fill.amount + fee_base
        pnl = -fee_q
        # Units a balance read took off the book before this fill came are this sale's first (only a sell's
        # pending fill makes the venue hold less than the fills say, short of a trade outside the engine): at the
        # cost they were kept at. Claimed first, so a buy's fill landing in between cannot make the sale take the
        # book's new average and leave the kept units unclaimed.
        claimed = min(sold, book.shrunk)
        if claimed > 0:
            share = book.shrunk_cost * claimed / book.shrunk
            pnl += fill.price * claimed - share
            book.shrunk -= claimed
            book.shrunk_cost -= share
        gone = min(sold - claimed, book.amount)
        if gone > 0:
            share = book.cost * gone / book.amount
            pnl += fill.price * gone - share
            book.amount -= gone
            book.cost -= share
        gone += claimed
        book.trip_pnl += pnl
        self.realized[fill.symbol] = self.realized.get(fill.symbol, ZERO) + pnl
        if book.amount > dust or gone == 0:
            return True, None
        # Flat but for dust: the round trip closes; the dust stays in the book at its cost (it is still held
        # and equity counts it), so realised plus unrealised stays the change in equity.
        trip = RoundTrip(fill.symbol, book.trip_pnl, book.opened_by, fill.ts)
        book.trip_pnl, book.opened_by = ZERO, None
        return True, trip

    def _perp_fill(self, fill: Fill, fee_q: Decimal, origin: str | None) -> RoundTrip | None:
        book = self._perp_books.setdefault(fill.symbol, PerpBook())
        pnl, trip = book.fill(fill.side, fill.price, fill.amount, fee_q, origin)
        self.realized[fill.symbol] = self.realized.get(fill.symbol, ZERO) + pnl
        return None if trip is None else RoundTrip(fill.symbol, trip[0], trip[1], fill.ts)

    def perp_book_amount(self, symbol: str) -> Decimal:
        """Perps: the signed position the engine's own fills make (the venue's is ``held_amount``)."""
        book = self._perp_books.get(symbol)
        return book.amount if book else ZERO

    def perps_traded(self) -> set[str]:
        """Perps: the symbols the engine has seen fills of (whose funding counts in their round trips)."""
        return set(self._perp_books)

    def set_funding(self, symbol: str, total: Decimal) -> Decimal:
        """Perps: the funding ``symbol`` received (+) or paid (-) since the engine first looked, as the venue's
        income history says; what is new since the last read is realised, in the open round trip if any.
        Returns that change."""
        change = total - self.funding.get(symbol, ZERO)
        self.funding[symbol] = total
        if change:
            self.realized[symbol] = self.realized.get(symbol, ZERO) + change
            self._perp_books.setdefault(symbol, PerpBook()).add_funding(change)
        return change

    def free(self, asset: str) -> Decimal:
        b = self.balances.get(asset)
        return b.free if b else ZERO

    def avg_entry(self, symbol: str) -> Decimal | None:
        book = self._books.get(symbol)
        return None if book is None or book.amount <= 0 else book.cost / book.amount

    def holds(self, symbol: str) -> bool:
        """Whether a position in ``symbol`` is held (more than dust): ``positions()`` for one symbol."""
        if self.usdm:
            return self.perps.get(symbol) is not None
        b = self.balances.get(base_of(symbol))
        return b is not None and b.total > self.dust.get(symbol, ZERO)

    def positions(self) -> tuple[Position, ...]:
        if self.usdm:
            return tuple(self._perp(p) for s in self.symbols if (p := self.perps.get(s)) is not None)
        out = []
        for symbol in self.symbols:
            b = self.balances.get(base_of(symbol))
            if b is None or b.total <= self.dust.get(symbol, ZERO):
                continue
            out.append(Position(symbol, b.total, self.avg_entry(symbol), self.last.get(symbol)))
        return tuple(out)

    def _perp(self, p: PerpPosition) -> Position:
        return Position(
            p.symbol,
            p.amount,
            p.entry,
            self.marks[p.symbol][0] if p.symbol in self.marks else p.mark or self.last.get(p.symbol),
            side=p.side,
            leverage=p.leverage,
            margin=p.margin,
            liquidation_price=p.liquidation_price,
            funding=self.funding.get(p.symbol),
        )

    def position_value(self, symbol: str) -> Decimal:
        """The position's worth at the last price; perps: its notional (the limits count notional, not margin)."""
        if self.usdm:
            pos = self.perps.get(symbol)
            price = self.last.get(symbol) or (pos.mark if pos else None)
            return ZERO if pos is None or price is None else abs(pos.amount) * price
        b = self.balances.get(base_of(symbol))
        price = self.last.get(symbol)
        return ZERO if b is None or price is None else b.total * price

    def unrealized(self) -> Decimal:
        """Over everything held at a known entry, dust included: equity counts the dust, so PnL must too.
        The held amount's cost is taken from the book's cost, not rebuilt from the rounded average entry."""
        if self.usdm:
            return sum((p.unrealized_pnl for p in self.perps.values()), ZERO)
        total = ZERO
        for symbol in self.symbols:
            b, book, last = self.balances.get(base_of(symbol)), self._books.get(symbol), self.last.get(symbol)
            if b is None or book is None or book.amount <= 0 or last is None:
                continue
            total += last * b.total - book.cost * b.total / book.amount
        return total

    def equity(self) -> Decimal | None:
        """The quote balance plus the base of every configured symbol at its last price; None until those
        prices are known. Other assets (BNB for fees, dust of old coins) are left out: they are not traded
        here, and one unpriced coin must not blind the drawdown and daily-loss halts."""
        quote = self.balances.get(self.quote)
        total = quote.total if quote else ZERO
        if self.usdm:
            return total  # the margin balance: the unrealised PnL is in it already
        for symbol in self.symbols:
            b = self.balances.get(base_of(symbol))
            if b is None or b.total == 0:
                continue
            price = self.last.get(symbol)
            if price is None:
                return None
            total += b.total * price
        return total


@dataclass
class Drawdown:
    """Peak equity seen and the current drawdown from it, in percent (``pct``, as of the last ``update``)."""

    peak: Decimal | None = None
    pct: Decimal = ZERO

    def update(self, equity: Decimal) -> Decimal:
        if self.peak is None or equity > self.peak:
            self.peak = equity
        self.pct = ZERO if self.peak <= 0 else (self.peak - equity) / self.peak * 100
        return self.pct
