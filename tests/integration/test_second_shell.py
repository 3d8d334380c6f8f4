"""The kill switch and the status from a second shell, with an engine running: the real program in its own process
(`cockpit halt`, `cancel-all`, `status`), the real engine in this test's process on its built-in simulator.

What an operator relies on: the command reaches the engine over its socket before the rest of cockpit is imported
(`cockpit.quick`), answers as the full program would (the same lines, the same JSON), and does not depend on this
shell's configuration being right (a mistyped COCKPIT_ variable in the shell would stop the full program; the
engine checked its own configuration when it started). And reads the engine serves from its store in threads (an
attached screen's lists, `status`) never take the store's locks away from it: another process writing the store
afterwards (the inbox, when the socket is gone) must not delete the write-ahead log under the engine.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from eventually import eventually

from cockpit import quick
from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder, Resume
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import TradingState

ME = f"operator:cli {getpass.getuser()}"


@pytest.fixture
async def engine(tmp_path):
    running = Engine(Settings(engine=EngineConfig(data_dir=tmp_path / "data"), strategy=StrategyConfig(enabled=False)))
    await running.start()
    await eventually(running.ready.is_set, timeout=20, message="the engine connected to its simulator")
    try:
        yield running
    finally:
        await running.stop()


async def cockpit(engine, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cockpit.cli", *args, "--data-dir", str(engine.settings.engine.data_dir)],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=engine.settings.engine.data_dir.parent,
        timeout=60,
    )


async def test_status_and_the_kill_switch_answer_from_the_engine_as_the_full_program_would(engine):
    price = (engine.portfolio.last["BTC/USDT"] * Decimal("0.8")).quantize(Decimal("0.01"))
    order = PlaceOrder(
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal("0.001"),
        price=price,
        stop_loss=price * Decimal("0.9"),
    )
    assert (await engine.execute(order)).ok
    (resting,) = engine.tracker.open_orders()

    # A variable the full program refuses (exit 2) is no obstacle: this went straight to the engine.
    mistyped = {"COCKPIT_RISKS__KILL_SWITCH": "1"}
    by_engine = await cockpit(engine, "status", "--json", **mistyped)
    assert by_engine.returncode == 0, by_engine.stderr
    report = json.loads(by_engine.stdout)
    assert report["engine_pid"] == str(os.getpid()) and report["trading_state"] == "ACTIVE"
    assert [o["client_id"] for o in report["open_orders"]] == [resting.client_id]
    text = await cockpit(engine, "status", **mistyped)
    assert f"engine: running (pid {os.getpid()})" in text.stdout and "open orders: 1" in text.stdout

    # The same command when only the store can answer (the socket taken away): the same report, key for key.
    assert engine.api_server is not None
    await engine.api_server.stop()
    by_store = await cockpit(engine, "status", "--json")
    assert by_store.returncode == 0, by_store.stderr
    from_store = json.loads(by_store.stdout)
    assert list(from_store) == list(report)
    assert from_store["open_orders"] == report["open_orders"] and from_store["data_dir"] == report["data_dir"]
    refused = await cockpit(engine, "status", **mistyped)
    assert refused.returncode == 2 and "COCKPIT_RISKS__KILL_SWITCH is not a cockpit setting" in refused.stderr
    await engine.api_server.start()

    halted = await cockpit(engine, "halt", "--reason", "from the second shell", **mistyped)
    assert (halted.returncode, halted.stdout.strip()) == (0, "HALTED (from the second shell)"), halted.stderr
    assert engine.trading_state == TradingState.HALTED
    assert engine.store.audit(limit=1)[0]["actor"] == ME
    cancelled = await cockpit(engine, "cancel-all", "--json", **mistyped)
    answer = json.loads(cancelled.stdout)
    assert answer["ok"] and "canceled 1 order(s)" in answer["message"]
    assert engine.sim.open_orders() == []


async def test_reads_in_the_engine_keep_its_store_locks_when_another_process_writes(engine):
    """Regression: the engine's reads in threads opened the store file outside SQLite to check it; closing that
    descriptor dropped the engine's own POSIX locks, and the next process to close its connection deleted the
    write-ahead log under the engine: its store then failed with "disk I/O error" and commands were never read."""
    await engine.service.query("alerts", {"limit": 5})
    await engine.service.query("status_report", {})
    assert engine.api_server is not None
    await engine.api_server.stop()  # the command line falls back on the store's inbox: another process writes it
    for n in range(2):
        done = await cockpit(engine, "halt", "--reason", f"by the inbox {n}", "--timeout", "10")
        assert done.returncode == 0, done.stderr
        assert engine.trading_state == TradingState.HALTED
        await engine.execute(Resume(actor="operator:test", reason="again"))
    assert [r["status"] for r in engine.store.pending_commands()] == []
    assert (engine.settings.engine.data_dir / "cockpit.db-wal").exists()


@pytest.mark.parametrize(
    ("argv", "takes"),
    [
        (["halt"], True),
        (["--data-dir", "D", "cancel-all", "--reason=why", "--json"], True),
        (["status", "--config", "c.toml"], True),
        (["halt", "--reason"], False),  # a value missing: the full program says so
        (["halt", "--reason", "a", "--reason", "b"], False),
        (["status", "--reason", "a"], False),  # not one of status's options
        (["cancel-all", "--include-stops"], False),  # an option this path does not know
        (["resume"], False),
        (["halt", "close-all"], False),
    ],
)
def test_the_quick_path_takes_only_what_it_knows(argv, takes):
    assert (quick._parse(argv) is not None) == takes
