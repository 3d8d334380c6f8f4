"""Protective orders at the venue, through the real ccxt client: stop-loss and take-profit orders (limit and
market) and OCO lists wait for their stop, are triggered by the simulator's own price feed whoever is connected,
are reported on the user stream, and the order faults apply to them."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest
from eventually import eventually

BTC = "BTC/USDT"


@pytest.fixture
def held(sim):
    """The simulator, its price still at 60,000, the account holding 1 BTC."""
    sim.pause_feed()
    sim.set_price("BTCUSDT", Decimal("60000"))
    sim.engine.adjust_balance("BTC", Decimal("1"))
    return sim


async def test_stop_loss_limit_waits_then_fills_with_no_client_connected(held, make_client):
    client = make_client()
    await client.load_markets()
    stop = await client.create_order(
        BTC, "limit", "sell", 0.5, 59_000, params={"stopLossPrice": 59_500, "newClientOrderId": "stop-1"}
    )
    assert stop["info"]["type"] == "STOP_LOSS_LIMIT" and stop["status"] == "open"
    assert stop["triggerPrice"] == 59_500 and stop["info"]["workingTime"] == -1
    assert held.balance("BTC") == (Decimal("0.5"), Decimal("0.5"))  # the quantity is locked while it waits
    await client.close()  # nobody connected: the venue's own feed must trigger it

    held.set_price("BTCUSDT", Decimal("59600"))
    assert held.engine.find("BTCUSDT", None, "stop-1").status == "NEW"
    held.set_price("BTCUSDT", Decimal("59400"))
    order = held.engine.find("BTCUSDT", None, "stop-1")
    assert order.status == "FILLED" and all(f.price >= Decimal("59000") for f in order.fills)

    again = make_client()
    await again.load_markets()
    fetched = await again.fetch_order(stop["id"], BTC)
    assert fetched["status"] == "closed" and fetched["filled"] == 0.5
    assert {t["order"] for t in await again.fetch_my_trades(BTC)} == {stop["id"]}


async def test_stop_loss_market_and_take_profit_reported_on_the_user_stream(held, client):
    watcher = asyncio.ensure_future(client.watch_orders(BTC))
    await eventually(lambda: held.user_stream_subscriptions == 1, timeout=5)
    stop = await client.create_order(BTC, "market", "sell", 0.2, None, params={"stopLossPrice": 59_000})
    profit = await client.create_order(BTC, "limit", "sell", 0.3, 61_000, params={"takeProfitPrice": 61_000})
    assert stop["info"]["type"] == "STOP_LOSS" and profit["info"]["type"] == "TAKE_PROFIT_LIMIT"
    watcher.cancel()

    seen: dict[str, list[str]] = {}

    async def collect() -> None:
        while True:
            for order in await client.watch_orders(BTC):
                seen.setdefault(order["id"], []).append(order["status"])

    collector = asyncio.ensure_future(collect())
    try:
        held.set_price("BTCUSDT", Decimal("58900"))  # the stop-loss becomes a market sell
        await eventually(lambda: "closed" in seen.get(stop["id"], []), timeout=5, message="stop fill reported")
        assert "closed" not in seen.get(profit["id"], [])  # ccxt repeats what its cache holds
        held.set_price("BTCUSDT", Decimal("61100"))  # the take-profit's limit rests at 61,000 and takes at once
        await eventually(lambda: "closed" in seen.get(profit["id"], []), timeout=5, message="take-profit reported")
    finally:
        collector.cancel()
    assert held.balance("BTC") == (Decimal("0.5"), Decimal("0"))


async def test_a_stop_already_through_the_price_is_rejected(held, client):
    with pytest.raises(ccxt.InvalidOrder, match="trigger immediately"):
        await client.create_order(BTC, "limit", "sell", 0.1, 60_500, params={"stopLossPrice": 60_500})


async def oco(client, **params):
    return await client.privatePostOrderListOco(
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.4",
            "aboveType": "LIMIT_MAKER",
            "abovePrice": "62000",
            "belowType": "STOP_LOSS_LIMIT",
            "belowStopPrice": "59000",
            "belowPrice": "58500",
            "belowTimeInForce": "GTC",
            **params,
        }
    )


async def test_oco_locks_once_and_the_stop_leg_expires_the_other(held, client):
    answer = await oco(client, listClientOrderId="list-1")
    assert answer["listOrderStatus"] == "EXECUTING" and len(answer["orderReports"]) == 2
    legs = {r["type"]: client.parse_order(r) for r in answer["orderReports"]}
    assert set(legs) == {"LIMIT_MAKER", "STOP_LOSS_LIMIT"} and all(o["status"] == "open" for o in legs.values())
    assert held.balance("BTC") == (Decimal("0.6"), Decimal("0.4"))  # one quantity, locked once
    assert len(await client.privateGetOpenOrderList()) == 1

    held.set_price("BTCUSDT", Decimal("58900"))
    stop = await client.fetch_order(legs["STOP_LOSS_LIMIT"]["id"], BTC)
    maker = await client.fetch_order(legs["LIMIT_MAKER"]["id"], BTC)
    assert stop["status"] == "closed" and maker["status"] == "expired"
    listed = await client.privateGetOrderList({"orderListId": answer["orderListId"]})
    assert listed["listOrderStatus"] == "ALL_DONE" and await client.privateGetOpenOrderList() == []
    assert held.balance("BTC") == (Decimal("0.6"), Decimal("0"))


async def test_oco_cancel_one_leg_cancels_the_list(held, client):
    answer = await oco(client)
    leg = answer["orderReports"][0]
    await client.cancel_order(str(leg["orderId"]), BTC)
    assert all(not o.is_open for o in held.engine.orders.values())
    assert held.balance("BTC") == (Decimal("1"), Decimal("0"))
    second = await oco(client, listClientOrderId="list-2")
    gone = await client.privateDeleteOrderList({"symbol": "BTCUSDT", "listClientOrderId": "list-2"})
    assert gone["listOrderStatus"] == "ALL_DONE" and {r["status"] for r in gone["orderReports"]} == {"CANCELED"}
    assert gone["orderListId"] == second["orderListId"] and held.balance("BTC") == (Decimal("1"), Decimal("0"))
    with pytest.raises(ccxt.InvalidOrder, match="relationship"):
        await oco(client, abovePrice="59500", belowStopPrice="59000")


async def test_order_reject_fault_by_type_refuses_stops_only(held, client):
    held.faults.inject("order-reject", type="STOP_LOSS_LIMIT", msg="Stop orders are not available.")
    with pytest.raises(ccxt.InvalidOrder, match="not available"):
        await client.create_order(BTC, "limit", "sell", 0.1, 58_000, params={"stopLossPrice": 58_500})
    with pytest.raises(ccxt.InvalidOrder, match="not available"):
        await oco(client)
    plain = await client.create_order(BTC, "limit", "sell", 0.1, 63_000)
    assert plain["status"] == "open"


async def test_a_stop_triggered_during_a_websocket_drop_is_on_the_venue_after(held, client):
    watcher = asyncio.ensure_future(client.watch_orders(BTC))
    await eventually(lambda: held.user_stream_subscriptions == 1, timeout=5)
    stop = await client.create_order(BTC, "market", "sell", 0.25, None, params={"stopLossPrice": 59_000})
    held.faults.inject("ws-drop", which="user", abrupt=False)
    await eventually(lambda: held.user_stream_subscriptions == 0, timeout=5, message="user stream dropped")
    watcher.cancel()
    held.set_price("BTCUSDT", Decimal("58000"))  # no subscriber: the fill goes to no stream
    assert (await client.fetch_order(stop["id"], BTC))["status"] == "closed"
    assert sum(Decimal(str(t["amount"])) for t in await client.fetch_my_trades(BTC)) == Decimal("0.25")


async def test_cancel_replace_sells_what_a_stop_locked_in_one_request_or_answers_what_failed(held, client):
    """POST /api/v3/order/cancelReplace with Binance's semantics: the stop cancelled and a market sell of all it
    locked placed in one request; STOP_ON_FAILURE places nothing when the cancel fails (-2022, HTTP 400,
    NOT_ATTEMPTED); a cancel that worked and a sell refused is -2021 (HTTP 409), each half's answer in ``data``."""
    await client.load_markets()
    assert client.markets[BTC]["info"]["cancelReplaceAllowed"] is True
    await client.create_order(
        BTC, "limit", "sell", 1, 59_000, params={"stopLossPrice": 59_500, "newClientOrderId": "s1"}
    )
    assert held.balance("BTC") == (Decimal("0"), Decimal("1"))  # the stop locks all of it
    request = {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "cancelReplaceMode": "STOP_ON_FAILURE"}
    answer = await client.privatePostOrderCancelReplace(
        {**request, "quantity": "1", "cancelOrigClientOrderId": "s1", "newClientOrderId": "sell-1"}
    )
    assert answer["cancelResult"] == "SUCCESS" and answer["newOrderResult"] == "SUCCESS"
    assert answer["cancelResponse"]["origClientOrderId"] == "s1" and answer["cancelResponse"]["status"] == "CANCELED"
    assert answer["newOrderResponse"]["clientOrderId"] == "sell-1" and answer["newOrderResponse"]["status"] == "FILLED"
    assert answer["newOrderResponse"]["fills"] and sum(held.balance("BTC")) == 0

    with pytest.raises(ccxt.BadResponse) as failed:  # the stop is gone: nothing cancelled, nothing placed
        await client.privatePostOrderCancelReplace({**request, "quantity": "1", "cancelOrigClientOrderId": "s1"})
    assert '"code":-2022' in str(failed.value).replace(" ", "")
    assert '"newOrderResult":"NOT_ATTEMPTED"' in str(failed.value).replace(" ", "")
    assert held.engine.find("BTCUSDT", None, "sell-1").status == "FILLED"  # and no second sell

    held.engine.adjust_balance("BTC", Decimal("0.5"))
    await client.create_order(
        BTC, "limit", "sell", 0.5, 59_000, params={"stopLossPrice": 59_500, "newClientOrderId": "s2"}
    )
    with pytest.raises(ccxt.BadResponse) as partly:  # more than is held: cancelled, the sell refused
        await client.privatePostOrderCancelReplace({**request, "quantity": "0.6", "cancelOrigClientOrderId": "s2"})
    text = str(partly.value).replace(" ", "")
    assert '"code":-2021' in text and '"cancelResult":"SUCCESS"' in text and '"newOrderResult":"FAILURE"' in text
    assert "insufficientbalance" in text.lower()
    assert held.engine.find("BTCUSDT", None, "s2").status == "CANCELED" and held.balance("BTC") == (Decimal("0.5"), 0)
