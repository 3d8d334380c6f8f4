"""The emergency path: cancel-all and close-all with no engine running, straight from the config and keys.

The engine may be the thing that is broken. Then ``cockpit cancel-all`` / ``cockpit close-all`` take the data
directory's lock (so no engine starts half-way) and build the engine's own kill switch (``build_kill_switch``):
the same transition table latches HALTED, the same tiers act on the venue's urgent lane with a per-symbol report
and client ids stored before each sell, the same retry loop keeps trying what failed for ``retry_for_s``, and the
same audit record goes to the trail.

The store may be broken too (damaged, another program's file, not writable): then the same kill switch runs on a bus
that writes nothing, so the venue is still acted on from the config and keys, not a byte goes to that file, and the
result says that nothing could be recorded (the halt is not latched for the next start) and why.
"""

from __future__ import annotations

import logging
import time

from engine.core.build import build_books, build_kill_switch
from engine.kernel.bus import EventBus
from engine.kernel.commands import CancelAll, CloseAll, ClosePosition, Command, CommandResult, audit_record
from engine.kernel.config import Settings
from engine.kernel.errors import EngineError, StoreError
from engine.kernel.events import Order, Severity, TradingState
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
        try:
            store = Store.in_dir(settings.engine.data_dir)
        except StoreError as exc:
            # Not cockpit's, damaged, or not writable: the venue is acted on all the same, with nothing written to
            # that file (the lock is held meanwhile: no engine starts half-way).
            return await _act_unrecorded(settings, command, retry_for_s, exc)
        try:
            return await _act_recorded(settings, command, retry_for_s, store)
        finally:
            store.close()
    finally:
        lock.release()


async def _act_recorded(
    settings: Settings, command: CancelAll | CloseAll, retry_for_s: float, store: Store
) -> CommandResult:
    """The usual case: the store latches HALTED, stores each sell before it leaves, and keeps the audit record."""
    started = time.perf_counter()
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
        result = await _act(
            settings, command, bus, state, alert, retry_for_s, store.orders(), Durability(store.batch, store.flush)
        )
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


async def _act_unrecorded(
    settings: Settings, command: CancelAll | CloseAll, retry_for_s: float, why: StoreError
) -> CommandResult:
    """No usable store: the same kill switch on a bus nothing is written from (the halt, the orders, the audit
    record stay in memory), and a result that says nothing could be recorded and why. With the built-in simulator
    there is nothing to act on either: the store's error is raised, as for any other command."""
    if settings.venue.exchange == "sim":
        raise why
    bus = EventBus()  # no store handler: not a byte goes to the file
    book = AlertBook(settings.alerts, bus.publish)
    state = TradingStateMachine(bus.publish, book.raise_alert)
    unrecorded = (
        f"NOTHING could be recorded in the store, so the halt is not latched for the next start and this action "
        f"is in no audit trail: {why}"
    )
    try:
        result = await _act(settings, command, bus, state, book.raise_alert, retry_for_s, [], Durability(), prefix="")
    except (EngineError, vx.BaseError) as exc:
        result = CommandResult(False, f"could not reach the venue: {type(exc).__name__}: {exc}")
    return CommandResult(result.ok, f"{result.message}. {unrecorded}", {**result.details, "recorded": False})


async def _no_engine_to_submit(command: Command) -> CommandResult:
    """No engine runs here: a part that would submit a command is refused."""
    return CommandResult(False, f"{command.name}: no engine is running")


async def _act(
    settings: Settings,
    command: CancelAll | CloseAll,
    bus: EventBus,
    state: TradingStateMachine,
    alert: AlertPort,
    retry_for_s: float,
    orders: list[Order],
    durability: Durability,
    prefix: str = "HALTED (latched); ",
) -> CommandResult:
    """The kill switch's tiers at the venue, on the orders known so far and with the store's ``durability`` (none
    when there is no store to write); ``prefix`` says whether the halt is latched."""
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
    tracker.load(orders)
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

    kill = build_kill_switch(settings, settings.engine.mode, books, state, link, ports, durability, prepare=ready)
    try:
        await kill.tiers.run(command)
        await kill.tiers.settle(retry_for_s)
        outcome = kill.tiers.last_outcome
        retries = kill.tiers.passes - 1
        if outcome is None:
            return CommandResult(False, prefix + "the kill switch made no pass at the venue")
        message = prefix + outcome.sentence(closing) + "; no engine running: acted on the venue directly"
        if retries:
            message += f" ({retries} retr{'y' if retries == 1 else 'ies'})"
        return CommandResult(outcome.done, message, outcome.details())
    finally:
        await tasks.close()
        await venue.close()
