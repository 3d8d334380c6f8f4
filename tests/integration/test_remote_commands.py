"""Commands from another shell reach the running engine through the store, and the CLI prints the answer."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import subprocess
import sys

from eventually import eventually

from engine.api.inbox import send
from engine.core.engine import Engine
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import TradingState
from engine.store.db import Store


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return subprocess.run(
        [sys.executable, "-m", "cockpit.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


async def test_cancel_all_from_another_shell(tmp_path):
    engine = Engine(
        Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=True, interval_s=0.2))
    )
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        await eventually(lambda: len(engine.sim.open_orders()) >= 2, timeout=20, message="ladder orders")
        ok, message = await asyncio.to_thread(send, tmp_path, "cancel-all", "drill", 15)
        assert ok, message
        assert "canceled" in message and "0 still open" in message
        assert engine.sim.open_orders() == []
        assert engine.trading_state == TradingState.HALTED
        assert engine.state_info["actor"] == f"operator:cli {pwd.getpwuid(os.getuid()).pw_name}"  # the socket's peer
        result = await asyncio.to_thread(cli, "status", "--json", "--data-dir", str(tmp_path), cwd=tmp_path)
        status = json.loads(result.stdout)
        assert status["trading_state"] == "HALTED" and status["engine_pid"] == str(os.getpid())
        assert status["open_orders"] == []
    finally:
        await engine.stop()


def test_halt_with_no_engine_latches_for_next_start(tmp_path):
    Store.in_dir(tmp_path).close()  # an engine ran here before
    result = cli("halt", "--reason", "maintenance", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HALTED")
    state, info = Store.in_dir(tmp_path).trading_state()
    assert state == TradingState.HALTED and info["reason"] == "maintenance"
    status = cli("status", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert "PAPER · HALTED" in status.stdout and "engine: not running" in status.stdout


def test_cancel_all_with_no_engine_on_the_built_in_simulator_says_nothing_is_held(tmp_path):
    Store.in_dir(tmp_path).close()
    result = cli("close-all", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no engine is running" in result.stderr
    assert "closed 0 position(s)" in result.stdout and "exists only inside a running engine" in result.stdout
    assert Store.in_dir(tmp_path).trading_state()[0] == TradingState.HALTED


def test_commands_that_need_an_engine_say_so(tmp_path):
    Store.in_dir(tmp_path).close()
    result = cli("reconnect", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1 and "no engine is running" in result.stderr and "needs one" in result.stderr


def test_emergency_commands_refuse_a_directory_without_a_store(tmp_path):
    result = cli("close-all", "--data-dir", str(tmp_path / "typo"), cwd=tmp_path)
    assert result.returncode == 1 and "no cockpit store" in result.stderr


def test_a_mistyped_data_dir_is_refused_not_halted(tmp_path):
    result = cli("halt", "--data-dir", str(tmp_path / "typo"), cwd=tmp_path)
    assert result.returncode == 1 and "no cockpit store at" in result.stderr
    assert not (tmp_path / "typo" / "cockpit.db").exists()


def test_bad_config_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[venue]\ntimeout_ms = "soon"\n')
    result = cli("status", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert str(bad) in result.stderr and "venue.timeout_ms" in result.stderr


async def test_strategy_and_reduce_only_from_another_shell(tmp_path):
    engine = Engine(
        Settings(
            engine=EngineConfig(data_dir=tmp_path, equity_sample_s=0.1),
            strategy=StrategyConfig(enabled=True, interval_s=0.2),
        )
    )
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        ok, message = await asyncio.to_thread(
            send, tmp_path, "strategy", "test", 15, {"strategy": "ladder", "enabled": False}
        )
        assert ok and message == "ladder disabled"
        assert not engine.runner.guard.is_enabled("ladder", __import__("engine.kernel.events").kernel.events.utcnow())
        ok, message = await asyncio.to_thread(
            send, tmp_path, "strategy", "test", 15, {"strategy": "nope", "enabled": True}
        )
        assert not ok and "no strategy 'nope'" in message
        ok, message = await asyncio.to_thread(send, tmp_path, "reduce-only", "test", 15)
        assert ok and engine.trading_state == TradingState.REDUCE_ONLY
        await eventually(lambda: Store.in_dir(tmp_path).equity_curve(), message="equity sampled")
        result = await asyncio.to_thread(cli, "status", "--data-dir", str(tmp_path), cwd=tmp_path)
        assert "PAPER · REDUCE_ONLY" in result.stdout and "equity: " in result.stdout
    finally:
        await engine.stop()


def test_a_halt_with_no_engine_opens_an_incident_and_a_resume_closes_it(tmp_path):
    Store.in_dir(tmp_path).close()
    assert cli("halt", "--reason", "going home", "--data-dir", str(tmp_path), cwd=tmp_path).returncode == 0
    (incident,) = Store.in_dir(tmp_path).incidents()
    assert incident["actor"].startswith("operator:cli ") and incident["recovered_at"] is None
    assert (tmp_path / "snapshots").is_dir() and incident["snapshot"].endswith(".zip")
    assert cli("resume", "--data-dir", str(tmp_path), cwd=tmp_path).returncode == 0
    (closed,) = Store.in_dir(tmp_path).incidents()
    assert closed["id"] == incident["id"] and closed["recovered_at"]


async def test_mode_from_another_shell_switches_to_dry_run_and_refuses_live(tmp_path):
    engine = Engine(Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=False)))
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        result = await asyncio.to_thread(cli, "mode", "live", "--data-dir", str(tmp_path), cwd=tmp_path)
        assert result.returncode == 1 and "started in 'paper'" in result.stderr and engine.mode == "paper"
        result = await asyncio.to_thread(cli, "mode", "dry-run", "--data-dir", str(tmp_path), cwd=tmp_path)
        assert result.returncode == 0 and "mode is now dry-run (nothing is sent)" in result.stdout
        assert engine.mode == "dry-run" and engine.execution.mode == "dry-run"
        assert any(a.code == "MODE_CHANGED" for a in engine.alert_book.recent)
        status = json.loads(
            (await asyncio.to_thread(cli, "status", "--json", "--data-dir", str(tmp_path), cwd=tmp_path)).stdout
        )
        assert status["mode"] == "dry-run"
    finally:
        await engine.stop()
