"""REST faults, each shown through the exception the real ccxt client raises for it."""

from __future__ import annotations

import asyncio
import logging
import time

import ccxt
import pytest
from eventually import eventually

from engine.sim.faults import FaultError

BTC = "BTC/USDT"


@pytest.mark.parametrize(
    "status, exc",
    [
        (429, ccxt.DDoSProtection),
        (418, ccxt.DDoSProtection),
        (500, ccxt.ExchangeNotAvailable),
        (502, ccxt.ExchangeNotAvailable),
        (503, ccxt.ExchangeNotAvailable),
        (504, ccxt.RequestTimeout),
    ],
)
async def test_http_status_fault(sim, client, status, exc):
    sim.faults.inject("http-status", status=status)
    with pytest.raises(exc):
        await client.fetch_ticker(BTC)


async def test_http_status_on_one_path_and_method_for_a_count(sim, client):
    fid = sim.faults.inject("http-status", status=503, path="/api/v3/order", method="POST", count=2)
    assert (await client.fetch_ticker(BTC))["last"] > 0  # other paths are untouched
    for i in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": f"c-{i}"})
    assert not sim.faults.get(fid).active and sim.faults.get(fid).end_reason == "count 2 reached"
    order = await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "c-ok"})
    assert order["status"] == "closed"


async def test_429_carries_retry_after(sim):
    import aiohttp

    sim.faults.inject("http-status", status=429, retry_after=7, code=-1003)
    async with aiohttp.ClientSession() as session, session.get(f"{sim.rest_url}/api/v3/ping") as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "7"
        assert (await resp.json())["code"] == -1003


async def test_a_client_that_does_not_wait_out_a_429_is_banned_with_418_and_one_that_waits_is_not(sim):
    import aiohttp
    from eventually import eventually

    sim.faults.inject("http-status", status=429, retry_after=1, ban_after=1, path="/api/v3/ping", count=1)
    async with aiohttp.ClientSession() as session:

        async def status() -> int:
            async with session.get(f"{sim.rest_url}/api/v3/ping") as resp:
                return resp.status

        assert await status() == 429
        assert await status() == 429  # one early request is tolerated (one already on its way), and answered 429
        assert await status() == 418  # the next is a client that does not back off
        sim.limiter.reset()
        sim.faults.inject("http-status", status=429, retry_after=1, ban_after=0, path="/api/v3/ping", count=1)
        assert await status() == 429
        # Waiting out the Retry-After: the limit is over, no ban.
        await eventually(lambda: not sim.limiter.limited(sim.clock.server_ms()), timeout=3)
        assert await status() == 200


async def test_http_status_at_a_rate_is_seeded(sim, client):
    sim.faults.inject("http-status", status=502, rate=0.5, path="/api/v3/ping")
    outcomes = []
    for _ in range(30):
        try:
            await client.public_get_ping()
            outcomes.append(True)
        except ccxt.ExchangeNotAvailable:
            outcomes.append(False)
    assert 5 < outcomes.count(False) < 25


@pytest.mark.parametrize(
    "code, exc",
    [
        (-1003, ccxt.DDoSProtection),
        (-1007, ccxt.RequestTimeout),
        (-1000, ccxt.OperationFailed),
        (-1021, ccxt.InvalidNonce),
        (-1015, ccxt.DDoSProtection),
        (-2015, ccxt.AuthenticationError),
    ],
)
async def test_error_code_fault(sim, client, code, exc):
    sim.faults.inject("error-code", code=code)
    with pytest.raises(exc):
        await client.fetch_balance()


async def test_latency_with_jitter_slows_calls_and_times_out_past_the_client_timeout(sim, client, make_client):
    patient = make_client(timeout_ms=5_000)
    sim.faults.inject("latency", ms=300, jitter_ms=100, path="/api/v3/ticker/24hr")
    started = time.monotonic()
    await patient.fetch_ticker(BTC)
    assert time.monotonic() - started >= 0.3
    sim.faults.clear()
    sim.faults.inject("latency", ms=4000)  # past the client's 3 s timeout
    with pytest.raises(ccxt.RequestTimeout):
        await client.fetch_ticker(BTC)


async def test_hang_times_out_and_nothing_is_placed(sim, client):
    sim.faults.inject("hang", seconds=5, path="/api/v3/order", method="POST")
    with pytest.raises(ccxt.RequestTimeout):
        await client.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "hang-1"})
    assert sim.open_orders() == []


