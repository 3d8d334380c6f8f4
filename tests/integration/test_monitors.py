"""Every row of the monitors table, through a fault injected into the real simulator with small thresholds:
the alert, the action through the command path (and its audit record), the stored state change with the
monitor's code, the orders and positions at the venue afterwards, and resume refused while the trigger holds."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from engine.commands import CancelAll, CloseAll, Halt, PlaceOrder, Reconnect, Resume
from engine.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.core import Engine
from engine.events import TradingState
from engine.store import Store
from eventually import eventually
from fastsim import FAST

MON = dict(interval_s=0.1, ws_stale_warn_s=1.0, ws_stale_crit_s=3.0, rest_errors_max=2, rest_errors_window_s=3.0,
           ping_s=0.2, reconcile_s=0.3, stuck_order_s=0.5, flash_crash_pct=Decimal("8"), flash_crash_window_s=5.0,
           flash_calm_pct=Decimal("1"), flash_calm_s=1.0, clock_skew_warn_ms=500.0)


def settings(sim, tmp_path, monitors=None, risk=None) -> Settings:
    return Settings(
        venue=VenueConfig(exchange="binance", rest_url=sim.rest_url, ws_url=sim.ws_url, api_key=sim.api_key,
                          api_secret=sim.api_secret, **{**FAST, "timeout_ms": 2000}),
        engine=EngineConfig(data_dir=tmp_path, equity_sample_s=0.2),
        risk=RiskConfig(**{"max_position_pct": Decimal("20"), **(risk or {})}),
        monitors=MonitorsConfig(**{**MON, **(monitors or {})}),
        strategy=StrategyConfig(enabled=False),
    )


@pytest.fixture
def run(run):
    """The shared engine starter, also waiting for the monitors' first reading."""

    async def start(s: Settings) -> Engine:
        engine = await run(s)
        await eventually(lambda: engine.monitors.rows["ws_stale"].reading.value != "—", message="monitors reading")
        return engine

    return start


def codes(engine: Engine) -> list[str]:
    return [a.code for a in engine.alert_book.recent]


def audited(tmp_path, command: str, actor: str) -> list[dict]:
    return [r for r in Store.in_dir(tmp_path).audit(limit=200) if r["command"] == command and r["actor"] == actor]


async def tripped(engine: Engine, code: str, timeout: float = 15) -> float:
    """Wait for a halt by ``monitor:<code>``; return when it came (monotonic)."""
    await eventually(lambda: engine.trading_state == TradingState.HALTED and engine.state_info.get("code") == code,
                     timeout=timeout, message=f"halted by {code}")
    return time.monotonic()


def recorded(tmp_path, code: str) -> dict:
    """The stored trip: the latched state names the monitor, and the audit trail has its command."""
    state, info = Store.in_dir(tmp_path).trading_state()
    assert state == TradingState.HALTED and info["code"] == code and info["actor"] == f"monitor:{code}"
    rows = [r for r in Store.in_dir(tmp_path).audit(limit=200) if r["actor"] == f"monitor:{code}"]
    assert rows and rows[-1]["kill_switch"] and rows[-1]["ok"], rows
    return info


async def buy(engine: Engine, symbol: str = "BTC/USDT", amount: str = "0.01") -> None:
    last = engine.portfolio.last[symbol]
    result = await engine.execute(PlaceOrder(symbol=symbol, side="buy", type="market", amount=Decimal(amount),
                                             stop_loss=last * Decimal("0.5")))
    assert result.ok, result.message


