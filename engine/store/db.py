"""SQLite persistence (sqlite-utils, WAL): the store subscribes to engine events and can restore state.

Every Decimal is stored as TEXT so no amount ever passes through a float. Writes are synchronous with the
publish that caused them (see ``engine.kernel.bus``) and committed with ``synchronous=FULL``. Group commit: what one
task writes in a ``batch`` (a command, a cancel-all's answer, a stream read) is one transaction, committed at the
batch's end or when the order path needs it on disk (``flush``, right before a request carrying a new client order
id leaves: write the batch, commit, send the batch); a trading-state change is committed the moment it is written.
The hot writes are prepared statements (sqlite3 caches them), not sqlite-utils calls, which read the table's schema
on every insert.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.kernel.errors import StoreError
from engine.kernel.events import (
    Alert,
    AlertRaised,
    AlertUpdated,
    Balance,
    BalancesUpdated,
    ChecklistCompleted,
    CommandAudited,
    DayStatsChanged,
    EngineStarted,
    EngineStopped,
    EquitySampled,
    Event,
    Fill,
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
    Severity,
    StopsChanged,
    StrategyGuardChanged,
    TradingState,
    TradingStateChanged,
    ValidationReported,
    utcnow,
)
from engine.store.datadir import DB_NAME, check_own, check_tables, explain_store_error

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
# A batch holds its writes at most this long before they are committed anyway (other shells read the store).
MAX_DEFER_S = 0.05


def _d(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class Store:
    """The engine's SQLite file: orders, order events, fills, balances, alerts and engine state."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self._uncommitted = 0  # writes in the open transaction
        self._batches: dict[object, int] = {}  # task -> depth of its open batches (see ``batch``)
        self._timer: asyncio.TimerHandle | None = None  # the late commit of writes held by a batch
        self.commit_ms: deque[float] = deque(maxlen=2000)  # how long the latest commits took
        # Told when a batch's commit fails where no writer is there to hear it (a batch's end, the late commit): a
        # full disk found at commit time, not at the write. Without it the error is raised (or logged, late).
        self.on_commit_failed: Callable[[BaseException], object] | None = None
        check_own(path)
        try:
            if readonly:
                self.db = sqlite_utils.Database(_read_only(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite_utils.Database(path)
            check_tables(self.db.conn, path)
            if readonly:
                return
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (sqlite3.Error, OSError, StoreError) as exc:
            # Hold no connection to a file refused or half-opened: left to the garbage collector, a connection from
            # before the store is in WAL mode makes every later connection of this process read a stale file.
            if getattr(self, "db", None) is not None:
                self.db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(explain_store_error(path, exc, readonly)) from None

    @classmethod
    def in_dir(cls, data_dir: Path, readonly: bool = False) -> Store:
        return cls(Path(data_dir) / DB_NAME, readonly=readonly)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        self.flush()
        self.db.close()

    # ------------------------------------------------------------ schema

    def _migrate(self) -> None:
        db = self.db
        db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
        row = next(db.query("select value from meta where key = 'schema_version'"), None)
        version = int(row["value"]) if row else 0
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer cockpit (schema {version} > {SCHEMA_VERSION}); "
                "upgrade cockpit or use another --data-dir"
            )
        if version < 1:
            with db.conn:
                db["orders"].create(
                    {
                        "client_id": str,
                        "symbol": str,
                        "side": str,
                        "type": str,
                        "amount": str,
                        "price": str,
                        "status": str,
                        "filled": str,
                        "average": str,
                        "venue_id": str,
                        "origin": str,
                        "created_at": str,
                        "updated_at": str,
                    },
                    pk="client_id",
                )
                db["orders"].create_index(["status"])
                db["order_events"].create(
                    {
                        "id": int,
                        "client_id": str,
                        "ts": str,
                        "status": str,
                        "previous": str,
                        "filled": str,
                        "source": str,
                        "detail": str,
                    },
                    pk="id",
                )
                db["order_events"].create_index(["client_id"])
                db["fills"].create(
                    {
                        "trade_id": str,
                        "symbol": str,
                        "client_id": str,
                        "side": str,
                        "price": str,
                        "amount": str,
                        "fee": str,
                        "fee_asset": str,
                        "ts": str,
                    },
                    pk=("symbol", "trade_id"),
                )
                db["balances"].create({"asset": str, "free": str, "locked": str, "ts": str}, pk="asset")
                db["engine_state"].create({"key": str, "value": str, "actor": str, "reason": str, "ts": str}, pk="key")
                db["state_changes"].create(
                    {"id": int, "ts": str, "previous": str, "state": str, "actor": str, "reason": str},
                    pk="id",
                )
                db["alerts"].create({"id": int, "ts": str, "severity": str, "code": str, "message": str}, pk="id")
                db["equity"].create({"id": int, "ts": str, "equity": str, "peak": str, "drawdown_pct": str}, pk="id")
                db["daily_stats"].create({"day": str, "data": str, "ts": str}, pk="day")
                db["commands"].create(
                    {
                        "id": int,
                        "ts": str,
                        "command": str,
                        "args": str,
                        "actor": str,
                        "reason": str,
                        "status": str,
                        "result": str,
                        "done_ts": str,
                    },
                    pk="id",
                )
                db["commands"].create_index(["status"])
                db["meta"].upsert({"key": "schema_version", "value": "1"}, pk="key")
        if version < 2:
            with db.conn:
                # The audit trail of every command from every actor, and the orders the checks turned away.
                db["audit"].create(
                    {
                        "id": int,
                        "ts": str,
                        "command": str,
                        "actor": str,
                        "reason": str,
                        "args": str,
                        "values": str,
                        "ok": int,
                        "result": str,
                        "duration_ms": float,
                        "kill_switch": int,
                    },
                    pk="id",
                )
                db["refused_orders"].create(
                    {
                        "id": int,
                        "ts": str,
                        "actor": str,
                        "symbol": str,
                        "side": str,
                        "amount": str,
                        "price": str,
                        "reason": str,
                    },
                    pk="id",
                )
                db["state_changes"].add_column("code", str)
                db["state_changes"].add_column("values", str)
                db["alerts"].add_column("values", str)
                db["commands"].add_column("details", str)
                db["meta"].upsert({"key": "schema_version", "value": "2"}, pk="key")
        if version < 3:
            with db.conn:
                # Alerts are counted, acknowledged and escalated; deliveries to people are recorded; incidents.
                for column, kind in (
                    ("count", int),
                    ("last_ts", str),
                    ("acked_by", str),
                    ("acked_at", str),
                    ("escalated", int),
                ):
                    db["alerts"].add_column(column, kind)
                db["notifications"].create(
                    {"id": int, "ts": str, "alert_id": int, "target": str, "ok": int, "attempts": int, "error": str},
                    pk="id",
                )
                db["incidents"].create(
                    {
                        "id": int,
                        "opened_at": str,
                        "trigger": str,
                        "actor": str,
                        "code": str,
                        "reason": str,
                        "first_reading_at": str,
                        "alerted_at": str,
                        "acted_at": str,
                        "recovered_at": str,
                        "snapshot": str,
                        "actions": str,
                    },
                    pk="id",
                )
                db["meta"].upsert({"key": "schema_version", "value": "3"}, pk="key")
        if version < 4:
            with db.conn:
                # The go/no-go gate's evidence: checklist runs, validation reports, and which mode ran when (the
                # 24-hour paper / dry-run stability check reads it).
                db["checklist_runs"].create(
                    {
                        "id": int,
                        "ts": str,
                        "mode": str,
                        "venue": str,
                        "verdict": str,
                        "actor": str,
                        "passed": int,
                        "warned": int,
                        "failed": int,
                        "checks": str,
                    },
                    pk="id",
                )
                db["validation_reports"].create(
                    {"id": int, "ts": str, "verdict": str, "hours": float, "trades": int, "path": str, "report": str},
                    pk="id",
                )
                db["engine_runs"].create(
                    {"id": int, "started_at": str, "stopped_at": str, "mode": str, "venue": str}, pk="id"
                )
                db["meta"].upsert({"key": "schema_version", "value": "4"}, pk="key")

    # ------------------------------------------------------------ subscriber

    def handle(self, event: Event) -> None:
        """Write what an event says; events that carry no state (tickers) are not stored.

        Committed before this returns, unless the writing task holds a ``batch`` (then at the batch's end, or when
        ``flush`` is called); a trading-state change is committed at once, batch or not."""
        write = _WRITERS.get(type(event))
        if write is None:
            return
        write(self, event)
        self._wrote(at_once=type(event) in COMMIT_AT_ONCE)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: the writes of the current task until the batch ends are one transaction, committed at its
        end (a command, a cancel-all's answer, one stream read) or by ``flush``, which the order path calls right
        before a request carrying a new client id leaves. A trading-state change is still committed at once (a halt
        is latched). Another task's write is never held back; nothing waits longer than ``MAX_DEFER_S``. Nested
        batches of one task commit at the outermost end."""
        owner = _current_task() or self
        self._batches[owner] = self._batches.get(owner, 0) + 1
        try:
            yield
        finally:
            depth = self._batches.pop(owner) - 1
            if depth:
                self._batches[owner] = depth
            else:
                self._flush_or_tell()

    def flush(self) -> None:
        """Commit what was written and not yet committed (``synchronous=FULL``: on disk when this returns)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._uncommitted:
            return
        start = time.perf_counter()
        self.conn.commit()
        self.commit_ms.append((time.perf_counter() - start) * 1000)
        self._uncommitted = 0

    def _wrote(self, at_once: bool = False) -> None:
        self._uncommitted += 1
        if at_once or (_current_task() or self) not in self._batches:
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
        """Commit; a failure goes to ``on_commit_failed`` (the writes stay in the transaction for the next try)."""
        try:
            self.flush()
        except (sqlite3.Error, OSError) as exc:
            if self.on_commit_failed is None:
                raise
            self.on_commit_failed(exc)

    def _put(self, sql: str, params: Sequence[Any]) -> None:
        """One prepared statement (sqlite3 caches it by its text: no schema is read per write)."""
        self.conn.execute(sql, params)

    def _save_order(self, o: Order) -> None:
        self._put(
            _ORDER_UPSERT,
            (
                o.client_id,
                o.symbol,
                o.side,
                o.type,
                _d(o.amount),
                _d(o.price),
                o.status.value,
                _d(o.filled),
                _d(o.average),
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
                _d(o.filled),
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
                _d(f.price),
                _d(f.amount),
                _d(f.fee),
                f.fee_asset,
                f.ts.isoformat(),
            ),
        )

    def _on_balances(self, event: BalancesUpdated) -> None:
        now = utcnow().isoformat()
        self.conn.executemany(
            _upsert("balances", ("asset", "free", "locked", "ts"), ("asset",)),
            [(b.asset, _d(b.free), _d(b.locked), now) for b in event.balances],
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
                _d(event.amount),
                _d(event.price),
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

    def _put_json(self, key: str, value: Any) -> None:
        self._put(
            _upsert("engine_state", STATE_COLUMNS, ("key",)), (key, dumps(value), "engine", "", utcnow().isoformat())
        )

    def _put_day(self, data: dict[str, Any]) -> None:
        self._put(
            _upsert("daily_stats", ("day", "data", "ts"), ("day",)), (data["day"], dumps(data), utcnow().isoformat())
        )

    # ------------------------------------------------------------ commands from other shells

    def submit_command(self, command: str, actor: str, reason: str, args: dict[str, Any] | None = None) -> int:
        """Queue a command for the running engine; return its id."""
        self.flush()  # its own transaction follows: nothing written before may wait on it
        table = self.db["commands"]
        table.insert(
            {
                "ts": utcnow().isoformat(),
                "command": command,
                "args": dumps(args or {}),
                "actor": actor,
                "reason": reason,
                "status": "pending",
            }
        )
        return int(table.last_pk)

    def pending_commands(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from commands where status = 'pending' order by id"))

    def abandon_running_commands(self, rerun: tuple[str, ...] = ()) -> int:
        """At start: commands a previous engine was running when it stopped are failed (never run twice), except
        those in ``rerun`` (the kill switch's: running one again is safe), which are queued again."""
        self.flush()  # its own transaction follows: nothing written before may wait on it
        marks = ", ".join("?" for _ in rerun) or "''"
        with self.db.conn:
            self.db.execute(
                f"update commands set status = 'pending', ts = ? where status = 'running' and command in ({marks})",
                [utcnow().isoformat(), *rerun],
            )
            cursor = self.db.execute(
                "update commands set status = 'failed', result = 'the engine stopped while running it; check "
                "`cockpit audit` and `cockpit status` for what it did', done_ts = ? where status = 'running'",
                [utcnow().isoformat()],
            )
        return cursor.rowcount

    def requeue_command(self, command_id: int) -> None:
        self.flush()  # its own transaction follows: nothing written before may wait on it
        self.db.execute("update commands set status = 'pending' where id = ? and status = 'running'", [command_id])
        self.db.conn.commit()

    def claim_command(self, command_id: int) -> bool:
        """Mark a pending command running; False if it was not pending (it runs at most once)."""
        self.flush()  # its own transaction follows: nothing written before may wait on it
        with self.db.conn:
            cursor = self.db.execute(
                "update commands set status = 'running' where id = ? and status = 'pending'", [command_id]
            )
        return cursor.rowcount == 1

    def finish_command(self, command_id: int, ok: bool, result: str, details: Any = None) -> None:
        self.flush()  # its own transaction follows: nothing written before may wait on it
        self.db["commands"].update(
            command_id,
            {
                "status": "done" if ok else "failed",
                "result": result,
                "done_ts": utcnow().isoformat(),
                "details": dumps(details) if details else None,
            },
        )

    def command(self, command_id: int) -> dict[str, Any]:
        return self.db["commands"].get(command_id)

    # ------------------------------------------------------------ curves, counters, blobs

    def record_equity(self, equity: Decimal, peak: Decimal, drawdown_pct: Decimal) -> None:
        self._put_equity(equity, peak, drawdown_pct)
        self._wrote()

    def equity_curve(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = list(self.db.query("select * from equity order by id desc limit ?", [limit]))
        return rows[::-1]

    def save_day(self, data: dict[str, Any]) -> None:
        self._put_day(data)
        self._wrote()

    def load_day(self, day: str) -> dict[str, Any] | None:
        row = next(self.db.query("select data from daily_stats where day = ?", [day]), None)
        return json.loads(row["data"]) if row else None

    def save_json(self, key: str, value: Any) -> None:
        self._put_json(key, value)
        self._wrote()

    def load_json(self, key: str) -> Any:
        row = next(self.db.query("select value from engine_state where key = ?", [key]), None)
        return json.loads(row["value"]) if row else None

    # ------------------------------------------------------------ restore

    def trading_state(self) -> tuple[TradingState, dict[str, Any]]:
        """The persisted trading state (ACTIVE when none was ever stored) and who set it, why, when."""
        row = next(self.db.query("select * from engine_state where key = 'trading_state'"), None)
        if row is None:
            return TradingState.ACTIVE, {}
        info: dict[str, Any] = {
            "actor": row["actor"],
            "reason": row["reason"],
            "ts": row["ts"],
            "code": "",
            "values": {},
        }
        last = next(self.db.query('select code, "values" from state_changes order by id desc limit 1'), None)
        if last is not None:
            info["code"] = last["code"] or ""
            info["values"] = json.loads(last["values"] or "{}")
        return TradingState(row["value"]), info

    def orders(self, *, open_only: bool = False) -> list[Order]:
        sql = "select * from orders"
        if open_only:
            sql += " where status in ('NEW', 'OPEN', 'PARTIALLY_FILLED')"
        return [self._order(r) for r in self.db.query(sql + " order by created_at")]

    def order_events(self, client_id: str) -> list[dict[str, Any]]:
        return list(self.db.query("select * from order_events where client_id = ? order by id", [client_id]))

    def fills(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from fills order by ts"))

    def balances(self) -> list[Balance]:
        return [
            Balance(r["asset"], Decimal(r["free"]), Decimal(r["locked"]))
            for r in self.db.query("select * from balances order by asset")
        ]

    def audit(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest audit records first, JSON fields decoded."""
        rows = list(self.db.query("select * from audit order by id desc limit ?", [limit]))
        for r in rows:
            r["args"] = json.loads(r["args"] or "{}")
            r["values"] = json.loads(r["values"] or "{}")
            r["ok"] = bool(r["ok"])
            r["kill_switch"] = bool(r["kill_switch"])
        return rows

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.query("select * from alerts order by id desc limit ?", [limit]))

    def max_alert_id(self) -> int:
        row = next(self.db.query("select max(id) as m from alerts"), None)
        return int(row["m"] or 0) if row else 0

    def unacknowledged_alerts(self, limit: int = 500) -> list[Alert]:
        rows = self.db.query(
            "select * from alerts where acked_by is null and severity != 'INFO' order by id desc limit ?", [limit]
        )
        return [alert_from_row(r) for r in rows][::-1]

    def notifications(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.query("select * from notifications order by id desc limit ?", [limit]))

    def incidents(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.query("select * from incidents order by id desc limit ?", [limit]))

    def incident(self, incident_id: int) -> dict[str, Any] | None:
        return next(self.db.query("select * from incidents where id = ?", [incident_id]), None)

    def checklist_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest go/no-go checklist runs first, checks decoded."""
        rows = list(self.db.query("select * from checklist_runs order by id desc limit ?", [limit]))
        for r in rows:
            r["checks"] = json.loads(r["checks"] or "[]")
        return rows

    def validation_reports(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest validation reports first, each report decoded."""
        rows = list(self.db.query("select * from validation_reports order by id desc limit ?", [limit]))
        for r in rows:
            r["report"] = json.loads(r["report"] or "{}")
        return rows

    def engine_runs(self, since: str) -> list[dict[str, Any]]:
        """Engine runs (mode, start, stop) that were still going at ``since`` or started after, oldest first."""
        return list(
            self.db.query("select * from engine_runs where stopped_at is null or stopped_at >= ? order by id", [since])
        )

    def equity_between(self, since: str, until: str | None = None) -> list[dict[str, Any]]:
        return self._between("equity", since, until)

    def orders_ended_since(self, since: str, not_by: str = "") -> tuple[int, int]:
        """Orders that ended (filled, canceled, rejected, expired) since ``since``, and how many of them filled
        something: the fill rate's counts. ``not_by``: leave out orders whose origin starts with it."""
        row = next(
            self.db.query(
                "select count(*) as ended, sum(case when cast(filled as real) > 0 then 1 else 0 end) as filled "
                "from orders where updated_at >= ? and status in ('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED') "
                "and (? = '' or origin is null or substr(origin, 1, length(?)) != ?)",
                [since, not_by, not_by, not_by],
            )
        )
        return int(row["ended"] or 0), int(row["filled"] or 0)

    def state_changes(self, since: str, until: str | None = None) -> list[dict[str, Any]]:
        return self._between("state_changes", since, until)

    def alerts_between(self, since: str, until: str | None = None) -> list[dict[str, Any]]:
        return self._between("alerts", since, until)

    def audit_between(self, since: str, until: str | None = None) -> list[dict[str, Any]]:
        return self._between("audit", since, until)

    def _between(self, table: str, since: str, until: str | None) -> list[dict[str, Any]]:
        """Rows of ``table`` (a fixed name, never input) with ``ts`` from ``since`` to ``until``, oldest first."""
        sql, args = f"select * from {table} where ts >= ?", [since]
        if until:
            sql, args = sql + " and ts <= ?", [since, until]
        return list(self.db.query(sql + " order by id", args))

    @staticmethod
    def _order(r: dict[str, Any]) -> Order:
        return Order(
            client_id=r["client_id"],
            symbol=r["symbol"],
            side=r["side"],
            type=r["type"],
            amount=Decimal(r["amount"]),
            price=_dec(r["price"]),
            status=OrderStatus(r["status"]),
            filled=Decimal(r["filled"]),
            average=_dec(r["average"]),
            venue_id=r["venue_id"],
            created_at=datetime.fromisoformat(r["created_at"]),
            updated_at=datetime.fromisoformat(r["updated_at"]),
            origin=r["origin"],
        )


def _read_only(path: Path) -> sqlite3.Connection:
    """Open for reading only; on a read-only directory (no -shm can be made) read it as immutable."""
    if not path.exists():
        raise sqlite3.OperationalError("no such file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("select count(*) from sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if os.access(path.parent, os.W_OK):
            raise
        # A read-only directory: the WAL index cannot be made, so read the file as it is (what the last
        # checkpoint holds; a halt still only in the WAL is not seen: the message of `status` says so).
        return sqlite3.connect(f"file:{path}?immutable=1", uri=True)


def alert_from_row(r: dict[str, Any]) -> Alert:
    """A stored alert as the record the alert book keeps."""
    return Alert(
        Severity(r["severity"]),
        r["code"],
        r["message"],
        ts=datetime.fromisoformat(r["ts"]),
        values=json.loads(r.get("values") or "{}"),
        id=r["id"],
        count=r.get("count") or 1,
        last_ts=datetime.fromisoformat(r["last_ts"]) if r.get("last_ts") else None,
        acked_by=r.get("acked_by"),
        acked_at=datetime.fromisoformat(r["acked_at"]) if r.get("acked_at") else None,
        escalated=bool(r.get("escalated")),
    )


def fill_from_row(r: dict[str, Any]) -> Fill:
    """A stored fill as the record the portfolio replays at start."""
    return Fill(
        trade_id=r["trade_id"],
        client_id=r["client_id"],
        symbol=r["symbol"],
        side=r["side"],
        price=Decimal(r["price"]),
        amount=Decimal(r["amount"]),
        fee=Decimal(r["fee"]),
        fee_asset=r["fee_asset"],
        ts=datetime.fromisoformat(r["ts"]),
    )


def dumps(value: Any) -> str:
    """JSON for log lines and snapshots, with Decimals as strings."""
    return json.dumps(value, default=str, sort_keys=True)


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
_WRITERS: dict[type[Event], Callable[[Store, Any], None]] = {
    OrderCreated: Store._on_order_created,
    OrderUpdated: Store._on_order_updated,
    FillReceived: Store._on_fill,
    BalancesUpdated: Store._on_balances,
    TradingStateChanged: Store._on_state,
    AlertRaised: Store._on_alert,
    AlertUpdated: Store._on_alert,
    NotificationSent: Store._on_notification,
    IncidentChanged: Store._on_incident,
    CommandAudited: Store._on_audit,
    OrderRefused: Store._on_refused,
    EquitySampled: Store._on_equity,
    StopsChanged: lambda store, e: store._put_json("stops", {k: str(v) for k, v in e.stops.items()}),
    DayStatsChanged: lambda store, e: store._put_day(dict(e.day)),
    StrategyGuardChanged: lambda store, e: store._put_json("strategy_guard", dict(e.guard)),
    HoldingsChanged: lambda store, e: store._put_json("holdings", dict(e.holdings)),
    Persisted: lambda store, e: store._put_json(e.key, e.value),
    MonitorsChanged: lambda store, e: store._put_json("monitors", [dict(m) for m in e.monitors]),
    ChecklistCompleted: Store._on_checklist,
    ValidationReported: Store._on_validation,
    EngineStarted: Store._on_engine_started,
    EngineStopped: Store._on_engine_stopped,
}
