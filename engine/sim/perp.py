"""The USDⓈ-M futures account of the simulator: one-way positions, cross and isolated margin, orders, conditional
(algo) orders, funding, liquidation and the countdown cancel-all (dead man's switch).

Money is Decimal throughout. The formulas are Binance's (USDⓈ-M futures docs, "Liquidation" and "Margin"), with the
simplifications recorded in docs/decisions.md (SIM-05): a position's maintenance tier is the one of its current
notional; orders fill whole at the touch (MARKET) or at their price (LIMIT); a liquidation closes at the mark price.

- Mark price: the last price of the shared feed, moved by an active ``mark-divergence`` fault.
- Maintenance margin of a position: ``|notional| * mmr - cum`` of its tier. A cross account is liquidated when the
  cross positions' maintenance margin reaches the cross margin balance (cross wallet + cross unrealised PnL); an
  isolated position when its own reaches its isolated wallet + its unrealised PnL (margin ratio 100 %).
- Liquidation price (one-way): ``(WB - TMM1 + UPNL1 + cum - side * qty * entry) / (qty * mmr - side * qty)``, WB the
  cross wallet (cross) or the isolated wallet (isolated), TMM1 / UPNL1 the other cross positions' maintenance margin
  and unrealised PnL (zero when isolated), side +1 long / -1 short: the mark price at which the ratio reaches 100 %.
- Funding: at each funding time every open position pays ``positionAmt * mark * rate`` (received when negative).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from . import errors
from .market import PriceFeed, round_to_step
from .perpmarket import PerpSpec, perp_spec

if TYPE_CHECKING:
    from .faults import FaultBook

ZERO = Decimal(0)
EIGHT_HOURS_MS = 8 * 60 * 60 * 1000
DEFAULT_FUNDING_RATE = Decimal("0.0001")
DEFAULT_LEVERAGE = 20
PRICE_PLACES = Decimal("0.00000001")

ORDER_TYPES = ("LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
ALGO_TYPES = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"})
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})
# Order status transitions (one table per state machine): an illegal one is a bug and raises.
TRANSITIONS: dict[str, frozenset[str]] = {
    "NEW": frozenset({"PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"}),
    "PARTIALLY_FILLED": frozenset({"FILLED", "CANCELED", "EXPIRED"}),
    "FILLED": frozenset(),
    "CANCELED": frozenset(),
    "EXPIRED": frozenset(),
}
ALGO_TRANSITIONS: dict[str, frozenset[str]] = {
    "NEW": frozenset({"TRIGGERED", "CANCELED", "EXPIRED"}),
    "TRIGGERED": frozenset({"FINISHED", "EXPIRED"}),
    "FINISHED": frozenset(),
    "CANCELED": frozenset(),
    "EXPIRED": frozenset(),
}


def sign_of(side: str) -> int:
    """+1 for BUY, -1 for SELL."""
    return 1 if side == "BUY" else -1


@dataclass
class Position:
    """One symbol's one-way position (``amt`` signed: negative is short) and its settings."""

    symbol: str
    amt: Decimal = ZERO
    entry: Decimal = ZERO
    leverage: int = DEFAULT_LEVERAGE
    margin_type: str = "CROSSED"  # or ISOLATED
    isolated_wallet: Decimal = ZERO
    realized: Decimal = ZERO  # accumulated realised PnL (ACCOUNT_UPDATE ``cr``)
    update_time: int = 0

    @property
    def isolated(self) -> bool:
        """Isolated margin."""
        return self.margin_type == "ISOLATED"


@dataclass
class PerpOrder:
    """Venue-side state of one order of /fapi/v1/order (a triggered algo order becomes one too)."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    time: int
    reduce_only: bool = False
    close_position: bool = False
    stop_price: Decimal = ZERO
    orig_type: str = ""
    working_type: str = "CONTRACT_PRICE"
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    liquidation: bool = False

    @property
    def is_open(self) -> bool:
        """Still working."""
        return self.status in OPEN_STATUSES

    @property
    def avg_price(self) -> Decimal:
        """Average fill price (zero before a fill)."""
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO


@dataclass
class AlgoOrder:
    """A conditional order of /fapi/v1/algoOrder (algoType CONDITIONAL), waiting for its trigger price."""

    symbol: str
    algo_id: int
    client_algo_id: str
    side: str
    order_type: str
    quantity: Decimal
    trigger_price: Decimal
    price: Decimal
    time_in_force: str
    reduce_only: bool
    close_position: bool
    working_type: str
    create_time: int
    status: str = "NEW"
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: int | None = None
    fail_reason: str = ""

    @property
    def is_open(self) -> bool:
        """Still waiting for its trigger."""
        return self.status == "NEW"


@dataclass
class PerpFill:
    """One execution of the futures account (GET /fapi/v1/userTrades)."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    realized_pnl: Decimal
    commission: Decimal
    time: int
    maker: bool


