"""Stuck orders (runbook 001 §4): an order open longer than ``stuck_order_s`` is cancelled through the command
path as ``monitor:stuck_order`` and, with ``stuck_order_reissue``, placed again; a cancel that fails is CRIT and is
tried again on the next reading."""

from __future__ import annotations

from datetime import timedelta

from engine.kernel.commands import CancelOrder, PlaceOrder
from engine.kernel.config import MonitorsConfig
from engine.kernel.events import Order, Severity, utcnow
from engine.kernel.ports import Ports
from engine.safety.readings import CRIT, OK, WARN, Reading
from engine.trading.books import Books


class StuckOrders:
    """Finds orders open too long and has them cancelled (and reissued when configured)."""

    def __init__(
        self,
        cfg: MonitorsConfig,
        books: Books,
        ports: Ports,
    ) -> None:
        self.cfg = cfg
        self.tracker = books.tracker
        self.stops = books.stops
        self.alert = ports.alert
        self.submit = ports.submit
        self.spawn = ports.spawn
        self.handled: set[str] = set()
        self.failed: dict[str, str] = {}

    def read(self) -> Reading:
        limit = timedelta(seconds=self.cfg.stuck_order_s)
        now = utcnow()
        open_orders = self.tracker.open_orders()
        stuck = [o for o in open_orders if now - o.created_at > limit]
        for order in stuck:
            if order.client_id in self.handled:
                continue
            self.handled.add(order.client_id)
            age = int((now - order.created_at).total_seconds())
            if order.origin == "venue":  # not this engine's order (adopted): say so, leave it to its owner
                self.alert(
                    Severity.WARN,
                    "ORDER_STUCK",
                    f"order {order.client_id} {order.side} {order.symbol} was "
                    f"not placed by this engine and is open for {age}s: not "
                    "cancelled; cancel it at the venue or with c",
                )
                continue
            self.spawn(f"stuck-{order.client_id}", self._unstick(order, age))
        open_ids = {o.client_id for o in open_orders}
        self.failed = {k: v for k, v in self.failed.items() if k in open_ids}
        if self.failed:
            return Reading(
                CRIT,
                f"{len(self.failed)} cancel(s) failed",
                f"{self.cfg.stuck_order_s:g}s",
                "; ".join(self.failed.values()),
            )
        return Reading(WARN if stuck else OK, f"{len(stuck)} stuck", f"{self.cfg.stuck_order_s:g}s")

    async def _unstick(self, order: Order, age_s: int) -> None:
        """Cancel an order open too long and, if configured, place what was left of it again."""
        reason = f"open {age_s}s, over {self.cfg.stuck_order_s:g}s"
        self.alert(
            Severity.WARN, "ORDER_STUCK", f"order {order.client_id} {order.side} {order.symbol} {reason}: cancelling"
        )
        result = await self.submit(
            CancelOrder(actor="monitor:stuck_order", reason=reason, client_id=order.client_id, values={"age_s": age_s})
        )
        if not result.ok:
            self.failed[order.client_id] = f"{order.client_id}: {result.message}"
            self.alert(
                Severity.CRIT,
                "STUCK_ORDER_CANCEL_FAILED",
                f"stuck order {order.client_id} could not be cancelled: {result.message}; cancel it at the "
                "venue or press c",
            )
            self.handled.discard(order.client_id)  # tried again on the next reading
            return
        now = self.tracker.get(order.client_id)
        if self.cfg.stuck_order_reissue and now is not None and now.remaining > 0 and "CANCELED" in result.message:
            await self.submit(
                PlaceOrder(
                    actor="monitor:stuck_order",
                    reason=f"reissue of stuck {order.client_id}",
                    symbol=order.symbol,
                    side=order.side,
                    type=order.type,
                    amount=now.remaining,
                    price=order.price,
                    stop_loss=self.stops.get(order.symbol),
                )
            )