async def test_ws_stale_reconnects_then_closes_everything(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    await buy(engine)
    fault = sim.faults.inject("ws-silence")
    start = datetime.now(timezone.utc)
    await eventually(lambda: audited(tmp_path, "reconnect", "monitor:ws_stale"), timeout=10,
                     message="WARN: a reconnect through the command path")
    await tripped(engine, "ws_stale")
    warned = next(a.ts for a in engine.alert_book.recent if a.code == "WS_STALE")
    at = datetime.fromisoformat(engine.state_info["ts"])
    await eventually(lambda: sum(sim.balance("BTC")) < Decimal("0.00001"), timeout=10, message="position closed")
    # The audit record is written when the command ends, a moment after the venue shows its effect.
    (row,) = await eventually(lambda: audited(tmp_path, "close-all", "monitor:ws_stale"), message="close-all audited")
    assert "closed 1 position(s)" in row["result"]
    assert "WS_STALE" in codes(engine) and engine.state_info["values"]["market_age_s"] > 3.0
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "ws_stale" in refused.message
    sim.faults.clear(fault)
    await eventually(lambda: engine.monitors.rows["ws_stale"].status.value == "OK", timeout=20)
    assert (await engine.execute(Resume(actor="operator:key"))).ok
    print(f"ws-silence -> reconnect {(warned - start).total_seconds():.2f}s, "
          f"-> close-all {(at - start).total_seconds():.2f}s "
          f"(warn {MON['ws_stale_warn_s']}s, crit {MON['ws_stale_crit_s']}s)")


async def test_rest_errors_halt_and_resume_waits_for_the_window(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    await buy(engine)
    fault = sim.faults.inject("http-status", status=503, path="/api/v3/time")  # the ping notices it
    start = time.monotonic()
    at = await tripped(engine, "rest_errors")
    print(f"503 storm -> halt {at - start:.2f}s")
    recorded(tmp_path, "rest_errors")
    assert sum(sim.balance("BTC")) > Decimal("0.009")  # a halt: the position stays for the operator
    assert len(engine.state_info["values"]["errors"]) >= 2
    assert audited(tmp_path, "halt", "monitor:rest_errors")
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "rest_errors" in refused.message
    sim.faults.clear(fault)
    await eventually(lambda: engine.monitors.rows["rest_errors"].status.value == "OK", timeout=10)
    assert (await engine.execute(Resume(actor="operator:key"))).ok


async def test_429_pauses_every_request_for_retry_after_and_418_halts(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    last = engine.portfolio.last["BTC/USDT"]
    sim.faults.inject("http-status", status=429, retry_after=2, path="/api/v3/order", method="POST", count=1)
    refused = await engine.execute(PlaceOrder(symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.001"),
                                              price=last * Decimal("0.9"), stop_loss=last * Decimal("0.5")))
    assert not refused.ok and "not sent" in refused.message
    assert engine.venue_health.paused_for() > 1.0
    start = time.monotonic()
    await engine.venue.ping()  # any next request waits for the venue's Retry-After
    assert time.monotonic() - start >= 1.0
    assert engine.trading_state == TradingState.ACTIVE  # a 429 slows down, it does not halt
    # An order waiting out a Retry-After is checked against the trading state again before it leaves.
    sim.faults.inject("http-status", status=429, retry_after=2, path="/api/v3/time", count=1)
    await eventually(lambda: engine.venue_health.paused_for() > 0.5, timeout=5, message="paused by the ping's 429")
    waiting = asyncio.ensure_future(engine.execute(PlaceOrder(
        actor="strategy:ladder", symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.001"),
        price=last * Decimal("0.9"), stop_loss=last * Decimal("0.5"))))
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


async def test_latency_and_reconnects_warn_without_acting(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_latency_warn_ms=150.0, ws_stale_crit_s=20.0,
                                                             reconnects_warn_per_hour=1, rest_errors_max=50)))
    sim.faults.inject("latency", ms=400)
    await eventually(lambda: "REST_LATENCY" in codes(engine), timeout=15, message="latency WARN")
    for _ in range(2):
        assert (await engine.execute(Reconnect(actor="operator:key"))).ok
    await eventually(lambda: "RECONNECTS" in codes(engine), timeout=10, message="reconnect-rate WARN")
    assert engine.trading_state == TradingState.ACTIVE


async def test_a_stuck_order_is_cancelled_and_a_failing_cancel_is_crit(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(PlaceOrder(symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.001"),
                                             price=last * Decimal("0.9"), stop_loss=last * Decimal("0.5")))
    assert placed.ok
    await eventually(lambda: sim.open_orders() == [], timeout=10, message="the stuck order cancelled at the venue")
    (row,) = await eventually(lambda: audited(tmp_path, "cancel", "monitor:stuck_order"), message="cancel audited")
    assert row["ok"]
    sim.faults.inject("cancel-fail")
    await engine.execute(PlaceOrder(symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.001"),
                                    price=last * Decimal("0.9"), stop_loss=last * Decimal("0.5")))
    await eventually(lambda: "STUCK_ORDER_CANCEL_FAILED" in codes(engine), timeout=10)
    await eventually(lambda: engine.monitors.rows["stuck_order"].status.value == "CRIT")
    assert engine.trading_state == TradingState.ACTIVE  # an alert for the operator, not a halt
    assert len(sim.open_orders()) == 1


async def test_daily_loss_closes_all_and_resume_waits_for_midnight(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, risk=dict(daily_loss_limit_pct=Decimal("0.3")),
                                monitors=dict(flash_crash_pct=Decimal("50"))))
    await eventually(lambda: engine.stats.current().start_equity is not None, message="day's equity recorded")
    await buy(engine, amount="0.004")
    last = engine.portfolio.last["BTC/USDT"]
    sim.set_price("BTCUSDT", last * Decimal("0.9"))  # ~26 USDT of 10,000: 0.26 %, over 80 % of the limit
    await eventually(lambda: "DAILY_LOSS" in codes(engine), timeout=10, message="WARN at 80 % of the limit")
    assert engine.trading_state == TradingState.ACTIVE
    sim.set_price("BTCUSDT", last * Decimal("0.8"))  # ~52 USDT of 10,000: over 0.3 %
    await tripped(engine, "daily_loss")
    assert Store.in_dir(tmp_path).trading_state()[1]["code"] == "daily_loss"
    await eventually(lambda: sum(sim.balance("BTC")) < Decimal("0.00001"), timeout=10, message="closed at the venue")
    await eventually(lambda: audited(tmp_path, "close-all", "monitor:daily_loss"), message="audited")
    sim.set_price("BTCUSDT", last)
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "until UTC midnight" in refused.message


async def test_flash_crash_halts_and_resume_waits_for_calm(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(flash_calm_s=3.0)))
    sim.faults.inject("flash-crash", percent=15, seconds=0.5, recover=0)
    start = time.monotonic()
    await tripped(engine, "flash_crash")
    print(f"flash crash -> halt {time.monotonic() - start:.2f}s")
    recorded(tmp_path, "flash_crash")
    assert sim.open_orders() == []
    assert engine.state_info["values"]["symbol"] == "BTC/USDT"
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "flash_crash" in refused.message
    await eventually(lambda: engine.monitors.rows["flash_crash"].status.value == "OK", timeout=30,
                     message="calm for flash_calm_s")
    assert (await engine.execute(Resume(actor="operator:key"))).ok


