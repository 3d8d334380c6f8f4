"""The one venue adapter: ccxt async REST + ccxt.pro streams, with amounts converted to Decimal at the edge.

ccxt's unified structures carry floats. Venue values have at most 15 significant digits, so the float's
shortest repr is exactly the decimal string the venue sent; ``dec`` converts through it, never through
float arithmetic. Orders go out as strings.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_errors  # the exception classes are shared by every ccxt flavour

from engine.events import Balance, Fill, OrderStatus
from engine.exchange import build_exchange
from engine.orders import status_from_ccxt
from engine.resilience import (
    BACKOFF_S, GARBAGE_SYMPTOMS, CircuitBreaker, CircuitOpen, LatencyStats, VenueGarbage, garbage, retry_after_s,
    with_retries,
)
from engine.venuehealth import VenueHealth

log = logging.getLogger(__name__)


def dec(value: Any) -> Decimal | None:
    """A ccxt number (float, int or str) as Decimal, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What the venue says about one order, in the engine's terms."""

    client_id: str
    venue_id: str | None
    symbol: str
    side: str
    type: str
    status: OrderStatus
    amount: Decimal
    filled: Decimal
    price: Decimal | None
    average: Decimal | None
    fills: tuple[Fill, ...] = ()


def _ts(ms: Any) -> datetime:
    if ms is None:
        return datetime.now(timezone.utc)
    return datetime.fromtimestamp(int(ms) / 1000, timezone.utc)


