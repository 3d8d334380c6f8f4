"""The emergency path: cancel-all and close-all with no engine running, straight from the config and keys.

The engine may be the thing that is broken. Then ``cockpit cancel-all`` / ``cockpit close-all`` take the data
directory's lock (so no engine starts half-way), latch HALTED through the same transition table, act on the
venue with the same kill-switch code the engine uses (urgent lane, per-symbol report, client ids stored before
each sell), keep trying what failed for ``retry_for_s``, and record the whole of it in the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from engine.kernel.bus import EventBus
from engine.kernel.commands import CancelAll, CloseAll, CommandResult
from engine.kernel.config import Settings
from engine.kernel.errors import EngineError
from engine.kernel.events import CommandAudited, Severity, TradingState
from engine.kernel.ports import VenueLink
from engine.ops.alerts import AlertBook
from engine.ops.incidents import Incidents, store_parts
from engine.safety.killswitch import RETRY_S, KillSwitch, Outcome
from engine.store.datadir import DataDirBusy, DataDirLock
from engine.store.db import Store
from engine.trading.execution import Execution
from engine.trading.orders import OrderTracker
from engine.trading.portfolio import Portfolio
from engine.trading.state import TradingStateMachine
from engine.trading.stats import DailyStats
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
    start = time.perf_counter()
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
        state.move(TradingState.HALTED, command.actor, command.reason or f"{command.name} with no engine running")
        try:
            result = await _act(settings, command, store, bus, alert, retry_for_s)
        except (EngineError, vx.BaseError) as exc:
            result = CommandResult(False, f"HALTED (latched); could not reach the venue: {type(exc).__name__}: {exc}")
        alert(
            Severity.WARN if result.ok else Severity.CRIT,
            "EMERGENCY_" + command.name.upper().replace("-", "_"),
            f"{result.message} (by {command.actor})",
            values=dict(result.details),
        )
        bus.publish(
            CommandAudited(
                command=command.name,
                actor=command.actor,
                reason=command.reason,
                args={"engine": "none"},
                values=dict(command.values),
                ok=result.ok,
                result=result.message,
                duration_ms=(time.perf_counter() - start) * 1000,
                kill_switch=True,
            )
        )
        return result
    finally:
        store.close()
        lock.release()


async def _act(
    settings: Settings, command: CancelAll | CloseAll, store: Store, bus: EventBus, alert: Any, retry_for_s: float
) -> CommandResult:
    cfg = settings.venue
    closing = isinstance(command, CloseAll)
    if cfg.exchange == "sim":
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
    venue = Venue(
        cfg.exchange,
        rest_url=cfg.rest_url,
        ws_url=cfg.ws_url,
        api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
        api_secret=cfg.api_secret.get_secret_value() if cfg.api_secret else None,
        timeout_ms=cfg.timeout_ms,
        sandbox=cfg.rest_url is None and settings.engine.mode == "paper",
    )
    try:
        symbols = cfg.symbols
        link = VenueLink(bus.publish, alert)
        link.venue, link.label, link.connected = venue, cfg.exchange, True
        tracker = OrderTracker(bus)
        tracker.load(store.orders())
        portfolio = Portfolio(symbols, settings.engine.quote_asset)
        execution = Execution(
            settings.risk,
            settings.engine.mode,
            symbols,
            link,
            tracker,
            portfolio,
            DailyStats(),
            bus.publish,
            alert,
            batch=store.batch,
            durable=store.flush,
        )
        kill = KillSwitch(symbols, link, execution, tracker, portfolio)
        deadline = time.monotonic() + retry_for_s
        attempt = 0
        while True:
            try:
                if not venue.ex.markets:
                    await venue.load_markets()
                    unknown = [s for s in symbols if s not in venue.ex.markets]
                    if unknown:
                        raise EngineError(f"[venue] symbols {unknown} are not traded on {cfg.exchange}; fix the config")
                    for symbol in symbols:
                        portfolio.dust[symbol] = venue.min_amount(symbol)
                if closing:  # prices only matter for the venue's minimum notional of a sale
                    for symbol in symbols:
                        last = dec((await venue.fetch_ticker(symbol)).get("last"))
                        if last is not None:
                            portfolio.set_price(symbol, last)
                outcome = await (kill.close_all(command.actor) if closing else kill.cancel_all())
            except vx.BaseError as exc:
                outcome = Outcome(still_open=None, failures={"venue": f"{type(exc).__name__}: {exc}"[:200]})
            if outcome.done or time.monotonic() >= deadline:
                break
            delay = RETRY_S[min(attempt, len(RETRY_S) - 1)]
            attempt += 1
            log.warning("%s incomplete (%s); retry %d in %gs", command.name, outcome.sentence(closing), attempt, delay)
            await asyncio.sleep(delay)
        message = "HALTED (latched); " + outcome.sentence(closing) + "; no engine running: acted on the venue directly"
        if attempt:
            message += f" ({attempt} retr{'y' if attempt == 1 else 'ies'})"
        return CommandResult(outcome.done, message, outcome.details())
    finally:
        await venue.close()
