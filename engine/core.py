"""The engine: owns the store, the venue, the order tracker, the portfolio and the trading state.

Commands come in through ``execute`` (from a key press, the CLI or the engine's own monitors); everything
that happens goes out on the bus. Start-up is local and quick (store, latched state); connecting to the venue
happens in the background, so the operator's halt key works even while the venue is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_errors

from engine.bus import EventBus
from engine.config import Settings
from engine.datadir import DataDirLock
from engine.events import (
    Alert,
    AlertRaised,
    BalancesUpdated,
    CancelAll,
    CancelOrder,
    Command,
    EngineStarted,
    EngineStopped,
    FillReceived,
    Halt,
    Order,
    OrderStatus,
    PlaceOrder,
    PositionsUpdated,
    Resume,
    Severity,
    TickerUpdated,
    TradingState,
    TradingStateChanged,
    VenueConnection,
    utcnow,
)
from engine.orders import OrderTracker
from engine.portfolio import Portfolio
from engine.remote import serve_commands
from engine.risk import filter_refusal, pre_trade_refusal
from engine.store import Store
from engine.strategy import Ladder, Strategy
from engine.tasks import TaskGroup
from engine.trading_state import IllegalTransition, check_transition
from engine.venue import UNCERTAIN_ERRORS, OrderReport, Venue, dec

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (1, 2, 4, 8)  # seconds; runbook 000 §3 "REST errors": exponential backoff 1, 2, 4, 8 s


class EngineError(Exception):
    """The engine cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to a command: whether it was done, and a sentence for the operator."""

    ok: bool
    message: str


class Engine:
    """The headless trading engine. ``start`` then ``execute`` commands; ``stop`` when done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mode = settings.engine.mode
        self.symbols = settings.venue.symbols
        self.bus = EventBus()
        self.tracker = OrderTracker(self.bus)
        self.portfolio = Portfolio(self.symbols, settings.engine.quote_asset)
        self.trading_state = TradingState.ACTIVE
        self.state_info: dict[str, Any] = {}
        self.connected = False
        self.ready = asyncio.Event()  # set once the venue is connected and state reconciled
        self.store: Store | None = None
        self.venue: Venue | None = None
        self.sim: Any = None
        self.strategies: list[Strategy] = [Ladder(settings.strategy)] if settings.strategy.enabled else []
        self.tasks = TaskGroup(self._task_crashed)
        self._lock = DataDirLock(settings.engine.data_dir)
        self._alerts: list[Alert] = []

    @property
    def venue_label(self) -> str:
        ex = self.settings.venue.exchange
        return f"sim {self.sim.rest_url.removeprefix('http://')}" if self.sim else ex

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the store, restore the latched state and orders, and connect to the venue in the background."""
        if self.mode == "live":
            raise EngineError(
                "mode = \"live\" is not enabled in this build: live trading needs the go/no-go gate and an "
                "explicit confirmation, which are not built yet. Use mode = \"paper\" or \"dry-run\"."
            )
        self._lock.acquire()
        self.store = Store.in_dir(self.settings.engine.data_dir)
        self.bus.add_handler(self.store.handle)
        self.trading_state, self.state_info = self.store.trading_state()
        self.tracker.load(self.store.orders())
        self.tasks.spawn("commands", serve_commands(self.store, self.execute))
        self.tasks.spawn("venue", self._run_venue())
        log.info("engine started: mode=%s state=%s", self.mode, self.trading_state.value)

    async def stop(self, reason: str = "stopped by operator") -> None:
        """Stop every task, close the venue and the store; idempotent."""
        await self.tasks.close()
        if self.venue is not None:
            await self.venue.close()
            self.venue = None
        if self.sim is not None:
            await self.sim.stop()
            self.sim = None
        if self.store is not None:
            self.bus.publish(EngineStopped(reason))
            self.store.close()
            self.store = None
        self._lock.release()

    async def _run_venue(self) -> None:
        cfg = self.settings.venue
        if cfg.exchange == "sim":
            from engine.sim import Simulator

            self.sim = Simulator(seed=cfg.sim_seed)
            await self.sim.start()
            rest_url, ws_url = self.sim.rest_url, self.sim.ws_url
            key, secret = self.sim.api_key, self.sim.api_secret
        else:
            rest_url, ws_url = cfg.rest_url, cfg.ws_url
            key = cfg.api_key.get_secret_value() if cfg.api_key else None
            secret = cfg.api_secret.get_secret_value() if cfg.api_secret else None
        self.venue = Venue(
            "binance" if cfg.exchange == "sim" else cfg.exchange,
            rest_url=rest_url,
            ws_url=ws_url,
            api_key=key,
            api_secret=secret,
            timeout_ms=cfg.timeout_ms,
            sandbox=cfg.exchange != "sim" and rest_url is None and self.mode == "paper",
        )
        await self._connect()
        self.bus.publish(EngineStarted(self.mode, self.venue_label, self.trading_state))
        self.tasks.spawn("watch-orders", self._stream("orders", self._on_orders_stream))
        self.tasks.spawn("watch-trades", self._stream("trades", self._on_trades_stream))
        self.tasks.spawn("watch-balance", self._stream("balance", self._on_balance_stream))
        for symbol in self.symbols:
            self.tasks.spawn(f"watch-ticker-{symbol}", self._stream(symbol, self._ticker_handler(symbol)))
        for strategy in self.strategies:
            self.tasks.spawn(f"strategy-{strategy.name}", self._run_strategy(strategy))
        self.ready.set()

    async def _connect(self) -> None:
        """Load markets, balances, prices and reconcile orders; retry with backoff until it works."""
        assert self.venue is not None
        attempt = 0
        while True:
            try:
                await self.venue.load_markets()
                unknown = [s for s in self.symbols if s not in self.venue.ex.markets]
                if unknown:
                    raise EngineError(
                        f"[venue] symbols {unknown} are not traded on {self.venue_label}; fix config.toml"
                    )
                await self.refresh_balances()
                for symbol in self.symbols:
                    t = await self.venue.fetch_ticker(symbol)
                    self.portfolio.set_price(symbol, dec(t["last"]) or Decimal(0))
                await self.reconcile()
                self._set_connected(True, "")
                return
            except ccxt_errors.AuthenticationError as exc:
                self.alert(Severity.CRIT, "VENUE_AUTH", f"venue refused the API key: {exc}; check the key pair")
                raise
            except (ccxt_errors.NetworkError, ccxt_errors.ExchangeError) as exc:
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                self._set_connected(False, f"{type(exc).__name__}: retrying in {delay}s")
                attempt += 1
                await asyncio.sleep(delay)

    def _set_connected(self, connected: bool, detail: str) -> None:
        if connected == self.connected and connected:
            return
        self.connected = connected
        self.bus.publish(VenueConnection(connected, detail))
        if not connected:
            self.alert(Severity.WARN, "VENUE_DOWN", f"venue connection lost: {detail}")
        else:
            log.info("venue connected: %s", self.venue_label)

    def _task_crashed(self, name: str, exc: BaseException) -> None:
        self.alert(Severity.CRIT, "TASK_CRASHED", f"{name} stopped: {type(exc).__name__}: {exc}")

    def alert(self, severity: Severity, code: str, message: str) -> None:
        """Raise an alert: logged, stored and shown."""
        alert = Alert(severity, code, message)
        level = {Severity.INFO: logging.INFO, Severity.WARN: logging.WARNING, Severity.CRIT: logging.ERROR}
        log.log(level[severity], "%s %s: %s", severity.value, code, message)
        self._alerts.append(alert)
        del self._alerts[:-200]
        self.bus.publish(AlertRaised(alert))

    def snapshot(self) -> dict[str, Any]:
        """Everything a front end needs to draw its first frame."""
        return {
            "mode": self.mode,
            "venue": self.venue_label,
            "state": self.trading_state,
            "state_info": dict(self.state_info),
            "connected": self.connected,
            "orders": self.tracker.open_orders(),
            "balances": tuple(self.portfolio.balances.values()),
            "positions": self.portfolio.positions(),
            "alerts": list(self._alerts),
        }

    # ------------------------------------------------------------ commands

    async def execute(self, command: Command) -> CommandResult:
        """Carry out one command from any front end; never raises for an operator's mistake."""
        if isinstance(command, Halt):
            return self._set_state(TradingState.HALTED, command.actor, command.reason or "halt requested")
        if isinstance(command, Resume):
            return self._set_state(TradingState.ACTIVE, command.actor, command.reason or "resume requested")
        if isinstance(command, CancelAll):
            return await self.cancel_all(command.actor, command.reason)
        if isinstance(command, PlaceOrder):
            return await self.place_order(
                command.symbol, command.side, command.type, command.amount, command.price, command.actor
            )
        if isinstance(command, CancelOrder):
            return await self.cancel_order(command.client_id, actor=command.actor)
        return CommandResult(False, f"unknown command {type(command).__name__}")

    def _set_state(self, target: TradingState, actor: str, reason: str) -> CommandResult:
        try:
            if not check_transition(self.trading_state, target, actor):
                return CommandResult(True, f"already {target.value}")
        except IllegalTransition as exc:
            return CommandResult(False, str(exc))
        previous = self.trading_state
        self.trading_state = target  # first, so nothing slips through while the event is delivered
        event = TradingStateChanged(previous, target, actor, reason)
        self.state_info = {"actor": actor, "reason": reason, "ts": event.ts.isoformat()}
        self.bus.publish(event)
        # An automatic halt is a kill switch firing (runbook 000 §3: CRIT); an operator's is deliberate.
        automatic = not actor.startswith("operator")
        severity = Severity.INFO
        if target == TradingState.HALTED:
            severity = Severity.CRIT if automatic else Severity.WARN
        self.alert(severity, f"TRADING_{target.value}", f"{previous.value} -> {target.value} by {actor}: {reason}")
        return CommandResult(True, f"{target.value} ({reason})")

    async def place_order(
        self,
        symbol: str,
        side: str,
        type_: str,
        amount: Decimal,
        price: Decimal | None,
        actor: str = "operator",
    ) -> CommandResult:
        """Check, persist, then send one order; the client id is on disk before the request leaves."""
        refusal = pre_trade_refusal(self.trading_state, self.connected, self.symbols, symbol, side, amount)
        if refusal:
            log.info("order refused (%s %s %s by %s): %s", side, amount, symbol, actor, refusal)
            return CommandResult(False, refusal)
        assert self.venue is not None
        amount = self.venue.amount_to_precision(symbol, amount)
        if price is not None:
            price = self.venue.price_to_precision(symbol, price)
        refusal = filter_refusal(self.venue.min_amount(symbol), self.venue.min_cost(symbol), symbol, amount,
                                 price if price is not None else self.portfolio.last.get(symbol))
        if refusal:
            return CommandResult(False, refusal)
        if self.mode == "dry-run":
            log.info("dry-run: would place %s %s %s %s @ %s", side, type_, amount, symbol, price)
            return CommandResult(True, f"dry-run: would place {side} {amount} {symbol} @ {price}")
        order = self.tracker.create(symbol, side, type_, amount, price, origin=actor)
        try:
            report = await self.venue.create_order(order.client_id, symbol, side, type_, amount, price)
        except UNCERTAIN_ERRORS as exc:
            return await self._resolve_uncertain(order, exc)
        except ccxt_errors.BaseError as exc:
            self.tracker.apply(order.client_id, OrderStatus.REJECTED, source="rest", detail=str(exc)[:300])
            self.alert(Severity.WARN, "ORDER_REJECTED", f"{side} {amount} {symbol} rejected: {exc}")
            return CommandResult(False, f"rejected by venue: {exc}")
        self._apply_report(report, "rest")
        if report.fills:
            await self._refresh_balances_quietly()
        return CommandResult(True, f"{side} {amount} {symbol} {report.status.value}")

    async def _refresh_balances_quietly(self) -> None:
        """Fetch balances over REST so a fill shows even if the balance stream lags or is down."""
        try:
            await self.refresh_balances()
        except ccxt_errors.BaseError as exc:
            log.warning("balance refresh after fill failed: %s", exc)

    async def _resolve_uncertain(self, order: Order, exc: Exception) -> CommandResult:
        """After a timeout the order may be at the venue: ask by client id before deciding anything."""
        assert self.venue is not None
        try:
            report = await self.venue.fetch_order(order.client_id, order.symbol)
        except ccxt_errors.OrderNotFound:
            self.tracker.apply(order.client_id, OrderStatus.REJECTED, source="rest",
                               detail=f"not received by venue after {type(exc).__name__}")
            return CommandResult(False, f"not placed: {type(exc).__name__}: {exc}")
        except ccxt_errors.BaseError as exc2:
            self.alert(Severity.WARN, "ORDER_UNKNOWN_STATE",
                       f"order {order.client_id} may or may not be at the venue ({exc2}); reconcile will settle it")
            return CommandResult(False, f"order state unknown after {type(exc).__name__}; will reconcile")
        self._apply_report(report, "rest")
        return CommandResult(True, f"{order.side} {order.amount} {order.symbol} {report.status.value}")

    async def cancel_order(self, client_id: str, actor: str = "operator") -> CommandResult:
        order = self.tracker.get(client_id)
        if order is None:
            return CommandResult(False, f"no order {client_id}")
        if not order.status.is_open:
            return CommandResult(True, f"order {client_id} is already {order.status.value}")
        if self.venue is None:
            return CommandResult(False, "venue not connected")
        try:
            report = await self.venue.cancel_order(client_id, order.symbol)
        except ccxt_errors.OrderNotFound:
            report = await self.venue.fetch_order(client_id, order.symbol)
        except ccxt_errors.BaseError as exc:
            return CommandResult(False, f"cancel of {client_id} failed: {exc}")
        self._apply_report(report, "rest")
        log.info("cancel %s by %s: %s", client_id, actor, report.status.value)
        return CommandResult(True, f"{client_id} {report.status.value}")

    async def cancel_all(self, actor: str = "operator", reason: str = "") -> CommandResult:
        """Halt, then cancel every open order at the venue for every symbol, then check none is left.

        Cancel-all is the kill switch's second tier and includes the first: without the halt, a strategy
        would place a fresh order a few seconds after the operator cleared the book.
        """
        self._set_state(TradingState.HALTED, actor, reason or "cancel-all requested")
        if self.venue is None or not self.venue.ex.markets:
            return CommandResult(False, "HALTED, but the venue is not connected: orders NOT canceled; retry c")
        symbols = set(self.symbols) | {o.symbol for o in self.tracker.open_orders()}
        failures: list[str] = []
        try:
            symbols |= {r.symbol for r in await self.venue.fetch_open_orders(None)}
        except ccxt_errors.BaseError as exc:
            failures.append(f"listing open orders: {exc}")
        canceled = 0
        for symbol in sorted(symbols):
            try:
                reports = await self.venue.cancel_all_orders(symbol)
            except ccxt_errors.OrderNotFound:
                reports = []  # Binance answers -2011 when there is nothing to cancel
            except ccxt_errors.BaseError as exc:
                failures.append(f"{symbol}: {exc}")
                continue
            for report in reports:
                canceled += 1
                self._apply_report(report, "rest")
        left = await self._verify_no_open_orders(failures)
        msg = f"HALTED; canceled {canceled} order(s); {left} still open at venue"
        if failures or left:
            self.alert(Severity.CRIT, "CANCEL_ALL_INCOMPLETE", f"{msg}; " + "; ".join(failures))
            return CommandResult(False, msg + ("; " + "; ".join(failures) if failures else ""))
        self.alert(Severity.WARN, "CANCEL_ALL", f"{msg} (by {actor})")
        return CommandResult(True, msg)

    async def _verify_no_open_orders(self, failures: list[str]) -> int:
        assert self.venue is not None
        try:
            remaining = await self.venue.fetch_open_orders(None)
        except ccxt_errors.BaseError as exc:
            failures.append(f"checking open orders: {exc}")
            return -1
        still = {r.client_id for r in remaining}
        for order in self.tracker.open_orders():
            if order.client_id not in still:
                try:
                    self._apply_report(await self.venue.fetch_order(order.client_id, order.symbol), "rest")
                except ccxt_errors.BaseError as exc:
                    failures.append(f"{order.client_id}: {exc}")
        return len(remaining)

    # ------------------------------------------------------------ venue state

    async def refresh_balances(self) -> None:
        assert self.venue is not None
        self._on_balances(await self.venue.fetch_balances())

    async def reconcile(self) -> None:
        """Bring local open orders in line with the venue; adopt venue orders the engine did not know."""
        assert self.venue is not None
        for order in self.tracker.open_orders():
            try:
                report = await self.venue.fetch_order(order.client_id, order.symbol)
            except ccxt_errors.OrderNotFound:
                self.tracker.apply(order.client_id, OrderStatus.EXPIRED, source="reconcile",
                                   detail="the venue does not know this order")
                continue
            self._apply_report(report, "reconcile")
        for report in await self.venue.fetch_open_orders(None):
            if self.tracker.get(report.client_id) is None:
                adopted = self.tracker.adopt(Order(
                    client_id=report.client_id or f"venue-{report.venue_id}", symbol=report.symbol,
                    side=report.side, type=report.type, amount=report.amount, price=report.price,
                    status=report.status, filled=report.filled, average=report.average,
                    venue_id=report.venue_id, origin="venue"))
                self.alert(Severity.WARN, "ORDER_ADOPTED",
                           f"open order {adopted.client_id} on {report.symbol} was not placed by this engine; "
                           "now tracked (cancel-all includes it)")

    def _apply_report(self, report: OrderReport, source: str) -> None:
        self.tracker.apply(report.client_id, report.status, source=source, filled=report.filled,
                           average=report.average, venue_id=report.venue_id)
        for fill in report.fills:
            self._on_fill(fill)

    def _on_fill(self, fill: Any) -> None:
        if self.portfolio.add_fill(fill):
            self.bus.publish(FillReceived(fill))
            self.bus.publish(PositionsUpdated(self.portfolio.positions()))

    def _on_balances(self, balances: Any) -> None:
        self.portfolio.set_balances(balances)
        self.bus.publish(BalancesUpdated(tuple(self.portfolio.balances.values())))
        self.bus.publish(PositionsUpdated(self.portfolio.positions()))

    # ------------------------------------------------------------ streams and strategies

    async def _stream(self, name: str, handler: Any) -> None:
        """Run one watch loop forever; on an error mark the venue down, back off, and watch again."""
        attempt = 0
        while True:
            try:
                await handler()
                attempt = 0
                if not self.connected:
                    self._set_connected(True, "")
            except asyncio.CancelledError:
                raise
            except (ccxt_errors.BaseError, KeyError) as exc:
                # ccxt 4.5.90 turns a WS-API error answer (a refused key or signature) into KeyError('spot')
                # while cleaning up; it is an authentication failure, not a crash of this loop.
                if isinstance(exc, KeyError):
                    self.alert(Severity.CRIT, "VENUE_AUTH",
                               f"{name} stream refused by the venue (key or signature); check the API key pair")
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                self._set_connected(False, f"{name} stream: {type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(delay)

    async def _on_orders_stream(self) -> None:
        assert self.venue is not None
        for report in await self.venue.watch_orders():
            self._apply_report(report, "stream")

    async def _on_trades_stream(self) -> None:
        assert self.venue is not None
        for fill in await self.venue.watch_my_trades():
            self._on_fill(fill)

    async def _on_balance_stream(self) -> None:
        assert self.venue is not None
        self._on_balances(await self.venue.watch_balance())

    def _ticker_handler(self, symbol: str) -> Any:
        async def handle() -> None:
            assert self.venue is not None
            t = await self.venue.watch_ticker(symbol)
            last = dec(t.get("last"))
            if last is None:
                return
            self.portfolio.set_price(symbol, last)
            self.bus.publish(TickerUpdated(symbol, last, dec(t.get("bid")), dec(t.get("ask")), utcnow()))
        return handle

    async def _run_strategy(self, strategy: Strategy) -> None:
        interval = self.settings.strategy.interval_s
        while True:
            if self.connected and self.trading_state != TradingState.HALTED:
                try:
                    await strategy.step(self)
                except ccxt_errors.BaseError as exc:
                    log.warning("strategy %s step failed: %s", strategy.name, exc)
            await asyncio.sleep(interval)
