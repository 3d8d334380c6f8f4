"""The store's writer: it subscribes to engine events and writes what they say, with group commit.

Writes are synchronous with the publish that caused them (see ``engine.kernel.bus``) and committed with
``synchronous=FULL``, but for a kill-switch tier's halt (``latch``: in the OS before anything acts, on the disk before
the answer). Group commit: what one task writes in a ``batch`` (a command, a cancel-all's answer, a stream
read) is one transaction, committed at the batch's end or when the order path needs it on disk (``flush``, right
before a request carrying a new client order id leaves: write the batch, commit, send the batch); a trading-state
change is committed the moment it is written. The hot writes are prepared statements (sqlite3 caches them), not
sqlite-utils calls, which read the table's schema on every insert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.kernel.events import (
    AlertRaised,
    AlertUpdated,
    BalancesUpdated,
    ChecklistCompleted,
    CommandAudited,
    DayStatsChanged,
    EngineStarted,
    EngineStopped,
    EquitySampled,
    Event,
    FillReceived,
    HoldingsChanged,
    IncidentChanged,
    MonitorsChanged,
    NotificationSent,
    Order,
    OrderCreated,
    OrderRefused,
    OrderStatus,
    OrderUpdated,
    Persisted,
    RoundTripClosed,
    StopsChanged,
    StopsSuspended,
    StrategyGuardChanged,
    TradingStateChanged,
    ValidationReported,
    utcnow,
)
from engine.kernel.testhooks import hold_s
from engine.store.rows import dumps, to_text

log = logging.getLogger(__name__)

# A batch holds its writes at most this long before they are committed anyway (other shells read the store).
MAX_DEFER_S = 0.05
# Tests only: seconds the write-ahead log's sync after a latched halt waits before it runs, for the crash test to kill
# the engine between its sells leaving and its halt being on the disk for good (decision BEN-13).
LATCH_SYNC_HOLD_ENV = "TEST_COCKPIT_LATCH_SYNC_HOLD_S"  # not COCKPIT_: that prefix is settings


class Writer:
    """The store's half that writes: ``handle`` (the bus subscriber), ``batch`` and ``flush`` (group commit)."""

    db: sqlite_utils.Database
    path: Path

    def __init__(self) -> None:
        self._uncommitted = 0  # writes in the open transaction
        # Commits and rollbacks made: a write followed by a commit and no rollback is on disk (``Durability.commits``).
        self.commits = 0
        self.rollbacks = 0
        self._batches: dict[object, int] = {}  # task -> depth of its open batches (see ``batch``)
        self._timer: asyncio.TimerHandle | None = None  # the late commit of writes held by a batch
        self.commit_ms: deque[float] = deque(maxlen=2000)  # how long the latest commits took
        # Told when a batch's commit fails where no writer is there to hear it (a batch's end, the late commit): a
        # full disk found at commit time, not at the write. Without it the error is raised (or logged, late).
        self.on_commit_failed: Callable[[BaseException], object] | None = None
        # A kill-switch tier's halt (``latch``): the connection set to synchronous=NORMAL when its batch opens (it
        # cannot be changed inside a transaction), the halt's commit written to the OS, the log's fsync in a thread
        # (``synced``), FULL again at once after.
        self._normal = False
        self._latching = False
        self._synced: asyncio.Future[None] | None = None
        self._sync_pool: ThreadPoolExecutor | None = None
        # The monitors' readings when only their values moved (``_on_monitors``): written by their own late write,
        # at most ``MAX_DEFER_S`` after, not with every commit; a status that changes level is written at once.
        self._lazy_monitors: list[dict[str, Any]] | None = None
        self._lazy_timer: asyncio.TimerHandle | None = None
        self._monitor_levels: list[tuple[Any, Any]] | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def handle(self, event: Event) -> None:
        """Write what an event says; events that carry no state (tickers) are not stored.

        Committed before this returns, unless the writing task holds a ``batch`` (then at the batch's end, or when
        ``flush`` is called); a trading-state change is committed at once, batch or not."""
        write = _WRITERS.get(type(event))
        if write is None:
            return
        if write(self, event) is not False:  # False: held back, written later (``_on_monitors``)
            self._wrote(at_once=type(event) in COMMIT_AT_ONCE)

    @contextmanager
    def batch(self, join: bool = False, answer_first: bool = False) -> Iterator[None]:
        """Group commit: the writes of the current task until the batch ends are one transaction, committed at its
        end (a command, a cancel-all's answer, one stream read) or by ``flush``, which the order path calls right
        before a request carrying a new client id leaves. A trading-state change is still committed at once (a halt
        is latched). Another task's write is never held back; nothing waits longer than ``MAX_DEFER_S``. Nested
        batches of one task commit at the outermost end.

        ``join``: for what the venue keeps anyway (a stream read of order reports): when it ends while another
        task's batch is open (a command under way: a kill switch's pass), it is committed with that one, at its
        end or by the late commit (``MAX_DEFER_S`` at most), not on its own. A cancel-all of 100 orders hears
        them on the stream in 6-8 reads, and a commit each (``synchronous=FULL``) held up the venue's answer on the
        one event loop (issue 27). A crash in between loses nothing the restart's reconciliation does not read
        back from the venue.

        ``answer_first``: a kill-switch tier's (``Engine.execute``): its end commits nothing, so that its answer goes
        out first; what follows the answer (its alerts and audit record, ``Engine._after_answer``) commits it all in
        one transaction, or the late commit does (``MAX_DEFER_S`` at most). Its command is on disk before it acts
        (its row in ``commands``): a crash in between runs it again at the next start (decision BEN-07)."""
        owner = _current_task() or self
        if answer_first and owner not in self._batches:
            self._arm_latch()
        self._batches[owner] = self._batches.get(owner, 0) + 1
        try:
            yield
        finally:
            depth = self._batches.pop(owner) - 1
            if depth:
                self._batches[owner] = depth
            elif answer_first:
                self._disarm_latch()
                if self._uncommitted and self._timer is None:
                    self._timer = asyncio.get_running_loop().call_later(MAX_DEFER_S, self._flush_late)
            elif not (join and self._batches):
                self._flush_or_tell()

    def write_pending(self) -> None:
        """Write (and commit) the monitors' readings held back by ``_on_monitors``: at the store's close."""
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
        self._write_lazy()

    def _on_monitors(self, monitors: list[dict[str, Any]]) -> bool:
        """Every monitor's reading. A change of any status level (OK, WARN, CRIT: what an incident snapshot or
        ``cockpit status`` must show at once) is written now; a change of the values alone (the flash-crash
        monitor's largest move changes at nearly every reading) is written by its own late write, the newest
        reading only: a backtest wrote and committed it at every step, 9 % of a step (decision GATE-26)."""
        levels = [(m.get("code"), m.get("status")) for m in monitors]
        if levels == self._monitor_levels:
            self._lazy_monitors = monitors
            if self._lazy_timer is not None:
                return False
            with contextlib.suppress(RuntimeError):  # no loop: written now, below
                self._lazy_timer = asyncio.get_running_loop().call_later(MAX_DEFER_S, self._write_lazy)
                return False
        self._monitor_levels = levels
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None
        self._lazy_monitors = None
        self._put_json("monitors", monitors)
        return True

    def _write_lazy(self) -> None:
        self._lazy_timer = None
        monitors, self._lazy_monitors = self._lazy_monitors, None
        if monitors is None:
            return
        try:
            self._put_json("monitors", monitors)
        except (sqlite3.Error, OSError) as exc:  # a reading only: the next one is written again
            log.warning("the monitors' readings were not written: %s", exc)
            return
        self._uncommitted += 1
        self._flush_or_tell()

    def flush(self) -> None:
        """Commit what was written and not yet committed (``synchronous=FULL``: on disk when this returns; a halt
        inside ``latch``: in the OS, on the disk by ``synced``)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._uncommitted:
            self._disarm_latch()  # a commit of its own follows (``Store.submit_command``...): FULL
            return
        start = time.perf_counter()
        self.conn.commit()
        self.commit_ms.append((time.perf_counter() - start) * 1000)
        self._uncommitted = 0
        self.commits += 1
        if self._normal:
            self._disarm_latch()
            if self._latching:
                self._sync_later()
            else:  # armed for a halt that did not come first: synced here, as FULL does it
                self._sync_wal(0.0)

    # ------------------------------------------------------------ the kill switch's latch (decision BEN-13)

    @contextmanager
    def latch(self) -> Iterator[None]:
        """A kill-switch tier's halt: committed inside this block, it is written to the OS before this returns (a
        process killed then still finds it: SQLite's WAL at synchronous=NORMAL) and synced to the disk in a thread
        meanwhile (``synced``: its tier answers only after it). Only when the tier's batch (``batch(answer_first)``)
        could set the connection to NORMAL as it opened, with no transaction under way; otherwise FULL, as ever.
        Every other commit keeps FULL's durability: one made while the connection is armed is synced at once."""
        self._latching = True
        try:
            yield
        finally:
            self._latching = False
            self._disarm_latch()

    async def synced(self) -> None:
        """Wait until every latched halt is on the disk (one fsync started after a commit covers it and all before).
        A failed sync is told to ``on_commit_failed`` (the store cannot be trusted to write: the engine halts)."""
        pending = self._synced
        if pending is None:
            return
        try:
            await asyncio.shield(pending)
        except OSError as exc:
            if self.on_commit_failed is None:
                raise
            self.on_commit_failed(exc)
        finally:
            if self._synced is pending:
                self._synced = None

    def _arm_latch(self) -> None:
        if self._normal or self.conn.in_transaction:
            return  # a transaction under way: its safety level cannot change (SQLite); this halt commits FULL
        try:
            asyncio.get_running_loop()
            self.conn.execute("PRAGMA synchronous=NORMAL")
        except (RuntimeError, sqlite3.Error):
            return
        self._normal = True

    def _disarm_latch(self) -> None:
        """FULL again, as soon as no transaction is open (else the next commit, synced by ``flush``)."""
        if self._normal and not self.conn.in_transaction:
            self.conn.execute("PRAGMA synchronous=FULL")
            self._normal = False

    def _sync_later(self) -> None:
        if self._sync_pool is None:
            self._sync_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cockpit-wal-sync")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._sync_pool, self._sync_wal, hold_s(LATCH_SYNC_HOLD_ENV))
        future.add_done_callback(_retrieved)  # awaited by ``synced``; a later one may stand in for it
        self._synced = future

    def _sync_wal(self, hold_s: float) -> None:
        """What synchronous=FULL adds to NORMAL in WAL mode: the log synced after the commit. Its own descriptor of
        the ``-wal`` file: SQLite keeps no lock on it (its locks are on the store and its ``-shm``), so closing it
        drops none (``Store.reader``)."""
        if hold_s > 0:  # tests only (``LATCH_SYNC_HOLD_ENV``)
            time.sleep(hold_s)
        fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        try:
            os.fdatasync(fd)  # what SQLite's own sync of the log calls on Linux
        finally:
            os.close(fd)

    def close_sync(self) -> None:
        """At the store's close: the sync thread ends (the connection's close checkpoints and syncs anyway)."""
        if self._sync_pool is not None:
            self._sync_pool.shutdown(wait=False)
            self._sync_pool = None

    def _wrote(self, at_once: bool = False, join: bool = False) -> None:
        self._uncommitted += 1
        if at_once or ((_current_task() or self) not in self._batches and not (join and self._batches)):
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(MAX_DEFER_S, self._flush_late)
            except RuntimeError:  # no loop: the batch's end commits
                pass

    def _flush_late(self) -> None:
        self._timer = None
        self._flush_or_tell()

    def _flush_or_tell(self) -> None:
        """Commit; a failure goes to ``on_commit_failed``. The transaction is rolled back first, so what it held is
        known to be unwritten (SQLite may or may not have kept it after a failed COMMIT): the engine's store guard
        keeps those events and writes them again once the store can."""
        try:
            self.flush()
        except (sqlite3.Error, OSError) as exc:
            if self.on_commit_failed is None:
                raise
            self.abandon()
            self.on_commit_failed(exc)

    def abandon(self) -> None:
        """Roll back what is not committed: after a failed write its fate is otherwise unknown."""
        try:
            self.conn.rollback()
        except sqlite3.Error:
            pass
        self._uncommitted = 0
        self.rollbacks += 1
        try:
            self._disarm_latch()
        except sqlite3.Error:
            pass

    @property
    def uncommitted(self) -> int:
        """Writes made and not yet committed (held by a batch)."""
        return self._uncommitted

    def _put(self, sql: str, params: Sequence[Any]) -> None:
        """One prepared statement (sqlite3 caches it by its text: no schema is read per write)."""
        self.conn.execute(sql, params)

    def append_journal_rows(self, rows: list[tuple[int, str, str, str]]) -> None:
        """Journaled events (the service API's catch-up): (seq, ts, type, JSON body), committed with the writes
        around them. While a command's batch is open (a kill switch's pass), with it: no commit of their own in the
        middle of its round trip (a crash loses that moment of journal, which a client is told: ``Journal``)."""
        self.conn.executemany("insert or replace into journal (seq, ts, type, body) values (?, ?, ?, ?)", rows)
        self._wrote(join=True)

    def prune_journal(self, keep: int) -> None:
        """Keep the newest ``keep`` journaled events."""
        self._put("delete from journal where seq <= (select max(seq) from journal) - ?", (keep,))
        self._wrote()

    def _save_order(self, o: Order) -> None:
        self._put(
            _ORDER_UPSERT,
            (
                o.client_id,
                o.symbol,
                o.side,
                o.type,
                to_text(o.amount),
                to_text(o.price),
                o.status.value,
                to_text(o.filled),
                to_text(o.average),
                o.venue_id,
                o.origin,
                o.created_at.isoformat(),
                o.updated_at.isoformat(),
            ),
        )

    def _order_event(self, o: Order, previous: OrderStatus | None, source: str, detail: str) -> None:
        self._put(
            _ORDER_EVENT_INSERT,
            (
                o.client_id,
                o.updated_at.isoformat(),
                o.status.value,
                previous.value if previous else None,
                to_text(o.filled),
                source,
                detail,
            ),
        )

    def _on_order_created(self, event: OrderCreated) -> None:
        self._save_order(event.order)
        self._order_event(event.order, None, "engine", "created locally, before sending")

    def _on_order_updated(self, event: OrderUpdated) -> None:
        self._save_order(event.order)
        self._order_event(event.order, event.previous, event.source, event.detail)

    def _on_fill(self, event: FillReceived) -> None:
        f = event.fill
        self._put(
            _upsert("fills", FILL_COLUMNS, ("symbol", "trade_id")),
            (
                f.trade_id,
                f.symbol,
                f.client_id,
                f.side,
                to_text(f.price),
                to_text(f.amount),
                to_text(f.fee),
                f.fee_asset,
                f.ts.isoformat(),
            ),
        )

    def _on_balances(self, event: BalancesUpdated) -> None:
        now = utcnow().isoformat()
        self.conn.executemany(
            _upsert("balances", ("asset", "free", "locked", "ts"), ("asset",)),
            [(b.asset, to_text(b.free), to_text(b.locked), now) for b in event.balances],
        )

    def _on_state(self, event: TradingStateChanged) -> None:
        self._put(
            _upsert("engine_state", STATE_COLUMNS, ("key",)),
            ("trading_state", event.state.value, event.actor, event.reason, event.ts.isoformat()),
        )
        self._put(
            _insert("state_changes", ("ts", "previous", "state", "actor", "reason", "code", "values")),
            (
                event.ts.isoformat(),
                event.previous.value,
                event.state.value,
                event.actor,
                event.reason,
                event.code,
                dumps(event.values),
            ),
        )

    def _on_alert(self, event: AlertRaised | AlertUpdated) -> None:
        a = event.alert
        self._put(
            _upsert("alerts", ALERT_COLUMNS, ("id",)),
            (
                a.id,
                a.ts.isoformat(),
                a.severity.value,
                a.code,
                a.message,
                dumps(a.values),
                a.count,
                a.last_ts.isoformat() if a.last_ts else None,
                a.acked_by,
                a.acked_at.isoformat() if a.acked_at else None,
                int(a.escalated),
            ),
        )

    def _on_notification(self, event: NotificationSent) -> None:
        self._put(
            _insert("notifications", ("ts", "alert_id", "target", "ok", "attempts", "error")),
            (event.ts.isoformat(), event.alert_id, event.target, int(event.ok), event.attempts, event.error),
        )

    def _on_incident(self, event: IncidentChanged) -> None:
        row = dict(event.incident)
        self._put(_upsert("incidents", tuple(row), ("id",)), tuple(row.values()))

    def _on_audit(self, event: CommandAudited) -> None:
        self._put(
            _insert("audit", AUDIT_COLUMNS),
            (
                event.ts.isoformat(),
                event.command,
                event.actor,
                event.reason,
                dumps(event.args),
                dumps(event.values),
                int(event.ok),
                event.result,
                round(event.duration_ms, 3),
                int(event.kill_switch),
            ),
        )

    def _on_refused(self, event: OrderRefused) -> None:
        self._put(
            _insert("refused_orders", ("ts", "actor", "symbol", "side", "amount", "price", "reason")),
            (
                event.ts.isoformat(),
                event.actor,
                event.symbol,
                event.side,
                to_text(event.amount),
                to_text(event.price),
                event.reason,
            ),
        )

    def _on_equity(self, event: EquitySampled) -> None:
        self._put_equity(event.equity, event.peak, event.drawdown_pct)

    def _put_equity(self, equity: Decimal, peak: Decimal, drawdown_pct: Decimal) -> None:
        self._put(
            _insert("equity", ("ts", "equity", "peak", "drawdown_pct")),
            (utcnow().isoformat(), str(equity), str(peak), str(drawdown_pct)),
        )

    def _on_stops(self, event: StopsChanged) -> None:
        self._put_json("stops", {k: str(v) for k, v in event.stops.items()})
        self._put_json("take_profits", {k: str(v) for k, v in event.take_profits.items()})

    def _on_checklist(self, event: ChecklistCompleted) -> None:
        c = event.checklist
        summary = c.get("summary", {})
        self._put(
            _insert(
                "checklist_runs", ("ts", "mode", "venue", "verdict", "actor", "passed", "warned", "failed", "checks")
            ),
            (
                c.get("ts"),
                c.get("mode"),
                c.get("venue"),
                c.get("verdict"),
                c.get("actor"),
                summary.get("PASS", 0),
                summary.get("WARN", 0),
                summary.get("FAIL", 0),
                dumps(c.get("checks", [])),
            ),
        )

    def _on_validation(self, event: ValidationReported) -> None:
        r = event.report
        self._put(
            _insert("validation_reports", ("ts", "verdict", "hours", "trades", "path", "report")),
            (
                utcnow().isoformat(),
                r.get("verdict"),
                (r.get("simulated") or {}).get("hours"),
                r.get("trades"),
                event.path,
                dumps(r),
            ),
        )

    def _on_engine_started(self, event: EngineStarted) -> None:
        self._put(
            _insert("engine_runs", ("started_at", "mode", "venue")), (utcnow().isoformat(), event.mode, event.venue)
        )

    def _on_engine_stopped(self, event: EngineStopped) -> None:
        self._put(
            "update engine_runs set stopped_at = ? where id = (select max(id) from engine_runs) and stopped_at is null",
            (utcnow().isoformat(),),
        )

    def _on_round_trip(self, event: RoundTripClosed) -> None:
        self._put(
            _insert("round_trips", ("symbol", "opened_by", "pnl", "closed_at")),
            (event.symbol, event.opened_by, to_text(event.pnl), event.closed_at.isoformat()),
        )

    def _put_json(self, key: str, value: Any) -> None:
        self._put(
            _upsert("engine_state", STATE_COLUMNS, ("key",)), (key, dumps(value), "engine", "", utcnow().isoformat())
        )

    def _put_day(self, data: dict[str, Any]) -> None:
        self._put(
            _upsert("daily_stats", ("day", "data", "ts"), ("day",)), (data["day"], dumps(data), utcnow().isoformat())
        )


