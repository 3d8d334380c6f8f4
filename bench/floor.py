"""The floors of the kill switch, in a process with no engine in it: a bare ccxt client doing the venue's part of
each tier with nothing else, on the simulator it is told, answering JSON lines on stdin (EOF ends it).

- ``cancel``: places ``orders`` resting buys over ``symbols`` (untimed), then times the ``DELETE openOrders`` of
  each symbol in parallel (``deletes``) and, after them, the venue-wide open-orders listing that confirms none is
  left (``confirmed``): the same work as the engine's cancel-all, stopping at the same point (the venue has said
  there is nothing open).
- ``close``: buys the two positions at market (untimed), then times a balance listing plus two market sells in
  parallel (``listing_and_sells``: the issue's floor); then buys again and times the calls close-all makes, with
  nothing else (``same_calls``: cancels, balances, sells, balances read back).
- ``close_stops``: the same two positions, each with a stop-limit sell of all of it resting (untimed), then times
  both stops' ``DELETE openOrders`` beside the balance listing, then the two market sells
  (``cancels_balances_and_sells``: close-all's floor when the positions carry their protective stops).

For many symbols (bench/scale.py), each step apart, so the venue's limits can be set between them:

- ``rest``: ``per_symbol`` resting buys of about ``quote`` USDT on each of ``symbols`` (untimed);
- ``cancel_rested``: times the ``DELETE openOrders`` of each symbol in parallel, then the confirming listing;
- ``buy_each``: one market buy of about ``quote`` USDT on each symbol (untimed);
- ``sell_each``: times a balance listing plus a market sell of each held position in parallel, then the balances
  read back (``verified``: close-all's verification).

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


async def sell_held(ex: Any, balance: dict[str, Any], which: str = "free") -> int:
    """A market sell of each base's ``which`` balance ("free", or "total" once nothing locks it), all at once; how
    many were sent."""
    sells = []
    for symbol in BUYS:
        held = balance[which].get(symbol.split("/")[0]) or 0
        amount = float(ex.amount_to_precision(symbol, held)) if held else 0
        if amount > 0:
            sells.append(ex.create_order(symbol, "market", "sell", amount))
    await asyncio.gather(*sells)
    return len(sells)


async def close(ex: Any) -> dict[str, Any]:
    await buy_two(ex)
    t = time.perf_counter()
    await sell_held(ex, await ex.fetch_balance())
    listing_and_sells = ms(t)

    async def cancel_one(symbol: str) -> None:
        try:
            await ex.cancel_all_orders(symbol)
        except Exception:  # -2011: nothing to cancel
            pass

    await buy_two(ex)
    t = time.perf_counter()
    await asyncio.gather(*(cancel_one(s) for s in BUYS))
    await sell_held(ex, await ex.fetch_balance())
    await ex.fetch_balance()
    return {"listing_and_sells": listing_and_sells, "same_calls": ms(t)}


async def close_stops(ex: Any) -> dict[str, Any]:
    """The two positions bought, each with a stop-limit sell of all of it resting under the price (as the engine's
    protective stops), untimed; then timed: both stops cancelled (``DELETE openOrders`` per symbol) beside the
    balance listing, then a market sell of each base's total (the cancels freed it all)."""
    await buy_two(ex)
    balance = await ex.fetch_balance()
    for symbol in BUYS:
        total = balance["total"].get(symbol.split("/")[0]) or 0
        last = (await ex.fetch_ticker(symbol))["last"]
        price = ex.price_to_precision(symbol, last * 0.5)
        amount = ex.amount_to_precision(symbol, total)
        await ex.create_order(symbol, "limit", "sell", amount, price, {"stopLossPrice": price})
    await asyncio.sleep(0.05)
    t = time.perf_counter()
    _, _, balance = await asyncio.gather(*(ex.cancel_all_orders(s) for s in BUYS), ex.fetch_balance())
    sold = await sell_held(ex, balance, "total")
    return {"cancels_balances_and_sells": ms(t), "sold": sold}


def amount_for(ex: Any, symbol: str, price: float, quote: float) -> str:
    """An amount worth a little over ``quote`` at ``price`` (over the venue's minimum notional once rounded)."""
    step = float(ex.markets[symbol]["precision"]["amount"])
    return str(ex.amount_to_precision(symbol, quote / price + step))


async def rest(ex: Any, symbols: list[str], per_symbol: int, quote: float) -> dict[str, Any]:
    async def one(symbol: str) -> None:
        last = (await ex.fetch_ticker(symbol))["last"]
        for i in range(per_symbol):
            price = float(ex.price_to_precision(symbol, last * (0.9 - i / 2000)))
            await ex.create_order(symbol, "limit", "buy", amount_for(ex, symbol, price, quote), price)

    await asyncio.gather(*(one(s) for s in symbols))
    return {"ok": True}


async def cancel_rested(ex: Any, symbols: list[str]) -> dict[str, Any]:
    t = time.perf_counter()
    await asyncio.gather(*(ex.cancel_all_orders(s) for s in symbols))
    deletes = ms(t)
    left = await ex.fetch_open_orders()
    return {"deletes": deletes, "confirmed": ms(t), "left": len(left)}


async def buy_each(ex: Any, symbols: list[str], quote: float) -> dict[str, Any]:
    async def one(symbol: str) -> None:
        last = (await ex.fetch_ticker(symbol))["last"]
        await ex.create_order(symbol, "market", "buy", amount_for(ex, symbol, last, quote))

    await asyncio.gather(*(one(s) for s in symbols))
    await asyncio.sleep(0.05)
    return {"ok": True}


async def sell_each(ex: Any, symbols: list[str]) -> dict[str, Any]:
    t = time.perf_counter()
    balance = await ex.fetch_balance()
    sells = []
    for symbol in symbols:
        free = balance["free"].get(symbol.split("/")[0]) or 0
        amount = float(ex.amount_to_precision(symbol, free)) if free else 0
        if amount > 0:
            sells.append(ex.create_order(symbol, "market", "sell", amount))
    await asyncio.gather(*sells)
    listing_and_sells = ms(t)
    await ex.fetch_balance()
    return {"listing_and_sells": listing_and_sells, "verified": ms(t), "sold": len(sells)}


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
                elif request["op"] == "close_stops":
                    say(await close_stops(ex))
                elif request["op"] == "rest":
                    say(await rest(ex, request["symbols"], request["per_symbol"], request.get("quote", 6.0)))
                elif request["op"] == "cancel_rested":
                    say(await cancel_rested(ex, request["symbols"]))
                elif request["op"] == "buy_each":
                    say(await buy_each(ex, request["symbols"], request.get("quote", 12.0)))
                elif request["op"] == "sell_each":
                    say(await sell_each(ex, request["symbols"]))
                else:
                    say({"error": f"unknown op {request['op']!r}"})
            except Exception as exc:  # told to the benchmark, which fails with it
                say({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await ex.close()


if __name__ == "__main__":
    import os

    asyncio.run(serve(**json.loads(os.environ.pop("BENCH_VENUE"))))
