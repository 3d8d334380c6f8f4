"""The kill switch and operator orders from another shell: `cockpit order`, `close-all`, `close`, `reconnect`,
`audit` as subprocesses against an engine on a standalone simulator, and the emergency path with no engine."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal

from eventually import eventually

from engine.core.engine import Engine
from engine.kernel.commands import PlaceOrder
from engine.kernel.config import EngineConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import TradingState
from engine.sim import Simulator
from engine.store.db import Store


def write_config(sim: Simulator, tmp_path) -> dict[str, str]:
    """A config.toml pointing at the simulator, and the environment that carries its keys."""
    (tmp_path / "config.toml").write_text(
        f'[venue]\nexchange = "binance"\nrest_url = "{sim.rest_url}"\nws_url = "{sim.ws_url}"\n'
        '[risk]\nmax_position_pct = "20"\n[strategy]\nenabled = false\n[engine]\ndata_dir = "data"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(COCKPIT_VENUE__API_KEY=sim.api_key, COCKPIT_VENUE__API_SECRET=sim.api_secret)
    return env


def settings(sim: Simulator, tmp_path) -> Settings:
    return Settings(
        venue=VenueConfig(
            exchange="binance", rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=sim.api_key, api_secret=sim.api_secret
        ),
        engine=EngineConfig(data_dir=tmp_path / "data"),
        risk=RiskConfig(max_position_pct=Decimal("20")),
        strategy=StrategyConfig(enabled=False),
    )


async def cli(tmp_path, env, *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cockpit.cli", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=90,
    )


async def buy_btc(engine: Engine, amount: str = "0.01") -> None:
    last = engine.portfolio.last["BTC/USDT"]
    result = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT", side="buy", type="market", amount=Decimal(amount), stop_loss=last * Decimal("0.5")
        )
    )
    assert result.ok, result.message


async def test_order_close_reconnect_and_audit_from_another_shell(sim, tmp_path):
    env = write_config(sim, tmp_path)
    engine = Engine(settings(sim, tmp_path))
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        bought = await cli(tmp_path, env, "order", "buy", "BTCUSDT", "0.01", "--stop-loss", "1000")
        assert bought.returncode == 0, bought.stderr
        assert bought.stdout.strip() == "buy 0.01 BTC/USDT FILLED"
        refused = await cli(tmp_path, env, "order", "buy", "ETH/USDT", "0.1")
        assert refused.returncode == 1 and "stop-loss is required" in refused.stderr
        garbage = await cli(tmp_path, env, "order", "buy", "ETH/USDT", "lots")
        assert garbage.returncode == 2 and "'lots' is not a number" in garbage.stderr
        resting = await cli(
            tmp_path,
            env,
            "order",
            "buy",
            "ETH/USDT",
            "0.1",
            "--price",
            str(engine.portfolio.last["ETH/USDT"] * Decimal("0.9")),
            "--stop-loss",
            "100",
        )
        assert resting.returncode == 0, resting.stderr

        closed_eth = await cli(tmp_path, env, "close", "ETH/USDT")
        assert closed_eth.returncode == 0, closed_eth.stderr
        assert closed_eth.stdout.startswith("ETH/USDT: canceled 1 order(s)")

        reconnect = await cli(tmp_path, env, "reconnect")
        assert reconnect.returncode == 0, reconnect.stderr
        assert "reconnected in" in reconnect.stdout and "ticker BTC/USDT" in reconnect.stdout

        close_all = await cli(tmp_path, env, "close-all", "--reason", "drill")
        assert close_all.returncode == 0, close_all.stderr
        assert "closed 1 position(s)" in close_all.stdout
        assert sim.open_orders() == [] and sum(sim.balance("BTC")) < Decimal("0.00001")
        assert engine.trading_state == TradingState.HALTED

        audit = await cli(tmp_path, env, "audit", "--json", "--limit", "30")
        rows = [r for r in json.loads(audit.stdout) if r["command"] != "protect"]  # the engine's stops aside
        assert [r["command"] for r in rows[:6]] == ["close-all", "reconnect", "close", "order", "order", "order"]
        first = rows[0]
        assert {"time", "command", "actor", "reason", "ok", "result", "duration_ms"} <= set(first)
        assert first["actor"].startswith("operator:cli ") and first["reason"] == "drill" and first["ok"] is True
        assert rows[4]["ok"] is False and "stop-loss" in rows[4]["result"]
    finally:
        await engine.stop()


async def test_close_all_with_no_engine_acts_on_the_venue_directly(sim, tmp_path):
    env = write_config(sim, tmp_path)
    engine = Engine(settings(sim, tmp_path))
    await engine.start()
    await eventually(engine.ready.is_set, timeout=20)
    await buy_btc(engine)
    last = engine.portfolio.last["BTC/USDT"]
    await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.002"),
            price=last * Decimal("0.9"),
            stop_loss=last * Decimal("0.5"),
        )
    )
    await eventually(lambda: len(sim.open_orders()) == 2, message="the resting buy and the position's stop")
    await engine.stop()  # the engine is gone; its position, order and stop are still at the venue
    assert len(sim.open_orders()) == 2 and sum(sim.balance("BTC")) >= Decimal("0.009")

    result = await cli(tmp_path, env, "close-all")
    assert result.returncode == 0, result.stderr
    assert "no engine is running" in result.stderr
    assert result.stdout.startswith("HALTED (latched); canceled 2 order(s); closed 1 position(s); 0 still open")
    assert "acted on the venue directly" in result.stdout
    assert sim.open_orders() == [] and sum(sim.balance("BTC")) < Decimal("0.00001")
    store = Store.in_dir(tmp_path / "data")
    assert store.trading_state()[0] == TradingState.HALTED
    (row, *_) = store.audit(limit=3)
    assert row["command"] == "close-all" and row["ok"] and row["args"] == {"engine": "none"}
    sells = [o for o in store.orders() if o.side == "sell" and o.type == "market"]
    assert len(sells) == 1 and sells[0].status.value == "FILLED"  # stored before it left, like any order


async def test_emergency_path_in_maintenance_reports_what_it_could_not_do(sim, tmp_path):
    env = write_config(sim, tmp_path)
    Store.in_dir(tmp_path / "data").close()  # an engine ran here before
    sim.faults.inject("maintenance")
    result = await cli(tmp_path, env, "cancel-all", "--retry-for", "0")
    assert result.returncode == 1
    assert "could not reach the venue" in result.stderr or "failed:" in result.stderr
    assert Store.in_dir(tmp_path / "data").trading_state()[0] == TradingState.HALTED
