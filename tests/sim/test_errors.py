"""Binance error answers, checked through the exceptions the real ccxt client raises for them."""

from __future__ import annotations

import time

import ccxt
import pytest
from rawrest import signed_request

BTC = "BTC/USDT"


async def test_wrong_secret_is_an_authentication_error(sim, make_client):
    client = make_client(api_secret="0" * 64)
    with pytest.raises(ccxt.AuthenticationError, match="Signature for this request is not valid"):
        await client.fetch_balance()


async def test_unknown_api_key_is_an_authentication_error(sim, make_client):
    client = make_client(api_key="f" * 64)
    with pytest.raises(ccxt.AuthenticationError, match="Invalid API-key"):
        await client.fetch_balance()
    status, body, _ = await signed_request(sim, "GET", "account", {}, api_key="f" * 64)
    assert (status, body["code"]) == (401, -2015)


async def test_unknown_order_is_order_not_found(exchange):
    with pytest.raises(ccxt.OrderNotFound, match="Order does not exist"):
        await exchange.fetch_order("999999", BTC)
    with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent"):
        await exchange.cancel_order("999999", BTC)


async def test_cancelling_a_filled_order_is_order_not_found(exchange):
    order = await exchange.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "done-1"})
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.cancel_order(order["id"], BTC)


async def test_insufficient_funds(exchange, sim):
    with pytest.raises(ccxt.InsufficientFunds):
        await exchange.create_order(BTC, "market", "buy", 1, params={"newClientOrderId": "big-1"})
    with pytest.raises(ccxt.InsufficientFunds):
        await exchange.create_order(BTC, "limit", "sell", 0.01, 90000, params={"newClientOrderId": "big-2"})
    assert sim.open_orders() == []


async def test_lot_size_and_price_filter_violations_are_invalid_order(exchange):
    # Raw endpoint calls: ccxt's create_order would round these away before sending.
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await exchange.private_post_order({**base, "quantity": "0.000015", "price": "50000"})
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        await exchange.private_post_order({**base, "quantity": "9001", "price": "50000"})
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        await exchange.private_post_order({**base, "quantity": "0.01", "price": "50000.005"})
    with pytest.raises(ccxt.InvalidOrder, match="PERCENT_PRICE_BY_SIDE"):
        await exchange.create_order(BTC, "limit", "buy", 0.01, 1000, params={"newClientOrderId": "far-1"})


async def test_notional_below_minimum_and_bad_symbol(exchange):
    base = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
        await exchange.private_post_order({**base, "symbol": "BTCUSDT", "quantity": "0.00001", "price": "50000"})
    with pytest.raises(ccxt.BadSymbol):
        await exchange.private_post_order({**base, "symbol": "XRPUSDT", "quantity": "1", "price": "1"})


async def test_clock_skew_is_invalid_nonce(make_client):
    behind = make_client()
    behind.options["timeDifference"] = 20_000  # our clock 20 s behind the server's: older than recvWindow
    with pytest.raises(ccxt.InvalidNonce):
        await behind.fetch_balance()
    ahead = make_client()
    ahead.options["timeDifference"] = -5_000  # 5 s in the future: Binance allows only 1 s
    with pytest.raises(ccxt.InvalidNonce):
        await ahead.fetch_balance()


async def test_missing_and_malformed_parameters(sim):
    status, body, _ = await signed_request(
        sim,
        "POST",
        "order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "50000"},
    )
    assert status == 400 and body == {
        "code": -1102,
        "msg": "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
    }
    status, body, _ = await signed_request(
        sim, "POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "1e-3"}
    )
    assert body["code"] == -1100
    status, body, _ = await signed_request(sim, "DELETE", "openOrders", {})
    assert body["code"] == -1102


async def test_signature_is_checked_on_the_raw_string_and_weight_is_reported(sim):
    # '/' and ':' are legal in a client id and arrive percent-encoded: the HMAC covers the encoded form.
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
            "newClientOrderId": "bot:grid/1",
        },
    )
    assert status == 200 and body["clientOrderId"] == "bot:grid/1"
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) >= 1
    status, body, _ = await signed_request(
        sim, "GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": "bot:grid/1"}
    )
    assert status == 200 and body["status"] == "NEW"
    status, body, _ = await signed_request(sim, "GET", "openOrders", {"symbol": "BTCUSDT"}, secret="x" * 64)
    assert (status, body["code"]) == (400, -1022)
    old = int(time.time() * 1000) - 6_000
    status, body, _ = await signed_request(sim, "GET", "account", {}, timestamp=old)
    assert (status, body["code"]) == (400, -1021)