async def test_small_foreign_fill_is_adopted_and_a_large_one_halts_with_the_diff(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(mismatch_warn_pct=Decimal("0.1"),
                                                             mismatch_halt_pct=Decimal("1"))))
    await eventually(lambda: engine.holdings.baseline is not None, message="holdings baseline")
    sim.faults.inject("foreign-fill", symbol="BTCUSDT", side="BUY", qty="0.0005")  # ~0.3 % of equity
    await eventually(lambda: "POSITION_ADOPTED" in codes(engine), timeout=10, message="small difference adopted")
    assert engine.trading_state == TradingState.ACTIVE
    sim.faults.inject("foreign-fill", symbol="BTCUSDT", side="BUY", qty="0.01")  # ~6.5 % of equity
    await tripped(engine, "position_mismatch")
    assert recorded(tmp_path, "position_mismatch")["values"]["asset"] == "BTC"
    (kept,) = engine.holdings.mismatch
    assert kept.asset == "BTC" and kept.diff > Decimal("0.009")
    assert Store.in_dir(tmp_path).load_json("holdings")["mismatch"][0]["asset"] == "BTC"
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "position_mismatch" in refused.message
    from engine.commands import Reconcile

    adopted = await engine.execute(Reconcile(actor="operator:key", adopt=True))
    assert adopted.ok and adopted.details["adopted"][0]["asset"] == "BTC"
    await eventually(lambda: engine.monitors.rows["position_mismatch"].status.value != "CRIT", timeout=5)
    assert (await engine.execute(Resume(actor="operator:key"))).ok


