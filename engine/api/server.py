"""The service API's transports: a Unix socket in the data directory, and HTTP + WebSocket (off by default).

One route table serves both (``ROUTES``, also the OpenAPI document at ``/api/openapi.json``). What differs is who
is asking, and the transport alone says it:

- **Local** (``DATA_DIR/cockpit.sock``, owner-only): the peer's credentials, read from the kernel
  (``SO_PEERCRED``). Only the engine's own user (or root) is let in, and the actor is ``operator:cli alice``
  (``operator:key alice`` for an attached screen's keys): a client names its kind of front end, never who it is.
- **Remote** (``[api] host`` and ``port``): a bearer token (``engine.api.tokens``). No token or a wrong one is 401,
  a viewer's command 403; the actor is ``api:<token name>``. A peer that keeps failing is answered 429 for a while
  and alerted (``API_AUTH_FAILED``, ``API_AUTH_BLOCKED``). Off loopback it needs TLS or an explicit ``allow_plaintext``.

Events go out on ``WS /api/ws?since=N``: first what the journal has after N (or ``{"type": "resync"}`` when it no
longer has all of it), then every event as it is published, journaled ones with their ``seq``.
aiohttp is imported when the server starts, not before (the first frame of ``cockpit`` does not wait for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import ssl
import struct
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from engine.api import tokens, wire
from engine.api.journal import Journal
from engine.api.local import bindable, socket_path, user_name
from engine.kernel.bus import Subscription
from engine.kernel.commands import CommandResult
from engine.kernel.events import Severity
from engine.kernel.text import inert
from engine.store.db import Store

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

FRONT_ENDS = ("cli", "key")  # what a local client may say it is: the command line, or an attached screen's keys
AUTH_FAILURES_MAX = 10  # failed attempts from one peer in the window before it is refused for a while
AUTH_WINDOW_S = 60.0
AUTH_BLOCK_S = 60.0
BODY_MAX = 64 * 1024


class Backend(Protocol):
    """What the transports need of the engine (``engine.core.service.Service``)."""

    @property
    def journal(self) -> Journal: ...

    @property
    def data_dir(self) -> Path: ...

    async def execute(self, name: str, args: dict[str, Any], actor: str, reason: str) -> CommandResult: ...

    async def query(self, name: str, params: dict[str, Any] | None = None) -> Any: ...

    def subscribe(self) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...

    def alert(self, severity: Severity, code: str, message: str, values: dict[str, Any] | None = None) -> None: ...


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as the transport knows it."""

    actor: str
    may_command: bool
    transport: str  # "local" | "remote"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    query: str | None = None  # a read-model query answered as is
    command: str | None = None  # a command run as is (the body may carry "reason" and its arguments)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", "health check: 200 healthy, 503 not", query="health"),
    Route("GET", "/api/status", "trading state and who set it, the venue, counts", query="status"),
    Route(
        "GET", "/api/status_report", "what `cockpit status --json` prints, read by the engine", query="status_report"
    ),
    Route("GET", "/api/portfolio", "equity, balances, positions, last prices, stops", query="portfolio"),
    Route("GET", "/api/positions", "open positions", query="positions"),
    Route("GET", "/api/balances", "balances per asset", query="balances"),
    Route("GET", "/api/orders", "open orders", query="orders"),
    Route("GET", "/api/trades", "fills, newest first (?limit=&before=)", query="trades"),
    Route("GET", "/api/strategies", "strategies: enabled, guard, stats", query="strategies"),
    Route("GET", "/api/audit", "audit trail, newest first (?limit=&before=&actor=&command=)", query="audit"),
    Route("GET", "/api/alerts", "alerts, newest first (?limit=&before=)", query="alerts"),
    Route("GET", "/api/incidents", "incidents, newest first (?limit=)", query="incidents"),
    Route("GET", "/api/incident_report", "an incident's post-incident report (?id=)", query="incident_report"),
    Route("GET", "/api/order_events", "one order's every event and its source (?client_id=)", query="order_events"),
    Route("GET", "/api/monitors", "every monitor's reading", query="monitors"),
    Route("GET", "/api/emergency", "the kill switch's state", query="emergency"),
    Route("GET", "/api/preflight", "the last go/no-go checklist run", query="preflight"),
    Route("GET", "/api/reconciliation", "the last reconciliation's report", query="reconciliation"),
    Route("GET", "/api/config", "the settings, without secrets", query="config"),
    Route("GET", "/api/snapshot", "what a screen needs for its first frame", query="snapshot"),
    Route("GET", "/api/equity_curve", "equity samples (?limit=)", query="equity_curve"),
    Route("GET", "/api/events", "journaled events after ?since=N (complete: false means start from a snapshot)"),
    Route("POST", "/api/emergency/stop", "kill switch 1: halt (no new orders)", command="halt"),
    Route("POST", "/api/emergency/cancel-all", "kill switch 2: halt and cancel every order", command="cancel-all"),
    Route("POST", "/api/emergency/close-all", "kill switch 3: halt, cancel, sell every position", command="close-all"),
    Route("POST", "/api/emergency/resume", "resume (body: reason; override: true with a reason)", command="resume"),
    Route("POST", "/api/strategies/{name}/toggle", "enable or disable a strategy (body: enabled, optional)"),
    Route("POST", "/api/commands/{name}", "any command the CLI has (body: args, reason)"),
    Route("GET", "/api/openapi.json", "this API's OpenAPI document"),
    Route("GET", "/api/ws", "WebSocket of events (?since=N)"),
)


