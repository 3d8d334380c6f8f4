"""Request weights, 429 with Retry-After, the 418 ban, order-rate limits; API keys and their permissions."""

from __future__ import annotations

import time

import aiohttp
import ccxt
import pytest
from eventually import eventually
from rawrest import signed_request
from test_candles import build

from engine.sim import Simulator
from engine.sim.auth import ApiKey

BTC = "BTC/USDT"


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict, object]:
    async with session.get(url) as resp:
        return resp.status, resp.headers, await resp.json()


async def test_used_weight_header_counts_binance_weights(sim):
    async with aiohttp.ClientSession() as s:
        _, h, _ = await get(s, f"{sim.rest_url}/api/v3/ping")
        base = int(h["X-MBX-USED-WEIGHT-1M"])
        _, h, _ = await get(s, f"{sim.rest_url}/api/v3/exchangeInfo")
        assert int(h["X-MBX-USED-WEIGHT-1M"]) == base + 20
        _, h, _ = await get(s, f"{sim.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
        assert int(h["X-MBX-USED-WEIGHT-1M"]) == base + 70
        _, h, _ = await get(s, f"{sim.rest_url}/api/v3/ticker/24hr")
        assert int(h["X-MBX-USED-WEIGHT-1M"]) == base + 150


async def test_over_the_limit_429_with_retry_after_then_418_ban():
    # Weight is counted per wall-clock minute: start well inside one so the window does not reset mid-test.
    await eventually(lambda: time.time() % 60 < 50, timeout=15)
    async with Simulator(seed=1, weight_limit=30) as sim:
        client = build(sim)
        try:
            await client.load_markets()  # exchangeInfo: weight 20
            async with aiohttp.ClientSession() as s:
                statuses = [(await get(s, f"{sim.rest_url}/api/v3/ping"))[0] for _ in range(10)]
                assert statuses == [200] * 10  # 30 of 30 used
                status, headers, body = await get(s, f"{sim.rest_url}/api/v3/ping")
                assert status == 429 and body["code"] == -1003 and 1 <= int(headers["Retry-After"]) <= 60
                with pytest.raises(ccxt.DDoSProtection):  # ccxt maps both 429 and 418 to DDoSProtection
                    await client.fetch_ticker(BTC)
                status, _, _ = await get(s, f"{sim.rest_url}/api/v3/ping")
                assert status == 429
                # A client that keeps going after 429s is banned.
                status, headers, body = await get(s, f"{sim.rest_url}/api/v3/ping")
                assert status == 418 and int(headers["Retry-After"]) >= 60 and "banned until" in body["msg"]
                with pytest.raises(ccxt.DDoSProtection):
                    await client.fetch_ticker(BTC)
            sim.limiter.reset()
            assert (await client.fetch_ticker(BTC))["last"] > 0
        finally:
            await client.close()


async def test_order_rate_limit_answers_1015():
    async with Simulator(seed=1, orders_per_10s=2) as sim:
        client = build(sim)
        try:
            for i in range(2):
                order = await client.create_order(
                    BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": f"rate-{i}"}
                )
                assert order["status"] == "open"
            with pytest.raises(ccxt.DDoSProtection, match="Too many new orders"):
                await client.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "rate-3"})
            status, body, headers = await signed_request(
                sim,
                "POST",
                "order",
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.01",
                    "price": "50000",
                },
            )
            assert (status, body["code"]) == (429, -1015)
        finally:
            await client.close()


async def test_api_restrictions_of_several_keys():
    keys = [
        ApiKey("withdraw-key", "w" * 64, can_withdraw=True),
        {"key": "read-only-key", "secret": "r" * 64, "can_trade": False},
    ]
    async with Simulator(seed=1, keys=keys) as sim:
        clients = {
            name: build_with(sim, key, secret)
            for name, key, secret in (
                ("main", sim.api_key, sim.api_secret),
                ("withdraw", "withdraw-key", "w" * 64),
                ("read", "read-only-key", "r" * 64),
            )
        }
        try:
            answers = {name: await c.sapi_get_account_apirestrictions() for name, c in clients.items()}
            assert answers["main"]["enableWithdrawals"] is False and answers["main"]["enableSpotAndMarginTrading"]
            assert answers["withdraw"]["enableWithdrawals"] is True
            assert answers["read"]["enableSpotAndMarginTrading"] is False and answers["read"]["enableReading"]
            assert (await clients["read"].fetch_balance())["USDT"]["free"] == 10000.0
            # Binance answers 401 -2015; after one successful private call ccxt reports that as DDoSProtection
            # (it takes -2015 for a temporary ban), so look at the code, not only the class.
            with pytest.raises(ccxt.DDoSProtection, match="-2015"):
                await clients["read"].create_order(
                    BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "ro-1"}
                )
            fresh = build_with(sim, "read-only-key", "r" * 64)
            clients["fresh"] = fresh
            await fresh.load_markets()
            with pytest.raises(ccxt.AuthenticationError):
                await fresh.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "ro-2"})
            status, body, _ = await signed_request(
                sim, "GET", "account/apiRestrictions", {}, api_key="withdraw-key", secret="w" * 64, prefix="/sapi/v1/"
            )
            assert status == 200 and body["enableWithdrawals"] is True
        finally:
            for c in clients.values():
                await c.close()


def build_with(sim: Simulator, key: str, secret: str):
    from engine.venue.exchange import build_exchange

    ex = build_exchange("binance", rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=key, api_secret=secret)
    ex.enableRateLimit, ex.timeout_on_exit = False, 0
    # build_exchange points only the spot families at the simulator; apiRestrictions lives under /sapi/v1.
    ex.urls["api"]["sapi"] = f"{sim.rest_url}/sapi/v1"
    return ex
