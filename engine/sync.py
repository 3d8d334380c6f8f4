"""Keeping the engine's picture of the venue fresh: connect, stream, fall back to REST polling, reconcile.

Streams are the normal path. When one fails (or market data goes quiet for ``stale_s``), REST polling of
open orders, balances and tickers keeps state fresh until the stream is back (runbook 002 "use REST
fallback"; runbook 001 §1: reconnect automatically under 60 s of staleness).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import ccxt.async_support as ccxt_errors

from engine.events import BalancesUpdated, Order, OrderStatus, PositionsUpdated, Severity, TickerUpdated, utcnow
from engine.resilience import BACKOFF_S
from engine.venue import dec

if TYPE_CHECKING:
    from engine.core import Engine

log = logging.getLogger(__name__)

PRIVATE_STREAMS = ("orders", "trades", "balance")


class VenueSync:
    """Runs the venue's watch loops and the polling fallback for one engine."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.backoff = tuple(engine.settings.venue.retry_backoff_s) or BACKOFF_S
        self.stream_down: dict[str, str] = {}  # stream name -> why, while it is failing
        self.last_event: dict[str, float] = {}  # stream name -> monotonic time of its last event
        self.polling = False

    # ------------------------------------------------------------ connecting

    async def connect(self) -> None:
        """Load markets, balances, prices and reconcile orders; retry with backoff until it works."""
        e = self.engine
        assert e.venue is not None
        attempt = 0
        while True:
            try:
                await e.venue.load_markets()
                unknown = [s for s in e.symbols if s not in e.venue.ex.markets]
                if unknown:
                    from engine.core import EngineError

                    raise EngineError(f"[venue] symbols {unknown} are not traded on {e.venue_label}; fix config.toml")
                for symbol in e.symbols:
                    e.portfolio.dust[symbol] = e.venue.min_amount(symbol)
                await self.refresh_balances()
                await self.refresh_tickers()
                await self.reconcile()
                e.set_connected(True, "")
                return
            except ccxt_errors.AuthenticationError as exc:
                e.alert(Severity.CRIT, "VENUE_AUTH", f"venue refused the API key: {exc}; check the key pair")
                raise
            except (ccxt_errors.NetworkError, ccxt_errors.ExchangeError) as exc:
                delay = self.backoff[min(attempt, len(self.backoff) - 1)]
                e.set_connected(False, f"{type(exc).__name__}: retrying in {delay:g}s")
                attempt += 1
                await asyncio.sleep(delay)

    def start_streams(self) -> None:
        e = self.engine
        e.tasks.spawn("watch-orders", self._stream("orders", self._orders))
        e.tasks.spawn("watch-trades", self._stream("trades", self._trades))
        e.tasks.spawn("watch-balance", self._stream("balance", self._balance))
        for symbol in e.symbols:
            e.tasks.spawn(f"watch-ticker-{symbol}", self._stream(f"ticker {symbol}", self._ticker(symbol)))
        e.tasks.spawn("rest-fallback", self._poll_when_needed())
        e.tasks.spawn("reconcile", self._reconcile_periodically())

    # ------------------------------------------------------------ REST

    async def refresh_balances(self) -> None:
        e = self.engine
        assert e.venue is not None
        self.on_balances(await e.venue.fetch_balances())

    async def refresh_balances_quietly(self) -> None:
        """Fetch balances over REST so a fill shows even if the balance stream lags or is down."""
        try:
            await self.refresh_balances()
        except ccxt_errors.BaseError as exc:
            log.warning("balance refresh failed: %s", exc)

    async def refresh_tickers(self) -> None:
        e = self.engine
        assert e.venue is not None
        for symbol in e.symbols:
            t = await e.venue.fetch_ticker(symbol)
            self.on_ticker(symbol, t)

    async def reconcile(self, source: str = "reconcile") -> None:
        """Bring local open orders in line with the venue; adopt venue orders the engine did not know."""
        e = self.engine
        assert e.venue is not None
        at_venue = await e.venue.fetch_open_orders(None)
        open_ids = {r.client_id for r in at_venue}
        for order in e.tracker.open_orders():
            if order.client_id in open_ids or order.client_id in e.execution.in_flight:
                continue  # an order still being sent is judged by its own answer, not by this listing
            try:
                report = await e.venue.fetch_order(order.client_id, order.symbol)
            except ccxt_errors.OrderNotFound:
                e.tracker.apply(order.client_id, OrderStatus.EXPIRED, source=source,
                                detail="the venue does not know this order")
                continue
            e.execution.apply_report(report, source)
        for report in at_venue:
            if e.tracker.get(report.client_id) is None:
                adopted = e.tracker.adopt(Order(
                    client_id=report.client_id or f"venue-{report.venue_id}", symbol=report.symbol,
                    side=report.side, type=report.type, amount=report.amount, price=report.price,
                    status=report.status, filled=report.filled, average=report.average,
                    venue_id=report.venue_id, origin="venue"))
                e.alert(Severity.WARN, "ORDER_ADOPTED",
                        f"open order {adopted.client_id} on {report.symbol} was not placed by this engine; "
                        "now tracked (cancel-all includes it)")
            else:
                e.execution.apply_report(report, source)

    # ------------------------------------------------------------ events into state

    def on_balances(self, balances: Any) -> None:
        e = self.engine
        e.portfolio.set_balances(balances)
        e.bus.publish(BalancesUpdated(tuple(e.portfolio.balances.values())))
        e.bus.publish(PositionsUpdated(e.portfolio.positions()))

    def on_ticker(self, symbol: str, t: dict[str, Any]) -> None:
        last = dec(t.get("last"))
        if last is None:
            return
        e = self.engine
        e.portfolio.set_price(symbol, last)
        e.bus.publish(TickerUpdated(symbol, last, dec(t.get("bid")), dec(t.get("ask")), utcnow()))
        e.monitors.on_price(symbol, last)

    # ------------------------------------------------------------ streams

    async def _stream(self, name: str, handler: Callable[[], Awaitable[None]]) -> None:
        """Run one watch loop forever; on an error mark it down, back off, and watch again."""
        e = self.engine
        attempt = 0
        while True:
            try:
                await handler()
                self.last_event[name] = time.monotonic()
                attempt = 0
                if name in self.stream_down:
                    del self.stream_down[name]
                    e.stats.ws_reconnect()
                    log.info("%s stream back", name)
                if not e.connected and e.venue is not None and e.venue.breaker.refusal() is None:
                    e.set_connected(True, "")
            except asyncio.CancelledError:
                raise
            except (ccxt_errors.BaseError, KeyError) as exc:
                # ccxt 4.5.90 turns a WS-API error answer (a refused key or signature) into KeyError('spot')
                # while cleaning up; it is an authentication failure, not a crash of this loop.
                if isinstance(exc, KeyError):
                    e.alert(Severity.CRIT, "VENUE_AUTH",
                            f"{name} stream refused by the venue (key or signature); check the API key pair")
                delay = self.backoff[min(attempt, len(self.backoff) - 1)]
                attempt += 1
                if name not in self.stream_down:
                    self.stream_down[name] = f"{type(exc).__name__}: {exc}"[:200]
                    e.alert(Severity.WARN, "WS_DOWN", f"{name} stream lost ({type(exc).__name__}); "
                                                      "reconnecting, REST polling meanwhile")
                await asyncio.sleep(delay)

    async def _orders(self) -> None:
        e = self.engine
        assert e.venue is not None
        for report in await e.venue.watch_orders():
            e.execution.apply_report(report, "stream")

    async def _trades(self) -> None:
        e = self.engine
        assert e.venue is not None
        for fill in await e.venue.watch_my_trades():
            e.execution.on_fill(fill)

    async def _balance(self) -> None:
        e = self.engine
        assert e.venue is not None
        self.on_balances(await e.venue.watch_balance())

    def _ticker(self, symbol: str) -> Callable[[], Awaitable[None]]:
        async def handle() -> None:
            e = self.engine
            assert e.venue is not None
            self.on_ticker(symbol, await e.venue.watch_ticker(symbol))

        return handle

    def _private_streams_back(self) -> None:
        """A quiet account sends nothing: once ccxt's user-data connection is open again, count it as back."""
        e = self.engine
        down = [n for n in PRIVATE_STREAMS if n in self.stream_down]
        if down and e.venue is not None and e.venue.user_stream_connected():
            for name in down:
                del self.stream_down[name]
            e.stats.ws_reconnect()
            log.info("user-data streams back: %s", ", ".join(down))

    def market_data_age_s(self) -> float | None:
        """Seconds since the stalest ticker stream's last event (None before the first)."""
        ages = [time.monotonic() - t for n, t in self.last_event.items() if n.startswith("ticker")]
        return max(ages) if ages else None

    def needs_polling(self) -> bool:
        age = self.market_data_age_s()
        return bool(self.stream_down) or (age is not None and age > self.engine.settings.venue.stale_s)

    async def _reconcile_periodically(self) -> None:
        """Compare local orders with the venue every ``reconcile_s`` (DESIGN: "on start and every few seconds").

        It also runs while disconnected: after a circuit breaker's cool-down it is the probe that closes it."""
        e = self.engine
        while True:
            await asyncio.sleep(e.settings.venue.reconcile_s)
            try:
                # Balances too: after eventStreamTerminated ccxt 4.5.90 leaves watch_* pending for ever, so a
                # dead user-data stream is invisible to the stream loops; this keeps the book true meanwhile.
                await self.reconcile()
                await self.refresh_balances()
            except ccxt_errors.BaseError as exc:
                log.warning("reconciliation failed: %s", exc)

    async def _poll_when_needed(self) -> None:
        """While any stream is down or market data is stale, poll REST every ``poll_s``."""
        e = self.engine
        while True:
            await asyncio.sleep(e.settings.venue.poll_s)
            self._private_streams_back()
            if not self.needs_polling():
                if self.polling:
                    self.polling = False
                    log.info("streams healthy again; REST polling stopped")
                continue
            if not self.polling:
                self.polling = True
                log.warning("REST polling: streams down %s, market data age %s", list(self.stream_down),
                            self.market_data_age_s())
            try:
                await self.refresh_tickers()
                await self.refresh_balances()
                await self.reconcile(source="poll")
            except ccxt_errors.BaseError as exc:
                log.warning("REST poll failed: %s", exc)
