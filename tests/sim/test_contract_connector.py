"""Contract test with a second, independent Binance client: binance-connector (Binance's own Python
connector, requests + websocket-client), so shapes that only ccxt's leniency accepts are caught.

The connector is synchronous: each call runs in a worker thread while the simulator serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal
from typing import Any

import pytest

binance_spot = pytest.importorskip("binance.spot", reason="binance-connector (test extra) not installed")
from binance.error import ClientError, ServerError  # noqa: E402
from binance.websocket.spot.websocket_stream import SpotWebsocketStreamClient  # noqa: E402
from eventually import eventually  # noqa: E402

DECIMAL_FIELDS = ("price", "origQty", "executedQty", "cummulativeQuoteQty", "stopPrice")


def spot(sim: Any, **kwargs: Any) -> Any:
    return binance_spot.Spot(
        api_key=kwargs.pop("api_key", sim.api_key),
        api_secret=kwargs.pop("api_secret", sim.api_secret),
        base_url=sim.rest_url,
        timeout=5,
        **kwargs,
    )


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def is_decimal_string(value: Any) -> bool:
    return isinstance(value, str) and Decimal(value) >= 0


async def test_public_market_data_shapes(sim):
    client = spot(sim)
    assert abs((await call(client.time))["serverTime"] - sim.clock.server_ms()) < 2000
    info = await call(client.exchange_info, symbol="BTCUSDT")
    symbol = info["symbols"][0]
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000" and filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert {"LIMIT", "MARKET", "LIMIT_MAKER"} <= set(symbol["orderTypes"])
    depth = await call(client.depth, "BTCUSDT", limit=10)
    assert isinstance(depth["lastUpdateId"], int) and len(depth["bids"]) == 10
    assert all(is_decimal_string(p) and is_decimal_string(q) for p, q in depth["bids"] + depth["asks"])
    klines = await call(client.klines, "BTCUSDT", "15m", limit=20)
    assert len(klines) == 20 and all(len(k) == 12 and isinstance(k[0], int) and is_decimal_string(k[1]) for k in klines)
    ticker = await call(client.ticker_24hr, "ETHUSDT")
    assert is_decimal_string(ticker["lastPrice"]) and ticker["symbol"] == "ETHUSDT"
    book = await call(client.book_ticker, "BTCUSDT")
    assert Decimal(book["bidPrice"]) < Decimal(book["askPrice"]) and Decimal(book["bidQty"]) > 0
    assert is_decimal_string((await call(client.avg_price, "BTCUSDT"))["price"])
    assert is_decimal_string((await call(client.ticker_price, "BTCUSDT"))["price"])
    trades = await call(client.trades, "BTCUSDT", limit=5)
    assert all({"id", "price", "qty", "time", "isBuyerMaker"} <= set(t) for t in trades)
    assert all({"a", "p", "q", "T", "m"} <= set(t) for t in await call(client.agg_trades, "BTCUSDT", limit=5))


async def test_signed_trading_round_trip(sim):
    client = spot(sim, show_limit_usage=True)
    account = (await call(client.account))["data"]
    assert (
        account["canTrade"]
        and {"asset": "USDT", "free": "10000.00000000", "locked": "0.00000000"} in account["balances"]
    )
    # The connector sends POST parameters in the query string, not a form body.
    placed = await call(
        client.new_order,
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price="50000",
        newClientOrderId="conn-1",
    )
    order = placed["data"]
    assert order["status"] == "NEW" and order["clientOrderId"] == "conn-1"
    assert all(is_decimal_string(order[f]) for f in DECIMAL_FIELDS if f in order)
    assert placed["limit_usage"]["x-mbx-order-count-10s"] == "1"
    assert int(placed["limit_usage"]["x-mbx-used-weight-1m"]) > 0
    fetched = (await call(client.get_order, "BTCUSDT", origClientOrderId="conn-1"))["data"]
    assert fetched["orderId"] == order["orderId"] and fetched["isWorking"] is True
    assert [o["orderId"] for o in (await call(client.get_open_orders, "BTCUSDT"))["data"]] == [order["orderId"]]
    cancelled = (await call(client.cancel_order, "BTCUSDT", orderId=order["orderId"]))["data"]
    assert cancelled["status"] == "CANCELED" and cancelled["origClientOrderId"] == "conn-1"
    market = (
        await call(
            client.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002", newOrderRespType="FULL"
        )
    )["data"]
    assert market["status"] == "FILLED" and market["fills"][0]["commissionAsset"] == "BTC"
    assert {"price", "qty", "commission", "commissionAsset", "tradeId"} == set(market["fills"][0])
    mine = (await call(client.my_trades, "BTCUSDT"))["data"]
    assert mine[-1]["orderId"] == market["orderId"] and mine[-1]["isBuyer"] is True
    assert (
        await call(
            client.new_order_test,
            symbol="BTCUSDT",
            side="SELL",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.001",
            price="70000",
        )
    )["data"] == {}
    permissions = (await call(client.api_key_permissions))["data"]
    assert permissions["enableWithdrawals"] is False and permissions["enableSpotAndMarginTrading"] is True


async def test_errors_reach_the_connector_with_binance_codes_and_headers(sim):
    bad = spot(sim, api_secret="0" * 64)
    with pytest.raises(ClientError) as err:
        await call(bad.account)
    assert (err.value.status_code, err.value.error_code) == (400, -1022)
    client = spot(sim)
    with pytest.raises(ClientError) as err:
        await call(client.get_order, "BTCUSDT", orderId=999)
    assert (err.value.error_code, err.value.error_message) == (-2013, "Order does not exist.")
    sim.faults.inject("error-code", code=-1003, count=1)
    with pytest.raises(ClientError) as err:
        await call(client.time)
    assert err.value.status_code == 429 and err.value.error_code == -1003
    sim.faults.inject("http-status", status=503, count=1)
    with pytest.raises(ServerError) as server_err:
        await call(client.time)
    assert server_err.value.status_code == 503


class Collector:
    """Messages from the connector's websocket thread."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, _socket: Any, raw: str) -> None:
        with self._lock:
            self.messages.append(json.loads(raw))

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m.get("e") == kind]


