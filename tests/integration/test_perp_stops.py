"""Protective stops of perps at the venue (issue 24 "Protection", decision PERP-07): a 3x short's stop rests at the
simulator's USDⓈ-M algo service as a STOP_MARKET buy with ``closePosition`` over the price, placed by
``engine:stops`` through ccxt ``binanceusdm``'s unified ``stopLossPrice``; with the engine gone the price rises
through it and the venue closes the short; the restart records that (the fill from userTrades) with no mismatch
and no halt; close-all leaves no algo order behind."""

from __future__ import annotations

from decimal import Decimal

from eventually import eventually
from perpvenue import PERP, perp_settings, usdm_fixture  # noqa: F401  (the usdm fixture)
from runbook import audited, codes, store

from engine.api.statusreport import status_report
from engine.kernel.commands import CancelAll, CloseAll, PlaceOrder
from engine.kernel.events import OrderStatus, TradingState


def algos(sim) -> list[dict]:
    """The conditional orders waiting at the venue (its algo service), as Binance lists them."""
    return [
        {
            "side": a.side,
            "type": a.order_type,
            "trigger": a.trigger_price,
            "close": a.close_position,
            "id": a.client_algo_id,
        }
        for a in sim.futures.open_algos()
    ]


def position(sim) -> Decimal:
    return sum((Decimal(p["positionAmt"]) for p in sim.account()["futures"]["positions"]), Decimal(0))


async def test_a_shorts_stop_rests_at_the_venue_fires_with_the_engine_gone_and_the_restart_records_it(
    usdm, tmp_path, run
):
    """Runbook 002 "Stop loss": the stop lives at the venue, so it protects the short while the engine is down."""
    cfg = perp_settings(usdm, tmp_path, risk={"stops_at_venue": True})
    engine = await run(cfg)

    last = engine.portfolio.last[PERP]
    stop = (last * Decimal("1.03")).quantize(Decimal("0.1"))
    sold = await engine.execute(
        PlaceOrder(symbol=PERP, side="sell", type="market", amount=Decimal("0.02"), stop_loss=stop)
    )
    assert sold.ok, sold.message
    await eventually(lambda: len(algos(usdm)) == 1, timeout=10, message="the short's stop rests at the venue")
    [resting] = algos(usdm)
    assert resting["side"] == "BUY" and resting["type"] == "STOP_MARKET" and resting["close"] is True
    assert resting["trigger"] == stop and resting["id"].startswith("cs-")
    await eventually(lambda: engine.venue_stops.at_venue(PERP), timeout=5, message="the engine knows it rests")
    # The short grows: closePosition follows the size, so the same stop stays (no amend, never two, never none).
    more = await engine.execute(
        PlaceOrder(symbol=PERP, side="sell", type="market", amount=Decimal("0.01"), stop_loss=stop)
    )
    assert more.ok, more.message
    await eventually(lambda: engine.portfolio.held_amount(PERP) == Decimal("-0.03"), message="the short grew")
    assert [a["id"] for a in algos(usdm)] == [resting["id"]] and engine.venue_stops.gap(PERP) is None
    # `cockpit status --json` says where the stop rests.
    report = status_report(store(tmp_path), tmp_path, None, "paper", symbols=(PERP,))
    [shown] = report["positions"]
    assert shown["side"] == "short" and shown["stop_price"] == str(stop) and shown["stop_at_venue"] is True
    await engine.stop()

    # The engine is gone; the price rises through the stop: the venue buys the short back.
    usdm.set_price("BTCUSDT", stop * Decimal("1.002"))
    await eventually(lambda: position(usdm) == 0, timeout=5, message="the venue's stop closed the short")
    assert algos(usdm) == []

    # The restart finds the stop filled (the fill from userTrades), the position flat: no mismatch, no halt.
    again = await run(cfg)
    await eventually(
        lambda: (o := again.tracker.get(resting["id"])) is not None and o.status == OrderStatus.FILLED,
        timeout=10,
        message="the stop's fill recorded",
    )
    assert again.portfolio.held_amount(PERP) == 0 and again.trading_state == TradingState.ACTIVE
    assert not {"POSITION_MISMATCH", "LIQUIDATED", "STOP_MISSING_AT_VENUE"} & set(codes(again))
    assert PERP not in again.execution.stops and algos(usdm) == []

    # A long with its stop under the price, then close-all: the stop cancelled (the algo service's own cancel),
    # the position flat at the venue, no algo order behind.
    low = (again.portfolio.last[PERP] * Decimal("0.97")).quantize(Decimal("0.1"))
    bought = await again.execute(
        PlaceOrder(symbol=PERP, side="buy", type="market", amount=Decimal("0.02"), stop_loss=low)
    )
    assert bought.ok, bought.message
    await eventually(lambda: [a["side"] for a in algos(usdm)] == ["SELL"], timeout=10, message="the long's stop")
    # Tier 2 (cancel-all) keeps it; tier 3 (close-all) takes it.
    kept = await again.execute(CancelAll(actor="operator:test"))
    assert kept.ok and "kept 1 protective stop(s)" in kept.message, kept.message
    assert [a["side"] for a in algos(usdm)] == ["SELL"]
    closed = await again.execute(CloseAll(actor="operator:test", reason="runbook 002 close all positions"))
    assert closed.ok, closed.message
    assert again.trading_state == TradingState.HALTED
    assert position(usdm) == 0 and algos(usdm) == []


async def test_a_shorts_stop_the_venue_refuses_is_watched_by_the_engine_which_buys_the_short_back(usdm, tmp_path, run):
    """The second line: a stop the venue will not take is a CRIT STOP_NOT_AT_VENUE, and the engine's own check
    buys the short back, reduce-only, once the price is over the stop."""
    engine = await run(perp_settings(usdm, tmp_path, risk={"stops_at_venue": True}))
    usdm.faults.inject("order-reject", type="STOP_MARKET", msg="Stop orders are not available.")
    over = (engine.portfolio.last[PERP] * Decimal("1.02")).quantize(Decimal("0.1"))
    sold = await engine.execute(
        PlaceOrder(symbol=PERP, side="sell", type="market", amount=Decimal("0.01"), stop_loss=over)
    )
    assert sold.ok, sold.message
    await eventually(lambda: "STOP_NOT_AT_VENUE" in codes(engine), timeout=10, message="CRIT STOP_NOT_AT_VENUE")
    usdm.set_price("BTCUSDT", over * Decimal("1.001"))
    await eventually(lambda: position(usdm) == 0, timeout=10, message="the engine's own stop closed the short")
    assert "STOP_LOSS" in codes(engine) and algos(usdm) == []
    [exit_] = audited(tmp_path, "exit", f"stop:{PERP}")
    assert exit_["ok"], exit_
