"""Binance spot websockets: raw market streams on ``/ws`` and ``/ws/<n>``, the WS-API user-data stream on
``/ws-api/v3`` (facts note, section 4). Pushes are written synchronously with ``broadcast`` so they keep order."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import errors, payloads
from .access import HostCheck
from .auth import Authenticator
from .faults import FaultBook
from .links import Connection, Link, send
from .listenkeys import ListenKeys
from .market import PublicTrade
from .marketstreams import MarketStreams
from .matching import BalanceDelta, BalanceUpdate, BookChanged, Event, ListUpdate, MatchingEngine, OrderUpdate

log = logging.getLogger(__name__)

# WS-API authentication failures answer with HTTP-like status 401, like the REST API.
AUTH_CODES = frozenset({-1022, -2014, -2015})


class StreamServer:
    """Websocket endpoints of the simulator; ``on_event`` and ``publish_tickers`` feed the subscribers."""

    def __init__(
        self,
        engine: MatchingEngine,
        auth: Authenticator,
        clock: Callable[[], int],
        server_clock: Callable[[], int],
        faults: FaultBook,
        listen_keys: ListenKeys | None = None,
        host_check: HostCheck | None = None,
    ) -> None:
        self.engine = engine
        self.host_check = host_check or HostCheck()
        self.auth = auth
        self.clock = clock
        self.server_clock = server_clock
        self.faults = faults
        self.market = MarketStreams(engine, clock, silenced=lambda: self._faulted("ws-silence", "market"))
        self._user: dict[Connection, dict[int, str]] = {}  # subscription id -> API key
        self._api_connections: set[Connection] = set()
        self._next_subscription: dict[Connection, int] = {}
        self._held_reports: list[dict[str, Any]] = []
        self.listen_keys = listen_keys or ListenKeys()
        self._listen: dict[Connection, str] = {}  # /ws/<listenKey> connections
        # USDⓈ-M futures user streams: their own listen keys (POST /fapi/v1/listenKey), read on /private/ws.
        self.perp_listen_keys = ListenKeys()
        self._perp_listen: dict[Connection, str] = {}
        self._held_perp_reports: list[dict[str, Any]] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._connections: set[ServerConnection] = set()  # every open handler, CLOSING ones included
        self._server: Server | None = None
        self._links: set[Link] = set()  # in-process connections (a backtest's engine)

    async def start(self, host: str, port: int) -> int:
        """Bind and serve; returns the bound port."""
        # ccxt pings every 180 s itself; server-side keepalive pings are off so a slow client is never cut.
        self._server = await serve(
            self._handler, host, port, process_request=self._route, ping_interval=None, close_timeout=1
        )
        bound: int = self._server.sockets[0].getsockname()[1]  # getsockname(): (host, port)
        return bound

    async def stop(self) -> None:
        """Close every connection and the listening socket."""
        for link in list(self._links):
            self.close_link(link)
        if self._server is not None:
            # A client that sent its close frame and then left without closing TCP (binance-connector's stop)
            # keeps its connection CLOSING for ever: cut every transport instead of waiting for handshakes.
            for ws in list(self._connections):
                ws.transport.abort()
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def user_subscriptions(self) -> int:
        """Live user-data subscriptions: WS-API subscriptions plus /ws/<listenKey> connections."""
        return sum(len(subs) for subs in self._user.values()) + len(self._listen) + len(self._perp_listen)

    @property
    def market_connections(self) -> int:
        """Open market-stream connections."""
        return len(self.market.connections)

    # ----- routing ---------------------------------------------------------------------------------------
    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        path = parts.path
        hosts = request.headers.get_all("Host")
        if not self.host_check.allows(hosts):
            log.warning("websocket %s refused: %s", path, self.host_check.refusal(hosts))
            return connection.respond(HTTPStatus.MISDIRECTED_REQUEST, "Misdirected Request\n")
        private = self._perp_private_key(path, parts.query)
        market_path = _futures_market_path(path)
        if private is None and not (market_path in ("/ws", "/stream", "/ws-api/v3") or market_path.startswith("/ws/")):
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        if private == "":
            return connection.respond(HTTPStatus.BAD_REQUEST, "Invalid or expired listenKey\n")
        kind = "user" if private or path == "/ws-api/v3" or self._listen_key_of(path) else "market"
        if self.faults.active("maintenance") or self._faulted("ws-refuse", kind):
            log.info("websocket %s refused (fault)", path)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        return None

    def _perp_private_key(self, path: str, query: str) -> str | None:
        """The futures listen key of a user-stream path (``/private/ws?listenKey=K``, ``/ws/<K>`` with a futures
        key); "" for a private path without a valid key; None for any other path."""
        if path.rstrip("/") == "/private/ws" or path.startswith("/private/ws/"):
            values = parse_qs(query).get("listenKey") or [path[len("/private/ws/") :]]
            key = values[0] if values else ""
            return key if self.perp_listen_keys.valid(key, self.server_clock()) else ""
        segment = path[len("/ws/") :] if path.startswith("/ws/") else ""
        return segment if segment in self.perp_listen_keys.keys else None

    def _listen_key_of(self, path: str) -> str | None:
        segment = path[len("/ws/") :] if path.startswith("/ws/") else ""
        return segment if segment in self.listen_keys.keys else None

    def _faulted(self, name: str, kind: str) -> bool:
        return any(f.options["which"] in ("all", kind) for f in self.faults.active(name))

    # ----- faults ----------------------------------------------------------------------------------------
    def drop(self, which: str, abrupt: bool = True) -> int:
        """Close every market and/or user connection (ws-drop fault); returns how many."""
        targets: set[Connection] = set()
        if which in ("all", "market"):
            targets.update(self.market.connections)
        if which in ("all", "user"):
            targets.update(self._api_connections)
            targets.update(self._listen)
            targets.update(self._perp_listen)
        for ws in targets:
            # Forget it at once: nothing more is pushed to a connection that is going away.
            self.market.remove(ws)
            self._user.pop(ws, None)
            self._listen.pop(ws, None)
            self._perp_listen.pop(ws, None)
            if isinstance(ws, Link):
                self.close_link(ws)  # its reader is told the connection is gone
            elif abrupt:
                ws.transport.abort()  # as a network cut: no close frame
            else:
                task = asyncio.get_running_loop().create_task(ws.close(1001, "going away"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return len(targets)

    def terminate_user_streams(self, api_key: str | None = None) -> int:
        """Send ``eventStreamTerminated`` to user-data subscriptions (of one key, or all) and end them."""
        ended = 0
        now = self.clock()
        for ws, subs in list(self._user.items()):
            for sub_id, key in sorted(subs.items()):
                if api_key is None or key == api_key:
                    send(ws, {"subscriptionId": sub_id, "event": {"e": "eventStreamTerminated", "E": now}})
                    del subs[sub_id]
                    ended += 1
        return ended + self.expire_listen_keys(everything=api_key is None, api_key=api_key)

    def expire_listen_keys(self, *, everything: bool = False, api_key: str | None = None) -> int:
        """Drop listen keys that timed out (or all, or one API key's) with ``listenKeyExpired``."""
        dropped = set(self.listen_keys.expire(self.server_clock(), everything=everything, api_key=api_key))
        dropped |= set(self.perp_listen_keys.expire(self.server_clock(), everything=everything, api_key=api_key))
        if not dropped:
            return 0
        now = self.clock()
        for connections in (self._listen, self._perp_listen):
            for ws, value in list(connections.items()):
                if value in dropped:
                    send(ws, {"e": "listenKeyExpired", "E": now, "listenKey": value})
                    del connections[ws]
        return len(dropped)

    def flush_held_reports(self) -> None:
        """Send execution reports held by reorder-reports, newest first."""
        held, self._held_reports = self._held_reports, []
        for body in reversed(held):
            self._send_user(body)
        held, self._held_perp_reports = self._held_perp_reports, []
        for body in reversed(held):
            self.send_perp_user(body)

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None  # a handler runs after the opening handshake, which sets it
        parts = urlsplit(ws.request.path)
        self._connections.add(ws)
        try:
            listen_key = self._listen_key_of(parts.path)
            perp_key = self._perp_private_key(parts.path, parts.query)
            if perp_key:
                self._perp_listen[ws] = perp_key
                await ws.wait_closed()
            elif parts.path == "/ws-api/v3":
                self._api_connections.add(ws)
                await self._serve_ws_api(ws)
            elif listen_key is not None:
                self._listen[ws] = listen_key
                await ws.wait_closed()
            else:
                await self._serve_market(ws, _futures_market_path(parts.path), parts.query)
        except ConnectionClosed:
            pass
        finally:
            self._perp_listen.pop(ws, None)
            self._connections.discard(ws)
            self.market.remove(ws)
            self._user.pop(ws, None)
            self._api_connections.discard(ws)
            self._listen.pop(ws, None)
            self._next_subscription.pop(ws, None)

    # ----- in-process links (engine.sim.links) -----------------------------------------------------------
    def open_link(self, url: str, deliver: Callable[[Any], None], on_close: Callable[[], None]) -> Link:
        """Open an in-process connection to ``url`` (this server's path, with its query), as a websocket handshake
        would: refused (``ConnectionRefusedError``) where ``_route`` refuses, then registered as ``_handler`` does."""
        parts = urlsplit(url)
        path, query = parts.path or "/", parts.query
        private = self._perp_private_key(path, query)
        market_path = _futures_market_path(path)
        if private is None and not (market_path in ("/ws", "/stream", "/ws-api/v3") or market_path.startswith("/ws/")):
            raise ConnectionRefusedError(f"{path}: not found")
        if private == "":
            raise ConnectionRefusedError("Invalid or expired listenKey")
        kind = "user" if private or path == "/ws-api/v3" or self._listen_key_of(path) else "market"
        if self.faults.active("maintenance") or self._faulted("ws-refuse", kind):
            raise ConnectionRefusedError(f"{path}: Service Unavailable")
        link = Link(path, query, deliver, on_close)
        self._links.add(link)
        listen_key = self._listen_key_of(path)
        if private:
            self._perp_listen[link] = private
        elif path == "/ws-api/v3":
            self._api_connections.add(link)
        elif listen_key is not None:
            self._listen[link] = listen_key
        else:
            self.market.add(link, market_path, query)
        return link

    def link_send(self, link: Link, raw: str) -> None:
        """A message from the link's client (a SUBSCRIBE, a WS-API request): answered on the link at once."""
        if link.closed:
            raise ConnectionError("the link is closed")
        if link in self._api_connections:
            response, subscription = self._ws_api_request(link, raw)
            send(link, response)
            if subscription is not None:  # registered after the answer, as on a websocket
                sub_id, key = subscription
                self._user.setdefault(link, {})[sub_id] = key
            return
        sub = self.market.connections.get(link)
        if sub is None:
            return  # a user stream by listen key takes no requests
        answer = self.market.request(sub, raw)
        for name in [n for n in sub.streams if "@" not in n]:
            sub.streams.discard(name)
            if self.listen_keys.valid(name, self.server_clock()):
                self._listen[link] = name
        if self._listen.get(link) and _unsubscribes(raw, self._listen[link]):
            del self._listen[link]
        send(link, answer)

    def close_link(self, link: Link) -> None:
        """Forget the link (either side closing it); its reader is told once."""
        if link.closed:
            return
        link.closed = True
        self._links.discard(link)
        self._perp_listen.pop(link, None)
        self.market.remove(link)
        self._user.pop(link, None)
        self._api_connections.discard(link)
        self._listen.pop(link, None)
        self._next_subscription.pop(link, None)
        link.on_close()

    # ----- market streams --------------------------------------------------------------------------------
    async def _serve_market(self, ws: ServerConnection, path: str, query: str) -> None:
        sub = self.market.add(ws, path, query)
        async for raw in ws:
            answer = self.market.request(sub, raw)
            # A listen key may be subscribed like a stream (binance-connector's user_data does so).
            for name in [n for n in sub.streams if "@" not in n]:
                sub.streams.discard(name)
                if self.listen_keys.valid(name, self.server_clock()):
                    self._listen[ws] = name
            if self._listen.get(ws) and _unsubscribes(raw, self._listen[ws]):
                del self._listen[ws]
            await ws.send(json.dumps(answer))

    # ----- WS-API ----------------------------------------------------------------------------------------
    async def _serve_ws_api(self, ws: ServerConnection) -> None:
        async for raw in ws:
            response, subscription = self._ws_api_request(ws, raw)
            await ws.send(json.dumps(response))
            # Registered after the answer went out so no event overtakes the subscribe confirmation.
            if subscription is not None:
                sub_id, key = subscription
                self._user.setdefault(ws, {})[sub_id] = key

    def _ws_api_request(self, ws: Connection, raw: str | bytes) -> tuple[dict[str, Any], tuple[int, str] | None]:
        try:
            message = json.loads(raw)
            req_id, method = message.get("id"), message["method"]
            params = message.get("params") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            return {"id": None, "status": 400, "error": {"code": -1102, "msg": "Malformed request."}}, None
        ok: dict[str, Any] = {"id": req_id, "status": 200}
        try:
            if method == "ping":
                return {**ok, "result": {}}, None
            if method == "time":
                return {**ok, "result": {"serverTime": self.server_clock()}}, None
            if method == "userDataStream.subscribe.signature":
                record = self.auth.verify_ws(params, self.server_clock())
                sub_id = self._next_subscription.get(ws, 0)
                self._next_subscription[ws] = sub_id + 1
                return {**ok, "result": {"subscriptionId": sub_id}}, (sub_id, record.key)
            if method == "userDataStream.unsubscribe":
                subs = self._user.get(ws, {})
                target = params.get("subscriptionId")
                if target is None:
                    subs.clear()
                else:
                    subs.pop(int(target), None)
                return {**ok, "result": {}}, None
            if method == "session.subscriptions":
                return {**ok, "result": [{"subscriptionId": s} for s in sorted(self._user.get(ws, set()))]}, None
            raise errors.VenueError(-1100, f"Unknown method '{method}'.")
        except errors.VenueError as exc:
            status = 401 if exc.code in AUTH_CODES else exc.status
            log.info("WS-API %s refused: %s %s", method, exc.code, exc.msg)
            return {"id": req_id, "status": status, "error": exc.to_json()}, None

    # ----- engine events ---------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Forward an engine event: order and balance changes to user streams, trades to ``@trade``."""
        if isinstance(event, PublicTrade):
            self.market.publish_trade(event)
            return
        if isinstance(event, BookChanged):
            self.market.publish_book(event.symbol)
            return
        if not self._user and not self._listen:
            return
        if isinstance(event, OrderUpdate):
            body = payloads.execution_report(event)
            if fault := self.faults.is_active("reorder-reports"):
                # Held until ``count`` reports are in (or the fault is cleared); the fault's end sends them.
                self._held_reports.append(body)
                self.faults.consume(fault)
                return
            self._send_user(body)
            if self.faults.hit("duplicate-report"):
                self._send_user(body)
            return
        if isinstance(event, BalanceUpdate):
            body = payloads.account_position(self.engine, event.assets, event.time)
        elif isinstance(event, BalanceDelta):
            body = payloads.balance_delta(event)
        elif isinstance(event, ListUpdate):
            body = payloads.list_status(self.engine, event)
        else:
            return
        self._send_user(body)

    def send_perp_user(self, body: dict[str, Any]) -> None:
        """Push a futures user-stream event (ORDER_TRADE_UPDATE, ACCOUNT_UPDATE, ALGO_UPDATE) to its listeners."""
        if not self._perp_listen or self._faulted("ws-silence", "user"):
            return
        if body.get("e") == "ORDER_TRADE_UPDATE" and (fault := self.faults.is_active("reorder-reports")):
            self._held_perp_reports.append(body)  # sent newest first when the fault ends (flush_held_reports)
            self.faults.consume(fault)
            return
        for ws in list(self._perp_listen):
            send(ws, body)
        if self.faults.hit("duplicate-report") and body.get("e") == "ORDER_TRADE_UPDATE":
            for ws in list(self._perp_listen):
                send(ws, body)

    def _send_user(self, body: dict[str, Any]) -> None:
        if self._faulted("ws-silence", "user"):
            return
        for ws, subs in list(self._user.items()):
            for sub_id in sorted(subs):
                send(ws, {"subscriptionId": sub_id, "event": body})
        for ws in list(self._listen):
            send(ws, body)


def _futures_market_path(path: str) -> str:
    """A futures market-stream path as its spot equivalent: ccxt's ``binanceusdm`` opens ``/market/ws/<n>`` (mark
    price, klines) and ``/public/ws/<n>`` (book ticker, depth, trades) since Binance split them (shared note
    "Binance USDⓈ-M futures for ccxt"); both serve the shared feeds' streams plus ``@markPrice``."""
    for prefix in ("/market", "/public"):
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return path


def _unsubscribes(raw: str | bytes, name: str) -> bool:
    """``raw`` is an UNSUBSCRIBE request naming ``name``."""
    try:
        message = json.loads(raw)
        return message.get("method") == "UNSUBSCRIBE" and name in (message.get("params") or [])
    except (ValueError, AttributeError, TypeError):
        return False
