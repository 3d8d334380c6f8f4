"""SQLite persistence (sqlite-utils, WAL): the store subscribes to engine events and can restore state.

Every Decimal is stored as TEXT so no amount ever passes through a float. Writes are synchronous with the
publish that caused them (see ``engine.bus``), with ``synchronous=FULL`` so that a client order id or a
halt is on disk before the engine acts on it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlite_utils

from engine.errors import StoreError, unwritable

from engine.events import (
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
    HoldingsChanged,
    IncidentChanged,
    NotificationSent,
    Persisted,
    MonitorsChanged,
    OrderRefused,
    StopsChanged,
    StrategyGuardChanged,
    Fill,
    FillReceived,
    Order,
    OrderCreated,
    OrderStatus,
    OrderUpdated,
    Severity,
    TradingState,
    TradingStateChanged,
    ValidationReported,
    utcnow,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
DB_NAME = "cockpit.db"


def _d(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class Store:
    """The engine's SQLite file: orders, order events, fills, balances, alerts and engine state."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        _check_own(path)
        try:
            if readonly:
                self.db = sqlite_utils.Database(_read_only(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite_utils.Database(path)
            _check_tables(self.db, path)
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
            raise StoreError(_explain(path, exc, readonly)) from None

    @classmethod
    def in_dir(cls, data_dir: Path, readonly: bool = False) -> "Store":
        return cls(Path(data_dir) / DB_NAME, readonly=readonly)

    def close(self) -> None:
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
                        "client_id": str, "symbol": str, "side": str, "type": str, "amount": str,
                        "price": str, "status": str, "filled": str, "average": str, "venue_id": str,
                        "origin": str, "created_at": str, "updated_at": str,
                    },
                    pk="client_id",
                )
                db["orders"].create_index(["status"])
                db["order_events"].create(
                    {
                        "id": int, "client_id": str, "ts": str, "status": str, "previous": str,
                        "filled": str, "source": str, "detail": str,
                    },
                    pk="id",
                )
                db["order_events"].create_index(["client_id"])
                db["fills"].create(
                    {
                        "trade_id": str, "symbol": str, "client_id": str, "side": str, "price": str,
                        "amount": str, "fee": str, "fee_asset": str, "ts": str,
                    },
                    pk=("symbol", "trade_id"),
                )
                db["balances"].create({"asset": str, "free": str, "locked": str, "ts": str}, pk="asset")
                db["engine_state"].create(
                    {"key": str, "value": str, "actor": str, "reason": str, "ts": str}, pk="key"
                )
                db["state_changes"].create(
                    {"id": int, "ts": str, "previous": str, "state": str, "actor": str, "reason": str},
                    pk="id",
                )
                db["alerts"].create(
                    {"id": int, "ts": str, "severity": str, "code": str, "message": str}, pk="id"
                )
                db["equity"].create(
                    {"id": int, "ts": str, "equity": str, "peak": str, "drawdown_pct": str}, pk="id"
                )
                db["daily_stats"].create({"day": str, "data": str, "ts": str}, pk="day")
                db["commands"].create(
                    {
                        "id": int, "ts": str, "command": str, "args": str, "actor": str, "reason": str,
                        "status": str, "result": str, "done_ts": str,
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
                        "id": int, "ts": str, "command": str, "actor": str, "reason": str, "args": str,
                        "values": str, "ok": int, "result": str, "duration_ms": float, "kill_switch": int,
                    },
                    pk="id",
                )
                db["refused_orders"].create(
                    {"id": int, "ts": str, "actor": str, "symbol": str, "side": str, "amount": str, "price": str,
                     "reason": str},
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
                for column, kind in (("count", int), ("last_ts", str), ("acked_by", str), ("acked_at", str),
                                     ("escalated", int)):
                    db["alerts"].add_column(column, kind)
                db["notifications"].create(
                    {"id": int, "ts": str, "alert_id": int, "target": str, "ok": int, "attempts": int,
                     "error": str}, pk="id")
                db["incidents"].create(
                    {"id": int, "opened_at": str, "trigger": str, "actor": str, "code": str, "reason": str,
                     "first_reading_at": str, "alerted_at": str, "acted_at": str, "recovered_at": str,
                     "snapshot": str, "actions": str}, pk="id")
                db["meta"].upsert({"key": "schema_version", "value": "3"}, pk="key")
        if version < 4:
            with db.conn:
                # The go/no-go gate's evidence: checklist runs, validation reports, and which mode ran when (the
                # 24-hour paper / dry-run stability check reads it).
                db["checklist_runs"].create(
                    {"id": int, "ts": str, "mode": str, "venue": str, "verdict": str, "actor": str, "passed": int,
                     "warned": int, "failed": int, "checks": str}, pk="id")
                db["validation_reports"].create(
                    {"id": int, "ts": str, "verdict": str, "hours": float, "trades": int, "path": str,
                     "report": str}, pk="id")
                db["engine_runs"].create(
                    {"id": int, "started_at": str, "stopped_at": str, "mode": str, "venue": str}, pk="id")
                db["meta"].upsert({"key": "schema_version", "value": "4"}, pk="key")

    # ------------------------------------------------------------ subscriber

    def handle(self, event: Event) -> None:
        """Write what an event says; events that carry no state (tickers) are not stored."""
        if isinstance(event, OrderCreated):
            self._save_order(event.order)
            self._order_event(event.order, None, "engine", "created locally, before sending")
        elif isinstance(event, OrderUpdated):
            self._save_order(event.order)
            self._order_event(event.order, event.previous, event.source, event.detail)
        elif isinstance(event, FillReceived):
            f = event.fill
            self.db["fills"].upsert(
                {
                    "trade_id": f.trade_id, "symbol": f.symbol, "client_id": f.client_id, "side": f.side,
                    "price": _d(f.price), "amount": _d(f.amount), "fee": _d(f.fee),
                    "fee_asset": f.fee_asset, "ts": f.ts.isoformat(),
                },
                pk=("symbol", "trade_id"),
            )
        elif isinstance(event, BalancesUpdated):
            now = utcnow().isoformat()
            with self.db.conn:
                for b in event.balances:
                    self.db["balances"].upsert(
                        {"asset": b.asset, "free": _d(b.free), "locked": _d(b.locked), "ts": now},
                        pk="asset",
                    )
        elif isinstance(event, TradingStateChanged):
            with self.db.conn:
                self.db["engine_state"].upsert(
                    {
                        "key": "trading_state", "value": event.state.value, "actor": event.actor,
                        "reason": event.reason, "ts": event.ts.isoformat(),
                    },
                    pk="key",
                )
                self.db["state_changes"].insert(
                    {
                        "ts": event.ts.isoformat(), "previous": event.previous.value,
                        "state": event.state.value, "actor": event.actor, "reason": event.reason,
                        "code": event.code, "values": dumps(event.values),
                    }
                )
        elif isinstance(event, (AlertRaised, AlertUpdated)):
            self._save_alert(event.alert)
        elif isinstance(event, NotificationSent):
            self.db["notifications"].insert(
                {"ts": event.ts.isoformat(), "alert_id": event.alert_id, "target": event.target, "ok": int(event.ok),
                 "attempts": event.attempts, "error": event.error})
        elif isinstance(event, IncidentChanged):
            self.db["incidents"].upsert(dict(event.incident), pk="id")
        elif isinstance(event, CommandAudited):
            self.db["audit"].insert(
                {"ts": event.ts.isoformat(), "command": event.command, "actor": event.actor, "reason": event.reason,
                 "args": dumps(event.args), "values": dumps(event.values), "ok": int(event.ok),
                 "result": event.result, "duration_ms": round(event.duration_ms, 3),
                 "kill_switch": int(event.kill_switch)}
            )
        elif isinstance(event, OrderRefused):
            self.db["refused_orders"].insert(
                {"ts": event.ts.isoformat(), "actor": event.actor, "symbol": event.symbol, "side": event.side,
                 "amount": _d(event.amount), "price": _d(event.price), "reason": event.reason}
            )
        elif isinstance(event, EquitySampled):
            self.record_equity(event.equity, event.peak, event.drawdown_pct)
        elif isinstance(event, StopsChanged):
            self.save_json("stops", {k: str(v) for k, v in event.stops.items()})
        elif isinstance(event, DayStatsChanged):
            self.save_day(dict(event.day))
        elif isinstance(event, StrategyGuardChanged):
            self.save_json("strategy_guard", dict(event.guard))
        elif isinstance(event, HoldingsChanged):
            self.save_json("holdings", dict(event.holdings))
        elif isinstance(event, Persisted):
            self.save_json(event.key, event.value)
        elif isinstance(event, MonitorsChanged):
            self.save_json("monitors", [dict(m) for m in event.monitors])
        elif isinstance(event, ChecklistCompleted):
            c = event.checklist
            summary = c.get("summary", {})
            self.db["checklist_runs"].insert(
                {"ts": c.get("ts"), "mode": c.get("mode"), "venue": c.get("venue"), "verdict": c.get("verdict"),
                 "actor": c.get("actor"), "passed": summary.get("PASS", 0), "warned": summary.get("WARN", 0),
                 "failed": summary.get("FAIL", 0), "checks": dumps(c.get("checks", []))})
        elif isinstance(event, ValidationReported):
            r = event.report
            self.db["validation_reports"].insert(
                {"ts": utcnow().isoformat(), "verdict": r.get("verdict"),
                 "hours": (r.get("simulated") or {}).get("hours"), "trades": r.get("trades"), "path": event.path,
                 "report": dumps(r)})
        elif isinstance(event, EngineStarted):
            self.db["engine_runs"].insert({"started_at": utcnow().isoformat(), "mode": event.mode,
                                           "venue": event.venue})
        elif isinstance(event, EngineStopped):
            self.db.execute("update engine_runs set stopped_at = ? where id = (select max(id) from engine_runs) "
                            "and stopped_at is null", [utcnow().isoformat()])
            self.db.conn.commit()

    def _save_alert(self, a: Alert) -> None:
        self.db["alerts"].upsert(
            {"id": a.id, "ts": a.ts.isoformat(), "severity": a.severity.value, "code": a.code, "message": a.message,
             "values": dumps(a.values), "count": a.count, "last_ts": a.last_ts.isoformat() if a.last_ts else None,
             "acked_by": a.acked_by, "acked_at": a.acked_at.isoformat() if a.acked_at else None,
             "escalated": int(a.escalated)}, pk="id")

    def _save_order(self, o: Order) -> None:
        self.db["orders"].upsert(
            {
                "client_id": o.client_id, "symbol": o.symbol, "side": o.side, "type": o.type,
                "amount": _d(o.amount), "price": _d(o.price), "status": o.status.value,
                "filled": _d(o.filled), "average": _d(o.average), "venue_id": o.venue_id,
                "origin": o.origin, "created_at": o.created_at.isoformat(),
                "updated_at": o.updated_at.isoformat(),
            },
            pk="client_id",
        )

    def _order_event(self, o: Order, previous: OrderStatus | None, source: str, detail: str) -> None:
        self.db["order_events"].insert(
            {
                "client_id": o.client_id, "ts": o.updated_at.isoformat(), "status": o.status.value,
                "previous": previous.value if previous else None, "filled": _d(o.filled),
                "source": source, "detail": detail,
            }
        )

    # ------------------------------------------------------------ commands from other shells

    def submit_command(self, command: str, actor: str, reason: str, args: dict[str, Any] | None = None) -> int:
        """Queue a command for the running engine; return its id."""
        table = self.db["commands"]
        table.insert({"ts": utcnow().isoformat(), "command": command, "args": dumps(args or {}), "actor": actor,
                      "reason": reason, "status": "pending"})
        return int(table.last_pk)

    def pending_commands(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from commands where status = 'pending' order by id"))

    def abandon_running_commands(self, rerun: tuple[str, ...] = ()) -> int:
        """At start: commands a previous engine was running when it stopped are failed (never run twice), except
        those in ``rerun`` (the kill switch's: running one again is safe), which are queued again."""
        marks = ", ".join("?" for _ in rerun) or "''"
        with self.db.conn:
            self.db.execute(f"update commands set status = 'pending', ts = ? where status = 'running' "
                            f"and command in ({marks})", [utcnow().isoformat(), *rerun])
            cursor = self.db.execute(
                "update commands set status = 'failed', result = 'the engine stopped while running it; check "
                "`cockpit audit` and `cockpit status` for what it did', done_ts = ? where status = 'running'",
                [utcnow().isoformat()])
        return cursor.rowcount

    def requeue_command(self, command_id: int) -> None:
        self.db.execute("update commands set status = 'pending' where id = ? and status = 'running'", [command_id])
        self.db.conn.commit()

    def claim_command(self, command_id: int) -> bool:
        """Mark a pending command running; False if it was not pending (it runs at most once)."""
        with self.db.conn:
            cursor = self.db.execute("update commands set status = 'running' where id = ? and status = 'pending'",
                                     [command_id])
        return cursor.rowcount == 1

    def finish_command(self, command_id: int, ok: bool, result: str, details: Any = None) -> None:
        self.db["commands"].update(
            command_id, {"status": "done" if ok else "failed", "result": result, "done_ts": utcnow().isoformat(),
                         "details": dumps(details) if details else None}
        )

    def command(self, command_id: int) -> dict[str, Any]:
        return self.db["commands"].get(command_id)

    # ------------------------------------------------------------ curves, counters, blobs

    def record_equity(self, equity: Decimal, peak: Decimal, drawdown_pct: Decimal) -> None:
        self.db["equity"].insert({"ts": utcnow().isoformat(), "equity": str(equity), "peak": str(peak),
                                  "drawdown_pct": str(drawdown_pct)})

    def equity_curve(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = list(self.db.query("select * from equity order by id desc limit ?", [limit]))
        return rows[::-1]

    def save_day(self, data: dict[str, Any]) -> None:
        self.db["daily_stats"].upsert({"day": data["day"], "data": dumps(data), "ts": utcnow().isoformat()},
                                      pk="day")

    def load_day(self, day: str) -> dict[str, Any] | None:
        row = next(self.db.query("select data from daily_stats where day = ?", [day]), None)
        return json.loads(row["data"]) if row else None

    def save_json(self, key: str, value: Any) -> None:
        self.db["engine_state"].upsert({"key": key, "value": dumps(value), "actor": "engine", "reason": "",
                                        "ts": utcnow().isoformat()}, pk="key")

    def load_json(self, key: str) -> Any:
        row = next(self.db.query("select value from engine_state where key = ?", [key]), None)
        return json.loads(row["value"]) if row else None

    # ------------------------------------------------------------ restore

    def trading_state(self) -> tuple[TradingState, dict[str, Any]]:
        """The persisted trading state (ACTIVE when none was ever stored) and who set it, why, when."""
        row = next(self.db.query("select * from engine_state where key = 'trading_state'"), None)
        if row is None:
            return TradingState.ACTIVE, {}
        info: dict[str, Any] = {"actor": row["actor"], "reason": row["reason"], "ts": row["ts"], "code": "",
                                "values": {}}
        last = next(self.db.query("select code, \"values\" from state_changes order by id desc limit 1"), None)
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
        return list(
            self.db.query("select * from order_events where client_id = ? order by id", [client_id])
        )

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
        rows = self.db.query("select * from alerts where acked_by is null and severity != 'INFO' "
                             "order by id desc limit ?", [limit])
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
        return list(self.db.query("select * from engine_runs where stopped_at is null or stopped_at >= ? "
                                  "order by id", [since]))

    def equity_between(self, since: str, until: str | None = None) -> list[dict[str, Any]]:
        return self._between("equity", since, until)

    def orders_ended_since(self, since: str, not_by: str = "") -> tuple[int, int]:
        """Orders that ended (filled, canceled, rejected, expired) since ``since``, and how many of them filled
        something: the fill rate's counts. ``not_by``: leave out orders whose origin starts with it."""
        row = next(self.db.query(
            "select count(*) as ended, sum(case when cast(filled as real) > 0 then 1 else 0 end) as filled "
            "from orders where updated_at >= ? and status in ('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED') "
            "and (? = '' or origin is null or substr(origin, 1, length(?)) != ?)",
            [since, not_by, not_by, not_by]))
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
            client_id=r["client_id"], symbol=r["symbol"], side=r["side"], type=r["type"],
            amount=Decimal(r["amount"]), price=_dec(r["price"]), status=OrderStatus(r["status"]),
            filled=Decimal(r["filled"]), average=_dec(r["average"]), venue_id=r["venue_id"],
            created_at=datetime.fromisoformat(r["created_at"]),
            updated_at=datetime.fromisoformat(r["updated_at"]), origin=r["origin"],
        )


SQLITE_MAGIC = b"SQLite format 3\x00"


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


def refuse_foreign(path: Path) -> None:
    """StoreError for a file that is not cockpit's, read without locks or journals: nothing is created or removed
    (a front end checks before it starts the engine, which opens the store for writing)."""
    _check_own(path)
    if not path.exists():
        return
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        _check_tables(sqlite_utils.Database(conn), path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(_explain(path, exc, readonly=True)) from None
    finally:
        conn.close()


def _check_own(path: Path) -> None:
    """Refuse, before writing a byte, a file that is not an SQLite database."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}; check the data directory's permissions") from None
    if head and head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not a cockpit store: it is not an SQLite database. cockpit never writes to a "
                         "file that is not its own: move it away or pass another --data-dir")


def _check_tables(db: sqlite_utils.Database, path: Path) -> None:
    """An SQLite file with tables but no cockpit schema is someone else's: refuse it, untouched."""
    names = db.table_names()
    if names and "meta" not in names:
        raise StoreError(f"{path} is an SQLite database but not cockpit's (tables: {', '.join(names[:6])}). cockpit "
                         "never writes to a file that is not its own: move it away or pass another --data-dir")
    if "meta" in names:
        row = next(db.query("select value from meta where key = 'schema_version'"), None)
        if row is None:
            raise StoreError(f"{path} has a meta table but no cockpit schema version: it is not cockpit's. Move it "
                             "away or pass another --data-dir")


def _explain(path: Path, exc: BaseException, readonly: bool) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    if readonly:
        return (f"cannot read the cockpit store {path}: {reason}. If an older cockpit wrote it, start the engine "
                "once to upgrade it")
    reason = unwritable(path.parent) or reason  # SQLite says "unable to open database file" for all of them
    return (f"cannot write the cockpit store {path}: {reason}. cockpit needs a writable data directory "
            f"({path.parent}) with free space: fix its permissions, remount it writable or free space, or pass "
            f"another --data-dir (cockpit status --data-dir {path.parent} still reads it)")


def alert_from_row(r: dict[str, Any]) -> Alert:
    """A stored alert as the record the alert book keeps."""
    return Alert(Severity(r["severity"]), r["code"], r["message"], ts=datetime.fromisoformat(r["ts"]),
                 values=json.loads(r.get("values") or "{}"), id=r["id"], count=r.get("count") or 1,
                 last_ts=datetime.fromisoformat(r["last_ts"]) if r.get("last_ts") else None,
                 acked_by=r.get("acked_by"),
                 acked_at=datetime.fromisoformat(r["acked_at"]) if r.get("acked_at") else None,
                 escalated=bool(r.get("escalated")))


def fill_from_row(r: dict[str, Any]) -> Fill:
    """A stored fill as the record the portfolio replays at start."""
    return Fill(trade_id=r["trade_id"], client_id=r["client_id"], symbol=r["symbol"], side=r["side"],
                price=Decimal(r["price"]), amount=Decimal(r["amount"]), fee=Decimal(r["fee"]),
                fee_asset=r["fee_asset"], ts=datetime.fromisoformat(r["ts"]))


def dumps(value: Any) -> str:
    """JSON for log lines and snapshots, with Decimals as strings."""
    return json.dumps(value, default=str, sort_keys=True)
