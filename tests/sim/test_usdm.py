"""USDⓈ-M perpetual futures on the simulator, through the real ccxt ``binanceusdm`` client over HTTP and websockets
(runbook 002: a 3x short, its liquidation distance, reduce-only closes, the dead man's switch, funding)."""

from __future__ import annotations

import asyncio
import signal
import sys
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt
import ccxt.pro as ccxtpro
import pytest
from eventually import eventually

from engine.sim import Simulator

PERP = "BTC/USDT:USDT"


def usdm_client(sim: Simulator) -> Any:
    """ccxt ``binanceusdm`` pointed at the simulator: every REST family at its path on the simulator, the linear
    websocket at ``ws_url/ws`` (ccxt adds /market, /public, /private), the linear error codes mapped (shared note
    "Binance USDⓈ-M futures for ccxt")."""
    ex = ccxtpro.binanceusdm(
        {
            "apiKey": sim.api_key,
            "secret": sim.api_secret,
            "enableRateLimit": False,
            "timeout": 5_000,
            "options": {"fetchCurrencies": False, "fetchOpenOrders": {"warnWithoutSymbol": False}},
        }
    )
    api: dict[str, Any] = {k: sim.rest_url + urlsplit(v).path for k, v in ex.urls["api"].items() if isinstance(v, str)}
    api["ws"] = {"linear": sim.ws_url + "/ws"}
    ex.urls["api"] = api
    ex.exceptions["exact"].update(ex.exceptions["linear"]["exact"])
    ex.timeout_on_exit = 0
    return ex


@pytest.fixture
async def perps():
    """A futures-only simulator, prices held still at 60,000 (tests move them), and a ccxt client with markets."""
    async with Simulator(seed=7, market="usdm") as simulator:
        simulator.pause_feed()
        simulator.set_price("BTCUSDT", Decimal("60000"))
        ex = usdm_client(simulator)
        try:
            await ex.load_markets()
            yield simulator, ex
        finally:
            await ex.close()


def liquidation_price(qty: Decimal, entry: Decimal, wallet: Decimal, mmr: Decimal, cum: Decimal | int) -> Decimal:
    """Binance's one-way liquidation price of a short (side -1) with no other position."""
    return (wallet + cum + qty * entry) / (qty * mmr + qty)


