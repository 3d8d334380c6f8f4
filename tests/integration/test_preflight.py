"""The go/no-go checklist through the real simulator and ccxt: every check passes on a healthy paper venue with a
proven history, and each one fails (or warns) for its own reason: the simulator's faults, its keys file with a key
that can withdraw, a thin balance, an unlisted symbol, a configuration that is not fit for live. A live start is
refused on any FAIL, naming each; ``cockpit preflight`` exits 0 GO, 1 NO-GO, 2 when it cannot run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from eventually import eventually
from fastsim import FAST
from pydantic import SecretStr

from engine.core.engine import Engine
from engine.gate.checklist import Status
from engine.gate.preflight import Preflight, run_standalone
from engine.kernel.commands import Reconnect, RunPreflight
from engine.kernel.config import (
    AlertsConfig,
    EngineConfig,
    HealthConfig,
    PreflightConfig,
    RiskConfig,
    Settings,
    StrategyConfig,
    ValidationConfig,
    VenueConfig,
)
from engine.kernel.errors import EngineError
from engine.kernel.events import ValidationReported
from engine.sim import Simulator
from engine.sim.standalone import load_keys
from engine.store.db import Store

WITHDRAW_KEY, WITHDRAW_SECRET = "withdraw-key", "w" * 64


def settings(
    sim: Simulator,
    data: Path,
    *,
    mode: str = "paper",
    key: str | None = None,
    secret: str | None = None,
    venue: dict | None = None,
    risk: dict | None = None,
    preflight: dict | None = None,
    notify: bool = False,
    health: dict | None = None,
) -> Settings:
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=SecretStr(key or sim.api_key),
            api_secret=SecretStr(secret or sim.api_secret),
            **{"timeout_ms": 2000, **FAST, **(venue or {})},
        ),
        engine=EngineConfig(data_dir=data, mode=mode),
        risk=RiskConfig(**{"max_position_pct": Decimal("20"), **(risk or {})}),
        strategy=StrategyConfig(enabled=False),
        preflight=PreflightConfig(**{"stream_timeout_s": 1.0, **(preflight or {})}),
        validation=ValidationConfig(duration_h=48),
        # CRIT only: nothing is sent during the test, the check only needs a sink configured.
        alerts=AlertsConfig(notify=[{"url": "json://127.0.0.1:9/hook", "min_severity": "CRIT"}] if notify else []),
        health=HealthConfig(**(health or {})),
    )


def codes(checklist, status: Status) -> set[str]:
    return {c.code for c in checklist.checks if c.status == status}


def a_proven_history(data: Path) -> None:
    """What 24 h of calm paper trading and a recent GO validation leave in the store."""
    now = datetime.now(UTC)
    store = Store.in_dir(data)
    try:
        store.db["engine_runs"].insert(
            {
                "started_at": (now - timedelta(hours=25)).isoformat(),
                "stopped_at": (now - timedelta(minutes=1)).isoformat(),
                "mode": "paper",
                "venue": "sim",
            }
        )
        for i in range(10):
            store.db["orders"].insert(
                {
                    "client_id": f"ck-history-{i}",
                    "symbol": "BTC/USDT",
                    "side": "buy",
                    "type": "limit",
                    "amount": "0.001",
                    "price": "60000",
                    "status": "FILLED",
                    "filled": "0.001",
                    "average": "60000",
                    "venue_id": str(i),
                    "origin": "strategy:ladder",
                    "created_at": (now - timedelta(hours=2)).isoformat(),
                    "updated_at": (now - timedelta(hours=1)).isoformat(),
                }
            )
        store.handle(
            ValidationReported(
                {
                    "verdict": "GO",
                    "trades": 14,
                    "win_rate": 57.1,
                    "sharpe": 1.2,
                    "max_drawdown_pct": 2.5,
                    "failed": [],
                    "simulated": {"hours": 48.0},
                },
                "validation_report_x.json",
            )
        )
    finally:
        store.close()


async def test_every_check_passes_on_a_healthy_paper_venue_with_a_proven_history(sim, tmp_path, run):
    a_proven_history(tmp_path)
    engine = await run(settings(sim, tmp_path, notify=True))
    result = await engine.execute(RunPreflight(actor="operator:test", reason="go/no-go"))
    checklist = engine.store.checklist_runs(limit=1)[0]
    assert result.ok and result.message.startswith("GO · 18 PASS · 0 WARN · 0 FAIL"), result.message
    assert checklist["verdict"] == "GO" and checklist["passed"] == 18 and checklist["actor"] == "operator:test"
    by_code = {c["code"]: c for c in checklist["checks"]}
    assert set(by_code) == {
        "mode",
        "venue",
        "clock_skew",
        "api_key",
        "key_permissions",
        "balance",
        "symbols",
        "smoke_trade",
        "streams",
        "rate_limit",
        "stop_loss",
        "stops_at_venue",
        "daily_loss_limit",
        "risk_self_test",
        "alert_sinks",
        "health_loopback",
        "validation_report",
        "stability",
    }
    # The evidence is stored with each check: values measured and thresholds.
    assert by_code["key_permissions"]["evidence"]["enableWithdrawals"] is False
    balance = by_code["balance"]["evidence"]
    assert (balance["asset"], Decimal(balance["free"]), Decimal(balance["locked"]), balance["min"]) == (
        "USDT",
        10000,
        0,
        "100",
    )
    smoke = by_code["smoke_trade"]["evidence"]
    assert smoke["in_tracker_ms"] <= 5000 and smoke["filled_ms"] <= 5000 and smoke["canceled_ms"] <= 5000
    assert Decimal(smoke["held_after"]) > Decimal(smoke["held_before"])
    assert all(v for v in by_code["risk_self_test"]["evidence"]["refusals"].values())
    # The smoke trade went through the one command path, audited under its own actor, and left nothing open.
    audit = [r for r in engine.store.audit(limit=20) if r["actor"] == "preflight:smoke"]
    assert [r["command"] for r in audit[::-1]] == ["order", "order", "order", "cancel"]
    assert sim.open_orders() == []


async def test_the_venues_faults_fail_their_checks(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))

    fault = sim.faults.inject("http-status", status=503, path="/api/v3/time")
    checklist = await engine.preflight("operator:test")
    venue = checklist.get("venue")
    assert venue.status == Status.FAIL and "did not answer" in venue.detail and checklist.verdict == "NO-GO"
    sim.faults.clear(fault)

    fault = sim.faults.inject("clock-skew", ms=3000)
    checklist = await engine.preflight("operator:test")
    skew = checklist.get("clock_skew")
    assert skew.status == Status.FAIL and 2500 < skew.evidence["skew_ms"] < 3500, skew
    sim.faults.clear(fault)

    fault = sim.faults.inject("order-reject", code=-2010, msg="Market is closed.")
    checklist = await engine.preflight("operator:test")
    smoke = checklist.get("smoke_trade")
    assert smoke.status == Status.FAIL and "Market is closed" in smoke.detail, smoke
    sim.faults.clear(fault)

    fault = sim.faults.inject("ws-silence", which="market")
    await eventually(lambda: engine.sync.market_data_age_s() > 1.2, timeout=10, message="market data gone quiet")
    checklist = await engine.preflight("operator:test")
    streams = checklist.get("streams")
    assert streams.status == Status.FAIL and "ticker" in streams.detail, streams
    sim.faults.clear(fault)


async def test_a_key_that_can_withdraw_fails_and_a_live_start_is_refused(tmp_path):
    keys_file = tmp_path / "keys.toml"
    keys_file.write_text(f'[[keys]]\nkey = "{WITHDRAW_KEY}"\nsecret = "{WITHDRAW_SECRET}"\ncan_withdraw = true\n')
    _, keys = load_keys(keys_file)
    async with Simulator(seed=3, tick_interval=0.05, keys=keys) as sim:
        paper = settings(sim, tmp_path / "paper", key=WITHDRAW_KEY, secret=WITHDRAW_SECRET)
        store = Store.in_dir(tmp_path / "paper")
        try:
            checklist = await run_standalone(paper, store, confirm_live=False, actor="operator:test")
        finally:
            store.close()
        permissions = checklist.get("key_permissions")
        assert permissions.status == Status.FAIL and "WITHDRAW" in permissions.detail
        assert permissions.evidence["enableWithdrawals"] is True and checklist.verdict == "NO-GO"

        # Live start runs the checklist first and refuses, naming every FAIL; nothing is left locked or half-open.
        live = settings(sim, tmp_path / "live", mode="live", key=WITHDRAW_KEY, secret=WITHDRAW_SECRET)
        with pytest.raises(EngineError) as refused:
            await Engine(live, confirm_live=True).start()
        message = str(refused.value)
        assert "live start refused" in message
        assert "FAIL Key permissions: trading on, withdrawals off: the key can WITHDRAW" in message
        assert "FAIL Mode is what the operator asked for: live points real-money orders at this machine" in message
        stored = Store.in_dir(tmp_path / "live", readonly=True)
        try:
            assert stored.checklist_runs(limit=1)[0]["verdict"] == "NO-GO"
        finally:
            stored.close()
        again = Engine(settings(sim, tmp_path / "live"))  # the lock was released
        await again.start()
        await again.stop()
        assert sim.open_orders() == []


async def test_a_thin_balance_an_unlisted_symbol_and_a_revoked_key_fail(tmp_path):
    async with Simulator(seed=4, tick_interval=0.05, balances={"USDT": Decimal("50")}) as sim:
        s = settings(sim, tmp_path)
        s = s.model_copy(update={"venue": s.venue.model_copy(update={"symbols": ("BTC/USDT", "SOL/USDT")})})
        checklist = await run_standalone(s, None, confirm_live=False, actor="operator:test")
        balance, symbols = checklist.get("balance"), checklist.get("symbols")
        assert balance.status == Status.FAIL and Decimal(balance.evidence["free"]) == 50
        assert balance.evidence["min"] == "100"
        assert symbols.status == Status.FAIL and symbols.evidence["missing"] == ["SOL/USDT"]
        sim.faults.inject("key-revoked")
        checklist = await run_standalone(settings(sim, tmp_path), None, confirm_live=False, actor="operator:test")
        key = checklist.get("api_key")
        assert key.status == Status.FAIL and "refused the key" in key.detail, key


async def test_a_configuration_unfit_for_live_fails_and_warns(sim, tmp_path):
    unfit = dict(
        risk={"require_stop_loss": False, "daily_loss_limit_pct": Decimal("0"), "stops_at_venue": False},
        venue={"rate_limit": False},
        health={"host": "0.0.0.0", "port": 8123},
    )
    live = await run_standalone(
        settings(sim, tmp_path, mode="live", **unfit), None, confirm_live=True, actor="operator:test"
    )
    assert {"stop_loss", "daily_loss_limit", "mode", "stability"} <= codes(live, Status.FAIL)
    warned = {"rate_limit", "health_loopback", "alert_sinks", "chat_control", "validation_report", "stops_at_venue"}
    assert warned <= codes(live, Status.WARN)
    assert "smoke_trade" not in {c.code for c in live.checks}  # never with real money
    paper = await run_standalone(settings(sim, tmp_path, **unfit), None, confirm_live=False, actor="operator:test")
    # The same choices are WARN in paper: that is where they are tried out.
    assert {"stop_loss", "daily_loss_limit", "rate_limit", "health_loopback"} <= codes(paper, Status.WARN)
    assert codes(paper, Status.FAIL) == set()
    unconfirmed = await run_standalone(
        settings(sim, tmp_path, mode="live"), None, confirm_live=False, actor="operator:test"
    )
    assert "--confirm-live" in unconfirmed.get("mode").detail


async def test_the_risk_self_test_fails_when_a_breach_gets_through(sim, tmp_path):
    """A hand-written stub for the engine's order checks that lets everything through: the self-test must say so."""
    s = settings(sim, tmp_path)
    from engine.venue.adapter import Venue

    venue = Venue(
        "binance",
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        timeout_ms=2000,
    )
    try:
        await venue.load_markets()
        checklist = await Preflight(
            s,
            venue=venue,
            venue_label="sim",
            store=None,
            confirm_live=False,
            actor="operator:test",
            refusal=lambda *order: None,
        ).run()
    finally:
        await venue.close()
    check = checklist.get("risk_self_test")
    assert check.status == Status.FAIL and "NOT refused: the engine's order checks (not sent)" in check.detail


