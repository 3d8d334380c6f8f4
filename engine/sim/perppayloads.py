"""Binance USDⓈ-M futures JSON shapes (REST bodies and user-stream events) built from the futures account.

Field names follow Binance's USDⓈ-M docs and what ccxt 4.5.90 ``binanceusdm`` parses (the shared note
"Binance USDⓈ-M futures for ccxt"). positionRisk v3 also carries ``leverage`` and ``marginType`` (Binance's v2 does,
its v3 does not): ccxt reads them when present, so ``fetch_positions`` shows the leverage (decision SIM-05).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .filters import fmt
from .perp import ORDER_TYPES, AlgoOrder, PerpEngine, PerpFill, PerpOrder, PerpOrderUpdate, Position
from .perpmarket import PerpSpec

ZERO = Decimal(0)
MARGIN_ASSET = "USDT"
DELIVERY_PERPETUAL = 4133404800000


def _places(step: Decimal) -> int:
    return max(-step.normalize().as_tuple().exponent, 0)  # type: ignore[operator]


def symbol_info(spec: PerpSpec, onboard_ms: int) -> dict[str, Any]:
    """One entry of /fapi/v1/exchangeInfo ``symbols``."""
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": DELIVERY_PERPETUAL,
        "onboardDate": onboard_ms,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base,
        "quoteAsset": spec.quote,
        "marginAsset": MARGIN_ASSET,
        "pricePrecision": _places(spec.tick_size),
        "quantityPrecision": _places(spec.step_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": str(spec.min_price),
                "maxPrice": str(spec.max_price),
                "tickSize": str(spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": str(spec.min_qty),
                "maxQty": str(spec.max_qty),
                "stepSize": str(spec.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": str(spec.min_qty),
                "maxQty": str(spec.market_max_qty),
                "stepSize": str(spec.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": str(spec.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": 4,
            },
        ],
        "orderTypes": list(ORDER_TYPES),
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def exchange_info(engine: PerpEngine, server_time: int, weight_limit: int, orders_per_10s: int) -> dict[str, Any]:
    """GET /fapi/v1/exchangeInfo."""
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orders_per_10s},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": MARGIN_ASSET, "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [symbol_info(spec, engine.account.update_time) for spec in engine.specs.values()],
    }


def leverage_brackets(engine: PerpEngine, symbol: str | None) -> list[dict[str, Any]]:
    """GET /fapi/v1/leverageBracket."""
    specs = [engine.spec(symbol)] if symbol else list(engine.specs.values())
    return [
        {
            "symbol": spec.symbol,
            "brackets": [
                {
                    "bracket": t.bracket,
                    "initialLeverage": t.initial_leverage,
                    "notionalCap": int(t.cap),
                    "notionalFloor": int(t.floor),
                    "maintMarginRatio": float(t.mmr),
                    "cum": float(t.cum),
                }
                for t in spec.tiers
            ],
        }
        for spec in specs
    ]


def premium_index(engine: PerpEngine, symbol: str, now: int) -> dict[str, Any]:
    """GET /fapi/v1/premiumIndex entry."""
    last = engine.last(symbol)
    return {
        "symbol": symbol,
        "markPrice": fmt(engine.mark(symbol)),
        "indexPrice": fmt(last),
        "estimatedSettlePrice": fmt(last),
        "lastFundingRate": fmt(engine.next_rate(symbol)),
        "interestRate": "0.00010000",
        "nextFundingTime": engine.next_funding_ms,
        "time": now,
    }


def mark_price_event(engine: PerpEngine, symbol: str, now: int) -> dict[str, Any]:
    """``<symbol>@markPrice@1s`` event."""
    last = engine.last(symbol)
    return {
        "e": "markPriceUpdate",
        "E": now,
        "s": symbol,
        "p": fmt(engine.mark(symbol)),
        "i": fmt(last),
        "P": fmt(last),
        "r": fmt(engine.next_rate(symbol)),
        "T": engine.next_funding_ms,
    }


def order_json(order: PerpOrder) -> dict[str, Any]:
    """An order as GET /fapi/v1/order answers it (POST adds nothing ccxt needs)."""
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "avgPrice": fmt(order.avg_price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "cumQty": fmt(order.executed_qty),
        "cumQuote": fmt(order.cum_quote),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side,
        "positionSide": "BOTH",
        "stopPrice": fmt(order.stop_price),
        "workingType": order.working_type,
        "priceProtect": False,
        "origType": order.orig_type or order.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "time": order.time,
        "updateTime": order.update_time,
    }


def algo_json(algo: AlgoOrder) -> dict[str, Any]:
    """A conditional order as /fapi/v1/algoOrder answers it."""
    return {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.order_type,
        "symbol": algo.symbol,
        "side": algo.side,
        "positionSide": "BOTH",
        "timeInForce": algo.time_in_force,
        "quantity": fmt(algo.quantity),
        "algoStatus": algo.status,
        "actualOrderId": "" if algo.actual_order_id is None else str(algo.actual_order_id),
        "triggerPrice": fmt(algo.trigger_price),
        "price": fmt(algo.price),
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": algo.working_type,
        "priceMatch": "NONE",
        "closePosition": algo.close_position,
        "priceProtect": False,
        "reduceOnly": algo.reduce_only,
        "createTime": algo.create_time,
        "updateTime": algo.update_time,
        "triggerTime": algo.trigger_time,
        "goodTillDate": 0,
    }


def user_trade_json(fill: PerpFill) -> dict[str, Any]:
    """One row of GET /fapi/v1/userTrades."""
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "side": fill.side,
        "price": fmt(fill.price),
        "qty": fmt(fill.qty),
        "realizedPnl": fmt(fill.realized_pnl),
        "quoteQty": fmt(fill.price * fill.qty),
        "commission": fmt(fill.commission),
        "commissionAsset": MARGIN_ASSET,
        "time": fill.time,
        "positionSide": "BOTH",
        "buyer": fill.side == "BUY",
        "maker": fill.maker,
    }


def _margin_type(pos: Position) -> str:
    return "isolated" if pos.isolated else "cross"


def position_risk(engine: PerpEngine, pos: Position, version: int) -> dict[str, Any]:
    """One row of GET /fapi/v2 or /fapi/v3 positionRisk."""
    notional = engine.notional(pos)
    upnl = engine.upnl(pos)
    spec = engine.specs[pos.symbol]
    row: dict[str, Any] = {
        "symbol": pos.symbol,
        "positionSide": "BOTH",
        "positionAmt": fmt(pos.amt),
        "entryPrice": fmt(pos.entry),
        "breakEvenPrice": fmt(pos.entry),
        "markPrice": fmt(engine.mark(pos.symbol)),
        "unRealizedProfit": fmt(upnl),
        "liquidationPrice": fmt(engine.liquidation_price(pos)),
        "isolatedMargin": fmt(pos.isolated_wallet + upnl if pos.isolated and pos.amt else ZERO),
        "notional": fmt(notional),
        "marginAsset": MARGIN_ASSET,
        "isolatedWallet": fmt(pos.isolated_wallet),
        "leverage": str(pos.leverage),
        "marginType": _margin_type(pos),
        "updateTime": pos.update_time,
    }
    if version >= 3:
        row.update(
            {
                "initialMargin": fmt(engine.initial_margin(pos) + engine.open_order_margin(pos.symbol)),
                "maintMargin": fmt(engine.maint_margin(pos)),
                "positionInitialMargin": fmt(engine.initial_margin(pos)),
                "openOrderInitialMargin": fmt(engine.open_order_margin(pos.symbol)),
                "adl": 0,
                "bidNotional": "0",
                "askNotional": "0",
            }
        )
    else:
        row.update(
            {
                "isAutoAddMargin": "false",
                "maxNotionalValue": str(int(spec.max_notional(pos.leverage))),
            }
        )
    return row


def _asset_row(engine: PerpEngine) -> dict[str, Any]:
    upnl = engine.total_upnl()
    wallet = engine.account.wallet
    position_im = sum((engine.initial_margin(p) for p in engine.account.positions.values() if p.amt), ZERO)
    order_im = engine.open_order_margin()
    maint = sum((engine.maint_margin(p) for p in engine.account.positions.values() if p.amt), ZERO)
    cross_upnl = sum((engine.upnl(p) for p in engine.cross_positions()), ZERO)
    available = engine.available()
    return {
        "asset": MARGIN_ASSET,
        "walletBalance": fmt(wallet),
        "unrealizedProfit": fmt(upnl),
        "marginBalance": fmt(wallet + upnl),
        "maintMargin": fmt(maint),
        "initialMargin": fmt(position_im + order_im),
        "positionInitialMargin": fmt(position_im),
        "openOrderInitialMargin": fmt(order_im),
        "crossWalletBalance": fmt(engine.cross_wallet()),
        "crossUnPnl": fmt(cross_upnl),
        "availableBalance": fmt(available),
        "maxWithdrawAmount": fmt(available),
        "marginAvailable": True,
        "updateTime": engine.account.update_time or 1,
    }


def account_json(engine: PerpEngine, version: int) -> dict[str, Any]:
    """GET /fapi/v2/account and /fapi/v3/account."""
    asset = _asset_row(engine)
    positions = []
    for pos in engine.account.positions.values():
        if version >= 3 and not pos.amt:
            continue
        row = {
            "symbol": pos.symbol,
            "positionSide": "BOTH",
            "positionAmt": fmt(pos.amt),
            "unrealizedProfit": fmt(engine.upnl(pos)),
            "isolatedMargin": fmt(pos.isolated_wallet + engine.upnl(pos) if pos.isolated and pos.amt else ZERO),
            "notional": fmt(engine.notional(pos)),
            "isolatedWallet": fmt(pos.isolated_wallet),
            "initialMargin": fmt(engine.initial_margin(pos)),
            "maintMargin": fmt(engine.maint_margin(pos)),
            "updateTime": pos.update_time,
        }
        if version < 3:
            row.update(
                {
                    "leverage": str(pos.leverage),
                    "entryPrice": fmt(pos.entry),
                    "isolated": pos.isolated,
                    "maxNotional": str(int(engine.specs[pos.symbol].max_notional(pos.leverage))),
                    "positionInitialMargin": fmt(engine.initial_margin(pos)),
                    "openOrderInitialMargin": fmt(engine.open_order_margin(pos.symbol)),
                }
            )
        positions.append(row)
    body: dict[str, Any] = {
        "totalInitialMargin": asset["initialMargin"],
        "totalMaintMargin": asset["maintMargin"],
        "totalWalletBalance": asset["walletBalance"],
        "totalUnrealizedProfit": asset["unrealizedProfit"],
        "totalMarginBalance": asset["marginBalance"],
        "totalPositionInitialMargin": asset["positionInitialMargin"],
        "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
        "totalCrossWalletBalance": asset["crossWalletBalance"],
        "totalCrossUnPnl": asset["crossUnPnl"],
        "availableBalance": asset["availableBalance"],
        "maxWithdrawAmount": asset["maxWithdrawAmount"],
        "assets": [asset],
        "positions": positions,
    }
    if version < 3:
        body.update({"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": False, "updateTime": 0})
    return body


def balance_json(engine: PerpEngine) -> list[dict[str, Any]]:
    """GET /fapi/v2/balance and /fapi/v3/balance."""
    asset = _asset_row(engine)
    return [
        {
            "accountAlias": "SgsR",
            "asset": MARGIN_ASSET,
            "balance": asset["walletBalance"],
            "crossWalletBalance": asset["crossWalletBalance"],
            "crossUnPnl": asset["crossUnPnl"],
            "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"],
            "marginAvailable": True,
            "updateTime": asset["updateTime"],
        }
    ]


def order_trade_update(update: PerpOrderUpdate) -> dict[str, Any]:
    """ORDER_TRADE_UPDATE user-stream event (a liquidation: type LIQUIDATION, execution CALCULATED)."""
    o, fill = update.order, update.fill
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": update.time,
        "T": update.time,
        "o": {
            "s": o.symbol,
            "c": o.client_order_id,
            "S": o.side,
            "o": o.type,
            "f": o.time_in_force,
            "q": fmt(o.orig_qty),
            "p": fmt(o.price),
            "ap": fmt(o.avg_price),
            "sp": fmt(o.stop_price),
            "x": update.exec_type,
            "X": o.status,
            "i": o.order_id,
            "l": fmt(fill.qty if fill else ZERO),
            "z": fmt(o.executed_qty),
            "L": fmt(fill.price if fill else ZERO),
            "n": fmt(fill.commission if fill else ZERO),
            "N": MARGIN_ASSET,
            "T": update.time,
            "t": fill.trade_id if fill else 0,
            "b": "0",
            "a": "0",
            "m": fill.maker if fill else False,
            "R": o.reduce_only,
            "wt": o.working_type,
            "ot": o.orig_type or o.type,
            "ps": "BOTH",
            "cp": o.close_position,
            "rp": fmt(fill.realized_pnl if fill else ZERO),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "EXPIRE_MAKER",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def account_update(engine: PerpEngine, reason: str, symbols: tuple[str, ...], now: int) -> dict[str, Any]:
    """ACCOUNT_UPDATE user-stream event: the wallet and the named symbols' positions."""
    positions = []
    for symbol in symbols:
        pos = engine.account.positions[symbol]
        positions.append(
            {
                "s": symbol,
                "pa": fmt(pos.amt),
                "ep": fmt(pos.entry),
                "bep": fmt(pos.entry),
                "cr": fmt(pos.realized),
                "up": fmt(engine.upnl(pos)),
                "mt": _margin_type(pos),
                "iw": fmt(pos.isolated_wallet),
                "ps": "BOTH",
                "ma": MARGIN_ASSET,
            }
        )
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now,
        "T": now,
        "a": {
            "m": reason,
            "B": [{"a": MARGIN_ASSET, "wb": fmt(engine.account.wallet), "cw": fmt(engine.cross_wallet()), "bc": "0"}],
            "P": positions,
        },
    }


def algo_update(algo: AlgoOrder, now: int) -> dict[str, Any]:
    """ALGO_UPDATE user-stream event."""
    return {
        "e": "ALGO_UPDATE",
        "T": now,
        "E": now,
        "o": {
            "caid": algo.client_algo_id,
            "aid": algo.algo_id,
            "at": "CONDITIONAL",
            "o": algo.order_type,
            "s": algo.symbol,
            "S": algo.side,
            "ps": "BOTH",
            "f": algo.time_in_force,
            "q": fmt(algo.quantity),
            "X": algo.status,
            "ai": "" if algo.actual_order_id is None else str(algo.actual_order_id),
            "ap": "0.00000",
            "aq": "0.00000",
            "act": "0",
            "tp": fmt(algo.trigger_price),
            "p": fmt(algo.price),
            "V": "EXPIRE_MAKER",
            "wt": algo.working_type,
            "pm": "NONE",
            "cp": algo.close_position,
            "pP": False,
            "R": algo.reduce_only,
            "tt": algo.trigger_time,
            "gtd": 0,
            "rm": algo.fail_reason,
        },
    }
