"""The order path: checks, persist, send, and the venue's answers (reports, fills, balances) into state.

Every order, from the operator, a strategy, a stop-loss or the kill switch, is placed here after ``execute``
has checked what the trading state permits: request sanity, account limits, venue filters, the order rate
limit, then the client id is stored, then the request leaves. After an uncertain failure (timeout, connection
lost) the venue is asked by client id before anything is decided, so an order is never placed twice.
The kill switch's orders (``urgent``) skip the order-rate limit and the circuit breaker, never the filters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from engine.kernel.commands import CommandResult
from engine.kernel.config import RiskConfig
from engine.kernel.errors import EngineError
from engine.kernel.events import (
    Balance,
    BalancesUpdated,
    Fill,
    FillReceived,
    Order,
    OrderRefused,
    OrderStatus,
    Persisted,
    Position,
    PositionsUpdated,
    RoundTripClosed,
    Severity,
    StopsChanged,
)
from engine.kernel.ports import Durability, Ports, VenueLink
from engine.trading.books import Books
from engine.trading.orders import (
    STOP_ID_PREFIX,
    STOP_ORDER_TYPE,
    TAKE_PROFIT_ID_PREFIX,
    TAKE_PROFIT_ORDER_TYPE,
    new_client_id,
)
from engine.trading.portfolio import base_of
from engine.trading.risk import (
    Exposure,
    OrderRateLimit,
    filter_refusal,
    leverage_refusal,
    limit_refusal,
    pre_trade_refusal,
    take_profit_refusal,
)
from engine.venue import errors as vx
from engine.venue.adapter import OrderReport, not_sent_errors, refused_errors

log = logging.getLogger(__name__)

# After an uncertain send the venue is asked by client id; "not found" is asked again after these pauses before
# the order counts as never placed (a request can still be in the venue's queue).
NOT_FOUND_RECHECK_S = (0.5, 1.0, 0.0)


class Execution:
    """Places and cancels orders; applies what the venue reports; owns the order rate limit and the stops."""

    def __init__(
        self,
        risk: RiskConfig,
        mode: str,
        books: Books,
        link: VenueLink,
        ports: Ports,
        permission: Callable[[str], str | None],
        durability: Durability,
    ) -> None:
        self.risk = risk
        self.mode = mode
        self.symbols = books.symbols
        self.link = link
        self.tracker = books.tracker
        self.portfolio = books.portfolio
        self.stats = books.stats
        self.drawdown = books.drawdown
        self.publish = ports.publish
        self.alert = ports.alert
        # side -> why the trading state does not permit it now (asked again right before an order leaves: the
        # state may have moved while the order waited for a venue's Retry-After)
        self.permission = permission
        # What one answer or one stream read brings is stored in one transaction (the store's group commit).
        self.batch = durability.batch
        self.joining_batch = durability.joining  # a stream read's: joins a command's batch when one is open
        # Commits what was written: called between recording an order and sending it (a client id is on disk
        # before the request carrying it leaves, so a retry or a restart never places an order twice).
        self.durable = durability.commit
        self.commits = durability.commits
        # The kill switch's halt: in the OS before its requests leave, on the disk before its answer (BEN-13).
        self.latch = durability.latch
        self.synced = durability.synced
        self.rate = OrderRateLimit(risk.max_orders_per_minute)
        self.stops = books.stops  # symbol -> stop price of the position held (persisted)
        self.take_profits = books.take_profits  # symbol -> take-profit of the position held, when given (persisted)
        # Client ids whose create request has not been answered yet: reconciliation must not judge them.
        self.in_flight: set[str] = set()
        # Set when an order leaves ``in_flight`` while someone waits for one to (``until_answered``); then dropped.
        self._answer: asyncio.Event | None = None
        # Client id -> amount of its fills seen: an order reported more filled than this has fills still to fetch.
        self.filled_seen: dict[str, Decimal] = {}
        # Protective stops this engine cancelled itself (an amend, an exit, the kill switch): their end is no news.
        # Kept across a restart (the latest few), so a crash in the middle of an amend is not called a stop gone.
        self.stop_cancels: dict[str, None] = {}
        # Symbol -> sells of it under way (an exit, a strategy's sell): no protective stop is placed meanwhile, or
        # it would lock what they sell.
        self.selling: dict[str, int] = {}
        # Perps: symbol -> the leverage the venue confirmed for it (set at every connect, ``VenueSync``); an entry
        # in a symbol missing here is refused. And the client ids of orders sent with the venue's reduceOnly flag.
        self.leverage: dict[str, Decimal] = {}
        self.reduce_only: set[str] = set()
        self.positions_read = False  # perps: whether the venue's positions were read since the start

    def _answered(self, client_id: str) -> None:
        """``client_id``'s create request answered (or never to leave): out of ``in_flight``, its waiters woken (they
        run after the answer's report is applied: nothing awaits between the two)."""
        self.in_flight.discard(client_id)
        if self._answer is not None:
            self._answer.set()
            self._answer = None

    async def until_answered(self, client_ids: set[str], within_s: float) -> set[str]:
        """Wait until none of ``client_ids`` is on its way to the venue any more, ``within_s`` at most; those still on
        their way then (empty: all answered)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while waiting := client_ids & self.in_flight:
            left = deadline - loop.time()
            if left <= 0:
                return waiting
            if self._answer is None:
                self._answer = asyncio.Event()
            try:
                await asyncio.wait_for(self._answer.wait(), left)
            except TimeoutError:
                pass
        return set()

    def reduces(self, symbol: str, side: str, amount: Decimal) -> bool:
        """Whether an order only shrinks the position: spot, any sell; perps, the side against the position and no
        more than it (more would flip it: an entry)."""
        if not self.portfolio.usdm:
            return side == "sell"
        held = self.portfolio.held_amount(symbol)
        return (held > 0 and side == "sell" and amount <= held) or (held < 0 and side == "buy" and amount <= -held)

    # ------------------------------------------------------------ placing

    def exposure(self, symbol: str) -> Exposure:
        """The account as the limits see it: held positions plus what resting buys would add."""
        p = self.portfolio
        venue = self.link.venue
        min_cost = venue.min_cost(symbol) if venue else Decimal(0)
        pending: dict[str, Decimal] = {}
        for o in self.tracker.open_orders():
            # Spot: resting buys add to a position. Perps: any resting order that would grow it (a sell opens or
            # grows a short).
            # A perps protective stop closes the position, whatever its size (closePosition): it never grows one.
            reduces = o.is_protective or self.reduces(o.symbol, o.side, o.remaining)
            grows = o.side == "buy" if not p.usdm else not reduces
            if grows:
                price = o.price if o.price is not None else p.last.get(o.symbol, Decimal(0))
                pending[o.symbol] = pending.get(o.symbol, Decimal(0)) + o.remaining * price
        held = [s for s in self.symbols if p.position_value(s) > min_cost or pending.get(s, 0) > 0]
        return Exposure(
            equity=p.equity(),
            position_value=p.position_value(symbol) + pending.get(symbol, Decimal(0)),
            open_positions=len(held),
            holds_symbol=symbol in held,
            drawdown_pct=self.drawdown.pct,
            daily_loss_pct=self.stats.current().daily_loss_pct(p.equity()),
        )

    def _refusal(
        self,
        symbol: str,
        side: str,
        amount: Decimal,
        price: Decimal | None,
        stop_loss: Decimal | None,
        urgent: bool,
        take_profit: Decimal | None = None,
    ) -> tuple[str | None, Decimal, Decimal | None]:
        refusal = pre_trade_refusal(self.link.connected or urgent, self.symbols, symbol, side, amount, price, stop_loss)
        if refusal is None:
            ref = price if price is not None else self.portfolio.last.get(symbol)
            refusal = take_profit_refusal(side, stop_loss, take_profit, ref)
        venue = self.link.venue
        if refusal is not None:
            return refusal, amount, price
        if venue is None or not venue.markets_loaded:
            return "venue not connected", amount, price
        amount = venue.amount_to_precision(symbol, amount)
        if price is not None:
            price = venue.price_to_precision(symbol, price)
        ref = price if price is not None else self.portfolio.last.get(symbol)
        refusal = filter_refusal(venue.min_amount(symbol), venue.min_cost(symbol), symbol, amount, ref)
        if refusal is None and not urgent:
            entry = not self.reduces(symbol, side, amount) if self.portfolio.usdm else None
            refusal = (
                limit_refusal(self.risk, self.exposure(symbol), side, amount * (ref or 0), stop_loss, ref, entry)
                or (self._leverage_refusal(symbol, amount * (ref or 0)) if entry else None)
                or self.rate.refusal()
                or venue.breaker.refusal()
            )
        return refusal, amount, price

    def _leverage_refusal(self, symbol: str, order_value: Decimal) -> str | None:
        """Perps: the leverage checked on every entry (``risk.leverage_refusal``)."""
        p = self.portfolio
        notional = sum((p.position_value(s) for s in self.symbols), Decimal(0)) + order_value
        return leverage_refusal(self.risk.max_leverage, symbol, self.leverage.get(symbol), notional, p.equity())

    def check(
        self, symbol: str, side: str, amount: Decimal, price: Decimal | None, stop_loss: Decimal | None
    ) -> str | None:
        """Why an order would be refused by the checks, without storing or sending anything (the go/no-go
        checklist's risk self-test); None when it would go."""
        return self._refusal(symbol, side, amount, price, stop_loss, urgent=False)[0]

    async def place(
        self,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal,
        price: Decimal | None,
        actor: str = "operator",
        stop_loss: Decimal | None = None,
        urgent: bool = False,
        take_profit: Decimal | None = None,
    ) -> CommandResult:
        """Check, persist, then send one order; the client id is on disk before the request leaves. An entry's
        ``stop_loss`` (and ``take_profit``) become the position's protection at the venue once it fills.

        A venue's Retry-After is waited out first, and only then is everything checked (trading state, limits,
        exposure): nothing awaits between the checks and the order's record, so two orders that waited together
        cannot both pass the same exposure."""
        if side == "sell" and not urgent and not self.portfolio.usdm:
            with self.sells_under_way(symbol):
                await self._free_from_stops(symbol, amount, actor)
                return await self._place(symbol, side, type_, amount, price, actor, stop_loss, urgent, take_profit)
        return await self._place(symbol, side, type_, amount, price, actor, stop_loss, urgent, take_profit)

    @contextmanager
    def sells_under_way(self, symbol: str) -> Iterator[None]:
        """While a sell of ``symbol`` is under way, no protective stop is placed (``VenueStops.gap``)."""
        self.selling[symbol] = self.selling.get(symbol, 0) + 1
        try:
            yield
        finally:
            self.selling[symbol] -= 1
            if not self.selling[symbol]:
                del self.selling[symbol]

    async def _place(
        self,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal,
        price: Decimal | None,
        actor: str,
        stop_loss: Decimal | None,
        urgent: bool,
        take_profit: Decimal | None = None,
    ) -> CommandResult:
        if not urgent and self.link.venue is not None:
            await self.link.venue.health.wait_if_paused()
            late = self.permission("sell" if self.reduces(symbol, side, amount) else "buy")  # perps: by position
            if late:
                self.publish(OrderRefused(actor, symbol, side, amount, price, late))
                return CommandResult(False, late)
        recorded = self._record(symbol, side, type_, amount, price, actor, stop_loss, urgent, take_profit)
        if isinstance(recorded, CommandResult):
            return recorded
        refused = self._commit([recorded])  # the client id is on disk before the request carrying it leaves
        if refused is not None:
            return refused
        return await self._send(recorded, stop_loss, urgent, take_profit=take_profit)

    async def place_stop(
        self, symbol: str, amount: Decimal, stop: Decimal, limit: Decimal, actor: str, side: str = "sell"
    ) -> CommandResult:
        """A protective stop-limit sell of a held position (``engine.trading.protect``): the venue's filters apply,
        not the account limits or the order rate (it only ever sells what is held, like the kill switch's
        sells); its client id is on disk before it leaves, as for every order. With a take-profit: ``place_oco``.
        Perps: a stop-market closing the whole position (``side`` against it; ``limit`` is the trigger)."""
        recorded = self._record(symbol, side, STOP_ORDER_TYPE, amount, limit, actor, None, urgent=True)
        if isinstance(recorded, CommandResult):
            return recorded
        refused = self._commit([recorded])
        if refused is not None:
            return refused
        return await self._send(recorded, None, False, stop_price=stop)

    async def place_oco(
        self, symbol: str, amount: Decimal, stop: Decimal, limit: Decimal, take_profit: Decimal, actor: str
    ) -> CommandResult:
        """A position's stop-limit and take-profit as one OCO sell at the venue (``engine.trading.protect``): when
        one leg fills the venue expires the other. Both legs are recorded (client ids ``cs-X`` and ``ct-X``, the
        list ``co-X``) and committed before the request leaves, checked like ``place_stop``."""
        tail = new_client_id("")
        stop_leg = self._record(
            symbol, "sell", STOP_ORDER_TYPE, amount, limit, actor, None, True, client_id=STOP_ID_PREFIX + tail
        )
        if isinstance(stop_leg, CommandResult):
            return stop_leg
        profit_leg = self._record(
            symbol,
            "sell",
            TAKE_PROFIT_ORDER_TYPE,
            amount,
            take_profit,
            actor,
            None,
            True,
            client_id=TAKE_PROFIT_ID_PREFIX + tail,
        )
        if isinstance(profit_leg, CommandResult):
            self._answered(stop_leg.client_id)
            self.tracker.apply(
                stop_leg.client_id,
                OrderStatus.REJECTED,
                source="engine",
                detail=f"not sent: its OCO's take-profit was refused: {profit_leg.message}"[:300],
            )
            return profit_leg
        legs = [stop_leg, profit_leg]
        refused = self._commit(legs)
        if refused is not None:
            return refused
        try:
            try:
                reports = await self.link.require().create_oco(
                    stop_leg.oco_list_id,
                    stop_leg.client_id,
                    profit_leg.client_id,
                    symbol,
                    stop_leg.amount,
                    stop,
                    limit,
                    take_profit,
                )
            except not_sent_errors() as exc:
                for leg in legs:
                    self.tracker.apply(
                        leg.client_id, OrderStatus.REJECTED, source="rest", detail=f"not sent: {exc}"[:300]
                    )
                return CommandResult(False, f"not sent: {type(exc).__name__}: {exc}")
            except refused_errors() as exc:
                for leg in legs:
                    self.tracker.apply(leg.client_id, OrderStatus.REJECTED, source="rest", detail=str(exc)[:300])
                self.alert(Severity.WARN, "ORDER_REJECTED", f"OCO sell {stop_leg.amount} {symbol} rejected: {exc}")
                return CommandResult(False, f"rejected by venue: {exc}")
            except vx.BaseError as exc:
                # As for one order: the list may be at the venue; each leg is asked for by its client id.
                results = [await self._resolve_uncertain(leg, exc, False) for leg in legs]
                failed = next((r for r in results if not r.ok), None)
                return failed or CommandResult(True, results[0].message, {"client_id": stop_leg.client_id})
        finally:
            for leg in legs:
                self._answered(leg.client_id)
        self.apply_reports(reports, "rest")
        return CommandResult(
            True,
            f"OCO sell {stop_leg.amount} {symbol} placed",
            {"client_id": stop_leg.client_id, "take_profit_id": profit_leg.client_id, "list": stop_leg.oco_list_id},
        )

    async def _free_from_stops(self, symbol: str, amount: Decimal, actor: str) -> None:
        """A sell of part of a position whose protection locks it: the stop (or its OCO) is cancelled first (it is
        placed again for what remains once the sell is done), since the venue lends no amount to two sells at once."""
        stops = [o for o in self.tracker.open_orders(symbol) if o.is_protective]
        if not stops or self.portfolio.free(base_of(symbol)) >= amount:
            return
        for order in stops:
            await self.cancel(order.client_id, actor=actor)
        await self.refresh_balances_quietly()

    def record_sells(self, sells: list[tuple[str, Decimal]], actor: str) -> list[Order | CommandResult]:
        """The kill switch's market sells (``urgent``), each checked against the venue's filters and recorded (or
        why not); nothing committed or sent yet (``sell_now``)."""
        return [
            self._record(symbol, "sell", "market", amount, None, actor, None, urgent=True) for symbol, amount in sells
        ]

    async def sell_now(
        self,
        sells: list[tuple[str, Decimal]],
        actor: str,
        recorded: list[Order | CommandResult] | None = None,
        committed: bool = False,
    ) -> list[CommandResult | BaseException]:
        """The kill switch's market sells (``urgent``): each checked against the venue's filters and recorded, one
        commit for them all, then sent together (group commit: write the batch, commit, send the batch).
        ``recorded``: ``record_sells``'s (made in the command's task, so they join its transaction, when this runs
        in a task of its own); ``committed``: a commit made since they were recorded (the halt's) holds them."""
        if recorded is None:
            recorded = self.record_sells(sells, actor)
        refused = None if committed else self._commit([r for r in recorded if isinstance(r, Order)])
        if refused is not None:
            return [refused for _ in recorded]

        async def answer(result: CommandResult) -> CommandResult:
            return result

        async def send(order: Order) -> CommandResult:
            # Each sell runs in a task of its own: what its answer brings (the order's status, its fills) joins the
            # kill switch's transaction instead of three commits of its own on the one event loop (its client id
            # was committed above; the venue keeps the rest, read back by reconciliation after a crash: STO-11).
            with self.joining_batch():
                return await self._send(order, None, True)

        return await asyncio.gather(
            *(answer(r) if isinstance(r, CommandResult) else send(r) for r in recorded),
            return_exceptions=True,
        )

    async def replace_now(
        self, replaces: list[tuple[Order | CommandResult, str]], committed: bool = False
    ) -> list[CommandResult | BaseException]:
        """The kill switch's sells of what a protective stop locks, each sent with the stop's cancel in one request
        (``Venue.cancel_replace_sell``): ``(recorded sell, stop's client id)``, the sells recorded by
        ``record_sells`` and committed here unless ``committed``. A stop that cannot be cancelled places no sell
        (the venue's STOP_ON_FAILURE); a half that failed fails that sell, with the venue's words."""
        orders = [r for r, _ in replaces]
        refused = None if committed else self._commit([o for o in orders if isinstance(o, Order)])
        if refused is not None:
            return [refused for _ in orders]

        async def answer(result: CommandResult) -> CommandResult:
            return result

        async def send(order: Order, stop_id: str) -> CommandResult:
            with self.joining_batch():  # as ``sell_now``'s: joins the kill switch's transaction
                return await self._replace(order, stop_id)

        return await asyncio.gather(
            *(answer(o) if isinstance(o, CommandResult) else send(o, stop_id) for o, stop_id in replaces),
            return_exceptions=True,
        )

    async def _replace(self, order: Order, stop_id: str) -> CommandResult:
        self.note_stop_cancels([stop_id])
        try:
            try:
                venue = self.link.require()
                stop, sold, why = await venue.cancel_replace_sell(stop_id, order.symbol, order.client_id, order.amount)
            except not_sent_errors() as exc:
                self.not_sent([order], f"{type(exc).__name__}: {exc}")
                return CommandResult(False, f"not sent: {type(exc).__name__}: {exc}")
            except refused_errors() as exc:
                self.tracker.apply(order.client_id, OrderStatus.REJECTED, source="rest", detail=str(exc)[:300])
                return CommandResult(False, f"refused by venue: {exc}")
            except vx.BaseError as exc:  # the sell may be placed: ask by client id before deciding
                return await self._resolve_uncertain(order, exc, True)
        finally:
            self._answered(order.client_id)
        if stop is not None:
            self.apply_report(stop, "rest")
        if sold is None:
            self.tracker.apply(order.client_id, OrderStatus.REJECTED, source="rest", detail=why[:300])
            return CommandResult(False, f"cancel-replace of {stop_id}: {why}")
        self.apply_report(sold, "rest")
        return CommandResult(
            True,
            f"sell {order.amount} {order.symbol} {sold.status.value} (its stop {stop_id} cancelled with it)",
            {"client_id": order.client_id, "status": sold.status.value},
        )

    async def flatten_now(
        self, closes: list[tuple[str, str, Decimal]], actor: str
    ) -> list[CommandResult | BaseException]:
        """Perps: the kill switch's closes, ``(symbol, side, amount)`` each a reduce-only market order on the
        urgent lane (a long sold, a short bought back), recorded and committed together, then sent together."""
        recorded = [
            self._record(symbol, side, "market", amount, None, actor, None, urgent=True)
            for symbol, side, amount in closes
        ]
        refused = self._commit([r for r in recorded if isinstance(r, Order)])
        if refused is not None:
            return [refused for _ in recorded]

        async def answer(result: CommandResult) -> CommandResult:
            return result

        return await asyncio.gather(
            *(answer(r) if isinstance(r, CommandResult) else self._send(r, None, True) for r in recorded),
            return_exceptions=True,
        )

    def _commit(self, orders: list[Order]) -> CommandResult | None:
        """Commit the recorded orders before they are sent; if the store cannot (a full disk), none is sent: each
        is marked REJECTED and the refusal returned."""
        try:
            self.durable()
        except EngineError as exc:
            self.not_sent(orders, str(exc))
            return CommandResult(False, str(exc))
        return None

    def not_sent(self, orders: Iterable[Order | CommandResult], why: str) -> None:
        """Recorded orders that will never leave: REJECTED, with why."""
        for order in orders:
            if isinstance(order, Order):
                self._answered(order.client_id)
                self.tracker.apply(
                    order.client_id, OrderStatus.REJECTED, source="engine", detail=f"not sent: {why}"[:300]
                )

    def _record(
        self,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal,
        price: Decimal | None,
        actor: str,
        stop_loss: Decimal | None,
        urgent: bool,
        take_profit: Decimal | None = None,
        client_id: str | None = None,
    ) -> Order | CommandResult:
        """Check an order and record it with a fresh client id (or ``client_id``; nothing awaited), or say why not."""
        refusal, amount, price = self._refusal(symbol, side, amount, price, stop_loss, urgent, take_profit)
        if refusal:
            log.info("order refused (%s %s %s by %s): %s", side, amount, symbol, actor, refusal)
            self.publish(OrderRefused(actor, symbol, side, amount, price, refusal))
            return CommandResult(False, refusal)
        self.link.require()
        reduce_only = self.portfolio.usdm and self.reduces(symbol, side, amount)
        if self.mode == "dry-run":
            log.info("dry-run: would place %s %s %s %s @ %s (by %s)", side, type_, amount, symbol, price, actor)
            return CommandResult(True, f"dry-run: would place {side} {amount} {symbol} @ {price or 'market'}")
        order = self.tracker.create(symbol, side, type_, amount, price, origin=actor, client_id=client_id)
        if not urgent:
            self.rate.sent()
        self.in_flight.add(order.client_id)
        if reduce_only:
            # Perps: what only shrinks the position goes with the venue's reduceOnly flag, so the venue refuses it
            # rather than let it open or flip a position if the position moved meanwhile (REDUCE_ONLY, the kill
            # switch, the liquidation-distance monitor's reduction all rely on it).
            self.reduce_only.add(order.client_id)
        return order

    async def _send(
        self,
        order: Order,
        stop_loss: Decimal | None,
        urgent: bool,
        stop_price: Decimal | None = None,
        take_profit: Decimal | None = None,
    ) -> CommandResult:
        """Send a recorded order (its client id already on disk) and apply the venue's answer; ``stop_price``
        makes it a protective stop that waits at the venue for the price to fall to it."""
        symbol, side, amount, price = order.symbol, order.side, order.amount, order.price
        reducing = order.client_id in self.reduce_only  # perps: an order that only reduces brings no stop
        try:
            try:
                venue = self.link.require()
                if stop_price is not None and self.portfolio.usdm:
                    report = await venue.create_stop_market(order.client_id, symbol, side, stop_price)
                elif stop_price is not None:
                    report = await venue.create_order(
                        order.client_id, symbol, side, "limit", amount, price, stop_price=stop_price
                    )
                else:
                    report = await venue.create_order(
                        order.client_id,
                        symbol,
                        side,
                        order.type,
                        amount,
                        price,
                        urgent=urgent,
                        reduce_only=order.client_id in self.reduce_only,
                    )
            except not_sent_errors() as exc:
                self.tracker.apply(
                    order.client_id,
                    OrderStatus.REJECTED,
                    source="rest",
                    detail=f"not sent: {type(exc).__name__}: {exc}"[:300],
                )
                return CommandResult(False, f"not sent: {type(exc).__name__}: {exc}")
            except refused_errors() as exc:
                self.tracker.apply(order.client_id, OrderStatus.REJECTED, source="rest", detail=str(exc)[:300])
                self.alert(Severity.WARN, "ORDER_REJECTED", f"{side} {amount} {symbol} rejected: {exc}")
                return CommandResult(False, f"rejected by venue: {exc}")
            except vx.BaseError as exc:
                # Anything else (a timeout, a dropped connection, -1006 "execution status unknown", a garbled
                # answer) may hide a placed order: ask the venue by client id before deciding.
                result = await self._resolve_uncertain(order, exc, urgent)
                if result.ok and not reducing:
                    self._keep_stop(symbol, side, stop_loss, take_profit)
                return result
        finally:
            self._answered(order.client_id)
            self.reduce_only.discard(order.client_id)
        self.apply_report(report, "rest")
        if not reducing:
            self._keep_stop(symbol, side, stop_loss, take_profit)
        if report.fills and not urgent:
            # Read back at once, so the next buy's exposure (and whoever reads the balances next) counts the fill
            # even if the balance stream lags: a second request per fill, and the order's answer waits for it.
            await self.refresh_balances_quietly()
        return CommandResult(
            True,
            f"{side} {amount} {symbol} {report.status.value}",
            {"client_id": order.client_id, "status": report.status.value},
        )

    def _keep_stop(self, symbol: str, side: str, stop_loss: Decimal | None, take_profit: Decimal | None = None) -> None:
        """A buy the venue accepted sets the position's stop and take-profit (the latest entry's win: one without a
        take-profit leaves the stop alone at the venue); persisted."""
        if stop_loss is None or (side != "buy" and not self.portfolio.usdm):
            return  # perps: a short's entry (a sell) has its stop above
        self.stops[symbol] = stop_loss
        if take_profit is not None:
            self.take_profits[symbol] = take_profit
        else:
            self.take_profits.pop(symbol, None)
        self.publish_stops()

    def publish_stops(self) -> None:
        """The positions' stops and take-profits as they are now (the store keeps them for a restart)."""
        self.publish(StopsChanged(dict(self.stops), dict(self.take_profits)))

    async def _resolve_uncertain(self, order: Order, exc: Exception, urgent: bool) -> CommandResult:
        """After a timeout the order may be at the venue: ask by client id before deciding anything."""
        venue = self.link.require()
        log.warning("send of %s uncertain (%s); asking the venue by client id", order.client_id, exc)
        for attempt, pause in enumerate(NOT_FOUND_RECHECK_S):
            try:
                report = await venue.fetch_order(order.client_id, order.symbol, urgent=urgent)
                break
            except vx.OrderNotFound:
                if attempt == len(NOT_FOUND_RECHECK_S) - 1:
                    self.tracker.apply(
                        order.client_id,
                        OrderStatus.REJECTED,
                        source="rest",
                        detail=f"not received by venue after {type(exc).__name__}",
                    )
                    return CommandResult(False, f"not placed: {type(exc).__name__}: {exc}")
                await asyncio.sleep(pause)  # a request still in the venue's queue shows up within its window
            except vx.BaseError as exc2:
                self.alert(
                    Severity.WARN,
                    "ORDER_UNKNOWN_STATE",
                    f"order {order.client_id} may or may not be at the venue ({exc2}); reconcile will settle it",
                )
                return CommandResult(False, f"order state unknown after {type(exc).__name__}; will reconcile")
        self.apply_report(report, "rest")
        return CommandResult(
            True,
            f"{order.side} {order.amount} {order.symbol} {report.status.value} "
            f"(found by client id after {type(exc).__name__})",
            {"client_id": order.client_id, "status": report.status.value},
        )

    # ------------------------------------------------------------ answers

    def apply_reports(self, reports: Iterable[OrderReport], source: str) -> None:
        """Apply many reports learnt at once (a cancel-all's answer, a stream read): stored in one transaction,
        a stream read's with a command's when one is under way (``Durability.joining``)."""
        with self.joining_batch() if source == "stream" else self.batch():
            for report in reports:
                self.apply_report(report, source)

    def apply_fills(self, fills: Iterable[Fill]) -> None:
        with self.batch():
            for fill in fills:
                self.on_fill(fill)

    def apply_report(self, report: OrderReport, source: str) -> None:
        before = self.tracker.get(report.client_id)
        updated = self.tracker.apply(
            report.client_id,
            report.status,
            source=source,
            filled=report.filled,
            average=report.average,
            venue_id=report.venue_id,
        )
        if updated is not None and updated.status.is_terminal and before is not None and not before.status.is_terminal:
            self.stats.order_done(filled=updated.filled > 0)
        for fill in report.fills:
            self.on_fill(fill)

    def lost(self, order: Order, source: str) -> None:
        """An order the engine holds open but the venue does not know (never arrived): EXPIRED, with an alert."""
        self.tracker.apply(
            order.client_id, OrderStatus.EXPIRED, source=source, detail="lost: the venue does not know this order"
        )
        self.alert(
            Severity.WARN,
            "ORDER_LOST",
            f"order {order.client_id} ({order.side} {order.amount} {order.symbol}) "
            "is unknown at the venue; marked EXPIRED",
        )

    def on_fill(self, fill: Fill) -> bool:
        """Apply one fill (a repeat of a known trade id is ignored); True when it was new."""
        order = self.tracker.get(fill.client_id) if fill.client_id else None
        new, trip = self.portfolio.add_fill(fill, order.origin if order else None)
        if not new:
            return False
        self.seen(fill)
        self.stats.fill(self.portfolio.fee_in_quote(fill))
        self.publish(FillReceived(fill))
        self.publish(PositionsUpdated(self.portfolio.positions()))
        if trip is not None:
            had = self.stops.pop(trip.symbol, None), self.take_profits.pop(trip.symbol, None)
            if had != (None, None):
                self.publish_stops()
            self.stats.round_trip(trip.pnl)
            self.stats.realized(trip.pnl)
            self.publish(RoundTripClosed(trip.symbol, trip.pnl, trip.opened_by, trip.closed_at))
        return True

    def seen(self, fill: Fill) -> None:
        if fill.client_id:
            self.filled_seen[fill.client_id] = self.filled_seen.get(fill.client_id, Decimal(0)) + fill.amount

    def missing_fills(self) -> dict[str, datetime]:
        """Symbol -> when its oldest order was created, for the orders the venue reports more filled than the
        fills the engine has seen."""
        out: dict[str, datetime] = {}
        for o in self.tracker.all():
            if o.filled > self.filled_seen.get(o.client_id, Decimal(0)) and o.origin != "venue":
                out[o.symbol] = min(out.get(o.symbol, o.created_at), o.created_at)
        return out

    def apply_balances(self, balances: tuple[Balance, ...]) -> None:
        self.portfolio.set_balances(balances)
        self.publish(BalancesUpdated(tuple(self.portfolio.balances.values())))
        self.publish(PositionsUpdated(self.portfolio.positions()))

    async def refresh_balances(self, urgent: bool = False) -> None:
        self.apply_balances(await self.link.require().fetch_balances(urgent=urgent))
        if self.portfolio.usdm:
            await self.refresh_positions(urgent)

    async def refresh_positions(self, urgent: bool = False) -> None:
        """Perps: the venue's positions (positionRisk) into the portfolio, published and stored (``cockpit status``
        reads them from the store)."""
        positions_read = await self.link.require().fetch_positions(urgent=urgent)
        # What was held before this read; at the first read since the start, whatever has a stop and no order of
        # its own working (the position may have closed while the engine was away, its venue stop fired).
        held_before = {s for s in self.portfolio.perps if self.portfolio.held_amount(s) != 0}
        if not self.positions_read:
            self.positions_read = True
            working = {o.symbol for o in self.tracker.open_orders() if not o.is_protective}
            held_before |= set(self.stops) - working
        self.portfolio.set_perps(positions_read)
        # A position gone flat (closed, its venue stop fired, liquidated) takes its stop with it, as a spot round
        # trip's close does: the next entry brings its own (decision PERP-07).
        gone = [s for s in held_before if self.portfolio.held_amount(s) == 0 and s in self.stops]
        for symbol in gone:
            self.stops.pop(symbol, None)
            self.take_profits.pop(symbol, None)
        if gone:
            self.publish_stops()
        positions = self.portfolio.positions()
        self.publish(PositionsUpdated(positions))
        self.publish(Persisted("perp_positions", [perp_record(p) for p in positions]))

    async def refresh_balances_quietly(self) -> None:
        """Fetch balances over REST so a fill shows even if the balance stream lags or is down."""
        try:
            await self.refresh_balances()
        except vx.BaseError as exc:
            log.warning("balance refresh failed: %s", exc)

    # ------------------------------------------------------------ cancelling

    async def cancel(self, client_id: str, actor: str = "operator") -> CommandResult:
        order = self.tracker.get(client_id)
        if order is None:
            return CommandResult(False, f"no order {client_id}")
        if not order.status.is_open:
            return CommandResult(True, f"order {client_id} is already {order.status.value}")
        if self.link.venue is None:
            return CommandResult(False, "venue not connected")
        partner = self.tracker.get(order.oco_partner) if order.is_protective else None
        if partner is not None:
            return await self._cancel_oco(order, partner, actor)
        if order.is_protective:
            self.note_stop_cancels([client_id])
        venue = self.link.venue
        try:
            try:
                report = await venue.cancel_order(client_id, order.symbol)
            except vx.OrderNotFound:
                report = await venue.fetch_order(client_id, order.symbol)
        except vx.OrderNotFound as exc:
            if order.venue_id is None:
                # Never acknowledged, and the venue knows no such order: its placement is still on its way or was
                # refused. Nothing rests to cancel (and on spot what lands later cannot sell what is already sold:
                # the venue lends no amount to two sells). A stop-loss's exit must not wait on it.
                return CommandResult(True, f"{client_id} is not at the venue (its placement was not acknowledged)")
            return CommandResult(False, f"cancel of {client_id} failed: {exc}")
        except vx.BaseError as exc:
            return CommandResult(False, f"cancel of {client_id} failed: {exc}")
        self.apply_report(report, "rest")
        log.info("cancel %s by %s: %s", client_id, actor, report.status.value)
        return CommandResult(True, f"{client_id} {report.status.value}")

    async def _cancel_oco(self, order: Order, partner: Order, actor: str) -> CommandResult:
        """Cancel a protective OCO whole (the venue cancels both legs of a list together): one request for the
        list, both legs' answers applied; a list already done is asked for leg by leg."""
        legs = [order, partner]
        self.note_stop_cancels([o.client_id for o in legs])
        venue = self.link.require()
        try:
            try:
                reports = await venue.cancel_oco(order.oco_list_id, order.symbol)
            except vx.OrderNotFound:
                reports = [await venue.fetch_order(o.client_id, o.symbol) for o in legs]
        except vx.BaseError as exc:
            return CommandResult(False, f"cancel of the OCO {order.oco_list_id} failed: {exc}")
        self.apply_reports(reports, "rest")
        now = self.tracker.get(order.client_id)
        status = now.status.value if now is not None else "unknown"
        log.info("cancel of the OCO %s by %s: %s", order.oco_list_id, actor, status)
        return CommandResult(True, f"{order.client_id} {status} (with its OCO)")

    def note_stop_cancels(self, client_ids: Iterable[str]) -> None:
        """Protective stops this engine is cancelling itself: remembered (and persisted, the latest 200)."""
        new = [
            c
            for c in client_ids
            if c.startswith((STOP_ID_PREFIX, TAKE_PROFIT_ID_PREFIX)) and c not in self.stop_cancels
        ]
        if not new:
            return
        self.stop_cancels.update(dict.fromkeys(new))
        for old in list(self.stop_cancels)[: max(0, len(self.stop_cancels) - 200)]:
            del self.stop_cancels[old]
        self.publish(Persisted("stop_cancels", list(self.stop_cancels)))

    async def exit_position(self, symbol: str, actor: str, reason: str) -> CommandResult:
        """Sell the whole position at market (a strategy's exit or a stop-loss).

        The engine's own resting sells in the symbol (a take-profit) are cancelled first: they lock the base,
        and a stop that can only sell what is free would sell nothing.
        """
        with self.sells_under_way(symbol):
            return await self._exit(symbol, actor, reason)

    async def _exit(self, symbol: str, actor: str, reason: str) -> CommandResult:
        venue = self.link.require()
        if self.portfolio.usdm:  # perps: the whole position, back the other way, reduce-only
            held = self.portfolio.held_amount(symbol)
            if held == 0:
                return CommandResult(False, f"nothing to close in {symbol}: no position at the venue")
            log.info("exit %s %s by %s: %s", held, symbol, actor, reason)
            return await self.place(symbol, "sell" if held > 0 else "buy", "market", abs(held), None, actor)
        resting = [o for o in self.tracker.open_orders(symbol) if o.side == "sell"]
        for order in resting:
            result = await self.cancel(order.client_id, actor=actor)
            if not result.ok:
                return CommandResult(False, f"could not free the position: {result.message}")
        if resting:
            await self.refresh_balances_quietly()
        free = self.portfolio.free(base_of(symbol))
        if free < venue.min_amount(symbol):
            return CommandResult(False, f"nothing to sell in {symbol}: {free} free is under the venue's minimum")
        amount = venue.amount_to_precision(symbol, free)
        log.info("exit %s %s by %s: %s", amount, symbol, actor, reason)
        return await self.place(symbol, "sell", "market", amount, None, actor)


def perp_record(p: Position) -> dict[str, str | None]:
    """A perps position as ``cockpit status --json`` shows it (every number a decimal string)."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    distance = p.liquidation_distance_pct
    return {
        "symbol": p.symbol,
        "side": p.side,
        "amount": str(p.amount),
        "entry": text(p.avg_entry),
        "mark": text(p.last),
        "leverage": text(p.leverage),
        "margin": text(p.margin),
        "liquidation_price": text(p.liquidation_price),
        "liquidation_distance_pct": None if distance is None else f"{distance:.2f}",
        "unrealized_pnl": text(p.unrealized_pnl),
        "funding": text(p.funding),
    }
