"""The protective stop of each held position, resting at the venue as a stop-limit sell.

Runbook 003 ("Existing positions remain (stop-loss orders are on-exchange if using stop-limit)"): a stop that lives
only in the engine protects nothing while the engine, its host or its network is down. So every held position with
a stop has one stop-limit order at the venue, of the amount held (less what the engine's other sells already lock),
triggered at the stop and limited ``[risk] stop_limit_offset_pct`` under it. What the position needs and what
rests are compared (``gap``); ``protect`` closes the gap by cancelling first and then placing, so there are never
two live stops for one position. The moment between the two is covered by the stop kept in the engine's books
(persisted): after a crash there, the restart finds the position held with no stop resting and places it first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from engine.kernel.commands import CommandResult
from engine.kernel.config import RiskConfig
from engine.kernel.events import Order, OrderStatus, Severity
from engine.kernel.ports import Ports, VenueLink
from engine.trading.books import Books
from engine.trading.execution import Execution
from engine.trading.orders import STOP_ORDER_TYPE, is_protective_stop
from engine.trading.portfolio import base_of

log = logging.getLogger(__name__)

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class StopWanted:
    """The stop a held position needs at the venue."""

    amount: Decimal
    stop: Decimal  # the trigger
    limit: Decimal  # the stop-limit's limit, under the trigger


class VenueStops:
    """Places, amends and removes the venue's protective stops; says what differs from what a position needs."""

    def __init__(self, risk: RiskConfig, books: Books, link: VenueLink, execution: Execution, ports: Ports) -> None:
        self.enabled = risk.stops_at_venue
        self.offset_pct = risk.stop_limit_offset_pct
        self.stops = books.stops
        self.tracker = books.tracker
        self.portfolio = books.portfolio
        self.link = link
        self.execution = execution
        self.alert = ports.alert
        # While set (a cancel-all with its stops, a close-all) no stop is placed until an operator resumes.
        self.suspended = ""

    def wanted(self, symbol: str) -> StopWanted | None:
        """The stop the position in ``symbol`` needs at the venue, or None (no stop, nothing held above the venue's
        minimums, venue stops off or the venue not ready)."""
        stop = self.stops.get(symbol)
        venue = self.link.venue
        if not self.enabled or self.execution.mode == "dry-run" or stop is None:
            return None
        if venue is None or not venue.markets_loaded:
            return None
        held = self.portfolio.balances.get(base_of(symbol))
        if held is None or held.total <= 0:
            return None
        locked_elsewhere = sum(
            (o.remaining for o in self.tracker.open_orders(symbol) if o.side == "sell" and not is_protective_stop(o)),
            Decimal(0),
        )
        spare = held.total - locked_elsewhere
        if spare <= 0:
            return None
        amount = venue.amount_to_precision(symbol, spare)
        limit = venue.price_to_precision(symbol, stop * (1 - self.offset_pct / HUNDRED))
        if amount < venue.min_amount(symbol) or amount * limit < venue.min_cost(symbol):
            return None  # dust: the venue would refuse the stop (and could not sell it either)
        return StopWanted(amount, venue.price_to_precision(symbol, stop), limit)

    def resting(self, symbol: str) -> list[Order]:
        """The engine's protective stops open at the venue for ``symbol`` (one, when all is well)."""
        return [o for o in self.tracker.open_orders(symbol) if is_protective_stop(o)]

    def gap(self, symbol: str) -> str | None:
        """What differs between the stop the position needs and what rests at the venue; None when they match."""
        if symbol in self.execution.selling:
            return None  # a sell is under way: the stop waits for what it leaves
        want = None if self.suspended else self.wanted(symbol)
        have = self.resting(symbol)
        if want is None:
            return f"{len(have)} stop(s) resting for no position" if have and not self.suspended else None
        if not have:
            return f"no stop at the venue for {want.amount} {symbol} (stop {want.stop})"
        if len(have) > 1:
            return f"{len(have)} stops resting for one position"
        order = have[0]
        if order.remaining != want.amount or order.price != want.limit:
            return f"stop {order.remaining} @ {order.price} should be {want.amount} @ {want.limit}"
        return None

    def at_venue(self, symbol: str) -> bool:
        """The position's stop rests at the venue, as the position needs it."""
        return bool(self.resting(symbol)) and self.gap(symbol) is None

    async def protect(self, symbol: str, actor: str) -> CommandResult:
        """Close the gap for one symbol: cancel what rests that is not right, then place what is needed."""
        if self.suspended:
            return CommandResult(True, f"{symbol}: stops at the venue are suspended ({self.suspended})")
        if self.gap(symbol) is None:
            return CommandResult(True, f"{symbol}: the stop at the venue is as the position needs it")
        have = self.resting(symbol)
        for order in have:
            result = await self.execution.cancel(order.client_id, actor=actor)
            if not result.ok:
                return CommandResult(False, f"{symbol}: could not cancel the stop {order.client_id}: {result.message}")
        if have:
            await self.execution.refresh_balances_quietly()  # what the cancel freed (or a fill the stop made)
        want = self.wanted(symbol)
        if want is None:
            return CommandResult(True, f"{symbol}: stop removed ({len(have)} cancelled); no position to protect")
        if not have and (missing := self._went_missing(symbol)) is not None:
            self.alert(
                Severity.WARN,
                "STOP_MISSING_AT_VENUE",
                f"{symbol}: the stop {missing.client_id} is no longer at the venue ({missing.status.value}) while "
                f"{want.amount} is held; placing it again at {want.stop}",
            )
        if symbol in self.execution.selling:
            return CommandResult(True, f"{symbol}: a sell is under way; the stop follows what it leaves")
        result = await self.execution.place_stop(symbol, want.amount, want.stop, want.limit, actor)
        if not result.ok:
            return result
        verb = "amended" if have else "placed"
        return CommandResult(
            True,
            f"{symbol}: stop {verb} at the venue: sell {want.amount} at {want.stop} (limit {want.limit})",
            {**result.details, "stop": str(want.stop), "limit": str(want.limit), "amount": str(want.amount)},
        )

    def _went_missing(self, symbol: str) -> Order | None:
        """The latest stop of ``symbol`` if it ended without filling and not by this engine's hand."""
        stops = [o for o in self.tracker.all() if o.symbol == symbol and o.type == STOP_ORDER_TYPE]
        if not stops:
            return None
        latest = max(stops, key=lambda o: o.created_at)
        ended = latest.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED)  # not filled, not refused
        if not ended or latest.client_id in self.execution.stop_cancels:
            return None
        return latest
