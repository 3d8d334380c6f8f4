"""``kill -9`` of the real engine process at random points of a busy paper session against a simulator in its own
process, twice, each restart checked against the venue's record (tests/crashloop.py; the long run is
``python tests/crashloop.py --kills 200``, README "Proof suites"). And the checker itself, shown to catch what it
looks for."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from crashloop import differences, holdings_kept_apart, positions_differ, reduce_only_flips, run_loop

from engine.kernel.events import (
    Balance,
    BalancesUpdated,
    Fill,
    FillReceived,
    HoldingsChanged,
    Order,
    OrderCreated,
    OrderStatus,
    OrderUpdated,
    Persisted,
    TradingState,
    TradingStateChanged,
)
from engine.store.db import Store


def test_kills_of_a_busy_engine_lose_nothing_and_keep_the_halt(tmp_path):
    # Seed 13 draws: a kill while HALTED, then a kill while trading with `cockpit cancel-all` on its way.
    report = run_loop(kills=2, seed=13, work=tmp_path, say=lambda line: None)
    assert report.problems == [], report.problems
    assert report.kills == 2 and report.checks == 3
    # Where the command's kill landed is what the store held at the kill, not what was drawn.
    assert sum(report.command_state_at_kill.values()) == 1, report.command_state_at_kill
    assert report.halts_kept == 2 and report.kills_during_a_command == report.command_state_at_kill.get("running", 0)
    unfinished = report.command_state_at_kill.get("running", 0) + report.command_state_at_kill.get("pending", 0)
    assert report.commands_carried_out_after_restart == unfinished
    assert report.venue_orders > 0


def venue_order(cid: str, status: str = "NEW", executed: str = "0") -> dict:
    return {"clientOrderId": cid, "symbol": "BTCUSDT", "side": "BUY", "status": status, "executedQty": executed}


def test_the_checker_finds_an_order_placed_twice_an_unknown_one_a_wrong_status_and_a_balance_off(tmp_path):
    store = Store.in_dir(tmp_path)
    order = Order("ck-1", "BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal("50000"), OrderStatus.NEW)
    store.handle(OrderCreated(order))
    store.handle(
        OrderUpdated(
            Order("ck-1", "BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal("50000"), OrderStatus.OPEN),
            OrderStatus.NEW,
            "rest",
            "",
        )
    )
    store.handle(BalancesUpdated((Balance("USDT", Decimal("9950"), Decimal("50")),)))
    balances = {"USDT": {"free": "9950", "locked": "50"}}
    assert differences({"orders": [venue_order("ck-1")], "trades": 0, "balances": balances}, store) == []
    found = differences(
        {
            "orders": [venue_order("ck-1"), venue_order("ck-1"), venue_order("web_2")],
            "trades": 1,
            "balances": {"USDT": {"free": "9900", "locked": "50"}},
        },
        store,
    )
    assert "order ck-1 placed 2 times at the venue" in found
    assert any("web_2" in p and "unknown to the engine" in p for p in found)
    assert "1 trades at the venue, 0 fills stored" in found
    assert any(p.startswith("USDT: venue 9900 free") for p in found)
    assert differences(
        {"orders": [venue_order("ck-1", "FILLED", "0.001")], "trades": 0, "balances": balances}, store
    ) == ["order ck-1: venue FILLED, engine OPEN", "order ck-1: venue filled 0.001, engine 0"]
    assert differences({"orders": [], "trades": 0, "balances": balances}, store) == [
        "engine order ck-1 OPEN is not at the venue"
    ]


def test_the_checker_finds_a_position_mismatch_kept_or_halted_on(tmp_path):
    store = Store.in_dir(tmp_path)
    assert holdings_kept_apart(store) == []
    store.handle(
        HoldingsChanged(
            {
                "baseline": {"BTC": "0"},
                "mismatch": [
                    {"asset": "BTC", "engine": "0.0024", "venue": "0", "diff": "-0.0024", "pct_of_equity": "1.5"}
                ],
            }
        )
    )
    store.handle(
        TradingStateChanged(
            TradingState.ACTIVE,
            TradingState.HALTED,
            "monitor:position_mismatch",
            "BTC: venue 0, engine 0.0024",
            code="position_mismatch",
        )
    )
    assert holdings_kept_apart(store) == [
        "BTC: the engine holds 0.0024, the venue 0 (position mismatch kept)",
        "HALTED by position_mismatch: BTC: venue 0, engine 0.0024",
    ]
    store.close()


def test_kills_of_an_engine_on_perps_lose_nothing_and_never_flip(tmp_path):
    """The crash loop on the simulator's USDⓈ-M perpetuals (``--perps``, runbook 002): shorts opened, reduced and
    closed from another shell, killed once; before and after the restart the orders, fills, the positions' side and
    size agree with the venue's and no reduce-only order opened or flipped a position (the long run:
    ``python tests/crashloop.py --perps --kills 200``)."""
    report = run_loop(kills=1, seed=2, work=tmp_path, say=lambda line: None, perps=True)
    assert report.problems == [], report.problems
    assert report.kills == 1 and report.checks == 2
    assert report.venue_trades > 0


def test_the_perps_checker_finds_a_position_off_and_a_reduce_only_fill_that_flips(tmp_path):
    store = Store.in_dir(tmp_path)
    store.handle(Persisted("perp_positions", [{"symbol": "BTC/USDT:USDT", "amount": "-0.002"}]))
    venue_short = {"positions": [{"symbol": "BTCUSDT", "positionAmt": "-0.002"}], "orders": []}
    assert positions_differ(venue_short, store) == []
    assert positions_differ({**venue_short, "positions": []}, store) == [
        "positions: the venue holds {}, the engine shows {'BTCUSDT': Decimal('-0.002')}"
    ]
    for n, (cid, side, amount) in enumerate([("ck-1", "sell", "0.002"), ("ck-2", "buy", "0.003")]):
        at = datetime(2026, 12, 6, 12, 0, n, tzinfo=UTC)
        fill = Fill(str(n + 1), cid, "BTC/USDT:USDT", side, Decimal("65000"), Decimal(amount), Decimal(0), "USDT", at)
        store.handle(FillReceived(fill))
    orders = [{"clientOrderId": "ck-2", "reduceOnly": True}]
    assert reduce_only_flips({"orders": orders}, store) == [
        "reduce-only order ck-2 took BTC/USDT:USDT from -0.002 to 0.001"
    ]
    assert reduce_only_flips({"orders": []}, store) == []
    store.close()
