"""The engine's one API, in three parts, used by every front end in process and out.

- **Queries**: typed, read-only views (``QUERIES``): state and who set it, positions, balances, open orders,
  monitors, alerts, fills, audit and incidents (paged), the last reconciliation and checklist run, the strategies,
  the configuration without secrets. What they read from the store is read on a connection of their own, in a
  thread: never on the event loop that runs the engine and the screen.
- **Commands**: the engine's one ``execute``, with the actor given by the transport (the local socket's peer, the
  remote API's token name), never by the client.
- **Events**: the journal (``engine.api.journal``): one ordered stream with sequence numbers; a client that comes
  back with the last number it saw gets what it missed.

The transports (``engine.api.server``) take a ``Service`` through the ``Backend`` protocol they declare.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api import wire
from engine.api.inbox import NEVER_EXPIRE, build_command
from engine.api.journal import Journal
from engine.kernel.bus import Subscription
from engine.kernel.commands import Command, CommandResult
from engine.kernel.config import CHAT_SECRET_KEYS
from engine.kernel.events import Severity, utcnow
from engine.ops.incidents import report_text, timings
from engine.store.db import Store

# The kill switch's tiers the engine answers first (``Engine.execute``): their rows are marked done after the answer.
ANSWERED_FIRST = ("cancel-all", "close-all")

if TYPE_CHECKING:
    from engine.core.engine import Engine

log = logging.getLogger(__name__)

PAGE_MAX = 500


def _page(params: dict[str, Any], default: int = 50) -> tuple[int, int | None]:
    """``limit`` (1..500) and ``before`` (an id: the page before it) from a query's parameters."""
    try:
        limit = int(params.get("limit", default))
        before = params.get("before")
        before_id = None if before in (None, "") else int(before)
    except (TypeError, ValueError):
        raise QueryError("limit and before must be whole numbers") from None
    if not 1 <= limit <= PAGE_MAX:
        raise QueryError(f"limit must be between 1 and {PAGE_MAX}")
    return limit, before_id


class QueryError(ValueError):
    """A query the read model cannot answer as asked (its name or parameters); the message says why."""


@dataclass(frozen=True)
class Query:
    name: str
    help: str
    run: Callable[[Service, dict[str, Any]], Any]
    disk: bool = False  # reads the store: runs in a thread on its own read-only connection


