"""Runbook scenarios of the REST API: a 429 storm, a 503/504 storm (with a 5xx that hides a placed order), high
latency, clock skew, a revoked key and maintenance."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from eventually import eventually
from runbook import (
    MON,
    afterwards,
    audited,
    buy,
    codes,
    first_alert,
    resting_buy,
    settings,
    tripped,
)

from engine.kernel.commands import CancelOrder, PlaceOrder, Resume
from engine.kernel.events import TradingState
from engine.store.db import Store


async def test_429_storm_waits_out_every_retry_after_is_never_banned_and_pauses_orders(sim, tmp_path, run, stopwatch):
    """Runbook 001 §2 "REST API Errors (4xx/5xx)": 429 Too Many Requests, "Solution: Reduce order frequency ...
    Wait for recovery"; the Incident Response Playbook (001 §3): rate limiting is backed off and WARNed, a ban halts.
    The venue answers 429 with a Retry-After to every call, three times, and (as Binance does) bans with 418 a client
    that sends more than two requests before a Retry-After has passed. The engine waits out each Retry-After
    venue-wide (an order waiting too: orders pause), is never banned, says RATE_LIMIT_BAN at WARN, and trading stays
    ACTIVE: a 429 is the venue asking to slow down, not a REST error (issue 19: two of them used to halt)."""
    engine = await run(settings(sim, tmp_path, venue=dict(breaker_cooldown_s=1.0)))
    await buy(engine)
    watch = stopwatch(
        "001 §2 (429), 001 §3 rate limiting: back off and WARN",
        f"Retry-After waited out; {MON['rest_errors_max']} REST errors in {MON['rest_errors_window_s']:g} s would halt",
    )
    fault = sim.faults.inject("http-status", status=429, retry_after=1, ban_after=2, count=3, code=-1003)
    watch.fault("three 429s with Retry-After 1 s (418 for a client that does not wait)")
    await eventually(lambda: engine.venue_health.paused_for() > 0, timeout=5, message="the first 429 pauses")
    watch.mark("every request paused for Retry-After")
    last = engine.portfolio.last["BTC/USDT"]
    waiting = asyncio.ensure_future(
        engine.execute(
            PlaceOrder(
                actor="operator:key",
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                amount=Decimal("0.001"),
                price=last * Decimal("0.9"),
                stop_loss=last * Decimal("0.5"),
            )
        )
    )
    await eventually(lambda: "RATE_LIMIT_BAN" in codes(engine), timeout=5, message="RATE_LIMIT_BAN WARN")
    watch.mark("RATE_LIMIT_BAN WARN (backing off)", first_alert(tmp_path, "RATE_LIMIT_BAN"))
    late = await waiting
    # It waited out the Retry-After; the venue then placed it, or answered its own 429 (not sent, nothing placed).
    assert late.ok or "not sent" in late.message, late.message
    await eventually(lambda: not sim.faults.get(fault).active, timeout=20, message="the storm is over")
    watch.mark("storm over: 3 x 429 waited out, still ACTIVE")
    assert sim.limiter.bans == 0, "the venue banned the engine: it did not wait out a Retry-After"
    # The rate-limit monitor said WARN (paused), never CRIT (banned); the 429s were no REST errors.
    assert {a.severity.value for a in engine.alert_book.recent if a.code == "RATE_LIMIT_BAN"} == {"WARN"}
    assert engine.venue_health.banned_for() == 0 and engine.venue_health.recent_errors() == []
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["RATE_LIMIT_BAN"],
        absent=["TRADING_HALTED", "REST_ERRORS"],
        btc_at_least=Decimal("0.0099"),
        kill_switch_by="",
    )


async def test_503_504_storm_halts_backs_off_and_a_5xx_that_hid_a_placed_order_is_not_placed_twice(
    sim, tmp_path, run, stopwatch
):
    """Runbook 001 §2: 503 Service Unavailable, 504 Gateway Timeout: "PAUSE ORDERS (automatic)", "DO NOT retry
    immediately"; 000 §3 "REST Errors": "Auto-remediation: Exponential backoff"; 003 "Exchange API Down": "Circuit
    breaker will trip after repeated failures, pausing API calls". First a gateway answers 503 to an order the venue
    DID place: the engine asks by client id and tracks the one order, never sends it again. Then every call
    answers 503 (the ping 504): the engine halts, the circuit breaker opens and the calls thin out."""
    engine = await run(settings(sim, tmp_path, venue=dict(breaker_failures=3, breaker_cooldown_s=1.0)))
    await buy(engine)
    sim.faults.inject("accept-then-hang", seconds=0, status=503, path="/api/v3/order", method="POST", count=1)
    last = engine.portfolio.last["BTC/USDT"]
    placed = await engine.execute(
        PlaceOrder(
            actor="operator:key",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=last * Decimal("0.9"),
            stop_loss=last * Decimal("0.5"),
        )
    )
    assert placed.ok and "found by client id after ExchangeNotAvailable" in placed.message, placed.message
    (order,) = [o for o in engine.tracker.all() if o.type == "limit"]
    placed = [o["clientOrderId"] for o in sim.open_orders() if not o["clientOrderId"].startswith("cs-")]
    assert placed == [order.client_id]  # placed once, at the venue (beside the position's protective stop)
    stored = Store.in_dir(tmp_path, readonly=True).orders(open_only=True)
    assert [o.client_id for o in stored if not o.client_id.startswith("cs-")] == [order.client_id]

    watch = stopwatch(
        "001 §2 (503/504), 000 §3, 003 Exchange API Down",
        f"{MON['rest_errors_max']} errors in {MON['rest_errors_window_s']:g} s; breaker 3 failures",
    )
    storm = [
        sim.faults.inject("http-status", status=504, path="/api/v3/time"),
        sim.faults.inject("http-status", status=503),
    ]
    watch.fault("every REST call 503, the ping 504")
    watch.mark("HALTED by rest_errors", await tripped(engine, "rest_errors"))
    await eventually(lambda: "BREAKER_OPEN" in codes(engine), timeout=10, message="the breaker opens")
    watch.mark("circuit breaker OPEN (calls suspended)", first_alert(tmp_path, "BREAKER_OPEN"))
    # Backing off: with the breaker open, calls reach the venue only as the breaker's probe and the ping.
    before = sum(sim.faults.get(f).hits for f in storm)
    window_start = asyncio.get_running_loop().time()
    await eventually(lambda: asyncio.get_running_loop().time() - window_start > 2.0, timeout=5)
    calls = sum(sim.faults.get(f).hits for f in storm) - before
    # Without backing off, the ping (every 0.2 s), reconciliation (0.3 s) and REST polling (0.1 s) alone would make
    # over 20 calls in 2 s; the breaker lets one probe through per cool-down.
    assert calls <= 6, f"{calls} calls in 2 s during the storm: no backing off"
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "rest_errors" in refused.message
    for f in storm:
        sim.faults.clear(f)
    await eventually(lambda: engine.monitors.rows["rest_errors"].status.value == "OK", timeout=15)
    await engine.sync.reconcile_all()
    placed = [o["clientOrderId"] for o in sim.open_orders() if not o["clientOrderId"].startswith("cs-")]
    assert placed == [order.client_id]  # still once after the storm
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["BREAKER_OPEN", "TRADING_HALTED"],
        open_orders=1,
        btc_at_least=Decimal("0.0099"),
        audit=[("halt", "monitor:rest_errors")],
        kill_switch_by="monitor:rest_errors",
    )
    assert (await engine.execute(Resume(actor="operator:key", reason="venue back"))).ok


async def test_latency_over_2s_warns_only(sim, tmp_path, run, stopwatch):
    """Runbook 000 §3 "WARNING: High Latency (> 2s)": "Auto-remediation: None (alert only)"; 001 §3 "High Latency
    (> 2s)": Severity WARNING. With the threshold at 150 ms every answer is delayed 400 ms: a REST_LATENCY WARN,
    and nothing else happens: trading stays ACTIVE, the order rests, the position stays."""
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_latency_warn_ms=150.0, rest_errors_max=50)))
    await buy(engine)
    await resting_buy(engine)
    watch = stopwatch("000 §3 High Latency, 001 §3", "p95 150 ms (runbook 2 s)")
    sim.faults.inject("latency", ms=400)
    watch.fault("every REST answer 400 ms late")
    await eventually(lambda: "REST_LATENCY" in codes(engine), timeout=15, message="latency WARN")
    watch.mark("REST_LATENCY WARN", first_alert(tmp_path, "REST_LATENCY"))
    assert first_alert(tmp_path, "REST_LATENCY")["severity"] == "WARN"
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["REST_LATENCY"],
        absent=["TRADING_HALTED"],
        open_orders=1,
        btc_at_least=Decimal("0.0099"),
        kill_switch_by="",
    )


async def test_clock_skew_warns_resyncs_and_signed_calls_work_again(sim, tmp_path, run, stopwatch):
    """Runbook 002 "API Authentication Failures": "Verify system time sync"; "After Network Outage": "1. Check system
    time sync". The venue's clock moves 15 s ahead, so signed calls are refused (-1021: older than ccxt's 10 s
    recvWindow): a CLOCK_SKEW WARN, the engine takes the venue's time offset, signed calls and orders work again; no
    kill switch. Then the skew ends: the offset the engine signs with must follow the venue back (a stale one stamps
    calls 15 s ahead of the venue, refused too, the kill switch's included: the soak's fail-open), and an order
    and its cancel work again at once; still no halt."""
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    await buy(engine)
    watch = stopwatch("002 API Authentication Failures / time sync", "skew 500 ms")
    fault = sim.faults.inject("clock-skew", ms=15_000)
    watch.fault("venue clock 15 s ahead")
    await eventually(lambda: "CLOCK_SKEW" in codes(engine), timeout=10, message="skew WARN")
    watch.mark("CLOCK_SKEW WARN (signing with the venue's clock)", first_alert(tmp_path, "CLOCK_SKEW"))
    await eventually(lambda: engine.venue.ex.options.get("timeDifference"), timeout=10, message="resynced")
    watch.mark("time offset taken from the venue")
    assert 14_500 < engine.venue_health.offset_ms < 15_500
    assert (await engine.venue.fetch_balances()) is not None  # signed calls work again
    await resting_buy(engine)

    sim.faults.clear(fault)
    watch.fault("skew over: the venue clock back on ours")
    # At once, within a bound: the first try may be refused (-1021) under the stale offset; it resyncs and is sent
    # once more. Never minutes of refusals.
    placed = await asyncio.wait_for(resting_buy(engine), timeout=5)
    watch.mark("signed calls work again: an order placed")
    await eventually(
        lambda: abs(engine.venue_health.offset_ms) < 500, timeout=5, message="the offset follows the venue back"
    )
    watch.mark("time offset back on the venue's clock")
    cancelled = await asyncio.wait_for(engine.execute(CancelOrder(actor="operator:key", client_id=placed)), 5)
    assert cancelled.ok, cancelled.message
    assert engine.venue_health.recent_timestamp_refusals() == []  # every refusal was cured by its resync
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["CLOCK_SKEW"],
        absent=["TRADING_HALTED"],
        open_orders=1,
        btc_at_least=Decimal("0.0099"),
        kill_switch_by="",
    )


async def test_signed_calls_refused_after_every_resync_halt_instead_of_staying_active(sim, tmp_path, run, stopwatch):
    """Runbook 001 §2 "REST API Errors (4xx/5xx)": "≥ 2 errors in 1 min -> PAUSE ORDERS (automatic)"; 002 "API
    Authentication Failures": "Verify system time sync". The venue checks signatures against a clock 3 s behind while
    its /time still answers the old one, so no resync can help: every signed call is stamped 3 s ahead of the
    venue and refused (-1021), the kill switch's too. Fail closed: the engine halts by clock_skew (CRIT, in the
    audit trail as the monitor) instead of sitting ACTIVE, refuses resume while refusals go on, and once the
    venue's clocks agree again, resume works and so do orders."""
    engine = await run(settings(sim, tmp_path))
    await buy(engine)
    watch = stopwatch(
        "001 §2 REST API Errors, 002 time sync",
        f"{MON['rest_errors_max']} refusals (-1021) after a resync in {MON['rest_errors_window_s']:g} s",
    )
    fault = sim.faults.inject("clock-skew", ms=-3000, time_shows=False)
    watch.fault("signatures checked against a clock 3 s behind; /time shows the old one")
    watch.mark("HALTED by clock_skew (orders paused)", await tripped(engine, "clock_skew"))
    assert engine.monitors.rows["clock_skew"].status.value == "CRIT"
    assert "-1021" in engine.state_info["reason"] and "time sync" in engine.state_info["reason"]  # says so
    refused = await engine.execute(Resume(actor="operator:key", reason="while refusals go on"))
    assert not refused.ok and "clock_skew" in refused.message, refused.message
    sim.faults.clear(fault)
    watch.fault("the venue's clocks agree again")
    await eventually(
        lambda: engine.monitors.rows["clock_skew"].status.value == "OK",
        timeout=10,
        message="refusals aged out of the window",
    )
    assert (await engine.execute(Resume(actor="operator:key", reason="clock fixed"))).ok
    await resting_buy(engine)
    watch.mark("resumed; orders work")
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.ACTIVE,
        alerts=["TRADING_HALTED"],
        open_orders=1,
        btc_at_least=Decimal("0.0099"),
        audit=[("halt", "monitor:clock_skew"), ("resume", "operator:key")],
        kill_switch_by="monitor:clock_skew",
    )


