"""The public strategy API: what a strategy written outside cockpit imports, and all it may rely on.

A strategy is a subclass of ``Strategy`` in a Python file under a directory of ``[strategy] paths`` (or in an
installed package, registered under the entry point group ``cockpit.strategies``). It declares its symbols, its
timeframe, how many closed candles it needs and its parameters (a ``Params`` model: typed, with defaults and bounds,
set in ``[strategy.params.NAME]`` and validated with the rest of the configuration), and returns ``Intent`` objects
from ``decide(view)``. The engine turns each intent into a command through its one ``execute`` (actor
``strategy:NAME``): the same trading-state table, risk checks and audit as an operator's order. docs/strategies.md
is the manual.

Strategies are pure: no I/O, no clock of their own, no engine. ``decide`` gets a snapshot (``View``) and runs in a
worker thread under a deadline of one step; one that raises or overruns is disabled with an alert, never the engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar, Literal, Protocol, overload

from pydantic import BaseModel, ConfigDict, Field

from engine.kernel.events import Order, Position

__all__ = [
    "Candle",
    "Candles",
    "Field",
    "Intent",
    "Market",
    "Params",
    "Strategy",
    "StrategyStats",
    "View",
]

TIMEFRAMES_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


@dataclass(frozen=True, slots=True)
class Intent:
    """One thing a strategy wants done.

    - ``buy`` / ``sell``: an order; ``quote_amount`` (buy) or ``amount`` (base) sizes it; ``price`` makes it a
      limit order, none a market order; an entry (a buy that opens or adds to a position) must carry ``stop_loss``,
      and may carry ``take_profit`` (above the price): once it fills, the stop and the take-profit rest at the
      venue as one OCO (one sells, the other is cancelled), which protects the position with the engine gone.
    - ``exit``: close the whole position in ``symbol`` at market.
    - ``cancel``: cancel the strategy's own order ``client_id``.
    """

    kind: Literal["buy", "sell", "exit", "cancel"]
    symbol: str
    amount: Decimal | None = None
    quote_amount: Decimal | None = None
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    client_id: str | None = None
    reason: str = ""
    take_profit: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle: its open time (UTC), prices and base volume as Decimal; ``closed`` False while forming."""

    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    closed: bool = True


class Candles(Sequence[Candle]):
    """A symbol's candles at the strategy's timeframe: the closed ones, oldest first (indexing and iterating see only
    these, so an indicator never repaints), and ``forming``, the candle still open (None before the first one)."""

    __slots__ = ("_closed", "forming")

    def __init__(self, closed: Sequence[Candle], forming: Candle | None = None) -> None:
        self._closed = tuple(closed)
        self.forming = forming

    @overload
    def __getitem__(self, index: int) -> Candle: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Candle]: ...
    def __getitem__(self, index: int | slice) -> Candle | Sequence[Candle]:
        return self._closed[index]

    def __len__(self) -> int:
        return len(self._closed)

    def __iter__(self) -> Iterator[Candle]:
        return iter(self._closed)

    def __repr__(self) -> str:
        return f"Candles({len(self._closed)} closed, forming={self.forming!r})"

    def closes(self) -> list[float]:
        """The closed candles' closes as floats, oldest first: what indicator libraries take (decide in floats,
        size orders in Decimal)."""
        return [float(c.close) for c in self._closed]


@dataclass(frozen=True, slots=True)
class StrategyStats:
    """The strategy's own record in this data directory: closed round trips and their realised PnL (the store keeps
    every round trip, so a restart continues the record)."""

    round_trips: int = 0
    wins: int = 0
    losses: int = 0
    consecutive_losses: int = 0
    realised_pnl: Decimal = Decimal(0)

    def after(self, pnl: Decimal) -> StrategyStats:
        """The record with one more closed round trip of ``pnl`` (break-even is neither a win nor a loss, and ends a
        losing streak)."""
        won, lost = pnl > 0, pnl < 0
        return StrategyStats(
            round_trips=self.round_trips + 1,
            wins=self.wins + won,
            losses=self.losses + lost,
            consecutive_losses=self.consecutive_losses + 1 if lost else 0,
            realised_pnl=self.realised_pnl + pnl,
        )

    @property
    def win_rate(self) -> Decimal | None:
        """Wins per closed round trip (0..1), None before the first."""
        return None if not self.round_trips else Decimal(self.wins) / self.round_trips


