"""The emergency path: cancel-all and close-all with no engine running, straight from the config and keys.

The engine may be the thing that is broken. Then ``cockpit cancel-all`` / ``cockpit close-all`` take the data
directory's lock (so no engine starts half-way) and build the engine's own kill switch (``build_kill_switch``):
the same transition table latches HALTED, the same tiers act on the venue's urgent lane with a per-symbol report
and client ids stored before each sell, the same retry loop keeps trying what failed for ``retry_for_s``, and the
same audit record goes to the trail.
"""

from __future__ import annotations

import logging
import time

from engine.core.build import build_books, build_kill_switch
from engine.kernel.bus import EventBus
from engine.kernel.commands import CancelAll, CloseAll, ClosePosition, Command, CommandResult, audit_record
from engine.kernel.config import Settings
from engine.kernel.errors import EngineError
from engine.kernel.events import Severity, TradingState
from engine.kernel.ports import AlertPort, Durability, Ports, VenueLink
from engine.kernel.tasks import TaskGroup
from engine.ops.alerts import AlertBook
from engine.ops.incidents import Incidents, store_parts
from engine.store.datadir import DataDirBusy, DataDirLock
from engine.store.db import Store
from engine.trading.orders import OrderTracker
from engine.trading.state import TradingStateMachine
from engine.venue import errors as vx
from engine.venue.adapter import Venue, dec

log = logging.getLogger(__name__)


async def act_without_engine(
    settings: Settings, command: CancelAll | CloseAll, retry_for_s: float = 60.0
) -> CommandResult:
    """Carry out a cancel-all or close-all on the venue directly; the result says what was done and what not."""
    lock = DataDirLock(settings.engine.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        return CommandResult(False, f"an engine started meanwhile ({exc}); run the command again to reach it")
    try:
        store = Store.in_dir(settings.engine.data_dir)
    except Exception:
        lock.release()  # a store that is not cockpit's (or cannot be written): no engine is kept out for nothing
        raise
    started = time.perf_counter()
    try:
        bus = EventBus()
        bus.add_handler(store.handle)
        book = AlertBook(settings.alerts, bus.publish)
        book.restore(store.max_alert_id(), [])
        alert = book.raise_alert
        state = TradingStateMachine(bus.publish, alert)
        state.restore(*store.trading_state())
        incidents = Incidents(settings.engine.data_dir, bus.publish, lambda: store_parts(store), spawn=None)
        last = store.incidents(limit=1)
        incidents.restore(
            next((r for r in last if not r["recovered_at"]), None),
            max((r["id"] for r in last), default=0),
            state.state,
            state.info.get("ts"),
        )
        bus.add_handler(incidents.on_event)  # the trip opens an incident with a snapshot, as in the engine
        try:
            result = await _act(settings, command, store, bus, state, alert, retry_for_s)
        except (EngineError, vx.BaseError) as exc:
            result = CommandResult(False, f"HALTED (latched); could not reach the venue: {type(exc).__name__}: {exc}")
        alert(
            Severity.WARN if result.ok else Severity.CRIT,
            "EMERGENCY_" + command.name.upper().replace("-", "_"),
            f"{result.message} (by {command.actor})",
            values=dict(result.details),
        )
        bus.publish(audit_record(command, result, started, args={"engine": "none"}))
        return result
    finally:
        store.close()
        lock.release()


async def _no_engine_to_submit(command: Command) -> CommandResult:
    """No engine runs here: a part that would submit a command is refused."""
    return CommandResult(False, f"{command.name}: no engine is running")


async def _act(
    settings: Settings,
    command: CancelAll | CloseAll,
    store: Store,
    bus: EventBus,
    state: TradingStateMachine,
    alert: AlertPort,
    retry_for_s: float,
) -> CommandResult:
    cfg = settings.venue
    closing = isinstance(command, CloseAll)
    if cfg.exchange == "sim":
        state.move(TradingState.HALTED, command.actor, command.reason or f"{command.name} with no engine running")
        return CommandResult(
            True,
            (
                "HALTED (latched for the next start); canceled 0 order(s); "
                + ("closed 0 position(s); " if closing else "")
                + "the venue is the built-in simulator, which exists only inside a running engine: "
                "no order or position is held anywhere"
            ),
            {"canceled": 0, "closed": []},
        )
    tasks = TaskGroup(lambda name, exc: log.error("%s failed", name, exc_info=exc))
    ports = Ports(bus.publish, alert, _no_engine_to_submit, tasks.spawn)
    venue = Venue.from_settings(cfg, settings.engine.mode)
    link = VenueLink(bus.publish, alert)
    link.venue, link.label, link.connected = venue, cfg.exchange, True
    tracker = OrderTracker(bus)
    tracker.load(store.orders())
    books = build_books(settings, ports, tracker)

    async def ready(_: CancelAll | CloseAll | ClosePosition) -> None:
        """What the engine's sync would have done: the markets and filters, and for a close the prices (the
        venue's minimum notional of a sale depends on them)."""
        if not venue.markets_loaded:
            await venue.require_markets(books.symbols)
            for symbol in books.symbols:
                books.portfolio.dust[symbol] = venue.min_amount(symbol)
        if closing:
            for symbol in books.symbols:
                last = dec((await venue.probe_ticker(symbol)).get("last"))
                if last is not None:
                    books.portfolio.set_price(symbol, last)

    durability = Durability(store.batch, store.flush)
    kill = build_kill_switch(settings, settings.engine.mode, books, state, link, ports, durability, prepare=ready)
    try:
        await kill.tiers.run(command)
        await kill.tiers.settle(retry_for_s)
        outcome = kill.tiers.last_outcome
        retries = kill.tiers.passes - 1
        if outcome is None:
            return CommandResult(False, "HALTED (latched); the kill switch made no pass at the venue")
        message = "HALTED (latched); " + outcome.sentence(closing) + "; no engine running: acted on the venue directly"
        if retries:
            message += f" ({retries} retr{'y' if retries == 1 else 'ies'})"
        return CommandResult(outcome.done, message, outcome.details())
    finally:
        await tasks.close()
        await venue.close()
