"""The one venue adapter: ccxt async REST + ccxt.pro streams, with amounts converted to Decimal at the edge.

``Venue.from_settings`` is the only way to build one (the engine, the no-engine emergency path and the go/no-go
checklist all do it so), and nothing outside ``engine.venue`` touches the ccxt client: what the checklist probes is
a ``Venue`` method too. Answers are parsed in ``engine.venue.parse``; orders go out as strings.

Why one module of this length: ``Venue`` is the one seam over ccxt, both clients (routine and urgent) and their
hooks; keeping it whole keeps that seam in one place.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from engine.kernel.config import VenueConfig
from engine.kernel.errors import EngineError
from engine.kernel.events import STOP_ID_PREFIX, Balance, Fill, OrderStatus
from engine.venue import errors as vx
from engine.venue.clock import VenueClock, note_round_trip, skew_from
from engine.venue.exchange import build_exchange
from engine.venue.health import VenueHealth, is_rate_limited
from engine.venue.inprocess import StreamWire, in_process
from engine.venue.parse import (
    BINANCE_STATUS,
    OrderReport,
    PerpPosition,
    _is_json,
    dec,
    parse_balances,
    parse_binance_order,
    parse_binance_orders,
    parse_fill,
    parse_my_trades,
    parse_order,
    parse_orders,
    parse_positions,
    status_from_ccxt,
)
from engine.venue.ratelimit import weight_limit_from
from engine.venue.resilience import (
    BACKOFF_S,
    GARBAGE_SYMPTOMS,
    CircuitBreaker,
    LatencyStats,
    garbage,
    retry_after_s,
    with_retries,
)
from engine.venue.userhold import UserStreamHold

__all__ = [
    "BINANCE_STATUS",
    "Endpoint",
    "OrderReport",
    "PerpPosition",
    "Venue",
    "dec",
    "not_sent_errors",
    "parse_balances",
    "parse_binance_order",
    "parse_binance_orders",
    "parse_fill",
    "parse_my_trades",
    "parse_order",
    "parse_orders",
    "refused_errors",
    "status_from_ccxt",
]

log = logging.getLogger(__name__)

CCXT_TICK_SIZE = 4  # ccxt.TICK_SIZE: a market's precision is its step (ccxt is imported where it connects)
PRECISE_MEMO = 4096  # answers of ccxt's precision functions kept (then forgotten all at once)

# ccxt binance's key for the spot user-data subscription on its WS-API client, and the future its subscribe waits on.
USER_ACCOUNT = "spot"
USER_SUBSCRIBING = "authenticate:signature:spot"


@dataclass(frozen=True)
class Endpoint:
    """Where a venue answers and with which keys: the configured exchange, or the built-in simulator's loopback
    server and its paper keys."""

    exchange_id: str
    rest_url: str | None
    ws_url: str | None
    api_key: str | None
    api_secret: str | None
    sandbox: bool

    @classmethod
    def configured(cls, cfg: VenueConfig, mode: str) -> Endpoint:
        """The configured venue; paper with no URL of its own uses the exchange's testnet (sandbox)."""
        return cls(
            cfg.exchange,
            cfg.rest_url,
            cfg.ws_url,
            cfg.api_key.get_secret_value() if cfg.api_key else None,
            cfg.api_secret.get_secret_value() if cfg.api_secret else None,
            sandbox=cfg.rest_url is None and mode == "paper",
        )


