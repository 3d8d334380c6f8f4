"""Wiring: the engine's parts built once, in order, each given the ports and books it uses and nothing more.

``build_kill_switch`` is the one assembly of the order path and the kill switch: the engine uses it, and so does the
no-engine emergency path (``engine.core.emergency``), so a cancel-all with no engine running goes through the very
same execution, tiers, retries and reports.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from engine.kernel.config import Settings
from engine.kernel.events import DayStatsChanged
from engine.kernel.ports import Durability, Ports, VenueLink
from engine.ops.logfiles import LogFiles
from engine.ops.notify import Notifier
from engine.ops.observe import Metrics
from engine.safety.killswitch import KillSwitch, Prepare, Tiers
from engine.safety.monitors import Monitors, Watched
from engine.safety.stops import StopLosses
from engine.strategies import load_strategies
from engine.strategies.runner import StrategyRunner
from engine.trading.books import Books
from engine.trading.execution import Execution
from engine.trading.holdings import Holdings
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio
from engine.trading.protect import VenueStops
from engine.trading.state import TradingStateMachine
from engine.trading.stats import DailyStats
from engine.trading.sync import VenueSync
from engine.venue.health import VenueHealth


@dataclass(frozen=True)
class KillSwitchParts:
    """The order path and the kill switch's tiers on it."""

    execution: Execution
    kill_switch: KillSwitch
    tiers: Tiers
    venue_stops: VenueStops


def build_books(settings: Settings, ports: Ports, tracker: OrderTracker) -> Books:
    """The books: orders, portfolio, the day's statistics (their rollover published), stops and drawdown."""
    symbols = settings.venue.symbols
    return Books(
        symbols=symbols,
        tracker=tracker,
        portfolio=Portfolio(symbols, settings.engine.quote_asset, market=settings.venue.market),
        stats=DailyStats(on_rollover=lambda day: ports.publish(DayStatsChanged(day.to_dict()))),
    )


def build_kill_switch(
    settings: Settings,
    mode: str,
    books: Books,
    state: TradingStateMachine,
    link: VenueLink,
    ports: Ports,
    durability: Durability,
    prepare: Prepare | None = None,
) -> KillSwitchParts:
    """The order path (checked against the trading state) and the kill switch's tiers on it; ``prepare`` readies
    the venue before each pass where no sync does (the no-engine path)."""
    execution = Execution(settings.risk, mode, books, link, ports, state.order_refusal, durability)
    venue_stops = VenueStops(settings.risk, books, link, execution, ports)
    kill_switch = KillSwitch(books, link, execution, venue_stops)
    return KillSwitchParts(execution, kill_switch, Tiers(kill_switch, state, ports, prepare), venue_stops)


@dataclass(frozen=True)
class Parts:
    """Everything the engine is made of, built by ``build_parts``."""

    books: Books
    execution: Execution
    kill_switch: KillSwitch
    tiers: Tiers
    venue_health: VenueHealth
    holdings: Holdings
    sync: VenueSync
    monitors: Monitors
    runner: StrategyRunner
    stop_losses: StopLosses
    venue_stops: VenueStops
    metrics: Metrics
    notifier: Notifier
    log_files: LogFiles


def build_parts(
    settings: Settings,
    mode: str,
    *,
    books: Books,
    state: TradingStateMachine,
    link: VenueLink,
    ports: Ports,
    durability: Durability,
    quiet: Callable[[], AbstractAsyncContextManager[Any]],
) -> Parts:
    """Build the parts in the order they need each other; nothing reaches for a part built later."""
    mon = settings.monitors
    kill = build_kill_switch(settings, mode, books, state, link, ports, durability)
    venue_health = VenueHealth(mon.rest_errors_window_s)
    holdings = Holdings(
        books.portfolio, books.tracker, mon.mismatch_warn_pct, mon.mismatch_halt_pct, ports.publish, ports.alert
    )
    sync = VenueSync(settings.venue, mon, books, link, kill.execution, holdings, ports, guard=quiet)
    monitors = Monitors(settings.risk, mon, books, Watched(state, link, venue_health, sync, holdings), ports)
    loaded = load_strategies(settings.strategy, books.symbols)
    alerts = settings.alerts
    return Parts(
        books=books,
        execution=kill.execution,
        kill_switch=kill.kill_switch,
        tiers=kill.tiers,
        venue_health=venue_health,
        holdings=holdings,
        sync=sync,
        monitors=monitors,
        runner=StrategyRunner(settings.strategy, loaded.strategies, books, state, link, ports, loaded.failures),
        stop_losses=StopLosses(books, state, ports, kill.venue_stops),
        venue_stops=kill.venue_stops,
        metrics=Metrics(),
        notifier=Notifier(alerts.notify, alerts.notify_retries, ports.publish, ports.alert, title=f"cockpit {mode}"),
        log_files=LogFiles(settings.engine.data_dir, alerts.log_max_bytes, alerts.log_backups),
    )


__all__ = ["KillSwitchParts", "Parts", "build_books", "build_kill_switch", "build_parts"]
