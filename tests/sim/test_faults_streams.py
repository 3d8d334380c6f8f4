"""Websocket and user-data faults, shown through what ccxt.pro watchers do."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest
from eventually import eventually

BTC = "BTC/USDT"


async def test_ws_drop_fails_watchers_and_they_reconnect(sim, client):
    await asyncio.wait_for(client.watch_ticker(BTC), 5)
    assert sim.market_stream_connections == 1
    pending = asyncio.ensure_future(client.watch_ticker(BTC))
    sim.pause_feed()
    await asyncio.sleep(0)
    sim.faults.inject("ws-drop", which="market")
    # A paused feed still prints tickers at the frozen price: in the rare run where one lands in the single loop
    # step before the drop, the pending watch ends normally and the drop is seen as a reconnection below.
    try:
        await asyncio.wait_for(pending, 5)
        dropped_while_watching = False
    except ccxt.NetworkError:
        dropped_while_watching = True
    assert dropped_while_watching or sim.market_stream_connections == 0
    sim.resume_feed()
    ticker = await asyncio.wait_for(client.watch_ticker(BTC), 5)  # ccxt opens a new connection
    assert ticker["last"] > 0 and sim.market_stream_connections == 1


async def test_ws_drop_of_the_user_stream(sim, client):
    watcher = asyncio.ensure_future(client.watch_orders(BTC))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    sim.faults.inject("ws-drop", which="user", abrupt=False)
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(watcher, 5)
    assert sim.user_stream_subscriptions == 0


async def test_ws_silence_keeps_the_connection_but_pushes_nothing(sim, client):
    await asyncio.wait_for(client.watch_ticker(BTC), 5)
    fid = sim.faults.inject("ws-silence")
    sim.tick_interval = 0.01
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.watch_ticker(BTC), 0.5)
    assert sim.market_stream_connections == 1
    sim.faults.clear(fid)
    assert (await asyncio.wait_for(client.watch_ticker(BTC), 5))["last"] > 0


async def test_ws_silence_of_the_user_stream_hides_fills(sim, client):
    watcher = asyncio.ensure_future(client.watch_orders(BTC))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    fid = sim.faults.inject("ws-silence", which="user")
    await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "quiet-1"})
    sim.faults.clear(fid)
    await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "loud-1"})
    # The stream is in order: had the silenced fill been pushed, the watcher would have woken on it first.
    heard = [o["clientOrderId"] for o in await asyncio.wait_for(watcher, 5)]
    assert "loud-1" in heard and "quiet-1" not in heard, heard


async def test_ws_refuse_rejects_new_connections(sim, client):
    sim.faults.inject("ws-refuse", which="market")
    with pytest.raises(ccxt.NetworkError):
        await asyncio.wait_for(client.watch_ticker(BTC), 5)
    assert sim.market_stream_connections == 0
    sim.faults.clear()
    assert (await asyncio.wait_for(client.watch_ticker(BTC), 5))["last"] > 0


async def test_user_stream_end_stops_events_until_the_client_subscribes_again(sim, client):
    """ccxt 4.5.90 drops its subscription on eventStreamTerminated but rejects only the 'spot' future, so a pending
    watch_orders stays pending (detect by stream age); the next watch_* call subscribes again."""
    watcher = asyncio.ensure_future(client.watch_orders(BTC))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    sim.faults.inject("user-stream-end")
    assert sim.user_stream_subscriptions == 0
    await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "after-end"})
    done, _ = await asyncio.wait([watcher], timeout=0.3)
    assert not done
    watcher.cancel()
    again = asyncio.ensure_future(client.watch_orders(BTC))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "resubscribed"})
    orders = await asyncio.wait_for(again, 5)
    assert orders[-1]["clientOrderId"] == "resubscribed"


async def collect(exchange, n: int, timeout: float = 5.0) -> list[dict]:
    seen: list[dict] = []

    async def loop() -> None:
        while len(seen) < n:
            seen.extend(dict(o) for o in await exchange.watch_orders(BTC))

    await asyncio.wait_for(loop(), timeout)
    return seen


async def test_duplicate_report(sim, client):
    watcher = asyncio.ensure_future(collect(client, 3))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    sim.faults.inject("duplicate-report", count=1)
    await client.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "dup-r"})
    await client.create_order(BTC, "limit", "buy", 0.01, 50001, params={"newClientOrderId": "dup-s"})
    seen = await watcher
    assert [o["clientOrderId"] for o in seen] == ["dup-r", "dup-r", "dup-s"]


async def test_reorder_reports_sends_fill_before_new(sim, client):
    raw = client
    watcher = asyncio.ensure_future(collect(raw, 2))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    sim.faults.inject("reorder-reports", count=2)
    await raw.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "ooo-1"})
    seen = await watcher
    # ccxt passes the stale NEW on after the fill: an engine must not move FILLED back to open.
    assert [(o["status"], o["filled"]) for o in seen] == [("closed", 0.001), ("open", 0.0)]
    assert not sim.faults.active()


async def test_foreign_fill_reaches_the_account_and_the_stream(sim, client):
    watcher = asyncio.ensure_future(collect(client, 1))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    sim.faults.inject("foreign-fill", symbol="BTCUSDT", side="BUY", qty="0.002", client_id="web_manual")
    seen = await watcher
    assert seen[0]["clientOrderId"] == "web_manual"
    assert sim.balance("BTC")[0] == Decimal("0.001998")
    balance = await client.fetch_balance()
    assert balance["BTC"]["free"] == 0.001998


async def test_balance_change_pushes_a_balance_update(sim, client):
    """Binance sends balanceUpdate (a delta, which ccxt adds to its cache) then outboundAccountPosition (the new
    totals): a client without a balance snapshot sees -2500 first, then 7500."""
    seen: list[float] = []

    async def watch() -> None:
        while not seen or seen[-1] != 7500.0:
            seen.append((await client.watch_balance())["USDT"]["free"])

    pending = asyncio.ensure_future(watch())
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    sim.faults.inject("balance-change", asset="USDT", delta="-2500")
    await asyncio.wait_for(pending, 5)
    assert seen == [-2500.0, 7500.0]
    assert sim.balance("USDT") == (Decimal("7500"), Decimal(0))


async def test_key_revoked(sim, client, make_client):
    watcher = asyncio.ensure_future(client.watch_orders(BTC))
    await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
    fid = sim.faults.inject("key-revoked")
    assert sim.user_stream_subscriptions == 0  # eventStreamTerminated went out (ccxt leaves watch_orders pending)
    watcher.cancel()
    with pytest.raises(ccxt.AuthenticationError):
        await client.fetch_balance()
    fresh = make_client()
    with pytest.raises(ccxt.AuthenticationError):
        await fresh.fetch_balance()
    sim.faults.clear(fid)
    assert (await fresh.fetch_balance())["USDT"]["free"] == 10000.0


async def test_clock_skew_is_invalid_nonce_until_the_client_resyncs(sim, make_client):
    client = make_client()
    sim.faults.inject("clock-skew", ms=30_000)
    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_balance()
    await client.load_time_difference()
    assert (await client.fetch_balance())["USDT"]["free"] == 10000.0


async def test_clock_skew_the_time_answer_does_not_show_cannot_be_resynced_away(sim, make_client):
    client = make_client()
    fid = sim.faults.inject("clock-skew", ms=-5_000, time_shows=False)
    await client.load_time_difference()
    assert abs(client.options["timeDifference"]) < 1_000  # /api/v3/time shows no skew
    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_balance()  # stamped 5 s ahead of the clock signatures are checked against
    sim.faults.clear(fid)
    assert sim.clock.server_ms() == sim.clock.time_answer_ms()
    assert (await client.fetch_balance())["USDT"]["free"] == 10000.0


async def test_price_jump_and_flash_crash(sim, client):
    sim.pause_feed()
    start = sim.price("BTCUSDT")
    sim.faults.inject("price-jump", percent=5)
    assert sim.price("BTCUSDT") == (start * Decimal("1.05")).quantize(Decimal("0.01"))
    base = sim.price("BTCUSDT")
    lows: list[Decimal] = []
    fid = sim.faults.inject("flash-crash", percent=20, seconds=0.3, recover=0.3)
    await eventually(lambda: lows.append(sim.price("BTCUSDT")) or not sim.faults.get(fid).active, timeout=5)
    assert min(lows) <= base * Decimal("0.85")
    assert sim.price("BTCUSDT") == base


async def test_flash_crash_fills_resting_buy_orders(sim, client):
    sim.pause_feed()
    price = sim.price("BTCUSDT")
    limit = (price * Decimal("0.95")).quantize(Decimal("0.01"))
    order = await client.create_order(BTC, "limit", "buy", 0.001, float(limit), params={"newClientOrderId": "fc-1"})
    fid = sim.faults.inject("flash-crash", percent=10, seconds=0.2, recover=0)
    await eventually(lambda: not sim.faults.get(fid).active, timeout=5)
    assert (await client.fetch_order(order["id"], BTC))["status"] == "closed"


async def test_price_freeze(sim):
    sim.faults.inject("price-freeze", symbol="ETHUSDT")
    eth = sim.price("ETHUSDT")
    for _ in range(50):
        sim.tick()
    assert sim.price("ETHUSDT") == eth
