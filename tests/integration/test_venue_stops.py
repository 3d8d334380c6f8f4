"""Stops at the venue (issue 22): every held position's stop rests at the simulator as a stop-limit, placed and
amended by the engine (audited as ``engine:stops``), watched by the engine when it cannot be placed (CRIT
``STOP_NOT_AT_VENUE``, retried), and filled by the venue itself when the price falls through it."""

from __future__ import annotations

import time
from decimal import Decimal

from crashloop import stops_twice
from eventually import eventually
from test_resilience_sim import alerts, settings

from cockpit.status import render_status
from engine.api.statusreport import status_report
from engine.kernel.commands import CancelAll, PlaceOrder, Resume
from engine.kernel.events import RoundTripClosed, TradingState
from engine.store.db import Store

BTC = "BTC/USDT"


def venue_stops(sim) -> list[dict]:
    return [o for o in sim.open_orders("BTCUSDT") if o["type"] == "STOP_LOSS_LIMIT"]


def held(sim) -> Decimal:
    return sum(sim.balance("BTC"), Decimal(0))


async def test_the_stop_follows_the_position_at_the_venue_and_fills_there(sim, tmp_path, run):
    sim.pause_feed()
    engine = await run(settings(sim, tmp_path, risk={"stop_limit_offset_pct": Decimal("1")}))
    trips: list[RoundTripClosed] = []
    engine.bus.add_handler(lambda e: trips.append(e) if isinstance(e, RoundTripClosed) else None)
    last = engine.portfolio.last[BTC]
    stop = (last * Decimal("0.97")).quantize(Decimal("0.01"))

    # A stop that cannot rest at the venue: the engine says so (CRIT), watches it, and places it once it can.
    fault = sim.faults.inject("order-reject", type="STOP_LOSS_LIMIT", msg="Stop orders are not available.")
    bought = await engine.execute(
        PlaceOrder(symbol=BTC, side="buy", type="market", amount=Decimal("0.002"), stop_loss=stop)
    )
    assert bought.ok, bought.message
    await eventually(lambda: alerts(engine, "STOP_NOT_AT_VENUE"), timeout=10, message="CRIT STOP_NOT_AT_VENUE")
    assert venue_stops(sim) == [] and not engine.venue_stops.at_venue(BTC)
    sim.faults.clear(fault)
    await eventually(lambda: len(venue_stops(sim)) == 1, timeout=10, message="stop placed on retry")
    (first,) = venue_stops(sim)
    assert Decimal(first["stopPrice"]) == stop and Decimal(first["price"]) == (stop * Decimal("0.99")).quantize(
        Decimal("0.01"), rounding="ROUND_DOWN"
    )
    assert Decimal(first["origQty"]) == (held(sim) // Decimal("0.00001")) * Decimal("0.00001")
    await eventually(lambda: engine.venue_stops.at_venue(BTC), timeout=5, message="the engine knows it rests")

    # The position grows: the stop is amended (cancelled and replaced), never two at once.
    more = await engine.execute(
        PlaceOrder(symbol=BTC, side="buy", type="market", amount=Decimal("0.001"), stop_loss=stop)
    )
    assert more.ok, more.message
    await eventually(
        lambda: [Decimal(o["origQty"]) for o in venue_stops(sim)] == [held(sim) // Decimal("0.00001") / 100000],
        timeout=10,
        message="stop amended to the whole position",
    )
    assert len(venue_stops(sim)) == 1 and venue_stops(sim)[0]["orderId"] != first["orderId"]
    assert all(o.status.value == "CANCELED" for o in engine.tracker.all() if o.client_id == first["clientOrderId"])

    # Someone cancels it at the venue: the engine says so (WARN) and places it again.
    (second,) = venue_stops(sim)
    sim.engine.cancel("BTCUSDT", second["orderId"], None)
    await eventually(lambda: alerts(engine, "STOP_MISSING_AT_VENUE"), timeout=10, message="WARN missing stop")
    await eventually(lambda: len(venue_stops(sim)) == 1, timeout=10, message="stop placed again")
    assert venue_stops(sim)[0]["orderId"] != second["orderId"]

    # The price falls through the stop: the venue sells, the engine records the fill and closes the position.
    sim.set_price("BTCUSDT", stop * Decimal("0.998"))
    await eventually(lambda: trips, timeout=10, message="round trip closed by the venue's stop")
    assert held(sim) < Decimal("0.00001") and venue_stops(sim) == []
    assert trips[0].symbol == BTC and trips[0].pnl < 0
    assert not alerts(engine, "STOP_LOSS")  # the venue did it: the engine's own check had nothing to do
    assert engine.trading_state == TradingState.ACTIVE and BTC not in engine.execution.stops
    audit = [a for a in Store.in_dir(tmp_path).audit(limit=50) if a["command"] == "protect"]
    assert audit and all(a["actor"] == "engine:stops" for a in audit)
    assert any(a["ok"] for a in audit) and any(not a["ok"] for a in audit)  # the refused try is on record too


def lots(amount: Decimal) -> Decimal:
    """Rounded down to the simulator's BTC step (what a stop can sell)."""
    return (amount // Decimal("0.00001")) * Decimal("0.00001")


def protection_at_venue(sim) -> list[dict]:
    """The engine's protective orders resting at the simulator: a lone stop, or an OCO's two legs."""
    return [o for o in sim.open_orders("BTCUSDT") if o["clientOrderId"].startswith(("cs-", "ct-"))]


async def test_an_entry_with_a_take_profit_rests_as_one_oco_that_follows_the_fills_and_takes_the_profit(
    sim, tmp_path, run
):
    sim.pause_feed()
    engine = await run(settings(sim, tmp_path, risk={"stop_limit_offset_pct": Decimal("1")}))
    trips: list[RoundTripClosed] = []
    engine.bus.add_handler(lambda e: trips.append(e) if isinstance(e, RoundTripClosed) else None)
    last = engine.portfolio.last[BTC]
    entry = (last * Decimal("0.99")).quantize(Decimal("0.01"))
    stop = (last * Decimal("0.95")).quantize(Decimal("0.01"))
    take_profit = (last * Decimal("1.03")).quantize(Decimal("0.01"))

    # A limit entry with a take-profit; the price arrives at it and half of it fills: an OCO of the half.
    bought = await engine.execute(
        PlaceOrder(
            symbol=BTC,
            side="buy",
            type="limit",
            amount=Decimal("0.004"),
            price=entry,
            stop_loss=stop,
            take_profit=take_profit,
        )
    )
    assert bought.ok, bought.message
    await eventually(engine.sync.user_stream_claims_up, timeout=5, message="the user stream is up")
    sim.set_price("BTCUSDT", entry)
    await eventually(lambda: len(protection_at_venue(sim)) == 2, timeout=10, message="OCO of the partial fill")
    legs = {o["type"]: o for o in protection_at_venue(sim)}
    assert set(legs) == {"LIMIT_MAKER", "STOP_LOSS_LIMIT"} and legs["LIMIT_MAKER"]["orderListId"] >= 0
    assert legs["LIMIT_MAKER"]["orderListId"] == legs["STOP_LOSS_LIMIT"]["orderListId"]
    assert (
        Decimal(legs["LIMIT_MAKER"]["price"]) == take_profit and Decimal(legs["STOP_LOSS_LIMIT"]["stopPrice"]) == stop
    )
    assert Decimal(legs["STOP_LOSS_LIMIT"]["origQty"]) == lots(held(sim)) and held(sim) < Decimal("0.002")
    await eventually(lambda: engine.venue_stops.at_venue(BTC), timeout=5, message="the engine knows the OCO rests")

    # The rest of the entry fills: the whole list is cancelled and replaced for the amount held, never two.
    sim.set_price("BTCUSDT", entry - Decimal("0.01"))
    await eventually(
        lambda: (
            [Decimal(o["origQty"]) for o in protection_at_venue(sim)] == [lots(held(sim))] * 2
            and held(sim) > Decimal("0.0039")
        ),
        timeout=10,
        message="OCO amended to the whole position",
    )
    await eventually(lambda: engine.venue_stops.at_venue(BTC), timeout=5, message="the engine knows the new OCO")
    (position,) = status_report(engine.store, tmp_path, None, "paper", (), (BTC,))["positions"]  # status --json
    assert position["stop_at_venue"] and Decimal(position["stop_price"]) == stop
    assert Decimal(position["take_profit_price"]) == take_profit and position["take_profit_order"].startswith("ct-")
    lists = {o["orderListId"] for o in sim.account()["orders"] if o["clientOrderId"].startswith(("cs-", "ct-"))}
    assert len(lists) == 2 and stops_twice(sim.account()) == []

    # The price rises through the take-profit: the venue sells, expires the stop leg; the engine records it all.
    sim.set_price("BTCUSDT", take_profit + Decimal("1"))
    await eventually(lambda: trips, timeout=10, message="round trip closed by the take-profit")
    assert trips[0].symbol == BTC and trips[0].pnl > 0 and held(sim) < Decimal("0.00001")
    assert protection_at_venue(sim) == []
    (stop_leg,) = [o for o in engine.tracker.all() if o.is_protective_stop and o.status.value == "EXPIRED"]
    assert engine.tracker.get(stop_leg.oco_partner).status.value == "FILLED"
    await eventually(lambda: not engine.portfolio.positions(), timeout=5, message="no position left")
    assert BTC not in engine.execution.stops and BTC not in engine.execution.take_profits
    assert not alerts(engine, "STOP_MISSING_AT_VENUE") and not alerts(engine, "STOP_NOT_AT_VENUE")
    assert engine.trading_state == TradingState.ACTIVE
    audit = [a for a in Store.in_dir(tmp_path).audit(limit=50) if a["command"] == "protect" and a["ok"]]
    assert any("OCO placed" in a["result"] for a in audit) and any("OCO amended" in a["result"] for a in audit)


async def test_stops_cancel_all_took_stay_off_through_a_restart_until_an_operator_resumes(sim, tmp_path, run, capsys):
    sim.pause_feed()
    cfg = settings(sim, tmp_path, monitors_cfg={"stuck_order_s": 0.3, "interval_s": 0.1})
    engine = await run(cfg)
    stop = (engine.portfolio.last[BTC] * Decimal("0.97")).quantize(Decimal("0.01"))
    bought = await engine.execute(
        PlaceOrder(symbol=BTC, side="buy", type="market", amount=Decimal("0.002"), stop_loss=stop)
    )
    assert bought.ok, bought.message
    await eventually(lambda: len(venue_stops(sim)) == 1, timeout=10, message="the stop rests at the venue")
    # A stop waits for its price: resting past stuck_order_s is its job, and the stuck-order monitor leaves it be.
    (resting,) = venue_stops(sim)
    since, ticks = time.monotonic(), engine.monitors.ticks
    await eventually(lambda: time.monotonic() - since > 0.4 and engine.monitors.ticks > ticks + 3, timeout=5)
    assert venue_stops(sim) == [resting] and not alerts(engine, "ORDER_STUCK")
    taken = await engine.execute(CancelAll(actor="operator:key", include_stops=True))
    assert taken.ok and venue_stops(sim) == [], taken.message
    await engine.stop()

    # Stored: `cockpit status` says so with no engine running, and how to end it.
    store = Store.in_dir(tmp_path)
    try:
        report = status_report(store, tmp_path, None, "paper", (), (BTC,))
    finally:
        store.close()
    assert "until an operator resumes" in report["stops_suspended"]
    assert [(p["symbol"], p["stop_at_venue"]) for p in report["positions"]] == [(BTC, False)]
    render_status(report, tmp_path)
    assert "stops at the venue: SUSPENDED" in (out := capsys.readouterr().out) and "`cockpit resume`" in out

    # The restart keeps it: HALTED, the position held, and nothing placed for it at the venue.
    again = await run(cfg)
    assert again.trading_state == TradingState.HALTED and again.venue_stops.suspended
    assert again.venue_stops.gap(BTC) is None and venue_stops(sim) == []
    assert again.read.snapshot()["positions"] and again.venue_stops.resting(BTC) == []

    # An operator resumes: the stop rests again and the suspension is over, on disk too.
    assert (await again.execute(Resume(actor="operator:key"))).ok
    await eventually(lambda: len(venue_stops(sim)) == 1, timeout=10, message="the stop placed again")
    assert again.venue_stops.suspended == "" and again.store.load_json("stops_suspended") == ""
