"""The store's schema: its tables and indexes, created and brought up to date version by version.

``meta.schema_version`` says which migrations a file has had; a file written by a newer cockpit is refused.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from engine.kernel.errors import StoreError

if TYPE_CHECKING:  # imported where a database is made: checking a file's schema costs no import of sqlite-utils
    import sqlite_utils

SCHEMA_VERSION = 7


def newer(path: Path, version: int) -> str:
    """What to say of a store a newer cockpit wrote."""
    return (
        f"{path} was written by a newer cockpit (schema {version} > {SCHEMA_VERSION}); cockpit never changes it: "
        "upgrade cockpit or use another --data-dir"
    )


def migrate(db: sqlite_utils.Database, path: Path, upto: int = SCHEMA_VERSION) -> None:
    """Create the tables of a new store, or add what an older one lacks (each version in its own transaction), up
    to the version ``upto`` (the current one but for ``tables_at``)."""
    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    row = next(db.query("select value from meta where key = 'schema_version'"), None)
    version = int(row["value"]) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(newer(path, version))
    if version < 1 <= upto:
        with db.conn:
            db.table("orders").create(
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
            db.table("orders").create_index(["status"])
            db.table("order_events").create(
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
            db.table("order_events").create_index(["client_id"])
            db.table("fills").create(
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
            db.table("balances").create({"asset": str, "free": str, "locked": str, "ts": str}, pk="asset")
            db.table("engine_state").create(
                {"key": str, "value": str, "actor": str, "reason": str, "ts": str}, pk="key"
            )
            db.table("state_changes").create(
                {"id": int, "ts": str, "previous": str, "state": str, "actor": str, "reason": str},
                pk="id",
            )
            db.table("alerts").create({"id": int, "ts": str, "severity": str, "code": str, "message": str}, pk="id")
            db.table("equity").create({"id": int, "ts": str, "equity": str, "peak": str, "drawdown_pct": str}, pk="id")
            db.table("daily_stats").create({"day": str, "data": str, "ts": str}, pk="day")
            db.table("commands").create(
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
            db.table("commands").create_index(["status"])
            db.table("meta").upsert({"key": "schema_version", "value": "1"}, pk="key")
    if version < 2 <= upto:
        with db.conn:
            # The audit trail of every command from every actor, and the orders the checks turned away.
            db.table("audit").create(
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
            db.table("refused_orders").create(
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
            db.table("state_changes").add_column("code", str)
            db.table("state_changes").add_column("values", str)
            db.table("alerts").add_column("values", str)
            db.table("commands").add_column("details", str)
            db.table("meta").upsert({"key": "schema_version", "value": "2"}, pk="key")
    if version < 3 <= upto:
        with db.conn:
            # Alerts are counted, acknowledged and escalated; deliveries to people are recorded; incidents.
            for column, kind in (
                ("count", int),
                ("last_ts", str),
                ("acked_by", str),
                ("acked_at", str),
                ("escalated", int),
            ):
                db.table("alerts").add_column(column, kind)
            db.table("notifications").create(
                {"id": int, "ts": str, "alert_id": int, "target": str, "ok": int, "attempts": int, "error": str},
                pk="id",
            )
            db.table("incidents").create(
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
            db.table("meta").upsert({"key": "schema_version", "value": "3"}, pk="key")
    if version < 4 <= upto:
        with db.conn:
            # The go/no-go gate's evidence: checklist runs, validation reports, and which mode ran when (the
            # 24-hour paper / dry-run stability check reads it).
            db.table("checklist_runs").create(
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
            db.table("validation_reports").create(
                {"id": int, "ts": str, "verdict": str, "hours": float, "trades": int, "path": str, "report": str},
                pk="id",
            )
            db.table("engine_runs").create(
                {"id": int, "started_at": str, "stopped_at": str, "mode": str, "venue": str}, pk="id"
            )
            db.table("meta").upsert({"key": "schema_version", "value": "4"}, pk="key")
    if version < 5 <= upto:
        with db.conn:
            # How an incident ended: who resumed, why, and whether it was an override past the monitors (what
            # they still said), as JSON.
            db.table("incidents").add_column("recovery", str)
            db.table("meta").upsert({"key": "schema_version", "value": "5"}, pk="key")
    if version < 6 <= upto:
        with db.conn:
            # The service API: the journal of the engine's must-deliver events (sequence-numbered, so a front end
            # that reconnects gets what it missed), and the remote API's bearer tokens (only their hashes).
            db.table("journal").create({"seq": int, "ts": str, "type": str, "body": str}, pk="seq")
            db.table("api_tokens").create(
                {"name": str, "role": str, "hash": str, "created_at": str, "created_by": str, "last_used_at": str},
                pk="name",
            )
            db.table("meta").upsert({"key": "schema_version", "value": "6"}, pk="key")
    if version < 7 <= upto:
        with db.conn:
            # Every closed round trip as the engine counted it (its PnL after fees, and funding on perps), and who
            # opened it: a strategy's record (round trips, wins, PnL, its losing streak) is summed from it at start,
            # so a restart does not wipe what runbook 003's disable and re-enable read (decision STR-09).
            db.table("round_trips").create(
                {"id": int, "symbol": str, "opened_by": str, "pnl": str, "closed_at": str}, pk="id"
            )
            db.table("round_trips").create_index(["opened_by"])
            db.table("meta").upsert({"key": "schema_version", "value": "7"}, pk="key")


@cache
def tables_at(version: int) -> dict[str, frozenset[str]]:
    """The tables, and their columns, of a store at schema ``version``: made by ``migrate`` itself in memory, so the
    description of cockpit's schema is written once."""
    import sqlite_utils

    db = sqlite_utils.Database(memory=True)
    try:
        migrate(db, Path(":memory:"), upto=version)
        return {name: frozenset(db.table(name).columns_dict) for name in db.table_names()}
    finally:
        db.close()
