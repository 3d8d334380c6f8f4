"""Binance spot REST API served by aiohttp: the middleware (faults, weights, error bodies) and the public
market-data endpoints; the signed ones are in ``restaccount.py``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import errors, payloads
from .access import HostCheck
from .auth import Authenticator
from .candles import INTERVALS_MS
from .clock import SimClock
from .faults import Fault, FaultBook
from .filters import fmt
from .limits import LimitRefusal, RateLimiter, request_weight
from .listenkeys import ListenKeys
from .matching import MatchingEngine
from .params import int_param, required
from .restaccount import AccountRoutes

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONTROL_PREFIX = "/sim/"


# What a REST answer looks like when something between the client and the venue (or the venue itself) is broken.
GARBAGE: dict[str, tuple[str, str]] = {  # body -> (text, content type)
    "html": ("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "text/html"),
    "json": ('{"status": "ok", "data": [1, 2, 3]}', "application/json"),
    "truncated": ('{"symbol": "BTCUSDT", "orderId": 4, "clientOrderId": "x", "price": "6', "application/json"),
}


class RestApi:
    """Builds the aiohttp application; every error leaves as Binance ``{"code","msg"}`` JSON."""

    def __init__(
        self,
        engine: MatchingEngine,
        auth: Authenticator,
        clock: SimClock,
        faults: FaultBook,
        limiter: RateLimiter,
        created_ms: int,
        listen_keys: ListenKeys,
        host_check: HostCheck | None = None,
    ) -> None:
        self.engine = engine
        self.host_check = host_check or HostCheck()
        self.auth = auth
        self.sim_clock = clock
        self.clock = clock.now_ms
        self.faults = faults
        self.limiter = limiter
        self.account = AccountRoutes(engine, auth, clock, faults, limiter, created_ms, listen_keys)
        # False on a futures-only simulator (``--market usdm``): /api/v3 and /sapi answer 404.
        self.serve_spot = True
        # Set when the simulator stops, so requests held by a hang fault end at once.
        self.stopping = asyncio.Event()

    def build_app(self, extra_routes: Callable[[web.UrlDispatcher], None] | None = None) -> web.Application:
        """The aiohttp application with all routes (``extra_routes`` adds the control API and the futures routes)."""
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        if extra_routes is not None:
            extra_routes(r)
        if not self.serve_spot:
            return app
        r.add_get("/api/v3/ping", self.ping)
        r.add_get("/api/v3/time", self.time)
        r.add_get("/api/v3/exchangeInfo", self.exchange_info)
        r.add_get("/api/v3/ticker/24hr", self.ticker_24hr)
        r.add_get("/api/v3/ticker/price", self.ticker_price)
        r.add_get("/api/v3/ticker/bookTicker", self.book_ticker)
        r.add_get("/api/v3/avgPrice", self.avg_price)
        r.add_get("/api/v3/depth", self.depth)
        r.add_get("/api/v3/trades", self.trades)
        r.add_get("/api/v3/aggTrades", self.agg_trades)
        r.add_get("/api/v3/klines", self.klines)
        r.add_get("/api/v3/uiKlines", self.klines)
        self.account.add_routes(r)
        return app

    # ----- plumbing --------------------------------------------------------------------------------------
    async def _hold(self, seconds: float) -> None:
        """Wait ``seconds`` (a latency or hang fault), or less if the simulator stops meanwhile."""
        try:
            async with asyncio.timeout(seconds):  # not wait_for: it can lose a cancellation (Python 3.11)
                await self.stopping.wait()
        except TimeoutError:
            pass

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        hosts = request.headers.getall("Host", [])
        if not self.host_check.allows(hosts):
            # Before faults, weights and routes: a DNS-rebinding page gets nothing from the venue or its control API.
            message = self.host_check.refusal(hosts)
            log.warning("%s %s refused: %s", request.method, request.path, message)
            body = {"error": message} if request.path.startswith(CONTROL_PREFIX) else {"code": -1, "msg": message}
            return web.json_response(body, status=421)
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        method, path, faults = request.method, request.path, self.faults
        retry_after: int | None = None
        held: Fault | None = None
        try:
            if faults.hit("maintenance"):
                raise errors.by_code(1)
            self.limiter.charge(request_weight(method, path, dict(request.rel_url.query)), self.sim_clock.limits_ms())
            if fault := faults.hit("latency", method=method, path=path):
                extra = faults.uniform(0, fault.options["jitter_ms"]) if fault.options["jitter_ms"] else 0
                await self._hold((fault.options["ms"] + extra) / 1000)
            if fault := faults.hit("hang", method=method, path=path):
                await self._hold(fault.options["seconds"])
                return self._with_weight(web.Response(status=504, text="Gateway Time-out"))
            if fault := faults.hit("http-status", method=method, path=path):
                if fault.options["status"] == 429 and fault.options["ban_after"] is not None:
                    now = self.sim_clock.server_ms()
                    self.limiter.limit_until(now, now + fault.options["retry_after"] * 1000, fault.options["ban_after"])
                return self._with_weight(self._status_answer(fault.options))
            if fault := faults.hit("garbage", method=method, path=path):
                text, content_type = GARBAGE[fault.options["body"]]
                return self._with_weight(web.Response(status=200, text=text, content_type=content_type))
            if fault := faults.hit("error-code", method=method, path=path):
                raise errors.by_code(fault.options["code"], fault.options["msg"], fault.options["status"])
            held = faults.hit("accept-then-hang", method=method, path=path)
            response = await handler(request)
        except LimitRefusal as refusal:
            log.info("%s %s -> %s (rate limit), Retry-After %s", method, path, refusal.status, refusal.retry_after)
            response = web.json_response(refusal.error.to_json(), status=refusal.status)
            retry_after = refusal.retry_after
        except errors.VenueError as exc:
            log.debug("%s %s -> %s %s", method, path, exc.code, exc.msg)
            response = web.json_response(exc.to_json(), status=exc.status)
        except web.HTTPException as exc:
            if exc.status == 404:
                response = web.json_response({"code": -1, "msg": "Not found."}, status=404)
            elif exc.status == 405:
                response = web.json_response({"code": -1, "msg": "Method not allowed."}, status=405)
            else:
                raise
        except Exception:
            log.exception("unexpected error serving %s %s", method, path)
            response = web.json_response(
                {"code": -1000, "msg": "An unknown error occurred while processing the request."}, status=500
            )
        if held is not None:
            # The request was processed (an order may be live); only the answer is late, or lost on the way.
            await self._hold(held.options["seconds"])
            if held.options["status"] is not None:
                response = web.Response(
                    status=held.options["status"], text=f"{held.options['status']} simulated gateway error"
                )
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return self._with_weight(response)

    def _with_weight(self, response: web.StreamResponse) -> web.StreamResponse:
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(self.limiter.used_weight)
        return response

    @staticmethod
    def _status_answer(options: dict[str, Any]) -> web.Response:
        status = options["status"]
        if options["code"] is not None:
            err = errors.by_code(options["code"], options["msg"], status)
            response = web.json_response(err.to_json(), status=status)
        else:
            # Gateways answer 5xx with an HTML or plain body; ccxt then maps the status alone.
            response = web.Response(status=status, text=options["msg"] or f"{status} simulated fault")
        if status in (429, 418):
            response.headers["Retry-After"] = str(options["retry_after"])
        return response

    @staticmethod
    def _public(request: web.Request) -> dict[str, str]:
        return dict(request.rel_url.query)

    @staticmethod
    def _json(body: Any) -> web.Response:
        return web.json_response(body)

    def _symbols(self, params: dict[str, str]) -> list[str] | None:
        """``symbol`` or JSON-ish ``symbols=["A","B"]``; None means all; -1121 for an unknown one."""
        if params.get("symbol"):
            names = [params["symbol"]]
        elif params.get("symbols"):
            names = [s.strip().strip('"') for s in params["symbols"].strip("[]").split(",") if s.strip()]
        else:
            return None
        for name in names:
            self.engine.feed(name)
        return names

    # ----- public ----------------------------------------------------------------------------------------
    async def ping(self, request: web.Request) -> web.Response:
        """GET /api/v3/ping."""
        return self._json({})

    async def time(self, request: web.Request) -> web.Response:
        """GET /api/v3/time (the server clock: wall time plus any injected skew it shows, whatever the speed)."""
        return self._json({"serverTime": self.sim_clock.time_answer_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        """GET /api/v3/exchangeInfo (optionally filtered by symbol/symbols)."""
        names = self._symbols(self._public(request)) or list(self.engine.feeds)
        specs = [self.engine.feeds[n].spec for n in names]
        limits = self.limiter
        return self._json(
            payloads.exchange_info(
                specs, self.clock(), limits.weight_limit, limits.orders_per_10s, limits.orders_per_day
            )
        )

    def _one_or_all(self, request: web.Request, build: Callable[[str], dict[str, Any]]) -> web.Response:
        params = self._public(request)
        names = self._symbols(params)
        if params.get("symbol"):
            return self._json(build(params["symbol"]))
        return self._json([build(n) for n in (names or list(self.engine.feeds))])

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/24hr: an object with ``symbol``, a list without."""
        now = self.clock()
        return self._one_or_all(
            request, lambda s: payloads.ticker_24hr(self.engine.feeds[s], now, self.engine.books[s])
        )

    async def ticker_price(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/price."""
        return self._one_or_all(request, lambda s: {"symbol": s, "price": fmt(self.engine.feeds[s].price)})

    async def book_ticker(self, request: web.Request) -> web.Response:
        """GET /api/v3/ticker/bookTicker: best bid and ask of the book with their quantities."""

        def build(s: str) -> dict[str, Any]:
            t = payloads.book_ticker(s, self.engine.books[s])
            return {"symbol": s, "bidPrice": t["b"], "bidQty": t["B"], "askPrice": t["a"], "askQty": t["A"]}

        return self._one_or_all(request, build)

    async def avg_price(self, request: web.Request) -> web.Response:
        """GET /api/v3/avgPrice (the current price stands in for the 5-minute average)."""
        feed = self.engine.feed(required(self._public(request), "symbol"))
        return self._json({"mins": 5, "price": fmt(feed.price), "closeTime": self.clock()})

    async def depth(self, request: web.Request) -> web.Response:
        """GET /api/v3/depth: the synthetic book (with the account's resting orders), up to 5000 levels a side."""
        params = self._public(request)
        symbol = required(params, "symbol")
        self.engine.feed(symbol)
        limit = int_param(params, "limit") or 100
        if not 1 <= limit <= 5000:
            raise errors.VenueError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1-5000'.")
        return self._json(payloads.depth_snapshot(self.engine.books[symbol], limit))

    async def trades(self, request: web.Request) -> web.Response:
        """GET /api/v3/trades: recent public trades (default 500, max 1000)."""
        params = self._public(request)
        feed = self.engine.feed(required(params, "symbol"))
        limit = min(int_param(params, "limit") or 500, 1000)
        return self._json([payloads.public_trade_json(t) for t in feed.recent_trades(limit)])

    async def agg_trades(self, request: web.Request) -> web.Response:
        """GET /api/v3/aggTrades (fromId / startTime / endTime / limit over the last 1000 prints)."""
        params = self._public(request)
        feed = self.engine.feed(required(params, "symbol"))
        limit = min(int_param(params, "limit") or 500, 1000)
        from_id, start, end = int_param(params, "fromId"), int_param(params, "startTime"), int_param(params, "endTime")
        rows = [
            t
            for t in feed.recent_trades(1000)
            if (from_id is None or t.trade_id >= from_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
        return self._json([payloads.agg_trade_json(t) for t in rows])

    async def klines(self, request: web.Request) -> web.Response:
        """GET /api/v3/klines (and uiKlines): candles aggregated from the minute history and the live tape."""
        params = self._public(request)
        feed = self.engine.feed(required(params, "symbol"))
        interval = INTERVALS_MS.get(required(params, "interval"))
        if interval is None:
            raise errors.VenueError(-1120, "Invalid interval.")
        limit = min(int_param(params, "limit") or 500, 1000)
        rows = feed.candles.aggregate(
            interval,
            start_ms=int_param(params, "startTime"),
            end_ms=int_param(params, "endTime"),
            limit=limit,
            now_ms=self.clock(),
        )
        return self._json([payloads.kline_row(c, interval) for c in rows])
