"""A second, minimal Binance-spot venue for tests: just enough of Binance's REST API, market stream and WS-API user
stream for the real ccxt client (and so the engine) to trade on it, written apart from the simulator (engine/sim/)
so that the engine is shown to work on a venue it was not written against.

Its user stream ends subscriptions its own way: ``end_subscriptions_silently()`` forgets them without a word (no
``eventStreamTerminated``, the socket stays open), and it does not know Binance's ``session.subscriptions``, so an
engine cannot ask it whether its subscription stands. ``terminate()`` sends ``eventStreamTerminated`` as Binance
does; with ``refuse_subscriptions`` every subscribe is answered with an error. Its price stands still: a limit
order rests until ``fill()`` fills it (one priced through the market fills at once), a market order fills at once.
No fees, no signature checks, no rate limits. One aiohttp server on one loopback port serves REST and websockets.

    venue = FakeVenue(); await venue.start(); ... venue.rest_url, venue.ws_url ... await venue.stop()
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

ZERO = Decimal(0)
SYMBOLS = {"BTCUSDT": ("BTC", "USDT", Decimal("50000"))}


def fmt(value: Decimal | None) -> str:
    return f"{(value or ZERO):.8f}"


def ms() -> int:
    return int(time.time() * 1000)


@dataclass
class FakeOrder:
    order_id: int
    client_id: str
    symbol: str
    side: str  # BUY / SELL
    type: str  # LIMIT / MARKET
    qty: Decimal
    price: Decimal
    status: str = "NEW"
    filled: Decimal = ZERO
    quote: Decimal = ZERO
    time: int = field(default_factory=ms)

    def json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_id,
            "price": fmt(self.price if self.type == "LIMIT" else ZERO),
            "origQty": fmt(self.qty),
            "executedQty": fmt(self.filled),
            "cummulativeQuoteQty": fmt(self.quote),
            "status": self.status,
            "timeInForce": "GTC" if self.type == "LIMIT" else "",
            "type": self.type,
            "side": self.side,
            "stopPrice": fmt(ZERO),
            "icebergQty": fmt(ZERO),
            "time": self.time,
            "updateTime": ms(),
            "isWorking": True,
            "workingTime": self.time,
            "origQuoteOrderQty": fmt(ZERO),
            "selfTradePreventionMode": "NONE",
        }


class FakeVenue:
    """The fake Binance: state, the aiohttp app, and the test's controls."""

    api_key = "fake-key"
    api_secret = "fake-secret"

    def __init__(self) -> None:
        self.prices = {s: p for s, (_, _, p) in SYMBOLS.items()}
        self.balances: dict[str, list[Decimal]] = {"USDT": [Decimal("10000"), ZERO], "BTC": [ZERO, ZERO]}
        self.orders: dict[str, FakeOrder] = {}
        self.trades: list[dict[str, Any]] = []
        self.next_id = 1
        self.subscriptions: dict[web.WebSocketResponse, set[int]] = {}  # WS-API connection -> live subscription ids
        self.subscribes = 0  # subscribe requests answered, for tests
        self.unknown_requests: list[str] = []  # WS-API methods it does not know (session.subscriptions...)
        self.refuse_subscriptions = False  # answer every subscribe with an error (the user stream cannot come back)
        self.market: dict[web.WebSocketResponse, set[str]] = {}
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.port = 0

    # ------------------------------------------------------------ lifecycle

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        r = app.router
        r.add_get("/api/v3/ping", self.ping)
        r.add_get("/api/v3/time", self.server_time)
        r.add_get("/api/v3/exchangeInfo", self.exchange_info)
        r.add_get("/api/v3/ticker/24hr", self.ticker_24hr)
        r.add_get("/api/v3/account", self.account)
        r.add_post("/api/v3/order", self.create_order)
        r.add_get("/api/v3/order", self.get_order)
        r.add_delete("/api/v3/order", self.cancel_order)
        r.add_get("/api/v3/openOrders", self.open_orders)
        r.add_delete("/api/v3/openOrders", self.cancel_open_orders)
        r.add_get("/api/v3/myTrades", self.my_trades)
        r.add_get("/ws-api/v3", self.ws_api)
        r.add_get("/ws", self.ws_market)
        r.add_get("/ws/{tail:.*}", self.ws_market)
        r.add_get("/stream", self.ws_market)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        for ws in [*self.subscriptions, *self.market]:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------ the test's controls

    def end_subscriptions_silently(self) -> int:
        """Forget every user-data subscription without telling anyone; the sockets stay open."""
        ended = sum(len(s) for s in self.subscriptions.values())
        for subs in self.subscriptions.values():
            subs.clear()
        return ended

    def terminate(self) -> int:
        """End every user-data subscription with ``eventStreamTerminated``, as Binance does."""
        ended = 0
        for ws, subs in self.subscriptions.items():
            for sub in sorted(subs):
                self._send(ws, {"subscriptionId": sub, "event": {"e": "eventStreamTerminated", "E": ms()}})
                ended += 1
            subs.clear()
        return ended

    def live_subscriptions(self) -> int:
        return sum(len(s) for s in self.subscriptions.values())

    def open(self) -> list[FakeOrder]:
        return [o for o in self.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]

    def fill(self, client_id: str) -> None:
        """Fill a resting order whole at its price (as if the market came to it)."""
        order = self.orders[client_id]
        self._execute(order, order.qty - order.filled, order.price)

    def free(self, asset: str) -> Decimal:
        return self.balances.setdefault(asset, [ZERO, ZERO])[0]

    # ------------------------------------------------------------ REST

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return web.json_response(body, status=status)

    def _error(self, code: int, msg: str, status: int = 400) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status)

    async def _params(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.can_read_body:
            params.update({k: str(v) for k, v in (await request.post()).items()})
        return params

    async def ping(self, request: web.Request) -> web.Response:
        return self._json({})

    async def server_time(self, request: web.Request) -> web.Response:
        return self._json({"serverTime": ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        symbols = []
        for symbol, (base, quote, _) in SYMBOLS.items():
            symbols.append(
                {
                    "symbol": symbol,
                    "status": "TRADING",
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET"],
                    "icebergAllowed": False,
                    "ocoAllowed": False,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": False,
                    "cancelReplaceAllowed": False,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": "0.01",
                            "maxPrice": "1000000.00",
                            "tickSize": "0.01",
                        },
                        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00000", "stepSize": "0.00001"},
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": "5.00",
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "NONE",
                    "allowedSelfTradePreventionModes": ["NONE"],
                }
            )
        return self._json(
            {
                "timezone": "UTC",
                "serverTime": ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
                ],
                "exchangeFilters": [],
                "symbols": symbols,
            }
        )

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "BTCUSDT")
        return self._json(self._ticker_json(symbol))

    def _ticker_json(self, symbol: str) -> dict[str, Any]:
        p = self.prices[symbol]
        now = ms()
        return {
            "symbol": symbol,
            "priceChange": "0.00",
            "priceChangePercent": "0.000",
            "weightedAvgPrice": fmt(p),
            "prevClosePrice": fmt(p),
            "lastPrice": fmt(p),
            "lastQty": "0.01000000",
            "bidPrice": fmt(p - Decimal("0.01")),
            "bidQty": "1.00000000",
            "askPrice": fmt(p + Decimal("0.01")),
            "askQty": "1.00000000",
            "openPrice": fmt(p),
            "highPrice": fmt(p),
            "lowPrice": fmt(p),
            "volume": "100.00000000",
            "quoteVolume": fmt(p * 100),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 100,
            "count": 100,
        }

    def _account_json(self) -> dict[str, Any]:
        return {
            "makerCommission": 0,
            "takerCommission": 0,
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "updateTime": ms(),
            "accountType": "SPOT",
            "balances": [{"asset": a, "free": fmt(f), "locked": fmt(lk)} for a, (f, lk) in self.balances.items()],
            "permissions": ["SPOT"],
        }

    async def account(self, request: web.Request) -> web.Response:
        return self._json(self._account_json())

    async def create_order(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        symbol, side, kind = params["symbol"], params["side"], params["type"]
        qty = Decimal(params["quantity"])
        price = Decimal(params.get("price") or self.prices[symbol])
        client_id = params.get("newClientOrderId") or f"fake-{self.next_id}"
        if client_id in self.orders:
            return self._error(-2010, "Duplicate order sent.")
        base, quote, _ = SYMBOLS[symbol]
        cost = qty * price
        if side == "BUY" and self.free(quote) < cost:
            return self._error(-2010, "Account has insufficient balance for requested action.")
        if side == "SELL" and self.free(base) < qty:
            return self._error(-2010, "Account has insufficient balance for requested action.")
        order = FakeOrder(self.next_id, client_id, symbol, side, kind, qty, price)
        self.next_id += 1
        self.orders[client_id] = order
        if side == "BUY":
            self._move(quote, -cost, cost)
        else:
            self._move(base, -qty, qty)
        self._report(order, "NEW", None)
        last = self.prices[symbol]
        fills: list[dict[str, Any]] = []
        if kind == "MARKET" or (side == "BUY" and price >= last) or (side == "SELL" and price <= last):
            fills.append(self._execute(order, qty, last if kind == "MARKET" else price))
        body = {**order.json(), "transactTime": ms(), "fills": fills}
        return self._json(body)

    def _find(self, params: dict[str, str]) -> FakeOrder | None:
        cid = params.get("origClientOrderId")
        if cid:
            return self.orders.get(cid)
        oid = params.get("orderId")
        return next((o for o in self.orders.values() if str(o.order_id) == oid), None)

    async def get_order(self, request: web.Request) -> web.Response:
        order = self._find(dict(request.query))
        if order is None:
            return self._error(-2013, "Order does not exist.")
        return self._json(order.json())

    async def cancel_order(self, request: web.Request) -> web.Response:
        order = self._find(await self._params(request))
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            return self._error(-2011, "Unknown order sent.")
        self._cancel(order)
        return self._json(order.json())

    async def open_orders(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        return self._json([o.json() for o in self.open() if symbol in (None, o.symbol)])

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        symbol = (await self._params(request)).get("symbol")
        done = [o for o in self.open() if o.symbol == symbol]
        for order in done:
            self._cancel(order)
        return self._json([o.json() for o in done])

    async def my_trades(self, request: web.Request) -> web.Response:
        q = request.query
        since = int(q.get("startTime") or 0)
        limit = int(q.get("limit") or 500)
        rows = [t for t in self.trades if t["symbol"] == q.get("symbol") and t["time"] >= since]
        return self._json(rows[:limit])

    # ------------------------------------------------------------ matching

    def _move(self, asset: str, free: Decimal, locked: Decimal) -> None:
        row = self.balances.setdefault(asset, [ZERO, ZERO])
        row[0] += free
        row[1] += locked

    def _execute(self, order: FakeOrder, qty: Decimal, price: Decimal) -> dict[str, Any]:
        base, quote, _ = SYMBOLS[order.symbol]
        if order.side == "BUY":
            self._move(quote, order.price * qty - price * qty, -order.price * qty)
            self._move(base, qty, ZERO)
        else:
            self._move(base, ZERO, -qty)
            self._move(quote, price * qty, ZERO)
        order.filled += qty
        order.quote += price * qty
        order.status = "FILLED" if order.filled >= order.qty else "PARTIALLY_FILLED"
        trade_id = len(self.trades) + 1
        now = ms()
        self.trades.append(
            {
                "symbol": order.symbol,
                "id": trade_id,
                "orderId": order.order_id,
                "orderListId": -1,
                "price": fmt(price),
                "qty": fmt(qty),
                "quoteQty": fmt(price * qty),
                "commission": fmt(ZERO),
                "commissionAsset": quote,
                "time": now,
                "isBuyer": order.side == "BUY",
                "isMaker": order.type == "LIMIT",
                "isBestMatch": True,
            }
        )
        self._report(order, "TRADE", (qty, price, trade_id))
        return {
            "price": fmt(price),
            "qty": fmt(qty),
            "commission": fmt(ZERO),
            "commissionAsset": quote,
            "tradeId": trade_id,
        }

    def _cancel(self, order: FakeOrder) -> None:
        base, quote, _ = SYMBOLS[order.symbol]
        left = order.qty - order.filled
        if order.side == "BUY":
            self._move(quote, order.price * left, -order.price * left)
        else:
            self._move(base, left, -left)
        order.status = "CANCELED"
        self._report(order, "CANCELED", None)

    # ------------------------------------------------------------ websockets

    def _send(self, ws: web.WebSocketResponse, body: Any) -> None:
        if not ws.closed:
            asyncio.get_running_loop().create_task(ws.send_str(json.dumps(body)))

    def _report(self, order: FakeOrder, exec_type: str, fill: tuple[Decimal, Decimal, int] | None) -> None:
        now = ms()
        qty, price, trade_id = fill if fill else (ZERO, ZERO, -1)
        base, quote, _ = SYMBOLS[order.symbol]
        report = {
            "e": "executionReport",
            "E": now,
            "s": order.symbol,
            "c": order.client_id,
            "S": order.side,
            "o": order.type,
            "f": "GTC",
            "q": fmt(order.qty),
            "p": fmt(order.price if order.type == "LIMIT" else ZERO),
            "P": fmt(ZERO),
            "F": fmt(ZERO),
            "g": -1,
            "C": "",
            "x": exec_type,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": fmt(qty),
            "z": fmt(order.filled),
            "L": fmt(price),
            "n": fmt(ZERO),
            "N": quote if fill else None,
            "T": now,
            "t": trade_id,
            "I": now,
            "w": order.status in ("NEW", "PARTIALLY_FILLED"),
            "m": order.type == "LIMIT",
            "M": False,
            "O": order.time,
            "Z": fmt(order.quote),
            "Y": fmt(qty * price),
            "Q": fmt(ZERO),
            "W": order.time,
            "V": "NONE",
        }
        account = {
            "e": "outboundAccountPosition",
            "E": now,
            "u": now,
            "B": [{"a": a, "f": fmt(self.balances[a][0]), "l": fmt(self.balances[a][1])} for a in (base, quote)],
        }
        for ws, subs in self.subscriptions.items():
            for sub in sorted(subs):
                self._send(ws, {"subscriptionId": sub, "event": report})
                self._send(ws, {"subscriptionId": sub, "event": account})

    async def ws_api(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.subscriptions[ws] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                message = json.loads(msg.data)
                req_id, method = message.get("id"), message.get("method")
                if method == "userDataStream.subscribe.signature" and self.refuse_subscriptions:
                    error = {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
                    await ws.send_str(json.dumps({"id": req_id, "status": 503, "error": error}))
                elif method == "userDataStream.subscribe.signature":
                    sub = self.next_id
                    self.next_id += 1
                    self.subscribes += 1
                    await ws.send_str(json.dumps({"id": req_id, "status": 200, "result": {"subscriptionId": sub}}))
                    self.subscriptions[ws].add(sub)
                elif method == "userDataStream.unsubscribe":
                    self.subscriptions[ws].clear()
                    await ws.send_str(json.dumps({"id": req_id, "status": 200, "result": {}}))
                else:
                    self.unknown_requests.append(str(method))
                    await ws.send_str(
                        json.dumps(
                            {
                                "id": req_id,
                                "status": 400,
                                "error": {"code": -1100, "msg": f"Unknown method '{method}'."},
                            }
                        )
                    )
        finally:
            self.subscriptions.pop(ws, None)
        return ws

    async def ws_market(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.market[ws] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                message = json.loads(msg.data)
                if message.get("method") == "SUBSCRIBE":
                    self.market[ws].update(message.get("params") or [])
                await ws.send_str(json.dumps({"result": None, "id": message.get("id")}))
        finally:
            self.market.pop(ws, None)
        return ws

    async def _tick(self) -> None:
        """Tickers to market subscribers every 100 ms."""
        while True:
            await asyncio.sleep(0.1)  # the fake venue's own ticker cadence (Binance pushes on a clock): not a test wait
            for ws, streams in list(self.market.items()):
                for symbol in SYMBOLS:
                    if f"{symbol.lower()}@ticker" in streams:
                        t = self._ticker_json(symbol)
                        self._send(
                            ws,
                            {
                                "e": "24hrTicker",
                                "E": ms(),
                                "s": symbol,
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
                            },
                        )
