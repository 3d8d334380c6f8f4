"""The SQLite store writes what the bus publishes and gives it back after a restart."""

import asyncio
from decimal import Decimal

from eventually import eventually

from engine.kernel.bus import EventBus
from engine.kernel.events import (
    Alert,
    AlertRaised,
    Balance,
    BalancesUpdated,
    OrderStatus,
    Severity,
    TradingState,
    TradingStateChanged,
)
from engine.store.db import Store
from engine.trading.orders import OrderTracker


def test_orders_state_and_balances_survive_reopen(tmp_path):
    store = Store.in_dir(tmp_path)
    bus = EventBus()
    bus.add_handler(store.handle)
    tracker = OrderTracker(bus)
    order = tracker.create("ETH/USDT", "sell", "limit", Decimal("0.1234"), Decimal("3500.01"), origin="test")
    # On disk before anything else happens: a second connection already sees it.
    other = Store.in_dir(tmp_path)
    assert [o.client_id for o in other.orders(open_only=True)] == [order.client_id]
    other.close()
    tracker.apply(order.client_id, OrderStatus.OPEN, source="rest", venue_id="7")
    bus.publish(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator", "test halt"))
    bus.publish(BalancesUpdated((Balance("USDT", Decimal("9000.5"), Decimal("1000")),)))
    bus.publish(AlertRaised(Alert(Severity.CRIT, "X", "something")))
    store.close()

    reopened = Store.in_dir(tmp_path)
    (restored,) = reopened.orders()
    assert restored.status == OrderStatus.OPEN and restored.price == Decimal("3500.01")
    assert restored.amount == Decimal("0.1234") and restored.venue_id == "7"
    assert [e["status"] for e in reopened.order_events(order.client_id)] == ["NEW", "OPEN"]
    state, info = reopened.trading_state()
    assert state == TradingState.HALTED and info["actor"] == "operator" and info["reason"] == "test halt"
    assert reopened.balances() == [Balance("USDT", Decimal("9000.5"), Decimal("1000"))]
    assert reopened.alerts()[0]["code"] == "X"
    assert reopened.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_fresh_store_is_active(tmp_path):
    assert Store.in_dir(tmp_path).trading_state()[0] == TradingState.ACTIVE


def test_a_command_from_another_shell_is_claimed_once(tmp_path):
    store = Store.in_dir(tmp_path)
    command_id = store.submit_command("order", "operator:cli a@b", "test", {"symbol": "BTC/USDT"})
    assert store.claim_command(command_id) is True
    assert store.claim_command(command_id) is False  # a second round never runs it again
    assert store.pending_commands() == []
    store.finish_command(command_id, False, "failed: boom")
    assert store.command(command_id)["status"] == "failed"


def test_a_command_left_running_by_a_stopped_engine_is_failed_at_the_next_start(tmp_path):
    store = Store.in_dir(tmp_path)
    command_id = store.submit_command("close-all", "operator:cli a@b", "test")
    assert store.claim_command(command_id)
    assert store.abandon_running_commands() == 1
    row = store.command(command_id)
    assert row["status"] == "failed" and "stopped while running it" in row["result"]


def _status_elsewhere(tmp_path, client_id: str) -> str | None:
    other = Store.in_dir(tmp_path, readonly=True)
    try:
        return next((o.status.value for o in other.orders() if o.client_id == client_id), None)
    finally:
        other.close()


def test_a_batch_is_one_transaction_committed_at_its_end(tmp_path):
    """Group commit: what one burst writes (a cancel-all's answer) is one commit, on disk when the batch ends."""
    store = Store.in_dir(tmp_path)
    bus = EventBus()
    bus.add_handler(store.handle)
    tracker = OrderTracker(bus)
    orders = [
        tracker.create("BTC/USDT", "buy", "limit", Decimal("0.001"), Decimal(100 + i), origin="test") for i in range(50)
    ]
    commits = len(store.commit_ms)
    with store.batch():
        for order in orders:
            tracker.apply(order.client_id, OrderStatus.CANCELED, source="rest")
        assert _status_elsewhere(tmp_path, orders[0].client_id) == "NEW"  # not committed inside the batch
    assert len(store.commit_ms) == commits + 1
    assert _status_elsewhere(tmp_path, orders[-1].client_id) == "CANCELED"
    assert [e["status"] for e in store.order_events(orders[-1].client_id)] == ["NEW", "CANCELED"]


def test_a_halt_is_committed_at_once_even_in_a_batch_and_flush_commits_the_rest(tmp_path):
    """A halt is on disk before anything acts on it; ``flush`` (the order path, before a new client id leaves)
    commits what the batch holds."""
    store = Store.in_dir(tmp_path)
    bus = EventBus()
    bus.add_handler(store.handle)
    tracker = OrderTracker(bus)
    with store.batch():
        order = tracker.create("ETH/USDT", "buy", "limit", Decimal("0.01"), Decimal(1000), origin="test")
        assert _status_elsewhere(tmp_path, order.client_id) is None
        store.flush()
        assert _status_elsewhere(tmp_path, order.client_id) == "NEW"
        bus.publish(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator", "test"))
        other = Store.in_dir(tmp_path, readonly=True)
        assert other.trading_state()[0] == TradingState.HALTED
        other.close()


async def test_a_batch_never_holds_back_another_tasks_write(tmp_path):
    """A batch spans a command's awaits; what other tasks write meanwhile is committed at once, as always."""
    store = Store.in_dir(tmp_path)
    bus = EventBus()
    bus.add_handler(store.handle)
    tracker = OrderTracker(bus)
    order = tracker.create("ETH/USDT", "buy", "limit", Decimal("0.01"), Decimal(1000), "t")

    async def report() -> None:
        tracker.apply(order.client_id, OrderStatus.OPEN, source="stream")

    with store.batch():
        await asyncio.create_task(report())
        assert _status_elsewhere(tmp_path, order.client_id) == "OPEN"


async def test_a_stream_read_joins_a_commands_open_batch_and_is_on_disk_within_the_late_commit(tmp_path):
    """A stream read (``batch(join=True)``) that ends while a command's batch is open is not a commit of its own
    (a cancel-all hears its 100 cancels in 6-8 reads: issue 27); it is on disk at the command's end or by the late
    commit, whichever comes first. With no command under way it commits at its end, as any batch."""
    from engine.store.writer import MAX_DEFER_S

    store = Store.in_dir(tmp_path)
    bus = EventBus()
    bus.add_handler(store.handle)
    tracker = OrderTracker(bus)
    first, second = (tracker.create("ETH/USDT", "buy", "limit", Decimal("0.01"), Decimal(1000), "t") for _ in "ab")
    commits = len(store.commit_ms)

    async def stream_read(order) -> None:
        with store.batch(join=True):
            tracker.apply(order.client_id, OrderStatus.CANCELED, source="stream")

    with store.batch():  # a command under way
        await asyncio.create_task(stream_read(first))
        assert len(store.commit_ms) == commits  # joined, not committed on its own
        assert _status_elsewhere(tmp_path, first.client_id) == "NEW"
    assert _status_elsewhere(tmp_path, first.client_id) == "CANCELED"  # with the command's commit
    assert len(store.commit_ms) == commits + 1

    with store.batch():  # a long command: the late commit does not wait for its end
        await asyncio.create_task(stream_read(second))
        await eventually(
            lambda: _status_elsewhere(tmp_path, second.client_id) == "CANCELED", timeout=5, interval=MAX_DEFER_S / 5
        )

    third = tracker.create("ETH/USDT", "buy", "limit", Decimal("0.01"), Decimal(1000), "t")
    await stream_read(third)  # no command under way: committed at its end
    assert _status_elsewhere(tmp_path, third.client_id) == "CANCELED"


async def test_a_kill_switch_halt_is_in_the_os_at_once_and_synced_before_its_tier_answers(tmp_path, monkeypatch):
    """Decision BEN-13: inside a tier's batch (``answer_first``) the halt's commit is made at synchronous=NORMAL
    (another connection reads it at once) and the log's fsync runs in a thread (``synced`` waits for it, held here
    by the test hook); every other commit stays FULL. A tier whose batch found a transaction open commits FULL."""
    from engine.store.writer import LATCH_SYNC_HOLD_ENV

    monkeypatch.setenv(LATCH_SYNC_HOLD_ENV, "0.1")
    store = Store.in_dir(tmp_path)
    bus = EventBus()
    bus.add_handler(store.handle)
    level = lambda: store.conn.execute("PRAGMA synchronous").fetchone()[0]
    with store.batch(answer_first=True):
        assert level() == 1  # NORMAL, set before the tier's transaction begins
        with store.latch():
            bus.publish(TradingStateChanged(TradingState.ACTIVE, TradingState.HALTED, "operator", "close-all"))
        assert level() == 2  # FULL again at once
        other = Store.in_dir(tmp_path, readonly=True)
        assert other.trading_state()[0] == TradingState.HALTED  # latched: in the OS before anything acts
        other.close()
        synced = asyncio.create_task(store.synced())
        await asyncio.sleep(0)
        assert not synced.done()  # the log's fsync, held by the hook: the tier's answer waits for it
        await synced
    assert level() == 2

    monkeypatch.setenv(LATCH_SYNC_HOLD_ENV, "30")
    gate = asyncio.Event()

    async def another_command() -> None:
        with store.batch():
            store.save_json("y", 2)
            await gate.wait()

    other_task = asyncio.create_task(another_command())
    await asyncio.sleep(0)
    with store.batch(answer_first=True):  # its transaction open when the tier's opens: the halt is committed FULL
        with store.latch():
            bus.publish(TradingStateChanged(TradingState.HALTED, TradingState.ACTIVE, "operator", "resume"))
        assert level() == 2 and store.conn.execute("select count(*) from engine_state where key = 'y'").fetchone()[0]
        await asyncio.wait_for(store.synced(), 1)  # nothing to wait for
    gate.set()
    await other_task
    store.close()


async def test_the_monitors_readings_are_written_at_once_when_a_level_changes_and_late_when_only_values_do(tmp_path):
    """GATE-26: a reading whose values alone moved is written by its own late write (the newest only, within
    MAX_DEFER_S); a status that changes level (what `cockpit status` and an incident snapshot must show) at once;
    the store's close writes what is held."""
    from engine.kernel.events import MonitorsChanged
    from engine.store.writer import MAX_DEFER_S

    store = Store.in_dir(tmp_path)
    other = Store.in_dir(tmp_path)  # another shell reading the store

    def reading(status: str, value: str) -> MonitorsChanged:
        return MonitorsChanged(({"code": "flash_crash", "status": status, "value": value},))

    def seen() -> list[dict[str, str]] | None:
        return other.load_json("monitors")

    store.handle(reading("OK", "0.10%"))
    assert seen() == [{"code": "flash_crash", "status": "OK", "value": "0.10%"}]  # the first: at once
    commits = store.commits
    store.handle(reading("OK", "0.12%"))
    store.handle(reading("OK", "0.15%"))
    assert seen()[0]["value"] == "0.10%" and store.commits == commits  # held back, nothing committed
    await eventually(lambda: seen()[0]["value"] == "0.15%", timeout=MAX_DEFER_S * 40)  # the newest, late
    assert store.commits == commits + 1
    store.handle(reading("OK", "0.20%"))
    store.handle(reading("CRIT", "6.00%"))  # a level changed: at once, and what was held is dropped
    assert seen()[0] == {"code": "flash_crash", "status": "CRIT", "value": "6.00%"}
    store.handle(reading("CRIT", "6.50%"))
    store.close()  # writes what it holds
    assert seen()[0]["value"] == "6.50%"
    other.close()
