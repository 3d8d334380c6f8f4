"""One paper account matched against a synthetic order book: balances (free/locked), orders, fills and fees.

Conditional orders (STOP_LOSS[_LIMIT], TAKE_PROFIT[_LIMIT]) wait for the last price to reach their stop, whoever
is connected: the feed's tick triggers them. OCO lists pair a take-profit kind with a stop-loss kind on one
quantity (locked once); when one leg starts working or fills, the other expires.

Takers walk the book level by level (each level one fill with its own trade id), so a large order fills at
several prices and, if its limit stops it, partly: GTC rests the remainder (PARTIALLY_FILLED), IOC expires it,
FOK fills all or nothing, a MARKET order that exhausts the book expires. Resting limit orders fill as maker at
their price when the last price trades through them, and by half when it only touches them. Fees are charged in
the asset received, as Binance does without BNB.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import errors
from .book import SyntheticBook
from .filters import check_lot, check_notional, check_percent_price, check_price
from .market import PriceFeed, floor_to_step
from .orders import (
    OCO_PROFIT_TYPES,
    ORDER_TYPES,
    STOP_LOSS_TYPES,
    STOP_TYPES,
    TRANSITIONS,
    BalanceDelta,
    BalanceUpdate,
    BookChanged,
    Event,
    Fill,
    ListUpdate,
    Order,
    OrderList,
    OrderUpdate,
)

ZERO = Decimal(0)
EIGHT_PLACES = Decimal("0.00000001")

# Kept importable from here: tests and payloads import these names from the matching module.
__all__ = [
    "MatchingEngine",
    "Order",
    "Fill",
    "OrderUpdate",
    "OrderList",
    "ListUpdate",
    "BalanceUpdate",
    "BalanceDelta",
    "BookChanged",
    "Event",
    "ORDER_TYPES",
    "STOP_TYPES",
    "TRANSITIONS",
]

Takes = list[tuple[Decimal, Decimal]]


class MatchingEngine:
    """Accounts, orders and fills for the listed symbols; publishes events to ``listeners`` synchronously."""

    def __init__(
        self,
        feeds: dict[str, PriceFeed],
        balances: dict[str, Decimal],
        *,
        taker_fee: Decimal,
        maker_fee: Decimal,
        clock: Callable[[], int],
        seed: int = 1,
    ) -> None:
        self._last_seen: dict[str, Decimal] = {}
        self.feeds = feeds
        self.taker_fee = taker_fee
        self.maker_fee = maker_fee
        self.clock = clock
        self.listeners: list[Callable[[Event], None]] = []
        self.balances: dict[str, list[Decimal]] = {a: [Decimal(v), ZERO] for a, v in balances.items()}
        for feed in feeds.values():
            for asset in (feed.spec.base, feed.spec.quote):
                self.balances.setdefault(asset, [ZERO, ZERO])
        self.orders: dict[int, Order] = {}
        self.order_lists: dict[int, OrderList] = {}
        self._list_ids = itertools.count(1)
        self._open: dict[int, Order] = {}
        self.trades: list[Fill] = []
        self.update_time = clock()
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.books = {s: SyntheticBook(f, seed, own_levels=self._own_levels_of(s)) for s, f in feeds.items()}
        # The stuck-orders fault: while this says so for a symbol, orders are accepted but nothing fills.
        self.is_stuck: Callable[[str], bool] = lambda symbol: False

    # ----- queries ---------------------------------------------------------------------------------------
    def feed(self, symbol: str) -> PriceFeed:
        """The feed of a listed symbol, or -1121."""
        feed = self.feeds.get(symbol)
        if feed is None:
            raise errors.invalid_symbol()
        return feed

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """(free, locked) of an asset; zeros for an unknown one."""
        free, locked = self.balances.get(asset, [ZERO, ZERO])
        return free, locked

    def rests(self, symbol: str) -> bool:
        """Whether any order of ``symbol`` is open here (resting, or a stop waiting for its price)."""
        return any(o.symbol == symbol for o in self._open.values())

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders, oldest first, optionally of one symbol."""
        return [o for o in self._open.values() if symbol is None or o.symbol == symbol]

    def find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> Order:
        """An order of ``symbol`` by id or (latest) client id, or -2013."""
        self.feed(symbol)
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is not None and order.symbol == symbol:
                return order
        elif client_order_id is not None:
            for order in reversed(self.orders.values()):
                if order.symbol == symbol and order.client_order_id == client_order_id:
                    return order
        raise errors.order_does_not_exist()

    def _own_levels_of(self, symbol: str) -> Callable[[], tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]]:
        def own() -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
            bids: dict[Decimal, Decimal] = {}
            asks: dict[Decimal, Decimal] = {}
            for order in self._open.values():
                if order.symbol == symbol and order.rests_on_book:
                    side = bids if order.side == "BUY" else asks
                    side[order.price] = side.get(order.price, ZERO) + order.remaining
            return bids, asks

        return own

    # ----- commands --------------------------------------------------------------------------------------
    def new_order(
        self,
        *,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | None = None,
        quote_order_qty: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        dry_run: bool = False,
        force: bool = False,
    ) -> Order:
        """Validate and place an order like POST /api/v3/order; returns it after any immediate fills.
        ``dry_run`` validates only (POST /api/v3/order/test); ``force`` fills even while stuck (foreign fills)."""
        feed = self.feed(symbol)
        spec = feed.spec
        book = self.books[symbol]
        if side not in ("BUY", "SELL"):
            raise errors.VenueError(-1117, "Invalid side.")
        if type not in ORDER_TYPES:
            raise errors.VenueError(-1116, "Invalid orderType.")
        market = type == "MARKET"
        stop_market = type in ("STOP_LOSS", "TAKE_PROFIT")
        if stop_market:
            # STOP_LOSS / TAKE_PROFIT: a MARKET order of ``quantity`` once the price reaches ``stopPrice``.
            if quantity is None:
                raise errors.missing("quantity")
            if stop_price is None:
                raise errors.missing("stopPrice")
            if price is not None:
                raise errors.not_required("price")
            if time_in_force is not None:
                raise errors.not_required("timeInForce")
        elif market:
            if quantity is None and quote_order_qty is None:
                raise errors.VenueError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
                )
            if quantity is not None and quote_order_qty is not None:
                raise errors.not_required("quoteOrderQty")
            if time_in_force is not None:
                raise errors.not_required("timeInForce")
        else:
            if quantity is None:
                raise errors.missing("quantity")
            if price is None:
                raise errors.missing("price")
            if type == "LIMIT_MAKER" and time_in_force is not None:
                raise errors.not_required("timeInForce")
            if type != "LIMIT_MAKER" and time_in_force is None:
                raise errors.missing("timeInForce")
            if type in STOP_TYPES and stop_price is None:
                raise errors.missing("stopPrice")
        if time_in_force is not None and time_in_force not in ("GTC", "IOC", "FOK"):
            raise errors.VenueError(-1115, "Invalid timeInForce.")
        if client_order_id is not None and any(o.client_order_id == client_order_id for o in self._open.values()):
            raise errors.rejected("Duplicate order sent.")

        bid, ask = book.touch()
        touch = ask if side == "BUY" else bid
        if stop_market:
            assert quantity is not None and stop_price is not None
            check_price(spec, stop_price)
            check_lot(spec, quantity, market=True)
            check_notional(spec, quantity * stop_price, market=True)
        elif market:
            if quantity is None:
                assert quote_order_qty is not None
                check_notional(spec, quote_order_qty, market=True)
                check_lot(spec, floor_to_step(quote_order_qty / touch, spec.step_size), market=True)
            else:
                check_lot(spec, quantity, market=True)
                check_notional(spec, quantity * touch, market=True)
        else:
            assert price is not None and quantity is not None
            check_price(spec, price)
            check_percent_price(side, price, feed.price)
            if stop_price is not None and type in STOP_TYPES:
                check_price(spec, stop_price)
            check_lot(spec, quantity, market=False)
            check_notional(spec, price * quantity, market=False)

        now = self.clock()
        order = Order(
            symbol=symbol,
            order_id=0,
            client_order_id=client_order_id or secrets.token_hex(11),
            side=side,
            type=type,
            time_in_force=time_in_force or "GTC",
            price=price if price is not None else ZERO,
            orig_qty=quantity if quantity is not None else ZERO,
            stop_price=stop_price if (stop_price is not None and type in STOP_TYPES) else ZERO,
            time=now,
            update_time=now,
            working_time=now,
            orig_quote_order_qty=quote_order_qty or ZERO,
        )
        marketable = not order.is_market and self._marketable(order, bid, ask)
        if type == "LIMIT_MAKER" and marketable:
            raise errors.rejected("Order would immediately match and take.")
        if type in STOP_TYPES and self._stop_triggered(order, feed.price):
            raise errors.rejected("Stop price would trigger immediately.")
        stuck = self.is_stuck(symbol) and not force
        takes: Takes = []
        if not stuck and type not in STOP_TYPES and (market or marketable):
            takes = self._plan(order)
            if market and quote_order_qty is not None:
                order.orig_qty = sum((q for _, q in takes), ZERO)
                if not takes:
                    raise errors.filter_failure("LOT_SIZE")
        if dry_run:
            return order
        order.order_id = next(self._order_ids)

        if type in STOP_TYPES:
            order.is_working, order.working_time = False, -1
            return self._rest(order, now, lock_price=order.stop_price if stop_market else None)
        if stuck:
            # Stuck venue: accept and lock as a resting order; it takes (or expires) once the venue is unstuck.
            order.pending_take = market or marketable or order.time_in_force in ("IOC", "FOK")
            if market and order.orig_qty == 0:  # quoteOrderQty: estimate the quantity at the touch
                order.orig_qty = floor_to_step(order.orig_quote_order_qty / touch, spec.step_size)
            return self._rest(order, now, lock_price=touch if market else order.price)
        self._take(order, takes, now, accepted=False)
        return order

    def cancel(
        self, symbol: str, order_id: int | None, client_order_id: str | None, cancel_client_id: str | None = None
    ) -> tuple[Order, str]:
        """Cancel an open order (-2011 if unknown or closed); returns it and the cancel request's client id."""
        try:
            order = self.find(symbol, order_id, client_order_id)
        except errors.VenueError:
            raise errors.unknown_order() from None
        if not order.is_open:
            raise errors.unknown_order()
        legs = [order, *(o for o in self._list_legs(order) if o is not order and o.is_open)]
        cancel_id = self._cancel(order, cancel_client_id)
        for other in legs[1:]:  # cancelling one leg of an OCO cancels the whole list
            self._cancel(other, None)
        assets = tuple(sorted({o.locked_asset for o in legs if o.locked_asset}))
        if assets:
            self._emit(BalanceUpdate(assets, order.update_time))
        self._book_changed(order.symbol)
        return order, cancel_id

    def new_oco(
        self,
        *,
        symbol: str,
        side: str,
        quantity: Decimal,
        above: dict[str, Any],
        below: dict[str, Any],
        list_client_order_id: str | None = None,
    ) -> tuple[OrderList, list[Order]]:
        """Validate and place an OCO list like POST /api/v3/orderList/oco. ``above`` and ``below`` hold each
        leg's type, price, stop_price, time_in_force and client_order_id. One quantity, locked once."""
        feed = self.feed(symbol)
        kinds = {str(above["type"]) in OCO_PROFIT_TYPES, str(below["type"]) in OCO_PROFIT_TYPES}
        if kinds != {True, False} or not {str(above["type"]), str(below["type"])} & STOP_LOSS_TYPES:
            raise errors.VenueError(-1168, "At least one OCO order must be contingent.")
        key = [leg["price"] if leg["type"] == "LIMIT_MAKER" else leg["stop_price"] for leg in (above, below)]
        if None not in key and not key[0] > feed.price > key[1]:
            raise errors.rejected("The relationship of the prices for the orders is not correct.")
        orders = [
            self.new_order(symbol=symbol, side=side, quantity=quantity, dry_run=True, **leg) for leg in (above, below)
        ]
        spec = feed.spec
        if side == "BUY":
            self._require(spec.quote, quantity * max(max(o.price, o.stop_price) for o in orders))
        else:
            self._require(spec.base, quantity)
        now = self.clock()
        order_list = OrderList(next(self._list_ids), list_client_order_id or secrets.token_hex(11), symbol, (), now)
        for order in orders:
            order.order_id = next(self._order_ids)
            order.order_list_id = order_list.order_list_id
            if order.type != "LIMIT_MAKER":
                order.is_working, order.working_time = False, -1
        order_list.order_ids = tuple(o.order_id for o in orders)
        self.order_lists[order_list.order_list_id] = order_list
        # The quantity is locked once, on the leg with the higher price (what a BUY may spend).
        locking = max(orders, key=lambda o: max(o.price, o.stop_price))
        self._rest(locking, now, lock_price=max(locking.price, locking.stop_price))
        for order in orders:
            if order is not locking:
                self._accept(order, now)
        self._book_changed(symbol)
        self._emit(ListUpdate(order_list, now))
        return order_list, sorted(orders, key=lambda o: o.order_id)

    def find_list(self, order_list_id: int | None, list_client_order_id: str | None) -> OrderList:
        """An order list by id or (latest) client id, or -2011."""
        for order_list in reversed(self.order_lists.values()):
            if order_list.order_list_id == order_list_id or (
                order_list_id is None and order_list.list_client_order_id == list_client_order_id
            ):
                return order_list
        raise errors.VenueError(-2011, "Order list does not exist.")

    def cancel_list(
        self, symbol: str, order_list_id: int | None, list_client_order_id: str | None
    ) -> tuple[OrderList, list[tuple[Order, str]]]:
        """DELETE /api/v3/orderList: cancel the open legs of a list (-2011 if it is unknown or done)."""
        self.feed(symbol)
        order_list = self.find_list(order_list_id, list_client_order_id)
        legs = [self.orders[i] for i in order_list.order_ids]
        if order_list.symbol != symbol or not any(o.is_open for o in legs):
            raise errors.unknown_order()
        first = next(o for o in legs if o.is_open)
        self.cancel(symbol, first.order_id, None)
        return order_list, [(o, o.client_order_id) for o in legs]

    def _list_legs(self, order: Order) -> list[Order]:
        if order.order_list_id < 0:
            return []
        return [self.orders[i] for i in self.order_lists[order.order_list_id].order_ids]

    def _expire_siblings(self, order: Order) -> None:
        """One leg of an OCO starts working or fills: the other expires (Binance's ``OCO_TRIGGER``)."""
        for other in self._list_legs(order):
            if other is not order and other.is_open:
                self._set_status(other, "EXPIRED", "EXPIRED")

    def _cancel(self, order: Order, cancel_client_id: str | None) -> str:
        cancel_id = cancel_client_id or secrets.token_hex(11)
        self._release(order)
        self._set_status(order, "CANCELED", "CANCELED", cancel_client_id=cancel_id)
        return cancel_id

    def cancel_all(self, symbol: str) -> list[tuple[Order, str]]:
        """Cancel every open order of a symbol (-2011 if there is none, as Binance answers): an execution report
        each, then one account update and one book change for the lot (not one per order: the book's own levels
        are summed over every open order, so that would be quadratic)."""
        self.feed(symbol)
        orders = self.open_orders(symbol)
        if not orders:
            raise errors.unknown_order()
        done = [(o, self._cancel(o, None)) for o in orders if o.is_open]
        assets = tuple(sorted({o.locked_asset for o in orders if o.locked_asset}))
        if assets:
            self._emit(BalanceUpdate(assets, self.clock()))
        self._book_changed(symbol)
        return done

    def adjust_balance(self, asset: str, delta: Decimal) -> Decimal:
        """Change a free balance outside any order (deposit, withdrawal); returns the new free amount."""
        row = self.balances.setdefault(asset, [ZERO, ZERO])
        if row[0] + delta < 0:
            raise errors.insufficient_balance()
        self._move(asset, delta, ZERO)
        now = self.clock()
        self._emit(BalanceDelta(asset, delta, now))
        self._emit(BalanceUpdate((asset,), now))
        return row[0]

    def on_price(self, symbol: str) -> None:
        """The price of ``symbol`` moved: refill the book, trigger stops, fill resting orders it reached."""
        feed = self.feed(symbol)
        self.books[symbol].on_price()
        if self.is_stuck(symbol):
            return
        last = feed.price
        # A touch fills half of what rests only when the price arrives at the level, not on every tick that
        # finds it still there (a frozen price would otherwise fill the order by halves).
        arrived = self._last_seen.get(symbol) != last
        self._last_seen[symbol] = last
        bid, ask = self.books[symbol].touch()
        for order in self.open_orders(symbol):
            if not order.is_open:
                continue
            if order.pending_take:
                # Accepted while the venue was stuck: take now, or expire as Binance would have at once.
                self._release(order)
                order.pending_take = False
                takes = self._plan(order) if order.is_market or self._marketable(order, bid, ask) else []
                self._take(order, takes, self.clock(), accepted=True)
                continue
            if not order.is_working:
                if not self._stop_triggered(order, last):
                    continue
                self._expire_siblings(order)
                now = self.clock()
                order.is_working, order.working_time, order.update_time = True, now, now
                self._emit(OrderUpdate(order, "NEW", now))
                if order.is_market or self._marketable(order, bid, ask):
                    self._release(order)  # _take checks free funds and locks what rests
                    self._take(order, self._plan(order), now, accepted=True)
                    continue
                if not order.locked:  # an OCO leg: its sibling held the lock
                    self._lock(order, order.price)
                self._book_changed(symbol)
            crossed = (order.side == "BUY" and last < order.price) or (order.side == "SELL" and last > order.price)
            if crossed or (last == order.price and arrived):
                self._expire_siblings(order)  # a resting OCO leg (LIMIT_MAKER) fills: the stop leg expires
            if (order.side == "BUY" and last < order.price) or (order.side == "SELL" and last > order.price):
                self._execute(order, order.price, order.remaining, maker=True)  # traded through
            elif last == order.price and arrived:
                # Trades print at the order's price: part of the queue ahead of it is gone, half of it fills.
                half = floor_to_step(order.remaining / 2, feed.spec.step_size)
                self._execute(order, order.price, max(half, min(feed.spec.min_qty, order.remaining)), maker=True)
            else:
                continue
            self._book_changed(symbol)

    # ----- taking and resting ----------------------------------------------------------------------------
    @staticmethod
    def _marketable(order: Order, bid: Decimal, ask: Decimal) -> bool:
        return (order.side == "BUY" and ask <= order.price) or (order.side == "SELL" and bid >= order.price)

    @staticmethod
    def _stop_triggered(order: Order, last: Decimal) -> bool:
        # Binance: STOP_LOSS sells when the price falls to the stop, TAKE_PROFIT sells when it rises to it.
        falling = (order.type in STOP_LOSS_TYPES) == (order.side == "SELL")
        return last <= order.stop_price if falling else last >= order.stop_price

    def _plan(self, order: Order) -> Takes:
        """The book levels a taker order would take now (nothing is taken yet)."""
        book = self.books[order.symbol]
        side = "asks" if order.side == "BUY" else "bids"
        if order.is_market:
            if order.orig_qty == 0 and order.orig_quote_order_qty:
                return book.walk(side, quote=order.orig_quote_order_qty - order.cumm_quote_qty)
            return book.walk(side, qty=order.remaining)
        takes = book.walk(side, qty=order.remaining, limit_price=order.price)
        if order.time_in_force == "FOK" and sum((q for _, q in takes), ZERO) < order.remaining:
            return []  # fill or kill: all or nothing
        return takes

    def _take(self, order: Order, takes: Takes, now: int, *, accepted: bool) -> None:
        """Fill ``takes`` as taker, then rest the remainder (GTC limit) or expire it; -2010 if funds are short."""
        spec = self.feeds[order.symbol].spec
        taken = sum((q for _, q in takes), ZERO)
        rests = not order.is_market and order.time_in_force == "GTC"
        rest_qty = order.remaining - taken if rests else ZERO
        if order.side == "BUY":
            need_asset, need = spec.quote, sum((p * q for p, q in takes), ZERO) + rest_qty * order.price
        else:
            need_asset, need = spec.base, taken + rest_qty
        if self.balances[need_asset][0] < need:
            if not accepted:
                raise errors.insufficient_balance()
            self._set_status(order, "EXPIRED", "EXPIRED")
            return
        if not accepted:
            self._accept(order, now)
        book = self.books[order.symbol]
        for price, qty in takes:
            book.take("asks" if order.side == "BUY" else "bids", price, qty)
            self._execute(order, price, qty, maker=False)
        if order.is_open:
            if rest_qty > 0:
                self._lock(order, order.price)
            else:
                self._set_status(order, "EXPIRED", "EXPIRED")
        self._book_changed(order.symbol)

    def _rest(self, order: Order, now: int, lock_price: Decimal | None = None) -> Order:
        """Accept an order that rests (or waits for its stop), locking what it may spend."""
        spec = self.feeds[order.symbol].spec
        price = order.price if lock_price is None else lock_price
        if order.side == "BUY":
            self._require(spec.quote, order.orig_qty * price)
        else:
            self._require(spec.base, order.orig_qty)
        self._accept(order, now)
        self._lock(order, price)
        self._book_changed(order.symbol)
        return order

    def _lock(self, order: Order, price: Decimal) -> None:
        spec = self.feeds[order.symbol].spec
        asset = spec.quote if order.side == "BUY" else spec.base
        amount = order.remaining * price if order.side == "BUY" else order.remaining
        self._move(asset, -amount, +amount)
        order.locked_asset, order.locked = asset, order.locked + amount
        self._emit(BalanceUpdate((asset,), self.clock()))

    # ----- internals -------------------------------------------------------------------------------------
    def _require(self, asset: str, amount: Decimal) -> None:
        if self.balances[asset][0] < amount:
            raise errors.insufficient_balance()

    def _move(self, asset: str, d_free: Decimal, d_locked: Decimal) -> None:
        row = self.balances.setdefault(asset, [ZERO, ZERO])
        row[0] += d_free
        row[1] += d_locked
        self.update_time = self.clock()

    def _release(self, order: Order) -> None:
        if order.locked:
            self._move(order.locked_asset, +order.locked, -order.locked)
            order.locked = ZERO

    def _accept(self, order: Order, now: int) -> None:
        self.orders[order.order_id] = order
        self._open[order.order_id] = order
        self._emit(OrderUpdate(order, "NEW", now))

    def _set_status(
        self, order: Order, status: str, exec_type: str, fill: Fill | None = None, cancel_client_id: str = ""
    ) -> None:
        if status not in TRANSITIONS[order.status]:
            raise RuntimeError(f"illegal order transition {order.status} -> {status} for {order.order_id}")
        now = fill.time if fill else self.clock()
        order.status, order.update_time = status, now
        if not order.is_open:
            self._open.pop(order.order_id, None)
            self._release(order)
        self._emit(OrderUpdate(order, exec_type, now, fill, cancel_client_id))
        if order.order_list_id >= 0:
            order_list = self.order_lists[order.order_list_id]
            if order_list.is_open and (not order.is_open or exec_type == "TRADE"):
                # A leg filled, expired or was cancelled: the list has done its work (listStatus ALL_DONE).
                order_list.list_status_type = order_list.list_order_status = "ALL_DONE"
                self._emit(ListUpdate(order_list, now))

    def _execute(self, order: Order, price: Decimal, qty: Decimal, *, maker: bool) -> None:
        """One fill of ``qty`` at ``price``; locked funds (if any) pay first."""
        spec = self.feeds[order.symbol].spec
        quote = price * qty
        rate = self.maker_fee if maker else self.taker_fee
        if order.side == "BUY":
            commission = (qty * rate).quantize(EIGHT_PLACES, ROUND_HALF_UP)
            fee_asset = spec.base
            from_locked = min(order.locked, quote)
            self._move(spec.quote, -(quote - from_locked), -from_locked)
            self._move(spec.base, qty - commission, ZERO)
        else:
            commission = (quote * rate).quantize(EIGHT_PLACES, ROUND_HALF_UP)
            fee_asset = spec.quote
            from_locked = min(order.locked, qty)
            self._move(spec.base, -(qty - from_locked), -from_locked)
            self._move(spec.quote, quote - commission, ZERO)
        order.locked -= from_locked
        now = self.clock()
        fill = Fill(
            next(self._trade_ids),
            order.order_id,
            order.symbol,
            price,
            qty,
            quote,
            commission,
            fee_asset,
            now,
            order.side == "BUY",
            maker,
        )
        order.executed_qty += qty
        order.cumm_quote_qty += quote
        order.fills.append(fill)
        self.trades.append(fill)
        self._set_status(order, "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED", "TRADE", fill)
        self._emit(BalanceUpdate((spec.base, spec.quote), now))
        # The account's fill also prints on the public tape; the buyer is the maker when a resting buy filled.
        self._emit(
            self.feeds[order.symbol].record_trade(price, qty, now, buyer_is_maker=maker == (order.side == "BUY"))
        )

    def _book_changed(self, symbol: str) -> None:
        self.books[symbol].changed()
        self._emit(BookChanged(symbol))

    def _emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            listener(event)
