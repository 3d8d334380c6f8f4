"""Pre-trade checks: each returns None when an order may go, or a sentence saying why it may not.

Checks run before an order is persisted or sent, for the operator and for strategies alike.
"""

from __future__ import annotations

from decimal import Decimal

from engine.events import TradingState


def pre_trade_refusal(
    state: TradingState,
    connected: bool,
    symbols: tuple[str, ...],
    symbol: str,
    side: str,
    amount: Decimal,
) -> str | None:
    """Trading state, connection and request sanity."""
    if state == TradingState.HALTED:
        return "trading is HALTED: no new orders until an operator resumes"
    if state == TradingState.REDUCE_ONLY and side == "buy":
        return "trading is REDUCE_ONLY: only orders that shrink a position"
    if not connected:
        return "venue not connected"
    if symbol not in symbols:
        return f"{symbol} is not a configured symbol ({', '.join(symbols)})"
    if side not in ("buy", "sell"):
        return f"side must be buy or sell, not {side!r}"
    if amount <= 0:
        return "amount must be positive"
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
