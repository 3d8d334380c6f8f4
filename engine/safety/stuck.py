"""Stuck orders (runbook 001 §4): an order open longer than ``stuck_order_s`` is cancelled through the command
path as ``monitor:stuck_order`` and, with ``stuck_order_reissue``, placed again.

A cancel that fails is CRIT and is tried again with backoff (the monitors' interval doubled at each failure, at
most ``RETRY_CAP_INTERVALS`` intervals and ``RETRY_CAP_S``), never while the circuit breaker is open or the venue's
Retry-After (or a ban) is in force: a failing venue is not hammered once a second. Each order raises one
``ORDER_STUCK`` and at most one ``STUCK_ORDER_CANCEL_FAILED`` (the alert book counts them up: one count per
order); each try is one audit record that carries its attempt number.

An order the venue never acknowledged (its send was uncertain, e.g. while the breaker was open) is not stuck: it
is settled first, by asking the venue for it by client id, and judged on what the venue says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from engine.kernel.commands import CancelOrder, PlaceOrder
from engine.kernel.config import MonitorsConfig
from engine.kernel.events import Order, OrderStatus, Severity, utcnow
from engine.kernel.ports import Ports, VenueLink
from engine.safety.readings import CRIT, OK, WARN, Reading
from engine.trading.books import Books
from engine.trading.sync import VenueSync
from engine.venue import errors as vx
from engine.venue.health import VenueHealth

log = logging.getLogger(__name__)

RETRY_CAP_S = 60.0
RETRY_CAP_INTERVALS = 30


@dataclass
class Tries:
    """One order's cancel (or settle) attempts: how many, when the next may go, the last failure."""

    attempts: int = 0
    next_at: float = 0.0
    last_error: str = ""
    alerted: bool = False


