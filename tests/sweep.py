"""The fault sweep (issue 19): the runbooks' faults one after another against ``cockpit sim`` in its own process and
the real engine (``cockpit run --headless``) with the default thresholds and the ladder running. For each fault:
what the engine raised and what it did, with the seconds from the fault, against what the runbook wants. Not part
of the test run (its defaults take minutes: 60 s of stale data before close-all, 300 s before an order is stuck);
from the repository root:

    .venv/bin/python tests/sweep.py                                   # every fault, about 15 minutes
    .venv/bin/python tests/sweep.py --only user-stream-end,http-429   # some of them
    .venv/bin/python tests/sweep.py --walk                            # the simulator's normal walk, measured

Writes build/proof/sweep.md (the fault -> alert -> action table) and build/proof/sweep.json; exits 1 when a
fault's expected alert or action did not come, or an unexpected halt did. Between faults every fault is cleared and
trading resumed as an operator would once the monitors allow it (with an override and a reason after
``--resume-wait`` seconds of refusals, which the table says).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crashloop import ROOT, SimProcess, wait_for
from crashloop import Session as _Session

from engine.kernel.events import TradingState

# data_dir: relative to this file (the work directory), never the operator's own data directory.
CONFIG = """
[engine]
data_dir = "data"
[venue]
exchange = "binance"
rest_url = "{rest}"
ws_url = "{ws}"
[health]
port = {health}
[alerts]
daily_summary = false
[strategy.ladder]
enabled = true
"""
POLL_S = 0.25


@dataclass
class Fault:
    """One fault of the sweep: what goes in, for how long, and what the runbook wants the engine to do."""

    key: str
    runbook: str
    faults: list[tuple[str, dict[str, Any]]]
    alerts: list[str]  # "CODE" or "CODE:SEVERITY" that must be raised ("A|B": either)
    halt: str | None  # the monitor that must halt (or close all); None: trading must stay ACTIVE
    window_s: float  # how long to watch for it (a no-halt fault is watched this long)
    clear_after_s: float | None = None  # clear the fault this long after it went in (None: at the end)
    needs_uptime_s: float = 0.0  # the engine must have run this long first (a symbol's normal before a crash)
    check_streams: bool = False  # every stream must be up again before the window ends
    adopt: bool = False  # resuming needs the venue's amounts adopted first (a position mismatch)
    may_halt: tuple[str, ...] = ()  # other monitors whose halt is right too (the fault also trips them)
    resume_wait_s: float | None = None  # how long resume may be refused before an override (None: --resume-wait)


FAULTS = [
    Fault("ws-drop", "001 §1", [("ws-drop", {})], ["WS_DOWN"], None, 20, check_streams=True),
    Fault(
        "user-stream-end",
        "001 §1 (issue 19)",
        [("user-stream-end", {})],
        ["USER_STREAM_DEAD|WS_DOWN"],
        None,
        20,
        check_streams=True,
    ),
    Fault("latency-2.5s", "001 §3", [("latency", {"ms": 2500})], ["REST_LATENCY:WARN"], None, 40, clear_after_s=30),
    Fault("clock-skew-3s", "002 time sync", [("clock-skew", {"ms": 3000})], ["CLOCK_SKEW:WARN"], None, 25, 15),
    Fault(
        "http-429",
        "001 §2/§3 rate limiting",
        [("http-status", {"status": 429, "retry_after": 2, "ban_after": 3, "count": 4, "code": -1003})],
        ["RATE_LIMIT_BAN:WARN"],
        None,
        25,
    ),
    Fault(
        "http-503-storm",
        "001 §2",
        [("http-status", {"status": 503, "rate": 1.0})],
        ["REST_ERRORS:CRIT"],
        "rest_errors",
        30,
        clear_after_s=10,
    ),
    Fault(
        "http-418-ban",
        "001 §2/§3 ban",
        [("http-status", {"status": 418, "retry_after": 10, "path": "/api/v3/time", "count": 1})],
        ["RATE_LIMIT_BAN:CRIT"],
        "rate_limit_ban",
        30,
    ),
    Fault("key-revoked", "002 auth", [("key-revoked", {})], ["AUTH_FAILURE:CRIT"], "auth_failure", 30, 10),
    Fault("maintenance", "002 maintenance", [("maintenance", {})], ["MAINTENANCE:CRIT"], "maintenance", 30, 10),
    Fault(
        "trade-outside",
        "001 §6",
        [("foreign-fill", {"symbol": "BTCUSDT", "side": "BUY", "qty": "0.01"})],
        ["POSITION_MISMATCH:CRIT"],
        "position_mismatch",
        30,
        adopt=True,
    ),
    Fault("ws-silence", "001 §1", [("ws-silence", {})], ["WS_STALE:WARN", "WS_STALE:CRIT"], "ws_stale", 90, None),
    # The ladder's own cancels fail too: two in a minute halt by rest_errors (001 §2), which is right; the orders
    # left resting are stuck after 300 s and their cancels fail: one alert per order, tries backing off.
    Fault(
        "stuck-cancel-fails",
        "001 §4",
        [("stuck-orders", {"symbol": "BTCUSDT"}), ("cancel-fail", {"symbol": "BTCUSDT"})],
        ["ORDER_STUCK:WARN", "STUCK_ORDER_CANCEL_FAILED:CRIT"],
        None,
        400,
        may_halt=("rest_errors",),
    ),
    Fault(
        "flash-crash",
        "001 §7",
        [("flash-crash", {"symbol": "BTCUSDT", "percent": 15, "seconds": 5, "recover": 0})],
        ["FLASH_CRASH:WARN", "FLASH_CRASH:CRIT"],
        "flash_crash",
        60,
        needs_uptime_s=420,
        resume_wait_s=480,  # calm is judged over the last 300 s (001 §7 "5 minutes have passed")
    ),
]


@dataclass
class Row:
    fault: str
    runbook: str
    alerts: list[str] = field(default_factory=list)  # "CODE SEVERITY +Ns (xN)"
    action: str = "none"
    action_s: float | None = None
    resumed: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class Session(_Session):
    """The engine process and its store, its /health and its log."""

    health_port: int = 0

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/health", timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 503: not healthy, the body says why
            return json.loads(exc.read())
        except OSError:
            return {}

    def rows(self, sql: str, args: list[Any] | None = None) -> list[dict[str, Any]]:
        store = self.store()
        try:
            return list(store.db.query(sql, args or []))
        finally:
            store.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def seconds(ts: str, t0: float) -> float:
    return round(datetime.fromisoformat(ts).timestamp() - t0, 2)


def missing(wanted: set[str], seen: set[str]) -> list[str]:
    """The wanted alerts not seen ("A|B" is seen when either is)."""
    return sorted(w for w in wanted if not any(alt in seen for alt in w.split("|")))


def new_alerts(session: Session, since_alert: int, t0: float) -> list[dict[str, Any]]:
    """Alerts raised since the fault, and earlier ones counted again since (the alert book counts the same code
    within its de-duplication window on the first alert)."""
    after = datetime.fromtimestamp(t0, UTC).isoformat()
    return session.rows("select * from alerts where id > ? or last_ts >= ? order by id", [since_alert, after])


def watch(session: Session, fault: Fault, t0: float, since_alert: int, since_audit: int, sim: SimProcess) -> Row:
    """Watch the store (and /health) from the fault on, until the expected alerts and action came (or the window
    ends); a fault that must not halt is watched for its whole window."""
    row = Row(fault.key, fault.runbook)
    wanted = set(fault.alerts)
    cleared = False
    streams_back: float | None = None
    deadline = t0 + fault.window_s
    while time.time() < deadline:
        if fault.clear_after_s is not None and not cleared and time.time() - t0 >= fault.clear_after_s:
            sim.clear()
            cleared = True
        alerts = new_alerts(session, since_alert, t0)
        seen = {f"{a['code']}:{a['severity']}" for a in alerts} | {a["code"] for a in alerts}
        state, info = session.state_info()
        halted = state == TradingState.HALTED and info.get("actor", "").startswith("monitor:")
        if fault.check_streams and streams_back is None and time.time() - t0 > 1:
            streams = session.health().get("venue", {}).get("streams", {})
            if streams and all(s.startswith("up") for s in streams.values()):
                streams_back = round(time.time() - t0, 2)
        streams_ok = not fault.check_streams or streams_back
        done = not missing(wanted, seen) and (fault.halt is None or halted) and streams_ok
        if done and fault.halt is not None:
            # The kill switch's own work (a close-all's sells) and its audit record finish first.
            wait_for(
                lambda: session.rows("select id from audit where id > ? and actor like 'monitor:%'", [since_audit]),
                30,
                "the monitor's command audited",
            )
            break
        if halted and fault.halt is None and info.get("code") not in fault.may_halt:
            break  # an unexpected halt: say so below
        time.sleep(POLL_S)  # the watcher's sampling pace: it times several conditions, and a no-halt fault's window
    alerts = new_alerts(session, since_alert, t0)
    row.alerts = [
        f"{a['code']} {a['severity']} +{seconds(a['ts'], t0):.1f}s" + (f" (x{a['count']})" if a["count"] > 1 else "")
        if a["id"] > since_alert
        else f"{a['code']} {a['severity']} counted again +{seconds(a['last_ts'], t0):.1f}s (x{a['count']})"
        for a in alerts
    ]
    seen = {f"{a['code']}:{a['severity']}" for a in alerts} | {a["code"] for a in alerts}
    row.problems += [f"no {w} alert" for w in missing(wanted, seen)]
    state, info = session.state_info()
    if state == TradingState.HALTED:
        row.action = f"HALTED by {info.get('actor')}"
        row.action_s = seconds(info["ts"], t0)
        kill = session.rows(
            "select * from audit where id > ? and kill_switch = 1 and actor like 'monitor:%' order by id",
            [since_audit],
        )
        if kill:
            row.action += " (" + ", ".join(sorted({k["command"] for k in kill})) + ")"
        values = info.get("values") or {}
        for key in ("seconds_to_act", "calm_bars_pct", "user_age_s", "market_age_s", "count", "move_pct"):
            if key in values:
                row.extra[key] = values[key]
    if fault.halt is not None and info.get("code") != fault.halt:
        row.problems.append(f"expected a halt by monitor:{fault.halt}, got {row.action}")
    if fault.halt is None and state == TradingState.HALTED and info.get("code") not in fault.may_halt:
        row.problems.append(f"unexpected {row.action}")
    if fault.check_streams:
        row.extra["streams_up_again_s"] = streams_back
        if streams_back is None:
            row.problems.append("the streams did not all come back up")
    row.extra["error_log_lines"] = error_lines(session, t0)
    cancels = session.rows(
        "select * from audit where id > ? and command = 'cancel' and actor = 'monitor:stuck_order'", [since_audit]
    )
    if cancels:
        row.extra["stuck_cancel_audit_records"] = len(cancels)
        attempts = [int(json.loads(c["values"] or "{}").get("attempt", 1)) for c in cancels]
        row.extra["stuck_cancel_attempts_max"] = max(attempts)
    return row


def error_lines(session: Session, t0: float) -> int:
    """ERROR lines the engine logged since ``t0`` (its stderr is JSON lines: ts, level, logger, msg)."""
    after = datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    count = 0
    with open(session.log, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") == "ERROR" and str(entry.get("ts", "")) >= after:
                count += 1
    return count


def recover(session: Session, sim: SimProcess, fault: Fault, row: Row, resume_wait_s: float) -> None:
    """Clear every fault; resume as an operator once the monitors allow it (an override after resume_wait_s)."""
    sim.clear()
    t0 = time.time()
    if session.trading_state() != TradingState.HALTED:
        return
    if fault.adopt:
        session.command("reconcile", {"adopt": True}, reason="sweep: the foreign fill is known; adopt it")
    refusals = 0
    resume_wait_s = fault.resume_wait_s or resume_wait_s
    while time.time() - t0 < resume_wait_s:
        ok, message = session.command("resume", reason="sweep: the fault is over")
        if ok:
            row.resumed = f"resume allowed {time.time() - t0:.1f}s after the fault was cleared"
            return
        refusals += 1
        time.sleep(2.0)  # an operator's pace between two tries: each refused resume is an audited command
    ok, message = session.command(
        "resume", {"override": True}, reason=f"sweep: still refused after {resume_wait_s:g}s ({refusals} refusals)"
    )
    row.resumed = f"OVERRIDE after {resume_wait_s:g}s of refusals: {message[:120]}"
    if not ok:
        row.problems.append(f"resume with override refused: {message}")


def sweep(keys: list[str] | None, seed: int, work: Path, resume_wait_s: float) -> list[Row]:
    work.mkdir(parents=True, exist_ok=True)
    sim = SimProcess.start(seed, work / "sim.log")
    rows: list[Row] = []
    session: Session | None = None
    try:
        health = free_port()
        (work / "config.toml").write_text(CONFIG.format(rest=sim.rest, ws=sim.ws, health=health))
        env = sim.engine_env()
        session = Session(sim, work, env)
        session.health_port = health
        session.start_engine()
        started = time.time()
        wait_for(lambda: session.health().get("monitors"), 30, "the engine's /health answers")
        for fault in FAULTS:
            if keys and fault.key not in keys:
                continue
            if time.time() - started < fault.needs_uptime_s:
                wait_s = fault.needs_uptime_s - (time.time() - started)
                print(f"{fault.key}: waiting {wait_s:.0f}s for the engine to know the market's normal", flush=True)
                time.sleep(wait_s)  # the condition is time itself: the monitors' price history must span it
            since_alert = max((r["id"] for r in session.rows("select max(id) as id from alerts") if r["id"]), default=0)
            since_audit = max((r["id"] for r in session.rows("select max(id) as id from audit") if r["id"]), default=0)
            t0 = time.time()
            for name, options in fault.faults:
                sim.fault(name, **options)
            row = watch(session, fault, t0, since_alert, since_audit, sim)
            recover(session, sim, fault, row, resume_wait_s)
            rows.append(row)
            print(json.dumps(row.__dict__), flush=True)
            # The next fault starts on a trading engine whose streams are all up again.
            wait_for(
                lambda: (
                    session.state_info()[0] == TradingState.ACTIVE
                    and all(s.startswith("up") for s in session.health().get("venue", {}).get("streams", {}).values())
                ),
                60,
                "trading ACTIVE with every stream up before the next fault",
            )
    finally:
        if session is not None and session.engine is not None and session.engine.poll() is None:
            session.kill()
        sim.stop()
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| fault | runbook | alerts (seconds from the fault) | action | resumed | figures | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        action = r.action + (f" +{r.action_s:.1f}s" if r.action_s is not None else "")
        figures = ", ".join(f"{k} {v}" for k, v in r.extra.items())
        verdict = "ok" if not r.problems else "PROBLEM: " + "; ".join(r.problems)
        lines.append(
            f"| {r.fault} | {r.runbook} | {'; '.join(r.alerts) or '—'} | {action} | {r.resumed or '—'} | "
            f"{figures or '—'} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def walk_figures(hours: float = 4.0, tick_s: float = 0.25, seeds: tuple[int, ...] = (1, 5, 7)) -> list[str]:
    """The simulator's own walk (its price feeds stepped offline, one price a second as the monitors sample it):
    how far its 60 s windows move, and how often "calm" holds at a random moment under the runbook's fixed 1 % and
    under each symbol's own normal (the bar the engine uses since issue 19: p95 of the half hour before x 1.25,
    at least 1 %, at most half of a 10 % crash)."""
    from decimal import Decimal

    from engine.safety.pricemoves import PriceMoves
    from engine.sim.market import PriceFeed
    from engine.sim.server import SYMBOLS

    lines = []
    for symbol in SYMBOLS:
        for seed in seeds:
            feed = PriceFeed(SYMBOLS[symbol], seed, tick_interval=tick_s)
            moves = PriceMoves((symbol,), keep_s=400, window_s=60)
            ranges: list[float] = []
            fixed = own = checks = 0
            for t in range(int(hours * 3600)):
                for _ in range(max(1, round(1 / tick_s))):
                    feed.next_price()
                moves.record(symbol, t, feed.price)
                if t >= 60 and t % 10 == 0:
                    ranges.append(float(moves.move(symbol, 60, t)))
                if t >= 2400 and t % 30 == 0:
                    checks += 1
                    fixed += moves.calm(300, Decimal(1), t)
                    bars = moves.calm_bars(60, t - 300, Decimal(1), Decimal(5))
                    own += moves.calm(300, bars, t)
            ranges.sort()
            median, p90, p95 = (ranges[int(q * (len(ranges) - 1))] for q in (0.5, 0.9, 0.95))
            lines.append(
                f"{symbol} seed {seed} (tick {tick_s:g}s, {hours:g}h): 60s range median {median:.2f}% p90 "
                f"{p90:.2f}% p95 {p95:.2f}%; {sum(r >= 1 for r in ranges) / len(ranges):.0%} of windows "
                f"reach 1%; calm at a random moment: fixed 1% {fixed / checks:.0%}, own normal {own / checks:.0%}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated fault keys: " + ", ".join(f.key for f in FAULTS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resume-wait", type=float, default=120.0, help="seconds of refused resumes before override")
    parser.add_argument("--work", type=Path, default=None, help="a new directory for data and logs (default: temp)")
    parser.add_argument("--walk", action="store_true", help="only measure the simulator's normal walk (no engine)")
    parser.add_argument("--tick", type=float, default=0.25, help="with --walk: the simulator's tick (default 0.25 s)")
    args = parser.parse_args(argv)
    if args.walk:
        for line in walk_figures(tick_s=args.tick):
            print(line, flush=True)
        return 0
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or None
    unknown = sorted(set(keys or []) - {f.key for f in FAULTS})
    if unknown:
        parser.error(f"unknown fault(s) {unknown}")
    work = args.work or Path(tempfile.mkdtemp(prefix="cockpit-sweep-"))
    rows = sweep(keys, args.seed, work, args.resume_wait)
    out = ROOT / "build" / "proof"
    out.mkdir(parents=True, exist_ok=True)
    text = table(rows)
    when = datetime.now().isoformat(timespec="seconds")
    header = (
        f"# Fault sweep: default thresholds, ladder running (seed {args.seed}, {when})"
        "\n\n`.venv/bin/python tests/sweep.py` against `cockpit sim` in its own process and `cockpit run --headless`."
        "\n\n"
    )
    (out / "sweep.md").write_text(header + text)
    (out / "sweep.json").write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    print(text)
    print(f"written to {out / 'sweep.md'} (data and logs in {work})")
    return 1 if any(r.problems for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
