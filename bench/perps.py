"""The kill switch on perpetual futures (issue 24, runbook 002) through the engine's one command path, against bare
ccxt ``binanceusdm`` in the same run (alternating, each on a simulator of its own with the same seed, so that the
engine's account and the bare client's never meet).

- close-all, 2 positions (a BTC short and an ETH long): from the command to its answer, which comes only after the
  venue's positions were read back flat. Floor: the bare client reads its positions, closes both with reduce-only
  market orders in parallel and reads them back flat (``floor_bare_ccxt_positions_2_closes_positions``); and the
  same calls the engine makes (a cancel-all per symbol, the open-orders listing, the account, then the same three).
- cancel-all, ``--orders`` resting orders on 2 symbols: from the command to its answer (after the venue listed none
  left). Floor: a ``DELETE allOpenOrders`` per symbol in parallel, then the venue-wide listing that confirms none.

Each ratio is judged against its goal with its spread (``benchlib.judge``).

Run: .venv/bin/python bench/perps.py [--runs N] [--orders K]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchlib import cli, judge, started, summary

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, CloseAll, PlaceOrder, Resume
from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.sim import Simulator
from engine.venue.exchange import build_exchange

PARAMS = {"runs": 20, "orders": 20}
QUICK = {"runs": 2, "orders": 4}
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
POSITIONS = ((BTC, "sell", Decimal("0.002")), (ETH, "buy", Decimal("0.05")))
GOALS = {"perps_close_all_p50": 1.5, "perps_cancel_all_p50": 1.5}


def settings(sim: Simulator) -> Settings:
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            market="usdm",
            symbols=(BTC, ETH),
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            # No client-side pacing, as for the bare client: the benchmark's bursts (20 orders a run) are its own,
            # and the weight budget would make the engine wait for the next minute where the venue would not.
            rate_limit=False,
        ),
        engine=EngineConfig(data_dir=Path(tempfile.mkdtemp(prefix="cockpit-bench-perps-"))),
        risk=RiskConfig(
            max_orders_per_minute=100_000,
            max_position_pct=Decimal(100),
            require_stop_loss=False,
            stops_at_venue=False,
        ),
        monitors=MonitorsConfig(),
        strategy=StrategyConfig(enabled=False),
    )


async def engine_positions(engine: Engine) -> None:
    await engine.execute(Resume(reason="bench"))
    for symbol, side, amount in POSITIONS:
        result = await engine.execute(PlaceOrder(symbol=symbol, side=side, type="market", amount=amount))
        assert result.ok, result.message
    while len(engine.portfolio.perps) < 2:
        await engine.execution.refresh_positions()


async def engine_orders(engine: Engine, n: int) -> None:
    await engine.execute(Resume(reason="bench"))
    for i in range(n):
        symbol = (BTC, ETH)[i % 2]
        price = engine.portfolio.last[symbol] * (Decimal("0.90") - Decimal(i) / 2000)
        amount = Decimal("0.002") if symbol == BTC else Decimal("0.05")
        result = await engine.execute(
            PlaceOrder(symbol=symbol, side="buy", type="limit", amount=amount, price=price.quantize(Decimal("0.1")))
        )
        assert result.ok, result.message


async def bare_positions(ex: Any) -> None:
    for symbol, side, amount in POSITIONS:
        await ex.create_order(symbol, "market", side, str(amount))


async def bare_close(ex: Any, same_calls: bool) -> None:
    """The floor of close-all: positions read, each closed reduce-only (in parallel), positions read back flat."""
    if same_calls:  # what the engine's close-all also does first: a cancel per symbol, the listing, the account
        await asyncio.gather(*(ex.fapiPrivateDeleteAllOpenOrders({"symbol": s}) for s in ("BTCUSDT", "ETHUSDT")))
        await asyncio.gather(ex.fapiPrivateGetOpenOrders(), ex.fetch_balance())
    held = await ex.fetch_positions()
    await asyncio.gather(
        *(
            ex.create_order(
                p["symbol"],
                "market",
                "buy" if p["side"] == "short" else "sell",
                p["contracts"],
                None,
                {"reduceOnly": True},
            )
            for p in held
        )
    )
    assert await ex.fetch_positions() == []


async def bare_orders(ex: Any, n: int) -> None:
    last = {s: Decimal(str((await ex.fetch_ticker(s))["last"])) for s in (BTC, ETH)}
    for i in range(n):
        symbol = (BTC, ETH)[i % 2]
        price = (last[symbol] * (Decimal("0.90") - Decimal(i) / 2000)).quantize(Decimal("0.1"))
        await ex.create_order(symbol, "limit", "buy", "0.002" if symbol == BTC else "0.05", str(price))


async def bare_cancel(ex: Any) -> None:
    await asyncio.gather(*(ex.fapiPrivateDeleteAllOpenOrders({"symbol": s}) for s in ("BTCUSDT", "ETHUSDT")))
    assert await ex.fapiPrivateGetOpenOrders() == []


async def timed(work: Any) -> float:
    start = time.perf_counter()
    await work
    return (time.perf_counter() - start) * 1000


async def measure(runs: int, orders: int) -> dict[str, Any]:
    # Limits wide enough for the benchmark's own pace (the venue's limits are not what is measured).
    venue = dict(seed=7, market="usdm", orders_per_10s=100_000, weight_limit=1_000_000)
    engine_sim, bare_sim = Simulator(**venue), Simulator(**venue)
    await engine_sim.start()
    await bare_sim.start()
    for sim in (engine_sim, bare_sim):
        sim.pause_feed()
    engine = await started(Engine(settings(engine_sim)))
    ex = build_exchange(
        "binanceusdm",
        rest_url=bare_sim.rest_url,
        ws_url=bare_sim.ws_url,
        api_key=bare_sim.api_key,
        api_secret=bare_sim.api_secret,
        market="usdm",
        rate_limit=False,  # no client-side pacing: the venue's own answer times, as the engine's urgent lane
    )
    out: dict[str, list[float]] = {k: [] for k in ("close", "close_floor", "close_same", "cancel", "cancel_floor")}
    try:
        await ex.load_markets()
        for _ in range(runs):
            await engine_positions(engine)
            answer = engine.execute(CloseAll(reason="bench"))
            out["close"].append(await timed(answer))
            assert not engine_sim.account()["futures"]["positions"]
            for key, same in (("close_floor", False), ("close_same", True)):
                await bare_positions(ex)
                out[key].append(await timed(bare_close(ex, same)))
            await engine_orders(engine, orders)
            out["cancel"].append(await timed(engine.execute(CancelAll(reason="bench"))))
            assert not engine_sim.futures.open_orders()
            await bare_orders(ex, orders)
            out["cancel_floor"].append(await timed(bare_cancel(ex)))
    finally:
        await ex.close()
        await engine.stop()
        await engine_sim.stop()
        await bare_sim.stop()
    return {
        "benchmark": "perps",
        "runs": runs,
        "orders": orders,
        "close_all_2_positions": {
            "done": summary(out["close"]),
            "floor_bare_ccxt_positions_2_closes_positions": summary(out["close_floor"]),
            "floor_bare_ccxt_same_calls": summary(out["close_same"]),
        },
        "cancel_all_2_symbols": {
            "done": summary(out["cancel"]),
            "floor_bare_ccxt_2_deletes_and_listing": summary(out["cancel_floor"]),
        },
        "goals": {
            "perps_close_all_p50": judge(out["close"], out["close_floor"], GOALS["perps_close_all_p50"]),
            "perps_cancel_all_p50": judge(out["cancel"], out["cancel_floor"], GOALS["perps_cancel_all_p50"]),
        },
    }


if __name__ == "__main__":
    cli(measure, PARAMS, __doc__)
