"""Binance USDⓈ-M futures REST endpoints (``/fapi/...``), served on the same aiohttp application as spot, behind
the same middleware (faults, weights, error bodies), so every REST fault applies to them too.

Market data comes from the shared price feeds (klines, depth, tickers are the spot market's: one price per symbol);
the account is the futures one (``perp.PerpEngine``). Conditional orders use the algo service
(``/fapi/v1/algoOrder``) as Binance and ccxt 4.5.90 do; ``/fapi/v1/order`` answers -4120 for them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import errors, payloads, perppayloads
from .auth import ApiKey, Authenticator, SignedRoutes, parse_params
from .candles import INTERVALS_MS
from .clock import SimClock
from .faults import FaultBook
from .filters import fmt
from .limits import RateLimiter
from .listenkeys import ListenKeys
from .matching import MatchingEngine
from .params import CLIENT_ID_RE, decimal_param, int_param, required
from .perp import PerpEngine

CANCEL_ALL_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}


def bool_param(params: dict[str, str], name: str) -> bool:
    """A ``true`` / ``false`` parameter (absent: false), -1100 otherwise."""
    raw = params.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() not in ("true", "false"):
        raise errors.illegal(name, "true, false")
    return raw.lower() == "true"


def client_id(params: dict[str, str], name: str) -> str | None:
    """A client order id parameter, -1100 if malformed."""
    value = params.get(name) or None
    if value is not None and not CLIENT_ID_RE.match(value):
        raise errors.illegal(name, CLIENT_ID_RE.pattern)
    return value


class PerpRoutes(SignedRoutes):
    """Handlers of ``/fapi/...``: public market data and the signed futures account."""

    def __init__(
        self,
        perp: PerpEngine,
        spot: MatchingEngine,
        auth: Authenticator,
        clock: SimClock,
        faults: FaultBook,
        limiter: RateLimiter,
        listen_keys: ListenKeys,
    ) -> None:
        self.perp = perp
        self.spot = spot
        self.auth = auth
        self.sim_clock = clock
        self.clock = clock.now_ms
        self.faults = faults
        self.limiter = limiter
        self.listen_keys = listen_keys

    def add_routes(self, r: web.UrlDispatcher) -> None:
        """Register the routes."""
        for path, handler in (
            ("/fapi/v1/ping", self.ping),
            ("/fapi/v1/time", self.time),
            ("/fapi/v1/exchangeInfo", self.exchange_info),
            ("/fapi/v1/depth", self.depth),
            ("/fapi/v1/klines", self.klines),
            ("/fapi/v1/continuousKlines", self.klines),
            ("/fapi/v1/markPriceKlines", self.klines),
            ("/fapi/v1/indexPriceKlines", self.klines),
            ("/fapi/v1/trades", self.trades),
            ("/fapi/v1/aggTrades", self.agg_trades),
            ("/fapi/v1/ticker/24hr", self.ticker_24hr),
            ("/fapi/v1/ticker/price", self.ticker_price),
            ("/fapi/v2/ticker/price", self.ticker_price),
            ("/fapi/v1/ticker/bookTicker", self.book_ticker),
            ("/fapi/v1/premiumIndex", self.premium_index),
            ("/fapi/v1/fundingRate", self.funding_rate),
            ("/fapi/v1/leverageBracket", self.leverage_bracket),
            ("/fapi/v2/account", self.account_v2),
            ("/fapi/v3/account", self.account_v3),
            ("/fapi/v2/balance", self.balance),
            ("/fapi/v3/balance", self.balance),
            ("/fapi/v2/positionRisk", self.position_risk_v2),
            ("/fapi/v3/positionRisk", self.position_risk_v3),
            ("/fapi/v1/positionSide/dual", self.get_dual),
            ("/fapi/v1/symbolConfig", self.symbol_config),
            ("/fapi/v1/accountConfig", self.account_config),
            ("/fapi/v1/multiAssetsMargin", self.multi_assets),
            ("/fapi/v1/order", self.get_order),
            ("/fapi/v1/openOrders", self.open_orders),
            ("/fapi/v1/openOrder", self.get_open_order),
            ("/fapi/v1/allOrders", self.all_orders),
            ("/fapi/v1/userTrades", self.user_trades),
            ("/fapi/v1/income", self.income),
            ("/fapi/v1/forceOrders", self.force_orders),
            ("/fapi/v1/commissionRate", self.commission_rate),
            ("/fapi/v1/algoOrder", self.get_algo),
            ("/fapi/v1/openAlgoOrders", self.open_algos),
        ):
            r.add_get(path, handler)
        r.add_post("/fapi/v1/leverage", self.set_leverage)
        r.add_post("/fapi/v1/marginType", self.set_margin_type)
        r.add_post("/fapi/v1/positionSide/dual", self.set_dual)
        r.add_post("/fapi/v1/order", self.new_order)
        r.add_delete("/fapi/v1/order", self.cancel_order)
        r.add_delete("/fapi/v1/allOpenOrders", self.cancel_all)
        r.add_post("/fapi/v1/countdownCancelAll", self.countdown)
        r.add_post("/fapi/v1/algoOrder", self.new_algo)
        r.add_delete("/fapi/v1/algoOrder", self.cancel_algo)
        r.add_delete("/fapi/v1/algoOpenOrders", self.cancel_all_algos)
        r.add_post("/fapi/v1/listenKey", self.listen_key_new)
        r.add_put("/fapi/v1/listenKey", self.listen_key_keepalive)
        r.add_delete("/fapi/v1/listenKey", self.listen_key_close)

    # ----- plumbing --------------------------------------------------------------------------------------
    @staticmethod
    def _json(body: Any) -> web.Response:
        return web.json_response(body)

    @staticmethod
    def _public(request: web.Request) -> dict[str, str]:
        return dict(request.rel_url.query)

    def _symbol(self, params: dict[str, str], *, needed: bool = True) -> str | None:
        symbol = required(params, "symbol") if needed else (params.get("symbol") or None)
        if symbol is not None:
            self.perp.spec(symbol)
        return symbol

    def _one_or_all(self, request: web.Request, build: Any) -> web.Response:
        symbol = self._symbol(self._public(request), needed=False)
        if symbol is not None:
            return self._json(build(symbol))
        return self._json([build(s) for s in self.perp.specs])

    def _check_reject_fault(self, symbol: str, order_type: str | None) -> None:
        if fault := self.faults.hit("order-reject", symbol=symbol, order_type=order_type):
            o = fault.options
            raise errors.by_code(o["code"], o["msg"], o["status"])

    def _check_cancel_fault(self, symbol: str) -> None:
        if fault := self.faults.hit("cancel-fail", symbol=symbol):
            o = fault.options
            raise errors.by_code(o["code"], o["msg"], o["status"])

    def _count_order(self, response: web.Response) -> web.Response:
        count_10s, count_day = self.limiter.count_order(self.sim_clock.limits_ms())
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(count_10s)
        response.headers["X-MBX-ORDER-COUNT-1M"] = str(count_day)
        return response

    # ----- public ----------------------------------------------------------------------------------------
    async def ping(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ping."""
        return self._json({})

    async def time(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/time."""
        return self._json({"serverTime": self.sim_clock.time_answer_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/exchangeInfo."""
        limits = self.limiter
        return self._json(
            perppayloads.exchange_info(self.perp, self.clock(), limits.weight_limit, limits.orders_per_10s)
        )

    async def depth(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/depth: the synthetic book of the shared feed (limit 5..1000)."""
        params = self._public(request)
        symbol = self._symbol(params)
        assert symbol is not None
        limit = int_param(params, "limit") or 500
        book = self.spot.books[symbol]
        now = self.clock()
        return self._json(
            {
                "lastUpdateId": book.update_id,
                "E": now,
                "T": now,
                "bids": [[fmt(p), fmt(q)] for p, q in book.levels("bids", min(limit, 1000), synthetic_only=True)],
                "asks": [[fmt(p), fmt(q)] for p, q in book.levels("asks", min(limit, 1000), synthetic_only=True)],
            }
        )

    async def klines(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/klines (also the continuous, mark and index variants: one price per symbol)."""
        params = self._public(request)
        symbol = params.get("symbol") or params.get("pair") or ""
        if not symbol:
            raise errors.missing("symbol")
        self.perp.spec(symbol)
        interval = INTERVALS_MS.get(required(params, "interval"))
        if interval is None:
            raise errors.VenueError(-1120, "Invalid interval.")
        limit = min(int_param(params, "limit") or 500, 1500)
        rows = self.perp.feeds[symbol].candles.aggregate(
            interval,
            start_ms=int_param(params, "startTime"),
            end_ms=int_param(params, "endTime"),
            limit=limit,
            now_ms=self.clock(),
        )
        return self._json([payloads.kline_row(c, interval) for c in rows])

    async def trades(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/trades."""
        params = self._public(request)
        symbol = self._symbol(params)
        assert symbol is not None
        limit = min(int_param(params, "limit") or 500, 1000)
        rows = self.perp.feeds[symbol].recent_trades(limit)
        return self._json([{**payloads.public_trade_json(t), "isBuyerMaker": t.buyer_is_maker} for t in rows])

    async def agg_trades(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/aggTrades."""
        params = self._public(request)
        symbol = self._symbol(params)
        assert symbol is not None
        limit = min(int_param(params, "limit") or 500, 1000)
        return self._json([payloads.agg_trade_json(t) for t in self.perp.feeds[symbol].recent_trades(limit)])

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ticker/24hr."""
        now = self.clock()
        return self._one_or_all(request, lambda s: payloads.ticker_24hr(self.spot.feeds[s], now, self.spot.books[s]))

    async def ticker_price(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ticker/price and /fapi/v2/ticker/price."""
        now = self.clock()
        return self._one_or_all(request, lambda s: {"symbol": s, "price": fmt(self.perp.last(s)), "time": now})

    async def book_ticker(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ticker/bookTicker."""
        now = self.clock()

        def build(s: str) -> dict[str, Any]:
            t = payloads.book_ticker(s, self.spot.books[s])
            return {
                "symbol": s,
                "bidPrice": t["b"],
                "bidQty": t["B"],
                "askPrice": t["a"],
                "askQty": t["A"],
                "time": now,
                "lastUpdateId": t["u"],
            }

        return self._one_or_all(request, build)

    async def premium_index(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/premiumIndex: mark price, funding rate of the next funding, next funding time."""
        now = self.clock()
        return self._one_or_all(request, lambda s: perppayloads.premium_index(self.perp, s, now))

    async def funding_rate(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/fundingRate: settled fundings (symbol, startTime, endTime, limit ≤ 1000)."""
        params = self._public(request)
        symbol = self._symbol(params, needed=False)
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        limit = min(int_param(params, "limit") or 100, 1000)
        rows = [
            r
            for r in self.perp.funding_history
            if (symbol is None or r.symbol == symbol)
            and (start is None or r.time >= start)
            and (end is None or r.time <= end)
        ]
        rows = rows[:limit] if start is not None else rows[-limit:]
        return self._json(
            [
                {"symbol": r.symbol, "fundingRate": fmt(r.rate), "fundingTime": r.time, "markPrice": fmt(r.mark)}
                for r in rows
            ]
        )

    # ----- account (signed) ------------------------------------------------------------------------------
    async def leverage_bracket(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/leverageBracket (a list; one object when a symbol is given)."""
        p = await self._signed(request)
        symbol = self._symbol(p, needed=False)
        rows = perppayloads.leverage_brackets(self.perp, symbol)
        return self._json(rows[0] if symbol else rows)

    async def account_v2(self, request: web.Request) -> web.Response:
        """GET /fapi/v2/account."""
        await self._signed(request)
        return self._json(perppayloads.account_json(self.perp, 2))

    async def account_v3(self, request: web.Request) -> web.Response:
        """GET /fapi/v3/account (positions with an amount only)."""
        await self._signed(request)
        return self._json(perppayloads.account_json(self.perp, 3))

    async def balance(self, request: web.Request) -> web.Response:
        """GET /fapi/v2/balance and /fapi/v3/balance."""
        await self._signed(request)
        return self._json(perppayloads.balance_json(self.perp))

    async def position_risk_v2(self, request: web.Request) -> web.Response:
        """GET /fapi/v2/positionRisk: every symbol (or one)."""
        p = await self._signed(request)
        symbol = self._symbol(p, needed=False)
        rows = [
            perppayloads.position_risk(self.perp, pos, 2)
            for s, pos in self.perp.account.positions.items()
            if symbol is None or s == symbol
        ]
        return self._json(rows)

    async def position_risk_v3(self, request: web.Request) -> web.Response:
        """GET /fapi/v3/positionRisk: symbols with a position or working orders."""
        p = await self._signed(request)
        symbol = self._symbol(p, needed=False)
        working = {o.symbol for o in self.perp.open_orders()}
        rows = [
            perppayloads.position_risk(self.perp, pos, 3)
            for s, pos in self.perp.account.positions.items()
            if (symbol is None or s == symbol) and (pos.amt or s in working)
        ]
        return self._json(rows)

    async def set_leverage(self, request: web.Request) -> web.Response:
        """POST /fapi/v1/leverage."""
        p = await self._trading(request)
        symbol = self._symbol(p)
        assert symbol is not None
        leverage = int_param(p, "leverage")
        if leverage is None:
            raise errors.missing("leverage")
        value, max_notional = self.perp.set_leverage(symbol, leverage)
        return self._json({"leverage": value, "maxNotionalValue": str(int(max_notional)), "symbol": symbol})

    async def set_margin_type(self, request: web.Request) -> web.Response:
        """POST /fapi/v1/marginType (ISOLATED or CROSSED)."""
        p = await self._trading(request)
        symbol = self._symbol(p)
        assert symbol is not None
        self.perp.set_margin_type(symbol, required(p, "marginType"))
        return self._json({"code": 200, "msg": "success"})

    async def get_dual(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/positionSide/dual: always one-way."""
        await self._signed(request)
        return self._json({"dualSidePosition": False})

    async def symbol_config(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/symbolConfig: leverage and margin type per symbol (ccxt fetch_leverages, fetch_margin_modes)."""
        p = await self._signed(request)
        symbol = self._symbol(p, needed=False)
        return self._json(
            [
                {
                    "symbol": s,
                    "marginType": pos.margin_type,
                    "isAutoAddMargin": False,
                    "leverage": pos.leverage,
                    "maxNotionalValue": str(int(self.perp.specs[s].max_notional(pos.leverage))),
                }
                for s, pos in self.perp.account.positions.items()
                if symbol is None or s == symbol
            ]
        )

    async def account_config(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/accountConfig."""
        await self._signed(request)
        return self._json(
            {
                "feeTier": 0,
                "canTrade": True,
                "canDeposit": True,
                "canWithdraw": False,
                "dualSidePosition": False,
                "updateTime": 0,
                "multiAssetsMargin": False,
                "tradeGroupId": -1,
            }
        )

    async def multi_assets(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/multiAssetsMargin: single-asset (USDT) margin."""
        await self._signed(request)
        return self._json({"multiAssetsMargin": False})

    async def set_dual(self, request: web.Request) -> web.Response:
        """POST /fapi/v1/positionSide/dual: the simulator is one-way only, so hedge mode is refused."""
        p = await self._trading(request)
        if bool_param(p, "dualSidePosition"):
            raise errors.VenueError(
                -1100,
                "Illegal characters found in parameter 'dualSidePosition'; legal range is 'false' "
                "(this simulator trades in one-way position mode only).",
            )
        if "dualSidePosition" not in p:
            raise errors.missing("dualSidePosition")
        raise errors.VenueError(-4059, "No need to change position side.")

    async def new_order(self, request: web.Request) -> web.Response:
        """POST /fapi/v1/order: MARKET and LIMIT, with reduceOnly."""
        p = await self._trading(request)
        symbol = self._symbol(p)
        assert symbol is not None
        order_type = required(p, "type")
        self._check_reject_fault(symbol, order_type)
        if p.get("positionSide") not in (None, "", "BOTH"):
            raise errors.VenueError(-4061, "Order's position side does not match user's setting.")
        if bool_param(p, "closePosition"):
            raise errors.VenueError(
                -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
            )
        order = self.perp.new_order(
            symbol=symbol,
            side=required(p, "side"),
            type=order_type,
            quantity=decimal_param(p, "quantity"),
            price=decimal_param(p, "price"),
            time_in_force=p.get("timeInForce") or None,
            reduce_only=bool_param(p, "reduceOnly"),
            client_order_id=client_id(p, "newClientOrderId"),
        )
        return self._count_order(self._json(perppayloads.order_json(order)))

    def _order_ref(self, p: dict[str, str]) -> tuple[str, int | None, str | None]:
        symbol = self._symbol(p)
        assert symbol is not None
        order_id, cid = int_param(p, "orderId"), p.get("origClientOrderId") or None
        if order_id is None and cid is None:
            raise errors.VenueError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        return symbol, order_id, cid

    async def get_order(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/order by orderId or origClientOrderId."""
        symbol, order_id, cid = self._order_ref(await self._signed(request))
        return self._json(perppayloads.order_json(self.perp.find(symbol, order_id, cid)))

    async def get_open_order(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/openOrder: -2013 unless the order is still working."""
        symbol, order_id, cid = self._order_ref(await self._signed(request))
        order = self.perp.find(symbol, order_id, cid)
        if not order.is_open:
            raise errors.VenueError(-2013, "Order does not exist.")
        return self._json(perppayloads.order_json(order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        """DELETE /fapi/v1/order."""
        symbol, order_id, cid = self._order_ref(await self._trading(request))
        self._check_cancel_fault(symbol)
        return self._json(perppayloads.order_json(self.perp.cancel(symbol, order_id, cid)))

    async def open_orders(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/openOrders (symbol optional)."""
        p = await self._signed(request)
        symbol = self._symbol(p, needed=False)
        return self._json([perppayloads.order_json(o) for o in self.perp.open_orders(symbol)])

    async def cancel_all(self, request: web.Request) -> web.Response:
        """DELETE /fapi/v1/allOpenOrders: every working order of the symbol (not the conditional ones)."""
        p = await self._trading(request)
        symbol = self._symbol(p)
        assert symbol is not None
        self._check_cancel_fault(symbol)
        self.perp.cancel_all(symbol)
        return self._json(CANCEL_ALL_DONE)

    async def all_orders(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/allOrders (symbol required; orderId/startTime/endTime/limit)."""
        p = await self._signed(request)
        symbol = self._symbol(p)
        from_id, start, end = int_param(p, "orderId"), int_param(p, "startTime"), int_param(p, "endTime")
        limit = min(int_param(p, "limit") or 500, 1000)
        rows = [
            o
            for o in self.perp.orders.values()
            if o.symbol == symbol
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
        return self._json([perppayloads.order_json(o) for o in rows])

    async def force_orders(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/forceOrders: the account's liquidation orders (``autoclose-``)."""
        p = await self._signed(request)
        symbol = self._symbol(p, needed=False)
        rows = [o for o in self.perp.orders.values() if o.liquidation and (symbol is None or o.symbol == symbol)]
        return self._json([perppayloads.order_json(o) for o in rows[-(int_param(p, "limit") or 50) :]])

    async def commission_rate(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/commissionRate."""
        p = await self._signed(request)
        symbol = self._symbol(p)
        return self._json(
            {
                "symbol": symbol,
                "makerCommissionRate": str(self.perp.maker_fee),
                "takerCommissionRate": str(self.perp.taker_fee),
            }
        )

    async def user_trades(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/userTrades (symbol required; orderId/startTime/endTime/fromId/limit)."""
        p = await self._signed(request)
        symbol = self._symbol(p)
        order_id, from_id = int_param(p, "orderId"), int_param(p, "fromId")
        start, end = int_param(p, "startTime"), int_param(p, "endTime")
        limit = min(int_param(p, "limit") or 500, 1000)
        rows = [
            f
            for f in self.perp.fills
            if f.symbol == symbol
            and (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start is None or f.time >= start)
            and (end is None or f.time <= end)
        ]
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
        return self._json([perppayloads.user_trade_json(f) for f in rows])

    async def income(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/income (symbol, incomeType, startTime, endTime, limit ≤ 1000, default 100)."""
        p = await self._signed(request)
        symbol = self._symbol(p, needed=False)
        kind = p.get("incomeType") or None
        start, end = int_param(p, "startTime"), int_param(p, "endTime")
        limit = min(int_param(p, "limit") or 100, 1000)
        rows = [
            i
            for i in self.perp.income
            if (symbol is None or i.symbol == symbol)
            and (kind is None or i.income_type == kind)
            and (start is None or i.time >= start)
            and (end is None or i.time <= end)
        ]
        rows = rows[:limit] if start is not None else rows[-limit:]
        return self._json(
            [
                {
                    "symbol": i.symbol,
                    "incomeType": i.income_type,
                    "income": fmt(i.income),
                    "asset": perppayloads.MARGIN_ASSET,
                    "info": i.info or i.income_type,
                    "time": i.time,
                    "tranId": i.tran_id,
                    "tradeId": i.trade_id,
                }
                for i in rows
            ]
        )

    async def countdown(self, request: web.Request) -> web.Response:
        """POST /fapi/v1/countdownCancelAll: cancel the symbol's orders unless renewed in time (0 stops it)."""
        p = await self._trading(request)
        symbol = self._symbol(p)
        assert symbol is not None
        countdown = int_param(p, "countdownTime")
        if countdown is None:
            raise errors.missing("countdownTime")
        self.perp.arm_countdown(symbol, countdown)
        return self._json({"symbol": symbol, "countdownTime": str(countdown)})

    # ----- conditional orders (algo service) ---------------------------------------------------------------
    async def new_algo(self, request: web.Request) -> web.Response:
        """POST /fapi/v1/algoOrder (algoType CONDITIONAL)."""
        p = await self._trading(request)
        symbol = self._symbol(p)
        assert symbol is not None
        if required(p, "algoType") != "CONDITIONAL":
            raise errors.illegal("algoType", "CONDITIONAL")
        order_type = required(p, "type")
        self._check_reject_fault(symbol, order_type)
        algo = self.perp.new_algo(
            symbol=symbol,
            side=required(p, "side"),
            order_type=order_type,
            quantity=decimal_param(p, "quantity"),
            trigger_price=decimal_param(p, "triggerPrice"),
            price=decimal_param(p, "price"),
            time_in_force=p.get("timeInForce") or None,
            reduce_only=bool_param(p, "reduceOnly"),
            close_position=bool_param(p, "closePosition"),
            working_type=p.get("workingType") or "CONTRACT_PRICE",
            client_algo_id=client_id(p, "clientAlgoId"),
        )
        return self._count_order(self._json(perppayloads.algo_json(algo)))

    def _algo_ref(self, p: dict[str, str]) -> tuple[int | None, str | None]:
        algo_id, cid = int_param(p, "algoId"), p.get("clientAlgoId") or None
        if algo_id is None and cid is None:
            raise errors.VenueError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        return algo_id, cid

    async def get_algo(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/algoOrder by algoId or clientAlgoId."""
        algo_id, cid = self._algo_ref(await self._signed(request))
        return self._json(perppayloads.algo_json(self.perp.find_algo(algo_id, cid)))

    async def cancel_algo(self, request: web.Request) -> web.Response:
        """DELETE /fapi/v1/algoOrder."""
        p = await self._trading(request)
        algo_id, cid = self._algo_ref(p)
        symbol = p.get("symbol")
        if symbol:
            self._check_cancel_fault(symbol)
        algo = self.perp.cancel_algo(algo_id, cid)
        return self._json(
            {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}
        )

    async def open_algos(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/openAlgoOrders."""
        p = await self._signed(request)
        symbol = self._symbol(p, needed=False)
        return self._json([perppayloads.algo_json(a) for a in self.perp.open_algos(symbol)])

    async def cancel_all_algos(self, request: web.Request) -> web.Response:
        """DELETE /fapi/v1/algoOpenOrders."""
        p = await self._trading(request)
        symbol = self._symbol(p)
        assert symbol is not None
        self._check_cancel_fault(symbol)
        self.perp.cancel_all_algos(symbol)
        return self._json(CANCEL_ALL_DONE)

    # ----- user-data stream listen keys (API key only) ---------------------------------------------------
    async def _listen_params(self, request: web.Request) -> tuple[ApiKey, dict[str, str]]:
        record = self.auth.check_key(request.headers.get("X-MBX-APIKEY"))
        raw_body = (await request.read()).decode() if request.can_read_body else ""
        return record, {**parse_params(raw_body), **dict(request.rel_url.query)}

    async def listen_key_new(self, request: web.Request) -> web.Response:
        """POST /fapi/v1/listenKey: a key for ``/private/ws?listenKey=`` (or ``/ws/<key>``)."""
        record, _ = await self._listen_params(request)
        return self._json({"listenKey": self.listen_keys.create(record.key, self.sim_clock.server_ms())})

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        """PUT /fapi/v1/listenKey: Binance futures keeps the caller's key alive (no key parameter needed)."""
        record, p = await self._listen_params(request)
        value = p.get("listenKey") or next(
            (lk.key for lk in self.listen_keys.keys.values() if lk.api_key == record.key), ""
        )
        self.listen_keys.keepalive(value, record.key, self.sim_clock.server_ms())
        return self._json({"listenKey": value})

    async def listen_key_close(self, request: web.Request) -> web.Response:
        """DELETE /fapi/v1/listenKey."""
        record, p = await self._listen_params(request)
        value = p.get("listenKey") or next(
            (lk.key for lk in self.listen_keys.keys.values() if lk.api_key == record.key), ""
        )
        self.listen_keys.close(value, record.key)
        return self._json({})
