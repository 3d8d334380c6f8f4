"""The bus never drops a state change, an alert or an order event, and coalesces only fast data per key;
a periodic loop survives an exception in one tick and reports it once per failing episode."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from engine.api.inbox import build_command
from engine.kernel.bus import EventBus
from engine.kernel.commands import CloseAll, PlaceOrder
from engine.kernel.events import (
    Alert,
    AlertRaised,
    BalancesUpdated,
    Severity,
    TickerUpdated,
    TradingState,
    TradingStateChanged,
)
from engine.kernel.tasks import Periodic

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ticker(symbol: str, last: str) -> TickerUpdated:
    return TickerUpdated(symbol, Decimal(last), None, None, NOW)


async def test_a_reader_far_behind_still_gets_every_state_change_and_alert_in_order():
    bus = EventBus()
    sub = bus.subscribe()
    for i in range(50_000):
        bus.publish(ticker("BTC/USDT", str(i)))
        bus.publish(ticker("ETH/USDT", str(i)))
        if i == 20_000:
            bus.publish(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "monitor:ws_stale", "stale"))
            bus.publish(AlertRaised(Alert(Severity.CRIT, "TRADING_HALTED", "halted")))
    got = []
    while (event := sub.get_nowait()) is not None:
        got.append(event)
    kinds = [type(e).__name__ for e in got]
    assert kinds == ["TickerUpdated", "TickerUpdated", "TradingStateChanged", "AlertRaised"]
    # Coalesced in place, per key: each symbol's newest price, at its first undelivered position.
    assert [(e.symbol, e.last) for e in got[:2]] == [("BTC/USDT", Decimal("49999")), ("ETH/USDT", Decimal("49999"))]
    assert sub.coalesced == 2 * 50_000 - 2


async def test_coalescing_is_per_key_and_never_across_kinds():
    bus = EventBus()
    sub = bus.subscribe()
    bus.publish(BalancesUpdated(()))
    bus.publish(ticker("BTC/USDT", "1"))
    bus.publish(BalancesUpdated(()))
    assert sub.pending() == 2
    assert isinstance(await sub.get(), BalancesUpdated)
    assert (await sub.get()).last == Decimal("1")
    bus.publish(ticker("BTC/USDT", "2"))  # after delivery, a new slot
    assert (await sub.get()).last == Decimal("2")


async def test_get_waits_for_the_next_event():
    bus = EventBus()
    sub = bus.subscribe()
    waiter = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    bus.publish(AlertRaised(Alert(Severity.INFO, "X", "y")))
    assert (await asyncio.wait_for(waiter, 1)).alert.code == "X"


async def test_a_failing_tick_is_reported_once_per_episode_and_the_loop_goes_on():
    failures, recoveries, ticks = [], [], []

    def tick():
        ticks.append(1)
        if len(ticks) in (2, 3, 4):
            raise ValueError(f"bad tick {len(ticks)}")

    loop = Periodic("watch", tick, 0, on_failure=lambda n, e: failures.append(str(e)), on_recovery=recoveries.append)
    results = [await loop.run_once() for _ in range(6)]
    assert results == [True, False, False, False, True, True]
    assert failures == ["bad tick 2"] and recoveries == ["watch"] and loop.failures == 3


async def test_a_cancelled_tick_is_not_a_failure():
    async def tick():
        raise asyncio.CancelledError

    loop = Periodic("watch", tick, 0, on_failure=lambda n, e: pytest.fail("reported"))
    with pytest.raises(asyncio.CancelledError):
        await loop.run_once()


def test_commands_from_other_shells_are_built_from_the_registry_and_checked():
    order = build_command(
        "order", "operator:cli a@b", "why", {"symbol": "BTC/USDT", "side": "buy", "amount": "0.01", "price": None}
    )
    assert isinstance(order, PlaceOrder) and order.amount == Decimal("0.01") and order.price is None
    assert isinstance(build_command("close-all", "operator:cli a@b", "", {}), CloseAll)
    with pytest.raises(ValueError, match="takes no argument 'symbol'"):
        build_command("close-all", "x", "", {"symbol": "BTC/USDT"})
    with pytest.raises(ValueError, match="amount must be a number"):
        build_command("order", "x", "", {"amount": "lots"})
    with pytest.raises(ValueError, match="unknown command"):
        build_command("flatten-everything", "x", "", {})
    assert order.args() == {
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "amount": Decimal("0.01"),
        "price": None,
        "stop_loss": None,
        "take_profit": None,
    }
