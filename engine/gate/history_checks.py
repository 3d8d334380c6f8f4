"""The checklist's checks over what the store holds: the latest paper-validation report, and how stable the last
24 hours of paper or dry-run trading were (runbook 000 §1 "Dry-Run Stability": no CRIT alert, fill rate over 90 %,
fewer than 5 reconnects, no REST error, over at least 24 hours).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.gate.checklist import Check, Status
from engine.kernel.config import Settings
from engine.store.db import Store

NOT_TRADING_MODES = ("paper", "dry-run")


def _age_h(ts: str, now: datetime) -> float:
    return (now - datetime.fromisoformat(ts)).total_seconds() / 3600


def validation_report(settings: Settings, store: Store | None, live: bool) -> Check:
    """PASS for a GO report at least ``[validation] duration_h`` long and newer than ``validation_max_age_h``;
    WARN when there is none (or it is too old or too short); a NO-GO is FAIL in live, WARN otherwise."""
    c = ("validation_report", "GO paper-validation report")
    fix = "run `cockpit validate --duration 48h` and look at its report"
    if store is None:
        return Check(*c, Status.WARN, "no store to read reports from", {}, fix)
    rows = store.validation_reports(limit=1)
    if not rows:
        return Check(*c, Status.WARN, "no validation report on record", {}, fix)
    row = rows[0]
    report = row["report"]
    now = datetime.now(UTC)
    age = _age_h(row["ts"], now)
    max_age = settings.preflight.validation_max_age_h
    wanted = settings.validation.duration_h
    hours = float((report.get("simulated") or {}).get("hours") or 0)
    evidence = {
        "verdict": row["verdict"],
        "at": row["ts"],
        "age_h": round(age, 1),
        "max_age_h": max_age,
        "hours": hours,
        "hours_wanted": wanted,
        "trades": report.get("trades"),
        "win_rate": report.get("win_rate"),
        "sharpe": report.get("sharpe"),
        "max_drawdown_pct": report.get("max_drawdown_pct"),
        "file": row.get("path") or "",
    }
    if row["verdict"] != "GO":
        failed = "; ".join(report.get("failed") or []) or "see the report"
        return Check(
            *c,
            Status.FAIL if live else Status.WARN,
            f"the latest report is NO-GO: {failed}"[:300],
            evidence,
            "fix the strategy or its configuration and validate again",
        )
    if age > max_age:
        return Check(*c, Status.WARN, f"the latest GO report is {age:.0f} h old (over {max_age:g} h)", evidence, fix)
    if hours + 1e-9 < wanted:
        return Check(
            *c,
            Status.WARN,
            f"the latest GO report covers {hours:g} simulated hours, under the "
            f"{wanted:g} h asked for ([validation] duration_h)",
            evidence,
            fix,
        )
    return Check(
        *c,
        Status.PASS,
        f"GO, {age:.1f} h ago: {report.get('trades')} trades, win rate "
        f"{report.get('win_rate')}%, Sharpe {report.get('sharpe')}, max drawdown "
        f"{report.get('max_drawdown_pct')}% over {hours:g} h",
        evidence,
    )


def _covered_hours(runs: list[dict[str, Any]], since: datetime, now: datetime) -> float:
    """Hours of the window in which an engine ran in paper or dry-run mode (a run with no stop ended where the
    next one started, or runs still)."""
    total = 0.0
    for i, run in enumerate(runs):
        if run["mode"] not in NOT_TRADING_MODES:
            continue
        start = max(datetime.fromisoformat(run["started_at"]), since)
        if run.get("stopped_at"):
            end = datetime.fromisoformat(run["stopped_at"])
        elif i + 1 < len(runs):
            end = datetime.fromisoformat(runs[i + 1]["started_at"])
        else:
            end = now
        total += max(0.0, (min(end, now) - start).total_seconds()) / 3600
    return total


def stability(settings: Settings, store: Store | None, live: bool) -> Check:
    """Runbook 000 §1 "Dry-Run Stability" over the last ``stability_window_h`` hours: paper / dry-run for the whole
    window, CRIT alerts, fill rate, reconnects and REST errors within their limits. FAIL in live, WARN otherwise."""
    c = ("stability", "Stability over the last 24 h of paper / dry-run")
    cfg = settings.preflight
    bad = Status.FAIL if live else Status.WARN
    if store is None:
        return Check(*c, bad, "no store to read the last hours from", {}, "run paper or dry-run for 24 h first")
    now = datetime.now(UTC)
    since = now - timedelta(hours=cfg.stability_window_h)
    since_iso = since.isoformat()
    covered = _covered_hours(store.engine_runs(since_iso), since, now)
    crit = [a for a in store.alerts_between(since_iso) if a["severity"] == "CRIT"]
    ended, filled = store.orders_ended_since(since_iso, not_by="preflight:")  # the checklist's own smoke trade
    fill_rate = Decimal(filled) / ended * 100 if ended else None
    days = sorted({since.date().isoformat(), now.date().isoformat()})
    day_stats = [d for d in (store.load_day(day) for day in days) if d]
    reconnects = sum(int(d.get("ws_reconnects", 0)) for d in day_stats)
    rest_errors = sum(int(d.get("rest_errors", 0)) for d in day_stats)
    crit_codes = sorted({a["code"] for a in crit})[:10]
    evidence: dict[str, Any] = {
        "window_h": cfg.stability_window_h,
        "covered_h": round(covered, 2),
        "crit_alerts": len(crit),
        "crit_codes": crit_codes,
        "max_crit_alerts": cfg.max_crit_alerts,
        "orders_ended": ended,
        "orders_filled": filled,
        "fill_rate_pct": None if fill_rate is None else str(round(fill_rate, 2)),
        "min_fill_rate_pct": str(cfg.min_fill_rate_pct),
        "reconnects": reconnects,
        "max_reconnects": cfg.max_reconnects,
        "rest_errors": rest_errors,
        "max_rest_errors": cfg.max_rest_errors,
        "days_counted": days,
    }
    problems = []
    if covered + 0.05 < cfg.stability_window_h:
        problems.append(f"only {covered:.1f} h of paper / dry-run in the last {cfg.stability_window_h:g} h")
    if len(crit) > cfg.max_crit_alerts:
        problems.append(f"{len(crit)} CRIT alert(s) ({', '.join(crit_codes[:3])})")
    if fill_rate is None:
        problems.append("no order ended: fill rate unknown")
    elif fill_rate <= cfg.min_fill_rate_pct:
        problems.append(f"fill rate {fill_rate:.1f}% (needs over {cfg.min_fill_rate_pct}%)")
    if reconnects > cfg.max_reconnects:
        problems.append(f"{reconnects} reconnects (at most {cfg.max_reconnects})")
    if rest_errors > cfg.max_rest_errors:
        problems.append(f"{rest_errors} REST error(s) (at most {cfg.max_rest_errors})")
    if problems:
        return Check(
            *c,
            bad,
            "; ".join(problems),
            evidence,
            "run paper or dry-run for 24 h without CRIT alerts, then check again (runbook 000 §1)",
        )
    return Check(
        *c,
        Status.PASS,
        f"{covered:.1f} h of paper / dry-run: no CRIT alert, fill rate "
        f"{fill_rate:.1f}%, {reconnects} reconnect(s), {rest_errors} REST error(s)",
        evidence,
    )
