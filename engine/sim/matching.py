"""One paper account matched against the simulated price: balances (free/locked), orders, fills and fees.

Liquidity is unlimited at the simulated quote, so orders never fill partially: MARKET and marketable LIMIT orders
fill at once as taker (buy at the ask, sell at the bid); resting LIMIT orders fill fully at their limit price as
maker once the last price reaches them. Fees are charged in the asset received, as Binance does without BNB.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Union

from . import errors
from .filters import check_lot, check_notional, check_percent_price, check_price
from .market import PriceFeed, PublicTrade, floor_to_step

ZERO = Decimal(0)
EIGHT_PLACES = Decimal("0.00000001")

# Order status transitions (STYLE.md practice 5); fills are always full, so PARTIALLY_FILLED never occurs.
TRANSITIONS: dict[str, frozenset[str]] = {
    "NEW": frozenset({"FILLED", "CANCELED", "EXPIRED"}),
    "FILLED": frozenset(),
    "CANCELED": frozenset(),
    "EXPIRED": frozenset(),
}
STOP_TYPES = frozenset({"STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")


@dataclass
class Fill:
    """One execution of the account, as myTrades reports it."""

    trade_id: int
    order_id: int
    symbol: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass
class Order:
    """Venue-side state of one order."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    stop_price: Decimal
    time: int
    orig_quote_order_qty: Decimal = ZERO
    update_time: int = 0
    working_time: int = -1
    is_working: bool = True
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cumm_quote_qty: Decimal = ZERO
    locked_asset: str = ""
    locked: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """NEW orders (working or waiting for their stop) are open."""
        return self.status == "NEW"


@dataclass(frozen=True)
class OrderUpdate:
    """An order changed state: ``exec_type`` is NEW, TRADE, CANCELED or EXPIRED (executionReport ``x``)."""

    order: Order
    exec_type: str
    time: int
    fill: Fill | None = None
    cancel_client_id: str = ""


@dataclass(frozen=True)
class BalanceUpdate:
    """Balances of these assets changed (outboundAccountPosition)."""

    assets: tuple[str, ...]
    time: int


@dataclass(frozen=True)
class BalanceDelta:
    """A balance changed outside trading (user-data ``balanceUpdate``)."""

    asset: str
    delta: Decimal
    time: int