async def test_a_3x_isolated_short_shows_its_liquidation_price_and_is_liquidated_at_it(perps):
    sim, ex = perps
    await ex.set_leverage(3, PERP)
    await ex.set_margin_mode("isolated", PERP)
    with pytest.raises(ccxt.MarginModeAlreadySet):
        await ex.set_margin_mode("isolated", PERP)
    orders = asyncio.ensure_future(ex.watch_orders(PERP))
    await eventually(lambda: sim.user_stream_subscriptions == 1, message="user stream listening")
    sell = await ex.create_order(PERP, "market", "sell", 0.01, params={"newClientOrderId": "short-1"})
    assert sell["status"] == "closed" and sell["filled"] == 0.01
    assert [o["clientOrderId"] for o in await orders] == ["short-1"]

    (pos,) = await ex.fetch_positions()
    assert (pos["symbol"], pos["side"], pos["contracts"], pos["leverage"]) == (PERP, "short", 0.01, 3)
    assert pos["marginMode"] == "isolated"
    brackets = await ex.fapiPrivateGetLeverageBracket({"symbol": "BTCUSDT"})
    tier = brackets["brackets"][0]
    entry = Decimal(pos["info"]["entryPrice"])
    wallet = Decimal(pos["info"]["isolatedWallet"])
    assert wallet == Decimal("0.01") * entry / 3
    expected = liquidation_price(
        Decimal("0.01"), entry, wallet, Decimal(str(tier["maintMarginRatio"])), Decimal(str(tier["cum"]))
    )
    liq = Decimal(pos["info"]["liquidationPrice"])
    assert abs(liq - expected) < Decimal("0.0001") and Decimal("79000") < liq < Decimal("81000")

    sim.set_price("BTCUSDT", liq - 5)  # just short of it: still open
    assert [p["contracts"] for p in await ex.fetch_positions()] == [0.01]
    watched = asyncio.ensure_future(ex.watch_orders(PERP))
    sim.set_price("BTCUSDT", liq + 5)  # the mark crosses it: the venue closes the position at the mark
    liquidation = (await watched)[-1]
    assert liquidation["clientOrderId"].startswith("autoclose-") and liquidation["info"]["o"] == "LIQUIDATION"
    assert liquidation["info"]["x"] == "CALCULATED" and liquidation["info"]["X"] == "FILLED"

    assert await ex.fetch_positions() == []
    trades = await ex.fetch_my_trades(PERP)
    assert [t["side"] for t in trades] == ["sell", "buy"] and trades[-1]["price"] == float(sim.mark_price("BTCUSDT"))
    (forced,) = await ex.fapiPrivateGetForceOrders({"symbol": "BTCUSDT"})
    assert forced["clientOrderId"] == liquidation["clientOrderId"] and str(forced["orderId"]) == trades[-1]["order"]
    income = await ex.fapiPrivateGetIncome({"symbol": "BTCUSDT"})
    kinds = {row["incomeType"] for row in income}
    assert {"COMMISSION", "REALIZED_PNL", "INSURANCE_CLEAR"} <= kinds
    # The whole isolated margin is gone, no more: the cross wallet is the start less that margin and the fees.
    balance = await ex.fetch_balance()
    fees = sum(Decimal(row["income"]) for row in income if row["incomeType"] == "COMMISSION")
    assert Decimal(str(balance["USDT"]["total"])) == (Decimal("10000") - wallet + fees).quantize(Decimal("1e-8"))


async def test_reduce_only_never_opens_or_flips_and_a_close_position_stop_flattens(perps):
    sim, ex = perps
    with pytest.raises(ccxt.ExchangeError, match="-1100"):
        await ex.set_position_mode(True)  # hedge mode: the simulator is one-way only
    assert (await ex.fapiPrivateGetPositionSideDual())["dualSidePosition"] is False
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        await ex.create_order(PERP, "market", "sell", 0.01, params={"reduceOnly": True})  # would open a short
    await ex.set_leverage(3, PERP)
    await ex.create_order(PERP, "market", "buy", 0.02)
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        await ex.create_order(PERP, "market", "sell", 0.03, params={"reduceOnly": True})  # would flip to short
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        await ex.create_order(PERP, "market", "buy", 0.01, params={"reduceOnly": True})  # would add
    part = await ex.create_order(PERP, "market", "sell", 0.005, params={"reduceOnly": True})
    assert part["reduceOnly"] is True and part["status"] == "closed"
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.create_order(PERP, "market", "buy", 1)  # 60,000 at 3x needs 20,000 of margin

    stop = await ex.create_order(PERP, "market", "sell", None, params={"stopLossPrice": 59_000, "closePosition": True})
    assert stop["status"] == "open" and stop["info"]["algoStatus"] == "NEW"
    (waiting,) = await ex.fetch_open_orders(PERP, params={"trigger": True})
    assert waiting["id"] == stop["id"] and waiting["triggerPrice"] == 59_000
    near = await ex.create_order(PERP, "limit", "sell", 0.005, 61_000, params={"reduceOnly": True})
    far = await ex.create_order(PERP, "limit", "sell", 0.005, 62_000, params={"reduceOnly": True})
    sim.set_price("BTCUSDT", Decimal("61100"))  # the near take-profit fills at its price, as a maker
    (fill,) = await ex.fetch_my_trades(PERP, params={"orderId": near["id"]})
    assert (fill["price"], fill["takerOrMaker"]) == (61_000, "maker") and float(fill["info"]["realizedPnl"]) > 0
    sim.set_price("BTCUSDT", Decimal("59500"))
    assert [p["contracts"] for p in await ex.fetch_positions()] == [0.01]
    sim.set_price("BTCUSDT", Decimal("58900"))  # the venue's own feed triggers it: closes the whole position
    assert await ex.fetch_positions() == []
    assert (await ex.fetch_order(far["id"], PERP))["status"] == "expired"  # reduce-only with nothing to reduce
    done = await ex.fetch_order(stop["id"], PERP, params={"trigger": True})
    assert done["info"]["algoStatus"] == "FINISHED" and done["info"]["actualOrderId"]
    assert await ex.fetch_open_orders(PERP, params={"trigger": True}) == []