@dataclass
class Income:
    """One row of GET /fapi/v1/income."""

    tran_id: int
    symbol: str
    income_type: str  # FUNDING_FEE, COMMISSION, REALIZED_PNL, INSURANCE_CLEAR, TRANSFER
    income: Decimal
    time: int
    trade_id: str = ""
    info: str = ""


@dataclass(frozen=True)
class PerpOrderUpdate:
    """ORDER_TRADE_UPDATE: ``exec_type`` NEW, TRADE, CANCELED, EXPIRED or CALCULATED (a liquidation's fill)."""

    order: PerpOrder
    exec_type: str
    time: int
    fill: PerpFill | None = None


@dataclass(frozen=True)
class PerpAccountUpdate:
    """ACCOUNT_UPDATE: the wallet and these symbols' positions changed, for ``reason`` (ORDER, FUNDING_FEE, ...)."""

    reason: str
    symbols: tuple[str, ...]
    time: int


@dataclass(frozen=True)
class PerpAlgoUpdate:
    """ALGO_UPDATE: a conditional order changed state."""

    algo: AlgoOrder
    time: int


PerpEvent = PerpOrderUpdate | PerpAccountUpdate | PerpAlgoUpdate


@dataclass
class Countdown:
    """A symbol's countdownCancelAll timer (server time, ms)."""

    countdown_ms: int
    deadline_ms: int


@dataclass
class FundingRow:
    """One settled funding (GET /fapi/v1/fundingRate)."""

    symbol: str
    rate: Decimal
    time: int
    mark: Decimal


@dataclass
class PerpAccount:
    """The futures wallet (USDT) and the account's record."""

    wallet: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    update_time: int = 0


