"""Immutable records the engine publishes (events) and accepts (commands).

Front ends (the TUI, the CLI, scripts) only send commands (``engine.kernel.commands``) and redraw from events
(commands in, events out). High-rate events name a ``coalesce_key``: a reader that falls behind gets only the
latest of each key; every other event (a state change, an alert, an order event) is always delivered.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.kernel import clock


def utcnow() -> datetime:
    """The engine's clock (``engine.kernel.clock``: the wall clock, or the simulator's in a validation run), UTC."""
    return clock.now()


class Severity(str, enum.Enum):
    """Alert severities of the runbooks: INFO (no action), WARN (watch closely), CRIT (act now)."""

    INFO = "INFO"
    WARN = "WARN"
    CRIT = "CRIT"


class OrderStatus(str, enum.Enum):
    """Lifecycle of an order as the engine tracks it; transitions live in ``engine.trading.orders``."""

    NEW = "NEW"  # created and persisted locally, not yet acknowledged by the venue
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class TradingState(str, enum.Enum):
    """Whether the engine may open risk: ACTIVE, REDUCE_ONLY (only shrink positions) or HALTED (nothing new)."""

    ACTIVE = "ACTIVE"
    REDUCE_ONLY = "REDUCE_ONLY"
    HALTED = "HALTED"


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Order:
    """A snapshot of one tracked order."""

    client_id: str
    symbol: str
    side: str  # "buy" | "sell"
    type: str  # "limit" | "market"
    amount: Decimal
    price: Decimal | None
    status: OrderStatus
    filled: Decimal = Decimal(0)
    average: Decimal | None = None
    venue_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    origin: str = "engine"  # who asked for it: a strategy name or "operator"

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def is_protective_stop(self) -> bool:
        """A stop the engine rests at the venue for a position it holds (not an order placed outside the engine):
        known by its type and its client id's prefix, also with no engine running (the kill switch's emergency
        path, ``cockpit status``). Alone, or the stop leg of an OCO."""
        return self.type == STOP_ORDER_TYPE and self.client_id.startswith(STOP_ID_PREFIX)

    @property
    def is_take_profit_leg(self) -> bool:
        """The take-profit leg of an OCO the engine rests at the venue for a position it holds."""
        return self.type == TAKE_PROFIT_ORDER_TYPE and self.client_id.startswith(TAKE_PROFIT_ID_PREFIX)

    @property
    def is_protective(self) -> bool:
        """Either leg of a position's protection at the venue: its stop, or the take-profit paired with it."""
        return self.is_protective_stop or self.is_take_profit_leg

    @property
    def oco_partner(self) -> str:
        """The client id the other leg of this protective order's OCO has (or would have: a lone stop has none)."""
        tail = self.client_id[len(STOP_ID_PREFIX) :]
        return (TAKE_PROFIT_ID_PREFIX if self.is_protective_stop else STOP_ID_PREFIX) + tail

    @property
    def oco_list_id(self) -> str:
        """The client id of the OCO list this protective order belongs to (when it is one's leg)."""
        return OCO_ID_PREFIX + self.client_id[len(STOP_ID_PREFIX) :]


