"""Paper validation through the real parts (stepped simulator, real engine, real ccxt over loopback): the same
seed gives the same report, the engine runs on the simulator's clock (a day rolls over at simulated midnight),
an interrupted run reports what ran, a replayed CSV is named in the report, it runs fast enough for 48 h in two
minutes, and ``cockpit validate`` writes, stores and sends its report."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventually import eventually
from test_alerts_health_incidents import Receiver

from engine.core.engine import Engine
from engine.core.validation import Plan, Progress, Validation, ValidationError
from engine.gate.scorecard import comparable
from engine.kernel.config import EngineConfig, Settings, ValidationConfig
from engine.store.db import Store

FAST = 1e9  # no speed cap: as fast as the machine goes


def write_csv(path: Path, minutes: int, start_ms: int = 1_700_000_040_000) -> None:
    """An OHLCV CSV of ``minutes`` one-minute candles zig-zagging around 30,000."""
    lines, price = ["timestamp,open,high,low,close,volume"], 30000
    for i in range(minutes):
        close = price + (50 if i % 2 == 0 else -20)
        lines.append(
            f"{start_ms + i * 60_000},{price}.00,{max(price, close) + 10}.00,{min(price, close) - 10}.00,"
            f"{close}.00,12.5"
        )
        price = close
    path.write_text("\n".join(lines) + "\n")


def settings(tmp_path: Path, **validation) -> Settings:
    return Settings(engine=EngineConfig(data_dir=tmp_path / "data"), validation=ValidationConfig(**validation))


async def validate(tmp_path: Path, s: Settings, plan: Plan, on_progress=None, name: str = "run") -> dict:
    run = Validation(s, plan, Engine, tmp_path / name, on_progress=on_progress)
    return await run.run()


async def test_the_same_seed_gives_the_same_report_and_another_seed_another(tmp_path):
    s = settings(tmp_path)
    first = await validate(tmp_path, s, Plan(duration_s=3600, speed=FAST, tick_s=30, seed=5), name="a")
    second = await validate(tmp_path, s, Plan(duration_s=3600, speed=FAST, tick_s=30, seed=5), name="b")
    other = await validate(tmp_path, s, Plan(duration_s=3600, speed=FAST, tick_s=30, seed=6), name="c")
    assert first["fills"] > 0 and first["orders"]["ended"] > 0  # something traded: the equality says something
    assert comparable(first) == comparable(second)  # everything but when and how fast it ran on this machine
    assert first["run"]["started_at"] != second["run"]["started_at"]
    assert comparable(first) != comparable(other)
    assert first["seed"] == 5 and first["replay"] is None
    for key in (
        "verdict",
        "trades",
        "win_rate",
        "sharpe",
        "max_drawdown_pct",
        "pnl",
        "fees",
        "fill_rate",
        "avg_slippage_bps",
        "errors",
        "reconnects",
    ):
        assert key in first
    for name in ("trades", "win_rate", "sharpe", "max_drawdown_pct"):
        assert {"value", "threshold", "pass"} <= set(first["criteria"][name])
    assert first["criteria"]["trades"]["threshold"] == 10 and first["criteria"]["win_rate"]["threshold"] == 45
    assert first["criteria"]["sharpe"]["threshold"] == 0.5 and first["criteria"]["max_drawdown_pct"]["threshold"] == 15
    assert first["verdict"] == ("GO" if all(c["pass"] for c in first["criteria"].values()) else "NO-GO")


async def test_the_engine_runs_on_the_simulators_clock(tmp_path):
    """Strategy steps, monitors, the daily reset and the 23:59 summary happen on simulated time."""
    start = datetime(2025, 1, 6, 23, 0, tzinfo=UTC)
    report = await validate(
        tmp_path, settings(tmp_path, start=start), Plan(duration_s=2 * 3600, speed=FAST, tick_s=30, seed=5)
    )
    assert report["simulated"]["start"].startswith("2025-01-06T23:00") and report["simulated"]["completed"]
    assert report["simulated"]["end"].startswith("2025-01-07T01:00")
    assert [d["day"] for d in report["days"]] == ["2025-01-06", "2025-01-07"]  # reset at simulated midnight
    assert report["alert_codes"].get("DAILY_SUMMARY") == 1  # sent at 23:59, simulated
    assert report["equity"]["samples"] > 200  # a sample every simulated tick of 30 s


async def test_an_interrupted_run_gives_a_partial_report(tmp_path):
    runs: list[Validation] = []

    def stop_after_an_hour(p: Progress) -> None:
        if p.simulated_s >= 3600:
            runs[0].stop()

    run = Validation(
        settings(tmp_path),
        Plan(duration_s=48 * 3600, speed=FAST, tick_s=15, seed=5),
        Engine,
        tmp_path / "run",
        on_progress=stop_after_an_hour,
        progress_every_s=0.05,
    )
    runs.append(run)
    report = await run.run()
    assert report["run"]["interrupted"] is True and report["simulated"]["completed"] is False
    assert 1 <= report["simulated"]["hours"] < 48
    assert report["verdict"] == "NO-GO" and report["criteria"]["duration_h"]["pass"] is False
    assert any(line.startswith("simulated hours") and "short by" in line for line in report["failed"])


async def test_a_replayed_csv_is_named_in_the_report_and_a_short_file_is_refused(tmp_path):
    path = tmp_path / "btc.csv"
    write_csv(path, 300)  # 150 candles of history, then 150 minutes to replay
    s = settings(tmp_path)
    report = await validate(
        tmp_path, s, Plan(duration_s=2 * 3600, speed=FAST, tick_s=30, seed=5, replay={"BTCUSDT": path})
    )
    assert report["replay"] == {"BTCUSDT": {"file": "btc.csv", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}}
    assert report["simulated"]["hours"] == 2.0
    with pytest.raises(ValidationError, match=r"covers 2\.5 h .*--duration 2\.5h"):
        await validate(
            tmp_path,
            s,
            Plan(duration_s=3 * 3600, speed=FAST, tick_s=15, seed=5, replay={"BTCUSDT": path}),
            name="short",
        )


async def test_validation_runs_fast_enough_for_48_hours_in_two_minutes(tmp_path):
    """1 simulated hour at the default tick, uncapped: the run's own work (its CPU time, which neighbours on a
    shared machine do not inflate) keeps a pace of at least 1,440 simulated seconds per second, what 48 h in 120 s
    needs. The 48 h run itself, timed on the wall clock: ``COCKPIT_SLOW_TESTS=1`` (below)."""
    report = await validate(
        tmp_path, settings(tmp_path), Plan(duration_s=3600, speed=FAST, tick_s=ValidationConfig().tick_s, seed=5)
    )
    assert report["simulated"]["completed"]
    assert report["run"]["speed_on_cpu"] >= 1440, report["run"]


@pytest.mark.skipif(
    os.environ.get("COCKPIT_SLOW_TESTS") != "1",
    reason="about 75 s: outside the suite, .ci/run runs it in CI (COCKPIT_SLOW_TESTS=1)",
)
def test_cockpit_validate_48h_finishes_in_under_two_minutes(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cockpit.cli",
            "validate",
            "--duration",
            "48h",
            "--json",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    report = json.loads(out.stdout)
    assert report["simulated"]["completed"] and report["simulated"]["hours"] == 48
    # Its own work fits in two minutes with room to spare, whatever the neighbours do (about 50 s of CPU here).
    assert report["run"]["cpu_s"] < 90, report["run"]
    # On the wall clock: two minutes on a machine it has to itself (CI runs it after the suite); where more was
    # runnable than there are cores (other jobs: load 8-10 on 2 cores made it 173 s), twice that, and said so.
    busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    limit = 240 if busy else 120
    assert report["run"]["wall_s"] < limit, (f"load {os.getloadavg()[0]:.1f}", report["run"])


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}


async def test_cockpit_validate_writes_stores_and_sends_its_report(tmp_path):
    receiver = Receiver()
    await receiver.start()
    try:
        env = {**cli_env(), "COCKPIT_ALERTS__NOTIFY": json.dumps([{"url": receiver.url, "min_severity": "CRIT"}])}
        out = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "cockpit.cli",
                "validate",
                "--duration",
                "1h",
                "--seed",
                "3",
                "--json",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )
        report = json.loads(out.stdout)
        assert out.returncode == (0 if report["verdict"] == "GO" else 1), out.stderr
        (written,) = (tmp_path / "data").glob("validation_report_*.json")
        assert json.loads(written.read_text()) == report
        store = Store.in_dir(tmp_path / "data", readonly=True)
        try:
            (row,) = store.validation_reports()
        finally:
            store.close()
        assert row["verdict"] == report["verdict"] and row["path"] == str(written) and row["report"] == report
        # Every sink gets the report, whatever its least severity (a CRIT-only sink included).
        await eventually(
            lambda: any("VALIDATION_REPORT" in p.get("title", "") for p in receiver.posts),
            timeout=15,
            message="report sent",
        )
        post = next(p for p in receiver.posts if "VALIDATION_REPORT" in p.get("title", ""))
        assert f"validation {report['verdict']} over 1 h (seed 3)" in post["message"]
    finally:
        await receiver.runner.cleanup()


def test_ctrl_c_stops_cockpit_validate_with_a_partial_report(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cockpit.cli",
            "validate",
            "--duration",
            "48h",
            "--json",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
    )
    started = threading.Event()

    def watch() -> None:
        for line in proc.stderr:
            if "Ctrl+C stops it" in line:
                started.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert started.wait(timeout=60), "validate did not start"
        proc.send_signal(signal.SIGINT)
        stdout = proc.stdout.read()  # to the end: the process ends once the partial report is out
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    report = json.loads(stdout)
    assert proc.returncode == 1 and report["run"]["interrupted"] is True
    assert report["simulated"]["completed"] is False and report["verdict"] == "NO-GO"
    assert list((tmp_path / "data").glob("validation_report_*.json"))
