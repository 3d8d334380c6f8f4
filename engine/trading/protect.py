"""The protection of each held position at the venue: a stop-limit sell, or an OCO of it with a take-profit.

Runbook 003 ("Existing positions remain (stop-loss orders are on-exchange if using stop-limit)"): a stop that lives
only in the engine protects nothing while the engine, its host or its network is down. So every held position with
a stop has one stop-limit order at the venue, of the amount held (less what the engine's other sells already lock),
triggered at the stop and limited ``[risk] stop_limit_offset_pct`` under it. What the position needs and what
rests are compared (``gap``); ``protect`` closes the gap by cancelling first and then placing, so there are never
two live stops for one position. The moment between the two is covered by the stop kept in the engine's books
(persisted): after a crash there, the restart finds the position held with no stop resting and places it first.

When the entry gave a take-profit (and the venue has OCO lists), the protection is one OCO instead: a limit sell at
the take-profit above the price and the same stop-limit under it, one amount for both; when one leg fills the venue
expires the other. It is amended, replaced and removed whole, like the lone stop. While the price is already at or
over the take-profit the venue would refuse the list, so the stop rests alone until it is back under.

A cancel-all with its stops, or a close-all, suspends all this until an operator resumes; the suspension is
persisted (``StopsSuspended``), so a restart does not put back what the operator took away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from engine.kernel.commands import CommandResult
from engine.kernel.config import RiskConfig
from engine.kernel.events import Order, OrderStatus, Severity, StopsSuspended
from engine.kernel.ports import Ports, VenueLink
from engine.trading.books import Books
from engine.trading.execution import Execution
from engine.trading.orders import STOP_ORDER_TYPE
from engine.trading.portfolio import base_of

log = logging.getLogger(__name__)

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class StopWanted:
    """The stop a held position needs at the venue."""

    amount: Decimal
    stop: Decimal  # the trigger
    limit: Decimal  # the stop-limit's limit, under the trigger
    take_profit: Decimal | None = None  # the OCO's take-profit (a limit sell above the price), when there is one
    side: str = "sell"  # perps: against the position (a short's stop buys)


class VenueStops:
    """Places, amends and removes the venue's protective stops; says what differs from what a position needs."""

    def __init__(self, risk: RiskConfig, books: Books, link: VenueLink, execution: Execution, ports: Ports) -> None:
        self.enabled = risk.stops_at_venue
        self.offset_pct = risk.stop_limit_offset_pct
        self.stops = books.stops
        self.take_profits = books.take_profits
        self.tracker = books.tracker
        self.portfolio = books.portfolio
        self.link = link
        self.execution = execution
        self.alert = ports.alert
        self.publish = ports.publish
        # While set (a cancel-all with its stops, a close-all) no stop is placed until an operator resumes.
        self.suspended = ""
        # Symbol -> a take-profit the venue refused as an OCO: the stop rests alone for it (a new one is tried).
        self.oco_refused: dict[str, Decimal] = {}

    def suspend(self, why: str) -> None:
        """Suspend the protective orders until an operator resumes (``why``), or lift that (empty): persisted."""
        if why != self.suspended:
            self.suspended = why
            self.publish(StopsSuspended(why))

    def wanted(self, symbol: str) -> StopWanted | None:
        """The stop the position in ``symbol`` needs at the venue, or None (no stop, nothing held above the venue's
        minimums, venue stops off or the venue not ready)."""
        stop = self.stops.get(symbol)
        venue = self.link.venue
        if not self.enabled or self.execution.mode == "dry-run" or stop is None:
            return None
        if venue is None or not venue.markets_loaded:
            return None
        if self.portfolio.usdm:
            return self._wanted_perp(symbol, stop)
        held = self.portfolio.balances.get(base_of(symbol))
        if held is None or held.total <= 0:
            return None
        locked_elsewhere = sum((o.remaining for o in self.tracker.open_sells(symbol)), Decimal(0))
        spare = held.total - locked_elsewhere
        if spare <= 0:
            return None
        amount = venue.amount_to_precision(symbol, spare)
        limit = venue.price_to_precision(symbol, stop * (1 - self.offset_pct / HUNDRED))
        if amount < venue.min_amount(symbol) or amount * limit < venue.min_cost(symbol):
            return None  # dust: the venue would refuse the stop (and could not sell it either)
        take_profit = self.take_profits.get(symbol)
        if take_profit is not None and venue.oco_orders(symbol):
            return StopWanted(
                amount, venue.price_to_precision(symbol, stop), limit, venue.price_to_precision(symbol, take_profit)
            )
        return StopWanted(amount, venue.price_to_precision(symbol, stop), limit)

    def perp_stop(self, symbol: str) -> Decimal | None:
        """Perps: the position's stop, when it is on the protective side of its entry (a long's under, a short's
        over); a stop left from the other side (a flip with no stop of its own) protects nothing and is not used."""
        stop = self.stops.get(symbol)
        pos = self.portfolio.perps.get(symbol)
        if stop is None or pos is None or pos.amount == 0 or pos.entry is None:
            return None
        return stop if (stop < pos.entry if pos.amount > 0 else stop > pos.entry) else None

    def _wanted_perp(self, symbol: str, stop: Decimal) -> StopWanted | None:
        """Perps (decision PERP-07): a stop-market against the position with the venue's ``closePosition``, so it
        closes whatever is held when it triggers and needs no amend when the size changes: a long's under the price
        (a sell), a short's over it (a buy). None while the price is already through it (the venue would refuse it:
        the engine's own check exits) or the position is flat."""
        venue = self.link.require()
        held = self.portfolio.held_amount(symbol)
        if held == 0 or self.perp_stop(symbol) is None:
            return None
        side = "sell" if held > 0 else "buy"
        trigger = venue.price_to_precision(symbol, stop)
        last = self.portfolio.last.get(symbol)
        if last is not None and (trigger >= last if side == "sell" else trigger <= last):
            return None
        return StopWanted(abs(held), trigger, trigger, side=side)

    def resting(self, symbol: str) -> list[Order]:
        """The engine's protective orders open at the venue for ``symbol``: its stop, or an OCO's two legs."""
        return self.tracker.protective_orders(symbol)

    def resting_stops(self, symbol: str) -> list[Order]:
        """The stops among them (one when all is well, alone or an OCO's stop leg)."""
        return [o for o in self.resting(symbol) if o.is_protective_stop]

    def resting_take_profit(self, symbol: str) -> Order | None:
        """The take-profit leg of the OCO resting for ``symbol``, if one does."""
        return next((o for o in self.resting(symbol) if o.is_take_profit_leg), None)

    def _oco_now(self, symbol: str, want: StopWanted) -> bool:
        """Whether the protection should be an OCO now: a take-profit is wanted and the price is under it (the
        venue refuses a list whose take-profit the price has passed; the stop rests alone meanwhile)."""
        last = self.portfolio.last.get(symbol)
        if want.take_profit is None or self.oco_refused.get(symbol) == want.take_profit:
            return False
        return last is not None and last < want.take_profit

    def gap(self, symbol: str) -> str | None:
        """What differs between the protection the position needs and what rests at the venue; None when they
        match."""
        if symbol in self.execution.selling:
            return None  # a sell is under way: the stop waits for what it leaves
        want = None if self.suspended else self.wanted(symbol)
        have = self.resting(symbol)
        if want is None:
            return f"{len(have)} protective order(s) resting for no position" if have and not self.suspended else None
        stops = [o for o in have if o.is_protective_stop]
        profits = [o for o in have if o.is_take_profit_leg]
        if not stops:
            return f"no stop at the venue for {want.amount} {symbol} (stop {want.stop})"
        if len(stops) > 1 or len(profits) > 1:
            return f"{len(stops)} stops and {len(profits)} take-profits resting for one position"
        order = stops[0]
        if self.portfolio.usdm:  # closePosition: the size is the venue's to follow, the side and trigger are ours
            if order.side != want.side or order.price != want.stop:
                return f"stop {order.side} @ {order.price} should be {want.side} @ {want.stop}"
            return None
        if order.remaining != want.amount or order.price != want.limit:
            return f"stop {order.remaining} @ {order.price} should be {want.amount} @ {want.limit}"
        if profits:
            profit = profits[0]
            if profit.client_id != order.oco_partner:
                return f"the take-profit {profit.client_id} is not the stop's OCO partner"
            if want.take_profit is None:
                return f"a take-profit rests at {profit.price}; the position has none now"
            if profit.remaining != want.amount or profit.price != want.take_profit:
                return f"take-profit {profit.remaining} @ {profit.price} should be {want.amount} @ {want.take_profit}"
        elif self._oco_now(symbol, want):
            return f"the stop should rest as an OCO with the take-profit {want.take_profit}"
        return None

    def at_venue(self, symbol: str) -> bool:
        """The position's stop rests at the venue, as the position needs it."""
        return bool(self.resting_stops(symbol)) and self.gap(symbol) is None

    async def protect(self, symbol: str, actor: str) -> CommandResult:
        """Close the gap for one symbol: cancel what rests that is not right, then place what is needed."""
        if self.suspended:
            return CommandResult(True, f"{symbol}: stops at the venue are suspended ({self.suspended})")
        if self.gap(symbol) is None:
            return CommandResult(True, f"{symbol}: the stop at the venue is as the position needs it")
        have = self.resting(symbol)
        for order in have:
            now = self.tracker.get(order.client_id)
            if now is None or not now.status.is_open:
                continue  # cancelled with its OCO partner
            result = await self.execution.cancel(order.client_id, actor=actor)
            if not result.ok:
                return CommandResult(False, f"{symbol}: could not cancel the stop {order.client_id}: {result.message}")
        if have or self._last_filled(symbol):
            # What the cancel freed, or what the protection sold when it filled: the balance stream may lag the order
            # stream, and a stop placed for what was just sold would be refused (a CRIT for nothing).
            await self.execution.refresh_balances_quietly()
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
        verb = "amended" if have else "placed"
        values = {"stop": str(want.stop), "limit": str(want.limit), "amount": str(want.amount)}
        if want.take_profit is not None and self._oco_now(symbol, want):
            result = await self.execution.place_oco(symbol, want.amount, want.stop, want.limit, want.take_profit, actor)
            if not result.ok and result.message.startswith("rejected by venue"):
                # Refused as a list (a filter, the prices' relation): the stop rests alone rather than nothing.
                self.oco_refused[symbol] = want.take_profit
                alone = await self.execution.place_stop(symbol, want.amount, want.stop, want.limit, actor)
                why = f"the OCO was refused ({result.message}); the stop rests alone"
                return CommandResult(alone.ok, f"{symbol}: {why}: {alone.message}", alone.details)
            if not result.ok:
                return result
            return CommandResult(
                True,
                f"{symbol}: OCO {verb} at the venue: sell {want.amount} at the take-profit {want.take_profit} or "
                f"the stop {want.stop} (limit {want.limit})",
                {**result.details, **values, "take_profit": str(want.take_profit)},
            )
        result = await self.execution.place_stop(symbol, want.amount, want.stop, want.limit, actor, want.side)
        if not result.ok:
            return result
        if self.portfolio.usdm:
            return CommandResult(
                True,
                f"{symbol}: stop {verb} at the venue: {want.side} to close the position at {want.stop} (stop-market)",
                {**result.details, "stop": str(want.stop), "side": want.side},
            )
        return CommandResult(
            True,
            f"{symbol}: stop {verb} at the venue: sell {want.amount} at {want.stop} (limit {want.limit})",
            {**result.details, **values},
        )

    def _last_filled(self, symbol: str) -> bool:
        """Whether the latest protection of ``symbol`` (its stop, or its OCO's take-profit) sold something."""
        stops = [o for o in self.tracker.all() if o.symbol == symbol and o.type == STOP_ORDER_TYPE]
        if not stops:
            return False
        latest = max(stops, key=lambda o: o.created_at)
        partner = self.tracker.get(latest.oco_partner)
        return latest.filled > 0 or (partner is not None and partner.filled > 0)

    def _went_missing(self, symbol: str) -> Order | None:
        """The latest stop of ``symbol`` if it ended without filling and not by this engine's hand."""
        stops = [o for o in self.tracker.all() if o.symbol == symbol and o.type == STOP_ORDER_TYPE]
        if not stops:
            return None
        latest = max(stops, key=lambda o: o.created_at)
        ended = latest.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED)  # not filled, not refused
        if not ended or latest.client_id in self.execution.stop_cancels:
            return None
        partner = self.tracker.get(latest.oco_partner)
        if partner is not None and partner.filled > 0:
            return None  # the OCO's take-profit filled: the venue expired the stop leg with it
        return latest
