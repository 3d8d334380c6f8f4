"""Stop-losses, in two lines. The first rests at the venue: every held position's stop is a stop-limit order
there (``engine.trading.protect``), placed, amended and removed through the one command path as
``engine:stops`` whenever what the position needs and what rests differ, so it protects the position while the
engine is gone (runbook 003 "Emergency Procedures"). The second is the engine's own check: a market exit once the
last price is at or under the stop, as ``stop:<symbol>``, for a stop the venue does not hold (it could not be
placed: CRIT ``STOP_NOT_AT_VENUE``, retried every ``VENUE_STOP_RETRY_S``) or one the price gapped through (under its
limit, where a stop-limit may never fill).

One alert per episode (the price through the stop while holding); a failed exit is retried after
``STOP_RETRY_S`` with a CRIT alert, never once per tick. While HALTED nothing new leaves, stop exits included:
the operator is told once and decides (close the position with x, or resume). A protective stop is not new
risk: it is kept, and placed again, while HALTED.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from engine.kernel import clock
from engine.kernel.commands import ExitPosition, Permit, ProtectPosition
from engine.kernel.events import (
    BalancesUpdated,
    Event,
    OrderUpdated,
    PositionsUpdated,
    Severity,
    StopsChanged,
    TickerUpdated,
    TradingStateChanged,
)
from engine.kernel.ports import Ports
from engine.trading.books import Books
from engine.trading.protect import VenueStops
from engine.trading.state import TradingStateMachine

log = logging.getLogger(__name__)

STOP_RETRY_S = 5.0
VENUE_STOP_RETRY_S = 2.0  # a stop that could not rest at the venue is tried again this often


class StopLosses:
    """Watches every price against the stop of the position held in that symbol."""

    def __init__(
        self,
        books: Books,
        state: TradingStateMachine,
        ports: Ports,
        venue_stops: VenueStops,
    ) -> None:
        self.portfolio = books.portfolio
        self.stops = books.stops
        self.state = state
        self.alert = ports.alert
        self.submit = ports.submit
        self.spawn = ports.spawn
        self._stop_alerted: set[str] = set()
        self._exiting: set[str] = set()
        self._retry_at: dict[str, float] = {}
        self.venue_stops = venue_stops
        self.symbols = books.symbols
        self._protecting: set[str] = set()  # symbols whose venue stop is being made right
        self._not_at_venue: set[str] = set()  # symbols alerted STOP_NOT_AT_VENUE (one CRIT per episode)

    def on_event(self, event: Event) -> None:
        """Inline bus handler: every price is checked against the stop of a held position."""
        try:
            if isinstance(event, TickerUpdated):
                self.on_price(event.symbol, event.last)
                self.check_venue(event.symbol)  # a sell that held the stop back may have finished since
            elif isinstance(event, OrderUpdated):
                self.check_venue(event.order.symbol)
            elif isinstance(event, (PositionsUpdated, BalancesUpdated, StopsChanged, TradingStateChanged)):
                for symbol in self.symbols:
                    self.check_venue(symbol)
        except Exception as exc:  # a bus handler must never fail the publisher (a stream, the order path)
            log.error("stop-loss check failed", exc_info=exc)
            self.alert(Severity.CRIT, "MONITOR_FAILED", f"stop-loss check failed: {type(exc).__name__}: {exc}")

    def check_venue(self, symbol: str) -> None:
        """Start making the venue's stop of ``symbol`` right if it differs from what the position needs."""
        if symbol in self._protecting or self.venue_stops.gap(symbol) is None:
            return
        self._protecting.add(symbol)
        self.spawn(f"venue-stop-{symbol}", self._protect(symbol))

    async def _protect(self, symbol: str) -> None:
        """Submit ``protect`` until the venue holds the stop the position needs; a failure is a CRIT (once per
        episode) and is retried every ``VENUE_STOP_RETRY_S`` while the engine's own check watches the stop."""
        try:
            while (gap := self.venue_stops.gap(symbol)) is not None:
                result = await self.submit(ProtectPosition(symbol=symbol, actor="engine:stops", reason=gap))
                if result.ok:
                    if self.venue_stops.gap(symbol) == gap:
                        await clock.current().sleep(VENUE_STOP_RETRY_S)  # done, yet still the same: not in a tight loop
                    elif symbol in self._not_at_venue and self.venue_stops.gap(symbol) is None:
                        self._not_at_venue.discard(symbol)
                        log.warning("%s: stop at the venue again (%s)", symbol, result.message)
                    continue
                if symbol not in self._not_at_venue:
                    self._not_at_venue.add(symbol)
                    self.alert(
                        Severity.CRIT,
                        "STOP_NOT_AT_VENUE",
                        f"{symbol}: the stop could not be placed at the venue ({result.message}); the engine "
                        f"watches it meanwhile (it protects nothing while the engine is down); retrying every "
                        f"{VENUE_STOP_RETRY_S:g}s",
                    )
                await clock.current().sleep(VENUE_STOP_RETRY_S)
        finally:
            self._protecting.discard(symbol)

    def on_price(self, symbol: str, last: Decimal) -> None:
        """Enforce the stop of a held position: exit at market once the price is at or under it."""
        stop = self.stops.get(symbol)
        holding = self.portfolio.holds(symbol)
        resting = self.venue_stops.resting_stops(symbol)  # an OCO's take-profit leg protects nothing under it
        if self.portfolio.usdm:
            # Perps: a stop-market at the venue fills wherever the price went (no limit to gap through), so the
            # engine acts only for a stop the venue does not hold; a short's stop is over the price.
            if resting:
                return
            stop = self.venue_stops.perp_stop(symbol)  # None when on the wrong side of the entry
            short = self.portfolio.held_amount(symbol) < 0
            through = stop is not None and (last >= stop if short else last <= stop)
        else:
            if resting and all(last >= o.price for o in resting if o.price is not None):
                return  # the venue's stop-limit holds it (the second line acts only once the price is under its limit)
            through = stop is not None and last <= stop
        if stop is None or not through or not holding:
            self._stop_alerted.discard(symbol)
            return
        if symbol in self._exiting or clock.monotonic() < self._retry_at.get(symbol, 0.0):
            return
        first = symbol not in self._stop_alerted
        self._stop_alerted.add(symbol)
        if not self.state.permits(Permit.REDUCE):
            # HALTED means nothing new leaves, stop exits included: tell the operator once.
            if first:
                self.alert(
                    Severity.CRIT,
                    "STOP_LOSS_WHILE_HALTED",
                    f"{symbol} at {last} is through its stop {stop}, but trading is HALTED: "
                    "close the position (x) or resume",
                )
            return
        if first:
            self.alert(Severity.WARN, "STOP_LOSS", f"{symbol} at {last} reached stop {stop}: exiting at market")
        self._exiting.add(symbol)
        self.spawn(f"stop-loss-{symbol}", self._exit(symbol, stop, last))

    async def _exit(self, symbol: str, stop: Decimal, last: Decimal) -> None:
        try:
            result = await self.submit(
                ExitPosition(
                    symbol=symbol,
                    actor=f"stop:{symbol}",
                    reason=f"price {last} through stop {stop}",
                    values={"last": str(last), "stop": str(stop)},
                )
            )
            if not result.ok:
                self._retry_at[symbol] = clock.monotonic() + STOP_RETRY_S
                self.alert(
                    Severity.CRIT,
                    "STOP_LOSS_FAILED",
                    f"{symbol} stop exit failed: {result.message}; retrying in {STOP_RETRY_S:g}s",
                )
        finally:
            self._exiting.discard(symbol)
