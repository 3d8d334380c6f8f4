"""The monitors' finer points, through faults injected into the real simulator with small thresholds (each runbook
scenario as a whole is in tests/scenarios/): a 418 ban halts and an order waiting out a 429 is checked again; a
fill the streams missed is fetched and is no mismatch; a stuck order placed again; two buys waiting out a
Retry-After cannot both pass one position limit; a resume during a kill-switch pass is not undone by a retry; signed
calls refused for their timestamp share one resync and are sent once more, the kill switch's and an order's
included."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from eventually import eventually
from runbook import audited, codes, settings, tripped

from engine.core.engine import Engine
from engine.kernel.commands import CancelAll, Halt, PlaceOrder, Resume
from engine.kernel.config import Settings
from engine.kernel.events import TradingState
from engine.store.db import Store


@pytest.fixture
def run(run):
    """The shared engine starter, also waiting for the monitors' first reading."""

    async def start(s: Settings) -> Engine:
        engine = await run(s)
        await eventually(lambda: engine.monitors.ticks > 0, message="monitors reading")
        return engine

    return start


def recorded(tmp_path, code: str) -> dict:
    """The stored trip: the latched state names the monitor, and the audit trail has its command."""
    state, info = Store.in_dir(tmp_path).trading_state()
    assert state == TradingState.HALTED and info["code"] == code and info["actor"] == f"monitor:{code}"
    rows = [r for r in Store.in_dir(tmp_path).audit(limit=200) if r["actor"] == f"monitor:{code}"]
    assert rows and rows[-1]["kill_switch"] and rows[-1]["ok"], rows
    return info


async def test_429_pauses_every_request_for_retry_after_and_418_halts(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    last = engine.portfolio.last["BTC/USDT"]
    sim.faults.inject("http-status", status=429, retry_after=2, path="/api/v3/order", method="POST", count=1)
    refused = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.9"),
            stop_loss=last * Decimal("0.5"),
        )
    )
    assert not refused.ok and "not sent" in refused.message
    assert engine.venue_health.paused_for() > 1.0
    start = time.monotonic()
    await engine.venue.ping()  # any next request waits for the venue's Retry-After
    assert time.monotonic() - start >= 1.0
    assert engine.trading_state == TradingState.ACTIVE  # a 429 slows down, it does not halt
    # An order waiting out a Retry-After is checked against the trading state again before it leaves.
    sim.faults.inject("http-status", status=429, retry_after=2, path="/api/v3/time", count=1)
    await eventually(lambda: engine.venue_health.paused_for() > 0.5, timeout=5, message="paused by the ping's 429")
    waiting = asyncio.ensure_future(
        engine.execute(
            PlaceOrder(
                actor="strategy:ladder",
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.001"),
                price=last * Decimal("0.9"),
                stop_loss=last * Decimal("0.5"),
            )
        )
    )
    await asyncio.sleep(0)
    await engine.execute(Halt(actor="operator:key", reason="while an order waits"))
    late = await waiting
    assert not late.ok and "HALTED" in late.message and sim.open_orders() == []
    assert (await engine.execute(Resume(actor="operator:key"))).ok
    sim.faults.inject("http-status", status=418, retry_after=3, path="/api/v3/time", count=1)
    await tripped(engine, "rate_limit_ban")
    recorded(tmp_path, "rate_limit_ban")
    assert any(a.code == "TRADING_HALTED" and "rate_limit_ban" in a.message for a in engine.alert_book.recent)
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "rate_limit_ban" in refused.message


async def test_a_fill_the_streams_missed_is_fetched_and_is_no_mismatch(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(ws_stale_crit_s=60.0, ws_stale_warn_s=30.0)))
    await eventually(lambda: engine.holdings.baseline is not None)
    sim.faults.inject("ws-silence", which="user")
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.002"),
            price=last * Decimal("0.99"),
            stop_loss=last * Decimal("0.5"),
        )
    )
    assert placed.ok, placed.message
    (order,) = engine.tracker.open_orders()
    sim.set_price("BTCUSDT", last * Decimal("0.98"))  # fills at the venue; the user stream says nothing
    await eventually(
        lambda: engine.execution.filled_seen.get(order.client_id) == Decimal("0.002"),
        timeout=10,
        message="the fill fetched by reconciliation",
    )
    assert engine.tracker.get(order.client_id).status.value == "FILLED"
    await eventually(lambda: engine.holdings.engine_amount("BTC") > 0)
    for _ in range(3):  # several reconciliations later, still no difference
        await engine.sync.reconcile_all()
    assert engine.holdings.differences() == [] or all(
        d.pct_of_equity < Decimal("0.01") for d in engine.holdings.differences()
    )
    assert "POSITION_ADOPTED" not in codes(engine) and engine.trading_state == TradingState.ACTIVE


