"""Runs the strategies: samples prices, keeps their candles, asks each enabled strategy for intents, submits them.

Each intent becomes a command (actor ``strategy:<name>``) through the one ``execute``, so a strategy's order
passes the same trading-state table, risk checks and audit as an operator's. A strategy that loses
``max_consecutive_losses`` round trips in a row is stood down for ``cooldown_s``; one that raises, returns
garbage or takes longer than its step is disabled with ``STRATEGY_FAILED`` and looked at again after
``re_enable_check_hours`` (runbook 003 "Strategy Underperforming"); the engine and the other strategies go on.
The operator can disable and enable any strategy by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.kernel import clock as engine_clock
from engine.kernel.commands import CancelOrder, Command, ExitPosition, Permit, PlaceOrder
from engine.kernel.config import StrategyConfig
from engine.kernel.events import Event, Order, Position, RoundTripClosed, Severity, StrategyGuardChanged, utcnow
from engine.kernel.ports import Ports, VenueLink
from engine.strategies.api import Candles, Intent, Market, Strategy, StrategyStats
from engine.strategies.candles import CandleFeed
from engine.strategies.streak import FAILURE, LossStreakGuard
from engine.trading.books import Books
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio
from engine.trading.state import TradingStateMachine

log = logging.getLogger(__name__)

HISTORY = 500
PREFIX = "strategy:"
# A step shorter than this is given this long before it counts as overrun: on a loaded machine a thread waits for the
# interpreter's lock for a few of its 5 ms switches, which is not the strategy's doing.
MIN_STEP_S = 0.25
# How much longer than its step the engine waits for a strategy's answer (the thread's start, the loop's latency);
# past it the strategy counts as overrun even if it never returns.
WAIT_GRACE_S = 1.0


def actor_of(name: str) -> str:
    return PREFIX + name


def strategy_of(origin: str | None) -> str | None:
    """The strategy an order's origin names (``strategy:ladder``, or ``ladder`` from older stores)."""
    if origin is None:
        return None
    return origin.removeprefix(PREFIX)


def records(trips: Iterable[tuple[str | None, Decimal]], names: Iterable[str]) -> dict[str, StrategyStats]:
    """The record of each of ``names`` from closed round trips (who opened each, its PnL), oldest first."""
    stats = {name: StrategyStats() for name in names}
    for opened_by, pnl in trips:
        name = strategy_of(opened_by)
        if name in stats:
            stats[name] = stats[name].after(pnl)
    return stats


class StrategyFailed(Exception):
    """A strategy's step went wrong in its own code: it raised, overran, or answered something not intents."""


@dataclass(frozen=True)
class _View:
    """The snapshot one strategy gets for one step (``engine.strategies.api.View``): copied before ``decide`` runs
    in its worker thread, so the engine's books never change under it."""

    now: datetime
    stats: StrategyStats
    _candles: dict[str, Candles]
    _closes: dict[str, tuple[Decimal, ...]]
    _last: dict[str, Decimal]
    _positions: dict[str, Position]
    _orders: dict[str, tuple[Order, ...]]
    _protection: dict[str, tuple[Order, ...]]
    _free: dict[str, Decimal]
    _markets: dict[str, Market]

    def candles(self, symbol: str) -> Candles:
        return self._candles.get(symbol) or Candles(())

    def closes(self, symbol: str) -> Sequence[Decimal]:
        return self._closes.get(symbol, ())

    def last(self, symbol: str) -> Decimal | None:
        return self._last.get(symbol)

    def position(self, symbol: str) -> Position | None:
        return self._positions.get(symbol)

    def open_orders(self, symbol: str) -> Sequence[Order]:
        return self._orders.get(symbol, ())

    def protection(self, symbol: str) -> Sequence[Order]:
        return self._protection.get(symbol, ())

    def free(self, asset: str) -> Decimal:
        return self._free.get(asset, Decimal(0))

    def market(self, symbol: str) -> Market:
        return self._markets.get(symbol, Market())