def write_config(sim: Simulator, tmp_path: Path, extra: str = "") -> dict[str, str]:
    (tmp_path / "config.toml").write_text(
        f'[venue]\nexchange = "binance"\nrest_url = "{sim.rest_url}"\nws_url = "{sim.ws_url}"\n'
        f'[risk]\nmax_position_pct = "20"\n[strategy]\nenabled = false\n[engine]\ndata_dir = "data"\n{extra}'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(COCKPIT_VENUE__API_KEY=sim.api_key, COCKPIT_VENUE__API_SECRET=sim.api_secret)
    return env


async def cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cockpit.cli", *args, "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


async def test_cockpit_preflight_exits_1_for_no_go_2_when_it_cannot_run(sim, tmp_path):
    """With no engine running, it starts one there without strategies for the checklist's length."""
    env = write_config(sim, tmp_path)
    no_go = await cli(tmp_path, {**env, "COCKPIT_PREFLIGHT__MIN_BALANCE": "1000000"}, "preflight")
    assert no_go.returncode == 1, no_go.stderr
    assert "FAIL" in no_go.stdout and "NO-GO · 14 PASS · 3 WARN · 1 FAIL" in no_go.stdout
    assert "fix: fund the account with at least 1000000 USDT" in " ".join(no_go.stdout.split())

    assert sim.api_secret not in no_go.stdout + no_go.stderr  # secrets never reach the screen
    assert sim.open_orders() == []  # the smoke trade left nothing behind
    (tmp_path / "data" / "cockpit.db").unlink()
    (tmp_path / "data" / "cockpit.db").write_text("not a database")
    broken = await cli(tmp_path, env, "preflight")
    assert broken.returncode == 2 and "could not run" in broken.stderr and "Traceback" not in broken.stderr


async def test_cockpit_preflight_asks_the_running_engine_go_is_0_and_a_live_run_is_refused(sim, tmp_path):
    env = write_config(sim, tmp_path)
    engine = Engine(settings(sim, tmp_path / "data"))
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20, message="engine connected")
        asked = await cli(tmp_path, env, "preflight", "--json")
        assert asked.returncode == 0, asked.stderr
        checklist = json.loads(asked.stdout)
        assert checklist["verdict"] == "GO" and checklist["summary"]["FAIL"] == 0
        assert checklist["actor"].startswith("operator:cli ")
        assert any(r["command"] == "preflight" for r in engine.store.audit(limit=20))
    finally:
        await engine.stop()
    live = await cli(tmp_path, {**env, "COCKPIT_ENGINE__MODE": "live"}, "run", "--headless", "--confirm-live")
    assert live.returncode == 2
    assert "live start refused by the go/no-go checklist" in live.stderr and "FAIL Mode" in live.stderr


