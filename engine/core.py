"""The engine: owns the store, the venue, the order tracker, the portfolio and the trading state.

Commands come in through ``execute`` (from a key press, the CLI or the engine's own monitors); everything
that happens goes out on the bus. Start-up is local and quick (store, latched state); connecting to the venue
happens in the background, so the operator's halt key works even while the venue is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from engine.bus import EventBus
from engine.config import Settings
from engine.datadir import DataDirLock
from engine.events import (
    Alert,
    AlertRaised,
    CancelAll,
    CancelOrder,
    Command,
    EngineStarted,
    EngineStopped,
    Halt,
    HealthUpdated,
    PlaceOrder,
    ReduceOnly,
    Resume,
    SetStrategy,
    Severity,
    TradingState,
    TradingStateChanged,
    VenueConnection,
)
from engine.execution import CommandResult, Execution
from engine.monitors import Monitors
from engine.orders import OrderTracker
from engine.portfolio import Portfolio
from engine.remote import serve_commands
from engine.resilience import BreakerState, CircuitBreaker
from engine.runner import StrategyRunner
from engine.stats import DailyStats, DayStats
from engine.store import Store, fill_from_row
from engine.strategies import build_strategies
from engine.sync import VenueSync
from engine.tasks import TaskGroup
from engine.trading_state import IllegalTransition, check_transition, is_operator
from engine.venue import Venue

log = logging.getLogger(__name__)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


__all__ = ["CommandResult", "Engine", "EngineError"]

LIVE_CONFIRM_ENV = "COCKPIT_CONFIRM_LIVE"
HEALTH_INTERVAL_S = 1.0


class EngineError(Exception):
    """The engine cannot do what was asked; the message says why and what to do."""


class Engine:
    """The headless trading engine. ``start`` then ``execute`` commands; ``stop`` when done."""

    def __init__(self, settings: Settings, *, confirm_live: bool = False) -> None:
        self.settings = settings
        self.mode = settings.engine.mode
        self.confirm_live = confirm_live
        self.symbols = settings.venue.symbols
        self.bus = EventBus()
        self.tracker = OrderTracker(self.bus)
        self.portfolio = Portfolio(self.symbols, settings.engine.quote_asset)
        self.stats = DailyStats(on_rollover=self._day_finished)
        self.trading_state = TradingState.ACTIVE
        self.state_info: dict[str, Any] = {}
        self.connected = False
        self.ready = asyncio.Event()  # set once the venue is connected and state reconciled
        self.failed = asyncio.Event()  # set when the engine cannot go on (see fatal_error)
        self.fatal_error: str | None = None
        self.store: Store | None = None
        self.venue: Venue | None = None
        self.sim: Any = None
        self.tasks = TaskGroup(self._task_crashed)
        self.execution = Execution(self)
        self.sync = VenueSync(self)
        self.monitors = Monitors(self)
        self.runner = StrategyRunner(self, build_strategies(settings.strategy, self.symbols))
        self._lock = DataDirLock(settings.engine.data_dir)
        self._alerts: list[Alert] = []

    @property
    def venue_label(self) -> str:
        return f"sim {self.sim.rest_url.removeprefix('http://')}" if self.sim else self.settings.venue.exchange

    # ------------------------------------------------------------ lifecycle

    def _check_mode(self) -> None:
        cfg = self.settings
        if self.mode != "live":
            # Paper must never reach a real venue: a rest_url is only accepted on loopback (a simulator).
            if cfg.venue.exchange != "sim" and cfg.venue.rest_url and not is_loopback(cfg.venue.rest_url):
                raise EngineError(
                    f"mode = \"{self.mode}\" with [venue] rest_url = {cfg.venue.rest_url!r}: a non-local server "
                    "could be a real venue. Remove rest_url (paper uses the exchange's testnet) or use a "
                    "127.0.0.1 simulator."
                )
            return
        if not self.confirm_live:
            raise EngineError(
                'mode = "live" trades real money and needs an explicit confirmation on start: pass '
                f"--confirm-live or set {LIVE_CONFIRM_ENV}=1. Without both, use mode = \"paper\" or \"dry-run\"."
            )
        if cfg.venue.exchange == "sim":
            raise EngineError('mode = "live" cannot use exchange = "sim": set [venue] exchange to a ccxt id')
        if cfg.venue.rest_url and is_loopback(cfg.venue.rest_url):
            raise EngineError(f'mode = "live" with [venue] rest_url = {cfg.venue.rest_url!r} points real-money '
                              "orders at a local server: remove rest_url or use mode = \"paper\"")
        if cfg.venue.api_key is None or cfg.venue.api_secret is None:
            raise EngineError("live mode needs COCKPIT_VENUE__API_KEY and COCKPIT_VENUE__API_SECRET "
                              "in the environment or .env")

    async def start(self) -> None:
        """Open the store, restore the latched state and orders, and connect to the venue in the background."""
        self._check_mode()
        self._lock.acquire()
        try:
            self.store = Store.in_dir(self.settings.engine.data_dir)
        except Exception:
            self._lock.release()
            raise
        self.bus.add_handler(self.store.handle)
        self.trading_state, self.state_info = self.store.trading_state()
        self.store.save_json("engine", {"mode": self.mode, "venue": self.settings.venue.exchange})
        self.tracker.load(self.store.orders())
        self._restore_counters()
        risk = self.settings.risk
        if risk.kill_switch:
            self.set_state(TradingState.HALTED, "config:kill_switch", "kill switch set in configuration")
        elif risk.reduce_only and self.trading_state == TradingState.ACTIVE:
            self.set_state(TradingState.REDUCE_ONLY, "config:reduce_only", "reduce-only set in configuration")
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
            self._save_counters()
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
            backoff_s=tuple(cfg.retry_backoff_s),
            breaker=CircuitBreaker(cfg.breaker_failures, cfg.breaker_cooldown_s, on_change=self._breaker_changed),
            on_error=self._rest_error,
        )
        await self.sync.connect()
        self.bus.publish(EngineStarted(self.mode, self.venue_label, self.trading_state))
        self.sync.start_streams()
        self.tasks.spawn("monitors", self.monitors.run())
        self.tasks.spawn("health", self._publish_health())
        if self.settings.strategy.enabled:
            self.tasks.spawn("strategies", self.runner.run())
        self.ready.set()

    def set_connected(self, connected: bool, detail: str) -> None:
        if connected == self.connected and connected:
            return
        was = self.connected
        self.connected = connected
        self.bus.publish(VenueConnection(connected, detail))
        if not connected:
            self.alert(Severity.WARN, "VENUE_DOWN", f"venue connection lost: {detail}")
        elif not was:
            log.info("venue connected: %s", self.venue_label)

    def _breaker_changed(self, previous: BreakerState, state: BreakerState, why: str) -> None:
        severity = Severity.CRIT if state == BreakerState.OPEN else Severity.INFO
        self.alert(severity, f"BREAKER_{state.value}", f"venue circuit breaker {previous.value} -> {state.value}: {why}")
        if state == BreakerState.OPEN:
            self.set_connected(False, f"circuit breaker open: {why}")
        elif state == BreakerState.CLOSED:
            self.set_connected(True, "")

    def _rest_error(self, endpoint: str, exc: BaseException) -> None:
        self.stats.rest_error()
        log.warning("REST %s failed: %s: %s", endpoint, type(exc).__name__, exc)

    def _task_crashed(self, name: str, exc: BaseException) -> None:
        self.alert(Severity.CRIT, "TASK_CRASHED", f"{name} stopped: {type(exc).__name__}: {exc}")
        if name == "venue":
            # Without its venue task the engine cannot trade at all (bad symbols, a refused key): say so, and
            # let a headless run end with an error instead of idling.
            self.fatal_error = f"cannot use the venue: {exc}"
            self.set_connected(False, self.fatal_error)
            self.failed.set()

    def alert(self, severity: Severity, code: str, message: str) -> None:
        """Raise an alert: logged, stored and shown."""
        alert = Alert(severity, code, message)
        level = {Severity.INFO: logging.INFO, Severity.WARN: logging.WARNING, Severity.CRIT: logging.ERROR}
        log.log(level[severity], "%s %s: %s", severity.value, code, message)
        self._alerts.append(alert)
        del self._alerts[:-200]
        self.bus.publish(AlertRaised(alert))

    # ------------------------------------------------------------ counters kept across restarts

    def save_stops(self) -> None:
        if self.store is not None:
            self.store.save_json("stops", {k: str(v) for k, v in self.execution.stops.items()})

    def _restore_counters(self) -> None:
        """Day counters, strategy guard, stops and the fills-based entry prices, as they were at stop."""
        assert self.store is not None
        stops = self.store.load_json("stops") or {}
        self.execution.stops = {k: Decimal(v) for k, v in stops.items()}
        origins = {o.client_id: o.origin for o in self.tracker.all()}
        for row in self.store.fills():
            self.portfolio.add_fill(fill_from_row(row), origins.get(row["client_id"]))
        today = self.store.load_day(self.stats.clock().date().isoformat())
        if today:
            self.stats.today = DayStats.from_dict(today)
        guard = self.store.load_json("strategy_guard")
        if guard:
            cfg = self.settings.strategy
            self.runner.guard = type(self.runner.guard).from_dict(
                guard, max_consecutive_losses=cfg.max_consecutive_losses, cooldown_s=cfg.cooldown_s)

    def _save_counters(self) -> None:
        if self.store is None:
            return
        self.store.save_day(self.stats.current().to_dict())
        self.store.save_json("strategy_guard", self.runner.guard.to_dict())

    def _day_finished(self, day: DayStats) -> None:
        if self.store is not None:
            self.store.save_day(day.to_dict())
        log.info("daily stats for %s: %s", day.day, day.to_dict())

    def record_equity(self, equity: Decimal, peak: Decimal, drawdown_pct: Decimal) -> None:
        """One point of the equity curve, with the day's counters saved alongside."""
        if self.store is not None:
            self.store.record_equity(equity, peak, drawdown_pct)
            self._save_counters()

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

    def health(self) -> dict[str, Any]:
        """Numbers for the health line: stream age, REST latency p95, errors, breaker, polling."""
        venue = self.venue
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
        }

    async def _publish_health(self) -> None:
        while True:
            venue, day = self.venue, self.stats.current()
            self.bus.publish(HealthUpdated(
                market_data_age_s=self.sync.market_data_age_s(),
                rest_p95_ms=venue.latency.percentile(None, 95) if venue else None,
                rest_errors_today=day.rest_errors,
                ws_reconnects_today=day.ws_reconnects,
                breaker=venue.breaker.state.value if venue else None,
                polling=self.sync.polling,
                streams_down=tuple(self.sync.stream_down),
                day_pnl=day.net_pnl + self.portfolio.unrealized(),
                drawdown_pct=self.monitors.drawdown_pct,
            ))
            await asyncio.sleep(HEALTH_INTERVAL_S)

    # ------------------------------------------------------------ commands

    async def execute(self, command: Command) -> CommandResult:
        """Carry out one command from any front end; never raises for an operator's mistake."""
        if isinstance(command, Halt):
            return self.set_state(TradingState.HALTED, command.actor, command.reason or "halt requested")
        if isinstance(command, Resume):
            return self.set_state(TradingState.ACTIVE, command.actor, command.reason or "resume requested")
        if isinstance(command, ReduceOnly):
            return self.set_state(TradingState.REDUCE_ONLY, command.actor, command.reason or "reduce-only requested")
        if isinstance(command, CancelAll):
            return await self.execution.cancel_all(command.actor, command.reason)
        if isinstance(command, PlaceOrder):
            return await self.execution.place(command.symbol, command.side, command.type, command.amount,
                                              command.price, command.actor, stop_loss=command.stop_loss)
        if isinstance(command, CancelOrder):
            return await self.execution.cancel(command.client_id, actor=command.actor)
        if isinstance(command, SetStrategy):
            error = self.runner.set_enabled(command.name, command.enabled, command.reason or f"by {command.actor}")
            if error:
                return CommandResult(False, error)
            word = "enabled" if command.enabled else "disabled"
            self.alert(Severity.INFO, "STRATEGY_" + word.upper(), f"{command.name} {word} by {command.actor}")
            self._save_counters()
            return CommandResult(True, f"{command.name} {word}")
        return CommandResult(False, f"unknown command {type(command).__name__}")

    def set_state(self, target: TradingState, actor: str, reason: str) -> CommandResult:
        """Move the trading state through its table; stored with who and why before anything else happens."""
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
        automatic = not is_operator(actor)
        severity = Severity.INFO
        if target == TradingState.HALTED:
            severity = Severity.CRIT if automatic else Severity.WARN
        self.alert(severity, f"TRADING_{target.value}", f"{previous.value} -> {target.value} by {actor}: {reason}")
        return CommandResult(True, f"{target.value} ({reason})")
