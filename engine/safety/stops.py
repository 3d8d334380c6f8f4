"""Stop-losses: the engine enforces the stop of every held position (a market exit once the last price is at
or under it), through the one command path as ``stop:<symbol>``.

One alert per episode (the price through the stop while holding); a failed exit is retried after
``STOP_RETRY_S`` with a CRIT alert, never once per tick. While HALTED nothing new leaves, stop exits included:
the operator is told once and decides (close the position with x, or resume).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from engine.kernel import clock
from engine.kernel.commands import ExitPosition, Permit
from engine.kernel.events import Event, Severity, TickerUpdated
from engine.kernel.ports import Ports
from engine.trading.books import Books
from engine.trading.state import TradingStateMachine

log = logging.getLogger(__name__)

STOP_RETRY_S = 5.0


class StopLosses:
    """Watches every price against the stop of the position held in that symbol."""

    def __init__(
        self,
        books: Books,
        state: TradingStateMachine,
        ports: Ports,
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

    def on_event(self, event: Event) -> None:
        """Inline bus handler: every price is checked against the stop of a held position."""
        if isinstance(event, TickerUpdated):
            try:
                self.on_price(event.symbol, event.last)
            except Exception as exc:  # a price handler must never fail the publisher (the ticker stream)
                log.error("stop-loss check failed", exc_info=exc)
                self.alert(Severity.CRIT, "MONITOR_FAILED", f"stop-loss check failed: {type(exc).__name__}: {exc}")

    def on_price(self, symbol: str, last: Decimal) -> None:
        """Enforce the stop of a held position: exit at market once the price is at or under it."""
        stop = self.stops.get(symbol)
        holding = any(p.symbol == symbol for p in self.portfolio.positions())
        if stop is None or last > stop or not holding:
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
