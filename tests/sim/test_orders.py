"""Order types against the synthetic book, through the real ccxt client: fills at several prices, partial
fills, IOC / FOK / LIMIT_MAKER, quoteOrderQty, and the account's own orders in the depth."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import ccxt
import pytest
from eventually import eventually

BTC = "BTC/USDT"


@pytest.fixture
def funded(sim):
    """The simulator with 1,000,000 USDT and 50 BTC, its price still."""
    sim.pause_feed()
    sim.engine.adjust_balance("USDT", Decimal("990000"))
    sim.engine.adjust_balance("BTC", Decimal("50"))
    return sim


def book_asks(sim, n: int) -> list[tuple[Decimal, Decimal]]:
    return sim.engine.books["BTCUSDT"].levels("asks", n)


async def test_large_market_buy_walks_the_book_with_one_fill_per_level(funded, client):
    asks = book_asks(funded, 10)
    qty = sum(q for _, q in asks[:4]) + asks[4][1] / 2
    qty = (qty / Decimal("0.00001")).to_integral_value() * Decimal("0.00001")
    order = await client.create_order(BTC, "market", "buy", float(qty), params={"newClientOrderId": "walk-1"})
    fills = order["info"]["fills"]
    assert order["status"] == "closed" and Decimal(order["info"]["executedQty"]) == qty
    assert [Decimal(f["price"]) for f in fills] == [p for p, _ in asks[:5]]
    assert [Decimal(f["qty"]) for f in fills[:4]] == [q for _, q in asks[:4]]
    assert len({f["tradeId"] for f in fills}) == 5 and all(f["commissionAsset"] == "BTC" for f in fills)
    assert order["average"] > float(asks[0][0])
    # What was taken is gone from the book until the price moves.
    assert book_asks(funded, 1)[0][0] == asks[4][0]
    trades = await client.fetch_my_trades(BTC)
    assert [t["price"] for t in trades] == [float(p) for p, _ in asks[:5]]
    assert all(t["takerOrMaker"] == "taker" and t["fee"]["currency"] == "BTC" for t in trades)


async def test_market_order_by_quote_quantity(funded, client):
    order = await client.create_order(
        BTC, "market", "buy", None, params={"quoteOrderQty": 25000, "newClientOrderId": "quote-1"}
    )
    assert order["status"] == "closed"
    assert 24900 < order["cost"] <= 25000
    assert Decimal(order["info"]["origQuoteOrderQty"]) == Decimal(25000)
    assert Decimal(order["info"]["executedQty"]) % Decimal("0.00001") == 0


async def test_gtc_limit_takes_what_its_price_allows_then_rests_and_fills_later(funded, client):
    asks = book_asks(funded, 5)
    limit = asks[1][0]
    qty = asks[0][1] + asks[1][1] + Decimal("1")
    updates: list[tuple[str, float]] = []

    async def watch() -> None:
        while not updates or updates[-1][0] != "closed":
            updates.extend((o["status"], o["filled"]) for o in await client.watch_orders(BTC))

    watcher = asyncio.ensure_future(watch())
    await eventually(lambda: funded.user_stream_subscriptions == 1, timeout=5)
    order = await client.create_order(
        BTC, "limit", "buy", float(qty), float(limit), params={"newClientOrderId": "part-1"}
    )
    assert order["status"] == "open" and order["info"]["status"] == "PARTIALLY_FILLED"
    assert order["filled"] == float(asks[0][1] + asks[1][1]) and order["remaining"] == 1.0
    assert funded.balance("USDT")[1] == limit * 1  # only the rest is locked
    assert funded.engine.books["BTCUSDT"].levels("bids", 1)[0] == (limit, Decimal(1))  # it is the best bid
    # ccxt coalesces updates that arrive before the next watch_orders call: wait for the partial state.
    await eventually(lambda: any(s == "open" and f > 0 for s, f in updates), timeout=5)
    funded.set_price("BTCUSDT", limit - Decimal("5"))
    await asyncio.wait_for(watcher, 5)
    statuses = [s for s, _ in updates]
    assert statuses[0] == "open" and statuses[-1] == "closed"
    assert [f for s, f in updates if s == "open"][-1] == float(asks[0][1] + asks[1][1])
    assert funded.balance("USDT")[1] == 0


async def test_touching_a_resting_order_fills_half_of_it(funded, client):
    bid, _ = funded.bid_ask("BTCUSDT")
    limit = bid - Decimal("100")
    order = await client.create_order(BTC, "limit", "buy", 0.5, float(limit), params={"newClientOrderId": "half-1"})
    funded.set_price("BTCUSDT", limit)
    half = await client.fetch_order(order["id"], BTC)
    assert half["status"] == "open" and half["filled"] == 0.25 and half["info"]["status"] == "PARTIALLY_FILLED"
    funded.set_price("BTCUSDT", limit - Decimal("1"))
    done = await client.fetch_order(order["id"], BTC)
    assert done["status"] == "closed" and done["filled"] == 0.5 and done["average"] == float(limit)


async def test_ioc_fills_what_it_can_and_expires_the_rest(funded, client):
    asks = book_asks(funded, 3)
    qty = asks[0][1] + Decimal("2")
    order = await client.create_order(
        BTC, "limit", "buy", float(qty), float(asks[0][0]), params={"timeInForce": "IOC", "newClientOrderId": "ioc-1"}
    )
    assert order["status"] == "expired" and order["filled"] == float(asks[0][1])
    assert funded.open_orders() == [] and funded.balance("USDT")[1] == 0


async def test_fok_fills_all_or_nothing(funded, client):
    asks = book_asks(funded, 3)
    too_much = asks[0][1] + asks[1][1] + Decimal("0.5")
    killed = await client.create_order(
        BTC,
        "limit",
        "buy",
        float(too_much),
        float(asks[1][0]),
        params={"timeInForce": "FOK", "newClientOrderId": "fok-1"},
    )
    assert killed["status"] == "expired" and killed["filled"] == 0
    enough = asks[0][1] + asks[1][1]
    filled = await client.create_order(
        BTC,
        "limit",
        "buy",
        float(enough),
        float(asks[1][0]),
        params={"timeInForce": "FOK", "newClientOrderId": "fok-2"},
    )
    assert filled["status"] == "closed" and filled["filled"] == float(enough)


async def test_limit_maker_rests_or_is_rejected_if_it_would_take(funded, client):
    bid, ask = funded.bid_ask("BTCUSDT")
    with pytest.raises(ccxt.InvalidOrder, match="Order would immediately match and take"):
        await client.create_order(
            BTC, "limit", "buy", 0.01, float(ask), params={"postOnly": True, "newClientOrderId": "lm-1"}
        )
    inside = bid + Decimal("1")
    order = await client.create_order(
        BTC, "limit", "buy", 0.01, float(inside), params={"postOnly": True, "newClientOrderId": "lm-2"}
    )
    assert order["status"] == "open" and order["info"]["type"] == "LIMIT_MAKER"
    book = await client.fetch_order_book(BTC, 5)
    assert book["bids"][0] == [float(inside), 0.01]  # the order improved the best bid


async def test_market_lot_size_and_test_order_endpoint(funded, client):
    with pytest.raises(ccxt.InvalidOrder, match="MARKET_LOT_SIZE"):
        await client.private_post_order({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "121"})
    assert (
        await client.private_post_order_test(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": "60000",
            }
        )
        == {}
    )
    assert funded.open_orders() == []


async def test_fetch_order_book_and_bid_ask_quantities(funded, client):
    book = await client.fetch_order_book(BTC, 500)
    assert len(book["bids"]) == 500 and len(book["asks"]) == 500
    assert book["bids"][0][0] < book["asks"][0][0]
    assert all(a[0] < b[0] for a, b in zip(book["asks"], book["asks"][1:]))
    ticker = (await client.fetch_bids_asks([BTC]))[BTC]
    assert [ticker["bid"], ticker["bidVolume"]] == book["bids"][0]
    assert [ticker["ask"], ticker["askVolume"]] == book["asks"][0]
    full = await client.fetch_ticker(BTC)
    assert full["bidVolume"] == book["bids"][0][1]


async def test_watch_order_book_stays_equal_to_the_rest_snapshot(funded, client):
    await asyncio.wait_for(client.watch_order_book(BTC), 5)
    await client.create_order(BTC, "market", "buy", 1.2, params={"newClientOrderId": "ob-1"})
    await client.create_order(
        BTC, "limit", "sell", 0.3, float(funded.price("BTCUSDT") + 40), params={"newClientOrderId": "ob-2"}
    )
    for price in ("65100", "64950.5", "60000"):  # a jump far beyond the window too
        funded.set_price("BTCUSDT", Decimal(price))
    snapshot = await client.fetch_order_book(BTC, 1000)

    def same() -> bool:
        book = client.orderbooks[BTC]  # ccxt's book, kept from the diff stream
        return (
            book["nonce"] == snapshot["nonce"]
            and list(book["bids"][:50]) == snapshot["bids"][:50]
            and list(book["asks"][:50]) == snapshot["asks"][:50]
        )

    await eventually(same, timeout=5)


async def test_watch_bids_asks_and_recent_trades(funded, client):
    first = await asyncio.wait_for(client.watch_bids_asks([BTC]), 5)
    assert first[BTC]["bid"] < first[BTC]["ask"]
    await client.create_order(BTC, "market", "buy", 0.001, params={"newClientOrderId": "tape-1"})
    trades = await client.fetch_trades(BTC, limit=5)  # aggTrades
    assert trades[-1]["price"] > 0 and len(trades) <= 5
    raw = await client.public_get_trades({"symbol": "BTCUSDT", "limit": 2})
    assert len(raw) == 2 and {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker"} <= set(raw[0])
