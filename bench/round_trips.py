"""Order round trips through the engine against bare ccxt, on the same simulator, in the same run.

- market: a market buy then a market sell (BTC 0.0002), each waited for; through the engine the whole order path
  runs (checks, the client id stored before the request leaves, the answer and fills applied, the balance read
  back after a fill so the next order's exposure check sees it).
- limit pair: a limit buy placed 10 % under the price and cancelled.

Bare ccxt runs three ways: with the engine's venue-following weight budget installed on it (the same limiter the
engine uses: the floor its goal is judged against), with no client-side limiter, and with ccxt's own limiter
(``enableRateLimit``, ccxt's default, which the engine no longer uses: for information only, never a baseline).
Blocks of ``--block`` orders alternate between them.

Run: .venv/bin/python bench/round_trips.py [--orders N] [--block B]; prints one JSON object.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from benchlib import judge, ratio, sim_settings, started, summary

from engine.core.engine import Engine
from engine.kernel.commands import CancelOrder, PlaceOrder
from engine.sim import Simulator
from engine.venue.exchange import build_exchange

try:
    from engine.venue.ratelimit import WeightBudget
except ImportError:  # an engine from before issue 13 (for the "before" figures): no budget to compare with
    WeightBudget = None  # type: ignore[assignment,misc]

PARAMS = {"orders": 60, "block": 10}  # 60 samples of each
QUICK = {"orders": 2, "block": 1}
SYMBOL = "BTC/USDT"
AMOUNT = Decimal("0.0002")


def with_budget(ex: Any) -> Any:
    """A bare client paced by the engine's weight budget (what ``engine.venue.adapter`` installs), nothing else."""
    budget = WeightBudget()

    async def throttle(cost: Any = None) -> None:
        await budget.acquire(float(cost or 1) * budget.limit * ex.rateLimit / 60_000)

    ex.throttle = throttle
    return ex


async def measure(orders: int, block: int) -> dict[str, Any]:
    sim = Simulator(seed=2, orders_per_10s=1_000_000)
    await sim.start()
    engine = await started(Engine(sim_settings(sim)))
    keys = dict(rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=sim.api_key, api_secret=sim.api_secret)
    bare = {
        "ccxt_limiter": build_exchange("binance", **keys, rate_limit=True),
        "no_limiter": build_exchange("binance", **keys, rate_limit=False),
    }
    if WeightBudget is not None:
        bare["engine_budget"] = with_budget(build_exchange("binance", **keys, rate_limit=True))
    for ex in bare.values():
        await ex.load_markets()
    await bare["no_limiter"].create_order(SYMBOL, "market", "buy", "0.01")  # so that fees never leave a sell short
    times: dict[str, dict[str, list[float]]] = {k: {"market": [], "pair": []} for k in ("engine", *bare)}
    last = engine.portfolio.last[SYMBOL]
    price = last * Decimal("0.9")

    async def engine_market(side: str) -> None:
        result = await engine.execute(
            PlaceOrder(
                symbol=SYMBOL,
                side=side,
                type="market",
                amount=AMOUNT,
                stop_loss=last * Decimal("0.5") if side == "buy" else None,
            )
        )
        assert result.ok, result.message

    async def engine_pair() -> None:
        placed = await engine.execute(
            PlaceOrder(
                symbol=SYMBOL, side="buy", type="limit", amount=AMOUNT, price=price, stop_loss=price * Decimal("0.9")
            )
        )
        assert placed.ok, placed.message
        cancelled = await engine.execute(CancelOrder(client_id=placed.details["client_id"]))
        assert cancelled.ok, cancelled.message

    def bare_market(ex: Any) -> Callable[[str], Awaitable[None]]:
        async def go(side: str) -> None:
            await ex.create_order(SYMBOL, "market", side, str(AMOUNT))

        return go

    def bare_pair(ex: Any) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            order = await ex.create_order(SYMBOL, "limit", "buy", str(AMOUNT), str(price))
            await ex.cancel_order(order["id"], SYMBOL)

        return go

    runners = {
        "engine": (engine_market, engine_pair),
        **{k: (bare_market(ex), bare_pair(ex)) for k, ex in bare.items()},
    }
    try:
        done = 0
        while done < orders:
            n = min(block, orders - done)
            for name, (market, pair) in runners.items():
                for i in range(n):
                    t = time.perf_counter()
                    await market("buy" if i % 2 == 0 else "sell")
                    times[name]["market"].append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    await pair()
                    times[name]["pair"].append((time.perf_counter() - t) * 1000)
                if n % 2:  # end flat
                    await market("sell")
            done += n
    finally:
        for ex in bare.values():
            await ex.close()
        await engine.stop()
        await sim.stop()
    out: dict[str, Any] = {"benchmark": "round_trips", "orders": orders, "unit": "ms per order (pair: per pair)"}
    for kind in ("market", "pair"):
        stats = {name: summary(t[kind]) for name, t in times.items()}
        per_s = {name: round(1000 / s["median"], 1) for name, s in stats.items() if s.get("median")}
        out[kind] = {
            **stats,
            "per_second": per_s,
            "ratio_engine_vs_bare_same_budget": ratio(stats["engine"], stats.get("engine_budget", {})),
            "ratio_engine_vs_bare_ccxt_limiter": ratio(stats["engine"], stats["ccxt_limiter"]),
            "ratio_engine_vs_bare_no_limiter": ratio(stats["engine"], stats["no_limiter"]),
            "goal": "engine <= 1.3x bare ccxt with the same limiter",
        }
    if "engine_budget" in times:
        out["goals"] = {
            f"{kind} round trip / bare ccxt, same budget p50": judge(
                times["engine"][kind], times["engine_budget"][kind], 1.3
            )
            for kind in ("market", "pair")
        }
    return out


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
