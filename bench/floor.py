"""The floors of the kill switch, in a process with no engine in it: a bare ccxt client doing the venue's part of
each tier with nothing else, on the simulator it is told, answering JSON lines on stdin (EOF ends it).

- ``cancel``: places ``orders`` resting buys over ``symbols`` (untimed), then times the ``DELETE openOrders`` of
  each symbol in parallel (``deletes``) and, after them, the venue-wide open-orders listing that confirms none is
  left (``confirmed``): the same work as the engine's cancel-all, stopping at the same point (the venue has said
  there is nothing open).
- ``close``: buys the two positions at market (untimed), then times a balance listing plus two market sells in
  parallel (``listing_and_sells``: the issue's floor); then buys again and times the calls close-all makes, with
  nothing else (``same_calls``: cancels, balances, sells, balances read back).

Run by the benchmarks (bench/kill_switch.py), not by hand: the venue's address and key come in ``$BENCH_VENUE``
(JSON), never on the command line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from engine.venue.exchange import build_exchange

AMOUNTS = {"BTC/USDT": "0.0002", "ETH/USDT": "0.005"}
BUYS = {"BTC/USDT": "0.002", "ETH/USDT": "0.05"}


def ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


async def cancel(ex: Any, symbols: list[str], orders: int, settle_s: float) -> dict[str, Any]:
    for k, symbol in enumerate(symbols):
        last = (await ex.fetch_ticker(symbol))["last"]
        for i in range(orders // len(symbols) + (k < orders % len(symbols))):
            price = ex.price_to_precision(symbol, last * (0.9 - i / 2000))
            await ex.create_order(symbol, "limit", "buy", AMOUNTS[symbol], price)
    await asyncio.sleep(settle_s)
    t = time.perf_counter()
    await asyncio.gather(*(ex.cancel_all_orders(s) for s in symbols))
    deletes = ms(t)
    left = await ex.fetch_open_orders()
    return {"deletes": deletes, "confirmed": ms(t), "left": len(left)}


async def buy_two(ex: Any) -> None:
    for symbol, amount in BUYS.items():
        await ex.create_order(symbol, "market", "buy", amount)
    await asyncio.sleep(0.05)  # as the engine's run: the balance stream settles before the clock starts


async def sell_free(ex: Any, balance: dict[str, Any]) -> None:
    sells = []
    for symbol in BUYS:
        free = balance["free"].get(symbol.split("/")[0]) or 0
        amount = float(ex.amount_to_precision(symbol, free)) if free else 0
        if amount > 0:
            sells.append(ex.create_order(symbol, "market", "sell", amount))
    await asyncio.gather(*sells)


async def close(ex: Any) -> dict[str, Any]:
    await buy_two(ex)
    t = time.perf_counter()
    await sell_free(ex, await ex.fetch_balance())
    listing_and_sells = ms(t)

    async def cancel_one(symbol: str) -> None:
        try:
            await ex.cancel_all_orders(symbol)
        except Exception:  # -2011: nothing to cancel
            pass

    await buy_two(ex)
    t = time.perf_counter()
    await asyncio.gather(*(cancel_one(s) for s in BUYS))
    await sell_free(ex, await ex.fetch_balance())
    await ex.fetch_balance()
    return {"listing_and_sells": listing_and_sells, "same_calls": ms(t)}


async def serve(rest_url: str, ws_url: str, api_key: str, api_secret: str) -> None:
    ex = build_exchange(
        "binance", rest_url=rest_url, ws_url=ws_url, api_key=api_key, api_secret=api_secret, rate_limit=False
    )
    await ex.load_markets()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    say({"ready": True})
    try:
        while line := await reader.readline():
            request = json.loads(line)
            try:
                if request["op"] == "cancel":
                    say(await cancel(ex, request["symbols"], request["orders"], request.get("settle_s", 0.05)))
                elif request["op"] == "close":
                    say(await close(ex))
                else:
                    say({"error": f"unknown op {request['op']!r}"})
            except Exception as exc:  # told to the benchmark, which fails with it
                say({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await ex.close()


if __name__ == "__main__":
    import os

    asyncio.run(serve(**json.loads(os.environ.pop("BENCH_VENUE"))))
