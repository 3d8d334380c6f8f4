"""The store: order events written per second, and how long a commit takes, against raw SQLite in the same run.

Each order event is two rows (the order's upsert and its order_events row), committed with ``synchronous=FULL``
in WAL mode, as the engine writes them:
- ``single``: every event its own transaction (an event the engine learns alone);
- ``batch``: ``--batch`` events per transaction (a cancel-all's answer, one stream read: ``Store.batch``).
The floor is plain sqlite3 ``executemany`` of the same rows into the same schema in one transaction.
The data directory is a fresh one under ``--dir`` (default: the system's temporary directory).

Run: .venv/bin/python bench/persistence.py [--events N] [--batch B] [--dir PATH]; prints one JSON object.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import summary

from engine.kernel.bus import EventBus
from engine.kernel.events import OrderStatus
from engine.store.db import Store
from engine.trading.orders import OrderTracker

PARAMS = {"events": 20_000, "batch": 100, "dir": ""}
QUICK = {"events": 200, "batch": 50, "dir": ""}


def _orders(store: Store, n: int) -> tuple[OrderTracker, list[str]]:
    bus = EventBus()
    bus.add_handler(store.handle)
    tracker = OrderTracker(bus)
    ids = [
        tracker.create("BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal(50_000 + i), "bench").client_id
        for i in range(n)
    ]
    return tracker, ids


def _run(store: Store, tracker: OrderTracker, ids: list[str], per_commit: int) -> tuple[float, list[float]]:
    """Seconds to write an OPEN then a CANCELED event for each order, ``per_commit`` events per transaction."""
    if hasattr(store, "commit_ms"):
        store.commit_ms.clear()
    batch = getattr(store, "batch", None)
    events = [(cid, status) for status in (OrderStatus.OPEN, OrderStatus.CANCELED) for cid in ids]
    start = time.perf_counter()
    for i in range(0, len(events), per_commit):
        with batch() if batch and per_commit > 1 else contextlib.nullcontext():
            for cid, status in events[i : i + per_commit]:
                tracker.apply(cid, status, source="bench")
    return time.perf_counter() - start, list(getattr(store, "commit_ms", []))


async def measure(events: int, batch: int, dir: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="cockpit-bench-", dir=dir or None))
    orders = max(1, events // 2)  # two events per order
    results: dict[str, Any] = {}
    for name, per_commit in (("single", 1), ("batch", batch)):
        store = Store.in_dir(root / name)
        tracker, ids = _orders(store, orders)
        seconds, commits = _run(store, tracker, ids, per_commit)
        store.close()
        n_events = 2 * len(ids)
        results[name] = {
            "events_per_s": round(n_events / seconds),
            "rows_per_s": round(2 * n_events / seconds),
            "events_per_commit": per_commit,
            "commit_ms": summary(commits),
        }
    # Floor: the same rows by plain sqlite3, one transaction, into a store's own schema.
    floor_store = Store.in_dir(root / "floor")
    floor_store.close()
    conn = sqlite3.connect(root / "floor" / "cockpit.db")
    conn.execute("PRAGMA synchronous=FULL")
    now = "2026-01-01T00:00:00+00:00"
    order_rows = [
        (
            f"ck-{i}",
            "BTC/USDT",
            "buy",
            "limit",
            "0.001",
            str(50_000 + i),
            "CANCELED",
            "0",
            None,
            None,
            "bench",
            now,
            now,
        )
        for i in range(events)
    ]
    event_rows = [(f"ck-{i}", now, "CANCELED", "OPEN", "0", "bench", "") for i in range(events)]
    start = time.perf_counter()
    with conn:
        conn.executemany(
            "insert into orders values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict(client_id) "
            "do update set status = excluded.status",
            order_rows,
        )
        conn.executemany(
            "insert into order_events (client_id, ts, status, previous, filled, source, detail) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            event_rows,
        )
    seconds = time.perf_counter() - start
    conn.close()
    results["floor_raw_sqlite_one_transaction"] = {
        "events_per_s": round(events / seconds),
        "rows_per_s": round(2 * events / seconds),
    }
    results["ratio_batch_vs_floor"] = round(
        results["floor_raw_sqlite_one_transaction"]["rows_per_s"] / results["batch"]["rows_per_s"], 2
    )
    return {
        "benchmark": "persistence",
        "events": 2 * orders,
        "dir": str(root),
        **results,
        "goal": ">= 20,000 order-event rows/s, commit p99 <= 10 ms",
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