class _Overran(BaseException):
    """Raised inside a backtest's ``decide`` at its deadline (a BaseException: a strategy's ``except Exception``
    does not swallow it)."""


def _decide_under_alarm(strategy: Strategy, view: Any, timeout_s: float) -> tuple[Any, float]:
    """``decide`` on the engine's own thread under a deadline of ``timeout_s`` (wall), kept by the process's interval
    timer: at the deadline ``SIGALRM`` raises inside the strategy's code (its Python, or as soon as a call into C
    returns) and the step is over (TimeoutError). Only on a lockstep clock, in the main thread: a backtest, where
    nothing else may run meanwhile anyway, and where handing each step to a thread and back through the event loop
    (its wake-up pipe, a callback, the task's wake) was a tenth of the run's wall time (decision GATE-27)."""

    def overran(_signum: int, _frame: object) -> None:
        raise _Overran

    before = signal.signal(signal.SIGALRM, overran)
    started = time.perf_counter()
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            intents = strategy.decide(view)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Overran:
        raise TimeoutError from None
    finally:
        signal.signal(signal.SIGALRM, before)
    return intents, time.perf_counter() - started


class _Worker:
    """One strategy's daemon thread, kept between steps: starting a thread per step cost more than a template's
    decide (a backtest steps tens of thousands of times). A step that never returns holds this thread only; the
    runner's busy set keeps the next step from queueing behind it."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def run(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def close(self) -> None:
        self._jobs.put(None)  # ends the thread after the job it is on (if any)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()


class StrategyRunner:
    """Steps every strategy each ``interval_s`` while the venue is connected and the state permits orders."""

    def __init__(
        self,
        cfg: StrategyConfig,
        strategies: list[Strategy],
        books: Books,
        state: TradingStateMachine,
        link: VenueLink,
        ports: Ports,
        failures: dict[str, str] | None = None,
    ) -> None:
        self.cfg = cfg
        symbols = books.symbols
        self.portfolio: Portfolio = books.portfolio
        self.tracker: OrderTracker = books.tracker
        self.state = state
        self.link = link
        self.submit = ports.submit
        self.publish = ports.publish
        self.alert = ports.alert
        self.strategies = {s.name: s for s in strategies}
        # Strategies named in [strategy] run that could not be built: alerted at start, listed by status().
        self.failures = dict(failures or {})
        self.guard = LossStreakGuard(cfg.max_consecutive_losses, cfg.cooldown_s, cfg.re_enable_check_hours * 3600)
        self.stats: dict[str, StrategyStats] = {name: StrategyStats() for name in self.strategies}
        self.closes: dict[str, deque[Decimal]] = {s: deque(maxlen=HISTORY) for s in symbols}
        self.candles = CandleFeed(link, ports.alert)
        for strategy in strategies:
            if strategy.timeframe is not None:
                for symbol in strategy.symbols:
                    self.candles.want(symbol, strategy.timeframe, strategy.history)
        self._exiting: set[str] = set()
        self._failed_down: set[str] = set()  # disabled for a failure, to say so when a check lets it run again
        self._busy: set[str] = set()  # strategies whose decide is running in its thread now
        # Intents refused this step and the step before, by (strategy, kind, why) -> symbols: a refusal is logged
        # when it first appears, not at every step for every symbol (at 50 symbols with max_concurrent_positions
        # reached, the ladder's refused buys made ~28 lines a second).
        self._refused: dict[tuple[str, str, str], list[str]] = {}
        self._refused_before: set[tuple[str, str, str]] = set()
        self._workers: dict[str, _Worker] = {}  # each strategy's own thread
        self.steps = 0  # steps taken (a step the state or the link held back is not one)
        self._stepping = asyncio.Lock()

    def start(self) -> None:
        """Alert what could not be loaded, and start the candle streams the strategies read."""
        for name, error in self.failures.items():
            self.alert(Severity.WARN, "STRATEGY_LOAD_FAILED", f"strategy {name} not loaded: {error}")
        self.candles.start()

    async def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        await self.candles.close()

    def restore_guard(self, saved: dict[str, Any]) -> None:
        """The guard as it was at stop, under the current config's limits."""
        cfg = self.cfg
        self.guard = LossStreakGuard.from_dict(
            saved, cfg.max_consecutive_losses, cfg.cooldown_s, cfg.re_enable_check_hours * 3600
        )
        self._failed_down = {n for n, s in self.guard.states.items() if s.disabled_by == FAILURE}

    def restore_stats(self, trips: Iterable[tuple[str | None, Decimal]]) -> None:
        """Each strategy's record from the stored round trips (who opened it, its PnL), oldest first: a restart
        continues it (decision STR-09)."""
        self.stats = records(trips, self.strategies)

    def status(self) -> list[dict[str, Any]]:
        now = utcnow()
        out = []
        for name, strategy in self.strategies.items():
            stats = self.stats.get(name, StrategyStats())
            out.append(
                self.guard.status(name, now)
                | {
                    "symbols": list(strategy.symbols),
                    "timeframe": strategy.timeframe,
                    "round_trips": stats.round_trips,
                    "wins": stats.wins,
                    "losses": stats.losses,
                    "realised_pnl": stats.realised_pnl,
                    "win_rate": stats.win_rate,
                }
            )
        return out

    def set_enabled(self, name: str, enabled: bool, reason: str) -> str | None:
        """Operator control; returns an error sentence for an unknown name."""
        if name not in self.strategies:
            return f"no strategy {name!r}; running: {', '.join(self.strategies) or 'none'}"
        if enabled:
            self.guard.enable(name)
            self._failed_down.discard(name)
        else:
            self.guard.disable(name, utcnow(), reason)
        self.publish(StrategyGuardChanged(self.guard.to_dict()))
        return None

    def on_event(self, event: Event) -> None:
        """Inline bus handler: count each closed round trip against the strategy that opened it."""
        if not isinstance(event, RoundTripClosed):
            return
        name = strategy_of(event.opened_by)
        if name not in self.strategies:
            return
        self.stats[name] = self.stats.get(name, StrategyStats()).after(event.pnl)
        if self.guard.record(name, event.pnl, event.closed_at):
            self.alert(
                Severity.WARN,
                "STRATEGY_DISABLED",
                f"{name} lost {self.cfg.max_consecutive_losses} round trips in a row; "
                f"disabled for {self.cfg.cooldown_s:g}s",
            )
        self.publish(StrategyGuardChanged(self.guard.to_dict()))

    async def step(self) -> None:
        # One step at a time: a step asked for while another runs (a backtest's, a test's, beside the periodic one)
        # waits for it, or it would find each strategy still busy and disable it as overrun.
        async with self._stepping:
            if not self.link.connected or not self.state.permits(Permit.REDUCE):
                return
            self.steps += 1
            self._refused = {}
            try:
                await self._step()
            finally:
                self._say_refusals()

    def _say_refusals(self) -> None:
        """Log each refusal that is new since the last step once, with the symbols it refused."""
        for (name, kind, why), symbols in self._refused.items():
            if (name, kind, why) not in self._refused_before:
                shown = ", ".join(symbols[:5]) + (f" and {len(symbols) - 5} more" if len(symbols) > 5 else "")
                log.info("%s: %s not done on %d symbol(s) (%s): %s", name, kind, len(symbols), shown, why)
        self._refused_before = set(self._refused)

    async def _step(self) -> None:
        for symbol, closes in self.closes.items():
            last = self.portfolio.last.get(symbol)
            if last is not None:
                closes.append(last)
        now = utcnow()
        for name, strategy in self.strategies.items():
            if not self._may_run(name, now):
                continue
            if strategy.timeframe is not None and not await self._candles_ready(strategy):
                continue
            try:
                intents = await self._decide(strategy, now)
            except StrategyFailed as exc:
                self._failed(name, str(exc))
                continue
            for intent in intents:
                if not self.state.permits(Permit.REDUCE):
                    return
                await self.execute(name, intent)

    def _may_run(self, name: str, now: datetime) -> bool:
        enabled = self.guard.is_enabled(name, now)
        if enabled and name in self._failed_down:
            self._failed_down.discard(name)
            self.alert(
                Severity.INFO,
                "STRATEGY_ENABLED",
                f"{name} runs again: checked after {self.cfg.re_enable_check_hours:g}h, its stats allow it",
            )
        if self.guard.changed:  # a check ended a stand-down or put it off: saved, for a restart to go on from
            self.guard.changed = False
            self.publish(StrategyGuardChanged(self.guard.to_dict()))
        return enabled

    async def _candles_ready(self, strategy: Strategy) -> bool:
        assert strategy.timeframe is not None
        for symbol in strategy.symbols:
            if not await self.candles.ready(symbol, strategy.timeframe):
                return False
        return True

    def view(self, strategy: Strategy, now: datetime) -> _View:
        """The snapshot ``strategy`` decides on now."""
        name, symbols = strategy.name, strategy.symbols
        venue = self.link.venue
        markets = {}
        if venue is not None and venue.markets_loaded:
            markets = {
                s: Market(venue.min_amount(s), venue.min_cost(s), venue.amount_step(s))
                for s in symbols
                if s in venue.markets
            }
        positions = {p.symbol: p for p in self.portfolio.positions() if p.symbol in symbols}
        orders: dict[str, list[Order]] = {s: [] for s in symbols}
        protection: dict[str, list[Order]] = {s: [] for s in symbols}
        for order in self.tracker.open_orders():
            if order.symbol not in orders:
                continue
            # The stop (and take-profit) the engine rests for a position are the position's, whoever opened it: not
            # an order of the strategy's still working (decision STR-10).
            if order.is_protective:
                protection[order.symbol].append(order)
            elif strategy_of(order.origin) == name:
                orders[order.symbol].append(order)
        assets = set(self.portfolio.balances) | {a for s in symbols for a in s.split("/")}
        timeframe = strategy.timeframe
        return _View(
            now=now,
            stats=self.stats.get(name, StrategyStats()),
            _candles={s: self.candles.candles(s, timeframe) for s in symbols} if timeframe else {},
            _closes={s: tuple(self.closes.get(s, ())) for s in symbols},
            _last={s: p for s in symbols if (p := self.portfolio.last.get(s)) is not None},
            _positions=positions,
            _orders={s: tuple(o) for s, o in orders.items()},
            _protection={s: tuple(o) for s, o in protection.items()},
            _free={a: self.portfolio.free(a) for a in assets},
            _markets=markets,
        )

    async def _decide(self, strategy: Strategy, now: datetime) -> list[Intent]:
        """``strategy.decide`` in a worker thread, under a deadline of one step; its own failures as StrategyFailed."""
        if strategy.name in self._busy:
            raise StrategyFailed("is still running a step that overran")
        view = self.view(strategy, now)
        budget = max(self.cfg.interval_s, MIN_STEP_S)
        try:
            # The wait allows for the thread's start and the loop's own latency; the strategy's time is its own.
            # A backtest too (decision GATE-19): a decide that never returns is disabled, and the run goes on.
            if engine_clock.current().lockstep and threading.current_thread() is threading.main_thread():
                intents, took = _decide_under_alarm(strategy, view, budget + WAIT_GRACE_S)  # a backtest: GATE-27
            else:
                async with asyncio.timeout(budget + WAIT_GRACE_S):  # (not wait_for: its future costs a loop turn)
                    intents, took = await self._in_thread(strategy, view)
        except TimeoutError:
            raise StrategyFailed(f"took longer than its step ({budget:g}s)") from None
        except Exception as exc:  # the plugin boundary: a strategy's own code may fail in any way
            log.warning("strategy %s raised", strategy.name, exc_info=exc)
            raise StrategyFailed(f"raised {type(exc).__name__}: {exc}") from None
        if took > budget:
            raise StrategyFailed(f"took {took:.2f}s, longer than its step ({budget:g}s)")
        if not isinstance(intents, list) or not all(isinstance(i, Intent) for i in intents):
            raise StrategyFailed(f"decide returned {type(intents).__name__}, not a list of Intent")
        strange = [i.symbol for i in intents if i.symbol not in strategy.symbols]
        if strange:
            raise StrategyFailed(f"asked for {', '.join(strange)}, which it does not trade")
        return intents

    def _in_thread(self, strategy: Strategy, view: _View) -> asyncio.Future[Any]:
        """``decide`` on a daemon thread of its own: one that never returns holds that thread only, never the
        engine's shared executor (snapshots, queries) nor the process's exit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if not future.done():  # the deadline may have cancelled it
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

        def work() -> None:
            started = time.perf_counter()
            try:
                outcome: tuple[bool, Any] = (True, (strategy.decide(view), time.perf_counter() - started))
            except Exception as exc:  # the plugin boundary: handed to the engine's loop, which disables it
                outcome = (False, exc)
            finally:
                # Out of the strategy's code (before the loop hears of it: the next step may come at once).
                self._busy.discard(strategy.name)
            with contextlib.suppress(RuntimeError):  # the loop closed while it overran: nobody to tell
                loop.call_soon_threadsafe(settle, *outcome)

        self._busy.add(strategy.name)
        worker = self._workers.get(strategy.name)
        if worker is None:
            worker = self._workers[strategy.name] = _Worker(f"strategy {strategy.name}")
        worker.run(work)
        return future

    def _failed(self, name: str, why: str) -> None:
        """Disable a strategy whose own code failed; the engine and the other strategies go on."""
        self.guard.fail(name, utcnow(), why[:300])
        self._failed_down.add(name)
        self.alert(
            Severity.WARN,
            "STRATEGY_FAILED",
            f"strategy {name} {why[:300]}; disabled, checked again in {self.cfg.re_enable_check_hours:g}h "
            '(runbook 003 "Strategy Underperforming"); the engine and other strategies go on',
        )
        self.publish(StrategyGuardChanged(self.guard.to_dict()))

    async def execute(self, name: str, intent: Intent) -> None:
        command = self._command(name, intent)
        if command is None:
            return
        if isinstance(command, ExitPosition):
            if command.symbol in self._exiting:
                return
            self._exiting.add(command.symbol)
        try:
            result = await self.submit(command)
        finally:
            if isinstance(command, ExitPosition):
                self._exiting.discard(command.symbol)
        if not result.ok:
            self._refused.setdefault((name, intent.kind, result.message), []).append(intent.symbol)

    def _command(self, name: str, intent: Intent) -> Command | None:
        actor = actor_of(name)
        if intent.kind == "cancel":
            return CancelOrder(actor=actor, reason=intent.reason, client_id=intent.client_id or "")
        if intent.kind == "exit":
            return ExitPosition(actor=actor, reason=intent.reason, symbol=intent.symbol)
        price = intent.price
        ref = price if price is not None else self.portfolio.last.get(intent.symbol)
        amount = intent.amount
        if amount is None and intent.quote_amount is not None and ref:
            amount = intent.quote_amount / ref
        if amount is None:
            log.warning("%s intent without a size ignored: %s", name, intent)
            return None
        return PlaceOrder(
            actor=actor,
            reason=intent.reason,
            symbol=intent.symbol,
            side=intent.kind,
            type="market" if price is None else "limit",
            amount=amount,
            price=price,
            stop_loss=intent.stop_loss,
            take_profit=intent.take_profit,
        )