async def test_countdown_cancel_all_cancels_resting_orders_when_not_renewed(perps):
    sim, ex = perps
    await ex.create_order(PERP, "limit", "buy", 0.01, 55_000)
    await ex.create_order(PERP, "market", "buy", 0.01)
    await ex.create_order(PERP, "market", "sell", None, params={"stopLossPrice": 50_000, "closePosition": True})
    answer = await ex.fapiPrivatePostCountdownCancelAll({"symbol": "BTCUSDT", "countdownTime": 600})
    assert answer == {"symbol": "BTCUSDT", "countdownTime": "600"}
    first_deadline = sim.futures.countdowns["BTCUSDT"].deadline_ms
    while sim.clock.server_ms() < first_deadline + 200:  # a heartbeat every 0.1 s, past the first deadline
        await ex.fapiPrivatePostCountdownCancelAll({"symbol": "BTCUSDT", "countdownTime": 600})
        await asyncio.sleep(0.1)  # the client's heartbeat cadence (the workload), bounded by the venue's clock above
    assert len(await ex.fetch_open_orders(PERP)) == 1
    await ex.close()  # the engine dies: the venue's own clock cancels, with no client connected
    await eventually(lambda: not sim.futures.open_orders(), timeout=3)
    assert sim.futures.countdowns == {}
    assert len(sim.futures.open_algos()) == 1  # the protective stop is in the algo service: it stays
    assert [p.amt for p in sim.futures.account.positions.values() if p.amt] == [Decimal("0.01")]


async def test_funding_is_charged_at_the_funding_time_and_streamed(perps):
    sim, ex = perps
    await ex.create_order(PERP, "market", "sell", 0.1)
    (pos,) = await ex.fetch_positions()  # cross margin at the default 20x: the whole cross wallet backs it
    cross_wallet = Decimal((await ex.fapiPrivateV3GetAccount())["totalCrossWalletBalance"])
    expected = liquidation_price(Decimal("0.1"), Decimal(pos["info"]["entryPrice"]), cross_wallet, Decimal("0.004"), 0)
    assert pos["marginMode"] == "cross" and pos["leverage"] == 20
    assert abs(Decimal(pos["info"]["liquidationPrice"]) - expected) < Decimal("0.0001")
    sim.faults.inject("funding-spike", rate="0.01", symbol="BTCUSDT")
    assert (await ex.fetch_funding_rate(PERP))["fundingRate"] == 0.01
    (snapshot,) = await ex.watch_positions([PERP])  # the first answer is ccxt's REST snapshot
    assert snapshot["side"] == "short"
    positions = asyncio.ensure_future(ex.watch_positions([PERP]))
    await eventually(lambda: sim.user_stream_subscriptions == 1, message="user stream listening")
    sim.schedule_funding(0)
    sim.tick()  # the next tick after the funding time charges it
    (update,) = await positions
    assert update["side"] == "short" and update["contracts"] == 0.1
    (funding,) = await ex.fetch_funding_history(PERP)
    mark = Decimal(str((await ex.fetch_funding_rate(PERP))["markPrice"]))
    assert Decimal(str(funding["amount"])) == Decimal("0.1") * mark * Decimal("0.01")  # a short receives it
    assert (await ex.fetch_funding_rate(PERP))["fundingRate"] == 0.0001  # the spike was charged once
    assert not sim.faults.active("funding-spike")

    # A gap far through the cross liquidation price: closed at the mark, the insurance fund covers the deficit.
    sim.set_price("BTCUSDT", Decimal(pos["info"]["liquidationPrice"]) * Decimal("1.2"))
    assert await ex.fetch_positions() == []
    assert (await ex.fetch_balance())["USDT"]["total"] == 0
    assert [r["incomeType"] for r in await ex.fapiPrivateGetIncome({"incomeType": "INSURANCE_CLEAR"})] == [
        "INSURANCE_CLEAR"
    ]


