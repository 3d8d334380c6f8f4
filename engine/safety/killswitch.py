"""The kill switch's tiers after the halt: cancel every open order, and close every position at market.

Runbooks 000 §3 ("Kill-Switch Activated": stop new orders, cancel pending orders, close positions), 001 §1
("ws_stale: MUST close") and 003 "Emergency Procedures" (`/stop`, `/closeall`). Every call goes out on the
venue's urgent lane, past the circuit breaker and the client-side rate limiter, and symbols are worked in
parallel. What could not be done is reported per symbol; the engine keeps retrying it (``retry``) until done
or an operator resumes. What remains after a close is verified at the venue: only dust too small to sell may
be left, and it is reported by asset and amount, never hidden (a close-all answered first judges it from the
venue's answers and reads the balances back right after: decision BEN-11). Perps (runbook 002 "Close all
positions"): longs and shorts are closed with reduce-only market orders and the venue's positions must then be
flat, not "only dust".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from engine.kernel.commands import CancelAll, CloseAll, ClosePosition, Command, CommandResult
from engine.kernel.errors import EngineError
from engine.kernel.events import Balance, Order, Severity, TradingState
from engine.kernel.ports import Ports, VenueLink
from engine.trading.books import Books
from engine.trading.execution import Execution
from engine.trading.orders import STOP_ID_PREFIX
from engine.trading.portfolio import base_of
from engine.trading.protect import VenueStops
from engine.trading.state import TradingStateMachine, is_operator
from engine.venue import errors as vx
from engine.venue.adapter import OrderReport, Venue

log = logging.getLogger(__name__)
T = TypeVar("T")

# Readies the venue before a pass (the no-engine emergency path: markets, prices).
Prepare = Callable[[CancelAll | CloseAll | ClosePosition], Awaitable[None]]

# Seconds between retries of what a kill-switch tier could not do (it keeps trying until done).
RETRY_S = (1.0, 2.0, 4.0, 8.0)
# Seconds a pass waits, before a symbol's cancel, for the answers of that symbol's orders still on their way to the
# venue (an entry's protective stop, placed right after its fill): no longer than the first retry (``RETRY_S``) it
# spares (``KillSwitch._answered_first``, decision SAF-39).
IN_FLIGHT_WAIT_S = RETRY_S[0]
# Turns of the event loop close-all's sells get to be built and written before its listing is (``_close_fast_pass``).
SELLS_AHEAD_TURNS = 3
# What a cancel-all answered first left for after its answer is applied this long after the pass at the latest.
CATCH_UP_LATE_S = 5.0
# The alert code of each tier done (the catalogue test reads this table: docs/alerts.md).
DONE_CODES: dict[type, str] = {CancelAll: "CANCEL_ALL", CloseAll: "CLOSE_ALL", ClosePosition: "CLOSE_POSITION"}


@dataclass
class Outcome:
    """What one pass of a tier did, per symbol where it matters."""

    canceled: int = 0
    kept: int = 0  # protective stops of held positions left resting (cancel-all without its stops)
    still_open: int | None = 0  # None: could not be listed (the kept stops are not counted)
    closed: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # symbol (or "listing") -> what failed
    dust: dict[str, Decimal] = field(default_factory=dict)  # asset -> amount left, too small to sell
    left: dict[str, Decimal] = field(default_factory=dict)  # asset -> amount left that could be sold

    @property
    def done(self) -> bool:
        return not self.failures and self.still_open == 0 and not self.left

    def details(self) -> dict[str, Any]:
        return {
            "canceled": self.canceled,
            "kept_stops": self.kept,
            "still_open": self.still_open,
            "closed": list(self.closed),
            "failures": dict(self.failures),
            "dust": {k: str(v) for k, v in self.dust.items()},
            "left": {k: str(v) for k, v in self.left.items()},
        }

    def sentence(self, closing: bool) -> str:
        still = "unknown" if self.still_open is None else self.still_open
        parts = [f"canceled {self.canceled} order(s)"]
        if self.kept:
            parts.append(f"kept {self.kept} protective stop(s)")
        if closing:
            parts.append(f"closed {len(self.closed)} position(s)")
        parts.append(f"{still} still open at venue")
        if closing:
            if self.left:
                parts.append("NOT closed: " + ", ".join(f"{a} {v}" for a, v in sorted(self.left.items())))
            parts.append("dust left: " + (", ".join(f"{a} {v}" for a, v in sorted(self.dust.items())) or "none"))
        if self.failures:
            parts.append("failed: " + "; ".join(f"{s}: {why}" for s, why in sorted(self.failures.items())))
        return "; ".join(parts)


@dataclass
class ClosePlan:
    """A fast close worked out before it acts (``KillSwitch.plan_close``): the symbols to cancel, what is held of
    each base to sell at once (free, total), the sells and their records."""

    symbols: tuple[str, ...] | None
    cancels: list[str]
    held: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    sells: list[tuple[str, Decimal]] = field(default_factory=list)
    recorded: list[Order | CommandResult] = field(default_factory=list)
    after: list[tuple[str, Decimal]] = field(default_factory=list)  # sold once their symbols' orders are cancelled
    recorded_after: list[Order | CommandResult] = field(default_factory=list)
    # Sold with their stop's cancel in one request (the stop the symbol's one order): (symbol, amount, stop's id).
    replaces: list[tuple[str, Decimal, str]] = field(default_factory=list)
    recorded_replace: list[Order | CommandResult] = field(default_factory=list)

    def records(self) -> list[Order | CommandResult]:
        return [*self.recorded, *self.recorded_after, *self.recorded_replace]

    committed_at: tuple[int, int] | None = None  # the store's (commits, rollbacks) when recorded before the halt


class KillSwitch:
    """Cancel-all and close-all (all symbols or one) on the urgent lane, with a per-symbol report."""

    def __init__(
        self,
        books: Books,
        link: VenueLink,
        execution: Execution,
        venue_stops: VenueStops,
    ) -> None:
        self.venue_stops = venue_stops
        self.symbols = books.symbols
        self.link = link
        self.execution = execution
        self.tracker = books.tracker
        self.portfolio = books.portfolio
        # The latest pass's phases (``time.perf_counter()`` when each ended, the first of each kept): what the
        # benchmark's profile reads (bench/kill_switch.py). Cheap: a few dictionary writes per pass.
        self.marks: dict[str, float] = {}
        self.plan: ClosePlan | None = None  # a fast close planned before the halt (``Tiers.run``), for its pass
        # What a cancel-all answered first left for after its answer (``catch_up``): its cancels' reports, and the
        # venue whose user stream it holds (decision BEN-09).
        self._deferred: list[OrderReport] = []
        self._holding: Venue | None = None
        self._catch_up_late: asyncio.TimerHandle | None = None

    def mark(self, phase: str) -> None:
        self.marks.setdefault(phase, time.perf_counter())

    # ------------------------------------------------------------ tiers

    async def cancel_all(
        self,
        symbols: tuple[str, ...] | None = None,
        alongside: Callable[[], Awaitable[Any]] | None = None,
        keep_stops: bool = False,
        defer: bool = False,
    ) -> Outcome:
        """Cancel every open order: the symbols it knows at once, in parallel, then whatever the venue-wide
        listing shows (orders this engine never placed included), then bring tracked orders up to date.
        ``alongside`` runs with the first listing (close-all reads the balances the cancels freed meanwhile); what
        it raises is the caller's to see. ``keep_stops``: the engine's protective stops stay (a symbol that has
        one is cancelled order by order instead of all at once). ``defer``: the caller answers before it calls
        ``catch_up``; the user stream's events are held from the first ``DELETE`` and the cancels' own reports
        kept, both applied by ``catch_up`` (what the venue answered stands in for them until then)."""
        self.catch_up()  # what an earlier pass left: applied before this one reads the tracker
        venue = self.link.require()
        if defer:
            self._hold(venue)
        out = Outcome()
        only = set(symbols) if symbols else None
        keep = {o.client_id for o in self.tracker.open_orders() if o.is_protective} if keep_stops else set[str]()
        pending = set(symbols or self.symbols) | {
            o.symbol for o in self.tracker.open_orders() if only is None or o.symbol in only
        }
        done: set[str] = set()
        remaining: list[OrderReport] | None = None
        kept: list[OrderReport] = []
        rounds = 0
        while pending:
            self.mark("first_delete")
            answers = await asyncio.gather(
                *(self._cancel_symbol(s, keep) for s in sorted(pending)), return_exceptions=True
            )
            self.mark("cancels_answered")
            for symbol, result in zip(sorted(pending), answers):
                if isinstance(result, BaseException):
                    out.failures[symbol] = f"cancel: {type(result).__name__}: {result}"[:200]
                    continue
                out.canceled += len(result)
                self.execution.note_stop_cancels(r.client_id for r in result)  # its own cancels: no news
                if defer:
                    self._deferred.extend(result)
                else:
                    self.execution.apply_reports(result, "rest")
            self.mark("reports_applied")
            done |= pending
            rounds += 1
            listing = venue.fetch_open_orders(symbols[0] if symbols and len(symbols) == 1 else None, urgent=True)
            try:
                if alongside is not None and rounds == 1:
                    listed, _ = await asyncio.gather(listing, alongside())
                else:
                    listed = await listing
            except vx.BaseError as exc:
                out.failures["listing"] = f"listing open orders: {type(exc).__name__}: {exc}"[:200]
                remaining = None
                break
            self.mark("listing_confirmed")
            listed = [r for r in listed if only is None or r.symbol in only]
            kept = [r for r in listed if r.client_id in keep]
            out.kept = sum(1 for r in kept if r.client_id.startswith(STOP_ID_PREFIX))  # an OCO counts once
            remaining = [r for r in listed if r.client_id not in keep]
            pending = {r.symbol for r in remaining} - done
        out.still_open = None if remaining is None else len(remaining)
        if alongside is not None and rounds != 1:
            await alongside()  # the listing found more to cancel (or failed): run it after the last cancels
        await self._settle(None if remaining is None else remaining + kept, only, out)
        self.mark("settled")
        return out

    def _hold(self, venue: Venue) -> None:
        """Hold the user stream's order events until ``catch_up`` (the caller answers first, then calls it)."""
        venue.hold_user_stream()
        self._holding = venue
        # At the latest: the caller's ``catch_up`` may never come (a bug between here and its answer).
        self._catch_up_late = asyncio.get_running_loop().call_later(CATCH_UP_LATE_S, self.catch_up)

    def catch_up(self) -> None:
        """Apply what a cancel-all answered first left for after its answer: its cancels' reports (one
        transaction), then the user stream's events held meanwhile (by then mostly the same news again)."""
        if self._catch_up_late is not None:
            self._catch_up_late.cancel()
            self._catch_up_late = None
        reports, self._deferred = self._deferred, []
        if reports:
            self.execution.apply_reports(reports, "rest")
        venue, self._holding = self._holding, None
        if venue is not None:
            venue.release_user_stream()

    async def close_all(self, actor: str, symbols: tuple[str, ...] | None = None, fast: bool = False) -> Outcome:
        """Cancel everything, then sell every position at market within the venue's filters, and verify.

        ``fast`` (a close answered first, its balances read back after the answer: decision BEN-11): the sells
        sized from the engine's balances and sent at once, or with their stop's cancel, or once the orders known
        open are cancelled (``_close_fast``); when that finds the venue not as the engine thought, the same command
        goes on with the pass below (cancel, listing with balances, sells), which a retry makes from the start."""
        read: list[BaseException | None] = []

        async def read_balances() -> None:
            """What the cancels freed; read alongside cancel-all's listing (one round trip fewer)."""
            try:
                with self.execution.joining_batch():  # in a task of its own: joins the pass's transaction
                    await self.execution.refresh_balances(urgent=True)
                read.append(None)
            except vx.BaseError as exc:
                read.append(exc)

        # Tier 3 cancels the protective stops before flattening (they lock what it sells), and none is placed
        # again while it works.
        suspended, self.venue_stops.suspended = self.venue_stops.suspended, "a close is under way"
        try:
            if fast and not self.portfolio.usdm:
                first = await self._close_fast(actor, symbols)
                if first.done:
                    return first
                out = await self._close(actor, symbols, read, read_balances)
                out.canceled += first.canceled
                out.closed = sorted(set(first.closed) | set(out.closed))
                return out
            return await self._close(actor, symbols, read, read_balances)
        finally:
            self.venue_stops.suspended = suspended

    async def _close(
        self,
        actor: str,
        symbols: tuple[str, ...] | None,
        read: list[BaseException | None],
        read_balances: Callable[[], Awaitable[None]],
    ) -> Outcome:
        out = await self.cancel_all(symbols, alongside=read_balances)
        targets = tuple(symbols or self.symbols)
        if not read:  # no listing was reached
            await read_balances()
        if read[-1] is not None:
            exc = read[-1]
            out.failures["balances"] = f"balances: {type(exc).__name__}: {exc}"[:200]
            return out
        if self.portfolio.usdm:
            return await self._flatten(actor, targets, out)
        # What the venue said it holds once the orders were cancelled (read alongside the listing): free and total
        # of each base, before the sells.
        held = {base_of(s): self._held(base_of(s)) for s in targets}
        sells = [s for s in targets if self._sellable(s)[0] > 0]
        self.mark("sells_leaving")
        results = await self.execution.sell_now([(s, self._sellable(s)[0]) for s in sells], actor)
        self.mark("sells_answered")
        for symbol, result in zip(sells, results):
            if isinstance(result, BaseException):
                out.failures[symbol] = f"sell: {type(result).__name__}: {result}"[:200]
            elif not result.ok:
                out.failures[symbol] = f"sell: {result.message}"[:200]
            else:
                out.closed.append(symbol)
                order = self.tracker.get(str(result.details.get("client_id", "")))
                sold = order.filled if order is not None else Decimal(0)
                free, total = held[base_of(symbol)]
                held[base_of(symbol)] = (free - sold, total - sold)
        # What is left, from the venue's own answers: the balances it listed after the cancels, less what each sell
        # filled (a market sell answers with its fills). No third read on the way to the answer; the balances are
        # read back after it, and anything sellable found then is alerted and closed again (``Tiers.verify``).
        self.judge_left(targets, held, out)
        return out

    def plan_close(self, actor: str, symbols: tuple[str, ...] | None, before_halt: bool = False) -> ClosePlan:
        """What ``_close_fast`` will do, its sells recorded (not committed, not sent), each sized from what the
        engine holds of its base (all of it: a resting stop locks it but moves none out). ``before_halt``: made
        right before the halt is stored, whose commit then carries the sells' records (one fsync fewer before they
        leave: ``Tiers.run``); the pass checks a commit was made since, else commits them itself."""
        venue = self.link.require()
        only = set(symbols) if symbols else None
        known = {o.symbol for o in self.tracker.open_orders() if only is None or o.symbol in only}
        plan = ClosePlan(symbols, sorted(known))
        locked = {base_of(s) for s in plan.cancels}
        for symbol in symbols or self.symbols:
            base = base_of(symbol)
            if base in plan.held or (base in locked and symbol not in known):
                continue  # one sell per base (the symbol with the orders, when one has them)
            free, total = self._held(base)
            plan.held[base] = (total, total) if symbol in known else (free, total)
            amount, _ = self._sellable(symbol, plan.held[base])
            if amount <= 0:
                continue
            resting = self.tracker.open_orders(symbol) if symbol in known else []
            if (
                len(resting) == 1
                and resting[0].is_protective_stop
                and resting[0].venue_id is not None
                and venue.cancel_replace(symbol)
            ):
                plan.replaces.append((symbol, amount, resting[0].client_id))  # the stop and the sell in one request
                plan.cancels.remove(symbol)
            else:
                (plan.after if symbol in known else plan.sells).append((symbol, amount))
        plan.recorded = self.execution.record_sells(plan.sells, actor) if plan.sells else []
        plan.recorded_after = self.execution.record_sells(plan.after, actor) if plan.after else []
        plan.recorded_replace = (
            self.execution.record_sells([(s, a) for s, a, _ in plan.replaces], actor) if plan.replaces else []
        )
        if before_halt:
            plan.committed_at = self.execution.commits()
        return plan

    def _rolled_back(self, plan: ClosePlan) -> bool:
        """Whether the store rolled a transaction back since ``plan`` recorded its sells (they may be lost)."""
        return plan.committed_at is not None and self.execution.commits()[1] != plan.committed_at[1]

    async def _close_fast(self, actor: str, symbols: tuple[str, ...] | None) -> Outcome:
        """Close-all in as few round trips as the venue allows (decision BEN-11). At once and together: a market
        sell of what the engine holds of each base with no order known open in its symbol (nothing locks it),
        ``DELETE openOrders`` of each symbol with an order known open (no blind cancel elsewhere), the balances
        when something is cancelled, and the open-order listing that finds any order the engine does not know; then
        the sells of the symbols whose orders were cancelled (all of each base is free once they are). Every sell
        is sized from the engine's balances (the user stream and each fill's read-back keep them) and recorded
        before the halt, whose commit carries them; one whose base the venue's balances, read beside the cancels,
        show otherwise is recorded again at the venue's amount.

        Done only when the venue matched the engine's view: every cancel and sell answered, each sell filled to the
        amount held, and the listing shows no order but those the cancels answered for. Otherwise the outcome is
        not done and ``close_all`` goes on with the full pass (which reads the venue's balances before it sells).
        Spot never sells more than is free: a sell sized from a stale view is refused, never doubled. What a stale
        view leaves (a fill not yet seen) the balances read back after the answer find (``Tiers._verify``)."""
        venue = self.link.require()
        self.catch_up()  # what an earlier pass left: applied before this one reads the tracker
        # The sells' and cancels' own answers say what they did; the stream's reports of the same (parsed by ccxt,
        # applied again as news) wait for the answer instead of sharing the loop with it (decision BEN-12).
        self._hold(venue)
        out = Outcome()
        only = set(symbols) if symbols else None
        targets = tuple(symbols or self.symbols)
        plan, self.plan = self.plan, None
        if plan is not None and (plan.symbols != symbols or self._rolled_back(plan)):
            self.execution.not_sent(plan.records(), "its record may not be on disk; recorded again")
            plan = None
        plan = plan or self.plan_close(actor, symbols)
        held = plan.held
        committed = plan.committed_at is not None and self.execution.commits()[0] > plan.committed_at[0]
        try:
            return await self._close_fast_pass(actor, symbols, only, targets, plan, held, committed, out, venue)
        finally:
            # Whatever the pass did not send (it found the venue not as the engine thought) never leaves.
            self.execution.not_sent(plan.recorded_after, "not needed: the full close-all pass sells instead")

    async def _close_fast_pass(
        self,
        actor: str,
        symbols: tuple[str, ...] | None,
        only: set[str] | None,
        targets: tuple[str, ...],
        plan: ClosePlan,
        held: dict[str, tuple[Decimal, Decimal]],
        committed: bool,
        out: Outcome,
        venue: Venue,
    ) -> Outcome:
        cancels = plan.cancels
        own_sells = frozenset(o.client_id for o in plan.records() if isinstance(o, Order))

        async def cancel(symbol: str) -> list[OrderReport]:
            await self._answered_first(symbol, own_sells)
            try:
                return await venue.cancel_all_orders(symbol, urgent=True)
            except vx.OrderNotFound:
                return []  # already gone (-2011)

        async def cancel_each() -> list[list[OrderReport] | BaseException]:
            return await asyncio.gather(*(cancel(s) for s in cancels), return_exceptions=True)

        async def read_balances() -> tuple[Balance, ...] | None:
            return await venue.fetch_balances(urgent=True) if cancels else None

        self.mark("first_delete")
        self.mark("sells_leaving")
        selling: asyncio.Future[list[CommandResult | BaseException]] | None = None
        replacing: asyncio.Future[list[CommandResult | BaseException]] | None = None
        if plan.sells:
            # Sent from a task of their own, and first: one turn of the loop puts their requests ahead of the rest.
            selling = asyncio.ensure_future(self.execution.sell_now(plan.sells, actor, plan.recorded, committed))
        if plan.replaces:
            stops = [stop for _, _, stop in plan.replaces]
            replacing = asyncio.ensure_future(
                self.execution.replace_now(list(zip(plan.recorded_replace, stops, strict=True)), committed)
            )
        if selling is not None or replacing is not None:
            # aiohttp writes a request from a task of its own, a turn after the request is built: the sells are
            # built on the next turn and written on the one after, ahead of the listing (built and sent after them).
            for _ in range(SELLS_AHEAD_TURNS):
                await asyncio.sleep(0)
            self.mark("sells_written")  # the benchmark's profile: the sells written, the listing not yet built
        others = asyncio.gather(
            cancel_each(),
            caught(read_balances()),
            caught(venue.fetch_open_orders(symbols[0] if symbols and len(symbols) == 1 else None, urgent=True)),
        )
        sold_now: list[CommandResult | BaseException] | BaseException = []
        if selling is not None:
            sold_now = await caught(selling)
        replaced: list[CommandResult | BaseException] | BaseException = []
        if replacing is not None:
            replaced = await caught(replacing)
        self.mark("sells_answered")
        cancelled, read, listed = await others
        answered: set[str] = set()
        for symbol, result in zip(cancels, cancelled):
            if isinstance(result, BaseException):
                out.failures[symbol] = f"cancel: {type(result).__name__}: {result}"[:200]
                continue
            out.canceled += len(result)
            answered |= {r.client_id for r in result}
            self.execution.note_stop_cancels(r.client_id for r in result)
            self.execution.apply_reports(result, "rest")
        self.mark("cancels_answered")
        if isinstance(sold_now, BaseException):
            out.failures["sells"] = f"sell: {type(sold_now).__name__}: {sold_now}"[:200]
            sold_now = []
        if isinstance(replaced, BaseException):
            out.failures["sells"] = f"sell: {type(replaced).__name__}: {replaced}"[:200]
            replaced = []
        ours = answered | self._judge_sells(plan.sells, sold_now, held, out)
        replace_sells = [(symbol, amount) for symbol, amount, _ in plan.replaces]
        ours |= self._judge_sells(replace_sells, replaced, held, out)
        for (_, _, stop), replace in zip(plan.replaces, replaced, strict=False):
            if isinstance(replace, CommandResult) and replace.ok:
                ours.add(stop)
                out.canceled += 1
        if isinstance(listed, BaseException):
            out.failures["listing"] = f"listing open orders: {type(listed).__name__}: {listed}"[:200]
            out.still_open = None
            return out
        unknown = [r for r in listed if (only is None or r.symbol in only) and r.client_id not in ours]
        out.still_open = len(unknown)
        self.mark("listing_confirmed")
        if unknown or out.failures:
            return out  # not as the engine thought: the full pass follows
        if cancels:
            if not isinstance(read, tuple):
                out.failures["balances"] = f"balances: {type(read).__name__}: {read}"[:200]
                return out
            venue_held = {b.asset: b.total for b in read}
            after, recorded = plan.after, plan.recorded_after
            bases = {base_of(s): s for s in reversed(cancels) if base_of(s) in held}  # the first symbol of each
            if any(venue_held.get(base, Decimal(0)) != held[base][1] for base in bases):
                # The venue holds other amounts than the engine thought: sized again from the venue's answer.
                self.execution.not_sent(recorded, "sized again from the venue's balances")
                after, committed = [], False
                for base, symbol in bases.items():
                    total = venue_held.get(base, Decimal(0))
                    held[base_of(symbol)] = (total, total)
                    amount, _ = self._sellable(symbol, (total, total))
                    if amount > 0:
                        after.append((symbol, amount))
                recorded = self.execution.record_sells(after, actor) if after else []
            plan.recorded_after = []  # sent now (or refused): not the finally's to release
            if after:
                results = await self.execution.sell_now(after, actor, recorded, committed)
                self._judge_sells(after, results, held, out)
                self.mark("sells_answered_after_cancels")
        await self._settle([], only, out)
        self.judge_left(targets, held, out)
        return out

    def _judge_sells(
        self,
        sells: list[tuple[str, Decimal]],
        results: list[CommandResult | BaseException],
        held: dict[str, tuple[Decimal, Decimal]],
        out: Outcome,
    ) -> set[str]:
        """Each sell's answer into ``out`` (closed, or failed) and ``held`` (less what it filled); the sells' client
        ids."""
        ids: set[str] = set()
        for (symbol, _), result in zip(sells, results):
            if isinstance(result, BaseException):
                out.failures[symbol] = f"sell: {type(result).__name__}: {result}"[:200]
                continue
            if not result.ok:
                out.failures[symbol] = f"sell: {result.message}"[:200]
                continue
            client_id = str(result.details.get("client_id", ""))
            ids.add(client_id)
            order = self.tracker.get(client_id)
            sold = order.filled if order is not None else Decimal(0)
            free, total = held[base_of(symbol)]
            held[base_of(symbol)] = (free - sold, total - sold)
            out.closed.append(symbol)
        return ids

    def judge_left(self, targets: tuple[str, ...], held: dict[str, tuple[Decimal, Decimal]], out: Outcome) -> None:
        """Sort what each base still holds into ``left`` (sellable, or locked in an order) and ``dust``."""
        for symbol in targets:
            base = base_of(symbol)
            free, total = held[base]
            if total <= 0:
                continue
            amount, _ = self._sellable(symbol, (free, total))
            if amount > 0 or total > free:
                out.left[base] = total  # sellable, or still locked in an order
            else:
                out.dust[base] = total

    def _held(self, base: str) -> tuple[Decimal, Decimal]:
        held = self.portfolio.balances.get(base)
        return (held.free, held.total) if held else (Decimal(0), Decimal(0))

    async def _flatten(self, actor: str, targets: tuple[str, ...], out: Outcome) -> Outcome:
        """Perps: every position closed by a reduce-only market order against it, then the venue's positions read
        again: anything not flat is left (by symbol), whatever its size."""
        venue = self.link.require()
        closes = [
            (s, "sell" if held > 0 else "buy", venue.amount_to_precision(s, abs(held)))
            for s in targets
            if (held := self.portfolio.held_amount(s)) != 0
        ]
        results = await self.execution.flatten_now(closes, actor)
        for (symbol, _, _), result in zip(closes, results):
            if isinstance(result, BaseException):
                out.failures[symbol] = f"close: {type(result).__name__}: {result}"[:200]
            elif not result.ok:
                out.failures[symbol] = f"close: {result.message}"[:200]
            else:
                out.closed.append(symbol)
        try:
            await self.execution.refresh_positions(urgent=True)
        except vx.BaseError as exc:
            out.failures["positions"] = f"verifying positions: {type(exc).__name__}: {exc}"[:200]
            return out
        for symbol in targets:
            if (held := self.portfolio.held_amount(symbol)) != 0:
                out.left[symbol] = held
        return out

    # ------------------------------------------------------------ steps

    async def _answered_first(self, symbol: str, ours: frozenset[str] = frozenset()) -> None:
        """Before ``symbol``'s cancel: the answers of its orders still on their way to the venue (``ours``: the
        pass's own sells, recorded and not sent yet, aside), ``IN_FLIGHT_WAIT_S`` at most (decision SAF-39). One that
        landed after the cancel would rest where nothing cancels it (an entry's protective stop, placed right after
        its fill, locks what a close sells) and the tier would answer "retrying"; once answered it rests, and the
        cancel takes it. The other symbols do not wait. One still unanswered then is left as before: found resting,
        it fails the pass, retried with a CRIT."""
        waiting = {
            client_id
            for client_id in self.execution.in_flight - ours
            if (order := self.tracker.get(client_id)) is not None and order.symbol == symbol
        }
        if not waiting:
            return
        left = await self.execution.until_answered(waiting, IN_FLIGHT_WAIT_S)
        if left:
            log.warning("%s: cancelled with %d order(s) still on their way to the venue: %s", symbol, len(left), left)

    async def _cancel_symbol(self, symbol: str, keep: set[str]) -> list[OrderReport]:
        await self._answered_first(symbol)
        venue = self.link.require()
        if any(o.symbol == symbol and o.client_id in keep for o in self.tracker.open_orders()):
            # A protective stop to keep: every other order of the symbol, one by one (in parallel).
            listed = await venue.fetch_open_orders(symbol, urgent=True)
            answers = await asyncio.gather(
                *(venue.cancel_order(r.client_id, symbol, urgent=True) for r in listed if r.client_id not in keep),
                return_exceptions=True,
            )
            for answer in answers:
                if isinstance(answer, BaseException) and not isinstance(answer, vx.OrderNotFound):
                    raise answer
            return [a for a in answers if isinstance(a, OrderReport)]
        try:
            return await venue.cancel_all_orders(symbol, urgent=True)
        except vx.OrderNotFound:
            return []  # Binance answers -2011 when there is nothing to cancel

    def _sellable(self, symbol: str, held: tuple[Decimal, Decimal] | None = None) -> tuple[Decimal, Decimal]:
        """(what can be sold now within the venue's filters, all that is held) of the symbol's base; ``held``:
        (free, total) to judge instead of the balances the engine holds now."""
        venue = self.link.require()
        free, total = held if held is not None else self._held(base_of(symbol))
        amount = venue.amount_to_precision(symbol, free) if free > 0 else Decimal(0)
        price = self.portfolio.last.get(symbol)
        if amount < venue.min_amount(symbol) or amount <= 0:
            return Decimal(0), total
        if price is not None and amount * price < venue.min_cost(symbol):
            return Decimal(0), total
        return amount, total

    async def _settle(self, remaining: list[OrderReport] | None, only: set[str] | None, out: Outcome) -> None:
        """Tracked orders the venue no longer lists open: ask each by client id (filled or canceled)."""
        if remaining is None:
            return
        venue = self.link.require()
        # The venue's own answers: listed open, or cancelled by this pass (their reports applied at ``catch_up``).
        still = {r.client_id for r in remaining} | {r.client_id for r in self._deferred}
        stale = [
            o
            for o in self.tracker.open_orders()
            if o.client_id not in still
            and o.client_id not in self.execution.in_flight
            and (only is None or o.symbol in only)
        ]
        results = await asyncio.gather(
            *(venue.fetch_order(o.client_id, o.symbol, urgent=True) for o in stale), return_exceptions=True
        )
        with self.execution.batch():
            for order, result in zip(stale, results):
                if isinstance(result, vx.OrderNotFound):
                    self.execution.lost(order, "kill-switch")  # never reached the venue: nothing there to cancel
                elif isinstance(result, BaseException):
                    out.failures[order.symbol] = f"order {order.client_id}: {type(result).__name__}: {result}"[:200]
                else:
                    self.execution.apply_report(result, "rest")