# ---------------------------------------------------------------- prepared writes

FILL_COLUMNS = ("trade_id", "symbol", "client_id", "side", "price", "amount", "fee", "fee_asset", "ts")
STATE_COLUMNS = ("key", "value", "actor", "reason", "ts")
ALERT_COLUMNS = (
    "id",
    "ts",
    "severity",
    "code",
    "message",
    "values",
    "count",
    "last_ts",
    "acked_by",
    "acked_at",
    "escalated",
)
AUDIT_COLUMNS = ("ts", "command", "actor", "reason", "args", "values", "ok", "result", "duration_ms", "kill_switch")


@cache
def _insert(table: str, columns: tuple[str, ...]) -> str:
    """INSERT for a fixed table and columns (names from this module, never from input)."""
    names = ", ".join(f'"{c}"' for c in columns)
    return f"insert into {table} ({names}) values ({', '.join('?' for _ in columns)})"


@cache
def _upsert(table: str, columns: tuple[str, ...], pk: tuple[str, ...]) -> str:
    """Insert, or update the given columns of the row with the same primary key (what sqlite-utils' upsert does)."""
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in pk)
    return f"{_insert(table, columns)} on conflict ({', '.join(pk)}) do update set {updates}"


_ORDER_UPSERT = _upsert(
    "orders",
    (
        "client_id",
        "symbol",
        "side",
        "type",
        "amount",
        "price",
        "status",
        "filled",
        "average",
        "venue_id",
        "origin",
        "created_at",
        "updated_at",
    ),
    ("client_id",),
)
_ORDER_EVENT_INSERT = _insert("order_events", ("client_id", "ts", "status", "previous", "filled", "source", "detail"))


