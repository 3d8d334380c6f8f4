"""The checklist's checks over the store: the latest validation report and 24 h of paper / dry-run stability."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.gate.checklist import Check, Checklist, Status
from engine.gate.history_checks import stability, validation_report
from engine.kernel.config import Settings
from engine.kernel.events import Alert, AlertRaised, Severity, ValidationReported
from engine.store.db import Store


def report(verdict: str, hours: float = 48.0, failed: list[str] | None = None) -> dict:
    return {
        "verdict": verdict,
        "trades": 12,
        "win_rate": 50.0,
        "sharpe": 0.9,
        "max_drawdown_pct": 3.0,
        "failed": failed or [],
        "simulated": {"hours": hours},
    }


def test_the_latest_validation_report_decides(tmp_path):
    s = Settings(engine={"data_dir": tmp_path})
    store = Store.in_dir(tmp_path)
    try:
        assert validation_report(s, store, live=True).status == Status.WARN  # none: WARN, even in live
        store.handle(ValidationReported(report("GO", hours=12), "a.json"))
        short = validation_report(s, store, live=True)
        assert short.status == Status.WARN and "12 simulated hours" in short.detail
        store.handle(ValidationReported(report("NO-GO", failed=["trades 7 < 10 (short by 3)"]), "b.json"))
        assert validation_report(s, store, live=False).status == Status.WARN
        no_go = validation_report(s, store, live=True)
        assert no_go.status == Status.FAIL and "trades 7 < 10 (short by 3)" in no_go.detail
        store.handle(ValidationReported(report("GO"), "c.json"))
        go = validation_report(s, store, live=True)
        assert go.status == Status.PASS and go.evidence["file"] == "c.json"
        store.db.execute("update validation_reports set ts = ?", [(datetime.now(UTC) - timedelta(days=30)).isoformat()])
        assert validation_report(s, store, live=True).status == Status.WARN  # too old to count
    finally:
        store.close()


def test_stability_needs_24_hours_of_paper_without_crit_and_with_fills(tmp_path):
    s = Settings(engine={"data_dir": tmp_path})
    now = datetime.now(UTC)
    store = Store.in_dir(tmp_path)
    try:
        empty = stability(s, store, live=True)
        assert empty.status == Status.FAIL and "only 0.0 h" in empty.detail
        assert stability(s, store, live=False).status == Status.WARN
        store.db["engine_runs"].insert(
            {
                "started_at": (now - timedelta(hours=30)).isoformat(),
                "mode": "live",
                "venue": "binance",
                "stopped_at": (now - timedelta(hours=20)).isoformat(),
            }
        )
        store.db["engine_runs"].insert(
            {"started_at": (now - timedelta(hours=20)).isoformat(), "mode": "paper", "venue": "sim"}
        )
        for i, status in enumerate(["FILLED"] * 19 + ["CANCELED"]):
            store.db["orders"].insert(
                {
                    "client_id": f"c{i}",
                    "symbol": "BTC/USDT",
                    "side": "buy",
                    "type": "limit",
                    "amount": "1",
                    "status": status,
                    "filled": "1" if status == "FILLED" else "0",
                    "origin": "strategy:ladder",
                    "created_at": now.isoformat(),
                    "updated_at": now.isoformat(),
                }
            )
        partial = stability(s, store, live=True)
        assert partial.status == Status.FAIL and partial.evidence["covered_h"] == 20.0  # the live hours do not count
        assert partial.evidence["fill_rate_pct"] == "95.00"
        store.db.execute(
            "update engine_runs set started_at = ? where mode = 'paper'", [(now - timedelta(hours=26)).isoformat()]
        )
        assert stability(s, store, live=True).status == Status.PASS
        store.handle(AlertRaised(Alert(Severity.CRIT, "WS_STALE", "no data for 61s", id=1)))
        crit = stability(s, store, live=True)
        assert crit.status == Status.FAIL and "1 CRIT alert(s) (WS_STALE)" in crit.detail
    finally:
        store.close()


def test_a_checklist_counts_and_round_trips():
    checks = (
        Check("a", "A", Status.PASS, "ok"),
        Check("b", "B", Status.WARN, "hm", {"x": 1}, "do y"),
        Check("c", "C", Status.FAIL, "no"),
    )
    checklist = Checklist(checks, "paper", "sim", "2025-01-06T00:00:00+00:00", "operator:test", 12.0)
    assert checklist.summary() == {"PASS": 1, "WARN": 1, "FAIL": 1} and checklist.verdict == "NO-GO"
    assert checklist.line() == "NO-GO · 1 PASS · 1 WARN · 1 FAIL"
    assert Checklist.from_dict(checklist.to_dict()) == checklist
