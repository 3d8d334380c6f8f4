"""The engine: the composition root that builds the parts, wires their ports, and runs the one ``execute``.

Every actor (a key, the palette, the CLI, a monitor, a strategy, a stop-loss) submits a command to ``execute``,
which checks it against what the trading state permits, carries it out and publishes an audit record (who,
why, the values behind it, the result, how long it took). Everything that happens goes out on the bus.
Start-up is local and quick (store, latched state); connecting to the venue happens in the background, so the
operator's halt key works even while the venue is unreachable.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, ContextManager

from engine.api.inbox import NEVER_EXPIRE, serve_commands
from engine.gate.checklist import Checklist
from engine.gate.config_checks import is_loopback
from engine.gate.preflight import Preflight, StreamProbe, run_standalone
from engine.gate.smoke import SmokeTrade
from engine.kernel import clock as engine_clock
from engine.kernel.bus import EventBus
from engine.kernel.commands import (
    Ack,
    CancelAll,
    CancelOrder,
    CloseAll,
    ClosePosition,
    Command,
    CommandResult,
    ExitPosition,
    Halt,
    Permit,
    PlaceOrder,
    Reconcile,
    Reconnect,
    ReduceOnly,
    Resume,
    RunPreflight,
    SetMode,
    SetStrategy,
    Snapshot,
)
from engine.kernel.config import Settings
from engine.kernel.errors import EngineError, StoreError, os_reason, unwritable
from engine.kernel.events import (
    ChecklistCompleted,
    CommandAudited,
    DayStatsChanged,
    EngineStarted,
    EngineStopped,
    Event,
    Fill,
    HealthUpdated,
    ModeChanged,
    OrderCreated,
    Persisted,
    Severity,
    StopsChanged,
    StrategyGuardChanged,
    TickerUpdated,
    TradingState,
    TradingStateChanged,
    utcnow,
)
from engine.kernel.ports import VenueLink
from engine.kernel.tasks import Periodic, TaskGroup
from engine.ops import daily
from engine.ops.alerts import AlertBook
from engine.ops.incidents import Incidents, write_snapshot
from engine.ops.logfiles import LogFiles
from engine.ops.notify import Notifier
from engine.ops.observe import HealthServer, Metrics
from engine.safety.killswitch import KillSwitch, Tiers, trip_code
from engine.safety.monitors import Monitors
from engine.safety.stops import StopLosses
from engine.store.datadir import DataDirLock
from engine.store.db import Store, fill_from_row
from engine.strategies import build_strategies
from engine.strategies.runner import StrategyRunner
from engine.trading.execution import Execution
from engine.trading.holdings import Holdings
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio
from engine.trading.state import TradingStateMachine, is_operator
from engine.trading.stats import DailyStats, DayStats
from engine.trading.sync import VenueSync
from engine.venue import errors as vx
from engine.venue.adapter import Venue
from engine.venue.errors import load_ccxt
from engine.venue.health import VenueHealth
from engine.venue.resilience import BreakerState, CircuitBreaker

log = logging.getLogger(__name__)

__all__ = ["CommandResult", "Engine", "EngineError"]

LIVE_CONFIRM_ENV = "COCKPIT_CONFIRM_LIVE"
HEALTH_INTERVAL_S = 1.0
# How long a reconnect waits for every stream's first event before it reports the state after.
RECONNECT_SETTLE_S = 5.0
RECONNECT_TIMEOUT_S = 20.0


def _alert_dict(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "ts": a.ts,
        "severity": a.severity.value,
        "code": a.code,
        "message": a.message,
        "values": a.values,
        "count": a.count,
        "acked_by": a.acked_by,
        "escalated": a.escalated,
    }


def _order_dict(o: Any) -> dict[str, Any]:
    return {
        "client_id": o.client_id,
        "symbol": o.symbol,
        "side": o.side,
        "type": o.type,
        "amount": o.amount,
        "price": o.price,
        "status": o.status.value,
        "filled": o.filled,
        "origin": o.origin,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    }


def _import_venue_modules(simulator: bool) -> None:
    if simulator:
        importlib.import_module("engine.sim")
    load_ccxt()


def _describe_events(events: list[tuple[datetime, Event]]) -> list[dict[str, Any]]:
    return [{"ts": ts.isoformat(), "type": type(event).__name__, "event": str(event)[:600]} for ts, event in events]


def _describe_orders(orders: list[Any]) -> list[dict[str, Any]]:
    return [_order_dict(o) for o in orders]


class Engine:
    """The headless trading engine. ``start`` then ``execute`` commands; ``stop`` when done."""

    def __init__(self, settings: Settings, *, confirm_live: bool = False) -> None:
        self.settings = settings
        # The clock in force where the engine is built: the wall clock, or a validation run's simulated one.
        self.clock = engine_clock.current()
        self.mode = settings.engine.mode
        self.confirm_live = confirm_live
        self.symbols = settings.venue.symbols
        self.bus = EventBus()
        publish = self.bus.publish
        self.alert_book = AlertBook(settings.alerts, publish)
        self.tracker = OrderTracker(self.bus)
        self.portfolio = Portfolio(self.symbols, settings.engine.quote_asset)
        self.stats = DailyStats(on_rollover=lambda day: publish(DayStatsChanged(day.to_dict())))
        self.state = TradingStateMachine(publish, self.alert)
        self.link = VenueLink(publish, self.alert)
        self.ready = asyncio.Event()  # set once the venue is connected and state reconciled
        self.failed = asyncio.Event()  # set when the engine cannot go on (see fatal_error)
        self.fatal_error: str | None = None
        self.store: Store | None = None
        self.sim: Any = None
        self.tasks = TaskGroup(self._task_crashed)
        self.execution = Execution(
            settings.risk,
            self.mode,
            self.symbols,
            self.link,
            self.tracker,
            self.portfolio,
            self.stats,
            publish,
            self.alert,
            drawdown_pct=lambda: self.monitors.drawdown_pct,
            permission=lambda side: self.state.refusal(Permit.ENTRY if side == "buy" else Permit.REDUCE),
            batch=self._batch,
            durable=self._durable,
        )
        self.kill_switch = KillSwitch(self.symbols, self.link, self.execution, self.tracker, self.portfolio)
        self.tiers = Tiers(self.kill_switch, self.state, self.link, self.symbols, self.alert, self.tasks.spawn)
        mon = settings.monitors
        self.venue_health = VenueHealth(mon.rest_errors_window_s)
        self.holdings = Holdings(
            self.portfolio, self.tracker, mon.mismatch_warn_pct, mon.mismatch_halt_pct, publish, self.alert
        )
        self.sync = VenueSync(
            settings.venue,
            mon,
            self.symbols,
            self.link,
            self.execution,
            self.tracker,
            self.portfolio,
            self.holdings,
            self.stats,
            publish,
            self.alert,
            guard=self.clock.quiet,
        )
        self.monitors = Monitors(
            settings.risk,
            mon,
            self.portfolio,
            self.stats,
            self.tracker,
            self.execution.stops,
            self.state,
            self.link,
            self.venue_health,
            self.sync,
            self.holdings,
            publish,
            self.alert,
            self.execute,
            self.tasks.spawn,
        )
        self.runner = StrategyRunner(
            settings.strategy,
            self.symbols,
            build_strategies(settings.strategy, self.symbols),
            self.portfolio,
            self.tracker,
            self.state,
            self.link,
            self.execute,
            publish,
            self.alert,
        )
        self.stop_losses = StopLosses(
            self.portfolio, self.execution.stops, self.state, self.alert, self.execute, self.tasks.spawn
        )
        self.bus.add_handler(self.stop_losses.on_event)
        self.bus.add_handler(self.runner.on_event)
        self.bus.add_handler(self.holdings.on_event)
        self.metrics = Metrics()
        self.bus.add_handler(self.metrics.on_event)
        self.notifier = Notifier(
            settings.alerts.notify, settings.alerts.notify_retries, publish, self.alert, title=f"cockpit {self.mode}"
        )
        self.bus.add_handler(self.notifier.on_event)
        self.log_files = LogFiles(settings.engine.data_dir, settings.alerts.log_max_bytes, settings.alerts.log_backups)
        self.bus.add_handler(self.log_files.on_event)
        self.incidents = Incidents(settings.engine.data_dir, publish, self.snapshot_parts, self.tasks.spawn)
        self.bus.add_handler(self.incidents.on_event)
        # For snapshots ("review last 50 events"): (when, event), put into words only when a snapshot is taken.
        self.recent_events: deque[tuple[datetime, Event]] = deque(maxlen=500)
        self.bus.add_handler(self._remember)
        self.health_server: HealthServer | None = None
        self._summary_sent: str | None = None
        self._lock = DataDirLock(settings.engine.data_dir)
        self.running_commands = 0  # commands inside execute now (a validation run waits for none)
        self._venue_args: dict[str, Any] = {}
        self._reconnecting = asyncio.Lock()
        self.store_failure: str | None = None  # why the store cannot be written now (a full disk...), or None
        self._handlers: dict[type[Command], Callable[[Any], Awaitable[CommandResult]]] = {
            Halt: self._halt,
            Resume: self._resume,
            ReduceOnly: self._reduce_only,
            CancelAll: self._kill,
            CloseAll: self._kill,
            ClosePosition: self._kill,
            Reconnect: self._reconnect,
            Reconcile: self._reconcile,
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            ExitPosition: self._exit,
            SetStrategy: self._set_strategy,
            Ack: self._ack,
            Snapshot: self._snapshot,
            SetMode: self._set_mode,
            RunPreflight: self._preflight,
        }

    # ------------------------------------------------------------ what front ends read

    @property
    def trading_state(self) -> TradingState:
        return self.state.state

    @property
    def state_info(self) -> dict[str, Any]:
        return self.state.info

    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def venue(self) -> Venue | None:
        return self.link.venue

    @property
    def venue_label(self) -> str:
        return self.link.label or self.settings.venue.exchange

    # ------------------------------------------------------------ lifecycle

    def _check_mode(self) -> None:
        cfg = self.settings
        if self.mode != "live":
            # Paper must never reach a real venue: a rest_url is only accepted on loopback (a simulator).
            if cfg.venue.exchange != "sim" and cfg.venue.rest_url and not is_loopback(cfg.venue.rest_url):
                raise EngineError(
                    f'mode = "{self.mode}" with [venue] rest_url = {cfg.venue.rest_url!r}: a non-local server '
                    "could be a real venue. Remove rest_url (paper uses the exchange's testnet) or use a "
                    "127.0.0.1 simulator."
                )
            return
        if not self.confirm_live:
            raise EngineError(
                'mode = "live" trades real money and needs an explicit confirmation on start: pass '
                f'--confirm-live or set {LIVE_CONFIRM_ENV}=1. Without both, use mode = "paper" or "dry-run".'
            )
        if cfg.venue.exchange == "sim":
            raise EngineError('mode = "live" cannot use exchange = "sim": set [venue] exchange to a ccxt id')
        if cfg.venue.api_key is None or cfg.venue.api_secret is None:
            raise EngineError(
                "live mode needs COCKPIT_VENUE__API_KEY and COCKPIT_VENUE__API_SECRET in the environment or .env"
            )
        # Everything else a live start needs (a real venue URL, a valid key that cannot withdraw, ...) is on the
        # go/no-go checklist, which start() runs before anything else and which refuses on any FAIL, naming each.

    async def start(self) -> None:
        """Open the store, restore the latched state and orders, and connect to the venue in the background."""
        self._check_mode()
        self._lock.acquire()
        try:
            self.store = Store.in_dir(self.settings.engine.data_dir)
        except Exception:
            self._lock.release()
            raise
        self.store.on_commit_failed = self._store_failed
        self.bus.add_handler(self._persist, first=True)
        self.store.abandon_running_commands(rerun=NEVER_EXPIRE)
        self.log_files.open()
        self.alert_book.restore(self.store.max_alert_id(), self.store.unacknowledged_alerts())
        if self.mode == "live":
            try:
                await self._live_gate()
            except BaseException:
                self.log_files.close()
                self.store.close()
                self.store = None
                self._lock.release()
                raise
        self.state.restore(*self.store.trading_state())
        last = self.store.incidents(limit=1)
        self.incidents.restore(
            next((r for r in last if not r["recovered_at"]), None),
            max((r["id"] for r in last), default=0),
            self.trading_state,
            self.state_info.get("ts"),
        )
        self.store.save_json("engine", {"mode": self.mode, "venue": self.settings.venue.exchange})
        self.tracker.load(self.store.orders())
        fills = [fill_from_row(row) for row in self.store.fills()]
        self._restore_counters(fills)
        self.holdings.restore(self.store.load_json("holdings"), fills)
        curve = self.store.equity_curve(limit=1)
        self.monitors.restore(
            self.store.load_json("monitor_latches"),
            Decimal(curve[-1]["peak"]) if curve and curve[-1].get("peak") else None,
        )
        risk = self.settings.risk
        if risk.kill_switch:
            await self.execute(Halt(actor="config:kill_switch", reason="kill switch set in configuration"))
        elif risk.reduce_only and self.trading_state == TradingState.ACTIVE:
            await self.execute(ReduceOnly(actor="config:reduce_only", reason="reduce-only set in configuration"))
        self.tasks.spawn("commands", serve_commands(self.store, self.execute, self._loop_failed, self.tasks.spawn))
        self.tasks.spawn(
            "alert escalation",
            Periodic(
                "alert escalation", self.alert_book.escalate, 5.0, on_failure=self._loop_failed, clock=self.clock
            ).run(),
        )
        if self.settings.alerts.daily_summary:
            self.tasks.spawn(
                "daily summary",
                Periodic(
                    "daily summary", self._daily_summary, 20.0, on_failure=self._loop_failed, clock=self.clock
                ).run(),
            )
        for name, worker in self.notifier.workers():
            self.tasks.spawn(name, worker)
        health = self.settings.health
        if health.port:
            self.health_server = HealthServer(self.health_report, self.metrics, health.host, health.port)
            try:
                await self.health_server.start()
            except OSError as exc:
                self.alert(
                    Severity.CRIT,
                    "HEALTH_PORT",
                    f"[health] {health.host}:{health.port} cannot be served: {exc.strerror}; choose another port",
                )
                self.health_server = None
        self.tasks.spawn("venue", self._run_venue())
        log.info("engine started: mode=%s state=%s", self.mode, self.trading_state.value)

    async def stop(self, reason: str = "stopped by operator") -> None:
        """Stop every task, close the venue and the store; idempotent."""
        if self.store is not None:
            await self.notifier.drain(timeout_s=3.0)  # what is queued for people goes out, or is recorded as not
        if self.health_server is not None:
            await self.health_server.stop()
            self.health_server = None
        await self.tasks.close()
        await self.sync.stop_streams()
        if self.link.venue is not None:
            await self.link.venue.close()
            self.link.venue = None
        if self.sim is not None:
            await self.sim.stop()
            self.sim = None
        if self.store is not None:
            self._save_counters()
            self.bus.publish(EngineStopped(reason))
            self.store.close()
            self.store = None
        self.log_files.close()
        self._lock.release()

    def _make_venue(self) -> Venue:
        cfg = self.settings.venue
        return Venue(
            "binance" if cfg.exchange == "sim" else cfg.exchange,
            timeout_ms=cfg.timeout_ms,
            backoff_s=tuple(cfg.retry_backoff_s),
            breaker=CircuitBreaker(cfg.breaker_failures, cfg.breaker_cooldown_s, on_change=self._breaker_changed),
            on_error=self._rest_error,
            health=self.venue_health,
            latency_observer=self.metrics.observe_rest,
            rate_limit=cfg.rate_limit,
            **self._venue_args,
        )

    async def _run_venue(self) -> None:
        cfg = self.settings.venue
        # The simulator's server (aiohttp, websockets) and ccxt take about a second to import: in a thread, so the
        # loop (a front end's first frame, the operator's keys) never waits for them.
        await asyncio.to_thread(_import_venue_modules, cfg.exchange == "sim")
        if cfg.exchange == "sim":
            from engine.sim import Simulator

            self.sim = Simulator(seed=cfg.sim_seed)
            await self.sim.start()
            self.link.label = f"sim {self.sim.rest_url.removeprefix('http://')}"
            self._venue_args = dict(
                rest_url=self.sim.rest_url,
                ws_url=self.sim.ws_url,
                api_key=self.sim.api_key,
                api_secret=self.sim.api_secret,
                sandbox=False,
            )
        else:
            self.link.label = cfg.exchange
            self._venue_args = dict(
                rest_url=cfg.rest_url,
                ws_url=cfg.ws_url,
                api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
                api_secret=cfg.api_secret.get_secret_value() if cfg.api_secret else None,
                sandbox=cfg.rest_url is None and self.mode == "paper",
            )
        self.link.venue = self._make_venue()
        await self.sync.connect()
        self.bus.publish(EngineStarted(self.mode, self.venue_label, self.trading_state))
        self.sync.start_streams()
        mon = self.settings.monitors
        # What trades runs on the engine's clock (simulated in a validation run); what watches the link to the
        # venue runs on the wall clock, holding a simulated clock still while it reads (engine.clock).
        self.tasks.spawn(
            "monitors",
            Periodic(
                "monitors",
                self.monitors.tick,
                mon.interval_s,
                on_failure=self.monitors.failed,
                on_recovery=self.monitors.recovered,
                clock=self.clock,
            ).run(),
        )
        self.tasks.spawn(
            "equity",
            Periodic(
                "equity curve",
                self._sample_equity,
                lambda: self.settings.engine.equity_sample_s,
                on_failure=self._loop_failed,
                clock=self.clock,
            ).run(),
        )
        self.tasks.spawn(
            "ping",
            Periodic(
                "venue ping", self.monitors.ping, mon.ping_s, on_failure=self._loop_failed, guard=self.clock.quiet
            ).run(),
        )
        self.tasks.spawn(
            "health",
            Periodic(
                "health", self._publish_health, HEALTH_INTERVAL_S, on_failure=self._loop_failed, guard=self.clock.quiet
            ).run(),
        )
        if self.settings.strategy.enabled:
            self.tasks.spawn(
                "strategies",
                Periodic(
                    "strategies",
                    self.runner.step,
                    lambda: self.settings.strategy.interval_s,
                    on_failure=self._loop_failed,
                    clock=self.clock,
                ).run(),
            )
        self.ready.set()

    def _batch(self) -> ContextManager[None]:
        """One store transaction for a burst of events (group commit); nothing to batch before the store opens."""
        return self.store.batch() if self.store is not None else nullcontext()

    def _durable(self) -> None:
        """Commit what the store holds for a batch: the order path calls it before a new client id leaves. A commit
        that fails (a full disk) fails the order closed: it is not sent."""
        if self.store is None:
            return
        try:
            self.store.flush()
        except (sqlite3.Error, OSError) as exc:
            reason = self._store_failed(exc)
            raise StoreError(f"order not sent: the store cannot record it ({reason})") from None

    def _sample_equity(self) -> None:
        if self.link.connected:
            self.monitors.sample_equity()
        self.bus.publish(DayStatsChanged(self.stats.current().to_dict()))

    def _breaker_changed(self, previous: BreakerState, state: BreakerState, why: str) -> None:
        severity = Severity.CRIT if state == BreakerState.OPEN else Severity.INFO
        self.alert(
            severity, f"BREAKER_{state.value}", f"venue circuit breaker {previous.value} -> {state.value}: {why}"
        )
        if state == BreakerState.OPEN:
            self.link.set_connected(False, f"circuit breaker open: {why}")
        elif state == BreakerState.CLOSED:
            self.link.set_connected(True, "")

    def _rest_error(self, endpoint: str, exc: BaseException) -> None:
        self.stats.rest_error()
        log.warning("REST %s failed: %s: %s", endpoint, type(exc).__name__, exc)

    def _persist(self, event: Event) -> None:
        """The store first: a fact is on disk before anything acts on it. When the disk refuses (full, gone
        read-only), trading halts in memory with a CRIT alert and an order whose client id cannot be stored is not
        sent; everything else goes on (the venue keeps the truth, reconciled at the next start). Once the store
        writes again the trading state is recorded again."""
        assert self.store is not None
        try:
            self.store.handle(event)
        except (sqlite3.Error, OSError) as exc:
            reason = self._store_failed(exc)
            if isinstance(event, OrderCreated):
                raise StoreError(f"order not sent: the store cannot record it ({reason})") from None
            return
        if self.store_failure is not None and unwritable(self.settings.engine.data_dir) is None:
            info = self.state_info
            try:
                self.store.handle(
                    TradingStateChanged(
                        self.trading_state,
                        self.trading_state,
                        info.get("actor") or "engine",
                        f"{info.get('reason') or ''} (recorded again once the store could write)".strip(),
                        code=info.get("code") or "",
                        values=info.get("values") or {},
                    )
                )
            except (sqlite3.Error, OSError):
                return  # not yet
            self.store_failure = None
            self.alert(
                Severity.WARN,
                "STORE_RECOVERED",
                "the cockpit store writes again; what happened while it could not is reconciled from the venue",
            )

    def _store_failed(self, exc: BaseException) -> str:
        """The store could not write or commit (found at the write, or at a batch's commit): HALT once, say so.
        Returns the reason in words."""
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        if self.store_failure is None:
            self.store_failure = reason
            log.error("cannot write the store: %s", reason)
            self.state.tripped()
            self.state.move(TradingState.HALTED, "monitor:store", f"the store cannot be written: {reason}", "store")
            self.alert(
                Severity.CRIT,
                "STORE_WRITE_FAILED",
                f"cannot write the cockpit store ({reason}): trading HALTED, no order can be recorded so "
                f"none is sent; orders at the venue stay. Free space in {self.settings.engine.data_dir} "
                "(or make it writable); the engine records again by itself",
            )
        return reason

    def _task_crashed(self, name: str, exc: BaseException) -> None:
        self.alert(Severity.CRIT, "TASK_CRASHED", f"{name} stopped: {type(exc).__name__}: {exc}")
        if name == "venue":
            # Without its venue task the engine cannot trade at all (bad symbols, a refused key): say so, and
            # let a headless run end with an error instead of idling.
            self.fatal_error = f"cannot use the venue: {exc}"
            self.link.set_connected(False, self.fatal_error)
            self.failed.set()

    def _loop_failed(self, name: str, exc: BaseException) -> None:
        self.alert(Severity.WARN, "LOOP_FAILED", f"{name} failed: {type(exc).__name__}: {exc}; going on")

    def alert(self, severity: Severity, code: str, message: str, values: Mapping[str, Any] | None = None) -> None:
        """Raise an alert: logged, stored, shown and sent to people (de-duplicated, escalated: ``AlertBook``)."""
        self.alert_book.raise_alert(severity, code, message, values)

    def _remember(self, event: Event) -> None:
        """The last events, for snapshots (tickers are too many to be worth it)."""
        if not isinstance(event, (TickerUpdated, HealthUpdated)):
            self.recent_events.append((utcnow(), event))

    # ------------------------------------------------------------ counters kept across restarts

    def _restore_counters(self, fills: list[Fill]) -> None:
        """Day counters, strategy guard, stops and the fills-based entry prices, as they were at stop."""
        assert self.store is not None
        stops = self.store.load_json("stops") or {}
        self.execution.stops.update({k: Decimal(v) for k, v in stops.items()})
        origins = {o.client_id: o.origin for o in self.tracker.all()}
        for fill in fills:
            self.portfolio.add_fill(fill, origins.get(fill.client_id))
            self.execution.seen(fill)
        today = self.store.load_day(self.stats.clock().date().isoformat())
        if today:
            self.stats.today = DayStats.from_dict(today)
        guard = self.store.load_json("strategy_guard")
        if guard:
            cfg = self.settings.strategy
            self.runner.guard = type(self.runner.guard).from_dict(
                guard, max_consecutive_losses=cfg.max_consecutive_losses, cooldown_s=cfg.cooldown_s
            )

    def _save_counters(self) -> None:
        self.bus.publish(DayStatsChanged(self.stats.current().to_dict()))
        self.bus.publish(StrategyGuardChanged(self.runner.guard.to_dict()))
        self.bus.publish(StopsChanged(dict(self.execution.stops)))

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
            "alerts": list(self.alert_book.recent),
        }

    def health(self) -> dict[str, Any]:
        """Numbers for the health line: stream age, REST latency p95, errors, breaker, polling."""
        venue = self.link.venue
        return {
            "connected": self.connected,
            "market_data_age_s": self.sync.market_data_age_s(),
            "streams_down": dict(self.sync.stream_down),
            "polling": self.sync.polling,
            "rest_p50_ms": venue.latency.percentile(None, 50) if venue else None,
            "rest_p95_ms": venue.latency.percentile(None, 95) if venue else None,
            "latency": venue.latency.summary() if venue else {},
            "breaker": venue.breaker.state.value if venue else None,
            "today": self.stats.current().to_dict(),
            "drawdown_pct": str(self.monitors.drawdown_pct),
            "strategies": self.runner.status(),
            "monitors": self.monitors.statuses(),
        }

    def _publish_health(self) -> None:
        venue, day = self.link.venue, self.stats.current()
        self.bus.publish(
            HealthUpdated(
                market_data_age_s=self.sync.market_data_age_s(),
                rest_p95_ms=venue.latency.percentile(None, 95) if venue else None,
                rest_errors_today=day.rest_errors,
                ws_reconnects_today=day.ws_reconnects,
                breaker=venue.breaker.state.value if venue else None,
                polling=self.sync.polling,
                streams_down=tuple(self.sync.stream_down),
                day_pnl=day.net_pnl + self.portfolio.unrealized(),
                drawdown_pct=self.monitors.drawdown_pct,
            )
        )

    # ------------------------------------------------------------ the one command path

    async def execute(self, command: Command) -> CommandResult:
        """Carry out one command from any actor and publish its audit record; never raises for a refusal.

        What the command writes is one store transaction (group commit), committed when it ends, its audit record
        included; a new client order id or a state change in it is committed at once (``Store.batch``)."""
        with self._batch():
            return await self._execute(command)

    async def _execute(self, command: Command) -> CommandResult:
        start = time.perf_counter()
        self.running_commands += 1
        try:
            result = await self._carry_out(command)
        finally:
            self.running_commands -= 1
        self.bus.publish(
            CommandAudited(
                command=command.name,
                actor=command.actor,
                reason=command.reason,
                args=command.args(),
                values=dict(command.values),
                ok=result.ok,
                result=result.message,
                duration_ms=(time.perf_counter() - start) * 1000,
                kill_switch=command.kill_switch,
            )
        )
        return result

    async def _carry_out(self, command: Command) -> CommandResult:
        handler = self._handlers.get(type(command))
        refusal = self.state.refusal(command.permit)
        if handler is None:
            result = CommandResult(False, f"unknown command {type(command).__name__}")
        elif refusal is not None:
            result = CommandResult(False, refusal)
        else:
            try:
                result = await handler(command)
            except EngineError as exc:
                result = CommandResult(False, str(exc))
            except vx.BaseError as exc:
                result = CommandResult(False, f"the venue answered {type(exc).__name__}: {str(exc)[:200]}")
            except Exception as exc:  # the boundary of every command: a bug is reported and audited, not raised
                log.error("command %s by %s failed", command.name, command.actor, exc_info=exc)
                self.alert(
                    Severity.CRIT,
                    "COMMAND_FAILED",
                    f"{command.name} by {command.actor} failed: {type(exc).__name__}: {exc}",
                )
                result = CommandResult(False, f"{command.name} failed: {type(exc).__name__}: {exc}")
        return result

    # ------------------------------------------------------------ the go/no-go checklist

    async def preflight(self, actor: str = "operator") -> Checklist:
        """Run the go/no-go checklist on this engine's venue, store and configuration (and, on a paper or testnet
        venue, a smoke trade through ``execute``); publish and return it. The TUI's checklist reads this."""
        venue = self.link.venue
        smoke = None
        if self.settings.preflight.smoke_trade and self.mode != "live":
            smoke = SmokeTrade(
                self.execute,
                self.tracker,
                self.portfolio,
                self.link,
                self.state.refusal,
                self.symbols[0],
                self.mode,
                self.sync.last_event.get,
            )
        streams = StreamProbe(
            self.sync.last_event.get, lambda: self.link.venue is not None and self.link.venue.user_stream_connected()
        )
        checklist = await Preflight(
            self.settings,
            venue=venue if venue is not None and venue.ex.markets else None,
            venue_label=self.venue_label,
            store=self.store,
            confirm_live=self.confirm_live,
            actor=actor,
            streams=streams,
            smoke=smoke,
            refusal=self.execution.check,
            venue_problem="" if self.connected else "the venue is not connected yet",
            mode=self.mode,
        ).run()
        self.bus.publish(ChecklistCompleted(checklist.to_dict()))
        return checklist

    async def _preflight(self, c: RunPreflight) -> CommandResult:
        checklist = await self.preflight(c.actor)
        failures = "; ".join(f"FAIL {x.title}: {x.detail}" for x in checklist.failures())
        return CommandResult(True, checklist.line() + (f" ({failures})" if failures else ""), checklist.to_dict())

    async def _live_gate(self) -> None:
        """Runbook 003 "Automated Pre-flight Checks": a live start runs the checklist first (with a venue client of
        its own, before anything connects or trades) and is refused on any FAIL, naming each; WARNs are alerted."""
        checklist = await run_standalone(
            self.settings, self.store, confirm_live=self.confirm_live, actor="engine:live start"
        )
        self.bus.publish(ChecklistCompleted(checklist.to_dict()))
        failures = checklist.failures()
        if failures:
            raise EngineError(
                "live start refused by the go/no-go checklist (`cockpit preflight` shows every "
                "check): " + "; ".join(f"FAIL {x.title}: {x.detail}" for x in failures)
            )
        for x in checklist.warnings():
            self.alert(
                Severity.WARN,
                "PREFLIGHT_WARN",
                f"go/no-go: {x.title}: {x.detail}",
                values={"check": x.code, "fix": x.fix},
            )

    async def _halt(self, c: Halt) -> CommandResult:
        self.state.tripped()
        return self.state.move(TradingState.HALTED, c.actor, c.reason or "halt requested", trip_code(c.actor), c.values)

    async def _resume(self, c: Resume) -> CommandResult:
        if self.store_failure is not None:
            return CommandResult(
                False,
                f"resume refused: the store cannot be written ({self.store_failure}); "
                "free space in the data directory first",
            )
        blocking = self.monitors.blocking_resume(tripped_by_monitor=bool(self.state_info.get("code")))
        if blocking and is_operator(c.actor):  # anyone else is refused by the transition table itself
            return CommandResult(
                False,
                "resume refused while the condition that tripped it still holds: " + "; ".join(blocking),
                {"blocking": blocking},
            )
        result = self.state.move(TradingState.ACTIVE, c.actor, c.reason or "resume requested")
        if result.ok:
            self.tiers.resumed()
        return result

    async def _reduce_only(self, c: ReduceOnly) -> CommandResult:
        return self.state.move(
            TradingState.REDUCE_ONLY, c.actor, c.reason or "reduce-only requested", trip_code(c.actor), c.values
        )

    async def _place(self, c: PlaceOrder) -> CommandResult:
        return await self.execution.place(c.symbol, c.side, c.type, c.amount, c.price, c.actor, stop_loss=c.stop_loss)

    async def _cancel(self, c: CancelOrder) -> CommandResult:
        return await self.execution.cancel(c.client_id, actor=c.actor)

    async def _exit(self, c: ExitPosition) -> CommandResult:
        return await self.execution.exit_position(c.symbol, c.actor, c.reason)

    async def _set_mode(self, c: SetMode) -> CommandResult:
        """Dry-run (decide and log, send nothing) or back to the mode the engine started in; never to another."""
        started = self.settings.engine.mode
        allowed = {started, "dry-run"}
        if c.mode not in allowed:
            return CommandResult(
                False,
                f"mode {c.mode!r} is not reachable from here: this engine started in "
                f"{started!r}, so it can switch between {' and '.join(sorted(allowed))}; "
                "another mode takes a restart",
            )
        if c.mode == self.mode:
            return CommandResult(True, f"already {c.mode}")
        previous, self.mode = self.mode, c.mode
        self.execution.mode = c.mode
        self.bus.publish(ModeChanged(previous, c.mode, c.actor, c.reason or "mode requested"))
        # `cockpit status` shows the mode the engine runs in now (a restart starts in the configured one again).
        self.bus.publish(Persisted("engine", {"mode": self.mode, "venue": self.settings.venue.exchange}))
        self.alert(
            Severity.WARN,
            "MODE_CHANGED",
            f"mode {previous} -> {c.mode} by {c.actor}"
            + ("; orders are decided and logged, none is sent" if c.mode == "dry-run" else "; orders are sent"),
        )
        return CommandResult(True, f"mode is now {c.mode}" + (" (nothing is sent)" if c.mode == "dry-run" else ""))

    async def _set_strategy(self, c: SetStrategy) -> CommandResult:
        error = self.runner.set_enabled(c.strategy, c.enabled, c.reason or f"by {c.actor}")
        if error:
            return CommandResult(False, error)
        word = "enabled" if c.enabled else "disabled"
        self.alert(Severity.INFO, "STRATEGY_" + word.upper(), f"{c.strategy} {word} by {c.actor}")
        return CommandResult(True, f"{c.strategy} {word}")

    # ------------------------------------------------------------ kill switch

    async def _kill(self, c: CancelAll | CloseAll | ClosePosition) -> CommandResult:
        return await self.tiers.run(c)

    def kill_switch_retrying(self) -> list[str]:
        """The kill-switch tiers still being retried."""
        return self.tiers.retrying()

    # ------------------------------------------------------------ reconnect

    async def _reconnect(self, c: Reconnect) -> CommandResult:
        """Close the streams and the REST session, open new ones, reload markets, reconcile; before and after."""
        if self.link.venue is None or not self.ready.is_set():
            return CommandResult(False, "the venue is not connected yet; the engine is still connecting")
        if self._reconnecting.locked():
            return CommandResult(False, "a reconnect is already under way")
        await self._reconnecting.acquire()  # released here, or by the background task that finishes connecting
        handed_over = False
        try:
            result, handed_over = await self._reconnect_now(c)
            return result
        finally:
            if not handed_over:
                self._reconnecting.release()

    async def _reconnect_now(self, c: Reconnect) -> tuple[CommandResult, bool]:
        start = time.perf_counter()
        before = self.sync.stream_states()
        await self.sync.stop_streams()
        old, self.link.venue = self.link.venue, self._make_venue()
        # Calls already on their way finish on the old client (an order in flight must get its answer); it is
        # closed once they have had their timeout.
        self.tasks.spawn("close-old-venue", self._close_later(old))
        self.sync.came_back()
        connecting = self.tasks.spawn("reconnect connect", self.sync.connect(streams_first=True))
        try:
            await asyncio.wait_for(asyncio.shield(connecting), RECONNECT_TIMEOUT_S)
        except TimeoutError:
            # Connecting goes on in the background, which now holds the reconnect lock: nothing overlaps it.
            self.tasks.spawn("reconnect", self._finish_reconnect(connecting))
            return CommandResult(
                False,
                f"venue did not answer within {RECONNECT_TIMEOUT_S:g}s; still trying in the background",
                {"before": before},
            ), True
        deadline = time.monotonic() + RECONNECT_SETTLE_S
        while time.monotonic() < deadline and any(s == "waiting" for s in self.sync.stream_states().values()):
            await asyncio.sleep(0.05)
        after = self.sync.stream_states()
        up = sum(1 for s in after.values() if s.startswith("up"))
        was = sum(1 for s in before.values() if s.startswith("up"))
        message = (
            f"reconnected in {time.perf_counter() - start:.1f}s; markets reloaded, orders reconciled; "
            f"streams up {was}/{len(before)} before, {up}/{len(after)} after"
        )
        self.alert(Severity.INFO, "RECONNECTED", f"{message} (by {c.actor})", values={"before": before, "after": after})
        return CommandResult(True, message, {"before": before, "after": after}), False

    async def _ack(self, c: Ack) -> CommandResult:
        who = c.actor
        done = self.alert_book.ack(None if c.every else c.ids, who)
        unknown = [] if c.every else [i for i in c.ids if i not in {a.id for a in done}]
        message = f"acknowledged {len(done)} alert(s)" + (f"; not open: {unknown}" if unknown else "")
        return CommandResult(not unknown or bool(done), message, {"acknowledged": [a.id for a in done]})

    async def _snapshot(self, c: Snapshot) -> CommandResult:
        try:
            path = await asyncio.to_thread(
                write_snapshot, self.settings.engine.data_dir, self.snapshot_parts(), c.reason or "on demand"
            )
        except OSError as exc:
            return CommandResult(False, f"snapshot not written: {exc.strerror or exc}")
        return CommandResult(True, str(path), {"path": str(path)})

    def snapshot_parts(self) -> dict[str, Any]:
        """Everything an investigation needs, without a secret: the config is dumped with its secrets masked."""
        config = self.settings.model_dump(mode="json")
        for target in config.get("alerts", {}).get("notify", []):
            target["url"] = "**********"
        return {
            "state": {
                "trading_state": self.trading_state.value,
                "info": self.state_info,
                "mode": self.mode,
                "venue": self.venue_label,
                "connected": self.connected,
            },
            # Put into words by the thread that writes the archive: records are immutable, and describing 500 of
            # them on the loop would hold up the kill switch whose trip took this snapshot.
            "events": partial(_describe_events, list(self.recent_events)),
            "alerts": [_alert_dict(a) for a in self.alert_book.recent],
            "orders": partial(_describe_orders, self.tracker.all()[-500:]),
            "positions": [
                {"symbol": p.symbol, "amount": p.amount, "avg_entry": p.avg_entry, "last": p.last}
                for p in self.portfolio.positions()
            ],
            "balances": [
                {"asset": b.asset, "free": b.free, "locked": b.locked} for b in self.portfolio.balances.values()
            ],
            "monitors": self.monitors.statuses(),
            "holdings": self.holdings.to_dict(),
            "health": self.health(),
            "config": config,
        }

    def health_report(self) -> dict[str, Any]:
        """``GET /health``: healthy only when connected, not halted, and no monitor WARN or CRIT."""
        monitors = self.monitors.statuses()
        troubled = [m["code"] for m in monitors if m["status"] != "OK"]
        if self.trading_state == TradingState.HALTED:
            status = "halted"
        elif not self.connected or troubled:
            status = "degraded"
        else:
            status = "healthy"
        day = self.stats.current()
        equity = self.portfolio.equity()
        return {
            "status": status,
            "mode": self.mode,
            "trading_state": self.trading_state.value,
            "state_changed": dict(self.state_info),
            "venue": {
                "name": self.venue_label,
                "connected": self.connected,
                "streams": self.sync.stream_states(),
                "market_data_age_s": self.sync.market_data_age_s(),
                "breaker": self.venue.breaker.state.value if self.venue else None,
            },
            "open_orders": len(self.tracker.open_orders()),
            "positions": [{"symbol": p.symbol, "amount": str(p.amount)} for p in self.portfolio.positions()],
            "kill_switch": {
                "halted": self.trading_state == TradingState.HALTED,
                "retrying": self.kill_switch_retrying(),
            },
            "monitors": monitors,
            "troubled": troubled,
            "numbers": {
                "equity": equity,
                "drawdown": self.monitors.drawdown_pct,
                "day_pnl": day.net_pnl + self.portfolio.unrealized(),
                "open_orders": len(self.tracker.open_orders()),
                "positions": len(self.portfolio.positions()),
                "stream_age": self.sync.market_data_age_s(),
                "rest_errors": day.rest_errors,
                "reconnects": day.ws_reconnects,
            },
        }

    def _daily_summary(self, now: datetime | None = None) -> None:
        """At 23:59 UTC, the day's summary to every sink (runbook 004), once a day."""
        now = now or utcnow()
        today = now.date().isoformat()
        if (now.hour, now.minute) < (23, 59) or self._summary_sent == today:
            return
        self._summary_sent = today
        since, until = daily.day_bounds(today)
        stored = self.store.equity_between(since, until) if self.store else []
        message, summary = daily.summarize(
            today,
            self.stats.current().to_dict(),
            max(self.monitors.drawdown_pct, daily.largest_drawdown(stored)),
            daily.kill_switch_trips(self.store.audit_between(since, until) if self.store else []),
        )
        alert = self.alert_book.raise_alert(Severity.INFO, "DAILY_SUMMARY", message, summary)
        self.notifier.send_to_the_rest(alert, "summary")  # every sink: INFO ones got it already

    async def _reconcile(self, c: Reconcile) -> CommandResult:
        """Orders, fills, balances and holdings against the venue now; with ``adopt`` the venue's amounts are
        taken as the engine's first (the operator's answer to a kept mismatch)."""
        self.link.require()
        adopted = []
        if c.adopt:
            await self.execution.refresh_balances()  # adopt what the venue holds now, not a stale balance
            adopted = [d.to_dict() for d in self.holdings.adopt_all()]
        report = await self.sync.reconcile_all()
        if adopted:
            report = {**report, "adopted": adopted + list(report["adopted"])}
            self.alert(
                Severity.WARN,
                "POSITION_ADOPTED",
                f"{len(adopted)} difference(s) adopted by {c.actor}",
                values={"adopted": adopted},
            )
        orders = report["orders"]
        message = (
            f"reconciled: {len(orders['adopted'])} order(s) adopted, {len(orders['resolved'])} resolved, "
            f"{len(orders['lost'])} lost; {report['new_fills']} new fill(s); "
            f"{len(report['differences'])} holding difference(s), {len(report['adopted'])} adopted, "
            f"{len(report['mismatch'])} kept for the operator"
        )
        return CommandResult(True, message, report)

    async def _close_later(self, venue: Venue) -> None:
        try:
            await asyncio.sleep(self.settings.venue.timeout_ms / 1000 + 1)
        finally:
            await venue.close()

    async def _finish_reconnect(self, connecting: asyncio.Future[None]) -> None:
        try:
            await connecting
        finally:
            self._reconnecting.release()
