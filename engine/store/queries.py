"""The store's typed read queries: what a restart restores (trading state, orders, balances, fills) and what the
front ends, the reports and the go/no-go gate read (audit, alerts, incidents, checklist runs, equity, ...)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import sqlite_utils

from engine.kernel.events import Alert, Balance, Order, TradingState
from engine.store.rows import alert_from_row, order_from_row


class Queries:
    """The store's half that reads (on the store's own connection); it writes nothing."""

    db: sqlite_utils.Database

    # ------------------------------------------------------------ curves, counters, blobs

    def equity_curve(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = list(self.db.query("select * from equity order by id desc limit ?", [limit]))
        return rows[::-1]

    def load_day(self, day: str) -> dict[str, Any] | None:
        row = next(self.db.query("select data from daily_stats where day = ?", [day]), None)
        return json.loads(row["data"]) if row else None

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
        return [order_from_row(r) for r in self.db.query(sql + " order by created_at")]

    def order_events(self, client_id: str) -> list[dict[str, Any]]:
        return list(self.db.query("select * from order_events where client_id = ? order by id", [client_id]))

    def fills(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from fills order by ts"))

    def round_trips(self, opened_by: str | None = None) -> list[dict[str, Any]]:
        """The closed round trips, oldest first (of those ``opened_by`` opened, when given); none in a store from
        before schema 7 that a reader opened without migrating it."""
        if not self.db.table("round_trips").exists():
            return []
        sql = "select symbol, opened_by, pnl, closed_at from round_trips"
        args: list[Any] = []
        if opened_by is not None:
            sql += " where opened_by = ?"
            args.append(opened_by)
        return list(self.db.query(sql + " order by id", args))

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

    def fills_page(self, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        """Fills newest first, ``limit`` of them, before the fill with rowid ``before`` (a page of the list)."""
        sql = "select rowid as id, * from fills"
        args: list[Any] = []
        if before is not None:
            sql, args = sql + " where rowid < ?", [before]
        return list(self.db.query(sql + " order by rowid desc limit ?", [*args, limit]))

    def alerts_page(self, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        """Alerts newest first, ``limit`` of them, before the alert ``before``."""
        if before is None:
            return self.alerts(limit)
        return list(self.db.query("select * from alerts where id < ? order by id desc limit ?", [before, limit]))

    def audit_page(self, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        """Audit records newest first, ``limit`` of them, before the record ``before``, JSON fields decoded."""
        if before is None:
            return self.audit(limit)
        rows = list(self.db.query("select * from audit where id < ? order by id desc limit ?", [before, limit]))
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

    def journal_last_seq(self) -> int:
        """The newest journaled event's sequence number (0: none yet)."""
        row = next(self.db.query("select max(seq) as seq from journal"), None)
        return int(row["seq"]) if row and row["seq"] is not None else 0

    def journal_since(self, seq: int, limit: int = 10_000) -> list[tuple[int, str]]:
        """Journaled events after ``seq``, oldest first: (seq, JSON body)."""
        return [
            (int(r["seq"]), str(r["body"]))
            for r in self.db.query("select seq, body from journal where seq > ? order by seq limit ?", [seq, limit])
        ]

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