T = TypeVar("T")


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
        market: str = "spot",
        wire: StreamWire | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        # "usdm": perpetual futures (positions, leverage, reduce-only, the dead-man's switch); "spot" otherwise.
        self.market_type = market
        self.usdm = market == "usdm"
        self.balance_reason: str | None = None  # why the latest streamed balance moved (USDⓈ-M's ``m``)
        # USDⓈ-M: list the algo service's orders with the book's once this engine rests protective stops there (a
        # stop tracked from before a restart is asked for by client id meanwhile).
        self.lists_algos = False
        options: dict[str, Any] = dict(
            rest_url=rest_url, ws_url=ws_url, api_key=api_key, api_secret=api_secret, timeout_ms=timeout_ms
        )
        # Binance-style venues answer in Binance's own words (parsed here where ccxt's unified parse is slow), count
        # request weight per minute and say how much is used in every answer: both clients then share one budget
        # that follows that count (``engine.venue.ratelimit``), with no debt carried across idle time. Elsewhere ccxt's
        # own limiter paces the routine client. ``rate_limit = false`` (a validation run's private simulator) paces
        # nothing.
        self.binance = exchange_id.startswith("binance")
        self.follows_weight = self.binance and rate_limit
        self.ex = build_exchange(exchange_id, rate_limit=rate_limit, market=market, **options)
        # The user stream's events can be held while the kill switch's cancels are out (``hold_user_stream``).
        self.user_hold = UserStreamHold(self.ex)
        # The kill switch's own lane: a second client with its own HTTP session, past the circuit breaker, first in
        # line for the weight budget (and with no client-side limiter where the venue reports no weight).
        self.urgent = build_exchange(exchange_id, rate_limit=self.follows_weight, market=market, **options)
        if sandbox:
            self.ex.set_sandbox_mode(True)
            self.urgent.set_sandbox_mode(True)
        if wire is not None:  # a backtest: the simulator's streams in this process (GATE-17)
            in_process(self.ex, wire)
            in_process(self.urgent, wire)
        self.backoff_s = backoff_s
        self.breaker = breaker or CircuitBreaker()
        self.latency = LatencyStats(on_record=latency_observer)
        self._on_error = on_error
        self.health = health or VenueHealth(60.0)
        self._tickers_seen: dict[str, Any] = {}  # symbol -> the timestamp of the ticker last handed out
        # (kind, symbol, the value as ccxt is given it) -> ccxt's answer, for the markets it was worked out with:
        # the protective stop's prices and amount are asked for again at every ticker while a position is held.
        self._precise: dict[tuple[str, str, str], Decimal] = {}
        self._precise_markets: Any = None
        for ex, urgent in ((self.ex, False), (self.urgent, True)):
            self._time_http_requests(ex)
            self._watch_responses(ex)
            if self.follows_weight:
                self._pace_by_weight(ex, urgent)
        # Both clients sign with the venue's clock: followed by every ping, resynced when a signed call is refused
        # for its timestamp (-1021). A resync reads the time on the kill switch's lane, past the breaker.
        self.clock = VenueClock((self.ex, self.urgent), self.health, lambda: self._urgent("fetch_time", then=skew_from))

    @classmethod
    def from_settings(
        cls,
        cfg: VenueConfig,
        mode: str,
        *,
        endpoint: Endpoint | None = None,
        backoff_s: tuple[float, ...] | None = None,
        breaker: CircuitBreaker | None = None,
        on_error: Callable[[str, BaseException], None] | None = None,
        health: VenueHealth | None = None,
        latency_observer: Callable[[str, float], None] | None = None,
        wire: StreamWire | None = None,
    ) -> Venue:
        """The one way to build a venue: from ``[venue]`` (or the simulator's ``endpoint``), in ``mode``, with the
        engine's hooks where it has them. The simulator speaks Binance, so it is reached as ``binance`` (with
        ``market = "usdm"``, Binance's USDⓈ-M futures, as ``binanceusdm``). ``wire``: the simulator's streams in this
        process instead of websockets (a backtest, ``engine.venue.inprocess``)."""
        where = endpoint or Endpoint.configured(cfg, mode)
        exchange_id = "binance" if where.exchange_id == "sim" else where.exchange_id
        if cfg.market == "usdm" and exchange_id == "binance":
            exchange_id = "binanceusdm"  # Binance's USDⓈ-M futures are their own ccxt client
        return cls(
            exchange_id,
            rest_url=where.rest_url,
            ws_url=where.ws_url,
            api_key=where.api_key,
            api_secret=where.api_secret,
            timeout_ms=cfg.timeout_ms,
            sandbox=where.sandbox,
            backoff_s=tuple(cfg.retry_backoff_s) if backoff_s is None else backoff_s,
            breaker=breaker,
            on_error=on_error,
            health=health,
            latency_observer=latency_observer,
            rate_limit=cfg.rate_limit,
            market=cfg.market,
            wire=wire,
        )

    def _pace_by_weight(self, ex: Any, urgent: bool) -> None:
        """Replace ccxt's throttle with the venue's weight budget. ccxt calls ``throttle(cost)`` right before each
        request (its cost: Binance's weight × 0.2, so that rateLimit 50 ms gives 6000 a minute); the weight is
        handed to ``fetch``, which tells the budget when the answer is in."""
        budget = self.health.budget

        async def throttle(cost: Any = None) -> None:
            weight = float(cost if cost is not None else 1) * budget.limit * ex.rateLimit / 60_000
            minute = await budget.acquire(weight, urgent=urgent)
            ex.cockpit_weight = (weight, minute)  # no await between here and the fetch it belongs to

        ex.throttle = throttle

    def _time_http_requests(self, ex: Any) -> None:
        """Record each HTTP request's own round trip per endpoint ("GET /api/v3/order").

        Timing the ccxt call instead would count ccxt's client-side rate-limit waits (a weight-80 call
        makes the next one wait ~0.8 s), which is not the venue's latency.
        """
        fetch = ex.fetch

        async def timed_fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            weight, ex.cockpit_weight = getattr(ex, "cockpit_weight", None), None
            start, sent_at = time.perf_counter(), time.time()
            try:
                return await fetch(url, method, headers, body)
            finally:
                path = urlsplit(url).path
                self.latency.record(f"{method} {path}", (time.perf_counter() - start) * 1000)
                note_round_trip(sent_at, time.time())  # a time reading's own round trip (venueclock)
                if weight is not None:
                    self.health.budget.settled(*weight)

        ex.fetch = timed_fetch

    def _watch_responses(self, ex: Any) -> None:
        """Every HTTP status and its headers reach ``health`` (a 429 / 418 pauses every request venue-wide)."""
        original = ex.on_rest_response

        def on_rest_response(
            code: Any,
            reason: Any,
            url: str,
            method: str,
            headers: Any,
            body: Any,
            request_headers: Any,
            request_body: Any,
        ) -> Any:
            try:
                self.health.response(int(code), headers)
            except (TypeError, ValueError):
                pass  # no status (a connection error): ccxt raises it as a network error
            if str(code) == "200" and urlsplit(url).path.endswith("/exchangeInfo"):
                self._learn_weight_limit(body)
            if self.ex.markets and str(code).startswith("2") and isinstance(body, str) and not _is_json(body):
                # Mid-session (markets loaded), a 200 that is not JSON is a proxy page or a cut-off body: say so,
                # instead of letting ccxt hand a string to code that expects an order.
                raise vx.own_class("VenueGarbage")(
                    f"the venue answered garbage to {method} {urlsplit(url).path}: {body[:60]!r}; check [venue] "
                    "rest_url and the venue's status"
                )
            return original(code, reason, url, method, headers, body, request_headers, request_body)

        ex.on_rest_response = on_rest_response

    def _learn_weight_limit(self, body: Any) -> None:
        """The venue's request weight per minute, from exchangeInfo's ``rateLimits`` (ccxt keeps no copy of it)."""
        try:
            limit = weight_limit_from(json.loads(body))
        except (TypeError, ValueError):
            return
        if limit:
            self.health.budget.limit = limit

    def _failed(self, name: str, exc: BaseException) -> None:
        if isinstance(exc, vx.OrderNotFound):
            return  # an answer, not a failure
        self.health.error(name, exc)
        if self._on_error:
            self._on_error(name, exc)

    async def _send(self, ex: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """One ccxt call; a signed one refused for its timestamp is resynced and sent once more (``VenueClock``)."""
        if name not in PRIVATE_CALLS:
            return await getattr(ex, name)(*args, **kwargs)
        return await self.clock.in_time(name, lambda: getattr(ex, name)(*args, **kwargs))

    async def _urgent(self, name: str, *args: Any, then: Callable[[Any], Any] | None = None, **kwargs: Any) -> Any:
        """A kill-switch call: straight to the venue, past the breaker and the rate limiter, not retried here
        (the kill switch retries what failed itself). The venue's own Retry-After still holds: a 418 ban would stop
        the kill switch altogether. ``then`` reads the answer in the same task (a time reading's round trip)."""
        await self.health.wait_if_paused()
        try:
            result = await self._send(self.urgent, name, *args, **kwargs)
        except GARBAGE_SYMPTOMS as exc:
            self._failed(name, error := garbage(name, exc))
            raise error from None
        except vx.BaseError as exc:
            self._failed(name, exc)
            raise
        self.health.success(name, private=name in PRIVATE_CALLS)
        return result if then is None else then(result)

    async def _once(self, name: str, *args: Any, **kwargs: Any) -> Any:
        await self.health.wait_if_paused()
        self.breaker.before_call()
        try:
            result = await self._send(self.ex, name, *args, **kwargs)
        except GARBAGE_SYMPTOMS as exc:  # ccxt choked on an answer of the wrong shape
            error = garbage(name, exc)
            self.breaker.failure(error)
            self._failed(name, error)
            raise error from None
        except vx.BaseError as exc:
            if is_rate_limited(exc):
                # A 429 / 418 is the venue pacing us, already answered by waiting out its Retry-After venue-wide
                # (``VenueHealth``); it is no sign of a failing venue, so it neither opens the breaker nor counts
                # toward it (runbook 001 §3: rate limiting backs off and WARNs; a ban halts by its own monitor).
                self.breaker.release_probe()
            else:
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
        markets: dict[str, Any] = await self._call("load_markets", reload)
        self.urgent.set_markets_from_exchange(self.ex)
        await self.warm_urgent_lane()
        return markets

    @property
    def markets_loaded(self) -> bool:
        """Whether the venue's markets (symbols, filters) are loaded: nothing is sent before they are."""
        return bool(self.ex.markets)

    @property
    def markets(self) -> dict[str, Any]:
        """The venue's markets by symbol, as loaded (empty before ``load_markets``)."""
        return dict(self.ex.markets or {})

    async def require_markets(self, symbols: tuple[str, ...]) -> None:
        """Load the markets once and check that every configured symbol is traded there; the error names the
        symbols and the fix."""
        if not self.markets_loaded:
            await self.load_markets()
        unknown = [s for s in symbols if s not in self.ex.markets]
        if unknown:
            raise EngineError(f"[venue] symbols {unknown} are not traded on {self.exchange_id}; fix the config")

    def market(self, symbol: str) -> dict[str, Any]:
        return dict(self.ex.market(symbol))

    def stop_orders(self, symbol: str) -> bool | None:
        """Whether a protective stop-limit can rest at the venue for ``symbol``: Binance lists each market's order
        types (STOP_LOSS_LIMIT, what ccxt's ``stopLossPrice`` sends); elsewhere ccxt says whether it can create a
        stop-loss order at all. None when neither says."""
        info = self.ex.market(symbol).get("info") or {}
        types = info.get("orderTypes") if isinstance(info, dict) else None
        if isinstance(types, list):
            return "STOP_LOSS_LIMIT" in types
        has = self.ex.has.get("createStopLossOrder")
        return None if has is None else bool(has)

    def oco_orders(self, symbol: str) -> bool:
        """Whether a stop and a take-profit can rest for ``symbol`` as one OCO list: Binance spot's order list
        (``POST /api/v3/orderList/oco``, ccxt's implicit ``privatePostOrderListOco``: ccxt has no unified OCO call),
        on a market that allows it (``ocoAllowed``). Elsewhere the stop rests alone."""
        if not self.binance or not hasattr(self.ex, "privatePostOrderListOco"):
            return False
        info = self.ex.market(symbol).get("info") or {}
        return isinstance(info, dict) and info.get("ocoAllowed") is True

    def amount_to_precision(self, symbol: str, amount: Decimal) -> Decimal:
        """Rounded down to the venue's step; 0 when less than one step (ccxt raises InvalidOrder for that)."""
        return self._to_precision("amount", symbol, str(amount))

    def price_to_precision(self, symbol: str, price: Decimal) -> Decimal:
        return self._to_precision("price", symbol, str(price))

    def _remembered(self, key: tuple[str, str, str]) -> Decimal | None:
        """What ``_to_precision`` or a market's minimum gave for ``key`` with the markets loaded now (a reload may
        change precisions and limits: then each is worked out again)."""
        markets = self.ex.markets
        if markets is not self._precise_markets or len(self._precise) >= PRECISE_MEMO:
            self._precise.clear()
            self._precise_markets = markets
        return self._precise.get(key)

    def _to_precision(self, kind: str, symbol: str, value: str) -> Decimal:
        """ccxt's ``amount_to_precision`` / ``price_to_precision`` of ``value`` (remembered: ``_remembered``)."""
        key = (kind, symbol, value)
        known = self._remembered(key)
        if known is None:
            try:
                if kind == "amount":
                    known = Decimal(self.ex.amount_to_precision(symbol, value))
                else:
                    known = Decimal(self.ex.price_to_precision(symbol, value))
            except vx.InvalidOrder:
                if kind != "amount":
                    raise
                known = Decimal(0)
            self._precise[key] = known
        return known

    def min_amount(self, symbol: str) -> Decimal:
        return self._minimum(symbol, "amount")

    def min_cost(self, symbol: str) -> Decimal:
        return self._minimum(symbol, "cost")

    def _minimum(self, symbol: str, limit: str) -> Decimal:
        """The market's ``limits[limit]["min"]`` (0 when it has none); asked for at every ticker while a position is
        held (the protective stop's check)."""
        key = ("min", symbol, limit)
        known = self._remembered(key)
        if known is None:
            known = dec(self.ex.market(symbol)["limits"][limit]["min"]) or Decimal(0)
            self._precise[key] = known
        return known

    def amount_step(self, symbol: str) -> Decimal:
        """The amount step ``amount_to_precision`` rounds down to (LOT_SIZE's stepSize on Binance); 0 when unknown."""
        precision = (self.ex.market(symbol).get("precision") or {}).get("amount")  # read, not copied
        if precision is None:
            return Decimal(0)
        if getattr(self.ex, "precisionMode", CCXT_TICK_SIZE) == CCXT_TICK_SIZE:
            return dec(precision) or Decimal(0)
        return Decimal(1).scaleb(-int(precision))  # DECIMAL_PLACES: the number of decimals

    # ------------------------------------------------------------ REST

    async def fetch_balances(self, urgent: bool = False) -> tuple[Balance, ...]:
        return await self._ask(self._urgent if urgent else self._call, "fetch_balance", parse_balances)

    async def ping(self) -> None:
        """One cheap public call (server time, weight 1), not retried: a reading of reachability, latency and
        clock skew (the venue's clock minus ours, not minus the offset we sign with), which the signing offset
        follows: a skew that starts or ends is taken here (``VenueClock.follow``)."""
        skew = skew_from(await self._once("fetch_time"))
        self.health.ping(skew)
        self.clock.follow(skew)
        await self.warm_urgent_lane()

    async def warm_urgent_lane(self) -> None:
        """Open the kill switch's HTTP session and connection before it is needed: ccxt makes its TLS context on a
        client's first request (~45 ms here) and a real venue adds a TLS handshake. The ping keeps it open (servers
        close idle connections)."""
        try:
            await self._urgent("fetch_time")
        except vx.BaseError as exc:
            log.warning("the kill switch's lane did not answer a ping: %s", exc)

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return dict(await self._call("fetch_ticker", symbol))

    async def create_order(
        self,
        client_id: str,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal,
        price: Decimal | None,
        urgent: bool = False,
        stop_price: Decimal | None = None,
        reduce_only: bool = False,
    ) -> OrderReport:
        """One order; with ``stop_price`` a protective stop (a sell that waits for the price to fall to it): ccxt's
        unified ``stopLossPrice``, a stop-limit at ``price`` (Binance spot: STOP_LOSS_LIMIT). ``reduce_only`` (perps):
        ccxt's unified ``reduceOnly``, so the venue refuses it rather than let it open or flip a position."""
        params: dict[str, Any] = {"newClientOrderId": client_id}
        if stop_price is not None:
            params["stopLossPrice"] = str(stop_price)
        if reduce_only:
            params["reduceOnly"] = True
        # Never retried here: after an uncertain failure the engine asks by client id instead (no duplicates).
        return await self._ask(
            self._urgent if urgent else self._once,
            "create_order",
            parse_order,
            symbol,
            type_,
            side,
            str(amount),
            None if price is None else str(price),
            params,
        )

    async def create_stop_market(self, client_id: str, symbol: str, side: str, stop: Decimal) -> OrderReport:
        """Perps: a position's protective stop, ccxt's unified ``stopLossPrice`` on a market order with the venue's
        ``closePosition`` (Binance USDⓈ-M: a STOP_MARKET in the algo service, no quantity): when the last price
        reaches ``stop`` the venue closes the whole position, whatever its size by then, and never opens one
        (decision PERP-07). Never retried here (the engine asks by client id after an uncertain failure)."""
        self.lists_algos = True
        params = {"newClientOrderId": client_id, "stopLossPrice": str(stop), "closePosition": True}
        return await self._ask(self._once, "create_order", parse_order, symbol, "market", side, None, None, params)

    def _algo(self, client_id: str) -> bool:
        """Whether ``client_id`` names a conditional (algo) order: a perps protective stop (``create_stop_market``)."""
        return self.usdm and self.binance and client_id.startswith(STOP_ID_PREFIX)

    async def create_oco(
        self,
        list_id: str,
        stop_id: str,
        take_profit_id: str,
        symbol: str,
        amount: Decimal,
        stop: Decimal,
        limit: Decimal,
        take_profit: Decimal,
    ) -> list[OrderReport]:
        """A protective OCO sell (``oco_orders``): above the price a LIMIT_MAKER at ``take_profit`` (it rests on the
        book, and the stop leg lives until it actually fills), under it a STOP_LOSS_LIMIT triggered at ``stop`` and
        limited at ``limit``; one ``amount`` for both. Each leg's report, parsed from Binance's own answer. Never
        retried here (the engine asks by client id after an uncertain failure)."""
        request = {
            "symbol": self.ex.market_id(symbol),
            "side": "SELL",
            "quantity": str(amount),
            "listClientOrderId": list_id,
            "aboveType": "LIMIT_MAKER",
            "abovePrice": str(take_profit),
            "aboveClientOrderId": take_profit_id,
            "belowType": "STOP_LOSS_LIMIT",
            "belowPrice": str(limit),
            "belowStopPrice": str(stop),
            "belowTimeInForce": "GTC",
            "belowClientOrderId": stop_id,
            "newOrderRespType": "FULL",
        }
        return await self._ask(self._once, "privatePostOrderListOco", self._binance_list, request)

    def cancel_replace(self, symbol: str) -> bool:
        """Whether a resting order of ``symbol`` can be cancelled and a new one placed in one request: Binance spot's
        ``POST /api/v3/order/cancelReplace`` (ccxt's implicit ``privatePostOrderCancelReplace``) on a market that
        allows it (``cancelReplaceAllowed``)."""
        if not self.binance or self.usdm or not hasattr(self.urgent, "privatePostOrderCancelReplace"):
            return False
        info = self.ex.market(symbol).get("info") or {}
        return isinstance(info, dict) and info.get("cancelReplaceAllowed") is True

    async def cancel_replace_sell(
        self, stop_id: str, symbol: str, client_id: str, amount: Decimal
    ) -> tuple[OrderReport | None, OrderReport | None, str]:
        """The kill switch's lane: cancel the resting order ``stop_id`` and sell ``amount`` at market in one request
        (``cancelReplace``, STOP_ON_FAILURE: an order that cannot be cancelled places no sell). The cancelled
        order's report (None: not cancelled), the sell's (None: not placed) and what the venue said of a half that
        failed ("" when neither did): Binance answers -2021 (one half failed) or -2022 (both, or the cancel and so
        nothing placed) with each half's answer in ``data``. Any other error is raised as it came (the sell may
        or may not be placed: the caller asks by client id). Never retried here."""
        request = {
            "symbol": self.ex.market_id(symbol),
            "side": "SELL",
            "type": "MARKET",
            "cancelReplaceMode": "STOP_ON_FAILURE",
            "cancelOrigClientOrderId": stop_id,
            "newClientOrderId": client_id,
            "quantity": str(amount),
            "newOrderRespType": "FULL",
        }
        try:
            raw = await self._urgent("privatePostOrderCancelReplace", request)
        except vx.BaseError as exc:
            data = replace_failure(str(exc))
            if data is None:
                raise
            raw = data
        try:
            cancelled, placed = raw.get("cancelResponse"), raw.get("newOrderResponse")
            stop = self._binance_one(cancelled) if raw.get("cancelResult") == "SUCCESS" else None
            sold = None
            if raw.get("newOrderResult") == "SUCCESS":
                sold = parse_order(self.ex.parse_order(placed, self.ex.market(symbol)))
        except vx.VenueGarbage:
            raise
        except GARBAGE_SYMPTOMS as exc:
            raise garbage("privatePostOrderCancelReplace", exc) from None
        why = "; ".join(
            f"{half}: {answer.get('msg', '')} ({answer.get('code', '')})"
            for half, answer in (("cancel", cancelled), ("sell", placed))
            if isinstance(answer, dict) and "code" in answer
        )
        if stop is None and sold is None and not why:
            why = f"{raw.get('cancelResult')}/{raw.get('newOrderResult')}"
        return stop, sold, why

    async def cancel_oco(self, list_id: str, symbol: str) -> list[OrderReport]:
        """Cancel a protective OCO by its list's client id: both legs' reports (-2011 ``OrderNotFound`` when the
        list is done or unknown)."""
        request = {"symbol": self.ex.market_id(symbol), "listClientOrderId": list_id}
        return await self._ask(self._call, "privateDeleteOrderList", self._binance_list, request)

    async def fetch_order(self, client_id: str, symbol: str, urgent: bool = False) -> OrderReport:
        call = self._urgent if urgent else self._call
        if self._algo(client_id):
            # A triggered stop became an order of the same client id in the book (what filled is there); one
            # still waiting, or cancelled before it triggered, is only in the algo service.
            try:
                return await self._ask(call, "fetch_order", parse_order, None, symbol, {"origClientOrderId": client_id})
            except vx.OrderNotFound:
                request = {"symbol": self.ex.market_id(symbol), "clientAlgoId": client_id}
                return await self._ask(call, "fapiPrivateGetAlgoOrder", self._binance_one, request)
        return await self._ask(
            call,
            "fetch_order",
            parse_order,
            None,
            symbol,
            {"origClientOrderId": client_id},
        )

    async def cancel_order(self, client_id: str, symbol: str, urgent: bool = False) -> OrderReport:
        if self._algo(client_id):
            # The algo service's cancel answers only the ids: the order is cancelled (-2011 when it is not waiting).
            request = {"symbol": self.ex.market_id(symbol), "clientAlgoId": client_id}
            raw = await (self._urgent if urgent else self._call)("fapiPrivateDeleteAlgoOrder", request)
            venue_id = raw.get("algoId") if isinstance(raw, dict) else None
            return OrderReport(
                client_id, None if venue_id is None else str(venue_id), symbol, "", "stop_market",
                OrderStatus.CANCELED, Decimal(0), Decimal(0), None, None,
            )  # fmt: skip
        return await self._ask(
            self._urgent if urgent else self._call,
            "cancel_order",
            parse_order,
            None,
            symbol,
            {"origClientOrderId": client_id},
        )

    async def fetch_open_orders(self, symbol: str | None = None, urgent: bool = False) -> list[OrderReport]:
        call = self._urgent if urgent else self._call
        if self.binance:  # Binance's own answer, parsed here (see ``parse_binance_order``)
            request = {"symbol": self.ex.market_id(symbol)} if symbol else {}
            if self.usdm:  # the book's orders, then the algo service's (the protective stops): one at a time, as a
                # half-open breaker lets one probe through
                listed = await self._ask(call, "fapiPrivateGetOpenOrders", self._binance_orders, request)
                if not self.lists_algos:
                    return listed
                return listed + await self._ask(call, "fapiPrivateGetOpenAlgoOrders", self._binance_orders, request)
            return await self._ask(call, "privateGetOpenOrders", self._binance_orders, request)
        return await self._ask(call, "fetch_open_orders", parse_orders, symbol)

    async def fetch_my_trades(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[tuple[str | None, Fill]]:
        """The account's fills in ``symbol`` from ``since_ms`` on, oldest first, at most ``limit`` (the venue's
        default page otherwise), each with the venue's order id (myTrades carries no client id: the caller maps
        the order id to its own)."""
        return await self._ask(self._call, "fetch_my_trades", parse_my_trades, symbol, since_ms, limit)

    async def cancel_all_orders(self, symbol: str, urgent: bool = False) -> list[OrderReport]:
        call = self._urgent if urgent else self._call
        if self.binance and self.usdm:
            # USDⓈ-M answers a cancel-all with {"code": 200} and no order: the symbol's open orders are listed first,
            # so the report can say how many it took (as they were listed: their end comes on the user stream, or
            # from the caller's settling by client id).
            # The algo service's orders (the protective stops) are not touched by it: they are cancelled there.
            request = {"symbol": self.ex.market_id(symbol)}
            listed = await self._ask(call, "fapiPrivateGetOpenOrders", self._binance_orders, request)
            listed += await self._ask(call, "fapiPrivateGetOpenAlgoOrders", self._binance_orders, request)
            algos = [r for r in listed if r.type.startswith(("stop", "take_profit", "trailing"))]
            if len(algos) < len(listed):
                await call("fapiPrivateDeleteAllOpenOrders", request)
            if algos:
                await call("fapiPrivateDeleteAlgoOpenOrders", request)
            return listed
        if self.binance:
            return await self._ask(
                call, "privateDeleteOpenOrders", self._binance_orders, {"symbol": self.ex.market_id(symbol)}
            )
        return await self._ask(call, "cancel_all_orders", parse_orders, symbol)

    def spare_for_background(self, weight: float) -> bool:
        """Whether a background refresh (periodic reconciliation, REST polling) of about ``weight`` may spend
        request weight now: background refreshes get at most half of the venue's minute, paced over it
        (``WeightBudget.spare_for_background``); the rest is kept for orders, reconnects and the kill switch."""
        return not self.follows_weight or self.health.budget.spare_for_background(weight)

    def _binance_orders(self, raw: Any) -> list[OrderReport]:
        symbol_of: Callable[[str], str] = self.ex.safe_symbol
        return parse_binance_orders(raw, symbol_of)

    def _binance_one(self, raw: Any) -> OrderReport:
        [report] = self._binance_orders([raw])
        return report

    def _binance_list(self, raw: Any) -> list[OrderReport]:
        """An order list's answer: its legs' reports (``orderReports``)."""
        return self._binance_orders([raw])

    async def _ask(self, call: Callable[..., Awaitable[Any]], name: str, parse: Callable[[Any], T], *args: Any) -> T:
        """``call`` the venue, then ``parse`` its answer: an answer of the wrong shape is the venue's garbage,
        counted like an error ccxt raised (the breaker, the REST error window) and raised as ``VenueGarbage``."""
        raw = await call(name, *args)
        try:
            return parse(raw)
        except vx.VenueGarbage as exc:
            if call != self._urgent:
                self.breaker.failure(exc)
            self._failed(name, exc)
            raise

    # ------------------------------------------------------------ perpetual futures (ccxt's unified calls)

    async def fetch_positions(self, urgent: bool = False) -> list[PerpPosition]:
        """The account's open positions, signed (``fetch_positions``: Binance's positionRisk)."""
        return await self._ask(self._urgent if urgent else self._call, "fetch_positions", parse_positions)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        await self._call("set_leverage", leverage, symbol)

    async def set_margin_mode(self, symbol: str, mode: str) -> None:
        """``isolated`` or ``cross``; already so is no failure (Binance answers -4046)."""
        try:
            await self._call("set_margin_mode", mode, symbol)
        except vx.MarginModeAlreadySet:
            return

    async def position_mode(self) -> str:
        """``one-way`` or ``hedged`` (the engine trades one-way: a position per symbol, signed)."""
        answer = await self._call("fetch_position_mode", None)
        return "hedged" if answer.get("hedged") else "one-way"

    async def symbol_settings(self, symbols: tuple[str, ...]) -> dict[str, tuple[Decimal | None, str | None]]:
        """Each symbol's (leverage, margin mode) as the venue holds them, with no position needed (ccxt's
        ``fetch_leverages``: Binance's symbolConfig)."""
        raw = await self._call("fetch_leverages", list(symbols))
        return {
            s: (dec(row.get("longLeverage") or row.get("shortLeverage")), row.get("marginMode"))
            for s, row in raw.items()
            if s in symbols
        }

    async def funding(self, symbol: str) -> tuple[Decimal | None, Decimal | None, int | None, Decimal | None]:
        """(funding rate, mark price, next funding time in ms, index price) of ``symbol``: ``fetch_funding_rate``."""
        raw = await self._call("fetch_funding_rate", symbol)
        return (
            dec(raw.get("fundingRate")),
            dec(raw.get("markPrice")),
            int(raw["fundingTimestamp"]) if raw.get("fundingTimestamp") else None,
            dec(raw.get("indexPrice")),
        )

    async def funding_paid(self, symbol: str, since_ms: int | None = None) -> Decimal:
        """The funding the account received (positive) or paid (negative) in ``symbol`` since ``since_ms``."""
        rows = await self._call("fetch_funding_history", symbol, since_ms)
        return sum((dec(r.get("amount")) or Decimal(0) for r in rows), Decimal(0))

    async def arm_deadman(self, symbol: str, seconds: float, urgent: bool = False) -> None:
        """The venue's dead-man's switch for ``symbol``: every open order cancelled unless armed again within
        ``seconds`` (0 disarms). Binance's countdownCancelAll has no unified ccxt call (the USDⓈ-M note): it is
        reached by its own name; elsewhere ccxt's ``cancel_all_orders_after``."""
        call = self._urgent if urgent else self._once
        if self.binance:
            request = {"symbol": self.ex.market_id(symbol), "countdownTime": int(seconds * 1000)}
            await call("fapiPrivatePostCountdownCancelAll", request)
        else:
            await call("cancel_all_orders_after", int(seconds * 1000), {"symbol": symbol})

    # ------------------------------------------------------------ streams

    def hold_user_stream(self) -> None:
        """Keep the user stream's events (order reports, account updates) unparsed until ``release_user_stream``:
        the kill switch's cancels, while they are out, then find the event loop free for their answers."""
        self.user_hold.hold()

    def release_user_stream(self) -> None:
        """Hand the events kept since ``hold_user_stream`` on, in the order they came (a few per turn of the loop)."""
        self.user_hold.release()

    def _user_client(self) -> Any:
        """ccxt's WS-API client that carries the user-data subscription (Binance spot), or its listen-key
        connection (USDⓈ-M: ``/private/ws``), or None."""
        if self.usdm:
            key = self.listen_key()
            found = [c for url, c in list(getattr(self.ex, "clients", {}).items()) if key and key in url]
            return found[-1] if found else None  # the connection of the key in force, not an old one closed
        for url, client in list(getattr(self.ex, "clients", {}).items()):
            if "ws-api" in url:
                return client
        return None

    def listen_key(self) -> str | None:
        """USDⓈ-M: the listen key ccxt's user stream uses now (it renews and replaces it), or None."""
        options = self.ex.options.get("linear")
        return options.get("listenKey") if isinstance(options, dict) else None

    def user_stream_state(self) -> tuple[str, str]:
        """What ccxt holds of the user-data stream: ``("up", "")`` a connection open and a subscription in force
        and confirmed; ``("subscribing", "")`` its subscribe request not answered yet; ``("ended", why)`` the
        connection is open but the venue ended the subscription (``eventStreamTerminated``, or the subscribe was
        refused: ccxt drops its flag for both and leaves the watchers waiting for ever); ``("closed", why)`` no
        open connection. An open socket alone is no proof of a live subscription."""
        client = self._user_client()
        connection = getattr(client, "connection", None)
        if client is None or connection is None or connection.closed or not client.connected.done():
            return "closed", "no user-data connection open"
        if self.usdm:
            return "up", ""  # a listen-key stream has no subscription to end: its connection is the subscription
        if USER_ACCOUNT not in client.subscriptions:
            why = client.rejections.get(USER_ACCOUNT) if isinstance(client.rejections, dict) else None
            return "ended", str(why)[:200] if why is not None else "the venue ended the user-data subscription"
        if USER_SUBSCRIBING in client.futures:
            return "subscribing", ""
        return "up", ""

    def user_stream_connected(self) -> bool:
        """Whether ccxt holds an open user-data connection with its subscription in force (a quiet account sends
        no event to prove it; ``probe_user_subscription`` asks the venue)."""
        return self.user_stream_state()[0] == "up"

    async def probe_user_subscription(self, timeout_s: float) -> bool | None:
        """Ask the venue, on the user-data connection, which subscriptions this session holds (Binance's WS-API
        ``session.subscriptions``): True when it lists one, False when it lists none (the subscription ended
        silently) or does not answer within ``timeout_s``; None when it cannot tell (no connection, or a venue
        that does not know the request)."""
        client = self._user_client()
        if client is None or self.user_stream_state()[0] != "up":
            return None
        if self.usdm:
            return await self._probe_listen_key(timeout_s)
        request_id = str(self.ex.request_id(client.url))

        def answered(c: Any, message: Any) -> None:
            # Its entry goes when its answer comes, never before: an answer ccxt finds no entry for reaches its
            # handle_subscription_status, which fails on the user stream's own flag and stops reading the socket.
            c.subscriptions.pop(request_id, None)
            c.resolve(message, request_id)

        message = {"id": request_id, "method": "session.subscriptions"}
        subscription = {"id": request_id, "method": answered}
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the inner future's outcome when the task
            # is cancelled just as it completes, and the cancellation is lost (an engine that never stops).
            async with asyncio.timeout(timeout_s):
                answer = await self.ex.watch(client.url, request_id, message, request_id, subscription)
        except TimeoutError:
            return False  # its entry stays for the late answer
        except vx.BaseError as exc:  # answered with an error: the venue does not know the request
            client.subscriptions.pop(request_id, None)
            log.debug("user-data probe not answered: %s", exc)
            return None
        result = answer.get("result") if isinstance(answer, dict) else None
        return bool(result) if isinstance(result, list) else None

    async def _probe_listen_key(self, timeout_s: float) -> bool | None:
        """USDⓈ-M: the venue asked to keep the account's listen key alive (``PUT /fapi/v1/listenKey``, what ccxt sends
        every 20 minutes anyway) names the key this connection listens on: True; another key, or none (-1125): False;
        no answer it could give (a network error): None."""
        key = self.listen_key()
        try:
            async with asyncio.timeout(timeout_s):
                answer = await self.ex.fapiPrivatePutListenKey()
        except TimeoutError:
            return False
        except vx.ExchangeError as exc:
            log.info("user-data probe: the venue does not know the listen key: %s", exc)
            return False
        except vx.BaseError as exc:
            log.debug("user-data probe not answered: %s", exc)
            return None
        return isinstance(answer, dict) and answer.get("listenKey") == key

    def drop_user_stream(self, why: str) -> bool:
        """Close the user-data connection as failed: the watchers waiting on it get a network error, and their next
        watch opens a new connection and subscribes again. False when there was none."""
        client = self._user_client()
        if client is None:
            return False
        waiting = list(client.futures.values())
        client.on_error(vx.NetworkError(f"user-data stream dropped: {why}"))
        for future in waiting:  # the error is the answer to all of them, whether or not anyone still waits
            if future.done() and not future.cancelled():
                future.exception()
        return True

    async def watch_orders(self) -> list[OrderReport]:
        # USDⓈ-M: a conditional order's trigger (ALGO_UPDATE TRIGGERED, FINISHED) is no news of its own: the order it
        # becomes, of the same client id, reports what filled (ccxt would call it "closed" with nothing filled).
        return [
            parse_order(o)
            for o in await self.ex.watch_orders()
            if not (isinstance(o.get("info"), dict) and o["info"].get("X") in ("TRIGGERING", "TRIGGERED", "FINISHED")
                    and "aid" in o["info"])
        ]  # fmt: skip

    async def watch_my_trades(self) -> list[Fill]:
        return [parse_fill(t) for t in await self.ex.watch_my_trades()]

    async def watch_balance(self) -> tuple[Balance, ...]:
        raw = await self.ex.watch_balance()
        info = raw.get("info")
        update = info.get("a") if isinstance(info, dict) else None
        # USDⓈ-M says why the account moved (ORDER, FUNDING_FEE...): the funding paid is read again after a funding.
        self.balance_reason = update.get("m") if isinstance(update, dict) else None
        return parse_balances(raw)

    async def watch_ticker(self, symbol: str) -> dict[str, Any]:
        return dict(await self.ex.watch_ticker(symbol))

    async def watch_tickers(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """The tickers of ``symbols`` that moved since the last call, newest of each, from one combined stream (every
        symbol's subscription on one connection). Read from ccxt's cache as well as from the answer: what came
        while the caller was busy with the last batch is there and not in the answer, and is given at once (waiting
        for the stream first would hold it until another ticker came: in a stepped run, never)."""
        cache, seen = self.ex.tickers, self._tickers_seen
        waiting = {s: t for s in symbols if (t := cache.get(s)) is not None and t.get("timestamp") != seen.get(s)}
        answered = waiting or await self.ex.watch_tickers(symbols)
        out = {s: dict(t) for s, t in answered.items()}
        for symbol in symbols:
            t = cache.get(symbol)
            if t is not None and symbol not in out and t.get("timestamp") != seen.get(symbol):
                out[symbol] = dict(t)
        for symbol, t in out.items():
            seen[symbol] = t.get("timestamp")
        return out

    async def fetch_tickers(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        """Every one of ``symbols``' tickers in one request (weight 40 for up to 100 on Binance, against 2 each)."""
        answered = await self._call("fetch_tickers", symbols)
        return {s: dict(t) for s, t in answered.items() if s in symbols}

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[list[Any]]:
        """Candles ``[open ms, open, high, low, close, volume]`` oldest first (retried: a read)."""
        return list(await self._call("fetch_ohlcv", symbol, timeframe, since_ms, limit))

    async def watch_ohlcv(self, symbol: str, timeframe: str) -> list[list[Any]]:
        """The candles the stream updated since the last call (the forming one each time, a closed one at its end)."""
        return list(await self.ex.watch_ohlcv(symbol, timeframe))

    def streamed_ohlcv(self, symbol: str, timeframe: str) -> list[list[Any]]:
        """The newest candles the stream has delivered, waited for or not. ccxt answers a watch with the message that
        resolved it; one that arrives before the next watch (the new candle right after the closed one's last
        update) waits in its cache for the message after it."""
        cache = getattr(self.ex, "ohlcvs", {}).get(symbol, {}).get(timeframe)
        return [list(row) for row in cache[-3:]] if cache else []

    # Calls that need the key: one of them answering proves the key works again.
    # ------------------------------------------------------------ probes of the go/no-go checklist
    # Each is one plain request on the routine client, with no retry: the checklist wants the venue's own answer.

    async def probe_ping(self) -> bool:
        """Binance's ``GET /api/v3/ping`` (runbook 000 §1 "API Connectivity"); False where the venue has none."""
        if not self.binance:
            return False
        await (self.ex.fapiPublicGetPing() if self.usdm else self.ex.public_get_ping())
        return True

    async def probe_server_time(self, symbol: str) -> int | None:
        """The venue's clock in ms (``GET /api/v3/time``), or None where it has no such call (a ticker answers)."""
        if self.ex.has.get("fetchTime"):
            return int(await self.ex.fetch_time())
        await self.ex.fetch_ticker(symbol)
        return None

    async def probe_balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """A signed request: every asset's (free, locked), as the venue answers it."""
        raw = await self.ex.fetch_balance()
        used = raw.get("used") or {}
        return {
            asset: (dec(free) or Decimal(0), dec(used.get(asset)) or Decimal(0))
            for asset, free in (raw.get("free") or {}).items()
        }

    async def key_permissions(self) -> dict[str, Any]:
        """What Binance says the key may do (``GET /sapi/v1/account/apiRestrictions``)."""
        return dict(await self.ex.sapi_get_account_apirestrictions())

    async def probe_ticker(self, symbol: str) -> dict[str, Any]:
        """The symbol's ticker, one plain request."""
        return dict(await self.ex.fetch_ticker(symbol))

    async def probe_ticker_stream(self, symbol: str) -> None:
        """Wait for the symbol's next ticker on the market stream."""
        await self.ex.watch_ticker(symbol)

    async def probe_balance_stream(self) -> None:
        """Wait for the next balance on the user stream."""
        await self.ex.watch_balance()


PRIVATE_CALLS = frozenset(
    {
        "fetch_balance",
        "create_order",
        "fetch_order",
        "cancel_order",
        "fetch_open_orders",
        "cancel_all_orders",
        "fetch_my_trades",
        "privateGetOpenOrders",
        "privateDeleteOpenOrders",
        "fapiPrivateGetOpenOrders",
        "fapiPrivateDeleteAllOpenOrders",
        "fetch_positions",
        "set_leverage",
        "set_margin_mode",
        "fetch_position_mode",
        "fetch_leverages",
        "fetch_funding_history",
        "fapiPrivatePostCountdownCancelAll",
        "cancel_all_orders_after",
        "fapiPrivatePutListenKey",
        "privatePostOrderListOco",
        "privateDeleteOrderList",
    }
)


def replace_failure(message: str) -> dict[str, Any] | None:
    """The ``data`` of a cancelReplace that failed in part or whole (-2021, -2022), from ccxt's error message (which
    carries the venue's body); None for any other error."""
    start = message.find("{")
    if start < 0:
        return None
    try:
        body = json.loads(message[start:])
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) and body.get("code") in (-2021, -2022) else None
    return data if isinstance(data, dict) and "cancelResult" in data else None


def not_sent_errors() -> tuple[type[BaseException], ...]:
    """Errors that prove the request was turned away before the venue acted on it (a client closed by a reconnect
    refuses before sending anything; a timestamp refused (-1021) is checked before anything else is looked at)."""
    return (vx.CircuitOpen, vx.DDoSProtection, vx.RateLimitExceeded, vx.ExchangeClosedByUser, vx.InvalidNonce)


def refused_errors() -> tuple[type[BaseException], ...]:
    """The venue's clear refusals of an order: it was not placed. Every other error may hide a placed order."""
    return (
        vx.InvalidOrder,
        vx.InsufficientFunds,
        vx.BadRequest,
        vx.BadSymbol,
        vx.AuthenticationError,
        vx.PermissionDenied,
        vx.AccountSuspended,
        vx.OperationRejected,
    )