STOP_ORDER_TYPE = "stop_limit"  # a protective stop the engine rests at the venue (``Order.type``)
STOP_ID_PREFIX = "cs-"  # its client id's prefix
# An OCO's take-profit leg (a limit sell at the take-profit, LIMIT_MAKER on Binance): its client id is its stop
# leg's with this prefix instead, and the list's own client id the same with OCO_ID_PREFIX (decision SAF-35).
TAKE_PROFIT_ORDER_TYPE = "take_profit"
TAKE_PROFIT_ID_PREFIX = "ct-"
OCO_ID_PREFIX = "co-"


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order at the venue."""

    trade_id: str
    client_id: str | None
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_asset: str | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset's balance: free to use, locked in orders, and their total."""

    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class Position:
    """A position valued at the last price: spot, the base asset held against the quote; perps, signed (``amount``
    negative for a short) with the venue's leverage, margin, liquidation price and the funding paid, ``last`` then
    being the mark price."""

    symbol: str
    amount: Decimal
    avg_entry: Decimal | None
    last: Decimal | None
    side: str = "long"
    leverage: Decimal | None = None
    margin: Decimal | None = None
    liquidation_price: Decimal | None = None
    funding: Decimal | None = None  # received (+) or paid (-) since the engine first saw the position

    @property
    def value(self) -> Decimal | None:
        """The notional at the last price (positive for a short too)."""
        return None if self.last is None else abs(self.amount) * self.last

    @property
    def liquidation_distance_pct(self) -> Decimal | None:
        """How far the mark is from the liquidation price, in percent of the mark (runbook 002 "Liquidation
        Distance"): the room the price has to move against the position (up for a short, down for a long), negative
        once past it; None without one."""
        if self.liquidation_price is None or not self.last:
            return None
        room = self.liquidation_price - self.last if self.amount < 0 else self.last - self.liquidation_price
        return room / self.last * 100

    @property
    def unrealized_pnl(self) -> Decimal | None:
        if self.last is None or self.avg_entry is None:
            return None
        return (self.last - self.avg_entry) * self.amount


@dataclass(frozen=True, slots=True)
class Alert:
    """Something the operator should know, with a stable code for de-duplication and search."""

    severity: Severity
    code: str
    message: str
    ts: datetime = field(default_factory=utcnow)
    values: Mapping[str, Any] = field(default_factory=dict)  # the readings behind it
    id: int = 0  # assigned by the alert book; stable across restarts (the store's key)
    count: int = 1  # how many times it came within the de-duplication window
    last_ts: datetime | None = None  # when it last came
    acked_by: str | None = None
    acked_at: datetime | None = None
    escalated: bool = False  # a WARN left unacknowledged and raised to CRIT

    @property
    def acked(self) -> bool:
        return self.acked_by is not None


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Event:
    """Base of everything the engine publishes."""

    @property
    def coalesce_key(self) -> Hashable | None:
        """None: deliver every one. A key: a slow reader may get only the newest event with that key."""
        return None


@dataclass(frozen=True, slots=True)
class EngineStarted(Event):
    mode: str
    venue: str
    state: TradingState


