"""The soak: hours of accelerated paper trading with random faults, against the real program (``cockpit run
--headless``) on a simulator in its own process (``cockpit sim --speed X``), reporting the engine's memory (RSS)
over time and every invariant. Not part of the test run; from the repository root (README "Proof suites"):

    .venv/bin/python tests/soak.py --hours 4 --speed 10 --seed 1

Every ``--fault-every`` seconds a random fault from the runbooks goes in for a while (REST errors and storms, slow
answers, lost answers, dropped or silent streams, failing cancels, stuck orders, duplicated or reordered reports,
price jumps and flash crashes, clock skew, garbage); a halt the engine makes by itself is resumed once the
monitors allow it, as an operator would. Every ``--check-every`` seconds the prices are held still and the store
must agree with the venue (no order twice, none unknown, every trade stored, balances equal, balances explained by
the fills), and the engine's RSS is sampled. One JSON line per check, then a summary, also written to
build/proof/soak.json; exit 1 if any invariant failed.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from crashloop import BUSY_CONFIG, ROOT, Report, Session, SimProcess, check

from engine.kernel.events import TradingState

# (fault, options, seconds it lasts: None for faults that end by themselves)
FAULTS: list[tuple[str, dict[str, Any], float | None]] = [
    ("http-status", {"status": 503, "rate": 0.5}, 8),
    ("http-status", {"status": 504, "path": "/api/v3/time"}, 5),
    ("http-status", {"status": 429, "retry_after": 2, "ban_after": 3, "count": 3}, None),
    ("latency", {"ms": 2500, "jitter_ms": 500}, 15),
    ("hang", {"seconds": 5, "path": "/api/v3/order", "method": "POST", "count": 1}, None),
    ("accept-then-hang", {"seconds": 5, "path": "/api/v3/order", "method": "POST", "count": 1}, None),
    ("accept-then-hang", {"seconds": 0, "status": 502, "path": "/api/v3/order", "method": "POST", "count": 1}, None),
    ("ws-drop", {}, None),
    ("ws-silence", {}, 20),
    ("ws-refuse", {}, 8),
    ("user-stream-end", {}, None),
    ("cancel-fail", {"count": 3}, None),
    ("order-reject", {"count": 2}, None),
    ("stuck-orders", {}, 20),
    ("duplicate-report", {"count": 3}, None),
    ("reorder-reports", {"count": 2}, None),
    ("price-jump", {"percent": 3, "seconds": 2}, None),
    ("flash-crash", {"percent": 30, "seconds": 2, "recover": 20}, None),
    ("clock-skew", {"ms": 3000}, 15),
    ("garbage", {"body": "truncated", "rate": 0.3}, 6),
]
# Shorter windows than the shipped ones, so that a halt a fault caused can be resumed within the soak; the flash-crash
# levels allow for accelerated prices (at --speed 10 a wall minute is ten market minutes), an injected crash trips.
SOAK_MONITORS = """[monitors]
flash_crash_pct = "20"
flash_calm_pct = "5"
interval_s = 0.5
reconcile_s = 1.0
ws_stale_warn_s = 5
ws_stale_crit_s = 30
stuck_order_s = 30
flash_calm_s = 20
rest_errors_window_s = 10"""


PACE_S = 0.5  # how often the loop looks at the engine's state and its clocks


def rss_kib(pid: int) -> int:
    """The process's resident memory in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def soak(seconds: float, speed: float, seed: int, fault_every: float, check_every: float, work: Path) -> dict:
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    sim = SimProcess.start(seed, work / "sim.log", speed=speed)
    samples: list[dict[str, Any]] = []
    injected: Counter[str] = Counter()
    halts: Counter[str] = Counter()
    report = Report()
    resumes = 0
    started = time.monotonic()
    try:
        (work / "config.toml").write_text(BUSY_CONFIG.format(rest=sim.rest, ws=sim.ws, monitors=SOAK_MONITORS))
        env = sim.engine_env()
        session = Session(sim, work, env)
        session.start_engine()
        assert session.engine is not None
        pid = session.engine.pid
        next_fault, next_check = time.monotonic() + fault_every, time.monotonic() + check_every
        next_resume, seen_halt = 0.0, None
        while time.monotonic() - started < seconds:
            now = time.monotonic()
            if now >= next_fault:
                name, options, lasting = rng.choice(FAULTS)
                sim.fault(name, duration=lasting, **options)
                injected[name] += 1
                next_fault = now + fault_every * rng.uniform(0.5, 1.5)
            state, info = session.state_info()
            if state == TradingState.HALTED and info.get("actor", "").startswith("monitor:"):
                if info.get("ts") != seen_halt:
                    seen_halt = info.get("ts")
                    halts[info.get("code") or "?"] += 1
                if now >= next_resume:  # as an operator would, once the monitors allow it
                    next_resume = now + 5
                    if session.command("resume", reason="soak: the fault is over")[0]:
                        resumes += 1
            if now >= next_check:
                sim.clear()
                # Longer than the circuit breaker's cool-down (30 s): a fault just cleared may have opened it,
                # and calls wait it out before reconciliation can settle an order whose send was uncertain.
                problems = check(session, report, len(samples) + 1, settle_s=45.0)
                report.problems += problems
                account = sim.account()
                sample = {
                    "t_s": round(now - started, 1),
                    "rss_kib": rss_kib(pid),
                    "state": state.value,
                    "venue_orders": len(account["orders"]),
                    "venue_trades": account["trades"],
                    "problems": problems,
                }
                samples.append(sample)
                print(json.dumps(sample), flush=True)
                next_check = time.monotonic() + check_every
            time.sleep(PACE_S)  # the soak's sampling pace: it watches for hours, it waits for nothing
        session.kill()
    finally:
        sim.stop()
    rss = [s["rss_kib"] for s in samples]
    hours = (samples[-1]["t_s"] - samples[0]["t_s"]) / 3600 if len(samples) > 1 else 0
    return {
        "seconds": round(time.monotonic() - started, 1),
        "speed": speed,
        "seed": seed,
        "checks": len(samples),
        "checks_failed": sum(1 for s in samples if s["problems"]),
        "problems": report.problems,
        "faults_injected": dict(injected),
        "automatic_halts": dict(halts),
        "resumes": resumes,
        "venue_orders": samples[-1]["venue_orders"] if samples else 0,
        "venue_trades": samples[-1]["venue_trades"] if samples else 0,
        "rss_kib": {
            "first": rss[0] if rss else None,
            "last": rss[-1] if rss else None,
            "max": max(rss, default=None),
            "growth_per_hour": round((rss[-1] - rss[0]) / hours) if hours else None,
        },
        "rss_over_time": [(s["t_s"], s["rss_kib"]) for s in samples],
        "work": str(work),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=None)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--speed", type=float, default=10.0, help="simulated market time per real second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-every", type=float, default=20.0, metavar="S")
    parser.add_argument("--check-every", type=float, default=60.0, metavar="S")
    parser.add_argument("--work", type=Path, default=None, help="where the data and logs go (default: a temp dir)")
    args = parser.parse_args(argv)
    seconds = (args.hours or 0) * 3600 + (args.minutes or 0) * 60 or 3600
    work = args.work or Path(tempfile.mkdtemp(prefix="cockpit-soak-"))
    summary = soak(seconds, args.speed, args.seed, args.fault_every, args.check_every, work)
    out = ROOT / "build" / "proof"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "rss_over_time"}, indent=1))
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
