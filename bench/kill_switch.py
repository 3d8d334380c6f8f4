"""The kill switch through the engine's one command path, on the built-in simulator, with its floor in the same run.

- halt: ``Halt`` recorded (state changed, stored, audited).
- cancel-all, ``--orders`` resting orders on 1 symbol: from the command to its answer, which comes after the venue
  listed no order left (``done``), and to the moment the simulator holds no open order (``venue_clear``).
- cancel-all on an idle engine, 2 symbols × ``--orders``/2: the same after a routine venue-wide open-orders listing
  (weight 80) and ``--idle-s`` of idle time, the case ccxt's limiter used to make wait.
- close-all, 2 positions (BTC and ETH bought at market): from the command to its answer, which comes only after the
  venue's balances were read back and hold nothing but dust.

Floors, on the same simulator with the engine connected (its user stream receives the same reports): a bare ccxt
client's one ``DELETE openOrders`` for the same number of its own orders (two in parallel for 2 symbols), and its
close-all: the same calls the engine makes (cancels, balances, market sells, balances) with nothing else.

Run: .venv/bin/python bench/kill_switch.py [--runs N] [--orders K] [--idle-s S]; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from benchlib import ratio, sim_settings, started, summary

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, CloseAll, Halt, PlaceOrder, Resume
from engine.sim import Simulator
from engine.venue.exchange import build_exchange

PARAMS = {"runs": 20, "orders": 100, "idle_s": 1.0}
QUICK = {"runs": 1, "orders": 4, "idle_s": 0.0}
SYMBOLS = ("BTC/USDT", "ETH/USDT")


async def place(engine: Engine, symbol: str, n: int, start: int = 0) -> None:
    last = engine.portfolio.last[symbol]
    amount = Decimal("0.0002") if symbol.startswith("BTC") else Decimal("0.005")
    for i in range(start, start + n):
        price = last * (Decimal("0.90") - Decimal(i) / 2000)
        result = await engine.execute(
            PlaceOrder(
                symbol=symbol,
                side="buy",
                type="limit",
                amount=amount,
                price=price,
                stop_loss=price * Decimal("0.9"),
                reason="bench",
            )
        )
        assert result.ok, result.message


async def place_bare(ex: Any, symbol: str, n: int, last: float) -> None:
    amount = "0.0002" if symbol.startswith("BTC") else "0.005"
    for i in range(n):
        await ex.create_order(symbol, "limit", "buy", amount, ex.price_to_precision(symbol, last * (0.9 - i / 2000)))


def venue_clear_timer(sim: Simulator) -> dict[str, float]:
    """Records when the simulator last went from some open orders to none (its own matching engine's events)."""
    mark: dict[str, float] = {}

    def listener(event: Any) -> None:
        if type(event).__name__ == "OrderUpdate" and not sim.open_orders():
            mark.setdefault("clear", time.perf_counter())

    sim.engine.listeners.append(listener)
    return mark


async def measure(runs: int, orders: int, idle_s: float) -> dict[str, Any]:
    # Binance's order-rate limit lifted: the benchmark places orders faster than 100 / 10 s, and what it measures
    # is the kill switch. Reconciliation hourly, so the floor client's own orders are not adopted meanwhile.
    sim = Simulator(seed=1, orders_per_10s=1_000_000)
    await sim.start()
    settings = sim_settings(sim)
    settings = settings.model_copy(update={"monitors": settings.monitors.model_copy(update={"reconcile_s": 3600.0})})
    engine = await started(Engine(settings))
    bare = build_exchange(
        "binance",
        rest_url=sim.rest_url,
        ws_url=sim.ws_url,
        api_key=sim.api_key,
        api_secret=sim.api_secret,
        rate_limit=False,
    )
    await bare.load_markets()
    mark = venue_clear_timer(sim)
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "halt",
            "cancel_done",
            "cancel_clear",
            "floor_cancel",
            "idle_done",
            "idle_clear",
            "floor_idle",
            "close",
            "floor_close",
        )
    }
    try:
        for _ in range(runs):
            # cancel-all, 1 symbol
            await engine.execute(Resume(reason="bench"))
            await place(engine, "BTC/USDT", orders)
            t = time.perf_counter()
            await engine.execute(Halt(reason="bench"))
            out["halt"].append((time.perf_counter() - t) * 1000)
            mark.clear()
            t = time.perf_counter()
            result = await engine.execute(CancelAll(reason="bench"))
            out["cancel_done"].append((time.perf_counter() - t) * 1000)
            out["cancel_clear"].append((mark["clear"] - t) * 1000)
            assert result.ok and sim.open_orders() == [], result.message
            # its floor
            await place_bare(bare, "BTC/USDT", orders, float(engine.portfolio.last["BTC/USDT"]))
            t = time.perf_counter()
            await bare.cancel_all_orders("BTC/USDT")
            out["floor_cancel"].append((time.perf_counter() - t) * 1000)
            assert sim.open_orders() == []
            # idle engine, 2 symbols
            await engine.execute(Resume(reason="bench"))
            for symbol in SYMBOLS:
                await place(engine, symbol, orders // 2)
            await engine.link.require().fetch_open_orders(None)  # a routine venue-wide listing (weight 80)
            await asyncio.sleep(idle_s)
            mark.clear()
            t = time.perf_counter()
            result = await engine.execute(CancelAll(reason="bench"))
            out["idle_done"].append((time.perf_counter() - t) * 1000)
            out["idle_clear"].append((mark["clear"] - t) * 1000)
            assert result.ok and sim.open_orders() == [], result.message
            for symbol in SYMBOLS:
                await place_bare(bare, symbol, orders // 2, float(engine.portfolio.last[symbol]))
            t = time.perf_counter()
            await asyncio.gather(*(bare.cancel_all_orders(s) for s in SYMBOLS))
            out["floor_idle"].append((time.perf_counter() - t) * 1000)
            # close-all, 2 positions
            await buy_two(engine)
            t = time.perf_counter()
            result = await engine.execute(CloseAll(reason="bench"))
            out["close"].append((time.perf_counter() - t) * 1000)
            assert result.ok and "closed 2 position(s)" in result.message, result.message
            await buy_two(engine)
            t = time.perf_counter()
            await bare_close_all(bare)
            out["floor_close"].append((time.perf_counter() - t) * 1000)
            assert sum(sim.balance("BTC")) < Decimal("0.00001") and sum(sim.balance("ETH")) < Decimal("0.0001")
    finally:
        await bare.close()
        await engine.stop()
        await sim.stop()
    s = {k: summary(v) for k, v in out.items()}
    return {
        "benchmark": "kill_switch",
        "runs": runs,
        "orders": orders,
        "unit": "ms",
        "halt": s["halt"],
        "cancel_all_1_symbol": {
            "done": s["cancel_done"],
            "venue_clear": s["cancel_clear"],
            "floor_bare_ccxt_delete": s["floor_cancel"],
            "ratio_done": ratio(s["cancel_done"], s["floor_cancel"]),
            "goal": "p50 <= 25 ms, p99 <= 100 ms",
        },
        "cancel_all_idle_2_symbols": {
            "done": s["idle_done"],
            "venue_clear": s["idle_clear"],
            "floor_bare_ccxt_2_deletes": s["floor_idle"],
            "ratio_done": ratio(s["idle_done"], s["floor_idle"]),
            "goal": "p50 <= 25 ms, p99 <= 100 ms",
        },
        "close_all_2_positions": {
            "done": s["close"],
            "floor_bare_ccxt_same_calls": s["floor_close"],
            "ratio": ratio(s["close"], s["floor_close"]),
            "goal": "p50 <= 30 ms",
        },
    }


async def buy_two(engine: Engine) -> None:
    await engine.execute(Resume(reason="bench"))
    for symbol, amount in (("BTC/USDT", "0.002"), ("ETH/USDT", "0.05")):
        last = engine.portfolio.last[symbol]
        result = await engine.execute(
            PlaceOrder(
                symbol=symbol,
                side="buy",
                type="market",
                amount=Decimal(amount),
                stop_loss=last * Decimal("0.5"),
                reason="bench",
            )
        )
        assert result.ok, result.message
    await asyncio.sleep(0.05)  # let the balance stream settle before the clock starts


async def bare_close_all(ex: Any) -> None:
    """What close-all does, by bare ccxt: cancel per symbol, read balances, sell what is free, read balances."""

    async def cancel(symbol: str) -> None:
        try:
            await ex.cancel_all_orders(symbol)
        except Exception:  # -2011: nothing to cancel
            pass

    await asyncio.gather(*(cancel(s) for s in SYMBOLS))
    balance = await ex.fetch_balance()
    sells = []
    for symbol in SYMBOLS:
        free = balance["free"].get(symbol.split("/")[0]) or 0
        amount = float(ex.amount_to_precision(symbol, free)) if free else 0
        if amount > 0:
            sells.append(ex.create_order(symbol, "market", "sell", amount))
    await asyncio.gather(*sells)
    await ex.fetch_balance()


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
