"""Binance spot JSON shapes (REST bodies and stream events) built from the simulator's state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .book import DepthUpdate, SyntheticBook
from .candles import Candle
from .filters import exchange_filters, fmt
from .market import PriceFeed, PublicTrade, SymbolSpec
from .matching import ORDER_TYPES, BalanceDelta, Fill, ListUpdate, MatchingEngine, Order, OrderList, OrderUpdate

STP_MODE = "EXPIRE_MAKER"


def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    """One entry of exchangeInfo ``symbols``."""
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": False,
        "ocoAllowed": True,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "amendAllowed": False,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": exchange_filters(spec),
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": STP_MODE,
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def exchange_info(
    specs: list[SymbolSpec],
    server_time: int,
    weight_limit: int = 6000,
    orders_per_10s: int = 100,
    orders_per_day: int = 200_000,
) -> dict[str, Any]:
    """GET /api/v3/exchangeInfo (its rateLimits are the limits this simulator enforces)."""
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": orders_per_day},
        ],
        "exchangeFilters": [],
        "symbols": [symbol_info(s) for s in specs],
    }


def order_json(order: Order) -> dict[str, Any]:
    """The order object of GET /api/v3/order and friends."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "cummulativeQuoteQty": fmt(order.cumm_quote_qty),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "stopPrice": fmt(order.stop_price),
        "icebergQty": fmt(Decimal(0)),
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": order.is_working,
        "workingTime": order.working_time,
        "origQuoteOrderQty": fmt(order.orig_quote_order_qty),
        "selfTradePreventionMode": STP_MODE,
    }