async def test_clock_skew_warns_and_resyncs(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    sim.faults.inject("clock-skew", ms=3000)
    await eventually(lambda: "CLOCK_SKEW" in codes(engine), timeout=10, message="skew WARN")
    await eventually(lambda: engine.venue.ex.options.get("timeDifference"), timeout=10, message="resynced")
    assert (await engine.venue.fetch_balances()) is not None  # signed calls work again
    assert engine.trading_state == TradingState.ACTIVE


async def test_revoked_key_halts_is_never_retried_and_resume_waits(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    fault = sim.faults.inject("key-revoked")
    await tripped(engine, "auth_failure")
    recorded(tmp_path, "auth_failure")
    assert engine.venue.breaker.state.value == "CLOSED"  # permanent: not counted as a blip, never retried
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "auth_failure" in refused.message
    sim.faults.clear(fault)
    await eventually(lambda: engine.monitors.rows["auth_failure"].status.value == "OK", timeout=15)
    assert (await engine.execute(Resume(actor="operator:key"))).ok


async def test_maintenance_halts(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    await buy(engine)
    fault = sim.faults.inject("maintenance")
    await tripped(engine, "maintenance")
    recorded(tmp_path, "maintenance")
    assert sum(sim.balance("BTC")) > Decimal("0.009")  # a halt, not a close: positions are the operator's call
    sim.faults.clear(fault)
    await eventually(lambda: engine.monitors.rows["maintenance"].status.value == "OK", timeout=15)
    closed = await engine.execute(CloseAll(actor="operator:key"))
    assert closed.ok, closed.message


async def test_a_fill_the_streams_missed_is_fetched_and_is_no_mismatch(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(ws_stale_crit_s=60.0, ws_stale_warn_s=30.0)))
    await eventually(lambda: engine.holdings.baseline is not None)
    sim.faults.inject("ws-silence", which="user")
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(PlaceOrder(symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.002"),
                                             price=last * Decimal("0.99"), stop_loss=last * Decimal("0.5")))
    assert placed.ok, placed.message
    (order,) = engine.tracker.open_orders()
    sim.set_price("BTCUSDT", last * Decimal("0.98"))  # fills at the venue; the user stream says nothing
    await eventually(lambda: engine.execution.filled_seen.get(order.client_id) == Decimal("0.002"), timeout=10,
                     message="the fill fetched by reconciliation")
    assert engine.tracker.get(order.client_id).status.value == "FILLED"
    await eventually(lambda: engine.holdings.engine_amount("BTC") > 0)
    for _ in range(3):  # several reconciliations later, still no difference
        await engine.sync.reconcile_all()
    assert engine.holdings.differences() == [] or all(d.pct_of_equity < Decimal("0.01")
                                                      for d in engine.holdings.differences())
    assert "POSITION_ADOPTED" not in codes(engine) and engine.trading_state == TradingState.ACTIVE


async def test_a_stuck_order_is_placed_again_when_configured(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors=dict(stuck_order_reissue=True, stuck_order_s=0.5)))
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(PlaceOrder(symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.001"),
                                             price=last * Decimal("0.9"), stop_loss=last * Decimal("0.5")))
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
        return engine.execute(PlaceOrder(actor="operator:cli a@b", symbol="BTC/USDT", side="buy", type="limit",
                                         amount=amount, price=last * Decimal("0.95"), stop_loss=last * Decimal("0.5")))

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
