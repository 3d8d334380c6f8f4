"""Immutable records the engine publishes (events) and accepts (commands).

Front ends (the TUI, the CLI, scripts) only send commands and redraw from events (STYLE.md, practice 2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal


def utcnow() -> datetime:
    """The engine's wall clock, always timezone-aware UTC."""
    return datetime.now(timezone.utc)


class Severity(str, enum.Enum):
    """Alert severities of the runbooks: INFO (no action), WARN (watch closely), CRIT (act now)."""

    INFO = "INFO"
    WARN = "WARN"
    CRIT = "CRIT"


class OrderStatus(str, enum.Enum):
    """Lifecycle of an order as the engine tracks it; transitions live in ``engine.orders``."""

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


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


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
    """A spot position: the base asset held against the quote, valued at the last price."""

    symbol: str
    amount: Decimal
    avg_entry: Decimal | None
    last: Decimal | None

    @property
    def value(self) -> Decimal | None:
        return None if self.last is None else self.amount * self.last

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


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Event:
    """Base of everything the engine publishes."""


@dataclass(frozen=True, slots=True)
class EngineStarted(Event):
    mode: str
    venue: str
    state: TradingState


@dataclass(frozen=True, slots=True)
class EngineStopped(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class TradingStateChanged(Event):
    previous: TradingState
    state: TradingState
    actor: str
    reason: str
    ts: datetime = field(default_factory=utcnow)


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


@dataclass(frozen=True, slots=True)
class PositionsUpdated(Event):
    positions: tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class TickerUpdated(Event):
    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    ts: datetime


@dataclass(frozen=True, slots=True)
class AlertRaised(Event):
    alert: Alert


@dataclass(frozen=True, slots=True)
class VenueConnection(Event):
    """Whether the venue's REST and stream connections are up, with a short reason when not."""

    connected: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HealthUpdated(Event):
    """Once a second: stream age, REST latency, errors, breaker, polling, today's PnL and drawdown."""

    market_data_age_s: float | None
    rest_p95_ms: float | None
    rest_errors_today: int
    ws_reconnects_today: int
    breaker: str | None
    polling: bool
    streams_down: tuple[str, ...]
    day_pnl: Decimal
    drawdown_pct: Decimal


# ---------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Command:
    """Base of everything front ends may ask of the engine; ``actor`` says who asked."""

    actor: str = "operator"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Halt(Command):
    """Stop opening new orders at once; latched and persisted until an operator resumes."""


@dataclass(frozen=True, slots=True)
class Resume(Command):
    """Clear a halt and return to ACTIVE."""


@dataclass(frozen=True, slots=True)
class CancelAll(Command):
    """Cancel every open order at the venue, for every configured symbol."""


@dataclass(frozen=True, slots=True)
class ReduceOnly(Command):
    """Only orders that shrink a position may go out (runbook 002: RISK_REDUCE_ONLY_MODE)."""


@dataclass(frozen=True, slots=True)
class PlaceOrder(Command):
    """One order; a buy needs ``stop_loss`` while ``[risk] require_stop_loss`` is on."""

    symbol: str = ""
    side: str = "buy"
    type: str = "limit"
    amount: Decimal = Decimal(0)
    price: Decimal | None = None
    stop_loss: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SetStrategy(Command):
    """Enable or disable a strategy by name."""

    name: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CancelOrder(Command):
    client_id: str = ""
