"""Perpetual futures through the engine (issue 24, runbook 002): ccxt ``binanceusdm`` alone and through the engine
opens a 3x short on the simulator's USDⓈ-M market; its liquidation price is shown; the price rising towards it trips
``liquidation_distance`` WARN then CRIT, whose configured action (here: reduce) is taken and audited; close-all
leaves the position flat at the venue."""

from __future__ import annotations

from decimal import Decimal

from eventually import eventually
from perpvenue import PERP, bare, perp_settings, usdm_fixture  # noqa: F401  (the usdm fixture)
from runbook import audited, codes, first_alert, store

from cockpit.status import render_status
from cockpit.views import market_row, price
from engine.api.statusreport import status_report
from engine.kernel.commands import CloseAll, PlaceOrder
from engine.kernel.events import TradingState
from engine.sim import Simulator

PERP_CHECKS = ("leverage", "margin_type", "position_mode", "deadman")


async def bare_short(sim: Simulator) -> None:
    """ccxt ``binanceusdm`` alone: a 3x short whose liquidation price ``fetch_positions`` shows, then closed."""
    ex = bare(sim)
    try:
        await ex.load_markets()
        await ex.set_margin_mode("isolated", PERP)
        await ex.set_leverage(3, PERP)
        await ex.create_order(PERP, "market", "sell", 0.02)
        [position] = await ex.fetch_positions()
        assert position["side"] == "short" and position["contracts"] == 0.02
        assert position["liquidationPrice"] > position["entryPrice"] * 1.25  # a 3x short: about a third above
        await ex.create_order(PERP, "market", "buy", 0.02, None, {"reduceOnly": True})
        assert await ex.fetch_positions() == []
    finally:
        await ex.close()


async def test_a_3x_short_through_the_engine_trips_liquidation_distance_and_close_all_leaves_it_flat(
    usdm, tmp_path, run, capsys
):
    """Runbook 002 "Key Metrics to Monitor": Liquidation Distance; "Maintain adequate liquidation buffers"; "CLOSE ALL
    POSITIONS". The short's liquidation price is about 33 % over the entry: WARN under 25 %, CRIT under 20 %, the CRIT
    reducing the position by half with a reduce-only order by ``monitor:liquidation_distance``."""
    await bare_short(usdm)
    engine = await run(
        perp_settings(
            usdm,
            tmp_path,
            monitors={"liq_warn_pct": Decimal("25"), "liq_crit_pct": Decimal("20"), "liq_crit_action": "reduce"},
        )
    )
    assert engine.venue.exchange_id == "binanceusdm"
    assert engine.execution.leverage[PERP] == 3  # set at the venue at connect
    # The go/no-go checklist's perps lines: leverage, margin type, position mode, the dead-man's switch.
    await eventually(lambda: engine.deadman.state()["armed"], message="dead-man's switch armed")
    checklist = await engine.preflight(with_orders=False)
    perps = {c.code: c.status.value for c in checklist.checks if c.code in PERP_CHECKS}
    assert perps == dict.fromkeys(PERP_CHECKS, "PASS"), [c.to_dict() for c in checklist.checks if c.code in perps]
    result = await engine.execute(PlaceOrder(symbol=PERP, side="sell", type="market", amount=Decimal("0.02")))
    assert result.ok, result.message
    await eventually(lambda: engine.portfolio.positions(), message="the short is known")
    [short] = engine.portfolio.positions()
    assert short.side == "short" and short.amount == Decimal("-0.02") and short.leverage == 3
    assert short.liquidation_price is not None and short.liquidation_price > short.avg_entry * Decimal("1.25")
    # `cockpit status --json` shows it as the store keeps it.
    await eventually(lambda: store(tmp_path).load_json("perp_positions"), message="positions stored")
    [shown] = store(tmp_path).load_json("perp_positions")
    assert shown["side"] == "short" and Decimal(shown["leverage"]) == 3 and shown["liquidation_price"]
    assert 30 < float(shown["liquidation_distance_pct"]) < 36
    # `cockpit status --json` and the markets panel show side, leverage, liquidation price and distance.
    report = status_report(store(tmp_path), tmp_path, None, "paper", symbols=(PERP,))
    [listed] = report["positions"]
    assert {k: listed[k] for k in ("side", "leverage", "liquidation_price")} == {
        "side": "short",
        "leverage": shown["leverage"],
        "liquidation_price": str(short.liquidation_price),
    }
    assert listed["liquidation_distance_pct"] == shown["liquidation_distance_pct"]
    render_status(report, tmp_path)  # `cockpit status`, for a person: one line per position
    assert f"position: {PERP} SHORT -0.02" in capsys.readouterr().out
    row = [str(cell) for cell in market_row(PERP, None, short)]
    assert row[2] == "SHORT 0.02 3x" and row[6] == price(short.liquidation_price) and row[8] == "liquidation"
    liquidation = short.liquidation_price

    # The price rises to 22 % under the liquidation price: WARN.
    usdm.set_price("BTCUSDT", liquidation / Decimal("1.22"))
    await eventually(lambda: "LIQUIDATION_DISTANCE" in codes(engine), timeout=10, message="liquidation_distance WARN")
    assert first_alert(tmp_path, "LIQUIDATION_DISTANCE")["severity"] == "WARN"
    assert engine.portfolio.held_amount(PERP) == Decimal("-0.02")  # a WARN does nothing
    # Then to 15 % under it: CRIT, confirmed, and the short is halved by a reduce-only buy.
    usdm.set_price("BTCUSDT", liquidation / Decimal("1.15"))
    await eventually(
        lambda: audited(tmp_path, "order", "monitor:liquidation_distance"), timeout=10, message="the CRIT acted"
    )
    [record] = audited(tmp_path, "order", "monitor:liquidation_distance")
    assert record["ok"], record
    assert record["args"]["side"] == "buy" and Decimal(record["args"]["amount"]) == Decimal("0.01"), record
    assert record["values"]["under_crit"] == [PERP] and record["values"]["action"] == "reduce"
    crits = [a for a in store(tmp_path).alerts(limit=100) if a["code"] == "LIQUIDATION_DISTANCE"]
    assert any(a["severity"] == "CRIT" for a in crits), crits
    await eventually(lambda: engine.portfolio.held_amount(PERP) == Decimal("-0.01"), message="reduced by half")
    [venue_position] = usdm.account()["futures"]["positions"]
    assert Decimal(venue_position["positionAmt"]) == Decimal("-0.010")

    # The operator's close-all flattens what is left with a reduce-only market buy, verified flat at the venue.
    result = await engine.execute(CloseAll(actor="operator:test", reason="runbook 002 close all positions"))
    assert result.ok, result.message
    assert engine.trading_state == TradingState.HALTED
    assert usdm.account()["futures"]["positions"] == []
    engine.report_answered()  # its alert follows its answer (decision BEN-07)
    assert "CLOSE_ALL" in codes(engine)
    assert engine.portfolio.positions() == ()