async def test_a_stuck_order_is_placed_again_when_configured(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(stuck_order_reissue=True, stuck_order_s=0.5)))
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.9"),
            stop_loss=last * Decimal("0.5"),
        )
    )
    assert placed.ok
    (first,) = engine.tracker.open_orders()
    await eventually(lambda: audited(tmp_path, "order", "monitor:stuck_order"), timeout=10, message="reissued")
    assert engine.tracker.get(first.client_id).status.value == "CANCELED"
    again = next(o for o in engine.tracker.all() if o.origin == "monitor:stuck_order")
    assert again.amount == first.amount and again.price == first.price


async def test_two_buys_waiting_out_a_retry_after_cannot_both_pass_the_position_limit(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    last = engine.portfolio.last["BTC/USDT"]
    amount = (engine.portfolio.equity() * Decimal("0.15") / last).quantize(Decimal("0.00001"))  # 15 % of 20 %
    sim.faults.inject("http-status", status=429, retry_after=2, path="/api/v3/time", count=1)
    await eventually(lambda: engine.venue_health.paused_for() > 0.5, timeout=5, message="paused by a 429")

    def buy_order():
        return engine.execute(
            PlaceOrder(
                actor="operator:cli a@b",
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=amount,
                price=last * Decimal("0.95"),
                stop_loss=last * Decimal("0.5"),
            )
        )

    first, second = await asyncio.gather(buy_order(), buy_order())
    assert [first.ok, second.ok].count(True) == 1
    assert "max_position_pct" in (second.message if first.ok else first.message)
    assert len(sim.open_orders()) == 1


async def test_a_resume_during_a_kill_switch_pass_is_not_undone_by_a_retry(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    sim.faults.inject("latency", ms=600)
    sim.faults.inject("http-status", status=503, path="/api/v3/openOrders", method="DELETE", count=1)
    kill = asyncio.ensure_future(engine.execute(CancelAll(actor="operator:key", reason="drill")))
    await eventually(lambda: engine.trading_state == TradingState.HALTED, message="the pass has begun")
    resumed = await engine.execute(Resume(actor="operator:key", reason="changed my mind"))
    assert resumed.ok, resumed.message
    result = await kill
    assert not result.ok and result.message.startswith("ACTIVE; ")  # says the state as it is now
    assert engine.kill_switch_retrying() == [] and engine.trading_state == TradingState.ACTIVE


async def test_calls_refused_for_their_timestamp_share_one_resync_and_are_sent_once_more(sim, tmp_path, run):
    """With nothing else signing (ping and reconciliation every 60 s), each jump of the venue's clock is found by
    the calls it refuses (-1021): calls refused together share one resync (no stampede) and are each sent once
    more; an order refused for its timestamp is placed once (the venue checks the timestamp before anything
    else); the kill switch's lane resyncs the same way; none of it counts toward a halt."""
    engine = await run(settings(sim, tmp_path, monitors=dict(ping_s=60.0, reconcile_s=60.0)))
    # The first ping and its warm-up of the kill switch's lane are answered (the connect's warm-up before them), so
    # every time request from here on is a resync.
    await eventually(
        lambda: len(engine.venue.latency.samples.get("GET /api/v3/time", ())) >= 3, message="the first ping"
    )
    clock = engine.venue.clock
    times = sim.faults.inject("latency", ms=0, path="/api/v3/time")  # counts the venue's time answers
    orders = sim.faults.inject("latency", ms=0, path="/api/v3/order", method="POST")

    skew = sim.faults.inject("clock-skew", ms=15_000)  # our stamps now older than the 10 s recvWindow
    answers = await asyncio.gather(*(engine.venue.fetch_balances(urgent=urgent) for urgent in (False,) * 3 + (True,)))
    assert all(answers) and clock.resyncs == 1 and sim.faults.get(times).hits == 1
    assert 14_500 < engine.venue_health.offset_ms < 15_500

    sim.faults.clear(skew)  # the skew ends: the offset in force now stamps calls 15 s ahead of the venue
    last = engine.portfolio.last["BTC/USDT"]
    placed = await asyncio.wait_for(
        engine.execute(
            PlaceOrder(
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.001"),
                price=last * Decimal("0.9"),
                stop_loss=last * Decimal("0.5"),
            )
        ),
        timeout=5,
    )
    assert placed.ok, placed.message
    assert sim.faults.get(orders).hits == 2 and clock.resyncs == 2  # refused, resynced, sent once more
    assert [o["clientOrderId"] for o in sim.open_orders()] == [placed.details["client_id"]]  # placed once
    assert abs(engine.venue_health.offset_ms) < 500

    sim.faults.inject("clock-skew", ms=-15_000)  # the kill switch's lane meets the next jump first
    cancelled = await asyncio.wait_for(engine.execute(CancelAll(actor="operator:key")), timeout=5)
    assert cancelled.ok, cancelled.message
    assert sim.open_orders() == [] and clock.resyncs == 3
    assert engine.venue_health.recent_timestamp_refusals() == [] and engine.venue_health.recent_errors() == []
    assert engine.trading_state == TradingState.HALTED and engine.state_info["actor"] == "operator:key"
