"""exchangeInfo filters of a symbol and the checks Binance applies with them (-1013 ``Filter failure: X``)."""

from __future__ import annotations

from decimal import Decimal

from . import errors
from .market import SymbolSpec

ZERO = Decimal(0)


def _on_step(value: Decimal, minimum: Decimal, step: Decimal) -> bool:
    return step == 0 or (value - minimum) % step == 0


def check_price(spec: SymbolSpec, price: Decimal, name: str = "PRICE_FILTER") -> None:
    """PRICE_FILTER: within [minPrice, maxPrice] and on the tick."""
    if price < spec.min_price or price > spec.max_price or not _on_step(price, spec.min_price, spec.tick_size):
        raise errors.filter_failure(name)


# PERCENT_PRICE_BY_SIDE multipliers (BTCUSDT's real values); the current price stands in for the 5-minute average.
BID_DOWN, BID_UP, ASK_DOWN, ASK_UP = Decimal("0.2"), Decimal("5"), Decimal("0.2"), Decimal("5")


def check_percent_price(side: str, price: Decimal, reference: Decimal) -> None:
    """PERCENT_PRICE_BY_SIDE: a limit price may not stray too far from the average price."""
    low, high = (BID_DOWN, BID_UP) if side == "BUY" else (ASK_DOWN, ASK_UP)
    if not reference * low <= price <= reference * high:
        raise errors.filter_failure("PERCENT_PRICE_BY_SIDE")


def check_lot(spec: SymbolSpec, qty: Decimal, market: bool) -> None:
    """LOT_SIZE (and MARKET_LOT_SIZE for market orders): within [minQty, maxQty] and on the step."""
    if qty < spec.min_qty or qty > spec.max_qty or not _on_step(qty, spec.min_qty, spec.step_size):
        raise errors.filter_failure("LOT_SIZE")
    if market and qty > spec.market_max_qty:
        raise errors.filter_failure("MARKET_LOT_SIZE")


def check_notional(spec: SymbolSpec, notional: Decimal, market: bool) -> None:
    """NOTIONAL: minNotional applies to market orders too (applyMinToMarket), maxNotional only to limits."""
    if notional < spec.min_notional:
        raise errors.filter_failure("NOTIONAL")
    if not market and notional > spec.max_notional:
        raise errors.filter_failure("NOTIONAL")


def fmt(value: Decimal, places: int = 8) -> str:
    """Binance's fixed-point decimal string, e.g. ``65000.00000000``."""
    return f"{value:.{places}f}"


def exchange_filters(spec: SymbolSpec) -> list[dict[str, object]]:
    """The ``filters`` array of one exchangeInfo symbol, shaped like Binance spot."""
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": fmt(spec.min_price),
            "maxPrice": fmt(spec.max_price),
            "tickSize": fmt(spec.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": fmt(spec.min_qty),
            "maxQty": fmt(spec.max_qty),
            "stepSize": fmt(spec.step_size),
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": fmt(ZERO),
            "maxQty": fmt(spec.market_max_qty),
            "stepSize": fmt(ZERO),
        },
        {
            "filterType": "TRAILING_DELTA",
            "minTrailingAboveDelta": 10,
            "maxTrailingAboveDelta": 2000,
            "minTrailingBelowDelta": 10,
            "maxTrailingBelowDelta": 2000,
        },
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": str(BID_UP),
            "bidMultiplierDown": str(BID_DOWN),
            "askMultiplierUp": str(ASK_UP),
            "askMultiplierDown": str(ASK_DOWN),
            "avgPriceMins": 5,
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": fmt(spec.min_notional),
            "applyMinToMarket": True,
            "maxNotional": fmt(spec.max_notional),
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ]
