"""Binance spot SIGNED endpoints: account, orders, OCO order lists, trades, API-key restrictions, and listen keys.

Order faults (``order-reject``, ``cancel-fail``) are applied here, after the signature is checked.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import errors, payloads
from .auth import ApiKey, Authenticator, SignedRoutes, parse_params
from .clock import SimClock
from .faults import FaultBook
from .limits import RateLimiter
from .listenkeys import ListenKeys
from .matching import MatchingEngine
from .params import CLIENT_ID_RE, decimal_param, int_param, required


class AccountRoutes(SignedRoutes):
    """Handlers of the signed (and API-key-only) endpoints."""

    def __init__(
        self,
        engine: MatchingEngine,
        auth: Authenticator,
        clock: SimClock,
        faults: FaultBook,
        limiter: RateLimiter,
        created_ms: int,
        listen_keys: ListenKeys,
    ) -> None:
        self.engine = engine
        self.auth = auth
        self.sim_clock = clock
        self.clock = clock.now_ms
        self.faults = faults
        self.limiter = limiter
        self.created_ms = created_ms
        self.listen_keys = listen_keys

    def add_routes(self, r: web.UrlDispatcher) -> None:
        """Register the routes."""
        r.add_get("/api/v3/account", self.account)
        r.add_post("/api/v3/order", self.new_order)
        r.add_post("/api/v3/order/test", self.test_order)
        r.add_post("/api/v3/order/cancelReplace", self.cancel_replace)
        r.add_get("/api/v3/order", self.get_order)
        r.add_delete("/api/v3/order", self.cancel_order)
        r.add_get("/api/v3/openOrders", self.open_orders)
        r.add_delete("/api/v3/openOrders", self.cancel_open_orders)
        r.add_get("/api/v3/allOrders", self.all_orders)
        r.add_get("/api/v3/myTrades", self.my_trades)
        r.add_post("/api/v3/orderList/oco", self.new_oco)
        r.add_delete("/api/v3/orderList", self.cancel_order_list)
        r.add_get("/api/v3/orderList", self.get_order_list)
        r.add_get("/api/v3/openOrderList", self.open_order_lists)
        r.add_get("/sapi/v1/account/apiRestrictions", self.api_restrictions)
        r.add_post("/api/v3/userDataStream", self.listen_key_new)
        r.add_put("/api/v3/userDataStream", self.listen_key_keepalive)
        r.add_delete("/api/v3/userDataStream", self.listen_key_close)

    @staticmethod
    def _json(body: Any) -> web.Response:
        return web.json_response(body)

    async def account(self, request: web.Request) -> web.Response:
        """GET /api/v3/account."""
        await self._signed(request)
        return self._json(payloads.account_json(self.engine))

    def _order_args(self, p: dict[str, str]) -> dict[str, Any]:
        symbol = required(p, "symbol")
        self.engine.feed(symbol)
        client_id = p.get("newClientOrderId") or None
        if client_id is not None and not CLIENT_ID_RE.match(client_id):
            raise errors.illegal("newClientOrderId", CLIENT_ID_RE.pattern)
        return dict(
            symbol=symbol,
            side=required(p, "side"),
            type=required(p, "type"),
            quantity=decimal_param(p, "quantity"),
            quote_order_qty=decimal_param(p, "quoteOrderQty"),
            price=decimal_param(p, "price"),
            stop_price=decimal_param(p, "stopPrice"),
            time_in_force=p.get("timeInForce") or None,
            client_order_id=client_id,
        )

    def _check_reject_fault(self, symbol: str, order_type: str | None = None) -> None:
        if fault := self.faults.hit("order-reject", symbol=symbol, order_type=order_type):
            o = fault.options
            raise errors.by_code(o["code"], o["msg"], o["status"])

    async def new_order(self, request: web.Request) -> web.Response:
        """POST /api/v3/order (form body)."""
        p = await self._trading(request)
        args = self._order_args(p)
        self._check_reject_fault(args["symbol"], args["type"])
        count_10s, count_day = self.limiter.count_order(self.sim_clock.limits_ms())
        order = self.engine.new_order(**args)
        default_resp = "FULL" if args["type"] in ("MARKET", "LIMIT") else "ACK"
        response = self._json(payloads.new_order_json(order, p.get("newOrderRespType") or default_resp))
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(count_10s)
        response.headers["X-MBX-ORDER-COUNT-1D"] = str(count_day)
        return response

    async def cancel_replace(self, request: web.Request) -> web.Response:
        """POST /api/v3/order/cancelReplace: cancel an order (``cancelOrderId`` or ``cancelOrigClientOrderId``) and
        place a new one on the same symbol, in one request (weight 1; the new order counts toward the order rate
        even when not attempted). ``cancelReplaceMode`` STOP_ON_FAILURE: a cancel that fails places nothing (-2022,
        HTTP 400, ``newOrderResult`` NOT_ATTEMPTED); ALLOW_FAILURE: the new order is tried anyway. One half failing
        is -2021 (HTTP 409), both -2022 (HTTP 400); ``data`` holds each half's answer or error, as Binance's."""
        p = await self._trading(request)
        mode = required(p, "cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise errors.VenueError(-1100, "Illegal characters found in parameter 'cancelReplaceMode'.")
        order_id, orig_id = int_param(p, "cancelOrderId"), p.get("cancelOrigClientOrderId") or None
        if order_id is None and orig_id is None:
            raise errors.VenueError(
                -1102, "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!"
            )
        args = self._order_args(p)
        count_10s, count_day = self.limiter.count_order(self.sim_clock.limits_ms())
        cancel_json: dict[str, object] | None = None
        cancel_error: dict[str, object] | None = None
        try:
            self._check_cancel_fault(args["symbol"])
            cancelled, cancel_id = self.engine.cancel(
                args["symbol"], order_id, orig_id, p.get("cancelNewClientOrderId") or None
            )
            cancel_json = payloads.cancel_json(cancelled, cancel_id, self.clock())
        except errors.VenueError as exc:
            cancel_error = exc.to_json()
        new_json: dict[str, object] | None = None
        new_error: dict[str, object] | None = None
        if cancel_error is None or mode == "ALLOW_FAILURE":
            try:
                self._check_reject_fault(args["symbol"], args["type"])
                order = self.engine.new_order(**args)
                default_resp = "FULL" if args["type"] in ("MARKET", "LIMIT") else "ACK"
                new_json = payloads.new_order_json(order, p.get("newOrderRespType") or default_resp)
            except errors.VenueError as exc:
                new_error = exc.to_json()
        cancel_result = "FAILURE" if cancel_error is not None else "SUCCESS"
        new_result = "SUCCESS" if new_json is not None else "FAILURE" if new_error is not None else "NOT_ATTEMPTED"
        data: dict[str, object] = {
            "cancelResult": cancel_result,
            "newOrderResult": new_result,
            "cancelResponse": cancel_json if cancel_json is not None else cancel_error,
            "newOrderResponse": new_json if new_json is not None else new_error,
        }
        if cancel_result == "SUCCESS" and new_result == "SUCCESS":
            response = self._json(data)
        elif cancel_result == "SUCCESS" or new_result == "SUCCESS":
            raise errors.VenueError(-2021, "Order cancel-replace partially failed.", 409, data)
        else:
            raise errors.VenueError(-2022, "Order cancel-replace failed.", 400, data)
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(count_10s)
        response.headers["X-MBX-ORDER-COUNT-1D"] = str(count_day)
        return response

    async def test_order(self, request: web.Request) -> web.Response:
        """POST /api/v3/order/test: validate like a new order, place nothing."""
        p = await self._trading(request)
        args = self._order_args(p)
        self._check_reject_fault(args["symbol"], args["type"])
        self.engine.new_order(**args, dry_run=True)
        return self._json({})

    def _oco_leg(self, p: dict[str, str], leg: str) -> dict[str, Any]:
        client_id = p.get(f"{leg}ClientOrderId") or None
        if client_id is not None and not CLIENT_ID_RE.match(client_id):
            raise errors.illegal(f"{leg}ClientOrderId", CLIENT_ID_RE.pattern)
        return dict(
            type=required(p, f"{leg}Type"),
            price=decimal_param(p, f"{leg}Price"),
            stop_price=decimal_param(p, f"{leg}StopPrice"),
            time_in_force=p.get(f"{leg}TimeInForce") or None,
            client_order_id=client_id,
        )

    async def new_oco(self, request: web.Request) -> web.Response:
        """POST /api/v3/orderList/oco: an OCO list (a take-profit kind above or below a stop-loss kind). Order
        faults apply to it as to one order, by either leg's type."""
        p = await self._trading(request)
        symbol = required(p, "symbol")
        self.engine.feed(symbol)
        above, below = self._oco_leg(p, "above"), self._oco_leg(p, "below")
        for leg in (above, below):
            self._check_reject_fault(symbol, leg["type"])
        quantity = decimal_param(p, "quantity")
        if quantity is None:
            raise errors.missing("quantity")
        list_id = p.get("listClientOrderId") or None
        if list_id is not None and not CLIENT_ID_RE.match(list_id):
            raise errors.illegal("listClientOrderId", CLIENT_ID_RE.pattern)
        self.limiter.count_order(self.sim_clock.limits_ms())
        count_10s, count_day = self.limiter.count_order(self.sim_clock.limits_ms())  # a list counts two orders
        order_list, legs = self.engine.new_oco(
            symbol=symbol,
            side=required(p, "side"),
            quantity=quantity,
            above=above,
            below=below,
            list_client_order_id=list_id,
        )
        resp_type = p.get("newOrderRespType") or "FULL"
        reports = [payloads.new_order_json(o, resp_type) for o in legs]
        response = self._json(payloads.order_list_json(self.engine, order_list, reports))
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(count_10s)
        response.headers["X-MBX-ORDER-COUNT-1D"] = str(count_day)
        return response

    def _list_ref(self, p: dict[str, str], client_key: str) -> tuple[int | None, str | None]:
        list_id, client_id = int_param(p, "orderListId"), p.get(client_key) or None
        if list_id is None and client_id is None:
            raise errors.VenueError(
                -1102, f"Param '{client_key}' or 'orderListId' must be sent, but both were empty/null!"
            )
        return list_id, client_id

    async def cancel_order_list(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/orderList by orderListId or listClientOrderId: both legs cancelled."""
        p = await self._trading(request)
        symbol = required(p, "symbol")
        list_id, client_id = self._list_ref(p, "listClientOrderId")
        self.engine.feed(symbol)
        self._check_cancel_fault(symbol)
        order_list, legs = self.engine.cancel_list(symbol, list_id, client_id)
        now = self.clock()
        reports = [payloads.cancel_json(o, cid, now) for o, cid in legs]
        return self._json(payloads.order_list_json(self.engine, order_list, reports))

    async def get_order_list(self, request: web.Request) -> web.Response:
        """GET /api/v3/orderList by orderListId or origClientOrderId (the list's client id)."""
        list_id, client_id = self._list_ref(await self._signed(request), "origClientOrderId")
        return self._json(payloads.order_list_json(self.engine, self.engine.find_list(list_id, client_id), None))

    async def open_order_lists(self, request: web.Request) -> web.Response:
        """GET /api/v3/openOrderList: the lists still executing."""
        await self._signed(request)
        lists = [x for x in self.engine.order_lists.values() if x.is_open]
        return self._json([payloads.order_list_json(self.engine, x, None) for x in lists])

    def _check_cancel_fault(self, symbol: str) -> None:
        if fault := self.faults.hit("cancel-fail", symbol=symbol):
            o = fault.options
            raise errors.by_code(o["code"], o["msg"], o["status"])

    def _order_ref(
        self, p: dict[str, str], client_key: str = "origClientOrderId"
    ) -> tuple[str, int | None, str | None]:
        symbol = required(p, "symbol")
        order_id, client_id = int_param(p, "orderId"), p.get(client_key) or None
        if order_id is None and client_id is None:
            raise errors.VenueError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        return symbol, order_id, client_id

    async def get_order(self, request: web.Request) -> web.Response:
        """GET /api/v3/order by orderId or origClientOrderId."""
        symbol, order_id, client_id = self._order_ref(await self._signed(request))
        return self._json(payloads.order_json(self.engine.find(symbol, order_id, client_id)))

    async def cancel_order(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/order by orderId or origClientOrderId."""
        p = await self._trading(request)
        symbol, order_id, client_id = self._order_ref(p)
        self.engine.feed(symbol)
        self._check_cancel_fault(symbol)
        order, cancel_id = self.engine.cancel(symbol, order_id, client_id, p.get("newClientOrderId") or None)
        return self._json(payloads.cancel_json(order, cancel_id, self.clock()))

    async def open_orders(self, request: web.Request) -> web.Response:
        """GET /api/v3/openOrders (symbol optional)."""
        p = await self._signed(request)
        symbol = p.get("symbol") or None
        if symbol is not None:
            self.engine.feed(symbol)
        return self._json([payloads.order_json(o) for o in self.engine.open_orders(symbol)])

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/openOrders (symbol required)."""
        p = await self._trading(request)
        now = self.clock()
        symbol = required(p, "symbol")
        self.engine.feed(symbol)
        self._check_cancel_fault(symbol)
        cancelled = self.engine.cancel_all(symbol)
        return self._json([payloads.cancel_json(o, cid, now) for o, cid in cancelled])

    async def all_orders(self, request: web.Request) -> web.Response:
        """GET /api/v3/allOrders (symbol required; orderId/startTime/endTime/limit)."""
        p = await self._signed(request)
        symbol = required(p, "symbol")
        self.engine.feed(symbol)
        from_id, start, end = int_param(p, "orderId"), int_param(p, "startTime"), int_param(p, "endTime")
        limit = min(int_param(p, "limit") or 500, 1000)
        rows = [
            o
            for o in self.engine.orders.values()
            if o.symbol == symbol
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        return self._json([payloads.order_json(o) for o in rows[:limit]])

    async def my_trades(self, request: web.Request) -> web.Response:
        """GET /api/v3/myTrades (symbol required; orderId/startTime/endTime/fromId/limit)."""
        p = await self._signed(request)
        symbol = required(p, "symbol")
        self.engine.feed(symbol)
        order_id, from_id = int_param(p, "orderId"), int_param(p, "fromId")
        start, end = int_param(p, "startTime"), int_param(p, "endTime")
        limit = min(int_param(p, "limit") or 500, 1000)
        rows = [
            f
            for f in self.engine.trades
            if f.symbol == symbol
            and (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start is None or f.time >= start)
            and (end is None or f.time <= end)
        ]
        # Binance counts forward from fromId/startTime, otherwise returns the most recent trades.
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
        return self._json([payloads.my_trade_json(f) for f in rows])

    async def api_restrictions(self, request: web.Request) -> web.Response:
        """GET /sapi/v1/account/apiRestrictions: what the calling key may do (a pre-flight check refuses a key
        that can withdraw)."""
        record, _ = await self._signed_key(request)
        return self._json(record.restrictions(self.created_ms))

    # ----- legacy user-data stream (API key only, no signature) ------------------------------------------
    async def _listen_params(self, request: web.Request) -> tuple[ApiKey, dict[str, str]]:
        record = self.auth.check_key(request.headers.get("X-MBX-APIKEY"))
        raw_body = (await request.read()).decode() if request.can_read_body else ""
        return record, {**parse_params(raw_body), **dict(request.rel_url.query)}

    async def listen_key_new(self, request: web.Request) -> web.Response:
        """POST /api/v3/userDataStream: a listen key for /ws/<listenKey>."""
        record, _ = await self._listen_params(request)
        return self._json({"listenKey": self.listen_keys.create(record.key, self.sim_clock.server_ms())})

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        """PUT /api/v3/userDataStream: keep a listen key alive for 60 more minutes."""
        record, p = await self._listen_params(request)
        self.listen_keys.keepalive(required(p, "listenKey"), record.key, self.sim_clock.server_ms())
        return self._json({})

    async def listen_key_close(self, request: web.Request) -> web.Response:
        """DELETE /api/v3/userDataStream."""
        record, p = await self._listen_params(request)
        self.listen_keys.close(required(p, "listenKey"), record.key)
        return self._json({})