async def test_market_and_listen_key_streams(sim):
    client = spot(sim)
    listen_key = (await call(client.new_listen_key))["listenKey"]
    assert len(listen_key) == 60
    await call(client.renew_listen_key, listen_key)
    collected = Collector()
    ws = await call(SpotWebsocketStreamClient, stream_url=sim.ws_url, on_message=collected)
    try:
        ws.kline(symbol="btcusdt", interval="1m")
        ws.diff_book_depth(symbol="btcusdt", speed=100)
        ws.trade(symbol="btcusdt")
        ws.book_ticker(symbol="btcusdt")
        ws.user_data(listen_key=listen_key)
        await eventually(lambda: sim.user_stream_subscriptions == 1, timeout=5)
        await eventually(lambda: all(collected.events(k) for k in ("kline", "depthUpdate", "trade")), timeout=5)
        kline = collected.events("kline")[-1]["k"]
        assert kline["i"] == "1m" and is_decimal_string(kline["c"]) and isinstance(kline["x"], bool)
        depth = collected.events("depthUpdate")
        assert all(b["U"] == a["u"] + 1 for a, b in zip(depth, depth[1:]))  # continuous update ids
        await call(
            client.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001", newClientOrderId="conn-ws"
        )
        await eventually(lambda: any(e["X"] == "FILLED" for e in collected.events("executionReport")), timeout=5)
        report = [e for e in collected.events("executionReport") if e["X"] == "FILLED"][-1]
        assert report["c"] == "conn-ws" and report["N"] == "BTC" and is_decimal_string(report["L"])
        # The account update follows the fill's report; the connector's thread may hand it over a moment later.
        await eventually(lambda: collected.events("outboundAccountPosition"), timeout=5)
        assert any("u" in m and "b" in m and "B" in m for m in collected.messages)  # bookTicker
        sim.faults.inject("user-stream-end")
        await eventually(lambda: collected.events("listenKeyExpired"), timeout=5)
        with pytest.raises(ClientError) as err:
            await call(client.renew_listen_key, listen_key)
        assert err.value.error_code == -1125
    finally:
        await call(ws.stop)
