"""A monitor's trip seen and answered from another shell: `cockpit status --json` names the monitor with its
values and lists every monitor; `cockpit reconcile` shows the difference; resume is refused until the operator
adopts it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal

from eventually import eventually
from fastsim import FAST

from engine.core.engine import Engine
from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import TradingState


async def cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cockpit.cli", *args, "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=90,
    )


async def test_a_mismatch_trip_from_another_shell(sim, tmp_path):
    engine = Engine(
        Settings(
            venue=VenueConfig(
                exchange="binance",
                rest_url=sim.rest_url,
                ws_url=sim.ws_url,
                api_key=sim.api_key,
                api_secret=sim.api_secret,
                **FAST,
            ),
            engine=EngineConfig(data_dir=tmp_path / "data"),
            risk=RiskConfig(max_position_pct=Decimal("20")),
            monitors=MonitorsConfig(interval_s=0.1, reconcile_s=0.3),
            strategy=StrategyConfig(enabled=False),
        )
    )
    await engine.start()
    try:
        await eventually(engine.ready.is_set, timeout=20)
        await eventually(lambda: engine.holdings.baseline is not None)
        sim.faults.inject("foreign-fill", symbol="BTCUSDT", side="BUY", qty="0.01")  # ~6.5 % of equity
        await eventually(lambda: engine.trading_state == TradingState.HALTED, timeout=15, message="halted")
        await eventually(
            lambda: any(
                m["code"] == "position_mismatch" and m["status"] == "CRIT"
                for m in engine.store.load_json("monitors") or []
            ),
            message="statuses stored",
        )

        status = json.loads((await cli(tmp_path, "status", "--json")).stdout)
        assert status["trading_state"] == "HALTED"
        tripped = status["tripped_by"]
        assert tripped["code"] == "position_mismatch" and tripped["actor"] == "monitor:position_mismatch"
        assert tripped["values"]["asset"] == "BTC" and Decimal(tripped["values"]["diff"]) > Decimal("0.009")
        monitors = {m["code"]: m for m in status["monitors"]}
        assert set(monitors) >= {
            "ws_stale",
            "rest_errors",
            "rate_limit_ban",
            "flash_crash",
            "position_mismatch",
            "auth_failure",
            "maintenance",
            "daily_loss",
            "max_drawdown",
            "stuck_order",
            "clock_skew",
            "rest_latency",
            "stream_latency",
            "reconnects",
        }
        assert monitors["position_mismatch"]["status"] == "CRIT" and monitors["ws_stale"]["status"] == "OK"
        assert all({"status", "value", "threshold"} <= set(m) for m in status["monitors"])
        assert status["position_mismatch"][0]["asset"] == "BTC"
        text = (await cli(tmp_path, "status")).stdout
        assert "[position_mismatch]" in text and "position_mismatch CRIT" in text

        refused = await cli(tmp_path, "resume")
        assert refused.returncode == 1 and "position_mismatch" in refused.stderr

        report = await cli(tmp_path, "reconcile", "--json")
        answer = json.loads(report.stdout)
        assert answer["ok"] and answer["details"]["mismatch"][0]["asset"] == "BTC"
        shown = await cli(tmp_path, "reconcile")
        assert "KEPT for the operator: BTC" in shown.stdout

        adopted = await cli(tmp_path, "reconcile", "--adopt")
        assert adopted.returncode == 0 and "adopted: BTC" in adopted.stdout
        await eventually(lambda: engine.monitors.rows["position_mismatch"].status.value != "CRIT")
        resumed = await cli(tmp_path, "resume")
        assert resumed.returncode == 0, resumed.stderr
    finally:
        await engine.stop()