def peer_uid(transport: Any) -> int | None:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class AuthFailures:
    """Failed token attempts per peer: too many in the window and the peer is refused for a while."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.failures: dict[str, deque[float]] = defaultdict(deque)
        self.blocked_until: dict[str, float] = {}

    def blocked(self, peer: str) -> float:
        """Seconds the peer stays refused (0: not refused)."""
        until = self.blocked_until.get(peer, 0.0)
        left = until - self.now()
        if left <= 0:
            self.blocked_until.pop(peer, None)
            return 0.0
        return left

    def failed(self, peer: str) -> int:
        """Count a failure; return how many in the window (at the limit the peer is refused)."""
        now = self.now()
        seen = self.failures[peer]
        seen.append(now)
        while seen and seen[0] < now - AUTH_WINDOW_S:
            seen.popleft()
        if len(seen) >= AUTH_FAILURES_MAX:
            self.blocked_until[peer] = now + AUTH_BLOCK_S
            seen.clear()
            return AUTH_FAILURES_MAX
        return len(seen)


class ApiServer:
    """Serves the route table on the local socket and, when configured, on host:port."""

    def __init__(
        self,
        backend: Backend,
        *,
        local: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
        remote: bool = False,
    ) -> None:
        self.backend = backend
        self.local = local
        self.remote = remote
        self.host = host
        self.port = port
        self.tls = tls
        self.socket_path = socket_path(backend.data_dir)
        self.failures = AuthFailures()
        self._runners: list[web.AppRunner] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self.url: str | None = None

    # ------------------------------------------------------------ start and stop

    async def start(self) -> None:
        """Serve the local socket, then the remote API; an OSError names the one that failed (the other stays)."""
        if self.local:
            await self.start_local()
        if self.remote:
            await self.start_remote()

    async def start_local(self) -> None:
        from aiohttp import web

        runner = web.AppRunner(self._app(self._local_caller), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        sock = self._bind_local()
        await web.SockSite(runner, sock).start()
        log.info("service API on %s", self.socket_path)

    async def start_remote(self) -> None:
        from aiohttp import web

        runner = web.AppRunner(self._app(self._remote_caller), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runners.append(runner)
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        site = web.TCPSite(runner, self.host, self.port, ssl_context=context)
        await site.start()
        if self.port == 0:
            self.port = int(runner.addresses[-1][1])
        scheme = "https" if context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{host}:{self.port}"
        log.warning("remote API on %s (%s)", self.url, "TLS" if context else "plain HTTP")

    def _bind_local(self) -> socket.socket:
        path = self.socket_path
        # Only one engine runs on a data directory (its lock is held): a socket file here is a dead engine's.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        name, fd = bindable(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # owner-only from the start: no moment where another user could connect
        try:
            sock.bind(name)
        finally:
            os.umask(old)
            if fd is not None:
                os.close(fd)
        os.chmod(path, 0o600)
        sock.listen(64)
        sock.setblocking(False)
        return sock

    async def stop(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"engine stopping")
        for runner in self._runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners.clear()
        if self.local:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    # ------------------------------------------------------------ who is asking

    async def _local_caller(self, request: web.Request) -> Caller:
        from aiohttp import web

        uid = peer_uid(request.transport)
        if uid is None or uid not in (os.getuid(), 0):
            raise web.HTTPForbidden(
                text=wire.dumps({"ok": False, "message": "not the engine's user"}), content_type="application/json"
            )
        front = request.headers.get("X-Cockpit-Front-End", "cli")
        if front not in FRONT_ENDS:
            front = "cli"
        return Caller(f"operator:{front} {user_name(uid)}", True, "local")

    async def _remote_caller(self, request: web.Request) -> Caller:
        from aiohttp import web

        peer = request.remote or "?"
        left = self.failures.blocked(peer)
        if left:
            raise web.HTTPTooManyRequests(
                text=wire.dumps({"ok": False, "message": f"too many failed attempts; try again in {left:.0f}s"}),
                headers={"Retry-After": str(int(left) + 1)},
                content_type="application/json",
            )
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        who = await asyncio.to_thread(self._holder, token) if token else None
        if who is None:
            count = self.failures.failed(peer)
            what = "no token" if not token else "a wrong token"
            if count == 1:
                self.backend.alert(
                    Severity.WARN,
                    "API_AUTH_FAILED",
                    f"remote API: {what} from {inert(peer, limit=64)}",
                    {"peer": peer, "path": request.path},
                )
            elif count == AUTH_FAILURES_MAX:
                self.backend.alert(
                    Severity.WARN,
                    "API_AUTH_BLOCKED",
                    f"remote API: {inert(peer, limit=64)} refused for {AUTH_BLOCK_S:g}s after {count} failed attempts "
                    f"in {AUTH_WINDOW_S:g}s (the last: {what})",
                    {"peer": peer, "failures": count, "blocked_s": AUTH_BLOCK_S},
                )
            raise web.HTTPUnauthorized(
                text=wire.dumps({"ok": False, "message": "a bearer token is needed (cockpit api token create)"}),
                headers={"WWW-Authenticate": 'Bearer realm="cockpit"'},
                content_type="application/json",
            )
        return Caller(who.actor, who.may_command, "remote")

    def _holder(self, token: str) -> tokens.TokenHolder | None:
        store = Store.reader(self.backend.data_dir)
        try:
            return tokens.holder(store, token)
        finally:
            store.close()

    # ------------------------------------------------------------ the routes

    def _app(self, caller: Callable[[web.Request], Awaitable[Caller]]) -> web.Application:
        from aiohttp import web

        @web.middleware
        async def who(request: web.Request, handler: Any) -> web.StreamResponse:
            request[_caller_key()] = await caller(request)
            response: web.StreamResponse = await handler(request)
            return response

        app = web.Application(middlewares=[who], client_max_size=BODY_MAX)
        for route in ROUTES:
            if route.path == "/api/ws":
                app.router.add_get(route.path, self._ws)
            elif route.path == "/api/openapi.json":
                app.router.add_get(route.path, self._openapi)
            elif route.path == "/api/events":
                app.router.add_get(route.path, self._events)
            elif route.path == "/api/commands/{name}":
                app.router.add_post(route.path, self._command)
            elif route.path == "/api/strategies/{name}/toggle":
                app.router.add_post(route.path, self._toggle)
            elif route.query is not None:
                app.router.add_get(route.path, self._query_handler(route.query))
            elif route.command is not None:
                app.router.add_post(route.path, self._command_handler(route.command))
        return app

    def _query_handler(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                answer = await self.backend.query(name, dict(request.query))
            except ValueError as exc:
                return _json({"ok": False, "message": str(exc)}, 400)
            status = 200
            if name == "health" and isinstance(answer, dict) and answer.get("status") != "healthy":
                status = 503
            if name == "health" and isinstance(answer, dict):
                answer = {k: v for k, v in answer.items() if k != "numbers"}
            return _json(answer, status)

        return handle

    def _command_handler(self, name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            body = await _body(request)
            if isinstance(body, Exception):
                return _json({"ok": False, "message": str(body)}, 400)
            args = {k: v for k, v in body.items() if k != "reason"}
            return await self._run(request, name, args, str(body.get("reason") or ""))

        return handle

    async def _command(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, Exception):
            return _json({"ok": False, "message": str(body)}, 400)
        args = body.get("args") or {}
        return await self._run(request, request.match_info["name"], args, str(body.get("reason") or ""))

    async def _toggle(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, Exception):
            return _json({"ok": False, "message": str(body)}, 400)
        name = request.match_info["name"]
        enabled = body.get("enabled")
        if enabled is None:
            statuses = await self.backend.query("strategies")
            current = next((s for s in statuses if s.get("name") == name), None)
            if current is None:
                return _json({"ok": False, "message": f"no strategy {name!r}"}, 404)
            enabled = not bool(current.get("enabled"))
        if not isinstance(enabled, bool):
            return _json({"ok": False, "message": "enabled must be true or false"}, 400)
        return await self._run(
            request, "strategy", {"strategy": name, "enabled": enabled}, str(body.get("reason") or "")
        )

    async def _run(self, request: web.Request, name: str, args: Any, reason: str) -> web.Response:
        caller: Caller = request[_caller_key()]
        if not caller.may_command:
            return _json({"ok": False, "message": f"{caller.actor} may read, not command (role viewer)"}, 403)
        if not isinstance(args, dict):
            return _json({"ok": False, "message": "args must be an object"}, 400)
        try:
            result = await self.backend.execute(name, args, caller.actor, reason or f"{name} from {caller.actor}")
        except ValueError as exc:
            return _json({"ok": False, "message": str(exc)}, 400)
        body = {"ok": result.ok, "message": result.message, "details": dict(result.details), "actor": caller.actor}
        return _json(body, 200 if result.ok else 409)

    async def _events(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
            limit = int(request.query.get("limit", "10000"))
        except ValueError:
            return _json({"ok": False, "message": "since and limit must be whole numbers"}, 400)
        events, complete = self.backend.journal.since(since, limit)
        return _json({"seq": self.backend.journal.seq, "complete": complete, "events": events})

    async def _openapi(self, request: web.Request) -> web.Response:
        return _json(openapi())

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=BODY_MAX)
        await ws.prepare(request)
        self._sockets.add(ws)
        journal = self.backend.journal
        subscription = self.backend.subscribe()  # first: nothing published from here on is missed
        try:
            caller: Caller = request[_caller_key()]
            hello = {"type": "hello", "seq": journal.seq, "actor": caller.actor, "may_command": caller.may_command}
            await ws.send_str(wire.dumps(hello))
            sent = journal.seq
            since = request.query.get("since")
            if since not in (None, ""):
                try:
                    events, complete = journal.since(int(since))
                except ValueError:
                    events, complete = [], False
                if not complete:
                    await ws.send_str(wire.dumps({"type": "resync", "seq": journal.seq}))
                for body in events:
                    await ws.send_str(wire.dumps(body))
                sent = max([sent, *(int(b["seq"]) for b in events)])
            reading = asyncio.create_task(_drain(ws))
            try:
                while not ws.closed:
                    getting = asyncio.ensure_future(subscription.get())
                    done, _ = await asyncio.wait({getting, reading}, return_when=asyncio.FIRST_COMPLETED)
                    if getting not in done:
                        getting.cancel()
                        break  # the client went away
                    batch = [getting.result()]
                    while (more := subscription.get_nowait()) is not None:
                        batch.append(more)
                    for event in batch:
                        out, sent = _outgoing(journal, event, sent)
                        if out is not None:
                            await ws.send_str(out)
            finally:
                reading.cancel()
        except (ConnectionResetError, RuntimeError) as exc:  # the peer went away mid-send
            log.debug("event stream ended: %s", exc)
        finally:
            self.backend.unsubscribe(subscription)
            self._sockets.discard(ws)
            with contextlib.suppress(Exception):
                await ws.close()
        return cast("web.StreamResponse", ws)


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read what the client sends (nothing is expected) until it closes."""
    from aiohttp import WSMsgType

    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            return


