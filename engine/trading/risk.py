"""Pre-trade checks: each returns None when an order may go, or a sentence saying why it may not.

Checks run before an order is persisted or sent, for the operator and strategies alike. The limits and
their runbook sources are in ``engine.kernel.config.RiskConfig``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from engine.kernel import clock as engine_clock
from engine.kernel.config import RiskConfig

# No venue trades or prices anything beyond this: a number over it is a typo (or 1e309), refused by name before any
# arithmetic on it can overflow the venue's precision rules.
LARGEST = Decimal("1e15")


def number_refusal(name: str, value: Decimal | None) -> str | None:
    """Why ``value`` cannot be an order's ``name`` (amount, price, stop-loss), or None; None values are not given."""
    if value is None:
        return None
    if not value.is_finite():
        return f"{name} {value} is not a finite number"
    if value <= 0:
        return f"{name} must be positive, not {value}"
    if value > LARGEST:
        return f"{name} {value} is out of range (at most {LARGEST:,.0f})"
    return None


def pre_trade_refusal(
    connected: bool,
    symbols: tuple[str, ...],
    symbol: str,
    side: str,
    amount: Decimal,
    price: Decimal | None = None,
    stop_loss: Decimal | None = None,
) -> str | None:
    """The request's own sanity, then the connection (what the trading state permits is checked before, from its
    table). An operator's bad number is a refusal that names the field, never an error that pages people."""
    if symbol not in symbols:
        return f"{symbol} is not a configured symbol ({', '.join(symbols)})"
    if side not in ("buy", "sell"):
        return f"side must be buy or sell, not {side!r}"
    for name, value in (("amount", amount), ("price", price), ("stop-loss", stop_loss)):
        refusal = number_refusal(name, value)
        if refusal is not None:
            return refusal
    if not connected:
        return "venue not connected"
    return None


def take_profit_refusal(
    side: str, stop_loss: Decimal | None, take_profit: Decimal | None, reference_price: Decimal | None
) -> str | None:
    """An entry's take-profit: a number, on a buy, with a stop under it and above the entry price (it rests with the
    stop as one OCO at the venue: a sell above the price and a stop under it)."""
    if take_profit is None:
        return None
    refusal = number_refusal("take-profit", take_profit)
    if refusal is not None:
        return refusal
    if side != "buy":
        return "a take-profit belongs to an entry (a buy): it is placed with the position's stop"
    if stop_loss is None:
        return "a take-profit needs a stop-loss: the two rest at the venue as one OCO"
    if take_profit <= stop_loss:
        return f"take-profit {take_profit} must be above the stop-loss {stop_loss}"
    if reference_price is not None and take_profit <= reference_price:
        return f"take-profit {take_profit} must be above the entry price {reference_price}"
    return None


def filter_refusal(
    min_amount: Decimal,
    min_cost: Decimal,
    symbol: str,
    amount: Decimal,
    reference_price: Decimal | None,
) -> str | None:
    """The venue's lot and notional filters, checked before sending (amount already rounded to the step)."""
    if amount <= 0 or amount < min_amount:
        return f"amount {amount} is below the venue minimum {min_amount} for {symbol}"
    if reference_price is not None and amount * reference_price < min_cost:
        return f"order value {amount * reference_price} is below the venue minimum notional {min_cost}"
    return None


@dataclass(frozen=True, slots=True)
class Exposure:
    """What the account looks like to the risk checks at the moment an order is asked for."""

    equity: Decimal | None
    position_value: Decimal  # of the order's symbol, at the last price
    open_positions: int  # symbols holding more than dust
    holds_symbol: bool
    drawdown_pct: Decimal
    daily_loss_pct: Decimal


def limit_refusal(
    cfg: RiskConfig,
    exposure: Exposure,
    side: str,
    order_value: Decimal,
    stop_loss: Decimal | None,
    reference_price: Decimal | None,
    entry: bool | None = None,
) -> str | None:
    """Account-level limits on an ``entry`` (an order that opens or grows a position). Spot: a buy; a sell only
    shrinks a spot position, so it passes everything here. Perps: either side may open (a sell opens a short, whose
    stop-loss sits over the entry), and the caller says which orders only reduce."""
    if entry is None:
        entry = side == "buy"
    if not entry:
        return None
    if cfg.daily_loss_limit_pct > 0 and exposure.daily_loss_pct >= cfg.daily_loss_limit_pct:
        return (
            f"daily loss {exposure.daily_loss_pct:.2f}% has reached the limit "
            f"{cfg.daily_loss_limit_pct}%: no new positions today"
        )
    if exposure.drawdown_pct >= cfg.max_drawdown_pct:
        return f"drawdown {exposure.drawdown_pct:.2f}% has reached the hard limit {cfg.max_drawdown_pct}%"
    if cfg.require_stop_loss:
        if stop_loss is None:
            return "a stop-loss is required for every entry ([risk] require_stop_loss)"
        if reference_price is not None and side == "buy" and stop_loss >= reference_price:
            return f"stop-loss {stop_loss} must be under the entry price {reference_price}"
        if reference_price is not None and side == "sell" and stop_loss <= reference_price:
            return f"stop-loss {stop_loss} of a short must be over the entry price {reference_price}"
    if not exposure.holds_symbol and exposure.open_positions >= cfg.max_concurrent_positions:
        return (
            f"{exposure.open_positions} positions are open, the most allowed "
            f"([risk] max_concurrent_positions = {cfg.max_concurrent_positions})"
        )
    if exposure.equity is None or exposure.equity <= 0:
        return "equity unknown: cannot size the position against max_position_pct"
    after = (exposure.position_value + order_value) / exposure.equity * 100
    if after > cfg.max_position_pct:
        return (
            f"position would be {after:.2f}% of equity, over the {cfg.max_position_pct}% limit "
            "([risk] max_position_pct)"
        )
    return None


def leverage_refusal(
    max_leverage: Decimal, symbol: str, venue_leverage: Decimal | None, notional_after: Decimal, equity: Decimal | None
) -> str | None:
    """Perps (runbook 002 RISK_MAX_LEVERAGE): an entry needs the symbol's leverage at the venue confirmed and at
    most ``max_leverage``, and the account's notional after it (every position at the mark, this order included)
    at most ``max_leverage`` times equity."""
    if venue_leverage is None:
        return f"the leverage of {symbol} at the venue is not confirmed yet: no entry until it is"
    if venue_leverage > max_leverage:
        return f"{symbol} is set to {venue_leverage}x at the venue, over [risk] max_leverage = {max_leverage}"
    if equity is None or equity <= 0:
        return "equity unknown: cannot check the account's leverage"
    after = notional_after / equity
    if after > max_leverage:
        return f"the account would be levered {after:.2f}x, over [risk] max_leverage = {max_leverage}"
    return None


class OrderRateLimit:
    """At most ``per_minute`` orders sent in any sliding 60 s window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = engine_clock.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._sent: deque[float] = deque()

    def refusal(self) -> str | None:
        now = self.clock()
        while self._sent and now - self._sent[0] >= 60:
            self._sent.popleft()
        if len(self._sent) >= self.per_minute:
            return f"order rate limit: {self.per_minute} orders in the last minute ([risk] max_orders_per_minute)"
        return None

    def sent(self) -> None:
        self._sent.append(self.clock())
