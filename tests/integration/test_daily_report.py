"""``cockpit report daily`` prints the summary the sinks receive at 23:59 UTC, from the same figures."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

from eventually import eventually
from fastsim import FAST

from engine.kernel.commands import ClosePosition, Halt, PlaceOrder
from engine.kernel.config import EngineConfig, RiskConfig, Settings, StrategyConfig, VenueConfig


async def test_the_daily_report_is_the_summary_the_sinks_receive(sim, tmp_path, run):
    engine = await run(
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
            strategy=StrategyConfig(enabled=False),
        )
    )
    last = engine.portfolio.last["BTC/USDT"]
    bought = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001"), stop_loss=last * Decimal("0.5")
        )
    )
    assert bought.ok, bought.message
    await eventually(lambda: engine.stats.current().trades_count >= 1, message="the fill counted")
    # Closing one symbol is an operator's order, not a trip of the kill switch; the halt is one (cockpit incidents
    # counts the same).
    assert (await engine.execute(ClosePosition(actor="operator:key", symbol="BTC/USDT"))).ok
    assert (await engine.execute(Halt(actor="operator:key", reason="end of day"))).ok
    today = datetime.now(UTC)
    engine._daily_summary(now=today.replace(hour=23, minute=59))
    sent = next(a for a in engine.alert_book.recent if a.code == "DAILY_SUMMARY")
    await engine.stop()  # the day's counters are on disk at stop, as at every equity sample
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cockpit.cli", "report", "daily", *args, "--data-dir", str(tmp_path / "data")],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )

    text = await asyncio.to_thread(cli)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == sent.message
    as_json = json.loads((await asyncio.to_thread(cli, "--json", "--date", today.date().isoformat())).stdout)
    assert as_json["message"] == sent.message and as_json["trades_count"] >= 1 and as_json["kill_switch_trips"] == 1
    for figure in ("net_pnl", "fees"):  # rounded as the venue keeps amounts: 8 places at most, no exponent
        assert re.fullmatch(r"-?\d+\.\d{2,8}", as_json[figure]), as_json[figure]
        assert f"{'PnL' if figure == 'net_pnl' else 'fees'} {as_json[figure]}," in sent.message
    other_day = await asyncio.to_thread(cli, "--date", "2001-01-01")
    assert other_day.returncode == 1 and "nothing recorded on 2001-01-01" in other_day.stderr