def _is_json(body: str) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _parses(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An answer ccxt passed on but that is not ``what`` (a wrong-shaped JSON) is the venue's garbage, said so."""
    def wrap(parse: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(parse)
        def parsed(raw: Any) -> Any:
            try:
                return parse(raw)
            except GARBAGE_SYMPTOMS as exc:
                raise garbage(what, exc) from None
        return parsed
    return wrap


@_parses("a fill")
def parse_fill(t: dict[str, Any]) -> Fill:
    fee = t.get("fee") or {}
    info = t.get("info") or {}
    return Fill(
        trade_id=str(t.get("id") or info.get("tradeId") or info.get("t")),
        client_id=t.get("clientOrderId") or info.get("clientOrderId") or info.get("c") or None,
        symbol=t["symbol"],
        side=t["side"],
        price=dec(t["price"]) or Decimal(0),
        amount=dec(t["amount"]) or Decimal(0),
        fee=dec(fee.get("cost")) or Decimal(0),
        fee_asset=fee.get("currency"),
        ts=_ts(t.get("timestamp")),
    )


@_parses("an order")
def parse_order(o: dict[str, Any]) -> OrderReport:
    amount = dec(o.get("amount")) or Decimal(0)
    filled = dec(o.get("filled")) or Decimal(0)
    info = o.get("info") or {}
    # A cancel answer carries the cancel request's own id as clientOrderId and ours as origClientOrderId
    # (facts note §5); the order is the original one.
    client_id = info.get("origClientOrderId") or o.get("clientOrderId") or info.get("clientOrderId") or ""
    fills = tuple(
        parse_fill({**t, "symbol": t.get("symbol") or o["symbol"], "side": t.get("side") or o["side"],
                    "clientOrderId": client_id})
        for t in (o.get("trades") or [])
        if t.get("id") is not None
    )
    return OrderReport(
        client_id=client_id,
        venue_id=str(o["id"]) if o.get("id") is not None else None,
        symbol=o["symbol"],
        side=o["side"],
        type=o.get("type") or "limit",
        status=status_from_ccxt(o.get("status"), filled, amount),
        amount=amount,
        filled=filled,
        price=dec(o.get("price")),
        average=dec(o.get("average")),
        fills=fills,
    )


@_parses("a balance")
def parse_balances(raw: dict[str, Any]) -> tuple[Balance, ...]:
    out = []
    free, used = raw.get("free") or {}, raw.get("used") or {}
    for asset in sorted(set(free) | set(used)):
        out.append(Balance(asset, dec(free.get(asset)) or Decimal(0), dec(used.get(asset)) or Decimal(0)))
    return tuple(out)


class Venue:
    """Talks to one exchange through ccxt: every call timed per endpoint, guarded by a circuit breaker, and
    idempotent calls retried on temporary errors."""

    def __init__(
        self,
        exchange_id: str,
        *,
        rest_url: str | None,
        ws_url: str | None,
        api_key: str | None,
        api_secret: str | None,
        timeout_ms: int,
        sandbox: bool = False,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        breaker: CircuitBreaker | None = None,
        on_error: Callable[[str, BaseException], None] | None = None,
        health: VenueHealth | None = None,
        latency_observer: Callable[[str, float], None] | None = None,
        rate_limit: bool = True,
    ) -> None:
        self.exchange_id = exchange_id
        options = dict(rest_url=rest_url, ws_url=ws_url, api_key=api_key, api_secret=api_secret,
                       timeout_ms=timeout_ms)
        self.ex = build_exchange(exchange_id, rate_limit=rate_limit, **options)
        # The kill switch's own lane: a second client with its own HTTP session and no client-side rate limiter,
        # so cancel-all and close-all go out at once, never behind ccxt's throttle debt or the circuit breaker.
        self.urgent = build_exchange(exchange_id, rate_limit=False, **options)
        if sandbox:
            self.ex.set_sandbox_mode(True)
            self.urgent.set_sandbox_mode(True)
        self.backoff_s = backoff_s
        self.breaker = breaker or CircuitBreaker()
        self.latency = LatencyStats(on_record=latency_observer)
        self._on_error = on_error
        self.health = health or VenueHealth(60.0)
        for ex in (self.ex, self.urgent):
            self._time_http_requests(ex)
            self._watch_responses(ex)

    def _time_http_requests(self, ex: Any) -> None:
        """Record each HTTP request's own round trip per endpoint ("GET /api/v3/order").

        Timing the ccxt call instead would count ccxt's client-side rate-limit waits (a weight-80 call
        makes the next one wait ~0.8 s), which is not the venue's latency.
        """
        fetch = ex.fetch

        async def timed_fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            start = time.perf_counter()
            try:
                return await fetch(url, method, headers, body)
            finally:
                path = urlsplit(url).path
                self.latency.record(f"{method} {path}", (time.perf_counter() - start) * 1000)

        ex.fetch = timed_fetch

    def _watch_responses(self, ex: Any) -> None:
        """Every HTTP status and its headers reach ``health`` (a 429 / 418 pauses every request venue-wide)."""
        original = ex.on_rest_response

        def on_rest_response(code: Any, reason: Any, url: str, method: str, headers: Any, body: Any,
                             request_headers: Any, request_body: Any) -> Any:
            try:
                self.health.response(int(code), headers)
            except (TypeError, ValueError):
                pass  # no status (a connection error): ccxt raises it as a network error
            if self.ex.markets and str(code).startswith("2") and isinstance(body, str) and not _is_json(body):
                # Mid-session (markets loaded), a 200 that is not JSON is a proxy page or a cut-off body: say so,
                # instead of letting ccxt hand a string to code that expects an order.
                raise VenueGarbage(f"the venue answered garbage to {method} {urlsplit(url).path}: {body[:60]!r}; "
                                   "check [venue] rest_url and the venue's status")
            return original(code, reason, url, method, headers, body, request_headers, request_body)

        ex.on_rest_response = on_rest_response

    def _failed(self, name: str, exc: BaseException) -> None:
        if isinstance(exc, ccxt_errors.OrderNotFound):
            return  # an answer, not a failure
        self.health.error(name, exc)
        if self._on_error:
            self._on_error(name, exc)

    async def _urgent(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A kill-switch call: straight to the venue, past the breaker and the rate limiter, not retried here
        (the kill switch retries what failed itself). The venue's own Retry-After still holds: a 418 ban would stop
        the kill switch altogether."""
        await self.health.wait_if_paused()
        try:
            result = await getattr(self.urgent, name)(*args, **kwargs)
        except GARBAGE_SYMPTOMS as exc:
            self._failed(name, error := garbage(name, exc))
            raise error from None
        except ccxt_errors.BaseError as exc:
            self._failed(name, exc)
            raise
        self.health.success(name, private=name in PRIVATE_CALLS)
        return result

    async def _once(self, name: str, *args: Any, **kwargs: Any) -> Any:
        await self.health.wait_if_paused()
        self.breaker.before_call()
        try:
            result = await getattr(self.ex, name)(*args, **kwargs)
        except GARBAGE_SYMPTOMS as exc:  # ccxt choked on an answer of the wrong shape
            error = garbage(name, exc)
            self.breaker.failure(error)
            self._failed(name, error)
            raise error from None
        except ccxt_errors.BaseError as exc:
            self.breaker.failure(exc)
            self._failed(name, exc)
            raise
        except BaseException:
            self.breaker.release_probe()
            raise
        self.breaker.success()
        self.health.success(name, private=name in PRIVATE_CALLS)
        return result

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """An idempotent call: retried on temporary errors with backoff, honouring Retry-After."""
        return await with_retries(
            lambda: self._once(name, *args, **kwargs),
            name=name,
            retry_after=lambda: retry_after_s(getattr(self.ex, "last_response_headers", None)),
            give_up=lambda: self.health.banned_for() > 0,  # a 418 ban is not waited out inside one call
            backoff=self.backoff_s,
        )

    async def close(self) -> None:
        await self.ex.close()
        await self.urgent.close()

    # ------------------------------------------------------------ markets

    async def load_markets(self, reload: bool = False) -> dict[str, Any]:
        markets = await self._call("load_markets", reload)
        self.urgent.set_markets_from_exchange(self.ex)
        return markets

    def market(self, symbol: str) -> dict[str, Any]:
        return self.ex.market(symbol)

    def amount_to_precision(self, symbol: str, amount: Decimal) -> Decimal:
        """Rounded down to the venue's step; 0 when less than one step (ccxt raises InvalidOrder for that)."""
        try:
            return Decimal(self.ex.amount_to_precision(symbol, str(amount)))
        except ccxt_errors.InvalidOrder:
            return Decimal(0)

    def price_to_precision(self, symbol: str, price: Decimal) -> Decimal:
        return Decimal(self.ex.price_to_precision(symbol, str(price)))

    def min_amount(self, symbol: str) -> Decimal:
        return dec(self.market(symbol)["limits"]["amount"]["min"]) or Decimal(0)

    def min_cost(self, symbol: str) -> Decimal:
        return dec(self.market(symbol)["limits"]["cost"]["min"]) or Decimal(0)

    # ------------------------------------------------------------ REST

    async def fetch_balances(self, urgent: bool = False) -> tuple[Balance, ...]:
        if urgent:
            return parse_balances(await self._urgent("fetch_balance"))
        return parse_balances(await self._call("fetch_balance"))

    async def ping(self) -> None:
        """One cheap public call (server time, weight 1), not retried: a reading of reachability, latency and
        clock skew (venue minus ours, against the middle of the round trip)."""
        start = time.time()
        server_ms = await self._once("fetch_time")
        end = time.time()
        skew = None if server_ms is None else float(server_ms) - (start + end) / 2 * 1000
        self.health.ping(skew)

    async def resync_clock(self) -> None:
        """Sign requests with the venue's clock: ccxt adds the measured offset to every timestamp."""
        for ex in (self.ex, self.urgent):
            ex.options["adjustForTimeDifference"] = True
            await ex.load_time_difference()

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return await self._call("fetch_ticker", symbol)

    async def create_order(
        self, client_id: str, symbol: str, side: str, type_: str, amount: Decimal, price: Decimal | None,
        urgent: bool = False,
    ) -> OrderReport:
        params = {"newClientOrderId": client_id}
        # Never retried here: after an uncertain failure the engine asks by client id instead (no duplicates).
        call = self._urgent if urgent else self._once
        raw = await call("create_order", symbol, type_, side, str(amount), None if price is None else str(price),
                         params)
        return parse_order(raw)

    async def fetch_order(self, client_id: str, symbol: str, urgent: bool = False) -> OrderReport:
        call = self._urgent if urgent else self._call
        raw = await call("fetch_order", None, symbol, {"origClientOrderId": client_id})
        return parse_order(raw)

    async def cancel_order(self, client_id: str, symbol: str) -> OrderReport:
        raw = await self._call("cancel_order", None, symbol, {"origClientOrderId": client_id})
        return parse_order(raw)

    async def fetch_open_orders(self, symbol: str | None = None, urgent: bool = False) -> list[OrderReport]:
        call = self._urgent if urgent else self._call
        return [parse_order(o) for o in await call("fetch_open_orders", symbol)]

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[tuple[str | None, Fill]]:
        """The account's fills in ``symbol`` since ``since_ms``, each with the venue's order id (myTrades carries
        no client id: the caller maps the order id to its own)."""
        trades = await self._call("fetch_my_trades", symbol, since_ms)
        return [(str(t["order"]) if t.get("order") is not None else None, parse_fill(t)) for t in trades]

    async def cancel_all_orders(self, symbol: str, urgent: bool = False) -> list[OrderReport]:
        call = self._urgent if urgent else self._call
        return [parse_order(o) for o in await call("cancel_all_orders", symbol)]

    # ------------------------------------------------------------ streams

    def user_stream_connected(self) -> bool:
        """Whether ccxt holds an open user-data connection (a quiet account sends no event to prove it)."""
        for url, client in list(getattr(self.ex, "clients", {}).items()):
            if "ws-api" in url and getattr(client, "connection", None) is not None:
                if not client.connection.closed and client.connected.done():
                    return True
        return False

    async def watch_orders(self) -> list[OrderReport]:
        return [parse_order(o) for o in await self.ex.watch_orders()]

    async def watch_my_trades(self) -> list[Fill]:
        return [parse_fill(t) for t in await self.ex.watch_my_trades()]

    async def watch_balance(self) -> tuple[Balance, ...]:
        return parse_balances(await self.ex.watch_balance())

    async def watch_ticker(self, symbol: str) -> dict[str, Any]:
        return await self.ex.watch_ticker(symbol)


# Calls that need the key: one of them answering proves the key works again.
PRIVATE_CALLS = frozenset({"fetch_balance", "create_order", "fetch_order", "cancel_order", "fetch_open_orders",
                           "cancel_all_orders", "fetch_my_trades"})
# Errors that prove the request was turned away before the venue acted on it (a client closed by a reconnect
# refuses before sending anything).
NOT_SENT_ERRORS = (CircuitOpen, ccxt_errors.DDoSProtection, ccxt_errors.RateLimitExceeded,
                   ccxt_errors.ExchangeClosedByUser)
# The venue's clear refusals of an order: it was not placed. Every other error may hide a placed order.
REFUSED_ERRORS = (ccxt_errors.InvalidOrder, ccxt_errors.InsufficientFunds, ccxt_errors.BadRequest,
                  ccxt_errors.BadSymbol, ccxt_errors.AuthenticationError, ccxt_errors.PermissionDenied,
                  ccxt_errors.AccountSuspended, ccxt_errors.OperationRejected)
