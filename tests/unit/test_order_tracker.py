"""The order transition table: legal moves applied, stale news dropped, illegal moves alerted."""

from decimal import Decimal

import pytest

from engine.kernel.bus import EventBus
from engine.kernel.events import AlertRaised, OrderCreated, OrderUpdated
from engine.kernel.events import OrderStatus as S
from engine.trading.orders import STOP_ORDER_TYPE, TRANSITIONS, OrderTracker
from engine.venue.adapter import status_from_ccxt


@pytest.fixture
def published():
    bus = EventBus()
    events = []
    bus.add_handler(events.append)
    return bus, events


def make(bus):
    tracker = OrderTracker(bus)
    order = tracker.create("BTC/USDT", "buy", "limit", Decimal("0.01"), Decimal("60000"), origin="test")
    return tracker, order


def test_create_publishes_before_anything_is_sent(published):
    bus, events = published
    tracker, order = make(bus)
    assert order.status == S.NEW
    assert order.client_id.startswith("ck-") and len(order.client_id) <= 36
    assert isinstance(events[0], OrderCreated) and events[0].order.client_id == order.client_id


def test_full_lifecycle(published):
    bus, events = published
    tracker, order = make(bus)
    tracker.apply(order.client_id, S.OPEN, source="rest", venue_id="42")
    tracker.apply(order.client_id, S.PARTIALLY_FILLED, source="stream", filled=Decimal("0.004"))
    tracker.apply(order.client_id, S.PARTIALLY_FILLED, source="stream", filled=Decimal("0.007"))
    done = tracker.apply(order.client_id, S.FILLED, source="stream", filled=Decimal("0.01"))
    assert done.status == S.FILLED and done.filled == Decimal("0.01") and done.venue_id == "42"
    updates = [e for e in events if isinstance(e, OrderUpdated)]
    assert [u.order.status for u in updates] == [S.OPEN, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED]
    assert tracker.open_orders() == []


def test_duplicate_report_changes_nothing(published):
    bus, events = published
    tracker, order = make(bus)
    tracker.apply(order.client_id, S.OPEN, source="rest")
    n = len(events)
    assert tracker.apply(order.client_id, S.OPEN, source="stream") is None
    assert len(events) == n


def test_stale_report_after_fill_is_dropped_quietly(published):
    bus, events = published
    tracker, order = make(bus)
    tracker.apply(order.client_id, S.FILLED, source="stream", filled=Decimal("0.01"))
    assert tracker.apply(order.client_id, S.OPEN, source="rest") is None
    assert tracker.get(order.client_id).status == S.FILLED
    assert not [e for e in events if isinstance(e, AlertRaised)]


def test_illegal_transition_is_alerted_not_applied(published):
    bus, events = published
    tracker, order = make(bus)
    tracker.apply(order.client_id, S.CANCELED, source="rest")
    assert tracker.apply(order.client_id, S.FILLED, source="stream", filled=Decimal("0.01")) is None
    assert tracker.get(order.client_id).status == S.CANCELED
    alerts = [e.alert for e in events if isinstance(e, AlertRaised)]
    assert alerts and alerts[0].code == "ORDER_ILLEGAL_TRANSITION"


def test_terminal_states_have_no_exits():
    for status in (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED):
        assert TRANSITIONS[status] == frozenset()
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(
    "ccxt_status,filled,expected",
    [
        ("open", "0", S.OPEN),
        ("open", "0.1", S.PARTIALLY_FILLED),
        ("closed", "1", S.FILLED),
        ("canceled", "0", S.CANCELED),
        ("expired", "0", S.EXPIRED),
        ("rejected", "0", S.REJECTED),
    ],
)
def test_status_mapping(ccxt_status, filled, expected):
    assert status_from_ccxt(ccxt_status, Decimal(filled), Decimal("1")) == expected


def test_unknown_status_is_an_error():
    with pytest.raises(ValueError, match="unknown order status"):
        status_from_ccxt("weird", Decimal(0), Decimal(1))


def test_a_symbols_protective_orders_and_other_sells_are_kept_apart_while_open():
    """The venue-stop check reads them on every report (issue 27): kept as they open and end, no scan."""
    tracker = OrderTracker(EventBus())
    stop = tracker.create("BTC/USDT", "sell", STOP_ORDER_TYPE, Decimal("0.01"), Decimal("50000"), origin="test")
    sell = tracker.create("BTC/USDT", "sell", "limit", Decimal("0.01"), Decimal("70000"), origin="test")
    tracker.create("BTC/USDT", "buy", "limit", Decimal("0.01"), Decimal("60000"), origin="test")
    assert [o.client_id for o in tracker.protective_orders("BTC/USDT")] == [stop.client_id]
    assert [o.client_id for o in tracker.open_sells("BTC/USDT")] == [sell.client_id]
    tracker.apply(stop.client_id, S.CANCELED, source="test")
    tracker.apply(sell.client_id, S.FILLED, source="test", filled=Decimal("0.01"))
    assert tracker.protective_orders("BTC/USDT") == [] and tracker.open_sells("BTC/USDT") == []
    assert tracker.protective_orders("ETH/USDT") == [] and len(tracker.open_orders("BTC/USDT")) == 1
