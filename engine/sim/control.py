"""The simulator's control API under ``/sim/`` on the REST port: inject and clear faults, read state.

Loopback peers only, with the simulator's control token (``Authorization: Bearer <token>`` or
``X-Cockpit-Sim-Token``, see ``access.py``), no API key; JSON in and out. ``faultcli.py`` (``cockpit sim fault ...``)
is its client.

    GET    /sim/faults          active faults, every fault so far, and the catalogue of names and options
    POST   /sim/faults          {"name": "http-status", "options": {"status": 503}, "duration": 30} -> {"fault": {...}}
    DELETE /sim/faults          clear every active fault -> {"cleared": [ids]}
    DELETE /sim/faults/{id}     clear one fault
    GET    /sim/status          addresses, clock, prices, keys masked (no secrets)
    GET    /sim/account         balances, every order ever placed and the trade count (the venue's truth, for checks)
    POST   /sim/price           {"symbol": "BTCUSDT", "price": "60000"} moves the price at once
    POST   /sim/funding         {"seconds": 2} brings the next USDⓈ-M funding time to 2 s (market time) from now
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from .access import ENV_TOKEN, TOKEN_HEADER, is_loopback, mask_key, request_token, token_matches
from .faults import CATALOGUE, FaultError

if TYPE_CHECKING:
    from .server import Simulator

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def catalogue_json() -> dict[str, Any]:
    """Every fault name with its summary and options."""
    return {
        spec.name: {
            "summary": spec.summary,
            "one_shot": spec.one_shot,
            "options": {
                o.name: {
                    "type": o.type.__name__,
                    "default": None
                    if o.default is None
                    else str(o.default)
                    if isinstance(o.default, Decimal)
                    else o.default,
                    "required": o.required,
                    "help": o.help,
                    "choices": list(o.choices),
                }
                for o in spec.options
            },
        }
        for spec in CATALOGUE.values()
    }


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class ControlApi:
    """Routes of the control API, bound to one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the ``/sim/`` routes."""
        router.add_get("/sim/faults", self._guard(self.list_faults))
        router.add_post("/sim/faults", self._guard(self.inject))
        router.add_delete("/sim/faults", self._guard(self.clear_all))
        router.add_delete("/sim/faults/{fault_id}", self._guard(self.clear_one))
        router.add_get("/sim/status", self._guard(self.status))
        router.add_get("/sim/account", self._guard(self.account))
        router.add_post("/sim/price", self._guard(self.set_price))
        router.add_post("/sim/funding", self._guard(self.schedule_funding))

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not is_loopback(request.remote):
                log.warning("control API refused for %s", request.remote)
                return _error(403, "the simulator control API answers loopback peers only")
            origin = request.headers.get("Origin")
            if origin and not is_loopback(urlsplit(origin).hostname or ""):
                # A web page open in a local browser must not be able to inject faults.
                log.warning("control API refused for Origin %s", origin)
                return _error(403, "the simulator control API refuses requests from web pages")
            given = request_token(request.headers.get("Authorization"), request.headers.get(TOKEN_HEADER))
            if not token_matches(given, self.sim.control_token):
                log.warning(
                    "control API refused %s %s: %s token",
                    request.method,
                    request.path,
                    "missing" if given is None else "wrong",
                )
                return self._token_refusal(given is not None)
            if request.method != "GET" and request.can_read_body and request.content_type != "application/json":
                return _error(415, "send JSON with Content-Type: application/json")
            return await handler(request)

        return guarded

    def _token_refusal(self, wrong: bool) -> web.Response:
        path = self.sim.control_token_file
        where = (
            f"in {path} (readable by its owner only) and printed by `cockpit sim` at start"
            if path is not None
            else "printed by `cockpit sim` at start (in process: Simulator.control_token)"
        )
        response = _error(
            401,
            f"{'wrong' if wrong else 'missing'} control token: send `Authorization: Bearer <token>` (or "
            f"{TOKEN_HEADER}); the token is {where}; `cockpit sim fault` reads that file, or ${ENV_TOKEN}",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="cockpit-sim"'
        return response

    async def list_faults(self, request: web.Request) -> web.Response:
        """GET /sim/faults."""
        faults = self.sim.faults.all()
        return web.json_response(
            {
                "active": [f.to_json() for f in faults if f.active],
                "history": [f.to_json() for f in faults],
                "catalogue": catalogue_json(),
            }
        )

    async def inject(self, request: web.Request) -> web.Response:
        """POST /sim/faults."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, 'body must be JSON: {"name": ..., "options": {...}, "duration": seconds}')
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return _error(400, 'body must be a JSON object with a string "name"')
        options = body.get("options") or {}
        if not isinstance(options, dict):
            return _error(400, '"options" must be a JSON object')
        try:
            fault_id = self.sim.faults.inject(body["name"], duration=body.get("duration"), **options)
        except FaultError as exc:
            return _error(400, str(exc))
        except (TypeError, ValueError) as exc:
            return _error(400, f"{body['name']}: {exc}")
        return web.json_response({"fault": self.sim.faults.get(fault_id).to_json()})

    async def clear_all(self, request: web.Request) -> web.Response:
        """DELETE /sim/faults."""
        return web.json_response({"cleared": self.sim.faults.clear()})

    async def clear_one(self, request: web.Request) -> web.Response:
        """DELETE /sim/faults/{id}."""
        raw = request.match_info["fault_id"]
        if not raw.isdigit():
            return _error(400, f"fault id must be a number, got {raw!r}")
        try:
            return web.json_response({"cleared": self.sim.faults.clear(int(raw))})
        except FaultError as exc:
            return _error(404, str(exc))

    async def status(self, request: web.Request) -> web.Response:
        """GET /sim/status."""
        sim = self.sim
        return web.json_response(
            {
                "rest_url": sim.rest_url,
                "ws_url": sim.ws_url,
                "seed": sim.seed,
                "market": sim.market,
                "speed": sim.clock.speed,
                "market_time": sim.clock.now_ms(),
                "server_time": sim.clock.server_ms(),
                "prices": {s: str(sim.price(s)) for s in sim.feeds},
                "keys": [
                    {
                        "key": mask_key(k.key),
                        "can_trade": k.can_trade,
                        "can_withdraw": k.can_withdraw,
                        "revoked": k.revoked,
                    }
                    for k in sim.auth.keys.values()
                ],
                "active_faults": [f.to_json() for f in sim.faults.active()],
            }
        )

    async def account(self, request: web.Request) -> web.Response:
        """GET /sim/account."""
        return web.json_response(self.sim.account())

    async def set_price(self, request: web.Request) -> web.Response:
        """POST /sim/price."""
        try:
            body = await request.json()
            symbol, price = str(body["symbol"]), Decimal(str(body["price"]))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, InvalidOperation):
            return _error(400, 'body must be JSON: {"symbol": "BTCUSDT", "price": "60000"}')
        if symbol not in self.sim.feeds:
            return _error(400, f"unknown symbol {symbol!r}")
        if not price.is_finite() or price <= 0:
            return _error(400, "price must be positive")
        return web.json_response({"symbol": symbol, "price": str(self.sim.set_price(symbol, price))})

    async def schedule_funding(self, request: web.Request) -> web.Response:
        """POST /sim/funding."""
        if self.sim.perp is None:
            return _error(400, "this simulator serves spot only: start it with --market usdm or both")
        try:
            body = await request.json()
            seconds = float(body["seconds"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
            return _error(400, 'body must be JSON: {"seconds": 2}')
        if not 0 <= seconds < float("inf"):
            return _error(400, "seconds must be 0 or more")
        return web.json_response({"next_funding_time": self.sim.schedule_funding(seconds)})
