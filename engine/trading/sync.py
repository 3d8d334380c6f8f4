"""Keeping the engine's picture of the venue fresh: connect, stream, fall back to REST polling, reconcile.

Streams are the normal path. When one fails (or market data goes quiet for ``stale_s``), REST polling of
open orders, balances and tickers keeps state fresh until the stream is back (runbook 002 "use REST
fallback"; runbook 001 §1: reconnect automatically under 60 s of staleness).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

from engine.kernel import clock
from engine.kernel.config import MonitorsConfig, VenueConfig
from engine.kernel.errors import EngineError
from engine.kernel.events import Order, Severity, TickerUpdated, utcnow
from engine.kernel.ports import Ports, VenueLink
from engine.kernel.tasks import Periodic, TaskGroup
from engine.trading.books import Books
from engine.trading.execution import Execution
from engine.trading.holdings import Holdings
from engine.venue import errors as vx
from engine.venue.adapter import dec
from engine.venue.resilience import BACKOFF_S

log = logging.getLogger(__name__)

# Binance's request weights of the background refreshes' calls (spot API docs), for pacing them.
OPEN_ORDERS_WEIGHT = 80  # every symbol's open orders
BALANCE_WEIGHT = 20  # the account
TRADES_WEIGHT = 20  # one symbol's trades
# Fills the streams missed are read from myTrades a page at a time, at most this many pages a symbol per pass.
TRADES_PAGE = 500
TRADE_PAGES = 5

PRIVATE_STREAMS = ("orders", "trades", "balance")


class VenueSync:
    """Runs the venue's watch loops, the polling fallback and periodic reconciliation."""

    def __init__(
        self,
        cfg: VenueConfig,
        monitors: MonitorsConfig,
        books: Books,
        link: VenueLink,
        execution: Execution,
        holdings: Holdings,
        ports: Ports,
        guard: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.guard = guard  # the engine clock's quiet(): polling and reconciliation never straddle a simulated step
        self.monitors_cfg = monitors
        self.holdings = holdings
        self.symbols = books.symbols
        self.link = link
        self.execution = execution
        self.tracker = books.tracker
        self.portfolio = books.portfolio
        self.stats = books.stats
        self.publish = ports.publish
        self.alert = ports.alert
        self.backoff = tuple(cfg.retry_backoff_s) or BACKOFF_S
        self.stream_down: dict[str, str] = {}  # stream name -> why, while it is failing
        # Stream name -> monotonic time of its last event. Kept across a reconnect: staleness is about data, and a
        # reconnect that brings no data must not reset the clock (runbook 001 §1: reconnect, then kill at 60 s).
        self.last_event: dict[str, float] = {}
        self.started_at = time.monotonic()  # the streams' first start: the age of a stream that never delivered
        self.user_seen = time.monotonic()  # the user-data connection last seen open (a quiet account sends nothing)
        self._streamed = False  # whether the streams were ever started (a reconnect restarts them)
        self.reconnects: deque[float] = deque()  # when streams came back, for the per-hour count
        self.stream_latency_ms: deque[float] = deque(maxlen=200)  # event time -> received, market streams
        self.last_reconcile: dict[str, Any] = {}
        self.polling = False
        self.streams = TaskGroup(self._loop_crashed)

    def _loop_crashed(self, name: str, exc: BaseException) -> None:
        self.alert(Severity.CRIT, "TASK_CRASHED", f"{name} stopped: {type(exc).__name__}: {exc}")

    def _loop_failed(self, name: str, exc: BaseException) -> None:
        self.alert(Severity.WARN, "LOOP_FAILED", f"{name} failed: {type(exc).__name__}: {exc}; going on")

    # ------------------------------------------------------------ connecting

    async def connect(self, streams_first: bool = False) -> None:
        """Load markets, balances, prices and reconcile orders; retry with backoff until it works.

        ``streams_first`` (a reconnect) starts the streams as soon as markets are loaded, so market data does not
        wait for the REST reconciliation."""
        attempt = 0
        while True:
            venue = self.link.venue  # each attempt on the venue client of now (a reconnect may swap it)
            assert venue is not None
            try:
                await venue.load_markets(reload=attempt > 0)
                if not venue.markets_loaded:
                    raise EngineError(
                        f"the venue at {self.link.label} answered with no market at all: it is not a "
                        "Binance-compatible API or it answered garbage; check [venue] rest_url"
                    )
                unknown = [s for s in self.symbols if s not in venue.markets]
                if unknown:
                    raise EngineError(f"[venue] symbols {unknown} are not traded on {self.link.label}; fix config.toml")
                for symbol in self.symbols:
                    self.portfolio.dust[symbol] = venue.min_amount(symbol)
                if streams_first and not self.streams.names():
                    self.start_streams()
                await self.execution.refresh_balances()
                await self.refresh_tickers()
                await self.reconcile_all()
                self.link.set_connected(True, "")
                return
            except vx.AuthenticationError as exc:
                self.alert(Severity.CRIT, "VENUE_AUTH", f"venue refused the API key: {exc}; check the key pair")
                raise
            except (vx.NetworkError, vx.ExchangeError) as exc:
                if isinstance(exc, vx.VenueGarbage) and not streams_first and not venue.markets_loaded:
                    raise EngineError(f"{self.link.label}: {exc}") from None  # at start: most likely not a venue
                delay = self.backoff[min(attempt, len(self.backoff) - 1)]
                self.link.set_connected(False, f"{type(exc).__name__}: retrying in {delay:g}s")
                attempt += 1
                await asyncio.sleep(delay)

    def start_streams(self) -> None:
        if self.streams.names():
            return  # already running: never two watchers on one stream
        if not self._streamed:
            # Only the first start: a reconnect that brings no data must not make stale data look fresh (a ticker
            # stream that never delivered is as old as the first start; found when reconnects got fast enough to
            # come round every second and kept ws_stale from ever reaching its CRIT).
            self._streamed = True
            self.started_at = self.user_seen = time.monotonic()
        spawn = self.streams.spawn
        spawn("watch-orders", self._stream("orders", self._orders))
        spawn("watch-trades", self._stream("trades", self._trades))
        spawn("watch-balance", self._stream("balance", self._balance))
        for symbol in self.symbols:
            spawn(f"watch-ticker-{symbol}", self._stream(f"ticker {symbol}", self._ticker(symbol)))
        spawn(
            "rest-fallback",
            Periodic(
                "REST fallback polling",
                self._poll_when_needed,
                lambda: self.cfg.poll_s,
                on_failure=self._loop_failed,
                delay_first=True,
                guard=self.guard,
            ).run(),
        )
        spawn(
            "reconcile",
            Periodic(
                "reconciliation",
                self._reconcile_tick,
                lambda: self.monitors_cfg.reconcile_s,
                on_failure=self._loop_failed,
                delay_first=True,
                guard=self.guard,
            ).run(),
        )

    async def stop_streams(self) -> None:
        await self.streams.close()
        self.stream_down.clear()
        self.polling = False

    def came_back(self) -> None:
        self.stats.ws_reconnect()
        self.reconnects.append(time.monotonic())

    def reconnects_last_hour(self) -> int:
        cutoff = time.monotonic() - 3600
        while self.reconnects and self.reconnects[0] < cutoff:
            self.reconnects.popleft()
        return len(self.reconnects)

    def user_stream_age_s(self) -> float:
        """Seconds since the user-data stream last proved alive: an event, or its connection seen open."""
        now = time.monotonic()
        venue = self.link.venue
        if (
            venue is not None
            and venue.user_stream_connected()
            and not any(n in self.stream_down for n in PRIVATE_STREAMS)
        ):
            self.user_seen = now
        latest = max([self.user_seen, *(self.last_event.get(n, 0.0) for n in PRIVATE_STREAMS)])
        return now - latest

    def stream_latency_p95(self) -> float | None:
        values = sorted(self.stream_latency_ms)
        return values[max(0, int(len(values) * 0.95) - 1)] if values else None

    def stream_states(self) -> dict[str, str]:
        """Each stream: ``up (Ns)`` since its last event, ``down: why``, or ``waiting`` before its first."""
        now = time.monotonic()
        names = [*PRIVATE_STREAMS, *(f"ticker {s}" for s in self.symbols)]
        out: dict[str, str] = {}
        for name in names:
            if name in self.stream_down:
                out[name] = f"down: {self.stream_down[name]}"
            elif name in self.last_event:
                out[name] = f"up ({now - self.last_event[name]:.1f}s)"
            elif name in PRIVATE_STREAMS and self.link.venue is not None and self.link.venue.user_stream_connected():
                out[name] = "up (quiet)"
            else:
                out[name] = "waiting"
        return out

    # ------------------------------------------------------------ REST

    async def refresh_tickers(self) -> None:
        venue = self.link.require()
        for symbol in self.symbols:
            self.on_ticker(symbol, await venue.fetch_ticker(symbol))

    async def reconcile(self, source: str = "reconcile") -> dict[str, Any]:
        """Bring local open orders in line with the venue: adopt venue orders the engine did not know, ask the
        venue by client id for each order it no longer lists (filled, canceled, or lost: marked, never dropped
        silently). Returns what was done."""
        venue = self.link.require()
        at_venue = await venue.fetch_open_orders(None)
        open_ids = {r.client_id for r in at_venue}
        done: dict[str, list[str]] = {"adopted": [], "resolved": [], "lost": []}
        for order in self.tracker.open_orders():
            if order.client_id in open_ids or order.client_id in self.execution.in_flight:
                continue  # an order still being sent is judged by its own answer, not by this listing
            try:
                report = await venue.fetch_order(order.client_id, order.symbol)
            except vx.OrderNotFound:
                self.execution.lost(order, source)
                done["lost"].append(order.client_id)
                continue
            self.execution.apply_report(report, source)
            done["resolved"].append(f"{order.client_id} {report.status.value}")
        for report in at_venue:
            if self.tracker.get(report.client_id) is None:
                adopted = self.tracker.adopt(
                    Order(
                        client_id=report.client_id or f"venue-{report.venue_id}",
                        symbol=report.symbol,
                        side=report.side,
                        type=report.type,
                        amount=report.amount,
                        price=report.price,
                        status=report.status,
                        filled=report.filled,
                        average=report.average,
                        venue_id=report.venue_id,
                        origin="venue",
                    )
                )
                done["adopted"].append(adopted.client_id)
                self.alert(
                    Severity.WARN,
                    "ORDER_ADOPTED",
                    f"open order {adopted.client_id} on {report.symbol} was not placed by this engine; "
                    "now tracked (cancel-all includes it)",
                )
            else:
                self.execution.apply_report(report, source)
        return done

    async def reconcile_fills(self) -> int:
        """Fills the streams missed, from the venue: only for symbols with an order reported more filled than the
        fills seen (myTrades weighs 20 per page); returns how many were new. The venue answers a page of trades
        counted forward from the oldest lagging order, so pages are read on until the symbol no longer lags or the
        trades run out: with more than a page of trades since that order, the first page alone never reaches the
        missing ones (found by the soak: a dead user stream and 22 fills never stored)."""
        venue = self.link.require()
        lagging = {s: t for s, t in self.execution.missing_fills().items() if s in self.symbols}
        if not lagging:
            return 0
        by_venue_id = {o.venue_id: o.client_id for o in self.tracker.all() if o.venue_id}
        new = 0
        for symbol, since in sorted(lagging.items()):
            since_ms = int(since.timestamp() * 1000) - 1000
            for _ in range(TRADE_PAGES):
                trades = await venue.fetch_my_trades(symbol, since_ms, TRADES_PAGE)
                for order_id, fill in trades:
                    if not fill.client_id and order_id in by_venue_id:
                        fill = replace(fill, client_id=by_venue_id[order_id])
                    if self.execution.on_fill(fill):
                        new += 1
                if len(trades) < TRADES_PAGE or symbol not in self.execution.missing_fills():
                    break
                # From the last page's newest trade on (inclusive: trades of the same millisecond come again and
                # are known by their id); always forward, even if the whole page shares one millisecond.
                since_ms = max(since_ms + 1, max(int(f.ts.timestamp() * 1000) for _, f in trades))
        return new

    async def reconcile_all(self) -> dict[str, Any]:
        """Orders, fills and balances against the venue, then what the engine holds against what the venue holds."""
        orders = await self.reconcile()
        fills = await self.reconcile_fills()
        await self.execution.refresh_balances()
        found = self.holdings.check()
        self.last_reconcile = {
            "orders": orders,
            "new_fills": fills,
            "differences": [d.to_dict() for d in found],
            "adopted": [d.to_dict() for d in self.holdings.adopted],
            "mismatch": [d.to_dict() for d in self.holdings.mismatch],
        }
        return self.last_reconcile

    # ------------------------------------------------------------ events into state

    def on_ticker(self, symbol: str, t: dict[str, Any]) -> None:
        last = dec(t.get("last"))
        if last is None:
            return
        self.portfolio.set_price(symbol, last)
        if t.get("timestamp"):
            # Against the engine's clock: the venue stamps events with its market time, which a validation run's
            # simulator keeps in step with the engine (and which runs ahead of the wall clock there).
            self.stream_latency_ms.append(max(0.0, clock.now().timestamp() * 1000 - float(t["timestamp"])))
        self.publish(TickerUpdated(symbol, last, dec(t.get("bid")), dec(t.get("ask")), utcnow()))

    # ------------------------------------------------------------ streams

    async def _stream(self, name: str, handler: Callable[[], Awaitable[None]]) -> None:
        """Run one watch loop forever; on an error mark it down, back off, and watch again."""
        attempt = 0
        while True:
            try:
                await handler()
                self.last_event[name] = time.monotonic()
                attempt = 0
                if name in self.stream_down:
                    del self.stream_down[name]
                    self.came_back()
                    log.info("%s stream back", name)
                venue = self.link.venue
                if not self.link.connected and venue is not None and venue.breaker.refusal() is None:
                    self.link.set_connected(True, "")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the boundary of one watch: any failure marks it down and it goes on
                if isinstance(exc, KeyError):
                    # ccxt 4.5.90 turns a WS-API error answer (a refused key or signature) into KeyError('spot')
                    # while cleaning up; it is an authentication failure, not a crash of this loop.
                    self.alert(
                        Severity.CRIT,
                        "VENUE_AUTH",
                        f"{name} stream refused by the venue (key or signature); check the API key pair",
                    )
                elif not isinstance(exc, vx.BaseError):
                    log.error("%s stream handler failed", name, exc_info=exc)
                delay = self.backoff[min(attempt, len(self.backoff) - 1)]
                attempt += 1
                if name not in self.stream_down:
                    self.stream_down[name] = f"{type(exc).__name__}: {exc}"[:200]
                    self.alert(
                        Severity.WARN,
                        "WS_DOWN",
                        f"{name} stream lost ({type(exc).__name__}: "
                        f"{str(exc)[:80]}); reconnecting, REST polling meanwhile",
                    )
                await asyncio.sleep(delay)

    async def _orders(self) -> None:
        self.execution.apply_reports(await self.link.require().watch_orders(), "stream")

    async def _trades(self) -> None:
        self.execution.apply_fills(await self.link.require().watch_my_trades())

    async def _balance(self) -> None:
        self.execution.apply_balances(await self.link.require().watch_balance())

    def _ticker(self, symbol: str) -> Callable[[], Awaitable[None]]:
        async def handle() -> None:
            self.on_ticker(symbol, await self.link.require().watch_ticker(symbol))

        return handle

    def _private_streams_back(self) -> None:
        """A quiet account sends nothing: once ccxt's user-data connection is open again, count it as back."""
        down = [n for n in PRIVATE_STREAMS if n in self.stream_down]
        venue = self.link.venue
        if down and venue is not None and venue.user_stream_connected():
            for name in down:
                del self.stream_down[name]
            self.came_back()
            log.info("user-data streams back: %s", ", ".join(down))

    def market_data_age_s(self) -> float | None:
        """Seconds since the stalest ticker stream's last event (None before streams started)."""
        if not self.last_event and not self.streams.names():
            return None
        now = time.monotonic()
        return max(now - self.last_event.get(f"ticker {s}", self.started_at) for s in self.symbols)

    def needs_polling(self) -> bool:
        age = self.market_data_age_s()
        return bool(self.stream_down) or (age is not None and age > self.cfg.stale_s)

    async def _reconcile_tick(self) -> None:
        """Compare local orders with the venue every ``reconcile_s`` (DESIGN: "on start and every few seconds").

        It also runs while disconnected: after a circuit breaker's cool-down it is the probe that closes it. It
        skips its turn when half the venue's request-weight minute is spent (``Venue.spare_for_background``)."""
        venue = self.link.venue
        if venue is not None and not venue.spare_for_background(self._reconcile_weight()):
            return
        try:
            # Balances too: after eventStreamTerminated ccxt 4.5.90 leaves watch_* pending for ever, so a
            # dead user-data stream is invisible to the stream loops; this keeps the book true meanwhile.
            await self.reconcile_all()
        except vx.BaseError as exc:
            log.warning("reconciliation failed: %s", exc)

    def _reconcile_weight(self) -> float:
        """About what one ``reconcile_all`` weighs at a Binance-style venue: the venue-wide open-orders listing,
        the account, and the trades of each symbol."""
        return OPEN_ORDERS_WEIGHT + BALANCE_WEIGHT + TRADES_WEIGHT * len(self.symbols)

    async def _poll_when_needed(self) -> None:
        """While any stream is down or market data is stale, poll REST."""
        self._private_streams_back()
        if not self.needs_polling():
            if self.polling:
                self.polling = False
                log.info("streams healthy again; REST polling stopped")
            return
        if not self.polling:
            self.polling = True
            log.warning(
                "REST polling: streams down %s, market data age %s", list(self.stream_down), self.market_data_age_s()
            )
        try:
            await self.refresh_tickers()  # market data first: cheap (weight 2 a symbol), and what goes stale
            venue = self.link.venue
            if venue is not None and not venue.spare_for_background(BALANCE_WEIGHT + OPEN_ORDERS_WEIGHT):
                return  # balances and orders at a later turn: the background's share of the minute is spent
            await self.execution.refresh_balances()
            await self.reconcile(source="poll")
        except vx.BaseError as exc:
            log.warning("REST poll failed: %s", exc)
