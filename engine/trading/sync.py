"""Keeping the engine's picture of the venue fresh: connect, stream, fall back to REST polling, reconcile.

Streams are the normal path. When one fails (or market data goes quiet for ``stale_s``), REST polling of
open orders, balances and tickers keeps state fresh until the stream is back (runbook 002 "use REST
fallback"; runbook 001 §1: reconnect automatically under 60 s of staleness).

The user-data stream is watched on its own (``_watch_user_stream``): an open socket proves nothing (after the venue
ends the subscription, ccxt keeps the WS-API connection open and its watchers wait for ever). It is dead when the
venue ended it (``eventStreamTerminated``, or its subscribe was refused), when the venue lists no subscription for
the session, when a fill reached the engine only by reconciliation while the stream claimed to be up
(``USER_STREAM_GAP``), or, on a venue that cannot say, when it stayed silent past ``ws_stale_warn_s / 2`` with
orders resting. A dead user stream is subscribed again with backoff, and REST polling (orders, balances and
fills) stands in meanwhile. Its age (``user_stream_age_s``, read by ``ws_stale``) runs from its last proof of life:
an event, the venue listing the subscription, or a subscription confirmed where the venue cannot be asked.

Why one module of this length: connecting, the streams, their fallback and reconciliation share the state of the
venue's picture (which stream is down since when, what was proven when); split, each part would reach into it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from decimal import Decimal
from typing import Any

from engine.kernel import clock
from engine.kernel.config import MonitorsConfig, VenueConfig
from engine.kernel.errors import EngineError
from engine.kernel.events import Fill, Order, Severity, TickerUpdated, utcnow
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
POSITIONS_WEIGHT = 5  # USDⓈ-M positionRisk (each symbol's premiumIndex: 1 more)
# Fills the streams missed are read from myTrades a page at a time, at most this many pages a symbol per pass.
TRADES_PAGE = 500
TRADE_PAGES = 5
# Symbols whose missed fills one pass reads (myTrades, weight 20 a page): the others at the next passes, in turn, the
# symbols with open orders or a position first. A pass's weight then stays bounded whatever the number of symbols.
FILL_SYMBOLS_PER_PASS = 10

PRIVATE_STREAMS = ("orders", "trades", "balance")
# Tickers come on combined streams, this many symbols each (one connection each; Binance allows 1,024 streams a
# connection): one watch loop a group instead of one a symbol, and each loop takes what came in the last
# TICKER_BATCH_S at once. Per-symbol loops woke a task and made ccxt futures for every single ticker (the engine's
# idle CPU grew with symbols x updates), and opened a connection each (51 at 50 symbols).
TICKERS_PER_STREAM = 100
# Tickers by REST in requests of this many symbols: Binance weighs 1 to 20 symbols 2 (as one symbol), 21 to 100
# 40; and a venue that works out each market's day (the simulator makes its synthetic history on first ask) answers
# a small request in good time where one of 100 symbols ran past the request timeout.
TICKERS_PER_REQUEST = 20
TICKER_BATCH_S = 0.05
# A fill found by reconciliation while the user stream claimed to be up, and that the stream has not delivered this
# long after, is a gap in the stream (it delivers in milliseconds, normally before reconciliation finds anything).
GAP_GRACE_S = 1.0


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
        # When this engine first looked (funding paid is counted from here), on the engine's clock: the venue's
        # income is stamped on its own (a validation run's simulated time).
        self.started_wall = clock.now().timestamp()
        self.started_at = time.monotonic()  # the streams' first start: the age of a stream that never delivered
        # The user-data stream's last proof of life besides its events (the venue listed the subscription, or a
        # subscription was confirmed where the venue cannot be asked; a quiet account sends nothing).
        self.user_proof = time.monotonic()
        self.user_dead: str | None = None  # why the user-data stream is counted dead now (None: not known dead)
        self._user_drops = 0  # resubscriptions since the last user event (the backoff's step)
        self._user_next_drop = 0.0  # no resubscription before this (monotonic)
        self._user_next_probe = 0.0
        self._user_awaiting_proof = False  # a resubscription was made: its confirmation is a proof (no probe)
        self._probe_works: dict[int, bool] = {}  # id(venue) -> whether the venue answers the liveness probe
        # Trade id -> (when reconciliation found it, the fill), while the user stream claimed to be up: a gap unless
        # the stream delivers it within GAP_GRACE_S.
        self._gap_pending: dict[str, tuple[float, Fill]] = {}
        self._streamed = False  # whether the streams were ever started (a reconnect restarts them)
        self.reconnects: deque[float] = deque()  # when streams came back, for the per-hour count
        self.stream_latency_ms: deque[float] = deque(maxlen=200)  # event time -> received, market streams
        self.last_reconcile: dict[str, Any] = {}
        self.polling = False
        self.streams = TaskGroup(self._loop_crashed)
        # Perps: what the start-up settings came to (the checklist reads it): the venue's position mode, and per
        # symbol the margin mode and leverage set, or why not.
        self.perp_setup: dict[str, Any] = {}
        self._funding_read_ms: int | None = None  # when the funding paid was last read (wall ms)
        self._funding_times: set[int] = set()  # funding times seen and not passed at the last read (ms)
        self._account_moved = False  # an account update came on the user stream since the last perps refresh

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
                if self.portfolio.usdm:
                    await self.setup_perps()
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
            self.started_at = self.user_proof = time.monotonic()
        spawn = self.streams.spawn
        spawn("watch-orders", self._stream("orders", self._orders))
        spawn("watch-trades", self._stream("trades", self._trades))
        spawn("watch-balance", self._stream("balance", self._balance))
        for i in range(0, len(self.symbols), TICKERS_PER_STREAM):
            group = self.symbols[i : i + TICKERS_PER_STREAM]
            spawn(f"watch-tickers-{i // TICKERS_PER_STREAM + 1}", self._ticker_stream(group))
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
        if self.portfolio.usdm:
            spawn(
                "perps refresh",
                Periodic(
                    "perps refresh",
                    self.refresh_perps,
                    # What the liquidation distance is read from: as often as the monitors read, within the venue's
                    # request weight (positionRisk 5 and premiumIndex 1 a symbol: at most twice a second).
                    lambda: max(0.5, min(self.cfg.poll_s, self.monitors_cfg.interval_s)),
                    on_failure=self._loop_failed,
                    delay_first=True,
                    guard=self.guard,
                ).run(),
            )
        spawn(
            "user-stream watch",
            Periodic(
                "user-stream watch",
                self._watch_user_stream,
                lambda: max(0.05, min(1.0, self.monitors_cfg.ws_stale_warn_s / 4)),
                on_failure=self._loop_failed,
                delay_first=True,
            ).run(),
        )

    async def setup_perps(self) -> None:
        """Perps (runbook 002): one-way position mode checked, then each symbol's margin mode and leverage set at the
        venue (``[risk] margin_mode``, ``leverage``). A symbol whose settings the venue did not confirm takes no
        entry (``Execution.leverage``); every failure is a CRIT that names it."""
        venue = self.link.require()
        risk = self.execution.risk
        setup: dict[str, Any] = {"position_mode": None, "symbols": {}}
        try:
            setup["position_mode"] = await venue.position_mode()
        except vx.BaseError as exc:
            setup["position_mode_error"] = f"{type(exc).__name__}: {exc}"[:200]
        hedged = setup["position_mode"] == "hedged"
        if hedged:
            self.alert(
                Severity.CRIT,
                "PERP_SETUP_FAILED",
                "the account is in hedge mode (a long and a short per symbol): cockpit trades one-way positions; "
                "switch the account to one-way mode at the venue. No entry is sent until then",
            )
        for symbol in self.symbols:
            try:
                await venue.set_margin_mode(symbol, risk.margin_mode)
                await venue.set_leverage(symbol, risk.leverage)
            except vx.BaseError as exc:
                self.execution.leverage.pop(symbol, None)
                setup["symbols"][symbol] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
                self.alert(
                    Severity.CRIT,
                    "PERP_SETUP_FAILED",
                    f"{symbol}: the venue did not take margin mode {risk.margin_mode} and leverage {risk.leverage}x "
                    f"({type(exc).__name__}: {str(exc)[:120]}); no entry in it until it does",
                )
                continue
            setup["symbols"][symbol] = {"margin_mode": risk.margin_mode, "leverage": risk.leverage}
            if not hedged:
                self.execution.leverage[symbol] = Decimal(risk.leverage)
        self.perp_setup = setup

    async def refresh_perps(self) -> None:
        """Perps: the positions, and each configured symbol's mark price, funding rate and next funding time (what
        the liquidation-distance, funding and mark-divergence monitors read)."""
        venue = self.link.venue
        if venue is None or not venue.markets_loaded:
            return
        if not venue.spare_for_background(POSITIONS_WEIGHT + len(self.symbols)):
            return  # the background's share of the venue's minute is spent: at a later turn
        if self._account_moved:
            self._account_moved = False
            await self.execution.refresh_balances()  # the positions with it
        else:
            await self.execution.refresh_positions()
        for symbol in self.symbols:
            rate, mark, next_ms, index = await venue.funding(symbol)
            self.portfolio.funding_rates[symbol] = (rate, next_ms)
            if next_ms is not None:
                self._funding_times.add(next_ms)
            if mark is not None:
                # The mark against the index of the same answer (the market's price, as the venue takes it): a
                # last price from the stream would be newer than the mark, and a jump would read as a divergence.
                self.portfolio.marks[symbol] = (mark, index)

    async def refresh_funding_paid(self, now: bool = False) -> None:
        """Perps: the funding each held position received or paid since the engine first looked (the venue's
        income history), shown beside the position and counted in its round trip. A venue without that history
        shows none. ``now``: read even with no funding time passed (a validation run, at a fixed point of a step)."""
        venue = self.link.venue
        if venue is None:
            return
        # The venue's income history is heavy (weight 30): read when a funding time has passed since the last read.
        now_ms = int(clock.now().timestamp() * 1000)
        if not now and self._funding_read_ms is not None and not any(t <= now_ms for t in self._funding_times):
            return
        self._funding_read_ms = now_ms
        self._funding_times = {t for t in self._funding_times if t > now_ms}
        since = int(self.started_wall * 1000)
        # A position closed since the funding was charged still had it charged: every symbol traded is read.
        for symbol in sorted(set(self.portfolio.perps) | self.portfolio.perps_traded()):
            try:
                change = self.portfolio.set_funding(symbol, await venue.funding_paid(symbol, since))
                if change:
                    self.stats.funding(change)
            except vx.BaseError as exc:
                log.debug("funding history of %s: %s", symbol, exc)
                return

    async def stop_streams(self) -> None:
        await self.streams.close()
        self.stream_down.clear()
        self.polling = False
        # A new connection is judged afresh; its age still runs from the last proof (staleness is about data).
        self.user_dead, self._user_drops, self._user_next_drop = None, 0, 0.0
        self._user_awaiting_proof = False
        self._gap_pending.clear()

    def came_back(self) -> None:
        self.stats.ws_reconnect()
        self.reconnects.append(time.monotonic())

    def reconnects_last_hour(self) -> int:
        cutoff = time.monotonic() - 3600
        while self.reconnects and self.reconnects[0] < cutoff:
            self.reconnects.popleft()
        return len(self.reconnects)

    def user_stream_age_s(self) -> float:
        """Seconds since the user-data stream last proved alive: an event, the venue listing its subscription, or
        (where the venue cannot be asked) a subscription confirmed or nothing resting to miss. An open socket is no
        proof: after the venue ended the subscription ccxt keeps it open."""
        latest = max([self.user_proof, *(self.last_event.get(n, 0.0) for n in PRIVATE_STREAMS)])
        return time.monotonic() - latest

    @property
    def user_stream_dead(self) -> str | None:
        """Why the user-data stream is down now (dead, or a watcher failing), or None."""
        if self.user_dead is not None:
            return self.user_dead
        return next((self.stream_down[n] for n in PRIVATE_STREAMS if n in self.stream_down), None)

    def user_stream_claims_up(self) -> bool:
        """Whether the engine takes the user-data stream to be delivering now."""
        venue = self.link.venue
        return (
            bool(self.streams.names())
            and self.user_stream_dead is None
            and venue is not None
            and venue.user_stream_state()[0] == "up"
        )

    def stream_latency_p95(self) -> float | None:
        values = sorted(self.stream_latency_ms)
        return values[max(0, int(len(values) * 0.95) - 1)] if values else None

    def stream_states(self) -> dict[str, str]:
        """Each stream: ``up (Ns)`` since its last event, ``down: why``, or ``waiting`` before its first."""
        now = time.monotonic()
        venue = self.link.venue
        user, why = venue.user_stream_state() if venue is not None else ("closed", "")
        out: dict[str, str] = {}
        for name in PRIVATE_STREAMS:
            if name in self.stream_down:
                out[name] = f"down: {self.stream_down[name]}"
            elif self.user_dead is not None:
                out[name] = f"down: {self.user_dead}"
            elif user == "ended":
                out[name] = f"down: {why}"
            elif user == "up" and name in self.last_event:
                out[name] = f"up ({now - self.last_event[name]:.1f}s)"
            elif user == "up":
                out[name] = f"up (quiet; proven {self.user_stream_age_s():.1f}s ago)"
            else:
                out[name] = "waiting"
        for name in (f"ticker {s}" for s in self.symbols):
            if name in self.stream_down:
                out[name] = f"down: {self.stream_down[name]}"
            elif name in self.last_event:
                out[name] = f"up ({now - self.last_event[name]:.1f}s)"
            else:
                out[name] = "waiting"
        return out

    # ------------------------------------------------------------ REST

    async def refresh_tickers(self) -> None:
        """Every symbol's ticker by REST, TICKERS_PER_REQUEST at a time (a request per symbol made a start, and each
        turn of REST polling, wait on 50 round trips one after the other)."""
        venue = self.link.require()
        if len(self.symbols) == 1:
            self.on_ticker(self.symbols[0], await venue.fetch_ticker(self.symbols[0]))
            return
        for i in range(0, len(self.symbols), TICKERS_PER_REQUEST):
            for symbol, ticker in (await venue.fetch_tickers(list(self.symbols[i : i + TICKERS_PER_REQUEST]))).items():
                self.on_ticker(symbol, ticker)

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
        claimed_up = self.user_stream_claims_up()
        new = 0
        for symbol in self._fills_in_turn(lagging):
            since_ms = int(lagging[symbol].timestamp() * 1000) - 1000
            for _ in range(TRADE_PAGES):
                trades = await venue.fetch_my_trades(symbol, since_ms, TRADES_PAGE)
                for order_id, fill in trades:
                    if not fill.client_id and order_id in by_venue_id:
                        fill = replace(fill, client_id=by_venue_id[order_id])
                    if self.execution.on_fill(fill):
                        new += 1
                        if claimed_up:
                            self._gap_pending[fill.trade_id] = (time.monotonic(), fill)
                if len(trades) < TRADES_PAGE or symbol not in self.execution.missing_fills():
                    break
                # From the last page's newest trade on (inclusive: trades of the same millisecond come again and
                # are known by their id); always forward, even if the whole page shares one millisecond.
                since_ms = max(since_ms + 1, max(int(f.ts.timestamp() * 1000) for _, f in trades))
        return new

    def _fills_in_turn(self, lagging: dict[str, Any]) -> list[str]:
        """This pass's share of the symbols with fills to read: those with open orders or a position first, then the
        longest lagging; ``FILL_SYMBOLS_PER_PASS`` at most (the next pass takes the next, as these stop lagging)."""
        busy = {o.symbol for o in self.tracker.open_orders()} | {p.symbol for p in self.portfolio.positions()}
        return sorted(lagging, key=lambda s: (s not in busy, lagging[s], s))[:FILL_SYMBOLS_PER_PASS]

    def _judge_gaps(self) -> None:
        """Fills reconciliation found while the user stream claimed to be up, and that the stream still has not
        delivered GAP_GRACE_S later: the stream is not delivering, whatever its socket says."""
        now = time.monotonic()
        due = [fill for found, fill in self._gap_pending.values() if now - found >= GAP_GRACE_S]
        if not due:
            return
        for fill in due:
            del self._gap_pending[fill.trade_id]
        if self.user_stream_dead is None:
            self._user_stream_gap([((clock.now() - f.ts).total_seconds(), f) for f in due])

    def _user_stream_gap(self, late: list[tuple[float, Fill]]) -> None:
        """Fills that reached the engine only by reconciliation while the user stream claimed to be up: WARN, and
        count the stream dead (subscribed again)."""
        lag = max(seconds for seconds, _ in late)
        self.alert(
            Severity.WARN,
            "USER_STREAM_GAP",
            f"{len(late)} fill(s) reached the engine only by reconciliation, up to {lag:.1f}s late, while the user "
            "stream claimed to be up: counting it dead and subscribing again",
            values={
                "fills": len(late),
                "late_s": round(lag, 1),
                "trade_ids": [f.trade_id for _, f in late][:10],
                "symbols": sorted({f.symbol for _, f in late}),
                "user_age_s": round(self.user_stream_age_s(), 1),
            },
        )
        self._user_stream_dead(f"{len(late)} fill(s) came only by reconciliation, up to {lag:.1f}s late")

    async def settle(self, order: Order) -> str:
        """Ask the venue by client id about an order it never acknowledged (its send was uncertain): apply what it
        says, or mark the order lost when it does not know it. Returns the status now; venue errors propagate."""
        venue = self.link.require()
        try:
            report = await venue.fetch_order(order.client_id, order.symbol)
        except vx.OrderNotFound:
            self.execution.lost(order, "settle")
            return "lost"
        self.execution.apply_report(report, "settle")
        return report.status.value

    async def reconcile_all(self) -> dict[str, Any]:
        """Orders, fills and balances against the venue, then what the engine holds against what the venue holds."""
        orders = await self.reconcile()
        fills = await self.reconcile_fills()
        await self.execution.refresh_balances()
        if self.portfolio.usdm:
            await self.refresh_funding_paid()
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
                if name in PRIVATE_STREAMS:
                    self._user_drops = 0  # a user event: the subscription delivers
                    if self.user_dead is not None:
                        self._user_alive(f"{name} event")
                if name in self.stream_down:
                    del self.stream_down[name]
                    self.came_back()
                    log.info("%s stream back", name)
                venue = self.link.venue
                if not self.link.connected and venue is not None and venue.breaker.refusal() is None:
                    self.link.set_connected(True, "")
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this loop is being stopped
                # ccxt cancelled the future this watch waited on (it does when it closes or replaces a client): not
                # a stop of this loop, which would otherwise end in silence and leave its stream dead for good.
                log.warning("%s watch cancelled under it by the client (%r); watching again", name, exc)
                await asyncio.sleep(self._stream_failed(name, ConnectionError("the watch was cancelled"), attempt))
                attempt += 1
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
                await asyncio.sleep(self._stream_failed(name, exc, attempt))
                attempt += 1

    def _stream_failed(self, name: str, exc: BaseException, attempt: int) -> float:
        """Mark a watch down (said once per episode) and return how long to back off before watching again."""
        if name not in self.stream_down:
            self.stream_down[name] = f"{type(exc).__name__}: {exc}"[:200]
            self.alert(
                Severity.WARN,
                "WS_DOWN",
                f"{name} stream lost ({type(exc).__name__}: {str(exc)[:80]}); reconnecting, REST polling meanwhile",
            )
        return self.backoff[min(attempt, len(self.backoff) - 1)]

    async def _orders(self) -> None:
        self.execution.apply_reports(await self.link.require().watch_orders(), "stream")

    async def _trades(self) -> None:
        fills = await self.link.require().watch_my_trades()
        for fill in fills:
            self._gap_pending.pop(fill.trade_id, None)  # the stream delivered it: no gap
        with self.execution.joining_batch():  # a stream read: joins a command's transaction when one is open
            self.execution.apply_fills(fills)

    async def _balance(self) -> None:
        venue = self.link.require()
        balances = await venue.watch_balance()
        if self.portfolio.usdm:
            if venue.balance_reason == "FUNDING_FEE":
                self._funding_times.add(0)  # a funding was charged: read what it came to at the next reconciliation
            # USDⓈ-M's account update carries the wallet balance only (no margin balance, no free or used), and
            # comes with every order event: the account and positions it moved are read over REST by the next
            # perps refresh (one read however many updates came), so equity stays the margin balance.
            self._account_moved = True
            return
        with self.execution.joining_batch():  # a stream read: joins a command's transaction when one is open
            self.execution.apply_balances(balances)

    async def _ticker_stream(self, symbols: tuple[str, ...]) -> None:
        """One combined ticker stream for ``symbols``, forever: each batch applied symbol by symbol (a ticker that
        fails marks only its own symbol's stream down); a failure of the stream marks them all down (said once),
        backs off and watches again."""
        names = [f"ticker {s}" for s in symbols]
        attempt = 0
        while True:
            try:
                tickers = await self.link.require().watch_tickers(list(symbols))
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # this loop is being stopped
                log.warning("ticker watch cancelled under it by the client (%r); watching again", exc)
                await asyncio.sleep(self._streams_failed(names, ConnectionError("the watch was cancelled"), attempt))
                attempt += 1
                continue
            except Exception as exc:  # the boundary of the stream: any failure marks it down and it goes on
                if not isinstance(exc, vx.BaseError):
                    log.error("ticker stream failed", exc_info=exc)
                await asyncio.sleep(self._streams_failed(names, exc, attempt))
                attempt += 1
                continue
            attempt = 0
            self._apply_tickers(tickers)
            # What comes meanwhile is taken at the next call, at once. Not on a simulated clock (a validation run):
            # there each step waits for its tickers, and a wall-clock pause per batch made a 1-hour run 7x slower;
            # nor a turn of the loop: the next watch waits for the next push anyway (one task step less a tick).
            if clock.current() is clock.WALL:
                await asyncio.sleep(TICKER_BATCH_S)

    def _apply_tickers(self, tickers: dict[str, dict[str, Any]]) -> None:
        now = time.monotonic()
        back = []
        for symbol, ticker in tickers.items():
            name = f"ticker {symbol}"
            try:
                self.on_ticker(symbol, ticker)
            except Exception as exc:  # one symbol's ticker: its own stream is marked down, the others go on
                if not isinstance(exc, vx.BaseError):
                    log.error("%s stream handler failed", name, exc_info=exc)
                self._stream_failed(name, exc, 0)
                continue
            self.last_event[name] = now
            if name in self.stream_down:
                del self.stream_down[name]
                back.append(name)
        if back:
            self.came_back()
            log.info("%s stream back", ", ".join(back[:3]) + (f" and {len(back) - 3} more" if len(back) > 3 else ""))
        venue = self.link.venue
        if tickers and not self.link.connected and venue is not None and venue.breaker.refusal() is None:
            self.link.set_connected(True, "")

    def _streams_failed(self, names: list[str], exc: BaseException, attempt: int) -> float:
        """Mark a combined stream's symbols down (said once per episode) and return the backoff before watching
        again."""
        if len(names) == 1:
            return self._stream_failed(names[0], exc, attempt)
        fresh = [n for n in names if n not in self.stream_down]
        why = f"{type(exc).__name__}: {exc}"[:200]
        for name in fresh:
            self.stream_down[name] = why
        if fresh:
            self.alert(
                Severity.WARN,
                "WS_DOWN",
                f"ticker stream of {len(names)} symbols lost ({type(exc).__name__}: {str(exc)[:80]}); "
                "reconnecting, REST polling meanwhile",
            )
        return self.backoff[min(attempt, len(self.backoff) - 1)]

    # ------------------------------------------------------------ the user-data stream's liveness

    async def _watch_user_stream(self) -> None:
        """Judge the user-data stream from what ccxt holds and what the venue says (see the module's words)."""
        venue = self.link.venue
        if venue is None or not venue.binance or not self.streams.names():
            return
        self._judge_gaps()
        state, why = venue.user_stream_state()
        if state == "ended":
            self._user_stream_dead(f"the venue ended the subscription ({why})")
            return
        if state != "up":
            return  # no connection (the watchers' errors mark them down and they connect again) or subscribing
        now = time.monotonic()
        down = self.user_stream_dead is not None
        quiet = self.user_stream_age_s()
        limit = self.monitors_cfg.ws_stale_warn_s / 2
        if not down and (quiet < limit or now < self._user_next_probe):
            return
        self._user_next_probe = now + limit
        works = self._probe_works.get(id(venue))
        answer = None
        if works is not False:
            answer = await venue.probe_user_subscription(self.cfg.timeout_ms / 1000)
            if answer is None:
                self._probe_works[id(venue)] = False
                log.info("the venue does not say which user-data subscriptions it holds: judging by silence")
            else:
                self._probe_works[id(venue)] = True
        if answer is True:
            self._user_alive("the venue lists the subscription")
        elif answer is False:
            self._user_stream_dead("the venue lists no user-data subscription for this session")
        elif down:
            if self._user_awaiting_proof or self.user_dead is None:
                self._user_alive("subscription confirmed (the venue cannot be asked)")
        elif not self.tracker.open_orders():
            self.user_proof = now  # nothing resting: nothing to miss while the account is quiet
        elif quiet > limit:
            resting = len(self.tracker.open_orders())
            self._user_stream_dead(f"silent for {quiet:.0f}s with {resting} order(s) resting")

    def _user_stream_dead(self, why: str) -> None:
        """Count the user-data stream dead: say so once, poll REST meanwhile, and subscribe again with backoff."""
        now = time.monotonic()
        if self.user_dead is None:
            self.user_dead = why[:200]
            self.alert(
                Severity.WARN,
                "USER_STREAM_DEAD",
                f"user-data stream dead: {why}; subscribing again, REST polling meanwhile",
                values={"why": why[:200], "user_age_s": round(self.user_stream_age_s(), 1)},
            )
        if now < self._user_next_drop:
            return
        venue = self.link.venue
        if venue is not None and venue.drop_user_stream(why):
            delay = self.backoff[min(self._user_drops, len(self.backoff) - 1)]
            self._user_drops += 1
            self._user_next_drop = now + delay
            self._user_awaiting_proof = True
            log.warning("user-data stream dropped to subscribe again (%s); next at the earliest in %gs", why, delay)

    def _user_alive(self, how: str) -> None:
        """The user-data stream proved alive: take it back from the dead and from the REST fallback."""
        self.user_proof = time.monotonic()
        self._user_awaiting_proof = False
        down = [n for n in PRIVATE_STREAMS if n in self.stream_down]
        if self.user_dead is None and not down:
            return
        self.user_dead = None
        for name in down:
            del self.stream_down[name]
        self.came_back()
        log.info("user-data stream back (%s)", how)

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
        the account, and a page of trades for each symbol it will read fills of this pass. Counting the trades of
        every configured symbol (1,100 at 50 symbols, when a pass weighs 100) made the background's share of the
        minute refuse most turns: reconciliation ran twice a minute at 50 symbols instead of every ``reconcile_s``."""
        lagging = sum(1 for s in self.execution.missing_fills() if s in self.symbols)
        return OPEN_ORDERS_WEIGHT + BALANCE_WEIGHT + TRADES_WEIGHT * min(lagging, FILL_SYMBOLS_PER_PASS)

    async def _poll_when_needed(self) -> None:
        """While any stream is down or market data is stale, poll REST (fills too while the user stream is down)."""
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
            if self.user_stream_dead is not None:
                await self.reconcile_fills()  # only symbols with fills missing: nothing to fetch otherwise
        except vx.BaseError as exc:
            log.warning("REST poll failed: %s", exc)