@dataclass(frozen=True, slots=True)
class EngineStopped(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class ModeChanged(Event):
    """Orders are sent again (the mode the engine started in) or only decided and logged (dry-run)."""

    previous: str
    mode: str
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class TradingStateChanged(Event):
    previous: TradingState
    state: TradingState
    actor: str
    reason: str
    ts: datetime = field(default_factory=utcnow)
    code: str = ""  # the monitor that tripped it (ws_stale, max_drawdown...), empty for an operator
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderCreated(Event):
    """A new order was persisted locally; the venue has not seen it yet."""

    order: Order


@dataclass(frozen=True, slots=True)
class OrderUpdated(Event):
    """An order changed status or filled amount; ``source`` says who told us (rest, stream, reconcile)."""

    order: Order
    previous: OrderStatus
    source: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FillReceived(Event):
    fill: Fill


@dataclass(frozen=True, slots=True)
class BalancesUpdated(Event):
    balances: tuple[Balance, ...]

    @property
    def coalesce_key(self) -> Hashable:
        return "balances"


@dataclass(frozen=True, slots=True)
class PositionsUpdated(Event):
    positions: tuple[Position, ...]

    @property
    def coalesce_key(self) -> Hashable:
        return "positions"


@dataclass(frozen=True, slots=True)
class TickerUpdated(Event):
    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    ts: datetime

    @property
    def coalesce_key(self) -> Hashable:
        return ("ticker", self.symbol)


@dataclass(frozen=True, slots=True)
class AlertRaised(Event):
    alert: Alert


@dataclass(frozen=True, slots=True)
class AlertUpdated(Event):
    """An alert changed: counted again (``count``), acknowledged (``ack``), escalated to CRIT (``escalated``), or
    sent again because a CRIT is still unacknowledged (``repeat``)."""

    alert: Alert
    change: str


@dataclass(frozen=True, slots=True)
class VenueConnection(Event):
    """Whether the venue's REST and stream connections are up, with a short reason when not."""

    connected: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HealthUpdated(Event):
    """Once a second: stream age, REST latency, errors, breaker, polling, today's PnL and drawdown; the seconds
    since the monitors last completed a pass (and whether that is a stall), and the user stream's own age."""

    market_data_age_s: float | None
    rest_p95_ms: float | None
    rest_errors_today: int
    ws_reconnects_today: int
    breaker: str | None
    polling: bool
    streams_down: tuple[str, ...]
    day_pnl: Decimal
    drawdown_pct: Decimal
    monitors_age_s: float | None = None
    monitors_stalled: bool = False
    user_stream_age_s: float | None = None
    chat: tuple[str, ...] = ()  # each chat bot and its state: "telegram connected", "slack failing"

    @property
    def coalesce_key(self) -> Hashable:
        return "health"


@dataclass(frozen=True, slots=True)
class CommandAudited(Event):
    """One command carried out: who asked, why, the values behind it, the result and how long it took."""

    command: str
    actor: str
    reason: str
    args: Mapping[str, Any]
    values: Mapping[str, Any]
    ok: bool
    result: str
    duration_ms: float
    kill_switch: bool = False
    ts: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class OrderRefused(Event):
    """An order the checks turned away before anything was stored or sent."""

    actor: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal | None
    reason: str
    ts: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class RoundTripClosed(Event):
    """A position opened and closed again, with its realised PnL and who opened it."""

    symbol: str
    pnl: Decimal
    opened_by: str | None
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class EquitySampled(Event):
    """One point of the equity curve."""

    equity: Decimal
    peak: Decimal
    drawdown_pct: Decimal
    ts: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class StopsChanged(Event):
    """The stop price of every held position, and the take-profit of those whose entry gave one (persisted so a
    restart keeps enforcing them)."""

    stops: Mapping[str, Decimal]
    take_profits: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StopsSuspended(Event):
    """Protective orders at the venue suspended (``reason``: what took them, kept until an operator resumes) or
    placed again (``reason`` empty). Persisted: a restart keeps the suspension."""

    reason: str


@dataclass(frozen=True, slots=True)
class DayStatsChanged(Event):
    """The day's counters (fills, wins, losses, PnL, fees, errors...), saved as they change and at roll-over."""

    day: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StrategyGuardChanged(Event):
    """The strategies' on/off state and losing streaks."""

    guard: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class HoldingsChanged(Event):
    """The holdings' baseline per base asset and any mismatch kept for the operator (what the engine's own fills
    account for is not in it: it is recomputed from the stored fills at start)."""

    holdings: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MonitorsChanged(Event):
    """Every monitor's status (OK / WARN / CRIT), value and threshold."""

    monitors: tuple[Mapping[str, Any], ...]

    @property
    def coalesce_key(self) -> Hashable:
        return "monitors"


@dataclass(frozen=True, slots=True)
class NotificationSent(Event):
    """One alert's delivery to one notification target (masked), after its retries."""

    alert_id: int
    target: str
    ok: bool
    attempts: int
    error: str = ""
    ts: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class IncidentChanged(Event):
    """An incident opened, acted on, or recovered (the whole record)."""

    incident: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Persisted(Event):
    """A small fact to keep across a restart under ``key`` (a monitor's latched trip...)."""

    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class ChecklistCompleted(Event):
    """The go/no-go checklist ran (``engine.gate.preflight``): every check with its status and evidence."""

    checklist: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ValidationReported(Event):
    """A paper validation run ended (``engine.core.validation``): its report, and the file it was written to."""

    report: Mapping[str, Any]
    path: str = ""
