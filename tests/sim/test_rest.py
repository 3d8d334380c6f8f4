"""The real ccxt binance client against the simulator's REST API."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from eventually import eventually

BTC = "BTC/USDT"


async def test_load_markets_parses_precision_and_limits(exchange):
    markets = await exchange.load_markets()
    assert set(markets) == {"BTC/USDT", "ETH/USDT"}
    btc, eth = markets["BTC/USDT"], markets["ETH/USDT"]
    assert btc["active"] and btc["spot"] and btc["base"] == "BTC" and btc["quote"] == "USDT"
    assert btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 0.00001
    assert eth["precision"]["amount"] == 0.0001
    assert btc["limits"]["amount"] == {"min": 0.00001, "max": 9000.0}
    assert btc["limits"]["cost"]["min"] == 5.0
    assert btc["limits"]["price"]["min"] == 0.01


async def test_fetch_time_is_server_clock(exchange):
    server_ms = await exchange.fetch_time()
    assert abs(server_ms - time.time() * 1000) < 2000


async def test_fetch_balance_starts_with_paper_usdt(exchange):
    balance = await exchange.fetch_balance()
    assert balance["USDT"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}
    assert balance["BTC"]["total"] == 0.0


async def test_fetch_ticker_reports_last_bid_ask(exchange, sim):
    ticker = await exchange.fetch_ticker(BTC)
    assert 40000 < ticker["last"] < 90000
    assert ticker["bid"] < ticker["ask"]
    assert ticker["high"] >= ticker["low"]
    tickers = await exchange.fetch_tickers()
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}


async def test_market_buy_fills_at_once_with_fee_in_base(exchange, sim):
    order = await exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "mkt-buy-1"})
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert order["clientOrderId"] == "mkt-buy-1"
    assert order["fee"] == {"currency": "BTC", "cost": 0.00001}
    fill = order["info"]["fills"][0]
    cost = Decimal(fill["price"]) * Decimal("0.01")
    assert sim.balance("BTC") == (Decimal("0.00999"), Decimal(0))
    assert sim.balance("USDT") == (Decimal("10000") - cost, Decimal(0))
    balance = await exchange.fetch_balance()
    assert balance["BTC"]["free"] == 0.00999


async def test_market_sell_charges_fee_in_quote(exchange, sim):
    await exchange.create_order(BTC, "market", "buy", 0.02, params={"newClientOrderId": "mkt-buy-2"})
    usdt_before = sim.balance("USDT")[0]
    order = await exchange.create_order(BTC, "market", "sell", 0.01, params={"newClientOrderId": "mkt-sell-1"})
    proceeds = Decimal(order["info"]["cummulativeQuoteQty"])
    fee = Decimal(order["info"]["fills"][0]["commission"])
    assert order["info"]["fills"][0]["commissionAsset"] == "USDT"
    assert fee == (proceeds * Decimal("0.001")).quantize(Decimal("0.00000001"))
    assert sim.balance("USDT")[0] == usdt_before + proceeds - fee


async def test_market_buy_by_quote_amount(exchange, sim):
    order = await exchange.create_market_buy_order_with_cost(BTC, 100)
    assert order["status"] == "closed"
    assert order["info"]["origQuoteOrderQty"] == "100.00000000"
    assert 99 < order["cost"] <= 100


async def test_limit_order_rests_locks_quote_and_is_listed(exchange, sim):
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "rest-1"})
    assert order["status"] == "open" and order["price"] == 50000
    assert sim.balance("USDT") == (Decimal("9500"), Decimal("500"))
    fetched = await exchange.fetch_order(order["id"], BTC)
    assert fetched["status"] == "open" and fetched["clientOrderId"] == "rest-1"
    by_client_id = await exchange.fetch_order(None, BTC, params={"origClientOrderId": "rest-1"})
    assert by_client_id["id"] == order["id"]
    assert [o["id"] for o in await exchange.fetch_open_orders(BTC)] == [order["id"]]
    assert [o["id"] for o in await exchange.fetch_open_orders()] == [order["id"]]
    assert [o["orderId"] for o in sim.open_orders("BTCUSDT")] == [int(order["id"])]


async def test_cancel_order_releases_the_lock(exchange, sim):
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "cxl-1"})
    cancelled = await exchange.cancel_order(order["id"], BTC)
    assert cancelled["status"] == "canceled"
    assert cancelled["info"]["origClientOrderId"] == "cxl-1"
    assert sim.balance("USDT") == (Decimal("10000"), Decimal(0))
    assert sim.open_orders() == []
    assert (await exchange.fetch_order(order["id"], BTC))["status"] == "canceled"


async def test_cancel_all_orders_of_a_symbol(exchange, sim):
    for i, price in enumerate((50000, 51000, 52000)):
        await exchange.create_order(BTC, "limit", "buy", 0.01, price, params={"newClientOrderId": f"all-{i}"})
    await exchange.create_order("ETH/USDT", "limit", "buy", 0.1, 3000, params={"newClientOrderId": "eth-1"})
    cancelled = await exchange.cancel_all_orders(BTC)
    assert len(cancelled) == 3 and {o["status"] for o in cancelled} == {"canceled"}
    assert [o["symbol"] for o in sim.open_orders()] == ["ETHUSDT"]


async def test_limit_buy_fills_as_maker_once_the_price_crosses_it(exchange, sim):
    sim.pause_feed()
    limit = (sim.price("BTCUSDT") - Decimal("100")).quantize(Decimal("0.01"))
    order = await exchange.create_order(BTC, "limit", "buy", 0.01, float(limit), params={"newClientOrderId": "cross-1"})
    assert order["status"] == "open"
    sim.set_price("BTCUSDT", limit - Decimal("0.50"))
    filled = await exchange.fetch_order(order["id"], BTC)
    assert filled["status"] == "closed" and filled["price"] == float(limit) and filled["average"] == float(limit)
    assert sim.balance("USDT") == (Decimal("10000") - limit * Decimal("0.01"), Decimal(0))
    assert sim.balance("BTC") == (Decimal("0.00999"), Decimal(0))
    trades = await exchange.fetch_my_trades(BTC)
    assert trades[-1]["takerOrMaker"] == "maker" and trades[-1]["order"] == order["id"]


async def test_limit_fills_with_the_background_feed(sim, make_client):
    """Without hooks: a sell limit one tick above the price fills as the random walk moves up through it."""
    fast = make_client()
    await fast.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "feed-buy"})
    sim.tick_interval = 0.01
    price = sim.price("BTCUSDT")
    order = await fast.create_order(
        BTC, "limit", "sell", 0.005, float(price + Decimal("0.50")), params={"newClientOrderId": "feed-sell"}
    )
    # The walk either crosses the limit (fill) or the order is still resting; wait for a fill, moving the price
    # only if the walk wandered away for long.
    try:
        await eventually(lambda: not sim.open_orders(), timeout=3)
    except AssertionError:
        sim.set_price("BTCUSDT", price + Decimal("1"))
    await eventually(lambda: not sim.open_orders(), timeout=2)
    assert (await fast.fetch_order(order["id"], BTC))["status"] == "closed"


async def test_marketable_limit_fills_at_once_as_taker_at_the_better_price(exchange, sim):
    sim.pause_feed()
    _, ask = sim.bid_ask("BTCUSDT")
    order = await exchange.create_order(
        BTC, "limit", "buy", 0.01, float(ask + 500), params={"newClientOrderId": "take-1"}
    )
    assert order["status"] == "closed" and order["average"] == float(ask)
    assert sim.balance("USDT") == (Decimal("10000") - ask * Decimal("0.01"), Decimal(0))


async def test_fetch_my_trades_lists_every_fill(exchange, sim):
    a = await exchange.create_order(BTC, "market", "buy", 0.01, params={"newClientOrderId": "t-1"})
    b = await exchange.create_order(BTC, "market", "sell", 0.005, params={"newClientOrderId": "t-2"})
    trades = await exchange.fetch_my_trades(BTC)
    assert [t["order"] for t in trades] == [a["id"], b["id"]]
    assert [t["side"] for t in trades] == ["buy", "sell"]
    assert trades[0]["fee"]["currency"] == "BTC" and trades[1]["fee"]["currency"] == "USDT"
    assert len({t["id"] for t in trades}) == 2
    assert await exchange.fetch_my_trades("ETH/USDT") == []


async def test_duplicate_client_id_of_an_open_order_is_rejected(exchange):
    import ccxt

    await exchange.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "dup-1"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await exchange.create_order(BTC, "limit", "buy", 0.01, 50000, params={"newClientOrderId": "dup-1"})