async def caught(aw: Awaitable[T]) -> T | BaseException:
    """``aw``'s result, or what it raised (one of several awaited together, each judged on its own)."""
    try:
        return await aw
    except Exception as exc:
        return exc


def trip_code(actor: str) -> str:
    """The monitor's code in ``monitor:<code>`` (empty for anyone else)."""
    return actor.split(":", 1)[1] if actor.startswith("monitor:") else ""


class Tiers:
    """Runs a kill-switch command: halts first (except close SYMBOL), does the venue pass, reports, and keeps
    retrying what the venue did not let it finish until done or an operator resumes."""

    def __init__(
        self,
        kill: KillSwitch,
        state: TradingStateMachine,
        ports: Ports,
        prepare: Prepare | None = None,
    ) -> None:
        self.kill = kill
        # Run before every pass where no sync keeps the venue ready (the no-engine emergency path loads the markets
        # and prices here); with it, a pass never waits for a connection someone else makes.
        self.prepare = prepare
        self.last_outcome: Outcome | None = None  # what the latest pass (first or retry) did
        self.passes = 0  # passes made, the first included
        self.state = state
        self.link = kill.link
        self.symbols = kill.symbols
        self.alert = ports.alert
        self.spawn = ports.spawn
        self.retries: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self._resumes = 0
        # The engine answers a tier first and reports it after (decision BEN-07): its alert (and, for a close, the
        # balances read back) are kept here by command until ``take_report``. Off (the no-engine emergency path,
        # which has no one to answer first): reported before the answer, the close read back in the pass.
        self.answer_first: tuple[type, ...] = ()  # the tiers answered first (``Engine``: cancel-all, close-all)
        self._reports: dict[int, Callable[[], None]] = {}

    def take_report(self, c: Command) -> Callable[[], None] | None:
        """What to do once ``c``'s answer is out: its alert, and a close's read-back (None: nothing)."""
        return self._reports.pop(id(c), None)

    def resumed(self) -> None:
        """An operator resumed: every retry stands down, and a pass under way will not start one; protective
        stops a cancel-all took with it are placed again."""
        self._resumes += 1
        self.kill.venue_stops.suspend("")
        self._stop(None, "trading resumed")

    async def run(self, c: CancelAll | CloseAll | ClosePosition) -> CommandResult:
        """Cancel-all and close-all halt first (tier 1), then act at the venue; close SYMBOL acts on one.

        Cancel-all includes the halt: without it a strategy would place a fresh order seconds after the book
        was cleared. Whatever could not be done is reported per symbol and retried until done or resumed.

        The halt is latched before anything acts: committed to the store and in the OS (a process killed after
        finds it); a tier answered first syncs it to the disk while its requests are out, and answers only once
        both the venue and the disk have (``Execution.latch``, decision BEN-13).
        """
        result = await self._run(c)
        await self.kill.execution.synced()
        self.kill.mark("halt_synced")
        self.kill.mark("answered")
        return result

    async def _run(self, c: CancelAll | CloseAll | ClosePosition) -> CommandResult:
        self.kill.catch_up()  # a cancel-all just answered: its reports first (nothing awaits before the halt)
        self.kill.marks.clear()
        prefix = ""
        if isinstance(c, ClosePosition):
            if c.symbol not in self.symbols:
                return CommandResult(
                    False, f"{c.symbol or 'no symbol'} is not a configured symbol ({', '.join(self.symbols)})"
                )
            prefix = f"{c.symbol}: "
        else:
            if (
                isinstance(c, CloseAll)
                and isinstance(c, self.answer_first)
                and self.prepare is None
                and self.state.state != TradingState.HALTED
                and not self.kill.portfolio.usdm
                and self.link.venue is not None
                and self.link.venue.markets_loaded
            ):
                # Its sells recorded now, so that the halt's commit carries them (one fsync fewer before they leave).
                try:
                    self.kill.plan = self.kill.plan_close(c.actor, None, before_halt=True)
                except Exception as exc:  # nothing stands before the halt: the pass plans again (or reports why)
                    log.warning("close-all's sells not recorded before the halt: %s", exc)
                    self.kill.plan = None
            self.state.tripped()
            with self.kill.execution.latch():  # in the OS now, on the disk by ``run``'s answer
                self.state.move(
                    TradingState.HALTED, c.actor, c.reason or f"{c.name} requested", trip_code(c.actor), c.values
                )
            self.kill.mark("halt_committed")
            prefix = f"{self.state.state.value}; "
        resumes = self._resumes
        if self.prepare is None and (self.link.venue is None or not self.link.venue.markets_loaded):
            self._retry(c)
            return CommandResult(
                False, f"{prefix}the venue is not connected: nothing canceled or sold yet; retrying until it is"
            )
        first = isinstance(c, self.answer_first)
        try:
            outcome = await self._pass(c, fast=first)
        except (EngineError, vx.BaseError) as exc:  # e.g. the venue swapped by a reconnect mid-pass
            outcome = Outcome(still_open=None, failures={"venue": f"{type(exc).__name__}: {exc}"[:200]})
            self.last_outcome = outcome
        if self.kill.plan is not None:  # planned before the halt, never reached its pass
            plan = self.kill.plan
            self.kill.execution.not_sent(plan.records(), "the close-all pass did not reach them")
            self.kill.plan = None
        self.kill.mark("venue_done")
        if not isinstance(c, ClosePosition):
            prefix = f"{self.state.state.value}; "  # as it is now (an operator may have resumed meanwhile)
        closing = not isinstance(c, CancelAll)
        if not isinstance(c, CancelAll) and outcome.done and not first:
            await self._read_back(c, outcome)  # nothing runs after this answer: verified in the pass
        message = prefix + outcome.sentence(closing=closing)
        automatic = not is_operator(c.actor)
        if outcome.done:
            code = DONE_CODES[type(c)]
            alert = partial(
                self.alert,
                Severity.CRIT if automatic else Severity.WARN,
                code,
                f"{message} (by {c.actor})",
                values=outcome.details(),
            )
        elif self._resumes != resumes:
            alert = partial(
                self.alert,
                Severity.WARN,
                "KILL_SWITCH_INCOMPLETE",
                f"{c.name} by {c.actor}: {message}; not retried: an operator resumed trading meanwhile",
                values=outcome.details(),
            )
        else:
            alert = partial(
                self.alert,
                Severity.CRIT,
                "KILL_SWITCH_INCOMPLETE",
                f"{c.name} by {c.actor}: {message}; retrying",
                values=outcome.details(),
            )
            self._retry(c)  # acting, not reporting: at once
        if not first:
            alert()
        else:
            close = c if not isinstance(c, CancelAll) and outcome.done else None

            def report() -> None:
                self.kill.catch_up()  # the cancels' reports and the user stream, held for the answer (BEN-09)
                alert()
                if close is not None:  # the balances read back after the answer; anything sellable left: again
                    self.spawn(f"kill-switch read-back {close.name}", self._verify(close))

            self._reports[id(c)] = report
        return CommandResult(outcome.done, message, outcome.details())

    def _targets(self, c: CloseAll | ClosePosition) -> tuple[str, ...]:
        return (c.symbol,) if isinstance(c, ClosePosition) else tuple(self.symbols)

    async def _read_back(self, c: CloseAll | ClosePosition, outcome: Outcome) -> None:
        """Read the venue's balances and judge what is left from them (``outcome`` updated). Perps: nothing here,
        the pass read the venue's positions back itself (``KillSwitch._flatten``)."""
        if self.kill.portfolio.usdm:
            return
        try:
            await self.kill.execution.refresh_balances(urgent=True)
        except vx.BaseError as exc:
            outcome.failures["balances"] = f"verifying balances: {type(exc).__name__}: {exc}"[:200]
            return
        targets = self._targets(c)
        outcome.left.clear()
        outcome.dust.clear()
        self.kill.judge_left(targets, {base_of(s): self.kill._held(base_of(s)) for s in targets}, outcome)

    async def _verify(self, c: CloseAll | ClosePosition) -> None:
        """After a close's answer: the balances read back; a failed read or anything sellable (or locked) left is
        a CRIT alert and the close is retried until done (the answer judged from the venue's own answers)."""
        check = Outcome()
        await self._read_back(c, check)
        if not check.failures and not check.left:
            return
        self.alert(
            Severity.CRIT,
            "KILL_SWITCH_INCOMPLETE",
            f"{c.name} by {c.actor}: read back after its answer: {check.sentence(closing=True)}; retrying",
            values=check.details(),
        )
        self._retry(c)

    async def _pass(self, c: CancelAll | CloseAll | ClosePosition, fast: bool = False) -> Outcome:
        """One pass of ``c``; ``fast``: a tier answered first (a cancel-all's reports and user stream applied after
        the answer, decision BEN-09; a close's balances read back after it). A retry, or a close verified before its
        answer, reads the venue's balances before it sells."""
        self.passes += 1
        self.last_outcome = None
        if self.prepare is not None:
            await self.prepare(c)
        if isinstance(c, CloseAll):  # flattening: no stop is placed again for what it sells, until a resume
            self.kill.venue_stops.suspend("close-all, until an operator resumes")
        if isinstance(c, CancelAll):
            if c.include_stops:  # the operator wants them gone: none is placed again until an operator resumes
                self.kill.venue_stops.suspend("cancelled by cancel-all with its stops, until an operator resumes")
            outcome = await self.kill.cancel_all(keep_stops=not c.include_stops, defer=fast)
        else:
            symbols = (c.symbol,) if isinstance(c, ClosePosition) else None
            outcome = await self.kill.close_all(c.actor, symbols, fast=fast)
        self.last_outcome = outcome
        return outcome

    async def settle(self, within_s: float) -> None:
        """Wait for the retries under way to finish, for ``within_s`` at most, then stop what is left: the
        no-engine emergency path waits for its own retries, since nothing keeps running after it."""
        pending = [task for task in self.retries.values() if not task.done()]
        if pending and within_s > 0:
            await asyncio.wait(pending, timeout=within_s)
        self._stop(None, f"gave up after {within_s:g}s")

    def _retry(self, c: CancelAll | CloseAll | ClosePosition) -> None:
        """Keep trying ``c``. A retry of the same tier (and symbol) is replaced; close-all supersedes every other
        retry, since it does all they do; a weaker tier never replaces a stronger one."""
        key = (c.name, getattr(c, "symbol", ""))
        for done in [k for k, task in self.retries.items() if task.done()]:
            del self.retries[done]
        if any(k[0] == "close-all" for k in self.retries) and key[0] != "close-all":
            return  # a close-all still retrying does this too
        for other in list(self.retries):
            if other == key or key[0] == "close-all":
                self._stop(other, f"superseded by {c.name}")
        self.retries[key] = self.spawn(f"kill-switch-retry {c.name}", self._keep_trying(c, key))

    def retrying(self) -> list[str]:
        """The kill-switch tiers still being retried."""
        return sorted(k[0] for k, task in self.retries.items() if not task.done())

    def _stop(self, key: tuple[str, str] | None, why: str) -> None:
        """Stop one retry (``key``) or every one (None)."""
        for k in [key] if key is not None else list(self.retries):
            task = self.retries.pop(k, None)
            if task is not None and not task.done() and task is not asyncio.current_task():
                log.info("kill-switch retry %s stopped: %s", k[0], why)
                task.cancel()

    async def _keep_trying(self, c: CancelAll | CloseAll | ClosePosition, key: tuple[str, str]) -> None:
        """Retry what a kill-switch tier could not do until it is done (or an operator resumes)."""
        attempt = 0
        resumes = self._resumes
        while True:
            await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
            attempt += 1
            if self._resumes != resumes:
                self.retries.pop(key, None)
                return  # an operator resumed: the kill switch stands down
            try:
                outcome = await self._pass(c)
            except (EngineError, vx.BaseError) as exc:
                log.warning("kill-switch retry %d of %s: %s", attempt, c.name, exc)
                self.last_outcome = Outcome(still_open=None, failures={"venue": f"{type(exc).__name__}: {exc}"[:200]})
                continue
            except Exception as exc:  # a bug must not end the retrying: report it and keep trying
                log.error("kill-switch retry %d of %s failed", attempt, c.name, exc_info=exc)
                continue
            if outcome.done and not isinstance(c, CancelAll):
                await self._read_back(c, outcome)  # a retry answers no one: verified before it is called done
            if outcome.done:
                self.alert(
                    Severity.WARN,
                    "KILL_SWITCH_DONE",
                    f"{c.name} by {c.actor} completed on retry {attempt}: "
                    f"{outcome.sentence(closing=not isinstance(c, CancelAll))}",
                    values=outcome.details(),
                )
                self.retries.pop(key, None)
                return
            log.warning(
                "kill-switch retry %d of %s incomplete: %s",
                attempt,
                c.name,
                outcome.sentence(closing=not isinstance(c, CancelAll)),
            )