Event = Union[OrderUpdate, BalanceUpdate, BalanceDelta, PublicTrade]


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
    ) -> None:
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
        self.trades: list[Fill] = []
        self.update_time = clock()
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
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

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders, oldest first, optionally of one symbol."""
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

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
        """Validate and place an order like POST /api/v3/order; returns it after any immediate fill.
        ``dry_run`` validates only (POST /api/v3/order/test); ``force`` fills even while stuck (foreign fills)."""
        feed = self.feed(symbol)
        spec = feed.spec
        if side not in ("BUY", "SELL"):
            raise errors.VenueError(-1117, "Invalid side.")
        if type not in ORDER_TYPES:
            raise errors.VenueError(-1116, "Invalid orderType.")
        market = type == "MARKET"
        if market:
            if quantity is None and quote_order_qty is None:
                raise errors.VenueError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            if quantity is not None and quote_order_qty is not None:
                raise errors.not_required("quoteOrderQty")
        else:
            if quantity is None:
                raise errors.missing("quantity")
            if price is None:
                raise errors.missing("price")
            if type != "LIMIT_MAKER" and time_in_force is None:
                raise errors.missing("timeInForce")
            if type in STOP_TYPES and stop_price is None:
                raise errors.missing("stopPrice")
        if time_in_force is not None and time_in_force not in ("GTC", "IOC", "FOK"):
            raise errors.VenueError(-1115, "Invalid timeInForce.")
        if client_order_id is not None and any(
            o.client_order_id == client_order_id for o in self.open_orders()
        ):
            raise errors.rejected("Duplicate order sent.")

        bid, ask = feed.bid_ask()
        if market:
            touch = ask if side == "BUY" else bid
            if quantity is None:
                assert quote_order_qty is not None
                check_notional(spec, quote_order_qty, market=True)
                quantity = floor_to_step(quote_order_qty / touch, spec.step_size)
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

        if dry_run:
            return Order(symbol=symbol, order_id=0, client_order_id=client_order_id or "", side=side, type=type,
                         time_in_force=time_in_force or "GTC", price=price or ZERO, orig_qty=quantity,
                         stop_price=stop_price or ZERO, time=self.clock())
        now = self.clock()
        order = Order(
            symbol=symbol, order_id=next(self._order_ids),
            client_order_id=client_order_id or secrets.token_hex(11),
            side=side, type=type, time_in_force=time_in_force or "GTC",
            price=price if price is not None else ZERO, orig_qty=quantity,
            stop_price=stop_price if (stop_price is not None and type in STOP_TYPES) else ZERO,
            time=now, update_time=now, working_time=now, orig_quote_order_qty=quote_order_qty or ZERO,
        )
        if self.is_stuck(symbol) and not force and type not in STOP_TYPES and not (
                type == "LIMIT_MAKER" and self._marketable(order, bid, ask)):
            # Stuck venue: accept and lock as a resting order; on_price fills or expires it once unstuck.
            return self._rest(order, ask if market and side == "BUY" else order.price, now)
        if market:
            self._require(spec.quote if side == "BUY" else spec.base,
                          quantity * ask if side == "BUY" else quantity)
            self._accept(order, now)
            self._fill(order, ask if side == "BUY" else bid, maker=False)
            return order

        marketable = (side == "BUY" and ask <= order.price) or (side == "SELL" and bid >= order.price)
        if type in STOP_TYPES:
            if self._stop_triggered(order, feed.price):
                raise errors.rejected("Stop price would trigger immediately.")
            order.is_working = False
            order.working_time = -1
        elif type == "LIMIT_MAKER" and marketable:
            raise errors.rejected("Order would immediately match and take.")
        elif marketable:
            self._require(spec.quote if side == "BUY" else spec.base,
                          quantity * ask if side == "BUY" else quantity)
            self._accept(order, now)
            self._fill(order, ask if side == "BUY" else bid, maker=False)
            return order
        elif order.time_in_force in ("IOC", "FOK"):
            self._accept(order, now)
            self._set_status(order, "EXPIRED", "EXPIRED")
            return order

        return self._rest(order, order.price, now)

    @staticmethod
    def _marketable(order: Order, bid: Decimal, ask: Decimal) -> bool:
        return (order.side == "BUY" and ask <= order.price) or (order.side == "SELL" and bid >= order.price)

    def _rest(self, order: Order, lock_price: Decimal, now: int) -> Order:
        """Accept an order to rest on the book, locking what it may spend."""
        spec = self.feeds[order.symbol].spec
        lock_asset = spec.quote if order.side == "BUY" else spec.base
        lock_amount = order.orig_qty * lock_price if order.side == "BUY" else order.orig_qty
        self._require(lock_asset, lock_amount)
        self._move(lock_asset, -lock_amount, +lock_amount)
        order.locked_asset, order.locked = lock_asset, lock_amount
        self._accept(order, now)
        self._emit(BalanceUpdate((lock_asset,), now))
        return order

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

    def cancel(self, symbol: str, order_id: int | None, client_order_id: str | None,
               cancel_client_id: str | None = None) -> tuple[Order, str]:
        """Cancel an open order (-2011 if unknown or closed); returns it and the cancel request's client id."""
        try:
            order = self.find(symbol, order_id, client_order_id)
        except errors.VenueError:
            raise errors.unknown_order() from None
        if not order.is_open:
            raise errors.unknown_order()
        cancel_id = cancel_client_id or secrets.token_hex(11)
        self._release(order)
        self._set_status(order, "CANCELED", "CANCELED", cancel_client_id=cancel_id)
        if order.locked_asset:
            self._emit(BalanceUpdate((order.locked_asset,), order.update_time))
        return order, cancel_id

    def cancel_all(self, symbol: str) -> list[tuple[Order, str]]:
        """Cancel every open order of a symbol (-2011 if there is none, as Binance answers)."""
        self.feed(symbol)
        orders = self.open_orders(symbol)
        if not orders:
            raise errors.unknown_order()
        return [self.cancel(symbol, o.order_id, None) for o in orders]

    def on_price(self, symbol: str) -> None:
        """Trigger stops and fill resting orders of ``symbol`` that the current price has reached."""
        feed = self.feed(symbol)
        if self.is_stuck(symbol):
            return
        last = feed.price
        bid, ask = feed.bid_ask()
        for order in self.open_orders(symbol):
            if order.type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
                # Accepted while the venue was stuck: take now, or expire as Binance would have at once.
                if order.type == "MARKET" or self._marketable(order, bid, ask):
                    self._fill(order, ask if order.side == "BUY" else bid, maker=False)
                else:
                    self._release(order)
                    self._set_status(order, "EXPIRED", "EXPIRED")
                continue
            if not order.is_working:
                if not self._stop_triggered(order, last):
                    continue
                now = self.clock()
                order.is_working, order.working_time, order.update_time = True, now, now
                self._emit(OrderUpdate(order, "NEW", now))
                if (order.side == "BUY" and ask <= order.price) or (order.side == "SELL" and bid >= order.price):
                    self._release(order)
                    self._fill(order, ask if order.side == "BUY" else bid, maker=False)
                    continue
            if (order.side == "BUY" and last <= order.price) or (order.side == "SELL" and last >= order.price):
                self._fill(order, order.price, maker=True)

    # ----- internals -------------------------------------------------------------------------------------
    @staticmethod
    def _stop_triggered(order: Order, last: Decimal) -> bool:
        # Binance: STOP_LOSS sells when the price falls to the stop, TAKE_PROFIT sells when it rises to it.
        falling = (order.type == "STOP_LOSS_LIMIT") == (order.side == "SELL")
        return last <= order.stop_price if falling else last >= order.stop_price

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
        self._emit(OrderUpdate(order, "NEW", now))

    def _set_status(self, order: Order, status: str, exec_type: str, fill: Fill | None = None,
                    cancel_client_id: str = "") -> None:
        if status not in TRANSITIONS[order.status]:
            raise RuntimeError(f"illegal order transition {order.status} -> {status} for {order.order_id}")
        now = fill.time if fill else self.clock()
        order.status, order.update_time = status, now
        self._emit(OrderUpdate(order, exec_type, now, fill, cancel_client_id))

    def _fill(self, order: Order, price: Decimal, *, maker: bool) -> None:
        """Fill the whole remaining quantity at ``price``; locked funds (if any) pay first."""
        spec = self.feeds[order.symbol].spec
        qty = order.orig_qty - order.executed_qty
        quote = price * qty
        rate = self.maker_fee if maker else self.taker_fee
        if order.side == "BUY":
            commission = (qty * rate).quantize(EIGHT_PLACES, ROUND_HALF_UP)
            fee_asset = spec.base
            paid_from_locked = min(order.locked, quote)
            self._move(spec.quote, -(quote - paid_from_locked), -paid_from_locked)
            order.locked -= paid_from_locked
            self._move(spec.base, qty - commission, ZERO)
        else:
            commission = (quote * rate).quantize(EIGHT_PLACES, ROUND_HALF_UP)
            fee_asset = spec.quote
            from_locked = min(order.locked, qty)
            self._move(spec.base, -(qty - from_locked), -from_locked)
            order.locked -= from_locked
            self._move(spec.quote, quote - commission, ZERO)
        self._release(order)  # a buy that filled below its limit leaves some quote locked
        now = self.clock()
        fill = Fill(next(self._trade_ids), order.order_id, order.symbol, price, qty, quote, commission,
                    fee_asset, now, order.side == "BUY", maker)
        order.executed_qty += qty
        order.cumm_quote_qty += quote
        order.fills.append(fill)
        self.trades.append(fill)
        self._set_status(order, "FILLED", "TRADE", fill)
        self._emit(BalanceUpdate((spec.base, spec.quote), now))
        # The account's fill also prints on the public tape; the buyer is the maker when a resting buy filled.
        feed = self.feeds[order.symbol]
        self._emit(feed.record_trade(price, qty, now, buyer_is_maker=maker == (order.side == "BUY")))

    def _emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            listener(event)