async def test_revoked_key_halts_is_never_retried_and_resume_waits_for_a_working_key(sim, tmp_path, run, stopwatch):
    """Runbook 002 "Issue: API Authentication Failures" (401/403, "unauthorized"): verify credentials, regenerate
    the key. The key is revoked at the venue: the engine halts (auth_failure), never retries the refused calls as
    blips (the breaker stays CLOSED), keeps the position for the operator, and refuses resume until a private call
    succeeds again."""
    engine = await run(settings(sim, tmp_path))
    await buy(engine)
    watch = stopwatch("002 API Authentication Failures", f"{MON['interval_s']:g} s readings, 2 to confirm")
    fault = sim.faults.inject("key-revoked")
    watch.fault("API key revoked")
    watch.mark("HALTED by auth_failure", await tripped(engine, "auth_failure"))
    assert engine.venue.breaker.state.value == "CLOSED"  # permanent: not counted as a blip, never retried
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "auth_failure" in refused.message
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["TRADING_HALTED"],
        btc_at_least=Decimal("0.0099"),
        audit=[("halt", "monitor:auth_failure")],
        kill_switch_by="monitor:auth_failure",
    )
    sim.faults.clear(fault)
    await eventually(lambda: engine.monitors.rows["auth_failure"].status.value == "OK", timeout=15)
    assert (await engine.execute(Resume(actor="operator:key", reason="key works again"))).ok


