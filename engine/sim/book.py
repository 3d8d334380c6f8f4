"""A synthetic order book with depth around the simulated price, for fills at several prices and depth streams.

Levels sit on a fixed grid (``level_step``) so a small price move changes only the levels near the touch; each
level's quantity is a deterministic function of its price (same seed, same book). Liquidity an order of the
account takes is gone until the price moves (then the level refills). The account's own resting limit orders
are part of the book. Every change bumps ``update_id``; ``diff()`` gives Binance's depthUpdate (U, u, bids, asks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .market import PriceFeed

ZERO = Decimal(0)
MAX_LEVELS = 5000  # GET /api/v3/depth limit maximum; also how far a market order may walk
# Binance's diff stream carries at most the changed levels; the top of each side is resent so consumption
# and own orders near the touch are always exact.
DIFF_WINDOW = 20
# ccxt keeps 1000 levels from its snapshot (watchOrderBookLimit): a jump resends that many new levels.
CLIENT_DEPTH = 1000
QTY_MEMO = 20_000  # synthetic quantities kept by price (then forgotten all at once)

OwnLevels = Callable[[], tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]]


@dataclass(frozen=True)
class DepthUpdate:
    """One ``depthUpdate``: update ids U..u and the levels that changed (quantity 0 removes a level)."""

    first_id: int
    last_id: int
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]


class SyntheticBook:
    """Bids and asks of one symbol: synthetic levels minus what the account took, plus its own resting orders."""

    def __init__(self, feed: PriceFeed, seed: int, own_levels: OwnLevels | None = None) -> None:
        self.feed = feed
        self.spec = feed.spec
        self._salt = sum(ord(c) * 131**i for i, c in enumerate(f"{seed}:{feed.spec.symbol}")) % 2**31
        self._own_levels = own_levels or (lambda: ({}, {}))
        self.update_id = 1
        self._taken: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
        self._qty_at: dict[Decimal, Decimal] = {}  # synthetic_qty by price
        self._touch = feed.bid_ask()
        self._published_id = self.update_id
        self._baseline = self._state()

    # ----- quantities ------------------------------------------------------------------------------------
    def synthetic_qty(self, price: Decimal) -> Decimal:
        """Resting quantity of the synthetic level at ``price`` (0.3..1.7 × level_qty, on the lot step)."""
        known = self._qty_at.get(price)
        if known is not None:
            return known  # a level's quantity depends on its price alone: the touch is asked for at every push
        if len(self._qty_at) >= QTY_MEMO:
            self._qty_at.clear()
        qty = self._synthetic_qty(price)
        self._qty_at[price] = qty
        return qty

    def _synthetic_qty(self, price: Decimal) -> Decimal:
        index = int(price / self.spec.level_step)
        h = (index * 2654435761 + self._salt) % 4294967296
        h = (h ^ (h >> 13)) * 1274126177 % 4294967296
        factor = Decimal("0.3") + Decimal(h % 10_000) * Decimal("0.00014")
        qty = (self.spec.level_qty * factor / self.spec.step_size).to_integral_value(ROUND_DOWN) * self.spec.step_size
        return max(qty, self.spec.min_qty)

    def _synthetic_available(self, side: str, price: Decimal, touch: tuple[Decimal, Decimal]) -> Decimal:
        bid, ask = touch
        if (side == "bids" and price > bid) or (side == "asks" and price < ask) or price <= 0:
            return ZERO
        return max(self.synthetic_qty(price) - self._taken[side].get(price, ZERO), ZERO)

    def touch(self) -> tuple[Decimal, Decimal]:
        """Best synthetic bid and ask (the account's own orders may sit inside them)."""
        return self.feed.bid_ask()

    def _grid(self, side: str, touch: tuple[Decimal, Decimal], count: int) -> Iterator[Decimal]:
        """Up to ``count`` grid prices from the touch outwards, made as they are read: the best level (every
        ticker push asks for it) must not cost the 5,000 levels of the deepest walk."""
        step = self.spec.level_step
        price = touch[0] if side == "bids" else touch[1]
        if side == "bids":
            step = -step
        for _ in range(count):
            if price <= 0:
                return
            yield price
            price += step

    def levels(self, side: str, limit: int = 100, *, synthetic_only: bool = False) -> list[tuple[Decimal, Decimal]]:
        """The best ``limit`` levels of ``side`` ("bids" or "asks"), best first, empty levels skipped."""
        touch = self.touch()
        qty: dict[Decimal, Decimal] = {}
        for price in self._grid(side, touch, MAX_LEVELS):
            available = self._synthetic_available(side, price, touch)
            if available:
                qty[price] = available
                if len(qty) >= limit:
                    break
        if not synthetic_only:
            for price, amount in self._own_levels()[0 if side == "bids" else 1].items():
                qty[price] = qty.get(price, ZERO) + amount
        ordered = sorted(qty.items(), key=lambda kv: kv[0], reverse=(side == "bids"))
        return ordered[:limit]

    def best(self, side: str) -> tuple[Decimal, Decimal]:
        """Best price and quantity of a side (own orders included)."""
        touch = self.touch()
        if not self._own_levels()[0 if side == "bids" else 1]:
            # No own order on this side (most ticker pushes): the first synthetic level left, as ``levels`` finds it.
            for price in self._grid(side, touch, MAX_LEVELS):
                available = self._synthetic_available(side, price, touch)
                if available:
                    return price, available
        else:
            levels = self.levels(side, 1)
            if levels:
                return levels[0]
        return (touch[0] if side == "bids" else touch[1]), ZERO

    # ----- taking liquidity ------------------------------------------------------------------------------
    def walk(
        self, side: str, *, qty: Decimal | None = None, quote: Decimal | None = None, limit_price: Decimal | None = None
    ) -> list[tuple[Decimal, Decimal]]:
        """The (price, qty) a taker would get from ``side`` for ``qty`` base or ``quote`` quote, best first, not
        beyond ``limit_price``; quantities on the lot step. Takes nothing (see ``take``)."""
        touch = self.touch()
        step = self.spec.step_size
        fills: list[tuple[Decimal, Decimal]] = []
        left_qty, left_quote = qty, quote
        for price in self._grid(side, touch, MAX_LEVELS):
            if limit_price is not None and (price > limit_price if side == "asks" else price < limit_price):
                break
            available = self._synthetic_available(side, price, touch)
            if not available:
                continue
            if left_qty is not None:
                take = min(available, left_qty)
            else:
                assert left_quote is not None
                take = min(available, (left_quote / price / step).to_integral_value(ROUND_DOWN) * step)
            if take <= 0:
                break
            fills.append((price, take))
            if left_qty is not None:
                left_qty -= take
                if left_qty <= 0:
                    break
            else:
                assert left_quote is not None
                left_quote -= take * price
        return fills

    def take(self, side: str, price: Decimal, qty: Decimal) -> None:
        """Remove liquidity the account took, until the price moves."""
        self._taken[side][price] = self._taken[side].get(price, ZERO) + qty
        self.changed()

    def changed(self) -> None:
        """Something in the book changed (own order placed, filled or cancelled)."""
        self.update_id += 1

    def on_price(self) -> None:
        """The price moved: taken liquidity refills; bump the update id if the touch moved."""
        touch = self.feed.bid_ask()
        if touch != self._touch or self._taken["bids"] or self._taken["asks"]:
            self._taken = {"bids": {}, "asks": {}}
            self._touch = touch
            self.update_id += 1

    # ----- diff stream -----------------------------------------------------------------------------------
    def _state(
        self,
    ) -> tuple[
        tuple[Decimal, Decimal],
        dict[str, dict[Decimal, Decimal]],
        tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]],
    ]:
        return self.touch(), {k: dict(v) for k, v in self._taken.items()}, self._own_levels()

    def sync(self) -> None:
        """Nobody listens to the diff stream: take the current book as published."""
        if self.update_id != self._published_id:
            self._published_id = self.update_id
            self._baseline = self._state()

    def diff(self) -> DepthUpdate | None:
        """Levels changed since the last diff, or None if nothing did."""
        if self.update_id == self._published_id:
            return None
        (old_bid, old_ask), old_taken, (old_own_b, old_own_a) = self._baseline
        state = self._state()
        (bid, ask), taken, (own_b, own_a) = state
        step = self.spec.level_step
        result: dict[str, list[tuple[Decimal, Decimal]]] = {}
        for side, old_touch, new_touch, old_own, new_own in (
            ("bids", old_bid, bid, old_own_b, own_b),
            ("asks", old_ask, ask, old_own_a, own_a),
        ):
            # Levels between the old and the new touch appeared or vanished: list them from the touch side
            # the client holds; after a jump, also the new top of the book the client never saw.
            moved = int(abs(new_touch - old_touch) / step)
            prices: set[Decimal] = set(self._grid(side, (bid, ask), max(DIFF_WINDOW, min(moved, CLIENT_DEPTH))))
            if moved:
                if side == "bids":
                    top = max(old_touch, new_touch)
                    prices.update(top - step * i for i in range(min(moved + 1, MAX_LEVELS)))
                else:
                    bottom = min(old_touch, new_touch)
                    prices.update(bottom + step * i for i in range(min(moved + 1, MAX_LEVELS)))
            prices.update(old_taken[side])
            prices.update(taken[side])
            prices.update(old_own)
            prices.update(new_own)
            rows = []
            for price in sorted(prices, reverse=(side == "bids")):
                if price <= 0:
                    continue
                amount = self._synthetic_available(side, price, (bid, ask)) + new_own.get(price, ZERO)
                rows.append((price, amount))
            result[side] = rows
        update = DepthUpdate(self._published_id + 1, self.update_id, result["bids"], result["asks"])
        self._published_id = self.update_id
        self._baseline = state
        return update
