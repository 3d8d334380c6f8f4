"""Monitors that watch one signal each and alert or trip the kill switch: equity drawdown and the daily loss
limit, stop-losses, and stuck orders.

Automatic actions are commands submitted through the one ``execute``, with the monitor named as the actor
(``monitor:<code>``, ``stop:<symbol>``), so they leave the same audit record as an operator's key. A risk
monitor that cannot run fails closed: its first failed tick halts trading.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from decimal import Decimal
from typing import Mapping

from engine.commands import Command, ExitPosition, Halt, Permit
from engine.config import RiskConfig
from engine.events import EquitySampled, Event, Severity, TickerUpdated, TradingState, utcnow
from engine.orders import OrderTracker
from engine.portfolio import Drawdown, Portfolio
from engine.ports import AlertPort, Publish, Spawn, Submit
from engine.stats import DailyStats
from engine.trading_state import TradingStateMachine

log = logging.getLogger(__name__)

STOP_RETRY_S = 5.0


class Monitors:
    """Equity, drawdown, daily loss, stop-loss and stuck-order watches."""

    def __init__(self, risk: RiskConfig, portfolio: Portfolio, stats: DailyStats, tracker: OrderTracker,
                 stops: Mapping[str, Decimal], state: TradingStateMachine, publish: Publish, alert: AlertPort,
                 submit: Submit, spawn: Spawn) -> None:
        self.risk = risk
        self.portfolio = portfolio
        self.stats = stats
        self.tracker = tracker
        self.stops = stops
        self.state = state
        self.publish = publish
        self.alert = alert
        self.submit = submit
        self.spawn = spawn
        self.drawdown = Drawdown()
        self.drawdown_pct = Decimal(0)
        self._dd_warned = False
        self._stuck_alerted: set[str] = set()
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

    # ------------------------------------------------------------ equity

    def sample_equity(self) -> None:
        """Record equity, update drawdown and daily loss, and halt when a hard limit is reached."""
        equity = self.portfolio.equity()
        if equity is None:
            return
        risk = self.risk
        self.stats.equity(equity)
        self.drawdown_pct = self.drawdown.update(equity)
        daily_loss = self.stats.current().daily_loss_pct(equity)
        self.publish(EquitySampled(equity, self.drawdown.peak or equity, self.drawdown_pct))
        if self.drawdown_pct >= risk.max_drawdown_pct:
            self._trip("max_drawdown", f"drawdown {self.drawdown_pct:.2f}% exceeds hard limit {risk.max_drawdown_pct}%",
                       {"drawdown_pct": str(self.drawdown_pct), "limit_pct": str(risk.max_drawdown_pct)})
        elif self.drawdown_pct >= risk.max_drawdown_warn_pct and not self._dd_warned:
            self._dd_warned = True
            self.alert(Severity.WARN, "DRAWDOWN_WARN", f"drawdown {self.drawdown_pct:.2f}% is over the warning level "
                                                       f"{risk.max_drawdown_warn_pct}%")
        elif self.drawdown_pct < risk.max_drawdown_warn_pct:
            self._dd_warned = False
        if daily_loss >= risk.daily_loss_limit_pct:
            self._trip("daily_loss", f"daily loss {daily_loss:.2f}% exceeds limit {risk.daily_loss_limit_pct}%",
                       {"daily_loss_pct": str(daily_loss), "limit_pct": str(risk.daily_loss_limit_pct)})

    def _trip(self, code: str, reason: str, values: dict[str, str]) -> None:
        if self.state.state != TradingState.HALTED:
            self._command(Halt(actor=f"monitor:{code}", reason=reason, values=values))

    def _command(self, command: Command) -> None:
        self.spawn(f"{command.actor} {command.name}", self.submit(command))

    def failed(self, name: str, exc: BaseException) -> None:
        """A risk watch that cannot run: fail closed (halt) and say so."""
        self.alert(Severity.CRIT, "MONITOR_FAILED", f"{name} cannot run ({type(exc).__name__}: {exc}): halting, "
                                                    "since limits are not being watched")
        if self.state.state != TradingState.HALTED:
            self._command(Halt(actor="monitor:monitor_failed", reason=f"{name} cannot run: {exc}",
                               values={"monitor": name, "error": f"{type(exc).__name__}: {exc}"[:200]}))

    def recovered(self, name: str) -> None:
        self.alert(Severity.INFO, "MONITOR_RECOVERED", f"{name} runs again (trading stays as it is)")

    # ------------------------------------------------------------ stop-loss

    def on_price(self, symbol: str, last: Decimal) -> None:
        """Enforce the stop of a held position: exit at market once the price is at or under it.

        One alert per episode (price through the stop while holding); a failed exit is retried after
        ``STOP_RETRY_S`` with a CRIT alert, never once per tick.
        """
        stop = self.stops.get(symbol)
        holding = any(p.symbol == symbol for p in self.portfolio.positions())
        if stop is None or last > stop or not holding:
            self._stop_alerted.discard(symbol)
            return
        if symbol in self._exiting or time.monotonic() < self._retry_at.get(symbol, 0.0):
            return
        first = symbol not in self._stop_alerted
        self._stop_alerted.add(symbol)
        if not self.state.permits(Permit.REDUCE):
            # HALTED means nothing new leaves, stop exits included: tell the operator once.
            if first:
                self.alert(Severity.CRIT, "STOP_LOSS_WHILE_HALTED",
                           f"{symbol} at {last} is through its stop {stop}, but trading is HALTED: "
                           "close the position (x) or resume")
            return
        if first:
            self.alert(Severity.WARN, "STOP_LOSS", f"{symbol} at {last} reached stop {stop}: exiting at market")
        self._exiting.add(symbol)
        self.spawn(f"stop-loss-{symbol}", self._exit(symbol, stop, last))

    async def _exit(self, symbol: str, stop: Decimal, last: Decimal) -> None:
        try:
            result = await self.submit(ExitPosition(symbol=symbol, actor=f"stop:{symbol}",
                                                    reason=f"price {last} through stop {stop}",
                                                    values={"last": str(last), "stop": str(stop)}))
            if not result.ok:
                self._retry_at[symbol] = time.monotonic() + STOP_RETRY_S
                self.alert(Severity.CRIT, "STOP_LOSS_FAILED",
                           f"{symbol} stop exit failed: {result.message}; retrying in {STOP_RETRY_S:g}s")
        finally:
            self._exiting.discard(symbol)

    # ------------------------------------------------------------ stuck orders

    def check_stuck_orders(self) -> None:
        """Alert once for each order open longer than ``stuck_order_s`` (runbook 001 §4)."""
        limit = timedelta(seconds=self.risk.stuck_order_s)
        now = utcnow()
        for order in self.tracker.open_orders():
            age = now - order.created_at
            if age > limit and order.client_id not in self._stuck_alerted:
                self._stuck_alerted.add(order.client_id)
                self.alert(Severity.WARN, "ORDER_STUCK",
                           f"order {order.client_id} {order.side} {order.symbol} open for "
                           f"{int(age.total_seconds())}s (limit {int(limit.total_seconds())}s); "
                           "cancel it or check the venue")

    def tick(self, connected: bool) -> None:
        """One round of the periodic watches."""
        if connected:
            self.sample_equity()
            self.check_stuck_orders()