def _retrieved(future: asyncio.Future[None]) -> None:
    """A sync's outcome, taken so that a failure no one awaited is not logged as never retrieved."""
    if not future.cancelled():
        future.exception()


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None  # no event loop: a script or a synchronous caller


# Facts committed the moment they are written, even inside a batch: a trading state before anything acts on it (a
# halt is latched). A new client order id is committed by the order path itself, right before the request carrying
# it leaves (``Execution.durable``): the kill switch's sells are recorded together and committed once.
COMMIT_AT_ONCE = frozenset({TradingStateChanged, EngineStopped})

# What the store writes for each kind of event; the others (tickers, positions, health) carry no state to keep.
_WRITERS: dict[type[Event], Callable[[Writer, Any], bool | None]] = {
    OrderCreated: Writer._on_order_created,
    OrderUpdated: Writer._on_order_updated,
    FillReceived: Writer._on_fill,
    RoundTripClosed: Writer._on_round_trip,
    BalancesUpdated: Writer._on_balances,
    TradingStateChanged: Writer._on_state,
    AlertRaised: Writer._on_alert,
    AlertUpdated: Writer._on_alert,
    NotificationSent: Writer._on_notification,
    IncidentChanged: Writer._on_incident,
    CommandAudited: Writer._on_audit,
    OrderRefused: Writer._on_refused,
    EquitySampled: Writer._on_equity,
    StopsChanged: Writer._on_stops,
    StopsSuspended: lambda store, e: store._put_json("stops_suspended", e.reason),
    DayStatsChanged: lambda store, e: store._put_day(dict(e.day)),
    StrategyGuardChanged: lambda store, e: store._put_json("strategy_guard", dict(e.guard)),
    HoldingsChanged: lambda store, e: store._put_json("holdings", dict(e.holdings)),
    Persisted: lambda store, e: store._put_json(e.key, e.value),
    MonitorsChanged: lambda store, e: store._on_monitors([dict(m) for m in e.monitors]),
    ChecklistCompleted: Writer._on_checklist,
    ValidationReported: Writer._on_validation,
    EngineStarted: Writer._on_engine_started,
    EngineStopped: Writer._on_engine_stopped,
}