async def test_the_checks_that_place_no_order_run_at_start_so_the_screen_has_a_verdict(sim, tmp_path):
    """A fresh session shows the go/no-go verdict without anyone asking (issue 25 §7): the engine of the program an
    operator runs (the TUI, `cockpit run`) runs the checks that place no order once it is connected, and again after
    every reconnect; the smoke trade stays behind F5 and its question."""
    engine = Engine(settings(sim, tmp_path / "data"), checks_at_start=True)
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20, message="engine connected")
        await eventually(
            lambda: engine.store.checklist_runs(limit=1), timeout=20, message="a checklist run stored at start"
        )
        (stored,) = engine.store.checklist_runs(limit=1)
        assert stored["actor"] == "engine:start"
        assert len(sim.engine.orders) == 0  # no smoke trade: not one order reached the venue
        codes = {c["code"] for c in stored["checks"]}
        assert {"venue", "api_key", "balance", "streams"} <= codes and "smoke_trade" not in codes
        assert (await engine.execute(Reconnect(actor="operator:test", reason="drill"))).ok
        await eventually(
            lambda: engine.store.checklist_runs(limit=1)[0]["actor"] == "engine:reconnect",
            timeout=20,
            message="the checks run again after the reconnect",
        )
        assert len(sim.engine.orders) == 0
    finally:
        await engine.stop()