@pytest.mark.slow  # a real `cockpit sim` process: about 2 s
async def test_cockpit_sim_market_usdm_serves_fapi_and_no_spot():
    code = "from cockpit.cli import main; raise SystemExit(main(['sim', '--market', 'usdm', '--rest-port', '0', "
    code += "'--ws-port', '0', '--funding-interval', '60']))"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 10)).decode().rstrip("\n") for _ in range(8)]
        rest_url = lines[0].split(" ", 1)[1]
        assert lines[7] == f"Market usdm: USDⓈ-M futures under {rest_url}/fapi"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{rest_url}/fapi/v1/premiumIndex?symbol=BTCUSDT") as answer:
                body = await answer.json()
                assert body["nextFundingTime"] % 60_000 == 0 and body["nextFundingTime"] - body["time"] <= 60_000
            async with http.get(f"{rest_url}/api/v3/exchangeInfo") as spot:
                assert spot.status == 404
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert "Traceback" not in (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_both_markets_on_one_simulator_and_mark_divergence():
    async with Simulator(seed=7, market="both") as sim:
        sim.pause_feed()
        ex = usdm_client(sim)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{sim.rest_url}/api/v3/exchangeInfo") as spot:
                    assert spot.status == 200
            headers = {"Authorization": f"Bearer {sim.control_token}"}
            async with aiohttp.ClientSession(headers=headers) as control:
                async with control.get(f"{sim.rest_url}/sim/status") as status:
                    assert (await status.json())["market"] == "both"
                async with control.post(f"{sim.rest_url}/sim/funding", json={"seconds": 30}) as funding:
                    assert (await funding.json())["next_funding_time"] == sim.futures.next_funding_ms
                    assert sim.futures.next_funding_ms - sim.clock.now_ms() <= 30_000
            sim.faults.inject("mark-divergence", percent=3, symbol="BTCUSDT")
            mark = await ex.fetch_mark_price(PERP)
            assert Decimal(str(mark["markPrice"])) == (sim.price("BTCUSDT") * Decimal("1.03")).quantize(Decimal("0.01"))
            watched = await ex.watch_mark_price(PERP)
            assert watched["markPrice"] == mark["markPrice"]
            sim.faults.inject("foreign-fill", market="usdm", side="SELL", qty="0.002")  # not the engine's order
            (pos,) = await ex.fetch_positions()
            assert (pos["side"], pos["contracts"]) == ("short", 0.002)
            assert sim.engine.trades == []  # the spot account saw nothing
        finally:
            await ex.close()
    async with Simulator(seed=7, market="usdm") as only:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{only.rest_url}/api/v3/exchangeInfo") as spot:
                assert spot.status == 404
        with pytest.raises(RuntimeError, match="spot only"):
            Simulator(market="spot").schedule_funding(1)
        with pytest.raises(ValueError, match="give one of spot, usdm, both"):
            Simulator(market="coinm")


def test_the_futures_faults_have_a_command_line_help(capsys):
    from engine.sim.faultcli import main as fault_main

    for name in ("mark-divergence", "funding-spike", "foreign-fill"):
        assert fault_main([name, "--help"]) == 0
        assert f"fault {name}" in capsys.readouterr().out