async def test_accept_then_hang_places_the_order_once_and_it_can_be_found_by_client_id(sim, client):
    sim.faults.inject("accept-then-hang", seconds=5, path="/api/v3/order", method="POST", count=1)
    with pytest.raises(ccxt.RequestTimeout):
        await client.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "late-1"})
    assert [o["clientOrderId"] for o in sim.open_orders()] == ["late-1"]
    found = await client.fetch_order(None, BTC, params={"origClientOrderId": "late-1"})
    assert found["clientOrderId"] == "late-1" and found["status"] == "open"


async def test_maintenance(sim, client):
    sim.faults.inject("maintenance")
    with pytest.raises(ccxt.OnMaintenance):
        await client.fetch_ticker(BTC)
    with pytest.raises(ccxt.OnMaintenance):
        await client.fetch_balance()
    with pytest.raises(ccxt.NetworkError):  # websocket handshakes are refused too
        await asyncio.wait_for(client.watch_ticker(BTC), 5)
    sim.faults.clear()
    assert (await client.fetch_ticker(BTC))["last"] > 0


async def test_fault_with_a_duration_ends_by_itself_and_logs_start_and_end(sim, client, caplog):
    caplog.set_level(logging.WARNING, logger="engine.sim.faults")
    fid = sim.faults.inject("http-status", status=503, duration=3)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.fetch_ticker(BTC)
    await eventually(lambda: not sim.faults.get(fid).active, timeout=10)
    assert (await client.fetch_ticker(BTC))["last"] > 0
    text = caplog.text
    assert f"fault {fid} http-status started (status=503" in text and "for 3s" in text
    assert f"fault {fid} http-status ended (expired)" in text


def test_bad_names_and_options_are_refused_with_the_valid_ones():
    from engine.sim.faults import FaultBook

    book = FaultBook()
    with pytest.raises(FaultError, match="valid names: http-status, error-code"):
        book.inject("explode")
    with pytest.raises(FaultError, match="option status is required"):
        book.inject("http-status")
    with pytest.raises(FaultError, match="unknown option 'colour'"):
        book.inject("latency", ms=5, colour="red")
    with pytest.raises(FaultError, match="must be int"):
        book.inject("latency", ms="soon")
    with pytest.raises(FaultError, match="rate must be between 0 and 1"):
        book.inject("hang", rate=2)
    assert book.active() == []


async def test_order_reject_and_cancel_fail(sim, client):
    sim.faults.inject("order-reject", count=1)
    with pytest.raises(ccxt.InvalidOrder, match="New order rejected"):
        await client.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "rej-1"})
    order = await client.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "rej-2"})
    fid = sim.faults.inject("cancel-fail")
    with pytest.raises(ccxt.OperationFailed):
        await client.cancel_order(order["id"], BTC)
    with pytest.raises(ccxt.OperationFailed):
        await client.cancel_all_orders(BTC)
    assert [o["clientOrderId"] for o in sim.open_orders()] == ["rej-2"]
    sim.faults.clear(fid)
    sim.faults.inject("cancel-fail", code=-2011)
    with pytest.raises(ccxt.OrderNotFound):  # the venue says "unknown order" though it is still open
        await client.cancel_order(order["id"], BTC)
    assert len(sim.open_orders()) == 1


async def test_stuck_orders_are_accepted_and_fill_once_unstuck(sim, client):
    sim.pause_feed()
    fid = sim.faults.inject("stuck-orders", symbol="BTCUSDT")
    market = await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "stuck-m"})
    assert market["status"] == "open" and market["filled"] == 0
    _, ask = sim.bid_ask("BTCUSDT")
    limit = await client.create_order(
        BTC, "limit", "buy", 0.001, float(ask + 10), params={"newClientOrderId": "stuck-l"}
    )
    assert limit["status"] == "open"
    sim.tick()
    assert len(sim.open_orders()) == 2
    sim.faults.clear(fid)
    assert sim.open_orders() == []
    assert (await client.fetch_order(market["id"], BTC))["status"] == "closed"
    # Cancels still work on a stuck venue.
    sim.faults.inject("stuck-orders")
    stuck = await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "stuck-c"})
    assert (await client.cancel_order(stuck["id"], BTC))["status"] == "canceled"