async def test_maintenance_halts_keeps_positions_and_resume_waits_for_the_venue(sim, tmp_path, run, stopwatch):
    """Runbook 002 "Maintenance Windows": "Avoid trading during maintenance windows", "Verify connectivity after
    maintenance"; 003 "Exchange API Down": "No new trades will be placed", "Existing positions remain". The venue
    answers "System is under maintenance" to every call: HALTED (never retried as a blip), the position and the
    resting order stay, resume is refused until the venue answers again."""
    engine = await run(settings(sim, tmp_path, monitors=dict(rest_errors_max=50)))
    await buy(engine)
    await resting_buy(engine)
    watch = stopwatch("002 Maintenance Windows, 003 Exchange API Down", "2 readings to confirm")
    fault = sim.faults.inject("maintenance")
    watch.fault("venue in maintenance")
    watch.mark("HALTED by maintenance", await tripped(engine, "maintenance"))
    refused = await engine.execute(Resume(actor="operator:key"))
    assert not refused.ok and "maintenance" in refused.message
    afterwards(
        engine,
        sim,
        tmp_path,
        state=TradingState.HALTED,
        alerts=["TRADING_HALTED"],
        open_orders=1,
        btc_at_least=Decimal("0.0099"),
        audit=[("halt", "monitor:maintenance")],
        kill_switch_by="monitor:maintenance",
    )
    sim.faults.clear(fault)
    await eventually(lambda: engine.monitors.rows["maintenance"].status.value == "OK", timeout=15)
    assert (await engine.execute(Resume(actor="operator:key", reason="maintenance over"))).ok
    assert audited(tmp_path, "resume", "operator:key")[-1]["ok"]