def _outgoing(journal: Journal, event: Any, sent: int) -> tuple[str | None, int]:
    """The frame to send for ``event`` (None: nothing), and the last journal number sent."""
    if not journal.journaled(event):
        return (None if type(event) in wire.NOT_SENT else wire.dumps(wire.encode(event))), sent
    seq = journal.seq_of(event)
    if seq is None:  # fell out of memory before it was sent: the client starts again from a snapshot
        return wire.dumps({"type": "resync", "seq": journal.seq}), sent
    if seq <= sent:
        return None, sent  # already sent by the catch-up
    return wire.dumps(wire.encode(event, seq)), seq


@functools.cache
def _caller_key() -> Any:
    from aiohttp import web

    return web.RequestKey("caller", Caller)


def openapi() -> dict[str, Any]:
    """The OpenAPI 3 document of the route table."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        op: dict[str, Any] = {
            "summary": route.summary,
            "responses": {
                "200": {"description": "the answer (JSON)"},
                "401": {"description": "no token or a wrong one (remote)"},
                "403": {"description": "a viewer's command, or not the engine's user (local)"},
            },
            "security": [{"bearer": []}],
        }
        if route.method == "POST":
            op["responses"]["409"] = {"description": "refused by the engine: ok false, message says why"}
            op["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        if "{name}" in route.path:
            op["parameters"] = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "cockpit engine API", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


async def _body(request: web.Request) -> dict[str, Any] | Exception:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except Exception:
        return ValueError("the body must be a JSON object")
    if not isinstance(body, dict):
        return ValueError("the body must be a JSON object")
    return body


def _json(body: Any, status: int = 200) -> web.Response:
    from aiohttp import web

    return web.Response(text=wire.dumps(body), status=status, content_type="application/json")
