"""Venue-side records of the paper account: orders, fills, and the events the matching engine publishes."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .market import PublicTrade

ZERO = Decimal(0)

# Order status transitions (one table per state machine): an illegal one is a bug and raises.
TRANSITIONS: dict[str, frozenset[str]] = {
    "NEW": frozenset({"PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"}),
    "PARTIALLY_FILLED": frozenset({"PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"}),
    "FILLED": frozenset(),
    "CANCELED": frozenset(),
    "EXPIRED": frozenset(),
}
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
# Conditional orders wait for their stopPrice; the two without _LIMIT become MARKET orders when triggered.
STOP_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
STOP_LOSS_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT"})
MARKET_TYPES = frozenset({"MARKET", "STOP_LOSS", "TAKE_PROFIT"})
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
# OCO legs (POST /api/v3/orderList/oco): one a take-profit kind, the other a stop-loss kind.
OCO_PROFIT_TYPES = frozenset({"LIMIT_MAKER", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})


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
    # Accepted while the venue was stuck: fills (or expires) as a taker once it is not.
    pending_take: bool = False
    order_list_id: int = -1
    fills: list[Fill] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """NEW and PARTIALLY_FILLED orders (working or waiting for their stop) are open."""
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        """Quantity not filled yet."""
        return self.orig_qty - self.executed_qty

    @property
    def rests_on_book(self) -> bool:
        """A working limit order resting on the book (part of the depth others see)."""
        return self.is_open and self.is_working and not self.pending_take and not self.is_market

    @property
    def is_market(self) -> bool:
        """Takes at market when working: MARKET, and STOP_LOSS / TAKE_PROFIT once triggered."""
        return self.type in MARKET_TYPES


@dataclass
class OrderList:
    """An OCO order list: two legs sharing one quantity; when one starts working the other expires."""

    order_list_id: int
    list_client_order_id: str
    symbol: str
    order_ids: tuple[int, ...]
    transaction_time: int
    list_status_type: str = "EXEC_STARTED"
    list_order_status: str = "EXECUTING"

    @property
    def is_open(self) -> bool:
        """Still executing (no leg has finished the list)."""
        return self.list_order_status == "EXECUTING"


@dataclass(frozen=True)
class OrderUpdate:
    """An order changed state: ``exec_type`` is NEW, TRADE, CANCELED or EXPIRED (executionReport ``x``).
    Listeners read the order's totals at once: the Order object keeps changing."""

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


@dataclass(frozen=True)
class BookChanged:
    """The account's orders changed the book of a symbol (depth and book-ticker streams)."""

    symbol: str


@dataclass(frozen=True)
class ListUpdate:
    """An order list changed state (user-data ``listStatus``)."""

    order_list: OrderList
    time: int


Event = OrderUpdate | ListUpdate | BalanceUpdate | BalanceDelta | PublicTrade | BookChanged