class StuckOrders:
    """Finds orders open too long and has them cancelled (and reissued when configured)."""

    def __init__(
        self,
        cfg: MonitorsConfig,
        books: Books,
        ports: Ports,
        link: VenueLink | None = None,
        health: VenueHealth | None = None,
        sync: VenueSync | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.tracker = books.tracker
        self.stops = books.stops
        self.alert = ports.alert
        self.submit = ports.submit
        self.spawn = ports.spawn
        self.link = link
        self.health = health
        self.sync = sync
        self.clock = clock  # the wall clock: backoff is about the venue, real time whatever the run
        self.warned: set[str] = set()  # orders ORDER_STUCK was raised for
        self.running: set[str] = set()  # orders with a cancel or settle on its way
        self.tries: dict[str, Tries] = {}  # cancels tried and failed, by client id
        self.settling: dict[str, Tries] = {}  # orders the venue never acknowledged, being asked about
        self.failed: dict[str, str] = {}  # client id -> the last failure, while the order stays open

    def delay_s(self, attempts: int) -> float:
        """How long after the ``attempts``-th failed try the next one may go."""
        interval = float(self.cfg.interval_s)
        return min(interval * 2.0**attempts, interval * RETRY_CAP_INTERVALS, RETRY_CAP_S)

    def venue_refusal(self) -> str | None:
        """Why no call should go to the venue now: no venue, the breaker open, a Retry-After or ban in force."""
        venue = self.link.venue if self.link is not None else None
        if self.link is not None and venue is None:
            return "the venue is not connected"
        if venue is not None and (why := venue.breaker.refusal()) is not None:
            return why
        if self.health is not None:
            if (banned := self.health.banned_for()) > 0:
                return f"the venue banned this client for {banned:.0f}s more (418)"
            if (paused := self.health.paused_for()) > 0:
                return f"waiting out the venue's Retry-After ({paused:.1f}s)"
        return None

    def read(self) -> Reading:
        limit = timedelta(seconds=self.cfg.stuck_order_s)
        now, mono = utcnow(), self.clock()
        open_orders = self.tracker.open_orders()
        open_ids = {o.client_id for o in open_orders}
        in_flight = self.sync.execution.in_flight if self.sync is not None else set()
        refusal = self.venue_refusal()
        stuck: list[Order] = []
        unsettled: list[Order] = []
        for order in open_orders:
            if order.is_protective:
                continue  # a position's stop (or its OCO) rests until the price comes: waiting is its job, not stuck
            if now - order.created_at <= limit or order.client_id in in_flight:
                continue  # young, or its send is still on its way (its own answer decides)
            cid = order.client_id
            age = int((now - order.created_at).total_seconds())
            if order.status == OrderStatus.NEW and order.origin != "venue" and self.sync is not None:
                unsettled.append(order)  # never acknowledged: what the venue says comes first
                tries = self.settling.setdefault(cid, Tries())
                if cid not in self.running and tries.next_at <= mono and refusal is None:
                    self.running.add(cid)
                    self.spawn(f"settle-{cid}", self._settle(order, tries))
                continue
            stuck.append(order)
            if order.origin == "venue":  # not this engine's order (adopted): say so, leave it to its owner
                if cid not in self.warned:
                    self.warned.add(cid)
                    self.alert(
                        Severity.WARN,
                        "ORDER_STUCK",
                        f"order {cid} {order.side} {order.symbol} was not placed by this engine and is open for "
                        f"{age}s: not cancelled; cancel it at the venue or with c",
                    )
                continue
            tries = self.tries.setdefault(cid, Tries())
            if cid in self.running or tries.next_at > mono or refusal is not None:
                continue
            self.running.add(cid)
            self.spawn(f"stuck-{cid}", self._unstick(order, age, tries))
        for book in (self.tries, self.settling, self.failed):
            for cid in [k for k in book if k not in open_ids]:
                del book[cid]
        self.warned &= open_ids
        if self.failed:
            waits = [t.next_at - mono for cid, t in self.tries.items() if cid in self.failed]
            next_try = max(0.0, min(waits, default=0.0))
            return Reading(
                CRIT,
                f"{len(self.failed)} cancel(s) failed",
                f"{self.cfg.stuck_order_s:g}s",
                "; ".join(self.failed.values())
                + (f"; waiting: {refusal}" if refusal else f"; next try in {next_try:.0f}s"),
                {
                    "failed": dict(self.failed),
                    "attempts": {cid: self.tries[cid].attempts for cid in self.failed if cid in self.tries},
                    "next_try_s": round(next_try, 1),
                    "waiting_for": refusal or "",
                },
            )
        settling = f" ({len(unsettled)} unacknowledged, being settled)" if unsettled else ""
        return Reading(WARN if stuck else OK, f"{len(stuck)} stuck{settling}", f"{self.cfg.stuck_order_s:g}s")

    async def _settle(self, order: Order, tries: Tries) -> None:
        """Ask the venue by client id about an order it never acknowledged; try again later if it cannot say."""
        assert self.sync is not None
        try:
            status = await self.sync.settle(order)
            log.info("order %s settled before calling it stuck: %s", order.client_id, status)
        except vx.BaseError as exc:
            tries.attempts += 1
            tries.next_at = self.clock() + self.delay_s(tries.attempts)
            tries.last_error = f"{type(exc).__name__}: {str(exc)[:120]}"
            log.warning("order %s not settled yet (%s); asking again later", order.client_id, tries.last_error)
        finally:
            self.running.discard(order.client_id)

    async def _unstick(self, order: Order, age_s: int, tries: Tries) -> None:
        """Cancel an order open too long and, if configured, place what was left of it again."""
        try:
            await self._cancel(order, age_s, tries)
        finally:
            self.running.discard(order.client_id)

    async def _cancel(self, order: Order, age_s: int, tries: Tries) -> None:
        cid = order.client_id
        reason = f"open {age_s}s, over {self.cfg.stuck_order_s:g}s"
        if cid not in self.warned:
            self.warned.add(cid)
            self.alert(Severity.WARN, "ORDER_STUCK", f"order {cid} {order.side} {order.symbol} {reason}: cancelling")
        attempt = tries.attempts + 1
        result = await self.submit(
            CancelOrder(
                actor="monitor:stuck_order",
                reason=reason + (f" (try {attempt})" if attempt > 1 else ""),
                client_id=cid,
                values={"age_s": age_s, "attempt": attempt, "failed_before": tries.attempts},
            )
        )
        if not result.ok:
            tries.attempts = attempt
            delay = self.delay_s(attempt)
            tries.next_at = self.clock() + delay
            tries.last_error = result.message
            self.failed[cid] = f"{cid}: {result.message}"
            if not tries.alerted:  # one alert per order; its later failures are counted here and logged
                tries.alerted = True
                self.alert(
                    Severity.CRIT,
                    "STUCK_ORDER_CANCEL_FAILED",
                    f"stuck order {cid} could not be cancelled: {result.message}; trying again with backoff; "
                    "cancel it at the venue or press c",
                    values={"client_id": cid, "symbol": order.symbol, "error": result.message[:200]},
                )
            else:
                log.warning(
                    "stuck order %s: cancel try %d failed (%s); next in %.0fs", cid, attempt, result.message, delay
                )
            return
        self.failed.pop(cid, None)
        self.tries.pop(cid, None)
        now = self.tracker.get(cid)
        if self.cfg.stuck_order_reissue and now is not None and now.remaining > 0 and "CANCELED" in result.message:
            await self.submit(
                PlaceOrder(
                    actor="monitor:stuck_order",
                    reason=f"reissue of stuck {cid}",
                    symbol=order.symbol,
                    side=order.side,
                    type=order.type,
                    amount=now.remaining,
                    price=order.price,
                    stop_loss=self.stops.get(order.symbol),
                )
            )
