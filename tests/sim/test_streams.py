"""ccxt.pro streams against the simulator's websockets: market data and the WS-API user-data stream."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from eventually import eventually
from websockets.asyncio.client import connect

BTC = "BTC/USDT"


async def collect_orders(exchange, until, timeout: float = 5.0) -> list[dict]:
    """Call watch_orders repeatedly, gathering snapshots of the updates until ``until(updates)`` holds."""
    seen: list[dict] = []

    async def loop() -> None:
        while not until(seen):
            # ccxt updates cached orders in place: copy each one as it arrives.
            seen.extend(dict(o) for o in await exchange.watch_orders(BTC))

    await asyncio.wait_for(loop(), timeout)
    return seen


async def test_watch_ticker_streams_bid_ask_last(exchange, sim):
    first = await asyncio.wait_for(exchange.watch_ticker(BTC), 5)
    assert first["symbol"] == BTC and first["bid"] < first["ask"] and first["last"] > 0
    second = await asyncio.wait_for(exchange.watch_ticker(BTC), 5)
    assert second["timestamp"] >= first["timestamp"]


async def test_watch_trades_streams_the_tape(exchange, sim):
    trades = await asyncio.wait_for(exchange.watch_trades(BTC), 5)
    assert trades and trades[-1]["symbol"] == BTC
    assert trades[-1]["price"] > 0 and trades[-1]["amount"] > 0


async def test_set_price_reaches_watch_ticker(exchange, sim):
    sim.pause_feed()
    await asyncio.wait_for(exchange.watch_ticker(BTC), 5)
    sim.set_price("BTCUSDT", Decimal("61234.56"))

    async def moved() -> bool:
        return (await exchange.watch_ticker(BTC))["last"] == 61234.56

    await eventually(moved, timeout=5)


async def test_watch_orders_sees_new_then_canceled(exchange, sim):
    watcher = asyncio.create_task(collect_orders(exchange, lambda s: any(o["status"] == "canceled" for o in s)))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "ws-cxl-1"})
    await eventually(lambda: any(o["id"] == order["id"] for o in exchange.orders or []), timeout=5)
    await exchange.cancel_order(order["id"], BTC)
    updates = await watcher
    assert [o["status"] for o in updates if o["id"] == order["id"]][-1] == "canceled"
    assert {o["clientOrderId"] for o in updates} == {"ws-cxl-1"}
    assert updates[0]["status"] == "open" and updates[0]["price"] == 50000


async def test_watch_orders_sees_a_fill_with_its_fee(exchange, sim):
    watcher = asyncio.create_task(collect_orders(exchange, lambda s: any(o["status"] == "closed" for o in s)))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    await exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "ws-fill-1"})
    updates = await watcher
    closed = [o for o in updates if o["status"] == "closed"][-1]
    assert closed["clientOrderId"] == "ws-fill-1" and closed["filled"] == 0.01
    assert closed["fee"]["currency"] == "BTC"


async def test_watch_my_trades_and_balance_after_a_fill(exchange, sim):
    balances = asyncio.create_task(exchange.watch_balance())
    trades = asyncio.create_task(exchange.watch_my_trades(BTC))
    await eventually(lambda: sim.user_stream_subscriptions >= 1, timeout=5)
    await exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "ws-bal-1"})
    balance = await asyncio.wait_for(balances, 5)
    assert balance["BTC"]["free"] == 0.00999
    my_trades = await asyncio.wait_for(trades, 5)
    assert my_trades[-1]["side"] == "buy" and my_trades[-1]["amount"] == 0.01


async def test_resting_limit_fill_reaches_watch_orders(exchange, sim):
    sim.pause_feed()
    watcher = asyncio.create_task(collect_orders(exchange, lambda s: any(o["status"] == "closed" for o in s)))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    limit = sim.price("BTCUSDT") - Decimal("200")
    await exchange.create_order(BTC, "limit", "buy", 0.01, float(limit), params={"newClientOrderId": "ws-rest-1"})
    sim.set_price("BTCUSDT", limit - Decimal("1"))
    updates = await watcher
    closed = [o for o in updates if o["status"] == "closed"][-1]
    assert closed["average"] == float(limit)


async def test_raw_market_stream_protocol(sim):
    async with connect(f"{sim.ws_url}/ws/3") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@miniTicker", "ethusdt@trade"], "id": 7}))
        assert json.loads(await ws.recv()) == {"result": None, "id": 7}
        kinds: set[str] = set()
        while kinds != {"24hrMiniTicker", "trade"}:
            event = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert event["s"] == "ETHUSDT"
            kinds.add(event["e"])
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
        while (reply := json.loads(await asyncio.wait_for(ws.recv(), 5))).get("id") != 8:
            pass
        assert reply["result"] == ["ethusdt@miniTicker", "ethusdt@trade"]


async def test_ws_api_rejects_a_bad_signature_and_answers_ping(sim):
    async with connect(f"{sim.ws_url}/ws-api/v3") as ws:
        await ws.send(json.dumps({"id": "p1", "method": "ping", "params": {}}))
        assert json.loads(await ws.recv()) == {"id": "p1", "status": 200, "result": {}}
        await ws.send(
            json.dumps(
                {
                    "id": "s1",
                    "method": "userDataStream.subscribe.signature",
                    "params": {"apiKey": sim.api_key, "recvWindow": 10000, "timestamp": 1, "signature": "00" * 32},
                }
            )
        )
        reply = json.loads(await ws.recv())
        assert reply["status"] == 401 and reply["error"]["code"] == -1022
        assert sim.user_stream_subscriptions == 0


async def test_watch_orders_with_a_wrong_secret_fails_fast(sim, make_client):
    """The simulator refuses the subscription with -1022. ccxt 4.5.90 then trips over its own cleanup
    (handle_ws_error deletes subscriptions['spot'], ensure_user_data_stream_ws_subscribe_signature deletes it
    again) and raises KeyError('spot') instead of AuthenticationError: callers must treat both as auth failure."""
    import ccxt

    client = make_client(api_secret="1" * 64)
    with pytest.raises((ccxt.AuthenticationError, KeyError)):
        await asyncio.wait_for(client.watch_orders(BTC), 5)
    assert sim.user_stream_subscriptions == 0
