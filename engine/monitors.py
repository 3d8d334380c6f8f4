"""Monitors that watch one signal each and alert or trip the kill switch: equity drawdown and the daily loss
limit, stop-losses, and stuck orders.

Automatic halts go through the same path as the operator's key, with the monitor named as the actor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.events import Severity, TradingState, utcnow
from engine.portfolio import Drawdown

if TYPE_CHECKING:
    from engine.core import Engine

log = logging.getLogger(__name__)

STOP_RETRY_S = 5.0


class Monitors:
    """Equity, drawdown, daily loss, stop-loss and stuck-order watches for one engine."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.drawdown = Drawdown()
        self.drawdown_pct = Decimal(0)
        self._dd_warned = False
        self._stuck_alerted: set[str] = set()
        self._stop_alerted: set[str] = set()
        self._exiting: set[str] = set()
        self._retry_at: dict[str, float] = {}

    # ------------------------------------------------------------ equity

    def sample_equity(self) -> None:
        """Record equity, update drawdown and daily loss, and halt when a hard limit is reached."""
        e = self.engine
        equity = e.portfolio.equity()
        if equity is None:
            return
        risk = e.settings.risk
        e.stats.equity(equity)
        self.drawdown_pct = self.drawdown.update(equity)
        day = e.stats.current()
        daily_loss = day.daily_loss_pct(equity)
        e.record_equity(equity, self.drawdown.peak or equity, self.drawdown_pct)
        if self.drawdown_pct >= risk.max_drawdown_pct:
            self._trip("risk:max_drawdown", f"drawdown {self.drawdown_pct:.2f}% exceeds hard limit "
                                            f"{risk.max_drawdown_pct}%")
        elif self.drawdown_pct >= risk.max_drawdown_warn_pct and not self._dd_warned:
            self._dd_warned = True
            e.alert(Severity.WARN, "DRAWDOWN_WARN", f"drawdown {self.drawdown_pct:.2f}% is over the warning level "
                                                    f"{risk.max_drawdown_warn_pct}%")
        elif self.drawdown_pct < risk.max_drawdown_warn_pct:
            self._dd_warned = False
        if daily_loss >= risk.daily_loss_limit_pct:
            self._trip("risk:daily_loss_limit", f"daily loss {daily_loss:.2f}% exceeds limit "
                                                f"{risk.daily_loss_limit_pct}%")

    def _trip(self, actor: str, reason: str) -> None:
        if self.engine.trading_state != TradingState.HALTED:
            self.engine.set_state(TradingState.HALTED, actor, reason)

    # ------------------------------------------------------------ stop-loss

    def on_price(self, symbol: str, last: Decimal) -> None:
        """Enforce the stop of a held position: exit at market once the price is at or under it.

        One alert per episode (price through the stop while holding); a failed exit is retried after
        ``STOP_RETRY_S`` with a CRIT alert, never once per tick.
        """
        e = self.engine
        stop = e.execution.stops.get(symbol)
        holding = any(p.symbol == symbol for p in e.portfolio.positions())
        if stop is None or last > stop or not holding:
            self._stop_alerted.discard(symbol)
            return
        if symbol in self._exiting or time.monotonic() < self._retry_at.get(symbol, 0.0):
            return
        first = symbol not in self._stop_alerted
        self._stop_alerted.add(symbol)
        if e.trading_state == TradingState.HALTED:
            # HALTED means nothing new leaves, stop exits included: tell the operator once.
            if first:
                e.alert(Severity.CRIT, "STOP_LOSS_WHILE_HALTED",
                        f"{symbol} at {last} is through its stop {stop}, but trading is HALTED: "
                        "close the position or resume")
            return
        if first:
            e.alert(Severity.WARN, "STOP_LOSS", f"{symbol} at {last} reached stop {stop}: exiting at market")
        self._exiting.add(symbol)
        e.tasks.spawn(f"stop-loss-{symbol}", self._exit(symbol, stop, last))

    async def _exit(self, symbol: str, stop: Decimal, last: Decimal) -> None:
        try:
            result = await self.engine.execution.exit_position(symbol, "risk:stop_loss",
                                                               f"price {last} through stop {stop}")
            if not result.ok:
                self._retry_at[symbol] = time.monotonic() + STOP_RETRY_S
                self.engine.alert(Severity.CRIT, "STOP_LOSS_FAILED",
                                  f"{symbol} stop exit failed: {result.message}; retrying in {STOP_RETRY_S:g}s")
        finally:
            self._exiting.discard(symbol)

    # ------------------------------------------------------------ stuck orders

    def check_stuck_orders(self) -> None:
        """Alert once for each order open longer than ``stuck_order_s`` (runbook 001 §4)."""
        e = self.engine
        limit = timedelta(seconds=e.settings.risk.stuck_order_s)
        now = utcnow()
        for order in e.tracker.open_orders():
            age = now - order.created_at
            if age > limit and order.client_id not in self._stuck_alerted:
                self._stuck_alerted.add(order.client_id)
                e.alert(Severity.WARN, "ORDER_STUCK",
                        f"order {order.client_id} {order.side} {order.symbol} open for {int(age.total_seconds())}s "
                        f"(limit {int(limit.total_seconds())}s); cancel it or check the venue")

    async def run(self) -> None:
        """Sample equity and look for stuck orders every ``equity_sample_s``."""
        interval = self.engine.settings.engine.equity_sample_s
        while True:
            if self.engine.connected:
                self.sample_equity()
                self.check_stuck_orders()
            await asyncio.sleep(interval)