class PerpEngine:
    """The USDⓈ-M futures account on the simulator's feeds; publishes events to ``listeners`` synchronously."""

    def __init__(
        self,
        feeds: dict[str, PriceFeed],
        *,
        wallet: Decimal,
        clock: Callable[[], int],
        server_clock: Callable[[], int],
        faults: FaultBook,
        taker_fee: Decimal = Decimal("0.0005"),
        maker_fee: Decimal = Decimal("0.0002"),
        funding_rate: Decimal = DEFAULT_FUNDING_RATE,
        funding_interval_ms: int = EIGHT_HOURS_MS,
    ) -> None:
        self.feeds = feeds
        self.specs: dict[str, PerpSpec] = {s: perp_spec(f.spec) for s, f in feeds.items()}
        self.clock = clock
        self.server_clock = server_clock
        self.faults = faults
        self.taker_fee = taker_fee
        self.maker_fee = maker_fee
        self.funding_rate = funding_rate
        self.funding_interval_ms = funding_interval_ms
        now = clock()
        self.account = PerpAccount(wallet=Decimal(wallet), update_time=now)
        for symbol in feeds:
            self.account.positions[symbol] = Position(symbol)
        self.orders: dict[int, PerpOrder] = {}
        self._open: dict[int, PerpOrder] = {}  # the working ones, so a tick does not walk every order ever placed
        self.algos: dict[int, AlgoOrder] = {}
        self.fills: list[PerpFill] = []
        self.income: list[Income] = []
        self.funding_history: list[FundingRow] = []
        self.countdowns: dict[str, Countdown] = {}
        self.next_funding_ms = self._align_funding(now)
        self.listeners: list[Callable[[PerpEvent], None]] = []
        self.is_stuck: Callable[[str], bool] = lambda symbol: False
        self._order_ids = itertools.count(1)
        self._algo_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._tran_ids = itertools.count(1)

    # ----- prices ----------------------------------------------------------------------------------------
    def spec(self, symbol: str) -> PerpSpec:
        """The contract of a listed symbol, or -1121."""
        spec = self.specs.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def last(self, symbol: str) -> Decimal:
        """Last price (the shared feed)."""
        return self.feeds[symbol].price

    def mark(self, symbol: str) -> Decimal:
        """Mark price: the last price, moved by ``percent`` while a ``mark-divergence`` fault is active."""
        last = self.last(symbol)
        fault = self.faults.is_active("mark-divergence", symbol=symbol)
        if fault is None:
            return last
        moved = last * (1 + Decimal(fault.options["percent"]) / 100)
        return round_to_step(moved, self.specs[symbol].tick_size)

    def next_rate(self, symbol: str) -> Decimal:
        """The funding rate the next funding time will charge (a ``funding-spike`` fault's rate while active)."""
        fault = self.faults.is_active("funding-spike", symbol=symbol)
        return Decimal(fault.options["rate"]) if fault is not None else self.funding_rate

    # ----- margin arithmetic -----------------------------------------------------------------------------
    def position(self, symbol: str) -> Position:
        """The position record of a listed symbol (-1121 otherwise)."""
        self.spec(symbol)
        return self.account.positions[symbol]

    def upnl(self, pos: Position) -> Decimal:
        """Unrealised PnL at the mark price."""
        return pos.amt * (self.mark(pos.symbol) - pos.entry) if pos.amt else ZERO

    def notional(self, pos: Position) -> Decimal:
        """Signed notional at the mark price."""
        return pos.amt * self.mark(pos.symbol)

    def maint_margin(self, pos: Position) -> Decimal:
        """Maintenance margin of the position's tier."""
        if not pos.amt:
            return ZERO
        size = abs(self.notional(pos))
        tier = self.specs[pos.symbol].bracket(size)
        return max(size * tier.mmr - tier.cum, ZERO)

    def initial_margin(self, pos: Position) -> Decimal:
        """Position initial margin: |notional| / leverage."""
        return abs(self.notional(pos)) / pos.leverage

    def open_order_margin(self, symbol: str | None = None) -> Decimal:
        """Initial margin held by working orders that may increase a position."""
        total = ZERO
        for order in self._open.values():
            if not order.reduce_only and not order.close_position:
                if symbol is None or order.symbol == symbol:
                    lev = self.account.positions[order.symbol].leverage
                    price = order.price or self.last(order.symbol)
                    total += (order.orig_qty - order.executed_qty) * price / lev
        return total

    def isolated_wallets(self) -> Decimal:
        """Sum of the isolated positions' wallets."""
        return sum((p.isolated_wallet for p in self.account.positions.values() if p.isolated), ZERO)

    def cross_wallet(self) -> Decimal:
        """Wallet balance less the isolated wallets."""
        return self.account.wallet - self.isolated_wallets()

    def cross_positions(self) -> list[Position]:
        """Open cross-margin positions."""
        return [p for p in self.account.positions.values() if p.amt and not p.isolated]

    def total_upnl(self) -> Decimal:
        """Unrealised PnL of every position."""
        return sum((self.upnl(p) for p in self.account.positions.values()), ZERO)

    def available(self) -> Decimal:
        """Available balance: cross wallet + cross unrealised PnL - cross initial margin - open-order margin."""
        cross = self.cross_positions()
        value = (
            self.cross_wallet()
            + sum((self.upnl(p) for p in cross), ZERO)
            - sum((self.initial_margin(p) for p in cross), ZERO)
            - self.open_order_margin()
        )
        return max(value, ZERO)

    def liquidation_price(self, pos: Position) -> Decimal:
        """Binance's one-way liquidation price (module docstring); zero when there is none."""
        if not pos.amt:
            return ZERO
        qty = abs(pos.amt)
        side = 1 if pos.amt > 0 else -1
        tier = self.specs[pos.symbol].bracket(abs(self.notional(pos)))
        if pos.isolated:
            wallet, others_mm, others_upnl = pos.isolated_wallet, ZERO, ZERO
        else:
            others = [p for p in self.cross_positions() if p.symbol != pos.symbol]
            wallet = self.cross_wallet()
            others_mm = sum((self.maint_margin(p) for p in others), ZERO)
            others_upnl = sum((self.upnl(p) for p in others), ZERO)
        numerator = wallet - others_mm + others_upnl + tier.cum - side * qty * pos.entry
        denominator = qty * tier.mmr - side * qty
        if not denominator:
            return ZERO
        price = numerator / denominator
        return price.quantize(PRICE_PLACES, ROUND_HALF_EVEN) if price > 0 else ZERO

    # ----- settings --------------------------------------------------------------------------------------
    def set_leverage(self, symbol: str, leverage: int) -> tuple[int, Decimal]:
        """POST /fapi/v1/leverage: returns (leverage, max notional at it)."""
        spec, pos = self.spec(symbol), self.position(symbol)
        if not 1 <= leverage <= spec.max_leverage:
            raise errors.VenueError(-4028, f"Leverage {leverage} is not valid")
        if pos.amt and abs(self.notional(pos)) > spec.max_notional(leverage):
            raise errors.VenueError(-2027, "Exceeded the maximum allowable position at current leverage.")
        if pos.isolated and pos.amt:
            # Raising the margin an isolated position needs comes out of the cross wallet.
            needed = abs(pos.amt) * pos.entry / leverage
            if needed > pos.isolated_wallet and needed - pos.isolated_wallet > self.available():
                raise errors.VenueError(-2019, "Margin is insufficient.")
            pos.isolated_wallet = max(pos.isolated_wallet, needed)
        pos.leverage = leverage
        return leverage, spec.max_notional(leverage)

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        """POST /fapi/v1/marginType (ISOLATED or CROSSED)."""
        pos = self.position(symbol)
        margin_type = margin_type.upper()
        if margin_type == "CROSS":
            margin_type = "CROSSED"
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise errors.illegal("marginType", "ISOLATED, CROSSED")
        if margin_type == pos.margin_type:
            raise errors.VenueError(-4046, "No need to change margin type.")
        if pos.amt:
            raise errors.VenueError(-4048, "Margin type cannot be changed if there exists position.")
        if any(o.symbol == symbol for o in self._open.values()):
            raise errors.VenueError(-4047, "Margin type cannot be changed if there exists open orders.")
        pos.margin_type = margin_type
        self._emit(PerpAccountUpdate("MARGIN_TYPE_CHANGE", (symbol,), self.clock()))

    # ----- orders ----------------------------------------------------------------------------------------
    def find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> PerpOrder:
        """An order of ``symbol`` by id or client id, or -2013."""
        for order in reversed(list(self.orders.values())):
            if order.symbol == symbol and (
                (order_id is not None and order.order_id == order_id)
                or (order_id is None and order.client_order_id == client_order_id)
            ):
                return order
        raise errors.order_does_not_exist()

    def find_algo(self, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder:
        """A conditional order by algoId or clientAlgoId, or -2013."""
        for algo in reversed(list(self.algos.values())):
            if (algo_id is not None and algo.algo_id == algo_id) or (
                algo_id is None and algo.client_algo_id == client_algo_id
            ):
                return algo
        raise errors.order_does_not_exist()

    def open_orders(self, symbol: str | None = None) -> list[PerpOrder]:
        """Working orders, oldest first."""
        return [o for o in self._open.values() if symbol is None or o.symbol == symbol]

    def open_algos(self, symbol: str | None = None) -> list[AlgoOrder]:
        """Conditional orders waiting for their trigger."""
        return [a for a in self.algos.values() if a.is_open and (symbol is None or a.symbol == symbol)]

    def _check_filters(
        self, spec: PerpSpec, order_type: str, qty: Decimal, price: Decimal, reduce_only: bool, market: bool
    ) -> None:
        if qty <= 0:
            raise errors.VenueError(-4003, "Quantity less than or equal to zero.")
        if (qty / spec.step_size) % 1:
            raise errors.VenueError(-1111, "Precision is over the maximum defined for this asset.")
        if qty < spec.min_qty:
            raise errors.filter_failure("LOT_SIZE")
        if qty > (spec.market_max_qty if market else spec.max_qty):
            raise errors.VenueError(-4005, "Quantity greater than max quantity.")
        if not market:
            if price <= 0:
                raise errors.VenueError(-4014, "Price not increased by tick size.")
            if (price / spec.tick_size) % 1:
                raise errors.VenueError(-4014, "Price not increased by tick size.")
            if not spec.min_price <= price <= spec.max_price:
                raise errors.filter_failure("PRICE_FILTER")
        reference = price if price else self.last(spec.symbol)
        if not reduce_only and qty * reference < spec.min_notional:
            raise errors.VenueError(
                -4164,
                f"Order's notional must be no smaller than {spec.min_notional:f} (unless you choose reduce only).",
            )

    def _check_reduce_only(self, pos: Position, side: str, qty: Decimal) -> None:
        """-2022 unless the order only reduces the position (it would open or flip it otherwise)."""
        if not pos.amt or sign_of(side) * pos.amt > 0 or qty > abs(pos.amt):
            raise errors.VenueError(-2022, "ReduceOnly Order is rejected.")

    def _check_margin(self, pos: Position, side: str, qty: Decimal, price: Decimal) -> None:
        """-2019 / -2027 when the part of the order that opens or adds exposure does not fit."""
        signed = sign_of(side) * qty
        adds = qty if pos.amt * signed >= 0 else max(qty - abs(pos.amt), ZERO)
        if not adds:
            return
        spec = self.specs[pos.symbol]
        after = abs(pos.amt + signed) * price
        if after > spec.max_notional(pos.leverage):
            raise errors.VenueError(-2027, "Exceeded the maximum allowable position at current leverage.")
        needed = adds * price / pos.leverage + adds * price * self.taker_fee
        if needed > self.available():
            raise errors.VenueError(-2019, "Margin is insufficient.")

    def new_order(
        self,
        *,
        symbol: str,
        side: str,
        type: str,
        quantity: Decimal | None,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        reduce_only: bool = False,
        client_order_id: str | None = None,
        force: bool = False,
    ) -> PerpOrder:
        """POST /fapi/v1/order: MARKET or LIMIT (conditional types go to the algo service: -4120). ``force``: skip
        the filter and margin checks (an order placed outside the engine, e.g. the foreign-fill fault)."""
        spec, pos = self.spec(symbol), self.position(symbol)
        if side not in ("BUY", "SELL"):
            raise errors.illegal("side", "BUY, SELL")
        if type in ALGO_TYPES or type == "TRAILING_STOP_MARKET":
            raise errors.VenueError(
                -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
            )
        if type not in ("MARKET", "LIMIT"):
            raise errors.VenueError(-1116, "Invalid orderType.")
        if quantity is None:
            raise errors.missing("quantity")
        market = type == "MARKET"
        if not market:
            if price is None:
                raise errors.missing("price")
            if time_in_force is None:
                raise errors.missing("timeInForce")
            if time_in_force not in ("GTC", "IOC", "FOK", "GTX"):
                raise errors.VenueError(-1115, "Invalid timeInForce.")
        elif price is not None:
            raise errors.not_required("price")
        if client_order_id is not None and any(o.client_order_id == client_order_id for o in self._open.values()):
            raise errors.VenueError(-4015, "Client order id is not valid.")
        if not force:
            self._check_filters(spec, type, quantity, price or ZERO, reduce_only, market)
        bid, ask = self.feeds[symbol].bid_ask()
        touch = ask if side == "BUY" else bid
        if reduce_only:
            self._check_reduce_only(pos, side, quantity)
        elif not force:
            self._check_margin(pos, side, quantity, price if price is not None else touch)
        marketable = market or (price is not None and (price >= ask if side == "BUY" else price <= bid))
        if time_in_force == "GTX" and marketable:
            raise errors.VenueError(
                -5022, "Due to the order could not be executed as maker, the Post Only order will be rejected."
            )
        now = self.clock()
        order = PerpOrder(
            symbol=symbol,
            order_id=next(self._order_ids),
            client_order_id=client_order_id or f"sim{now}{len(self.orders)}",
            side=side,
            type=type,
            time_in_force="GTC" if market else str(time_in_force),
            price=price or ZERO,
            orig_qty=quantity,
            time=now,
            reduce_only=reduce_only,
            orig_type=type,
            update_time=now,
        )
        self.orders[order.order_id] = self._open[order.order_id] = order
        self._emit(PerpOrderUpdate(order, "NEW", now))
        if self.is_stuck(symbol):
            return order
        if marketable:
            self._fill(order, touch, maker=False)
        elif time_in_force in ("IOC", "FOK"):
            self._set_status(order, "EXPIRED", now)
        return order

    def cancel(self, symbol: str, order_id: int | None, client_order_id: str | None) -> PerpOrder:
        """DELETE /fapi/v1/order: -2011 unless the order is still working."""
        self.spec(symbol)
        try:
            order = self.find(symbol, order_id, client_order_id)
        except errors.VenueError:
            raise errors.unknown_order() from None
        if not order.is_open:
            raise errors.unknown_order()
        self._set_status(order, "CANCELED", self.clock())
        return order

    def cancel_all(self, symbol: str) -> list[PerpOrder]:
        """DELETE /fapi/v1/allOpenOrders (and the countdown's expiry): every working order of the matching engine;
        conditional orders live in the algo service and stay (DELETE /fapi/v1/algoOpenOrders), decision SIM-06."""
        self.spec(symbol)
        now = self.clock()
        orders = self.open_orders(symbol)
        for order in orders:
            self._set_status(order, "CANCELED", now)
        return orders

    def cancel_all_algos(self, symbol: str) -> list[AlgoOrder]:
        """DELETE /fapi/v1/algoOpenOrders."""
        now = self.clock()
        algos = self.open_algos(symbol)
        for algo in algos:
            self._set_algo_status(algo, "CANCELED", now)
        return algos

    # ----- conditional (algo) orders ---------------------------------------------------------------------
    def new_algo(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Decimal | None,
        trigger_price: Decimal | None,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        reduce_only: bool = False,
        close_position: bool = False,
        working_type: str = "CONTRACT_PRICE",
        client_algo_id: str | None = None,
    ) -> AlgoOrder:
        """POST /fapi/v1/algoOrder (algoType CONDITIONAL): STOP(_MARKET) / TAKE_PROFIT(_MARKET)."""
        spec, pos = self.spec(symbol), self.position(symbol)
        if side not in ("BUY", "SELL"):
            raise errors.illegal("side", "BUY, SELL")
        if order_type not in ALGO_TYPES:
            raise errors.VenueError(-1116, "Invalid orderType.")
        if trigger_price is None:
            raise errors.missing("triggerPrice")
        if working_type not in ("CONTRACT_PRICE", "MARK_PRICE"):
            raise errors.illegal("workingType", "CONTRACT_PRICE, MARK_PRICE")
        limit = order_type in ("STOP", "TAKE_PROFIT")
        if close_position:
            if limit:
                raise errors.VenueError(-4136, f"Target strategy invalid for orderType {order_type},closePosition true")
            if quantity is not None:
                raise errors.not_required("quantity")
            if reduce_only:
                raise errors.not_required("reduceOnly")
        elif quantity is None:
            raise errors.missing("quantity")
        if limit and price is None:
            raise errors.missing("price")
        if (trigger_price / spec.tick_size) % 1 or trigger_price <= 0:
            raise errors.VenueError(-4014, "Price not increased by tick size.")
        if quantity is not None:
            self._check_filters(spec, order_type, quantity, price or trigger_price, reduce_only, not limit)
            if reduce_only:
                self._check_reduce_only(pos, side, quantity)
        now = self.clock()
        algo = AlgoOrder(
            symbol=symbol,
            algo_id=next(self._algo_ids),
            client_algo_id=client_algo_id or f"simalgo{now}{len(self.algos)}",
            side=side,
            order_type=order_type,
            quantity=quantity or ZERO,
            trigger_price=trigger_price,
            price=price or ZERO,
            time_in_force=time_in_force or "GTC",
            reduce_only=reduce_only,
            close_position=close_position,
            working_type=working_type,
            create_time=now,
            update_time=now,
        )
        if self._triggered(algo):
            raise errors.VenueError(-2021, "Order would immediately trigger.")
        self.algos[algo.algo_id] = algo
        self._emit(PerpAlgoUpdate(algo, now))
        return algo

    def cancel_algo(self, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder:
        """DELETE /fapi/v1/algoOrder: -2011 unless still waiting."""
        try:
            algo = self.find_algo(algo_id, client_algo_id)
        except errors.VenueError:
            raise errors.unknown_order() from None
        if not algo.is_open:
            raise errors.unknown_order()
        self._set_algo_status(algo, "CANCELED", self.clock())
        return algo

    def _triggered(self, algo: AlgoOrder) -> bool:
        price = self.mark(algo.symbol) if algo.working_type == "MARK_PRICE" else self.last(algo.symbol)
        stop = algo.order_type in ("STOP", "STOP_MARKET")
        rising = (algo.side == "BUY") == stop  # a buy stop and a sell take-profit wait for the price to rise
        return price >= algo.trigger_price if rising else price <= algo.trigger_price

    def _trigger(self, algo: AlgoOrder, now: int) -> None:
        pos = self.account.positions[algo.symbol]
        self._set_algo_status(algo, "TRIGGERED", now, trigger=True)
        qty = algo.quantity
        if algo.close_position:
            qty = abs(pos.amt) if pos.amt and sign_of(algo.side) * pos.amt < 0 else ZERO
        reduces = algo.close_position or algo.reduce_only
        if not qty or (reduces and (not pos.amt or sign_of(algo.side) * pos.amt > 0 or qty > abs(pos.amt))):
            algo.fail_reason = "Reduce Only reject"
            self._set_algo_status(algo, "EXPIRED", now)
            return
        market = algo.order_type.endswith("_MARKET")
        order = PerpOrder(
            symbol=algo.symbol,
            order_id=next(self._order_ids),
            client_order_id=algo.client_algo_id,
            side=algo.side,
            type="MARKET" if market else "LIMIT",
            time_in_force="GTC" if market else algo.time_in_force,
            price=ZERO if market else algo.price,
            orig_qty=qty,
            time=now,
            reduce_only=reduces,
            close_position=algo.close_position,
            stop_price=algo.trigger_price,
            orig_type=algo.order_type,
            working_type=algo.working_type,
            update_time=now,
        )
        self.orders[order.order_id] = self._open[order.order_id] = order
        algo.actual_order_id = order.order_id
        self._emit(PerpOrderUpdate(order, "NEW", now))
        self._set_algo_status(algo, "FINISHED", now)
        bid, ask = self.feeds[algo.symbol].bid_ask()
        touch = ask if algo.side == "BUY" else bid
        if market or (algo.price >= ask if algo.side == "BUY" else algo.price <= bid):
            self._fill(order, touch, maker=False)

    # ----- fills -----------------------------------------------------------------------------------------
    def _fill(self, order: PerpOrder, price: Decimal, *, maker: bool, exec_type: str = "TRADE") -> None:
        """Fill what is left of ``order`` at ``price``: position, wallet, income, events."""
        now = self.clock()
        pos = self.account.positions[order.symbol]
        qty = order.orig_qty - order.executed_qty
        if order.reduce_only and not order.liquidation:
            qty = min(qty, abs(pos.amt)) if pos.amt and sign_of(order.side) * pos.amt < 0 else ZERO
            if not qty:
                self._set_status(order, "EXPIRED", now)
                return
        realized = self._apply(pos, sign_of(order.side) * qty, price)
        fee = (qty * price * (self.maker_fee if maker else self.taker_fee)).quantize(PRICE_PLACES)
        self.account.wallet += realized - fee
        self.account.update_time = pos.update_time = now
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.update_time = now
        fill = PerpFill(
            next(self._trade_ids), order.order_id, order.symbol, order.side, price, qty, realized, fee, now, maker
        )
        self.fills.append(fill)
        if realized:
            self._add_income(order.symbol, "REALIZED_PNL", realized, now, str(fill.trade_id))
        if fee:
            self._add_income(order.symbol, "COMMISSION", -fee, now, str(fill.trade_id))
        status = "FILLED" if order.executed_qty >= order.orig_qty else "PARTIALLY_FILLED"
        self._set_status(order, status, now, exec_type=exec_type, fill=fill)
        self._emit(PerpAccountUpdate("ORDER", (order.symbol,), now))
        # A reduce-only order left working that would now open or flip the position expires, as Binance does.
        for other in self.open_orders(order.symbol):
            if other.reduce_only and (not pos.amt or sign_of(other.side) * pos.amt > 0):
                self._set_status(other, "EXPIRED", now)

    def _apply(self, pos: Position, signed_qty: Decimal, price: Decimal) -> Decimal:
        """Move the position by ``signed_qty`` at ``price``; returns the realised PnL."""
        realized = ZERO
        if pos.amt and pos.amt * signed_qty < 0:  # reducing (and perhaps flipping)
            closed = min(abs(signed_qty), abs(pos.amt))
            direction = 1 if pos.amt > 0 else -1
            realized = closed * (price - pos.entry) * direction
            pos.realized += realized
            if pos.isolated:
                pos.isolated_wallet -= pos.isolated_wallet * closed / abs(pos.amt)
            pos.amt += closed * -direction
            signed_qty += closed * direction
            if not pos.amt:
                pos.entry = ZERO
                if pos.isolated:
                    pos.isolated_wallet = ZERO
            if pos.isolated and pos.amt:
                pos.isolated_wallet += realized
        if signed_qty:  # opening or adding
            size = abs(pos.amt) + abs(signed_qty)
            pos.entry = (abs(pos.amt) * pos.entry + abs(signed_qty) * price) / size
            pos.amt += signed_qty
            if pos.isolated:
                pos.isolated_wallet += abs(signed_qty) * price / pos.leverage
        return realized

    def _add_income(self, symbol: str, kind: str, amount: Decimal, now: int, trade_id: str = "") -> None:
        self.income.append(Income(next(self._tran_ids), symbol, kind, amount, now, trade_id))

    def _set_status(
        self, order: PerpOrder, status: str, now: int, *, exec_type: str | None = None, fill: PerpFill | None = None
    ) -> None:
        if status != order.status and status not in TRANSITIONS[order.status]:
            raise RuntimeError(f"order {order.order_id}: {order.status} -> {status} is not a legal transition")
        order.status = status
        order.update_time = now
        if not order.is_open:
            self._open.pop(order.order_id, None)
        self._emit(PerpOrderUpdate(order, exec_type or status, now, fill))

    def _set_algo_status(self, algo: AlgoOrder, status: str, now: int, *, trigger: bool = False) -> None:
        if status not in ALGO_TRANSITIONS[algo.status]:
            raise RuntimeError(f"algo order {algo.algo_id}: {algo.status} -> {status} is not a legal transition")
        algo.status = status
        algo.update_time = now
        if trigger:
            algo.trigger_time = now
        self._emit(PerpAlgoUpdate(algo, now))

    # ----- the venue's own clock ---------------------------------------------------------------------------
    def on_price(self, symbol: str) -> None:
        """The price of ``symbol`` moved: fill crossed limits, trigger conditionals, liquidate what must be."""
        if symbol not in self.specs:
            return
        if not self.is_stuck(symbol):
            bid, ask = self.feeds[symbol].bid_ask()
            for order in self.open_orders(symbol):
                if not order.is_open:  # expired by an earlier fill of this round (reduce-only)
                    continue
                if order.type == "MARKET":
                    self._fill(order, ask if order.side == "BUY" else bid, maker=False)
                elif order.side == "BUY" and ask <= order.price or order.side == "SELL" and bid >= order.price:
                    self._fill(order, order.price, maker=True)
            now = self.clock()
            for algo in self.open_algos(symbol):
                if algo.is_open and self._triggered(algo):
                    self._trigger(algo, now)
        self.check_liquidations()

    def check_liquidations(self) -> list[PerpOrder]:
        """Close every position whose margin ratio reached 100 % at the mark price; returns the closing orders."""
        closed: list[PerpOrder] = []
        for pos in [p for p in self.account.positions.values() if p.amt and p.isolated]:
            if self.maint_margin(pos) >= pos.isolated_wallet + self.upnl(pos):
                closed.append(self._liquidate(pos))
        cross = self.cross_positions()
        if cross:
            maint = sum((self.maint_margin(p) for p in cross), ZERO)
            balance = self.cross_wallet() + sum((self.upnl(p) for p in cross), ZERO)
            if maint >= balance:
                closed.extend(self._liquidate(p) for p in cross)
        return closed

    def _liquidate(self, pos: Position) -> PerpOrder:
        """Close ``pos`` at the mark price as Binance's liquidation engine does: an ``autoclose-`` order, its fill
        reported as CALCULATED. The insurance fund clears the rest (INSURANCE_CLEAR): it takes what is left of an
        isolated margin and covers a loss beyond it, and covers a cross wallet that the close left negative."""
        now = self.clock()
        side = "SELL" if pos.amt > 0 else "BUY"
        price = self.mark(pos.symbol)
        for order in self.open_orders(pos.symbol):
            self._set_status(order, "CANCELED", now)
        order = PerpOrder(
            symbol=pos.symbol,
            order_id=next(self._order_ids),
            client_order_id=f"autoclose-{now}{next(self._trade_ids)}",
            side=side,
            type="LIQUIDATION",
            time_in_force="IOC",
            price=price,
            orig_qty=abs(pos.amt),
            time=now,
            reduce_only=True,
            orig_type="LIQUIDATION",
            update_time=now,
            liquidation=True,
        )
        self.orders[order.order_id] = self._open[order.order_id] = order
        isolated = pos.isolated
        leftover = pos.isolated_wallet + self.upnl(pos) if isolated else ZERO
        self._fill(order, price, maker=False, exec_type="CALCULATED")
        clear = -leftover if isolated else max(-self.account.wallet, ZERO)
        if clear:
            self.account.wallet += clear
            self._add_income(pos.symbol, "INSURANCE_CLEAR", clear, now)
            self._emit(PerpAccountUpdate("INSURANCE_CLEAR", (pos.symbol,), now))
        return order

    # ----- funding ---------------------------------------------------------------------------------------
    def _align_funding(self, now: int) -> int:
        interval = self.funding_interval_ms
        return (now // interval + 1) * interval

    def schedule_funding(self, in_ms: int) -> int:
        """Bring the next funding time to ``in_ms`` from now (market time); returns it."""
        self.next_funding_ms = self.clock() + max(int(in_ms), 0)
        return self.next_funding_ms

    def settle_funding(self) -> list[Income]:
        """Charge funding now on every open position; the next funding time moves on one interval."""
        now = self.clock()
        charged: list[Income] = []
        touched: list[str] = []
        for symbol, pos in self.account.positions.items():
            rate = self.next_rate(symbol)
            mark = self.mark(symbol)
            self.funding_history.append(FundingRow(symbol, rate, now, mark))
            if not pos.amt:
                continue
            fee = (-pos.amt * mark * rate).quantize(PRICE_PLACES)
            self.account.wallet += fee
            if pos.isolated:
                pos.isolated_wallet += fee
            pos.update_time = now
            self._add_income(symbol, "FUNDING_FEE", fee, now)
            charged.append(self.income[-1])
            touched.append(symbol)
        for fault in self.faults.active("funding-spike"):
            self.faults.end(fault, "done")
        self.next_funding_ms = self._align_funding(now)
        if touched:
            self.account.update_time = now
            self._emit(PerpAccountUpdate("FUNDING_FEE", tuple(touched), now))
        self.check_liquidations()
        return charged

    def arm_countdown(self, symbol: str, countdown_ms: int) -> None:
        """POST /fapi/v1/countdownCancelAll: cancel the symbol's orders unless renewed within ``countdown_ms``
        (server time); 0 stops the timer."""
        self.spec(symbol)
        if countdown_ms <= 0:
            self.countdowns.pop(symbol, None)
            return
        self.countdowns[symbol] = Countdown(countdown_ms, self.server_clock() + countdown_ms)

    def expire_countdowns(self) -> list[str]:
        """Cancel every order of each symbol whose countdown ran out (server time); returns those symbols."""
        now_server = self.server_clock()
        expired = [s for s, c in self.countdowns.items() if now_server >= c.deadline_ms]
        for symbol in expired:
            del self.countdowns[symbol]
            self.cancel_all(symbol)
        return expired

    def settle_due_funding(self) -> None:
        """Charge funding if the funding time has come (market time)."""
        if self.clock() >= self.next_funding_ms:
            self.settle_funding()

    def _emit(self, event: PerpEvent) -> None:
        for listener in list(self.listeners):
            listener(event)
