"""The engine: the composition root that builds the parts, wires their ports, and runs the one ``execute``.

Every actor (a key, the palette, the CLI, a monitor, a strategy, a stop-loss) submits a command to ``execute``,
which checks it against what the trading state permits, carries it out (``engine.core.handlers``) and publishes an
audit record (who, why, the values behind it, the result, how long it took). Everything that happens goes out on
the bus. The parts are built in ``engine.core.build``; front ends read ``engine.core.readmodel``. Start-up is local
and quick (store, latched state); connecting to the venue happens in the background, so the operator's halt key
works even while the venue is unreachable.

Why one module of this length: the composition root's lifecycle (start, the venue task, stop, the live gate, the
daily summary) and the one ``execute``; the handlers, the read model, the wiring and the store guard are their own
modules.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sqlite3
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.api import signals
from engine.api.beacon import Beacon
from engine.api.inbox import NEVER_EXPIRE, build_command, serve_commands
from engine.api.server import ApiServer
from engine.api.signals import SIGNAL_ACTOR
from engine.chat.bots import ChatBots
from engine.core.build import build_books, build_parts
from engine.core.handlers import CommandHandlers
from engine.core.readmodel import ReadModel
from engine.core.service import Service
from engine.core.storeguard import StoreGuard
from engine.gate.checklist import Checklist
from engine.gate.config_checks import host_of, listens_locally, venue_host_problem
from engine.gate.preflight import run_standalone
from engine.kernel import clock as engine_clock
from engine.kernel.bus import EventBus
from engine.kernel.commands import (
    CancelAll,
    CloseAll,
    Command,
    CommandResult,
    Halt,
    Permit,
    PlaceOrder,
    ReduceOnly,
    audit_record,
)
from engine.kernel.config import ChatConfig, Settings
from engine.kernel.errors import EngineError
from engine.kernel.events import (
    AlertRaised,
    ChecklistCompleted,
    DayStatsChanged,
    EngineStarted,
    EngineStopped,
    Event,
    Fill,
    FillReceived,
    HealthUpdated,
    ModeChanged,
    OrderUpdated,
    Severity,
    StrategyGuardChanged,
    TickerUpdated,
    TradingState,
    TradingStateChanged,
    utcnow,
)
from engine.kernel.ports import Ports, VenueLink
from engine.kernel.tasks import Periodic, TaskGroup
from engine.kernel.testhooks import hold_s
from engine.ops import daily
from engine.ops.alerts import AlertBook
from engine.ops.incidents import Incidents
from engine.ops.observe import HealthServer
from engine.safety.deadman import DeadMan
from engine.store.datadir import DataDirLock
from engine.store.db import Store, fill_from_row
from engine.trading.execution import perp_record
from engine.trading.orders import OrderTracker
from engine.trading.state import TradingStateMachine, is_operator
from engine.trading.stats import DayStats
from engine.venue import errors as vx
from engine.venue.adapter import Endpoint, Venue
from engine.venue.errors import load_ccxt
from engine.venue.inprocess import StreamWire
from engine.venue.resilience import BreakerState, CircuitBreaker

log = logging.getLogger(__name__)

__all__ = ["CommandResult", "Engine", "EngineError"]

LIVE_CONFIRM_ENV = "COCKPIT_CONFIRM_LIVE"
HEALTH_INTERVAL_S = 1.0
# The kill switch's tiers that answer first and report after (``Engine.execute``); both run again at a start
# that finds them unfinished (``NEVER_EXPIRE``).
TIERS_ANSWERED_FIRST = (CancelAll, CloseAll)
# Tests only: seconds between a tier's answer and what follows it, for the crash test to kill the engine there.
AFTER_ANSWER_HOLD_ENV = "TEST_COCKPIT_AFTER_ANSWER_HOLD_S"  # not COCKPIT_: that prefix is settings


# Who halts a start after an unclean stop, and why (``Engine._after_an_unclean_stop``).
UNCLEAN_STOP_ACTOR = "engine:start"
UNCLEAN_STOP_REASON = "restarted after an unclean stop"


def _import_venue_modules(simulator: bool) -> None:
    if simulator:
        importlib.import_module("engine.sim")
    load_ccxt()


class Engine:
    """The headless trading engine. ``start`` then ``execute`` commands; ``stop`` when done."""

    def __init__(
        self,
        settings: Settings,
        *,
        confirm_live: bool = False,
        take_signals: bool = False,
        checks_at_start: bool = False,
        serve_chat: bool = True,
        wire: StreamWire | None = None,
    ) -> None:
        self.settings = settings
        # A backtest's simulator streams to this engine in-process (decision GATE-17); None: over websockets.
        self.wire = wire
        # The clock in force where the engine is built: the wall clock, or a validation run's simulated one.
        self.clock = engine_clock.current()
        self.mode = settings.engine.mode
        self.confirm_live = confirm_live
        self.symbols = settings.venue.symbols
        self.bus = EventBus()
        publish = self.bus.publish
        self.alert_book = AlertBook(settings.alerts, publish)
        self.tasks = TaskGroup(self._task_crashed)
        self.ports = Ports(publish, self.alert, self.execute, self.tasks.spawn)
        self.state = TradingStateMachine(publish, self.alert)
        self.link = VenueLink(publish, self.alert)
        self.store_guard = StoreGuard(settings.engine.data_dir, self.state, self.alert, self._store_recovered)
        self.beacon = Beacon(settings.engine.data_dir)
        # The kill switch by signal (engine.api.signals), for the process that owns the terminal or the service:
        # `cockpit run` and the TUI take them; an engine embedded in a test or a validation run does not.
        self.take_signals = take_signals
        # The checks that place no order, run once connected and after every reconnect so the screen shows a verdict
        # without anyone asking: for the program an operator runs (the TUI, `cockpit run`), not for an engine
        # embedded in a test or a validation run, whose requests must stay its own.
        self.checks_at_start = checks_at_start
        self._signals: list[int] = []
        self.ready = asyncio.Event()  # set once the venue is connected and state reconciled
        self.failed = asyncio.Event()  # set when the engine cannot go on (see fatal_error)
        self.fatal_error: str | None = None
        self.store: Store | None = None
        self.sim: Any = None
        books = build_books(settings, self.ports, OrderTracker(self.bus))
        self.parts = parts = build_parts(
            settings,
            self.mode,
            books=books,
            state=self.state,
            link=self.link,
            ports=self.ports,
            durability=self.store_guard.durability,
            quiet=self.clock.quiet,
        )
        # The parts, by name: front ends and tests read them here (the service API will serve the read model).
        self.tracker, self.portfolio, self.stats = books.tracker, books.portfolio, books.stats
        self.execution, self.kill_switch, self.tiers = parts.execution, parts.kill_switch, parts.tiers
        self.tiers.answer_first = TIERS_ANSWERED_FIRST  # their alerts follow the answer (``execute``)
        # What follows answers given (``_after_answer``): its timer handle and arguments, done at a stop if pending.
        self._after_answers: list[tuple[asyncio.Handle, tuple[Any, ...]]] = []
        self.venue_health, self.holdings, self.sync = parts.venue_health, parts.holdings, parts.sync
        self.monitors, self.runner, self.stop_losses = parts.monitors, parts.runner, parts.stop_losses
        self.venue_stops = parts.venue_stops
        # Perps: the venue's dead-man's switch, renewed while connected and the monitors pass (engine.safety.deadman).
        venue_cfg = settings.venue
        self.deadman = (
            DeadMan(venue_cfg.deadman_s, self.symbols, self.link, self.alert, self._deadman_health)
            if venue_cfg.market == "usdm" and venue_cfg.deadman_s > 0
            else None
        )
        self.metrics, self.notifier, self.log_files = parts.metrics, parts.notifier, parts.log_files
        self.read = ReadModel(self)
        self.handlers = CommandHandlers(self)
        self.incidents = Incidents(settings.engine.data_dir, publish, self.read.snapshot_parts, self.tasks.spawn)
        # For snapshots ("review last 50 events"): (when, event), put into words only when a snapshot is taken.
        self.recent_events: deque[tuple[datetime, Event]] = deque(maxlen=500)
        for handler in (
            self.stop_losses.on_event,
            self.runner.on_event,
            self.holdings.on_event,
            self.metrics.on_event,
            self.notifier.on_event,
            self.log_files.on_event,
            self.incidents.on_event,
            self._remember,
            self._light_beacon,
            self._after_reconnect,
        ):
            self.bus.add_handler(handler)
        self.health_server: HealthServer | None = None
        # The service API: queries, commands and the event journal, served on the local socket (and remote HTTP).
        self.service = Service(self)
        self.api_server: ApiServer | None = None
        # The chat bots (Telegram, Slack): one more transport of the service API, in this process (docs/decisions.md
        # CHAT-01), started after the API and stopped with it.
        # ``serve_chat`` False: an engine that lives for a moment beside the operator's (the preflight of `cockpit
        # preflight` with none running) must not poll their bot: it would take the commands meant for the real one.
        self.chat = ChatBots(
            settings.chat if serve_chat else ChatConfig(),
            self.service,
            self.tasks.spawn,
            on_change=lambda: self._light_beacon(None),
        )
        self.bus.add_handler(self.chat.on_event)
        self._summary_sent: str | None = None
        self._lock = DataDirLock(settings.engine.data_dir)
        self.running_commands = 0  # commands inside execute now (a validation run waits for none)
        self._endpoint: Endpoint | None = None  # the simulator's, once started; None: the configured venue
        self.reconnecting = asyncio.Lock()

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

    @property
    def store_failure(self) -> str | None:
        """Why the store cannot be written now (a full disk...), or None."""
        return self.store_guard.failure

    def snapshot(self) -> dict[str, Any]:
        """Everything a front end needs to draw its first frame."""
        return self.read.snapshot()

    def health(self) -> dict[str, Any]:
        """Numbers for the health line."""
        return self.read.health()

    def health_report(self) -> dict[str, Any]:
        """``GET /health``."""
        return self.read.health_report()

    def snapshot_parts(self) -> dict[str, Any]:
        """Everything an investigation needs, without a secret."""
        return self.read.snapshot_parts()

    def resume_refusal(self, actor: str) -> CommandResult | None:
        """The refusal of a resume by ``actor`` now, or None: the store cannot be written, or (for an operator) the
        condition that tripped the halt still holds; anyone else is refused by the transition table itself. The
        engine's resume handler and the TUI's resume key both ask here."""
        if self.store_guard.failure is not None:
            return CommandResult(
                False,
                f"resume refused: the store cannot be written ({self.store_guard.failure}); "
                "free space in the data directory first",
            )
        blocking = self.monitors.blocking_resume(tripped_by_monitor=bool(self.state_info.get("code")))
        if blocking and is_operator(actor):
            return CommandResult(
                False,
                "resume refused while the condition that tripped it still holds: " + "; ".join(blocking),
                {"blocking": blocking},
            )
        return None

    def kill_switch_retrying(self) -> list[str]:
        """The kill-switch tiers still being retried."""
        return self.tiers.retrying()

    async def preflight(self, actor: str = "operator", *, with_orders: bool = True) -> Checklist:
        """Run the go/no-go checklist on this engine (see ``CommandHandlers.preflight``)."""
        return await self.handlers.preflight(actor, with_orders=with_orders)

    async def checklist_without_orders(self, why: str) -> None:
        """The checks that place no order, so the main screen shows a verdict from the start (and after every
        reconnect) without anyone asking; the smoke trade stays behind F5 and its question."""
        try:
            await self.preflight(f"engine:{why}", with_orders=False)
        except Exception as exc:  # advice, never a failure of the engine: the operator can run it with g / F5
            log.warning("the go/no-go checklist at %s could not run: %s", why, exc)

    # ------------------------------------------------------------ lifecycle

    def _check_api(self) -> None:
        """The remote API off loopback needs TLS, or the operator's explicit ``allow_plaintext``."""
        api = self.settings.api
        if api.port and not listens_locally(api.host) and api.tls_cert is None and not api.allow_plaintext:
            raise EngineError(
                f"[api] host = {api.host!r} is not loopback: the remote API needs TLS there (set [api] tls_cert and "
                "tls_key, PEM files) or, on a network you trust, [api] allow_plaintext = true"
            )
        for key in ("tls_cert", "tls_key"):
            path = getattr(api, key)
            if path is not None and not Path(path).is_file():
                raise EngineError(f"[api] {key} = {str(path)!r} is not a readable file")

    def _check_mode(self) -> None:
        self._check_api()
        cfg = self.settings
        if self.mode != "live":
            # Paper must never reach a real venue's API: any other host (a testnet, a simulator) is the operator's
            # to name, and the banner says which.
            problem = venue_host_problem(cfg)
            if problem is not None:
                raise EngineError(problem)
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
        self.store_guard.store = self.store
        self.beacon.open()
        self.store.on_commit_failed = self.store_guard.failed
        self.bus.add_handler(self.store_guard.persist, first=True)
        self.service.open()  # the journal numbers every event from here on
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
                self.store_guard.store = None
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
        await self._after_an_unclean_stop()
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
            self.health_server = HealthServer(self.read.health_report, self.metrics, health.host, health.port)
            try:
                await self.health_server.start()
            except OSError as exc:
                self.alert(
                    Severity.CRIT,
                    "HEALTH_PORT",
                    f"[health] {health.host}:{health.port} cannot be served: {exc.strerror}; choose another port",
                )
                self.health_server = None
        await self._serve_api()
        self.chat.start()
        self.tasks.spawn("venue", self._run_venue())
        if self.take_signals:
            self._signals = signals.install(asyncio.get_running_loop(), self._by_signal)
        self._light_beacon(None)
        log.info("engine started: mode=%s state=%s", self.mode, self.trading_state.value)

    async def _after_an_unclean_stop(self) -> None:
        """The last run reached the venue (its ``EngineStarted`` stored) and never recorded its stop (its
        ``EngineStopped``): a crash, a watchdog's kill, kill -9. It may have died between an order and its answer,
        or of what will kill this run too, so with ``[engine] after_unclean_stop = "halted"`` this start halts
        through the one command path (an incident opens, CRIT): no strategy trades again before a person has looked.
        A state already HALTED stays as it was (its incident with it)."""
        assert self.store is not None
        runs = self.store.engine_runs(since="")  # every run: a stop recorded at any time is >= ""
        last = runs[-1] if runs else None
        if last is None or last["stopped_at"]:
            return
        policy = self.settings.engine.after_unclean_stop
        if policy == "keep" or self.trading_state == TradingState.HALTED:
            log.warning(
                "the run started at %s did not stop cleanly; the trading state is kept: %s (after_unclean_stop = %s)",
                last["started_at"],
                self.trading_state.value,
                policy,
            )
            return
        previous = {"run": last["id"], "started_at": last["started_at"], "mode": last["mode"], "venue": last["venue"]}
        await self.execute(Halt(actor=UNCLEAN_STOP_ACTOR, reason=UNCLEAN_STOP_REASON, values=previous))

    async def _serve_api(self) -> None:
        """The local socket always; the remote API when ``[api] port`` is set. A socket that cannot be served is a
        CRIT alert, not a stop: the keys, the signals and the store's inbox still reach this engine."""
        api = self.settings.api
        tls = (api.tls_cert, api.tls_key) if api.tls_cert is not None and api.tls_key is not None else None
        self.api_server = ApiServer(
            self.service, local=True, remote=bool(api.port), host=api.host, port=api.port, tls=tls
        )
        starts = [("the local socket", self.api_server.start_local)]
        if api.port:
            starts.append((f"the remote API on {api.host}:{api.port}", self.api_server.start_remote))
        for what, start in starts:
            try:
                await start()
            except (OSError, ssl.SSLError) as exc:
                self.alert(
                    Severity.CRIT,
                    "API_UNAVAILABLE",
                    f"{what} cannot be served ({type(exc).__name__}: {exc}); the CLI falls back to the store's inbox "
                    "and screens cannot attach there",
                    values={"what": what},
                )
        if (
            self.api_server is not None
            and self.api_server.url is not None
            and tls is None
            and not listens_locally(api.host)
        ):
            log.warning(
                "the remote API listens on %s WITHOUT TLS ([api] allow_plaintext = true): tokens cross the network "
                "in clear",
                self.api_server.url,
            )

    async def stop(self, reason: str = "stopped by operator") -> None:
        """Stop every task, close the venue and the store; idempotent."""
        if self.api_server is not None:
            await self.api_server.stop()  # attached screens hear the engine go, before anything else stops
            self.api_server = None
        await self.chat.stop()
        if self.store is not None:
            await self.notifier.drain(timeout_s=3.0)  # what is queued for people goes out, or is recorded as not
        if self.health_server is not None:
            await self.health_server.stop()
            self.health_server = None
        await self.tasks.close(for_good=True)
        if self.deadman is not None:
            await self.deadman.disarm()
        await self.runner.close()
        await self.sync.stop_streams()
        if self.link.venue is not None:
            await self.link.venue.close()
            self.link.venue = None
        if self.sim is not None:
            await self.sim.stop()
            self.sim = None
        if self.store is not None:
            self.report_answered()
            self._save_counters()
            self.bus.publish(EngineStopped(reason))
            self.service.close()  # the journal's last batch, before the store closes
            self.store.close()
            self.store = None
            self.store_guard.store = None
        self.log_files.close()
        signals.uninstall(asyncio.get_running_loop(), self._signals)
        self._signals = []
        self.beacon.write({"pid": os.getpid(), "running": False, "ts": utcnow().isoformat()})
        self.beacon.close()
        self._lock.release()

    def make_venue(self) -> Venue:
        """A new venue client (at start and at every reconnect), with the engine's hooks."""
        cfg = self.settings.venue
        return Venue.from_settings(
            cfg,
            self.mode,
            endpoint=self._endpoint,
            breaker=CircuitBreaker(cfg.breaker_failures, cfg.breaker_cooldown_s, on_change=self._breaker_changed),
            on_error=self._rest_error,
            health=self.venue_health,
            latency_observer=self.metrics.observe_rest,
            wire=self.wire,
        )

    async def _run_venue(self) -> None:
        cfg = self.settings.venue
        # The simulator's server (aiohttp, websockets) and ccxt take about a second to import: in a thread, so the
        # loop (a front end's first frame, the operator's keys) never waits for them.
        await asyncio.to_thread(_import_venue_modules, cfg.exchange == "sim")
        if cfg.exchange == "sim":
            from engine.sim import Simulator
            from engine.sim.market import synthetic_needed

            self.sim = Simulator(seed=cfg.sim_seed, symbols=synthetic_needed(cfg.symbols), market=cfg.market)
            await self.sim.start()
            self.link.label = f"sim {self.sim.rest_url.removeprefix('http://')}"
            self._endpoint = Endpoint(
                "sim", self.sim.rest_url, self.sim.ws_url, self.sim.api_key, self.sim.api_secret, sandbox=False
            )
        else:
            # The banner names where orders go: the host the operator named, or the exchange's testnet for paper.
            where = host_of(cfg.rest_url) if cfg.rest_url else ("testnet" if self.mode == "paper" else "")
            self.link.label = f"{cfg.exchange} {where}".strip()
        self.link.venue = self.make_venue()
        await self.sync.connect()
        self.bus.publish(EngineStarted(self.mode, self.venue_label, self.trading_state))
        self.sync.start_streams()
        if self.checks_at_start:
            self.tasks.spawn("checklist at start", self.checklist_without_orders("start"))
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
        if self.deadman is not None:
            deadman = self.deadman
            await deadman.renew()  # armed before anything rests at the venue
            self.tasks.spawn(
                "dead-man's switch",
                Periodic("dead-man's switch", deadman.renew, deadman.every_s, on_failure=self._loop_failed).run(),
            )
        if self.settings.strategy.enabled:
            self.runner.start()
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

    def _deadman_health(self) -> str | None:
        """Why the dead-man's switch must not be renewed now (the venue cannot be reached, or the monitors' loop
        stalled), or None."""
        if not self.link.connected:
            return "not connected to the venue"
        return self.monitors.watchdog.stalled or None

    def _sample_equity(self) -> None:
        # The curve's point and the day's figures in one transaction: one commit where there were two, at every
        # sample (a backtest's every step, GATE-21); a crash between them loses both points of the same moment.
        with self.store_guard.batch():
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

    # ------------------------------------------------------------ when the store cannot be written

    def _light_beacon(self, event: Event | None) -> None:
        """The beacon follows the trading state and the store's failure, for shells the store cannot tell."""
        if event is not None and not isinstance(event, (TradingStateChanged, EngineStarted, ModeChanged, AlertRaised)):
            return
        if isinstance(event, AlertRaised) and not event.alert.code.startswith("STORE_"):
            return
        info = self.state_info
        self.beacon.write(
            {
                "pid": os.getpid(),
                "running": True,
                "state": self.trading_state.value,
                "actor": info.get("actor"),
                "reason": info.get("reason"),
                "since": info.get("ts"),
                "store_failure": self.store_guard.failure,
                "mode": self.mode,
                "chat": self.chat.states(),
                "ts": utcnow().isoformat(),
            }
        )

    def _after_reconnect(self, event: Event) -> None:
        """After every reconnect the checks that place no order run again, so the verdict on screen is current."""
        if self.checks_at_start and isinstance(event, AlertRaised) and event.alert.code == "RECONNECTED":
            self.tasks.spawn("checklist after reconnect", self.checklist_without_orders("reconnect"))

    def _by_signal(self, name: str) -> None:
        """A kill-switch signal from a shell the store could not carry (engine.api.signals)."""
        command = build_command(name, SIGNAL_ACTOR, "by signal: the store could not carry the command", {})
        self.tasks.spawn(f"signal {name}", self.execute(command))

    def _store_recovered(self, since: datetime) -> None:
        self.tasks.spawn("store catch-up", self._write_what_the_store_missed(since))

    async def _write_what_the_store_missed(self, since: datetime) -> None:
        """The store writes again after failing since ``since``: a commit that failed lost its whole transaction
        (a fill's row, an order's new status), while the engine went on in memory. Orders changed since then are
        written again from memory, and every trade the venue reports since then is written (the store keeps a fill
        once, by its trade id; one the engine never saw goes through the order path like any late fill)."""
        store, venue = self.store, self.link.venue
        if store is None:
            return
        orders = self.tracker.all()
        with self.store_guard.batch():
            for order in orders:
                if order.updated_at >= since:
                    store.handle(OrderUpdated(order, order.status, "store recovered"))
        if venue is None or not venue.markets_loaded:
            return
        by_venue_id = {o.venue_id: o.client_id for o in orders if o.venue_id}
        since_ms = int(since.timestamp() * 1000) - 5_000
        written = 0
        for symbol in self.symbols:
            for order_id, fill in await venue.fetch_my_trades(symbol, since_ms):
                if not fill.client_id and order_id in by_venue_id:
                    fill = replace(fill, client_id=by_venue_id[order_id])
                if not self.execution.on_fill(fill):  # known to the engine: only its row may be missing
                    store.handle(FillReceived(fill))
                written += 1
        log.info("store caught up: %d trade(s) since %s written again", written, since.isoformat())

    # ------------------------------------------------------------ counters kept across restarts

    def _restore_counters(self, fills: list[Fill]) -> None:
        """Day counters, strategy guard, stops and the fills-based entry prices, as they were at stop."""
        assert self.store is not None
        stops = self.store.load_json("stops") or {}
        self.execution.stops.update({k: Decimal(v) for k, v in stops.items()})
        profits = self.store.load_json("take_profits") or {}
        self.execution.take_profits.update({k: Decimal(v) for k, v in profits.items()})
        # A cancel-all with its stops (or a close-all) holds them off until an operator resumes, restarts included
        # (a resume from another shell while no engine ran left HALTED: then it is over).
        self.venue_stops.suspended = str(self.store.load_json("stops_suspended") or "")
        if self.trading_state != TradingState.HALTED:
            self.venue_stops.suspend("")
        self.execution.stop_cancels.update(dict.fromkeys(self.store.load_json("stop_cancels") or []))
        origins = {o.client_id: o.origin for o in self.tracker.all()}
        for fill in fills:
            self.portfolio.add_fill(fill, origins.get(fill.client_id) if fill.client_id else None)
            self.execution.seen(fill)
        today = self.store.load_day(self.stats.clock().date().isoformat())
        if today:
            self.stats.today = DayStats.from_dict(today)
        guard = self.store.load_json("strategy_guard")
        if guard:
            self.runner.restore_guard(guard)
        self.runner.restore_stats((t["opened_by"], Decimal(t["pnl"])) for t in self.store.round_trips())

    def _save_counters(self) -> None:
        self.bus.publish(DayStatsChanged(self.stats.current().to_dict()))
        self.bus.publish(StrategyGuardChanged(self.runner.guard.to_dict()))
        self.execution.publish_stops()

    def _publish_health(self) -> None:
        self.bus.publish(self.read.health_event())

    # ------------------------------------------------------------ the one command path

    async def execute(self, command: Command, journal_row: int | None = None) -> CommandResult:
        """Carry out one command from any actor and publish its audit record; never raises for a refusal.

        What the command writes is one store transaction (group commit), committed when it ends, its audit record
        included; a new client order id or a state change in it is committed at once (``Store.batch``).

        Cancel-all and close-all answer first: the answer is returned
        once the venue has confirmed, and its alert, its audit record (and with it the incident's update) and the
        commit follow it (``_after_answer``), on the next turn of the loop. What makes that safe is its row in
        ``commands``, on disk before its first request leaves (``journal_row``: the service API's, recorded before
        it called; else written here and committed with the halt): a crash between the answer and what follows
        finds the row still running, and the next start runs the tier again (idempotent), which reports it then
        (decision BEN-07)."""
        if isinstance(command, TIERS_ANSWERED_FIRST) and self.store is not None:
            return await self._execute_answer_first(command, journal_row)
        with self.store_guard.batch():
            start = time.perf_counter()
            self.running_commands += 1
            try:
                result = await self._carry_out(command)
            finally:
                self.running_commands -= 1
            report = self.tiers.take_report(command)  # a tier answered first, with no store to follow it: now
            if report is not None:
                report()
            self.bus.publish(audit_record(command, result, start))
            return result

    async def _execute_answer_first(self, command: Command, journal_row: int | None) -> CommandResult:
        start = time.perf_counter()
        with self.store_guard.batch(answer_first=True):
            row = journal_row
            if row is None and self.store is not None and not self.store_guard.failure:
                try:
                    row = self.store.note_running_command(command.name, command.actor, command.reason, command.args())
                except (sqlite3.Error, OSError) as exc:  # a full disk: the tier still runs, reported inline
                    log.warning("%s by %s not journalled before it acts (%s)", command.name, command.actor, exc)
            self.running_commands += 1
            try:
                result = await self._carry_out(command)
            finally:
                self.running_commands -= 1
        report = self.tiers.take_report(command)
        audit = audit_record(command, result, start)
        loop = asyncio.get_running_loop()
        hold = hold_s(AFTER_ANSWER_HOLD_ENV)
        if hold > 0:  # tests only: the crash test kills the engine between the answer and what follows it
            handle: asyncio.Handle = loop.call_later(hold, self._after_answer, report, audit, row, result)
        else:
            handle = loop.call_soon(self._after_answer, report, audit, row, result)
        self._after_answers.append((handle, (report, audit, row, result)))
        return result

    def _after_answer(
        self, report: Callable[[], None] | None, audit: Event, row: int | None, result: CommandResult
    ) -> None:
        """What follows a tier's answer, one transaction: its alert (a close's read-back spawned), its audit record
        (the incident's update with it), its row in ``commands`` done."""
        self._after_answers = [(h, a) for h, a in self._after_answers if a[1] is not audit]
        with self.store_guard.batch():
            if report is not None:
                report()
            self.bus.publish(audit)
            if row is not None and self.store is not None:
                try:
                    self.store.note_command_done(row, result.ok, result.message, dict(result.details) or None)
                except (sqlite3.Error, OSError) as exc:
                    log.warning("command %s's end not recorded (%s)", row, exc)

    def report_answered(self) -> None:
        """What follows answers still waiting, done now: at a stop, before the store closes (and by tests)."""
        for handle, args in list(self._after_answers):
            handle.cancel()
            self._after_answer(*args)

    async def _carry_out(self, command: Command) -> CommandResult:
        handler = self.handlers.table.get(type(command))
        refusal = self.state.refusal(self._permit(command))
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

    def _permit(self, command: Command) -> Permit:
        """What ``command`` asks of the trading state. Perps: an order is an entry or a reduction by the position it
        meets (a buy that covers a short reduces; a sell that opens one is an entry), not by its side."""
        if isinstance(command, PlaceOrder) and self.portfolio.usdm:
            reduces = self.execution.reduces(command.symbol, command.side, command.amount)
            return Permit.REDUCE if reduces else Permit.ENTRY
        return command.permit

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
            [perp_record(p) for p in self.portfolio.positions()] if self.portfolio.usdm else None,
        )
        alert = self.alert_book.raise_alert(Severity.INFO, "DAILY_SUMMARY", message, summary)
        self.notifier.send_to_the_rest(alert, "summary")  # every sink: INFO ones got it already
