"""Every resilience, risk and mode path of the engine, through the real simulator and its faults."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from eventually import eventually
from fastsim import FAST

from engine.core.engine import Engine, EngineError
from engine.kernel.commands import PlaceOrder, SetStrategy
from engine.kernel.config import EngineConfig, MonitorsConfig, RiskConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import RoundTripClosed, TradingState
from engine.store.db import Store
from engine.venue.resilience import BreakerState, CircuitOpen


def settings(
    sim, tmp_path, *, venue=None, risk=None, engine=None, strategy=False, mode="paper", monitors_cfg=None
) -> Settings:
    return Settings(
        venue=VenueConfig(
            exchange="binance",
            rest_url=sim.rest_url,
            ws_url=sim.ws_url,
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            **{"timeout_ms": 1000, **FAST, **(venue or {})},
        ),
        engine=EngineConfig(data_dir=tmp_path, mode=mode, **(engine or {})),
        risk=RiskConfig(**(risk or {})),
        monitors=MonitorsConfig(**(monitors_cfg or {})),
        strategy=StrategyConfig(enabled=strategy, interval_s=0.2),
    )


def alerts(engine, code):
    return [a for a in engine.alert_book.recent if a.code == code]


async def test_timeout_after_send_never_duplicates_the_order(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    last = engine.portfolio.last["BTC/USDT"]
    sim.faults.inject("accept-then-hang", seconds=3, path="/api/v3/order", method="POST", count=1)
    result = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.95"),
            stop_loss=last * Decimal("0.9"),
        )
    )
    assert result.ok and "found by client id" in result.message, result.message
    (order,) = engine.tracker.all()
    venue_orders = sim.open_orders("BTCUSDT")
    assert [o["clientOrderId"] for o in venue_orders] == [order.client_id]
    events = Store.in_dir(tmp_path).order_events(order.client_id)
    assert [e["status"] for e in events][:2] == ["NEW", "OPEN"]


async def test_send_that_never_arrived_is_marked_rejected(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    sim.faults.inject("hang", seconds=2, path="/api/v3/order", method="POST", count=1)
    last = engine.portfolio.last["BTC/USDT"]
    result = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.95"),
            stop_loss=last * Decimal("0.9"),
        )
    )
    assert not result.ok and "not placed" in result.message
    assert engine.tracker.all()[0].status.value == "REJECTED"
    assert sim.open_orders() == []


async def test_idempotent_calls_retry_temporary_errors(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    before = engine.stats.current().rest_errors
    sim.faults.inject("http-status", status=503, path="/api/v3/account", count=2)
    await engine.execution.refresh_balances()  # succeeds on the third try
    assert engine.stats.current().rest_errors - before == 2


async def test_breaker_opens_then_probes_closed(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, venue=dict(breaker_failures=3, breaker_cooldown_s=0.5)))
    fault = sim.faults.inject("http-status", status=502, path="/api/v3/account")
    with pytest.raises(Exception):
        await engine.execution.refresh_balances()
    assert engine.venue.breaker.state == BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        await engine.venue.fetch_balances()
    assert alerts(engine, "BREAKER_OPEN")
    sim.faults.clear(fault)
    await eventually(
        lambda: (
            engine.venue.breaker.state != BreakerState.OPEN
            or engine.venue.breaker.clock() - engine.venue.breaker.opened_at > 0.5
        ),
        timeout=5,
    )
    await engine.execution.refresh_balances()
    assert engine.venue.breaker.state == BreakerState.CLOSED


async def test_rest_polling_keeps_prices_fresh_while_streams_are_down(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    await eventually(lambda: engine.sync.market_data_age_s() is not None, message="ticker stream up")
    sim.faults.inject("ws-refuse")
    sim.faults.inject("ws-drop")
    await eventually(lambda: engine.sync.polling, timeout=10, message="REST polling started")
    sim.pause_feed()
    moved = sim.set_price("BTCUSDT", sim.price("BTCUSDT") * Decimal("1.05"))
    await eventually(
        lambda: engine.portfolio.last["BTC/USDT"] == moved, timeout=10, message="price followed by REST polling"
    )
    assert alerts(engine, "WS_DOWN")
    sim.faults.clear()
    sim.resume_feed()
    await eventually(lambda: not engine.sync.stream_down, timeout=20, message="streams reconnected")
    assert engine.stats.current().ws_reconnects >= 1


async def test_stop_loss_is_enforced(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    last = engine.portfolio.last["ETH/USDT"]
    result = await engine.execute(
        PlaceOrder(
            symbol="ETH/USDT", side="buy", type="market", amount=Decimal("0.05"), stop_loss=last * Decimal("0.97")
        )
    )
    assert result.ok, result.message
    await eventually(lambda: any(p.symbol == "ETH/USDT" for p in engine.portfolio.positions()))
    sim.set_price("ETHUSDT", last * Decimal("0.95"))
    await eventually(lambda: alerts(engine, "STOP_LOSS"), timeout=10, message="stop-loss fired")
    await eventually(lambda: engine.portfolio.free("ETH") < Decimal("0.0001"), timeout=10, message="position sold")
    assert any(o.origin == "stop:ETH/USDT" and o.side == "sell" for o in engine.tracker.all())
    # The venue stop placed as the entry filled is refused (the price is already through it) while the exit frees
    # the position: a stop the venue never acknowledged holds nothing back, so the exit goes at once, not on a retry.
    assert not alerts(engine, "STOP_LOSS_FAILED"), alerts(engine, "STOP_LOSS_FAILED")


async def test_risk_refusals_reach_the_caller(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    last = engine.portfolio.last["BTC/USDT"]
    no_stop = await engine.execute(PlaceOrder(symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001")))
    assert not no_stop.ok and "stop-loss is required" in no_stop.message
    too_big = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.01"), stop_loss=last * Decimal("0.9")
        )
    )
    assert not too_big.ok and "max_position_pct" in too_big.message
    assert sim.open_orders() == [] and engine.tracker.all() == []


async def test_dry_run_sends_nothing(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, mode="dry-run"))
    last = engine.portfolio.last["BTC/USDT"]
    result = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.9"),
            stop_loss=last * Decimal("0.8"),
        )
    )
    assert result.ok and result.message.startswith("dry-run: would place buy")
    assert sim.open_orders() == [] and engine.tracker.all() == []


async def test_losing_streak_disables_a_strategy_and_operator_reenables(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, strategy=True))
    now = datetime.now(UTC)
    for _ in range(3):
        engine.bus.publish(RoundTripClosed("BTC/USDT", Decimal("-1"), "strategy:ladder", now))
    assert not engine.runner.guard.is_enabled("ladder", now)
    assert alerts(engine, "STRATEGY_DISABLED")
    result = await engine.execute(SetStrategy(strategy="ladder", enabled=True))
    assert result.ok and engine.runner.guard.is_enabled("ladder", now)
    bad = await engine.execute(SetStrategy(strategy="nope", enabled=False))
    assert not bad.ok and "ladder" in bad.message


async def test_kill_switch_toggle_starts_halted(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, risk=dict(kill_switch=True)))
    assert engine.trading_state == TradingState.HALTED
    assert engine.state_info["actor"] == "config:kill_switch"


async def test_live_needs_config_and_confirmation(tmp_path):
    engine = Engine(Settings(engine=EngineConfig(data_dir=tmp_path, mode="live")))
    with pytest.raises(EngineError, match="--confirm-live"):
        await engine.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env["COCKPIT_ENGINE__MODE"] = "live"
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cockpit.cli", "run", "--headless", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "COCKPIT_CONFIRM_LIVE=1" in out.stderr


def test_headless_run_logs_json_and_stops_on_signal(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cockpit.cli", "run", "--headless", "--data-dir", str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        import json
        import threading

        seen: list[dict] = []
        connected = threading.Event()

        def read() -> None:
            for line in proc.stderr:
                seen.append(json.loads(line))
                if "venue connected" in seen[-1]["msg"]:
                    connected.set()

        threading.Thread(target=read, daemon=True).start()
        assert connected.wait(timeout=30), f"no 'venue connected' line in {seen}"
        assert all({"ts", "level", "logger", "msg"} <= record.keys() for record in seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_reduce_only_refuses_entries_allows_exits(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    last = engine.portfolio.last["ETH/USDT"]
    await engine.execute(
        PlaceOrder(
            symbol="ETH/USDT", side="buy", type="market", amount=Decimal("0.05"), stop_loss=last * Decimal("0.5")
        )
    )
    await eventually(lambda: engine.portfolio.free("ETH") > 0)
    from engine.kernel.commands import ReduceOnly

    assert (await engine.execute(ReduceOnly(reason="test"))).ok
    buy = await engine.execute(
        PlaceOrder(
            symbol="ETH/USDT", side="buy", type="market", amount=Decimal("0.01"), stop_loss=last * Decimal("0.5")
        )
    )
    assert not buy.ok and "REDUCE_ONLY" in buy.message
    sell = await engine.execution.exit_position("ETH/USDT", "operator", "test")
    assert sell.ok, sell.message


async def test_mean_reversion_trades_a_round_trip_through_the_venue(sim, tmp_path, run):
    from engine.kernel.config import LadderConfig, MeanReversionConfig

    sim.pause_feed()
    s = settings(sim, tmp_path)
    s = s.model_copy(
        update={
            "strategy": StrategyConfig(
                enabled=True,
                interval_s=0.05,
                ladder=LadderConfig(enabled=False),
                mean_reversion=MeanReversionConfig(
                    enabled=True,
                    window=5,
                    entry_z=Decimal("1.5"),
                    exit_z=Decimal("0.5"),
                    order_quote=Decimal("100"),
                    stop_loss_pct=Decimal("5"),
                ),
            )
        }
    )
    engine = await run(s)
    base = sim.price("BTCUSDT")
    await eventually(lambda: len(engine.runner.closes["BTC/USDT"]) >= 5, message="a window of flat prices")
    # A flat window (no deviation: no signal), then a 3% dip: z = -2 with these five samples.
    sim.set_price("BTCUSDT", base * Decimal("0.97"))
    await eventually(
        lambda: any(
            o.origin == "strategy:mean_reversion" and o.side == "buy" and o.status.value == "FILLED"
            for o in engine.tracker.all()
        ),
        timeout=10,
        message="entry on the dip",
    )
    assert engine.execution.stops["BTC/USDT"] < base * Decimal("0.97")
    sim.set_price("BTCUSDT", base)
    await eventually(
        lambda: any(
            o.origin == "strategy:mean_reversion" and o.side == "sell" and o.status.value == "FILLED"
            for o in engine.tracker.all()
        ),
        timeout=10,
        message="exit back at the mean",
    )
    await eventually(lambda: engine.stats.current().winning_trades == 1, message="a winning round trip")
    assert engine.runner.guard.status("mean_reversion", datetime.now(UTC))["consecutive_losses"] == 0


async def test_stop_loss_cancels_the_take_profit_then_sells_everything(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    last = engine.portfolio.last["ETH/USDT"]
    await engine.execute(
        PlaceOrder(
            symbol="ETH/USDT", side="buy", type="market", amount=Decimal("0.05"), stop_loss=last * Decimal("0.97")
        )
    )
    await eventually(lambda: engine.portfolio.free("ETH") > 0)
    free = engine.portfolio.free("ETH")
    take_profit = await engine.execute(
        PlaceOrder(symbol="ETH/USDT", side="sell", type="limit", amount=free, price=last * Decimal("1.05"))
    )
    assert take_profit.ok, take_profit.message
    await eventually(lambda: engine.portfolio.free("ETH") < Decimal("0.0001"), message="base locked in the sell")
    sim.set_price("ETHUSDT", last * Decimal("0.95"))
    await eventually(lambda: engine.portfolio.positions() == (), timeout=10, message="whole position sold")
    assert len(alerts(engine, "STOP_LOSS")) == 1
    assert not alerts(engine, "TASK_CRASHED") and not alerts(engine, "STOP_LOSS_FAILED")
    assert sim.open_orders() == []


async def test_reconcile_leaves_an_order_in_flight_alone(sim, tmp_path, run):
    import asyncio

    engine = await run(settings(sim, tmp_path, venue=dict(timeout_ms=5000)))
    last = engine.portfolio.last["BTC/USDT"]
    sim.faults.inject("latency", ms=1500, path="/api/v3/order", method="POST", count=1)
    placing = asyncio.ensure_future(
        engine.execute(
            PlaceOrder(
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.001"),
                price=last * Decimal("0.95"),
                stop_loss=last * Decimal("0.9"),
            )
        )
    )
    await eventually(lambda: engine.execution.in_flight, message="order in flight")
    await engine.sync.reconcile()
    result = await placing
    assert result.ok, result.message
    (order,) = engine.tracker.all()
    assert order.status.value == "OPEN"
    await engine.sync.reconcile()
    assert engine.tracker.get(order.client_id).status.value == "OPEN"


async def test_open_breaker_refuses_before_anything_is_stored(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, venue=dict(breaker_failures=1, breaker_cooldown_s=60)))
    sim.faults.inject("http-status", status=502, path="/api/v3/account")
    with pytest.raises(Exception):
        await engine.execution.refresh_balances()
    assert not engine.connected
    last = engine.portfolio.last["BTC/USDT"]
    result = await engine.execute(PlaceOrder(symbol="BTC/USDT", side="sell", type="market", amount=Decimal("0.001")))
    assert not result.ok and ("circuit breaker" in result.message or "not connected" in result.message)
    assert engine.tracker.all() == [] and not alerts(engine, "ORDER_UNKNOWN_STATE")
    assert last  # prices were known; the refusal is the breaker's


def test_headless_run_with_unknown_symbols_exits_with_an_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env["COCKPIT_VENUE__SYMBOLS"] = '["DOGE/USDT"]'
    out = subprocess.run(
        [sys.executable, "-m", "cockpit.cli", "run", "--headless", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "DOGE/USDT" in out.stderr and "not traded" in out.stderr


async def test_periodic_reconciliation_heals_a_silently_ended_user_stream(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path, monitors_cfg=dict(reconcile_s=0.3)))
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.9"),
            stop_loss=last * Decimal("0.8"),
        )
    )
    assert placed.ok, placed.message
    sim.faults.inject("user-stream-end")
    sim.faults.inject("balance-change", asset="USDT", delta=Decimal("-1000"))
    (order,) = engine.tracker.open_orders()
    sim.set_price("BTCUSDT", last * Decimal("0.85"))  # fills the resting buy at the venue
    await eventually(
        lambda: engine.tracker.get(order.client_id).status.value == "FILLED",
        timeout=10,
        message="fill learned by reconciliation",
    )
    await eventually(
        lambda: engine.portfolio.balances["USDT"].total == sim.balance("USDT")[0] + sim.balance("USDT")[1],
        timeout=10,
        message="balances follow the venue",
    )
    # The fill itself too, from the venue's trades (myTrades): the stream that would have brought it is dead.
    await eventually(
        lambda: [f for f in Store.in_dir(tmp_path).fills() if f["client_id"] == order.client_id],
        timeout=10,
        message="the fill fetched by reconciliation and stored",
    )


async def test_duplicate_and_reordered_reports_change_nothing(sim, tmp_path, run):
    engine = await run(settings(sim, tmp_path))
    await eventually(lambda: engine.venue.user_stream_connected(), message="user stream up")
    sim.faults.inject("reorder-reports", count=2)
    sim.faults.inject("duplicate-report", count=2)
    last = engine.portfolio.last["ETH/USDT"]
    result = await engine.execute(
        PlaceOrder(
            symbol="ETH/USDT", side="buy", type="market", amount=Decimal("0.02"), stop_loss=last * Decimal("0.9")
        )
    )
    assert result.ok, result.message
    (order,) = engine.tracker.all()
    await eventually(lambda: engine.stats.current().trades_count >= 1)
    assert engine.tracker.get(order.client_id).status.value == "FILLED"
    fills = Store.in_dir(tmp_path).fills()
    assert len({f["trade_id"] for f in fills}) == len(fills) == engine.stats.current().trades_count
    assert not alerts(engine, "ORDER_ILLEGAL_TRANSITION")


async def test_missed_fills_are_read_page_after_page_until_none_is_missing(sim, tmp_path, run, monkeypatch):
    """myTrades answers a page counted forward from the oldest lagging order: with more than a page of trades
    since then, the missing fill is on a later page (the soak lost 22 fills this way)."""
    from engine.trading import sync as venue_sync

    monkeypatch.setattr(venue_sync, "TRADES_PAGE", 2)  # a page of 2 instead of 500: the same reading, smaller
    engine = await run(settings(sim, tmp_path, monitors_cfg=dict(reconcile_s=0.3)))
    await eventually(lambda: engine.venue.user_stream_connected(), message="user stream up")
    last = engine.portfolio.last["BTC/USDT"]
    for _ in range(3):  # three trades the engine knows, in the second before the one it will miss
        done = await engine.execute(
            PlaceOrder(
                symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001"), stop_loss=last * Decimal("0.8")
            )
        )
        assert done.ok, done.message
    sim.faults.inject("user-stream-end")
    placed = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.95"),
            stop_loss=last * Decimal("0.8"),
        )
    )
    assert placed.ok, placed.message
    (order,) = [o for o in engine.tracker.open_orders() if o.type == "limit"]  # beside the position's stop
    sim.set_price("BTCUSDT", last * Decimal("0.9"))  # fills the resting buy at the venue; the stream is dead
    await eventually(
        lambda: [f for f in Store.in_dir(tmp_path).fills() if f["client_id"] == order.client_id],
        timeout=10,
        message="the missed fill read from a later page and stored",
    )
    assert len(Store.in_dir(tmp_path).fills()) == 4
