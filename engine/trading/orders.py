"""The order tracker: one transition table, client ids created and stored before an order leaves.

An update that arrives out of order (a REST answer saying OPEN after the stream said FILLED) is stale and
dropped quietly; an update the table forbids (CANCELED then FILLED) is an illegal transition: it is logged
and alerted, never applied (one transition table per state machine).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal

from engine.kernel.bus import EventBus
from engine.kernel.events import STOP_ID_PREFIX as STOP_ID_PREFIX
from engine.kernel.events import STOP_ORDER_TYPE as STOP_ORDER_TYPE
from engine.kernel.events import TAKE_PROFIT_ID_PREFIX as TAKE_PROFIT_ID_PREFIX
from engine.kernel.events import TAKE_PROFIT_ORDER_TYPE as TAKE_PROFIT_ORDER_TYPE
from engine.kernel.events import (
    Alert,
    AlertRaised,
    Order,
    OrderCreated,
    OrderStatus,
    OrderUpdated,
    Severity,
    utcnow,
)

log = logging.getLogger(__name__)

S = OrderStatus
# current status -> statuses it may move to. A status may "move" to itself when more is filled.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}),
    S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}
# How far along the lifecycle a status is; a lower rank than the current one is stale news.
_RANK = {S.NEW: 0, S.OPEN: 1, S.PARTIALLY_FILLED: 2}


def _rank(status: OrderStatus) -> int:
    return _RANK.get(status, 3)


def new_client_id(prefix: str = "ck-") -> str:
    """A venue-safe client order id (Binance allows ``[A-Za-z0-9-_]{1,36}``)."""
    return prefix + uuid.uuid4().hex[:24]


class OrderTracker:
    """Holds every order the engine knows, applies updates through the transition table, publishes events."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._orders: dict[str, Order] = {}
        # The open ones, kept apart: exposure, cancel-all and the monitors ask for them on every order, and every
        # order ever tracked (restored from the store) would make each of those asks longer.
        self._open: dict[str, Order] = {}
        # The same by symbol: the stop checks ask for one symbol's orders on every price and balance change, and
        # a scan of every open order for each of 50 symbols (1,000 orders resting) took most of a core.
        self._open_by_symbol: dict[str, dict[str, Order]] = {}
        # The open protective orders (stops, OCO legs) by symbol: the venue-stop check asks for them on every order
        # report, and a scan of the symbol's open orders made a cancel-all of n orders cost n² (issue 27).
        self._protective: dict[str, dict[str, Order]] = {}
        # The open sells that are not protective, by symbol: what a position's stop must leave out (``wanted``).
        self._sells: dict[str, dict[str, Order]] = {}

    def _keep(self, order: Order) -> None:
        self._orders[order.client_id] = order
        if order.status.is_open:
            self._open[order.client_id] = order
            self._open_by_symbol.setdefault(order.symbol, {})[order.client_id] = order
            if order.is_protective:
                self._protective.setdefault(order.symbol, {})[order.client_id] = order
            elif order.side == "sell":
                self._sells.setdefault(order.symbol, {})[order.client_id] = order
        else:
            self._open.pop(order.client_id, None)
            self._open_by_symbol.get(order.symbol, {}).pop(order.client_id, None)
            self._protective.get(order.symbol, {}).pop(order.client_id, None)
            self._sells.get(order.symbol, {}).pop(order.client_id, None)

    def load(self, orders: Iterable[Order]) -> None:
        """Adopt orders restored from the store (no events: they are already recorded)."""
        for order in orders:
            self._keep(order)

    def get(self, client_id: str) -> Order | None:
        return self._orders.get(client_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """The open orders, of ``symbol`` only when given."""
        if symbol is None:
            return list(self._open.values())
        return list(self._open_by_symbol.get(symbol, {}).values())

    def protective_orders(self, symbol: str) -> list[Order]:
        """The open protective orders of ``symbol`` (its stop, or an OCO's two legs): no scan of its other orders."""
        return list(self._protective.get(symbol, {}).values())

    def open_sells(self, symbol: str) -> list[Order]:
        """The open sells of ``symbol`` that are not protective (what they lock, a stop cannot sell)."""
        return list(self._sells.get(symbol, {}).values())

    def all(self) -> list[Order]:
        return list(self._orders.values())

    def create(
        self,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal,
        price: Decimal | None,
        origin: str,
        client_id: str | None = None,
    ) -> Order:
        """Record a new order with a fresh client id (or ``client_id``: an OCO's legs share theirs); the store has
        it before this returns."""
        order = Order(
            client_id=client_id or new_client_id(STOP_ID_PREFIX if type_ == STOP_ORDER_TYPE else "ck-"),
            symbol=symbol,
            side=side,
            type=type_,
            amount=amount,
            price=price,
            status=S.NEW,
            origin=origin,
        )
        self._keep(order)
        self._bus.publish(OrderCreated(order))
        return order

    def adopt(self, order: Order, source: str = "reconcile") -> Order:
        """Start tracking an order found at the venue that this engine did not place."""
        self._keep(order)
        self._bus.publish(OrderUpdated(order, S.NEW, source, "found at the venue; adopted"))
        return order

    def apply(
        self,
        client_id: str,
        status: OrderStatus,
        *,
        source: str,
        filled: Decimal | None = None,
        average: Decimal | None = None,
        venue_id: str | None = None,
        detail: str = "",
    ) -> Order | None:
        """Apply one status report; return the new snapshot, or None if it was unknown, stale or illegal."""
        current = self._orders.get(client_id)
        if current is None:
            log.info("update for unknown order %s (%s) from %s ignored", client_id, status.value, source)
            return None
        new_filled = current.filled if filled is None else filled
        if status == current.status and new_filled == current.filled:
            if venue_id and not current.venue_id:
                current = replace(current, venue_id=venue_id)
                self._keep(current)
            return None  # the same news again
        if new_filled < current.filled or _rank(status) < _rank(current.status):
            log.debug("stale %s update for %s from %s dropped", status.value, client_id, source)
            return None
        if status not in TRANSITIONS[current.status]:
            self._illegal(current, status, source)
            return None
        updated = replace(
            current,
            status=status,
            filled=new_filled,
            average=average if average is not None else current.average,
            venue_id=venue_id or current.venue_id,
            updated_at=utcnow(),
        )
        self._keep(updated)
        self._bus.publish(OrderUpdated(updated, current.status, source, detail))
        return updated

    def _illegal(self, current: Order, status: OrderStatus, source: str) -> None:
        msg = (
            f"order {current.client_id} {current.symbol}: illegal transition "
            f"{current.status.value} -> {status.value} reported by {source}; not applied"
        )
        log.warning(msg)
        self._bus.publish(AlertRaised(Alert(Severity.WARN, "ORDER_ILLEGAL_TRANSITION", msg)))