class Service:
    """Queries, commands and the event journal of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._journal: Journal | None = None

    def open(self) -> None:
        """Start the journal: called by the engine as soon as its store is open, before it publishes anything."""
        if self._journal is None:
            assert self.engine.store is not None, "the store opens first"
            self._journal = Journal(self.engine.store, lambda: utcnow().isoformat())
            self.engine.bus.add_handler(self._journal.on_event)

    def close(self) -> None:
        """Write what the journal holds back (the engine stops next)."""
        if self._journal is not None:
            self._journal.flush()

    @property
    def journal(self) -> Journal:
        assert self._journal is not None, "Service.open() first"
        return self._journal

    @property
    def data_dir(self) -> Path:
        return Path(self.engine.settings.engine.data_dir)

    # ------------------------------------------------------------ commands

    async def execute(self, name: str, args: dict[str, Any], actor: str, reason: str) -> CommandResult:
        """Run the command ``name`` for ``actor`` (set by the transport). QueryError: not a command, or arguments
        that do not fit it; a refusal by the engine is its answer (``ok`` false)."""
        command = self.command(name, args, actor, reason)
        store = self.engine.store
        if name == "halt":
            # Latched by its own commit the moment it runs (a crash after it keeps HALTED): recorded once done, not
            # before, so the kill switch's fastest tier waits for no commit of its own.
            result = await self.engine.execute(command)
            if store is not None:
                try:
                    done = store.record_running_command(name, actor, command.reason, args)
                    store.finish_command(done, result.ok, result.message, dict(result.details) or None)
                except (sqlite3.Error, OSError) as exc:
                    log.warning("halt from %s carried out, not recorded in commands (%s)", actor, exc)
            return result
        try:
            row = store.record_running_command(name, actor, command.reason, args) if store is not None else None
        except (sqlite3.Error, OSError) as exc:  # a full disk: the command still runs; the store guard catches up
            log.warning("command %s from %s not recorded before running (%s)", name, actor, exc)
            row = None
        answered_first = name in ANSWERED_FIRST and row is not None
        try:
            # A tier answered first marks its row done itself, with what follows its answer (``Engine.execute``).
            result = (
                await self.engine.execute(command, journal_row=row)
                if answered_first
                else (await self.engine.execute(command))
            )
        except asyncio.CancelledError:  # the engine is stopping mid-command
            if row is not None and store is not None:
                with contextlib.suppress(sqlite3.Error, OSError):
                    if name in NEVER_EXPIRE:
                        store.requeue_command(row)  # the kill switch runs again at the next start
                    else:
                        store.finish_command(row, False, "the engine stopped while running it; see `cockpit audit`")
            raise
        if row is not None and store is not None and not answered_first:
            try:
                store.finish_command(row, result.ok, result.message, dict(result.details) or None)
            except (sqlite3.Error, OSError) as exc:
                log.warning("command %s's end not recorded (%s)", row, exc)
        return result

    @staticmethod
    def command(name: str, args: dict[str, Any], actor: str, reason: str) -> Command:
        """The command record; QueryError names what does not fit (an unknown command, a foreign argument)."""
        if not isinstance(args, dict):
            raise QueryError("args must be an object")
        try:
            return build_command(name, actor, reason or f"{name} from {actor}", args)
        except (ValueError, TypeError) as exc:
            raise QueryError(str(exc)) from None

    def alert(self, severity: Severity, code: str, message: str, values: dict[str, Any] | None = None) -> None:
        self.engine.alert(severity, code, message, values=values or {})

    # ------------------------------------------------------------ events

    def subscribe(self) -> Subscription:
        return self.engine.bus.subscribe()

    def unsubscribe(self, subscription: Subscription) -> None:
        self.engine.bus.unsubscribe(subscription)

    # ------------------------------------------------------------ queries

    async def query(self, name: str, params: dict[str, Any] | None = None) -> Any:
        """The answer of query ``name`` as plain JSON values; QueryError for an unknown name or bad parameters."""
        q = QUERIES.get(name)
        if q is None:
            raise QueryError(f"no query {name!r}; there are: {', '.join(QUERIES)}")
        params = dict(params or {})
        if q.disk:
            return wire.plain(await asyncio.to_thread(q.run, self, params))
        return wire.plain(q.run(self, params))

    @contextlib.contextmanager
    def reading(self) -> Iterator[Store]:
        """A read-only connection of the caller's own (queries run in threads), closed after."""
        store = Store.reader(self.data_dir)
        try:
            yield store
        finally:
            store.close()


# ---------------------------------------------------------------- the queries


def _status(s: Service, params: dict[str, Any]) -> dict[str, Any]:
    e = s.engine
    return {
        "running": True,
        "pid": os.getpid(),
        "data_dir": str(s.data_dir),
        "mode": e.mode,
        "venue": e.venue_label,
        "connected": e.connected,
        "ready": e.ready.is_set(),
        "trading_state": e.trading_state.value,
        "state_changed": dict(e.state_info),
        "state_epoch": e.state.epoch,
        "resume_refused": (r.message if (r := e.resume_refusal("operator:api")) is not None else None),
        "kill_switch_retrying": e.kill_switch_retrying(),
        "store_failure": e.store_guard.failure,
        "journal_seq": s.journal.seq,
        "open_orders": len(e.tracker.open_orders()),
        "positions": len(e.portfolio.positions()),
        "unacknowledged_alerts": len(e.alert_book.unacknowledged()),
        "equity": e.portfolio.equity(),
        "quote_asset": e.settings.engine.quote_asset,
        "symbols": list(e.symbols),
        "chat": e.chat.states(),
    }