@dataclass(frozen=True, slots=True)
class Market:
    """What the venue accepts for a symbol, from the market's filters: the smallest amount, the smallest notional
    (price × amount) and the amount's step (an order's amount is rounded down to it before it is checked and sent).
    Ask for less and the order is refused, at every step you ask again."""

    min_amount: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    amount_step: Decimal = Decimal(0)

    def rounded(self, amount: Decimal) -> Decimal:
        """``amount`` rounded down to the step, as the engine rounds an order's amount."""
        step = self.amount_step
        return amount if step <= 0 else (amount / step).to_integral_value(ROUND_DOWN) * step

    def tradable(self, amount: Decimal, price: Decimal) -> bool:
        """Whether an order of ``amount`` at ``price`` passes the venue's minimum amount and notional once rounded
        down to the step (for a buy sized in quote: ``tradable(quote / price, price)``)."""
        amount = self.rounded(amount)
        return amount > 0 and amount >= self.min_amount and amount * price >= self.min_notional


class View(Protocol):
    """What a strategy may read in one step: a snapshot taken before ``decide`` is called."""

    @property
    def now(self) -> datetime:
        """The engine's time of this step (UTC)."""

    @property
    def stats(self) -> StrategyStats:
        """The strategy's own record."""

    def candles(self, symbol: str) -> Candles:
        """OHLCV candles at the strategy's timeframe: at least ``history`` closed ones, plus the forming one."""

    def closes(self, symbol: str) -> Sequence[Decimal]:
        """The last price sampled once per step, oldest first (at most a few hundred): for step-paced strategies."""

    def last(self, symbol: str) -> Decimal | None:
        """The latest price."""

    def position(self, symbol: str) -> Position | None:
        """The position held in ``symbol`` (None when flat)."""

    def open_orders(self, symbol: str) -> Sequence[Order]:
        """This strategy's own open orders in ``symbol`` still working (its entries, sells and exits); not the
        position's protection (``protection``)."""

    def protection(self, symbol: str) -> Sequence[Order]:
        """The position's protective orders resting at the venue in ``symbol``: its stop-loss and, with an OCO, its
        take-profit (``Order.is_protective_stop`` / ``is_take_profit_leg``). The engine places, moves and cancels
        them (an exit frees the position from them); a strategy reads them, it need not manage them."""

    def free(self, asset: str) -> Decimal:
        """The free balance of ``asset`` (an asset of the strategy's symbols)."""

    def market(self, symbol: str) -> Market:
        """The venue's smallest amount and notional for ``symbol``, and its amount step."""


class Params(BaseModel):
    """A strategy's parameters: subclass it with typed fields, defaults and bounds (``Field(14, ge=2, le=100)``).
    ``[strategy.params.NAME]`` sets them; a wrong or unknown key fails the configuration at start."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Strategy:
    """The base of every strategy. Declare the class attributes, write ``decide``.

    - ``name``: unique; also its actor ``strategy:NAME`` and its config table ``[strategy.params.NAME]``;
    - ``symbols``: what it trades (each must be in ``[venue] symbols``); empty: every configured symbol;
    - ``timeframe``: its candles (``1m`` ... ``1d``); None for a strategy that reads no candles;
    - ``history``: closed candles it needs: it is not asked to decide before it has them;
    - ``Params``: its parameters (a ``Params`` subclass); ``self.params`` holds the configured values.
    """

    name: ClassVar[str] = ""
    symbols: tuple[str, ...] = ()
    timeframe: ClassVar[str | None] = "1m"
    history: ClassVar[int] = 50
    Params: ClassVar[type[BaseModel]] = Params

    def __init__(self, params: Any, symbols: tuple[str, ...]) -> None:
        self.params = params
        self.symbols = symbols

    def decide(self, view: View) -> list[Intent]:
        """What to do now; an empty list means nothing."""
        raise NotImplementedError
