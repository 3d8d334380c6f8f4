"""The order path: checks, persist, send, and the answers; cancel one, cancel all.

Every order, from the operator, a strategy or a stop-loss, goes through ``place``: trading state and request
sanity, account limits, venue filters, the order rate limit, then the client id is stored, then the request
leaves. After an uncertain failure (timeout, connection lost) the venue is asked by client id before anything
is decided, so an order is never placed twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import ccxt.async_support as ccxt_errors

from engine.events import FillReceived, Order, OrderStatus, PositionsUpdated, Severity, TradingState
from engine.portfolio import base_of
from engine.risk import Exposure, OrderRateLimit, filter_refusal, limit_refusal, pre_trade_refusal
from engine.venue import NOT_SENT_ERRORS, UNCERTAIN_ERRORS, OrderReport

if TYPE_CHECKING:
    from engine.core import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to a command: whether it was done, and a sentence for the operator."""

    ok: bool
    message: str


class Execution:
    """Places and cancels orders for the engine; owns the order rate limit and the stop-loss book."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.rate = OrderRateLimit(engine.settings.risk.max_orders_per_minute)
        self.stops: dict[str, Decimal] = {}  # symbol -> stop price of the position held (persisted)
        # Client ids whose create request has not been answered yet: reconciliation must not judge them.
        self.in_flight: set[str] = set()

    # ------------------------------------------------------------ placing

    def exposure(self, symbol: str) -> Exposure:
        """The account as the limits see it: held positions plus what resting buys would add."""
        e = self.engine
        p = e.portfolio
        min_cost = e.venue.min_cost(symbol) if e.venue else Decimal(0)
        pending: dict[str, Decimal] = {}
        for o in e.tracker.open_orders():
            if o.side == "buy":
                price = o.price if o.price is not None else p.last.get(o.symbol, Decimal(0))
                pending[o.symbol] = pending.get(o.symbol, Decimal(0)) + o.remaining * price
        held = [s for s in e.symbols if p.position_value(s) > min_cost or pending.get(s, 0) > 0]
        return Exposure(
            equity=p.equity(),
            position_value=p.position_value(symbol) + pending.get(symbol, Decimal(0)),
            open_positions=len(held),
            holds_symbol=symbol in held,
            drawdown_pct=e.monitors.drawdown_pct,
            daily_loss_pct=e.stats.current().daily_loss_pct(p.equity()),
        )

    async def place(
        self,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal,
        price: Decimal | None,
        actor: str = "operator",
        stop_loss: Decimal | None = None,
    ) -> CommandResult:
        """Check, persist, then send one order; the client id is on disk before the request leaves."""
        e = self.engine
        refusal = pre_trade_refusal(e.trading_state, e.connected, e.symbols, symbol, side, amount)
        if refusal is None and e.venue is not None:
            amount = e.venue.amount_to_precision(symbol, amount)
            if price is not None:
                price = e.venue.price_to_precision(symbol, price)
            ref = price if price is not None else e.portfolio.last.get(symbol)
            refusal = (
                filter_refusal(e.venue.min_amount(symbol), e.venue.min_cost(symbol), symbol, amount, ref)
                or limit_refusal(e.settings.risk, self.exposure(symbol), side, amount * (ref or 0), stop_loss, ref)
                or self.rate.refusal()
                or e.venue.breaker.refusal()
            )
        if refusal:
            log.info("order refused (%s %s %s by %s): %s", side, amount, symbol, actor, refusal)
            return CommandResult(False, refusal)
        assert e.venue is not None
        if e.mode == "dry-run":
            log.info("dry-run: would place %s %s %s %s @ %s (by %s)", side, type_, amount, symbol, price, actor)
            return CommandResult(True, f"dry-run: would place {side} {amount} {symbol} @ {price or 'market'}")
        order = e.tracker.create(symbol, side, type_, amount, price, origin=actor)
        self.rate.sent()
        self.in_flight.add(order.client_id)
        try:
            try:
                report = await e.venue.create_order(order.client_id, symbol, side, type_, amount, price)
            except NOT_SENT_ERRORS as exc:
                e.tracker.apply(order.client_id, OrderStatus.REJECTED, source="rest",
                                detail=f"not sent: {type(exc).__name__}: {exc}"[:300])
                return CommandResult(False, f"not sent: {type(exc).__name__}: {exc}")
            except UNCERTAIN_ERRORS as exc:
                result = await self._resolve_uncertain(order, exc)
                if result.ok:
                    self._keep_stop(symbol, side, stop_loss)
                return result
            except ccxt_errors.BaseError as exc:
                e.tracker.apply(order.client_id, OrderStatus.REJECTED, source="rest", detail=str(exc)[:300])
                e.alert(Severity.WARN, "ORDER_REJECTED", f"{side} {amount} {symbol} rejected: {exc}")
                return CommandResult(False, f"rejected by venue: {exc}")
        finally:
            self.in_flight.discard(order.client_id)
        self.apply_report(report, "rest")
        self._keep_stop(symbol, side, stop_loss)
        if report.fills:
            await e.sync.refresh_balances_quietly()
        return CommandResult(True, f"{side} {amount} {symbol} {report.status.value}")

    def _keep_stop(self, symbol: str, side: str, stop_loss: Decimal | None) -> None:
        """A buy the venue accepted sets the position's stop (the latest entry's stop wins); persisted."""
        if side != "buy" or stop_loss is None:
            return
        self.stops[symbol] = stop_loss
        self.engine.save_stops()

    async def _resolve_uncertain(self, order: Order, exc: Exception) -> CommandResult:
        """After a timeout the order may be at the venue: ask by client id before deciding anything."""
        e = self.engine
        assert e.venue is not None
        log.warning("send of %s uncertain (%s); asking the venue by client id", order.client_id, exc)
        try:
            report = await e.venue.fetch_order(order.client_id, order.symbol)
        except ccxt_errors.OrderNotFound:
            e.tracker.apply(order.client_id, OrderStatus.REJECTED, source="rest",
                            detail=f"not received by venue after {type(exc).__name__}")
            return CommandResult(False, f"not placed: {type(exc).__name__}: {exc}")
        except ccxt_errors.BaseError as exc2:
            e.alert(Severity.WARN, "ORDER_UNKNOWN_STATE",
                    f"order {order.client_id} may or may not be at the venue ({exc2}); reconcile will settle it")
            return CommandResult(False, f"order state unknown after {type(exc).__name__}; will reconcile")
        self.apply_report(report, "rest")
        return CommandResult(True, f"{order.side} {order.amount} {order.symbol} {report.status.value} "
                                   f"(found by client id after {type(exc).__name__})")

    # ------------------------------------------------------------ answers

    def apply_report(self, report: OrderReport, source: str) -> None:
        e = self.engine
        before = e.tracker.get(report.client_id)
        updated = e.tracker.apply(report.client_id, report.status, source=source, filled=report.filled,
                                  average=report.average, venue_id=report.venue_id)
        if updated is not None and updated.status.is_terminal and before is not None and not before.status.is_terminal:
            e.stats.order_done(filled=updated.filled > 0)
        for fill in report.fills:
            self.on_fill(fill)

    def on_fill(self, fill) -> None:
        e = self.engine
        order = e.tracker.get(fill.client_id) if fill.client_id else None
        new, trip = e.portfolio.add_fill(fill, order.origin if order else None)
        if not new:
            return
        e.stats.fill(e.portfolio.fee_in_quote(fill))
        e.bus.publish(FillReceived(fill))
        e.bus.publish(PositionsUpdated(e.portfolio.positions()))
        if trip is not None:
            if self.stops.pop(trip.symbol, None) is not None:
                e.save_stops()
            e.stats.round_trip(trip.pnl)
            e.stats.realized(trip.pnl)
            e.runner.round_trip(trip)

    # ------------------------------------------------------------ cancelling

    async def cancel(self, client_id: str, actor: str = "operator") -> CommandResult:
        e = self.engine
        order = e.tracker.get(client_id)
        if order is None:
            return CommandResult(False, f"no order {client_id}")
        if not order.status.is_open:
            return CommandResult(True, f"order {client_id} is already {order.status.value}")
        if e.venue is None:
            return CommandResult(False, "venue not connected")
        try:
            try:
                report = await e.venue.cancel_order(client_id, order.symbol)
            except ccxt_errors.OrderNotFound:
                report = await e.venue.fetch_order(client_id, order.symbol)
        except ccxt_errors.BaseError as exc:
            return CommandResult(False, f"cancel of {client_id} failed: {exc}")
        self.apply_report(report, "rest")
        log.info("cancel %s by %s: %s", client_id, actor, report.status.value)
        return CommandResult(True, f"{client_id} {report.status.value}")

    async def cancel_all(self, actor: str, reason: str) -> CommandResult:
        """Halt, then cancel every open order at the venue for every symbol, then check none is left.

        Cancel-all is the kill switch's second tier and includes the first: without the halt, a strategy
        would place a fresh order a few seconds after the operator cleared the book.
        """
        e = self.engine
        e.set_state(TradingState.HALTED, actor, reason or "cancel-all requested")
        if e.venue is None or not e.venue.ex.markets:
            return CommandResult(False, "HALTED, but the venue is not connected: orders NOT canceled; retry")
        # Known symbols first, one cheap DELETE each; the venue-wide listing (weight 80, and ccxt then
        # throttles the next call) comes after, to catch any symbol this engine did not know about.
        failures: list[str] = []
        canceled = 0
        done: set[str] = set()
        pending = set(e.symbols) | {o.symbol for o in e.tracker.open_orders()}
        while pending:
            for symbol in sorted(pending):
                try:
                    reports = await e.venue.cancel_all_orders(symbol)
                except ccxt_errors.OrderNotFound:
                    reports = []  # Binance answers -2011 when there is nothing to cancel
                except ccxt_errors.BaseError as exc:
                    failures.append(f"{symbol}: {exc}")
                    reports = []
                for report in reports:
                    canceled += 1
                    self.apply_report(report, "rest")
            done |= pending
            try:
                remaining = await e.venue.fetch_open_orders(None)
            except ccxt_errors.BaseError as exc:
                failures.append(f"listing open orders: {exc}")
                remaining = None
                break
            pending = {r.symbol for r in remaining} - done
        left = await self._settle(remaining, failures)
        msg = f"HALTED; canceled {canceled} order(s); {left} still open at venue"
        if failures or left:
            e.alert(Severity.CRIT, "CANCEL_ALL_INCOMPLETE", f"{msg}; " + "; ".join(failures))
            return CommandResult(False, msg + ("; " + "; ".join(failures) if failures else ""))
        e.alert(Severity.WARN, "CANCEL_ALL", f"{msg} (by {actor})")
        return CommandResult(True, msg)

    async def _settle(self, remaining: list[OrderReport] | None, failures: list[str]) -> int | str:
        """Bring tracked orders up to date after a cancel-all; return how many are still open at the venue."""
        e = self.engine
        assert e.venue is not None
        if remaining is None:
            return "unknown"
        still = {r.client_id for r in remaining}
        for order in e.tracker.open_orders():
            if order.client_id not in still and order.client_id not in self.in_flight:
                try:
                    self.apply_report(await e.venue.fetch_order(order.client_id, order.symbol), "rest")
                except ccxt_errors.BaseError as exc:
                    failures.append(f"{order.client_id}: {exc}")
        return len(remaining)

    async def exit_position(self, symbol: str, actor: str, reason: str) -> CommandResult:
        """Sell the whole position at market (a strategy's exit or a stop-loss).

        The engine's own resting sells in the symbol (a take-profit) are cancelled first: they lock the base,
        and a stop that can only sell what is free would sell nothing.
        """
        e = self.engine
        assert e.venue is not None
        resting = [o for o in e.tracker.open_orders() if o.symbol == symbol and o.side == "sell"]
        for order in resting:
            result = await self.cancel(order.client_id, actor=actor)
            if not result.ok:
                return CommandResult(False, f"could not free the position: {result.message}")
        if resting:
            await e.sync.refresh_balances_quietly()
        free = e.portfolio.free(base_of(symbol))
        if free < e.venue.min_amount(symbol):
            return CommandResult(False, f"nothing to sell in {symbol}: {free} free is under the venue's minimum")
        amount = e.venue.amount_to_precision(symbol, free)
        log.info("exit %s %s by %s: %s", amount, symbol, actor, reason)
        return await self.place(symbol, "sell", "market", amount, None, actor)
