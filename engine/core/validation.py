"""Paper validation: the configured strategies on the simulator, the engine on the simulator's clock, 48 h in a
minute, and a GO / NO-GO report (runbook 003 "Running Validation").

The run is a lockstep simulation through the real parts: a stepped simulator (``engine.sim``, market time moved by
hand), the real engine in paper mode talking to it through the real ccxt client over loopback REST and websockets,
and the engine's clock made the simulator's (``engine.gate.stepped``). Each step moves market time one tick
(``[validation] tick_s``), lets the prices move, waits until the engine has caught up with the venue (the new
prices received, every fill, order and balance agreeing, nothing in flight), then wakes the engine loops that are
due (strategy steps, monitors, equity samples, the daily summary...), one at a time in a fixed order, waiting for
each. What happens is therefore decided by the seed (or the CSV) and the configuration, never by the machine's
load: the same seed gives the same report (``engine.gate.scorecard.comparable``). ``speed`` only caps how fast
simulated time may run against the wall clock.

The engine is built by the caller (``make_engine``): only the composition roots build engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError

from engine.gate.scorecard import Recorder, build_report
from engine.gate.stepped import SteppedClock
from engine.kernel import clock as engine_clock
from engine.kernel.commands import Ack
from engine.kernel.config import ChatConfig, ConfigError, Settings
from engine.kernel.events import DayStatsChanged, EquitySampled, HealthUpdated, MonitorsChanged
from engine.sim import Simulator
from engine.sim.market import SYMBOLS
from engine.sim.replay import Replay, ReplayError, load_csv
from engine.strategies.loader import BUILT_INS, load_strategies
from engine.venue import errors as vx

log = logging.getLogger(__name__)

# How long the engine may take to catch up with the venue after one step, and to connect at the start, before
# the run is abandoned as stalled (wall seconds; a healthy step takes milliseconds).
SETTLE_TIMEOUT_S = 30.0
START_TIMEOUT_S = 60.0
# Minute candles of history the stepped simulator generates before the start (24-hour ticker statistics).
HISTORY_DAYS = 1.0
# Nobody watches a validation run: its alerts are counted in the report, not escalated, and acknowledged by the
# run every simulated hour (through the engine's one command path, so it is audited like any acknowledgement).
ACK_EVERY_S = 3600.0
ACTOR = "validation:run"
# The engine's reports of its own figures: they change nothing the settle check compares with the venue, so they do
# not make it compare again (the equity sample publishes two at every step; GATE-21).
REPORTS = (EquitySampled, DayStatsChanged, MonitorsChanged, HealthUpdated)


class ValidationError(Exception):
    """A run that cannot start or go on; the message says what is wrong and what to do."""


class EngineLike(Protocol):
    """What the run needs of the engine it drives (``Engine``): its bus, lifecycle and the state it settles on."""

    bus: Any
    ready: asyncio.Event
    failed: asyncio.Event
    fatal_error: str | None
    running_commands: int
    portfolio: Any
    execution: Any
    sync: Any
    stats: Any
    tasks: Any
    runner: Any

    async def start(self) -> None: ...

    async def execute(self, command: Any) -> Any: ...

    async def stop(self, reason: str = ...) -> None: ...


# A run's collector thresholds: the first generation collected every this many allocations (Python's default: 700).
COLLECT_EVERY = 50_000


@contextlib.contextmanager
def collector_spaced() -> Iterator[None]:
    """Python's cyclic garbage collector run less often while a validation run lasts, as before after it.

    A run allocates and frees objects at every step (payloads, events, Decimals) and keeps a growing heap that
    lives as long as it does (the candle series, the store's and the engine's books): at the default threshold a
    collection every 700 allocations walks the young objects again and again, and the older generations the whole
    heap, to find almost nothing (the run's objects are freed by their reference counts). Measured on 6 h of the
    backtest benchmark's data: 627 collections took 6.5 % of the run's CPU, and the run 11 % less CPU with
    collections 70 times rarer (decision GATE-23). What it decides cannot change: nothing the engine does depends on
    when a cycle is collected."""
    before = gc.get_threshold()
    gc.set_threshold(COLLECT_EVERY, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass(frozen=True)
class Plan:
    """What to run: how long (simulated), how fast at most (``math.inf``: uncapped), the tick, and the prices (a
    seed, or CSV replays by venue symbol, e.g. ``{"BTCUSDT": Path("btc.csv")}``)."""

    duration_s: float
    speed: float
    tick_s: float
    seed: int
    replay: Mapping[str, Path] = field(default_factory=dict)
    # The simulator's streams reach the engine in-process instead of over loopback websockets (GATE-17): the same
    # engine, ccxt client and decisions, without the socket, the frames and the JSON of every push.
    in_process: bool = False
    # The driver calls the engine's plain loops itself and gives the event loop no turn after a loop that set
    # nothing going (GATE-21); False: every loop is woken as a task and followed by a full settle check (the driver
    # before it: what the test that proves both decide alike runs against).
    lean: bool = True


@dataclass(frozen=True)
class Progress:
    """Where a run is, for a progress bar."""

    simulated_s: float
    duration_s: float
    now: datetime
    trades: int
    fills: int
    equity: Decimal | None
    wall_s: float


class Backtest(NamedTuple):
    """What `cockpit validate --strategy NAME [--replay DATA]` runs: the configuration with that strategy alone,
    how long the data runs after its history (s), and its candles' interval (s; the finest file's)."""

    settings: Settings
    covered_s: float | None
    candle_s: float | None


def backtest(settings: Settings, strategy: str, replay: Mapping[str, Path]) -> Backtest:
    """`cockpit validate --strategy NAME [--replay DATA]`: the configuration with that strategy alone, trading every
    symbol the data holds (the configured ones without data), how long the data runs after its history, and the
    interval of its candles (a backtest's step unless one is asked for: decision GATE-25)."""
    cfg = settings.strategy
    unknown = sorted(s for s in replay if s not in SYMBOLS)
    if unknown:
        raise ValidationError(
            f"the data holds {', '.join(unknown)}; the simulator lists {', '.join(sorted(SYMBOLS))} only"
        )
    settle = f":{SYMBOLS[next(iter(replay))].quote}" if replay and settings.venue.market == "usdm" else ""
    symbols = (
        tuple(f"{SYMBOLS[s].base}/{SYMBOLS[s].quote}{settle}" for s in sorted(replay))
        if replay
        else settings.venue.symbols
    )
    builtin = {c.name for c in BUILT_INS}
    update: dict[str, Any] = {"enabled": True, "run": () if strategy in builtin else (strategy,)}
    for name in builtin:
        update[name] = getattr(cfg, name).model_copy(update={"enabled": name == strategy})
    only = cfg.model_copy(update=update)
    loaded = load_strategies(only, symbols)  # ConfigError for a wrong parameter, like at start
    if strategy in loaded.failures:
        raise ValidationError(f"strategy {strategy} cannot run: {loaded.failures[strategy]}")
    if not loaded.strategies:
        raise ValidationError(f"no strategy {strategy!r}: `cockpit strategy list` shows what is found")
    covered: float | None = None
    candle: float | None = None
    for symbol, path in replay.items():
        try:
            r = Replay(symbol, load_csv(path, SYMBOLS[symbol]))
        except (ReplayError, ValueError) as exc:
            raise ValidationError(f"cannot replay: {exc}") from None
        span = (r.end_ms - r.start_ms) / 1000
        covered = span if covered is None else min(covered, span)
        candle = r.interval_ms / 1000 if candle is None else min(candle, r.interval_ms / 1000)
    venue = settings.venue.model_copy(update={"symbols": symbols})
    return Backtest(settings.model_copy(update={"strategy": only, "venue": venue}), covered, candle)


def with_params(settings: Settings, strategy: str, values: Mapping[str, str]) -> Settings:
    """The configuration with ``strategy``'s parameters set to ``values`` (a point of ``--sweep``), checked like the
    config file's: ConfigError names a wrong one."""
    cfg = settings.strategy
    if strategy in {c.name for c in BUILT_INS}:
        table = getattr(cfg, strategy)
        try:
            changed = type(table)(**{**table.model_dump(), **values})
        except PydanticValidationError as exc:
            raise ConfigError(
                f"--sweep for {strategy}: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"
            ) from None
        return settings.model_copy(update={"strategy": cfg.model_copy(update={strategy: changed})})
    params = {**cfg.params, strategy: {**cfg.params.get(strategy, {}), **values}}
    return settings.model_copy(update={"strategy": cfg.model_copy(update={"params": params})})


def venue_symbol(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTCUSDT``; the perpetual ``BTC/USDT:USDT`` -> ``BTCUSDT`` too."""
    return symbol.split(":")[0].replace("/", "").upper()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Validation:
    """One validation run; ``await run()`` returns the report (also when interrupted by ``stop()``)."""

    def __init__(
        self,
        settings: Settings,
        plan: Plan,
        make_engine: Callable[..., EngineLike],
        scratch_dir: Path,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every_s: float = 0.2,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.make_engine = make_engine
        self.scratch_dir = scratch_dir
        self.on_progress = on_progress
        self.progress_every_s = progress_every_s
        self.symbols = settings.venue.symbols
        self._check()
        self._stop = False
        self._tick_wall = 0.0
        self._baseline_tasks: set[str] = set()
        self._steps = 0
        self._fills_at_tick = 0  # the venue's fills before this tick's price move
        self._fundings = 0  # perps: funding charges the venue has made, as the engine last read them
        self.recorder: Recorder | None = None
        # What has happened so far (the venue's events, the engine's, the market clock, the tick) when a check last
        # found the engine caught up: while it is the same, only the work under way is checked again (GATE-20).
        self._happened = [0, 0]  # the venue's events, the engine's events
        self._caught_up_at: tuple[int, ...] | None = None

    def stop(self) -> None:
        """End the run after the current step; ``run`` then returns a partial report."""
        self._stop = True

    # ------------------------------------------------------------ set-up

    def _check(self) -> None:
        quote = self.settings.engine.quote_asset
        unknown = [s for s in self.symbols if venue_symbol(s) not in SYMBOLS]
        if unknown:
            raise ValidationError(
                f"the simulator lists {', '.join(sorted(SYMBOLS))} only; [venue] symbols "
                f"{unknown} cannot be validated on it: validate with the simulator's symbols"
            )
        if any(SYMBOLS[venue_symbol(s)].quote != quote for s in self.symbols):
            raise ValidationError(
                f"[engine] quote_asset = {quote!r}, but the simulator's markets are quoted in "
                'USDT: set quote_asset = "USDT" to validate'
            )
        for symbol in self.plan.replay:
            if symbol not in {venue_symbol(s) for s in self.symbols}:
                raise ValidationError(
                    f"--replay {symbol}: not a configured symbol ({', '.join(venue_symbol(s) for s in self.symbols)})"
                )
        if self.plan.tick_s <= 0 or self.plan.duration_s <= 0 or self.plan.speed <= 0:
            raise ValidationError("duration, speed and tick must be positive")

    def _make_sim(self) -> Simulator:
        cfg = self.settings.validation
        balances = {self.settings.engine.quote_asset: cfg.starting_balance}
        balances.update({SYMBOLS[venue_symbol(s)].base: Decimal(0) for s in self.symbols})
        try:
            sim = Simulator(
                seed=self.plan.seed,
                market=self.settings.venue.market,
                futures_wallet=cfg.starting_balance,  # perps: the futures account is the one traded
                stepped=True,
                tick_interval=self.plan.tick_s,
                start_ms=int(cfg.start.timestamp() * 1000),
                replay=dict(self.plan.replay) or None,
                history_days=HISTORY_DAYS,
                balances=balances,
            )
        except (ReplayError, ValueError) as exc:
            raise ValidationError(f"cannot replay: {exc}") from None
        for symbol, replay in sim.replays.items():
            hours = (replay.end_ms - replay.start_ms) / 3_600_000
            if hours * 3600 < self.plan.duration_s:
                raise ValidationError(
                    f"{symbol}={self.plan.replay[symbol]} covers {hours:.1f} h after its history (the first half "
                    f"of the file, at most 1000 candles): pass --duration {math.floor(hours * 10) / 10}h or a longer "
                    "file"
                )
        return sim

    def _engine_settings(self, sim: Simulator) -> Settings:
        """The operator's configuration, pointed at the stepped simulator in paper mode, in a scratch directory,
        with nothing sent to people (the report is), no chat bot, and ccxt's client-side rate limiter off: the
        simulator counts the venue's limits on simulated time instead (a minute of the run is a simulated minute)."""
        s = self.settings
        return s.model_copy(
            update={
                "venue": s.venue.model_copy(
                    update={
                        "exchange": "binance",
                        "rest_url": sim.rest_url,
                        "ws_url": sim.ws_url,
                        "rate_limit": False,
                        "api_key": SecretStr(sim.api_key),
                        "api_secret": SecretStr(sim.api_secret),
                        # Perps: the venue's countdown would run out between two steps of simulated time and cancel
                        # what rests; nothing is left unwatched in a run that stops with its engine (PERP-09).
                        "deadman_s": 0.0,
                    }
                ),
                "engine": s.engine.model_copy(update={"mode": "paper", "data_dir": self.scratch_dir}),
                "alerts": s.alerts.model_copy(
                    update={
                        "notify": (),
                        "warn_escalate_s": self.plan.duration_s + 86_400,
                        "crit_repeat_s": self.plan.duration_s + 86_400,
                    }
                ),
                "health": s.health.model_copy(update={"port": 0}),
                "risk": s.risk.model_copy(update={"kill_switch": False, "reduce_only": False}),
                # No chat bot: a simulated run must not poll the operator's bot (it would take their commands).
                "chat": ChatConfig(),
            }
        )

    # ------------------------------------------------------------ the run

    async def run(self) -> dict[str, Any]:
        plan, cfg = self.plan, self.settings.validation
        started_at, wall0, cpu0 = datetime.now(UTC), time.monotonic(), time.process_time()
        sim = self._make_sim()
        await sim.start()
        start_ms = sim.clock.now_ms()
        clock = SteppedClock(sim.clock.now_ms, plain=plan.lean)
        error: str | None = None
        final_equity: Decimal | None = None
        funding: Decimal | None = None  # perps: received (+) / paid (-) over the run
        days: list[Any] = []
        recorder = Recorder(last_price=lambda symbol: None)
        try:
            with engine_clock.use(clock), collector_spaced():
                wire = {"wire": sim.streams} if plan.in_process else {}
                engine = self.make_engine(self._engine_settings(sim), **wire)
                recorder = self.recorder = Recorder(last_price=engine.portfolio.last.get)
                engine.bus.add_handler(recorder.on_event)
                engine.bus.add_handler(self._engine_event)
                sim.engine.listeners.append(self._venue_event)
                try:
                    await engine.start()
                    await self._started(engine, sim)
                    await self._loop(engine, sim, clock, recorder, start_ms, wall0)
                except ValidationError as exc:
                    error = str(exc)
                    log.error("validation run stopped: %s", exc)
                finally:
                    final_equity = engine.portfolio.equity()
                    if self.settings.venue.market == "usdm":  # the engine's record of the venue's income
                        funding = sum(engine.portfolio.funding.values(), Decimal(0))
                    days = [*engine.stats.history, engine.stats.current()]
                    await engine.stop("validation run over")
        finally:
            await sim.stop()
        simulated_s = (sim.clock.now_ms() - start_ms) / 1000
        wall_s = time.monotonic() - wall0
        cpu_s = time.process_time() - cpu0
        report = build_report(
            recorder,
            days,
            cfg,
            hours_asked=Decimal(str(round(plan.duration_s / 3600, 4))),
            simulated={
                "start": _iso(start_ms),
                "end": _iso(sim.clock.now_ms()),
                "hours": round(simulated_s / 3600, 4),
                "hours_asked": round(plan.duration_s / 3600, 4),
                "tick_s": plan.tick_s,
                "steps": self._steps,
                "completed": error is None and simulated_s >= plan.duration_s,
            },
            source=self._source(),
            settings_summary=self._summary(),
            final_equity=final_equity,
            funding=funding,
            run={
                "started_at": started_at.isoformat(),
                "finished_at": datetime.now(UTC).isoformat(),
                "wall_s": round(wall_s, 2),
                "speed": plan.speed if math.isfinite(plan.speed) else None,  # None: uncapped (a backtest)
                "speed_achieved": round(simulated_s / wall_s, 1) if wall_s > 0 else None,
                # The run's own work (this process's CPU time): what the pace is on an idle machine.
                "cpu_s": round(cpu_s, 2),
                "speed_on_cpu": round(simulated_s / cpu_s, 1) if cpu_s > 0 else None,
                "interrupted": self._stop,
                "error": error,
                "replay_paths": {k: str(v) for k, v in plan.replay.items()},  # resolved by the plan
                "path": "in-process" if plan.in_process else "loopback",  # how the streams reached the engine
            },
        )
        if error:
            report["failed"].append(f"the run stopped early: {error}")
        return report

    async def _started(self, engine: EngineLike, sim: Simulator) -> None:
        """Wait until the engine is connected and listening to every stream, then for it to agree with the venue."""
        deadline = time.monotonic() + START_TIMEOUT_S
        streams = [f"{venue_symbol(s).lower()}@ticker" for s in self.symbols]
        streams += [f"{venue_symbol(s).lower()}@kline_{tf}" for s, tf in engine.runner.candles.series]
        while not (
            engine.ready.is_set()
            and sim.user_stream_subscriptions > 0
            and all(sim.market_stream_subscribed(s) for s in streams)
        ):
            if engine.failed.is_set():
                raise ValidationError(f"the engine could not start: {engine.fatal_error}")
            if time.monotonic() > deadline:
                raise ValidationError(f"the engine did not connect to the simulator within {START_TIMEOUT_S:g}s")
            await asyncio.sleep(0.01)
        self._baseline_tasks = set(engine.tasks.names())
        await self._settle(engine, sim, None)

    async def _loop(
        self, engine: EngineLike, sim: Simulator, clock: SteppedClock, recorder: Recorder, start_ms: int, wall0: float
    ) -> None:
        plan = self.plan
        end_ms = start_ms + round(plan.duration_s * 1000)
        tick_ms = round(plan.tick_s * 1000)
        loop_wall0 = time.monotonic()
        last_progress = 0.0
        next_ack_ms = start_ms + round(ACK_EVERY_S * 1000)
        while sim.clock.now_ms() < end_ms and not self._stop:
            async with clock.moving():
                target_ms = sim.clock.now_ms() + min(tick_ms, end_ms - sim.clock.now_ms())
                if sim.replays:
                    sim.walk_to(target_ms)  # a coarse tick: the venue walks the candles' points it steps over
                sim.clock.advance(target_ms - sim.clock.now_ms())
                self._fills_at_tick = len(sim.engine.trades)
                sim.tick()
                self._tick_wall = time.monotonic()
                await self._settle(engine, sim, clock)
                await self._perp_account(engine, sim, clock)
                await self._wake_due(engine, sim, clock)
                if sim.clock.now_ms() >= next_ack_ms:
                    next_ack_ms += round(ACK_EVERY_S * 1000)
                    await engine.execute(
                        Ack(actor=ACTOR, reason="validation run: alerts are counted in its report", every=True)
                    )
                    await self._settle(engine, sim, clock)
            self._steps += 1
            simulated_s = (sim.clock.now_ms() - start_ms) / 1000
            ahead = simulated_s / plan.speed - (time.monotonic() - loop_wall0)
            await asyncio.sleep(ahead if ahead > 0 else 0)  # the speed cap; and the wall loops' turn
            if self.on_progress is not None and time.monotonic() - last_progress >= self.progress_every_s:
                last_progress = time.monotonic()
                self.on_progress(self._progress(engine, recorder, simulated_s, wall0))
        async with clock.moving():
            await self._perp_account(engine, sim, clock)  # the last step's fills in the final equity
        if self.on_progress is not None:
            self.on_progress(self._progress(engine, recorder, (sim.clock.now_ms() - start_ms) / 1000, wall0))

    async def _wake_due(self, engine: EngineLike, sim: Simulator, clock: SteppedClock) -> None:
        """Wake the loops due, one at a time, each followed by a settle check. A plain loop's tick (the monitors,
        the equity sample, alert escalation, the daily summary) runs inside ``wake_next`` itself (GATE-21)."""
        mark = self._mark(engine)
        while clock.wake_next() is not None:
            await self._settle(engine, sim, clock, since=mark if self.plan.lean else None)
            mark = self._mark(engine)

    def _mark(self, engine: EngineLike) -> tuple[int, int]:
        """What a loop's tick may have set going: the venue's events and the tasks the engine started."""
        return self._happened[0], engine.tasks.spawned

    async def _perp_account(self, engine: EngineLike, sim: Simulator, clock: SteppedClock | None) -> None:
        """Perps: the engine reads the account (the margin balance moves with the mark at every tick) and its
        positions at this fixed point of the step, and the funding the venue charged in it. Its own loops that read
        them run on the wall clock: the run would depend on the machine's pace."""
        if sim.perp is None:
            return
        charged = sum(1 for i in sim.perp.income if i.income_type == "FUNDING_FEE")
        try:
            await engine.execution.refresh_balances()
            if charged != self._fundings:
                await engine.sync.refresh_funding_paid(now=True)
        except vx.BaseError as exc:
            raise ValidationError(f"the engine could not read the futures account: {exc}") from None
        self._fundings = charged
        await self._settle(engine, sim, clock)

    def _progress(self, engine: EngineLike, recorder: Recorder, simulated_s: float, wall0: float) -> Progress:
        return Progress(
            simulated_s,
            self.plan.duration_s,
            engine_clock.now(),
            len(recorder.trips),
            recorder.fills,
            engine.portfolio.equity(),
            time.monotonic() - wall0,
        )

    # ------------------------------------------------------------ caught up?

    async def _settle(
        self, engine: EngineLike, sim: Simulator, clock: SteppedClock | None, since: tuple[int, int] | None = None
    ) -> None:
        """Wait until the engine has caught up with the venue and every woken loop is asleep again (checked twice
        with the event loop turned in between, so a task spawned by the last one is seen).

        ``since``: what had happened (``_mark``) when the last settle check ended, before a loop was woken. If the
        loop, now asleep again, started no task and the venue had no event meanwhile, and the engine is caught up
        and idle, nothing is left for a turn of the event loop to run: no turn is given (GATE-21)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        clean = spins = 0
        while clean < 2:
            if clock is not None and clock.busy:
                # A woken loop at work (a strategy's decide in its thread): wait for it asleep again, without turning
                # the event loop meanwhile (most of a backtest's CPU went to that); the check below says what is left.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        await clock.idle()
            lagging = self._lagging(engine, sim, clock)
            if not lagging and since is not None and self._mark(engine) == since:
                return
            since = None
            clean = 0 if lagging else clean + 1
            if lagging:
                if engine.failed.is_set():
                    raise ValidationError(f"the engine stopped: {engine.fatal_error}")
                if time.monotonic() > deadline:
                    raise ValidationError(
                        f"the engine did not catch up with the simulator within "
                        f"{SETTLE_TIMEOUT_S:g}s: " + "; ".join(self.differences(engine, sim, clock)[:4])
                    )
            spins += 1
            await asyncio.sleep(0 if spins < 200 else 0.001)

    def _venue_event(self, _event: object) -> None:
        self._happened[0] += 1

    def _engine_event(self, event: object) -> None:
        if not isinstance(event, REPORTS):
            self._happened[1] += 1

    def _lagging(self, engine: EngineLike, sim: Simulator, clock: SteppedClock | None) -> bool:
        """Whether the engine still lags the venue or works (``differences``, its first finding). When neither the
        venue nor the engine has had an event since a check found it caught up, in the same tick, only the work
        under way is checked again: what is compared with the venue (prices, candles, fills, balances, open orders)
        changes only by an event at the venue, by the engine's own work, or at the next tick. Perps compare it
        every time (their account moves with the mark)."""
        happened = (*self._happened, sim.clock.now_ms(), round(self._tick_wall * 1e6))
        if sim.perp is None and happened == self._caught_up_at:
            return bool(self._working(engine, clock) or self._transient(engine))
        lagging = bool(self.differences(engine, sim, clock, first_only=True))
        self._caught_up_at = None if lagging else happened
        return lagging

    @staticmethod
    def _working(engine: EngineLike, clock: SteppedClock | None) -> list[str]:
        """The engine's work under way: woken loops, commands, orders being sent."""
        out: list[str] = []
        if clock is not None and clock.busy:
            out.append(f"loops still working: {', '.join(sorted(clock.busy.values()))}")
        if engine.running_commands:
            out.append(f"{engine.running_commands} command(s) running")
        if engine.execution.in_flight:
            out.append(f"{len(engine.execution.in_flight)} order(s) being sent")
        return out

    def _transient(self, engine: EngineLike) -> list[str]:
        """Tasks running beyond the engine's own at the start."""
        transient = [n for n in engine.tasks.names() if n not in self._baseline_tasks]
        return [f"tasks running: {', '.join(transient[:3])}"] if transient else []

    def differences(
        self, engine: EngineLike, sim: Simulator, clock: SteppedClock | None, first_only: bool = False
    ) -> list[str]:
        """What still differs between the engine and the venue, or is still under way; empty when caught up
        (``first_only``: stop at the first thing found, cheapest checks first)."""
        out = self._working(engine, clock)
        if out and first_only:
            return out
        out += self._transient(engine)
        for symbol in self.symbols:
            venue_price = sim.price(venue_symbol(symbol))
            if engine.portfolio.last.get(symbol) != venue_price:
                out.append(f"{symbol} price: engine {engine.portfolio.last.get(symbol)}, venue {venue_price}")
            elif engine.sync.last_event.get(f"ticker {symbol}", 0.0) < self._tick_wall:
                out.append(f"{symbol}: this tick's ticker not received yet")
        if clock is not None:  # before the first tick the stream has nothing to say: the first decision asks REST
            lagging = self._candles_lagging(engine, sim)
            if lagging:
                engine.runner.candles.catch_up()  # what the streams delivered and no watch has returned yet
                out += self._candles_lagging(engine, sim)
        seen = self.recorder.fills if self.recorder is not None else 0
        if sim.perp is not None:
            return out + self._perp_differences(engine, sim, seen, first_only and bool(out))
        if len(sim.engine.trades) != seen:
            out.append(f"fills: venue {len(sim.engine.trades)}, engine {seen}")
        if out and first_only:
            return out
        for asset, (free, locked) in sim.engine.balances.items():
            mine = engine.portfolio.balances.get(asset)
            if mine is None or mine.free != free or mine.locked != locked:
                out.append(
                    f"{asset} balance: venue {free}/{locked}, engine "
                    f"{'none' if mine is None else f'{mine.free}/{mine.locked}'}"
                )
        if out and first_only:
            return out
        at_venue = {o.client_order_id for o in sim.engine.open_orders()}
        # From the engine's order events (the tracker's own list is a scan of every order ever tracked).
        tracked = self.recorder.open_orders if self.recorder is not None else set()
        if at_venue != tracked:
            out.append(
                f"open orders differ: venue only {sorted(at_venue - tracked)[:2]}, "
                f"engine only {sorted(tracked - at_venue)[:2]}"
            )
        return out

    def _candles_lagging(self, engine: EngineLike, sim: Simulator) -> list[str]:
        """The strategies decide on this tick's candles: the forming one as the venue has it now (its open time, and
        its close: the price of the tick)."""
        out = []
        now_ms = sim.clock.now_ms()
        for (symbol, _), series in engine.runner.candles.series.items():
            newest = series.newest()
            want = (now_ms - now_ms % series.tf_ms, sim.price(venue_symbol(symbol)))
            held = None if newest is None else (newest, series.rows[newest][3])
            if held != want and not self._printed_this_tick(sim, symbol, held, want[0]):
                out.append(f"{symbol} {series.timeframe}: this tick's candle not received yet ({held}, {want})")
        return out

    def _printed_this_tick(self, sim: Simulator, symbol: str, held: tuple[int, Decimal] | None, open_ms: int) -> bool:
        """Whether the engine's forming candle closes at a price the venue printed this tick after its price move:
        a fill's. The kline stream is pushed on the tick, before the fills; a strategy that fills its candles from
        REST after a fill reads the fill's price as the close, and no push comes until the next tick."""
        if held is None or held[0] != open_ms:
            return False
        vs = venue_symbol(symbol)
        return any(t.symbol == vs and t.price == held[1] for t in sim.engine.trades[self._fills_at_tick :])

    def _perp_differences(self, engine: EngineLike, sim: Simulator, seen: int, stop: bool) -> list[str]:
        """Perps (``[venue] market = "usdm"``): the futures account's fills, positions and open orders. The margin
        balance moves with the mark at every tick: the engine reads it at its own loops' turns, not checked here."""
        perp = sim.futures
        if stop:
            return []
        out: list[str] = []
        if len(perp.fills) != seen:
            out.append(f"fills: venue {len(perp.fills)}, engine {seen}")
            return out
        for symbol in self.symbols:
            venue_amt = perp.position(venue_symbol(symbol)).amt
            mine = engine.portfolio.perp_book_amount(symbol)  # the fills' (the venue's is read at its loop's turn)
            if mine != venue_amt:
                out.append(f"{symbol} position: venue {venue_amt}, engine {mine}")
        at_venue = {o.client_order_id for o in perp.open_orders()}
        at_venue |= {a.client_algo_id for a in perp.open_algos()}  # the protective stops wait in the algo service
        tracked = self.recorder.open_orders if self.recorder is not None else set()
        if at_venue != tracked:
            out.append(
                f"open orders differ: venue only {sorted(at_venue - tracked)[:2]}, "
                f"engine only {sorted(tracked - at_venue)[:2]}"
            )
        return out

    # ------------------------------------------------------------ what the report says about its input

    def _source(self) -> dict[str, Any]:
        replay = {
            symbol: {"file": Path(path).name, "sha256": file_digest(Path(path))}
            for symbol, path in sorted(self.plan.replay.items())
        }
        return {"seed": self.plan.seed, "replay": replay or None}

    def _summary(self) -> dict[str, Any]:
        s = self.settings
        cfg = s.validation
        return {
            "symbols": list(self.symbols),
            "quote": s.engine.quote_asset,
            "market": s.venue.market,
            "starting_balance": str(cfg.starting_balance),
            "strategy": s.strategy.model_dump(mode="json"),
            "risk": s.risk.model_dump(mode="json"),
            "criteria": {
                "min_trades": cfg.min_trades,
                "min_win_rate_pct": str(cfg.min_win_rate_pct),
                "min_sharpe": str(cfg.min_sharpe),
                "max_drawdown_pct": str(cfg.max_drawdown_pct),
            },
        }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
