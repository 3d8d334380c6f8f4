"""What the perpetual-futures tests share (issue 24, runbook 002): a simulator serving USDⓈ-M futures, the engine's
settings on it, and a bare ccxt ``binanceusdm`` client on it (a position opened outside the engine, or the venue's
own word on what is there)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from runbook import settings

from engine.kernel.config import Settings
from engine.sim import Simulator
from engine.venue.exchange import build_exchange

PERP = "BTC/USDT:USDT"
PERPS = dict(market="usdm", symbols=(PERP,), deadman_s=5.0)
# No flash-crash halt for the price moves of these tests (a move of 10 % is the point here).
CALM = dict(flash_crash_pct=Decimal("50"))


@pytest.fixture(name="usdm")
async def usdm_fixture():
    """A simulator serving USDⓈ-M futures only, its price still unless a test moves it."""
    simulator = Simulator(seed=5, tick_interval=0.05, market="usdm")
    await simulator.start()
    simulator.pause_feed()
    yield simulator
    await simulator.stop()


def perp_settings(
    sim: Simulator, data_dir: Path, monitors: dict | None = None, risk: dict | None = None, venue: dict | None = None
) -> Settings:
    """The engine on ``sim``'s perpetuals, with the scenarios' small thresholds; no stop-loss required (the
    protective stops of perps are the protection issue's)."""
    return settings(
        sim,
        data_dir,
        venue={**PERPS, **(venue or {})},
        risk={"max_position_pct": Decimal("50"), "require_stop_loss": False, "stops_at_venue": False, **(risk or {})},
        monitors={**CALM, **(monitors or {})},
    )


def bare(sim: Simulator) -> Any:
    """A ccxt ``binanceusdm`` client of its own on ``sim`` (close it after use)."""
    return build_exchange(
        "binanceusdm",
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        market="usdm",
    )


def venue_positions(sim: Simulator) -> dict[str, Decimal]:
    """The venue's open positions by market id (BTCUSDT), signed."""
    return {p["symbol"]: Decimal(p["positionAmt"]) for p in sim.account()["futures"]["positions"]}