def _emergency(s: Service, params: dict[str, Any]) -> dict[str, Any]:
    e = s.engine
    return {
        "trading_state": e.trading_state.value,
        "halted": e.trading_state.value == "HALTED",
        "state_changed": dict(e.state_info),
        "kill_switch_retrying": e.kill_switch_retrying(),
        "last_kill_switch": e.tiers.last_outcome,
        "resume_refused": (r.message if (r := e.resume_refusal("operator:api")) is not None else None),
    }


def _status_report(s: Service, params: dict[str, Any]) -> dict[str, Any]:
    from engine.api.statusreport import status_report

    with s.reading() as store:
        bots = s.engine.settings.chat.enabled()
        return status_report(store, s.data_dir, str(os.getpid()), s.engine.mode, bots, s.engine.settings.venue.symbols)


def _portfolio(s: Service, params: dict[str, Any]) -> dict[str, Any]:
    e = s.engine
    return {
        "equity": e.portfolio.equity(),
        "quote_asset": e.settings.engine.quote_asset,
        "balances": list(e.portfolio.balances.values()),
        "positions": e.portfolio.positions(),
        "last": dict(e.portfolio.last),
        "stops": dict(e.execution.stops),
        "take_profits": dict(e.execution.take_profits),
    }


def _trades(s: Service, params: dict[str, Any]) -> list[dict[str, Any]]:
    limit, before = _page(params)
    with s.reading() as store:
        return store.fills_page(limit, before)


def _alerts(s: Service, params: dict[str, Any]) -> list[dict[str, Any]]:
    limit, before = _page(params)
    with s.reading() as store:
        return store.alerts_page(limit, before)


def _audit(s: Service, params: dict[str, Any]) -> list[dict[str, Any]]:
    limit, before = _page(params)
    with s.reading() as store:
        rows = store.audit_page(limit, before)
    for key in ("actor", "command"):
        if params.get(key):
            rows = [r for r in rows if r[key] == params[key]]
    return rows


def _incidents(s: Service, params: dict[str, Any]) -> list[dict[str, Any]]:
    limit, _ = _page(params, default=20)
    with s.reading() as store:
        rows = store.incidents(limit=limit)
    return [{**row, **timings(row)} for row in rows]  # time to detect, act and recover, as `cockpit incidents` says


def _incident_report(s: Service, params: dict[str, Any]) -> dict[str, Any]:
    """The post-incident report in Markdown, and the name it is written under (``incident_ID.md``)."""
    try:
        incident_id = int(params.get("id", ""))
    except (TypeError, ValueError):
        raise QueryError("id must be an incident's number") from None
    with s.reading() as store:
        try:
            text = report_text(store, incident_id)
        except KeyError:
            raise QueryError(f"no incident {incident_id}") from None
    return {"id": incident_id, "name": f"incident_{incident_id}.md", "text": text}


def _order_events(s: Service, params: dict[str, Any]) -> list[dict[str, Any]]:
    client_id = str(params.get("client_id") or "")
    if not client_id:
        raise QueryError("client_id names the order")
    with s.reading() as store:
        return store.order_events(client_id)


def _preflight(s: Service, params: dict[str, Any]) -> dict[str, Any] | None:
    with s.reading() as store:
        return next(iter(store.checklist_runs(limit=1)), None)


def _equity_curve(s: Service, params: dict[str, Any]) -> list[dict[str, Any]]:
    limit, _ = _page(params, default=120)
    with s.reading() as store:
        return store.equity_curve(limit=limit)