def new_order_json(order: Order, resp_type: str) -> dict[str, Any]:
    """POST /api/v3/order answer for newOrderRespType ACK, RESULT or FULL."""
    ack = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "transactTime": order.time,
    }
    if resp_type == "ACK":
        return ack
    body = order_json(order)
    for key in ("time", "updateTime", "isWorking"):
        body.pop(key)
    result = {**ack, **body}
    if resp_type == "FULL":
        result["fills"] = [
            {
                "price": fmt(f.price),
                "qty": fmt(f.qty),
                "commission": fmt(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in order.fills
        ]
    return result


def cancel_json(order: Order, cancel_client_id: str, now: int) -> dict[str, Any]:
    """DELETE /api/v3/order answer: ``clientOrderId`` is the cancel request's id, the original is
    ``origClientOrderId``."""
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": cancel_client_id,
        "transactTime": now,
        "price": fmt(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "cummulativeQuoteQty": fmt(order.cumm_quote_qty),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
        "stopPrice": fmt(order.stop_price),
        "origQuoteOrderQty": fmt(order.orig_quote_order_qty),
        "selfTradePreventionMode": STP_MODE,
    }


def order_list_json(
    engine: MatchingEngine, order_list: OrderList, reports: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """An OCO list as POST/DELETE/GET /api/v3/orderList answer it (``orderReports`` only for POST and DELETE)."""
    body: dict[str, Any] = {
        "orderListId": order_list.order_list_id,
        "contingencyType": "OCO",
        "listStatusType": order_list.list_status_type,
        "listOrderStatus": order_list.list_order_status,
        "listClientOrderId": order_list.list_client_order_id,
        "transactionTime": order_list.transaction_time,
        "symbol": order_list.symbol,
        "orders": [
            {"symbol": order_list.symbol, "orderId": i, "clientOrderId": engine.orders[i].client_order_id}
            for i in order_list.order_ids
        ],
    }
    if reports is not None:
        body["orderReports"] = reports
    return body


def list_status(engine: MatchingEngine, update: ListUpdate) -> dict[str, Any]:
    """User-data ``listStatus``, sent besides the legs' execution reports."""
    order_list = update.order_list
    return {
        "e": "listStatus",
        "E": update.time,
        "s": order_list.symbol,
        "g": order_list.order_list_id,
        "c": "OCO",
        "l": order_list.list_status_type,
        "L": order_list.list_order_status,
        "r": "NONE",
        "C": order_list.list_client_order_id,
        "T": update.time,
        "O": [{"s": order_list.symbol, "i": i, "c": engine.orders[i].client_order_id} for i in order_list.order_ids],
    }


def my_trade_json(fill: Fill) -> dict[str, Any]:
    """One row of GET /api/v3/myTrades."""
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": fmt(fill.price),
        "qty": fmt(fill.qty),
        "quoteQty": fmt(fill.quote_qty),
        "commission": fmt(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time,
        "isBuyer": fill.is_buyer,
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


def account_json(engine: MatchingEngine) -> dict[str, Any]:
    """GET /api/v3/account."""
    maker = fmt(engine.maker_fee)
    taker = fmt(engine.taker_fee)
    return {
        "makerCommission": int(engine.maker_fee * 10000),
        "takerCommission": int(engine.taker_fee * 10000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {"maker": maker, "taker": taker, "buyer": fmt(Decimal(0)), "seller": fmt(Decimal(0))},
        "canTrade": True,
        "canWithdraw": False,
        "canDeposit": False,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": engine.update_time,
        "accountType": "SPOT",
        "balances": [{"asset": a, "free": fmt(f), "locked": fmt(lk)} for a, (f, lk) in engine.balances.items()],
        "permissions": ["SPOT"],
        "uid": 1,
    }


def ticker_24hr(feed: PriceFeed, now: int, book: SyntheticBook) -> dict[str, Any]:
    """One GET /api/v3/ticker/24hr entry."""
    s = feed.stats(now)
    (bid, bid_qty), (ask, ask_qty) = book.best("bids"), book.best("asks")
    return {
        "symbol": feed.spec.symbol,
        "priceChange": fmt(s.change),
        "priceChangePercent": f"{s.change_percent}",
        "weightedAvgPrice": fmt(s.weighted_avg),
        "prevClosePrice": fmt(s.open),
        "lastPrice": fmt(s.last),
        "lastQty": fmt(feed.last_trade.qty if feed.last_trade else Decimal(0)),
        "bidPrice": fmt(bid),
        "bidQty": fmt(bid_qty),
        "askPrice": fmt(ask),
        "askQty": fmt(ask_qty),
        "openPrice": fmt(s.open),
        "highPrice": fmt(s.high),
        "lowPrice": fmt(s.low),
        "volume": fmt(s.volume),
        "quoteVolume": fmt(s.quote_volume),
        "openTime": s.open_time,
        "closeTime": s.close_time,
        "firstId": s.first_trade_id,
        "lastId": s.last_trade_id,
        "count": s.count,
    }


def ticker_event(feed: PriceFeed, now: int, book: SyntheticBook) -> dict[str, Any]:
    """``<symbol>@ticker`` stream event (24hrTicker)."""
    t = ticker_24hr(feed, now, book)
    return {
        "e": "24hrTicker",
        "E": now,
        "s": t["symbol"],
        "p": t["priceChange"],
        "P": t["priceChangePercent"],
        "w": t["weightedAvgPrice"],
        "x": t["prevClosePrice"],
        "c": t["lastPrice"],
        "Q": t["lastQty"],
        "b": t["bidPrice"],
        "B": t["bidQty"],
        "a": t["askPrice"],
        "A": t["askQty"],
        "o": t["openPrice"],
        "h": t["highPrice"],
        "l": t["lowPrice"],
        "v": t["volume"],
        "q": t["quoteVolume"],
        "O": t["openTime"],
        "C": t["closeTime"],
        "F": t["firstId"],
        "L": t["lastId"],
        "n": t["count"],
    }


def mini_ticker_event(feed: PriceFeed, now: int) -> dict[str, Any]:
    """``<symbol>@miniTicker`` stream event (24hrMiniTicker)."""
    s = feed.stats(now)
    return {
        "e": "24hrMiniTicker",
        "E": now,
        "s": feed.spec.symbol,
        "c": fmt(s.last),
        "o": fmt(s.open),
        "h": fmt(s.high),
        "l": fmt(s.low),
        "v": fmt(s.volume),
        "q": fmt(s.quote_volume),
    }


def trade_event(trade: PublicTrade, now: int) -> dict[str, Any]:
    """``<symbol>@trade`` stream event."""
    return {
        "e": "trade",
        "E": now,
        "s": trade.symbol,
        "t": trade.trade_id,
        "p": fmt(trade.price),
        "q": fmt(trade.qty),
        "T": trade.time,
        "m": trade.buyer_is_maker,
        "M": True,
    }


def execution_report(update: OrderUpdate) -> dict[str, Any]:
    """User-data ``executionReport`` for one order state change."""
    o, f = update.order, update.fill
    return {
        "e": "executionReport",
        "E": update.time,
        "s": o.symbol,
        "c": update.cancel_client_id or o.client_order_id,
        "S": o.side,
        "o": o.type,
        "f": o.time_in_force,
        "q": fmt(o.orig_qty),
        "p": fmt(o.price),
        "P": fmt(o.stop_price),
        "F": fmt(Decimal(0)),
        "g": o.order_list_id,
        "C": o.client_order_id if update.cancel_client_id else "",
        "x": update.exec_type,
        "X": o.status,
        "r": "NONE",
        "i": o.order_id,
        "l": fmt(f.qty if f else Decimal(0)),
        "z": fmt(o.executed_qty),
        "L": fmt(f.price if f else Decimal(0)),
        "n": fmt(f.commission if f else Decimal(0)),
        "N": f.commission_asset if f else None,
        "T": update.time,
        "t": f.trade_id if f else -1,
        "I": update.time,
        "w": o.is_working and o.is_open,
        "m": f.is_maker if f else False,
        "M": False,
        "O": o.time,
        "Z": fmt(o.cumm_quote_qty),
        "Y": fmt(f.quote_qty if f else Decimal(0)),
        "Q": fmt(o.orig_quote_order_qty),
        "W": o.working_time,
        "V": STP_MODE,
    }


def account_position(engine: MatchingEngine, assets: tuple[str, ...], now: int) -> dict[str, Any]:
    """User-data ``outboundAccountPosition`` for the assets that changed."""
    rows = []
    for asset in assets:
        free, locked = engine.balance(asset)
        rows.append({"a": asset, "f": fmt(free), "l": fmt(locked)})
    return {"e": "outboundAccountPosition", "E": now, "u": engine.update_time, "B": rows}


def balance_delta(event: BalanceDelta) -> dict[str, Any]:
    """User-data ``balanceUpdate``: a deposit, withdrawal or transfer changed one asset."""
    return {"e": "balanceUpdate", "E": event.time, "a": event.asset, "d": fmt(event.delta), "T": event.time}


def public_trade_json(trade: PublicTrade) -> dict[str, Any]:
    """One row of GET /api/v3/trades."""
    return {
        "id": trade.trade_id,
        "price": fmt(trade.price),
        "qty": fmt(trade.qty),
        "quoteQty": fmt(trade.price * trade.qty),
        "time": trade.time,
        "isBuyerMaker": trade.buyer_is_maker,
        "isBestMatch": True,
    }


def kline_row(c: Candle, interval_ms: int) -> list[Any]:
    """One row of GET /api/v3/klines."""
    return [
        c.start_ms,
        fmt(c.open),
        fmt(c.high),
        fmt(c.low),
        fmt(c.close),
        fmt(c.volume),
        c.start_ms + interval_ms - 1,
        fmt(c.quote_volume),
        c.count,
        fmt(c.taker_buy_volume),
        fmt(c.taker_buy_quote),
        "0",
    ]


def kline_event(symbol: str, interval: str, c: Candle, interval_ms: int, closed: bool, now: int) -> dict[str, Any]:
    """``<symbol>@kline_<interval>`` stream event."""
    return {
        "e": "kline",
        "E": now,
        "s": symbol,
        "k": {
            "t": c.start_ms,
            "T": c.start_ms + interval_ms - 1,
            "s": symbol,
            "i": interval,
            "f": c.first_trade_id,
            "L": c.last_trade_id,
            "o": fmt(c.open),
            "c": fmt(c.close),
            "h": fmt(c.high),
            "l": fmt(c.low),
            "v": fmt(c.volume),
            "n": c.count,
            "x": closed,
            "q": fmt(c.quote_volume),
            "V": fmt(c.taker_buy_volume),
            "Q": fmt(c.taker_buy_quote),
            "B": "0",
        },
    }


def depth_snapshot(book: SyntheticBook, limit: int) -> dict[str, Any]:
    """GET /api/v3/depth and the ``@depth<N>`` partial-book event."""
    return {
        "lastUpdateId": book.update_id,
        "bids": [[fmt(p), fmt(q)] for p, q in book.levels("bids", limit)],
        "asks": [[fmt(p), fmt(q)] for p, q in book.levels("asks", limit)],
    }


def depth_update(symbol: str, update: DepthUpdate, now: int) -> dict[str, Any]:
    """``<symbol>@depth`` diff event."""
    return {
        "e": "depthUpdate",
        "E": now,
        "s": symbol,
        "U": update.first_id,
        "u": update.last_id,
        "b": [[fmt(p), fmt(q)] for p, q in update.bids],
        "a": [[fmt(p), fmt(q)] for p, q in update.asks],
    }


def book_ticker(symbol: str, book: SyntheticBook) -> dict[str, Any]:
    """GET /api/v3/ticker/bookTicker entry and (with ``u``) the ``@bookTicker`` event."""
    (bid, bid_qty), (ask, ask_qty) = book.best("bids"), book.best("asks")
    return {"u": book.update_id, "s": symbol, "b": fmt(bid), "B": fmt(bid_qty), "a": fmt(ask), "A": fmt(ask_qty)}


def agg_trade_event(trade: PublicTrade, now: int) -> dict[str, Any]:
    """``<symbol>@aggTrade`` stream event (one trade per aggregate: the simulator never splits a print)."""
    return {"e": "aggTrade", "E": now, "s": trade.symbol, **agg_trade_json(trade)}


def agg_trade_json(trade: PublicTrade) -> dict[str, Any]:
    """One row of GET /api/v3/aggTrades."""
    return {
        "a": trade.trade_id,
        "p": fmt(trade.price),
        "q": fmt(trade.qty),
        "f": trade.trade_id,
        "l": trade.trade_id,
        "T": trade.time,
        "m": trade.buyer_is_maker,
        "M": True,
    }
