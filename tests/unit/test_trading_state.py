"""The trading state table: who may leave HALTED, and which moves exist at all."""

import pytest

from engine.kernel.commands import CancelAll, CloseAll, ExitPosition, Permit, PlaceOrder
from engine.kernel.events import TradingState as T
from engine.trading.state import (
    PERMITS,
    TRANSITIONS,
    IllegalTransition,
    TradingStateMachine,
    check_transition,
    refusal,
)


def test_halt_from_active_by_anyone():
    assert check_transition(T.ACTIVE, T.HALTED, "monitor:ws_stale") is True


def test_same_state_is_no_change():
    assert check_transition(T.HALTED, T.HALTED, "operator") is False


def test_only_an_operator_leaves_halted():
    with pytest.raises(IllegalTransition, match="only an operator"):
        check_transition(T.HALTED, T.ACTIVE, "strategy")
    assert check_transition(T.HALTED, T.ACTIVE, "operator") is True


@pytest.mark.parametrize(
    "state, permit, allowed",
    [
        (T.ACTIVE, Permit.ENTRY, True),
        (T.ACTIVE, Permit.REDUCE, True),
        (T.REDUCE_ONLY, Permit.ENTRY, False),
        (T.REDUCE_ONLY, Permit.REDUCE, True),
        (T.HALTED, Permit.ENTRY, False),
        (T.HALTED, Permit.REDUCE, False),  # not even a stop-loss exit: the operator decides
        (T.HALTED, Permit.CANCEL, True),
        (T.HALTED, Permit.CLOSE, True),  # the kill switch itself may flatten
    ],
)
def test_what_each_state_permits(state, permit, allowed):
    assert (permit in PERMITS[state]) is allowed
    assert (refusal(state, permit) is None) is allowed


def test_every_state_has_a_row_in_both_tables():
    assert set(TRANSITIONS) == set(PERMITS) == set(T)


def test_refusals_say_why_in_the_operators_words():
    assert refusal(T.HALTED, Permit.ENTRY) == "trading is HALTED: no new orders until an operator resumes"
    assert "REDUCE_ONLY" in refusal(T.REDUCE_ONLY, Permit.ENTRY)


def test_commands_declare_what_they_need():
    assert PlaceOrder(side="buy").permit == Permit.ENTRY
    assert PlaceOrder(side="sell").permit == Permit.REDUCE
    assert CloseAll().permit == Permit.CLOSE and CancelAll().permit == Permit.CANCEL
    assert ExitPosition().permit == Permit.REDUCE


def test_machine_refuses_illegal_moves_and_alerts():
    published, alerts = [], []
    machine = TradingStateMachine(published.append, lambda *a, **k: alerts.append(a))
    machine.restore(T.HALTED, {})
    result = machine.move(T.ACTIVE, "monitor:ws_stale", "streams back")
    assert not result.ok and "only an operator" in result.message
    assert machine.state == T.HALTED and published == []
    assert alerts and alerts[0][1] == "ILLEGAL_TRANSITION"
    epoch = machine.epoch
    assert machine.move(T.ACTIVE, "operator:key", "checked").ok
    assert machine.state == T.ACTIVE and machine.epoch == epoch + 1
    (event,) = published
    assert event.previous == T.HALTED and event.state == T.ACTIVE and event.actor == "operator:key"