def _config(s: Service, params: dict[str, Any]) -> dict[str, Any]:
    """The settings as the engine runs them, without a secret: keys and tokens are said to be set, not shown."""
    dumped = s.engine.settings.model_dump(mode="json")
    venue = dumped.get("venue", {})
    for key in ("api_key", "api_secret"):
        if key in venue:
            venue[key] = "(set)" if venue[key] else None
    for bot, keys in CHAT_SECRET_KEYS.items():
        section = dumped.get("chat", {}).get(bot, {})
        for key in keys:
            if key in section:
                section[key] = "(set)" if section[key] else None
    alerts = dumped.get("alerts", {})
    if isinstance(alerts.get("sinks"), list):
        alerts["sinks"] = [{**sink, "url": "(set)"} for sink in alerts["sinks"]]
    return dumped


def _positions(s: Service, params: dict[str, Any]) -> Any:
    return s.engine.portfolio.positions()


def _balances(s: Service, params: dict[str, Any]) -> Any:
    return list(s.engine.portfolio.balances.values())


def _orders(s: Service, params: dict[str, Any]) -> Any:
    return s.engine.tracker.open_orders()


def _monitors(s: Service, params: dict[str, Any]) -> Any:
    return s.engine.monitors.statuses()


def _strategies(s: Service, params: dict[str, Any]) -> Any:
    return s.engine.runner.status()


def _reconciliation(s: Service, params: dict[str, Any]) -> Any:
    return dict(s.engine.sync.last_reconcile)


def _health(s: Service, params: dict[str, Any]) -> Any:
    return s.engine.health_report()


def _snapshot(s: Service, params: dict[str, Any]) -> dict[str, Any]:
    e = s.engine
    snap = e.read.snapshot()
    return {
        **snap,
        "journal_seq": s.journal.seq,
        "state_epoch": e.state.epoch,
        "ready": e.ready.is_set(),
        "stops": dict(e.execution.stops),
        "take_profits": dict(e.execution.take_profits),
        "stops_suspended": e.venue_stops.suspended,
        "monitors": e.monitors.statuses(),
        "last": dict(e.portfolio.last),
        "equity": e.portfolio.equity(),
        "quote_asset": e.settings.engine.quote_asset,
        "symbols": list(e.symbols),
        "kill_switch_retrying": e.kill_switch_retrying(),
    }


QUERIES: dict[str, Query] = {
    q.name: q
    for q in (
        Query("status", "trading state and who set it, the venue, counts, the journal's last number", _status),
        Query("emergency", "the kill switch: halted or not, by whom, tiers still retrying", _emergency),
        Query("status_report", "what `cockpit status --json` prints, read by the engine", _status_report, disk=True),
        Query("portfolio", "equity, balances, positions, last prices, stops", _portfolio),
        Query("positions", "open positions", _positions),
        Query("balances", "balances per asset", _balances),
        Query("orders", "open orders", _orders),
        Query("monitors", "every monitor's reading", _monitors),
        Query("strategies", "each strategy: enabled, guard, stats", _strategies),
        Query("reconciliation", "the last reconciliation's report", _reconciliation),
        Query("health", "the health report (/health)", _health),
        Query("snapshot", "what a screen needs for its first frame", _snapshot),
        Query("config", "the settings, without secrets", _config),
        Query("trades", "fills, newest first (limit, before: a fill id)", _trades, disk=True),
        Query("alerts", "alerts, newest first (limit, before: an alert id)", _alerts, disk=True),
        Query("audit", "commands carried out, newest first (limit, before, actor, command)", _audit, disk=True),
        Query(
            "incidents",
            "incidents, newest first (limit), with their times to detect, act, recover",
            _incidents,
            disk=True,
        ),
        Query("incident_report", "an incident's post-incident report in Markdown (id)", _incident_report, disk=True),
        Query(
            "order_events", "one order's every event and its source, oldest first (client_id)", _order_events, disk=True
        ),
        Query("preflight", "the last go/no-go checklist run", _preflight, disk=True),
        Query("equity_curve", "equity samples, oldest first (limit)", _equity_curve, disk=True),
    )
}
