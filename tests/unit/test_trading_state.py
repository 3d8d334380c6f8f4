"""The trading state table: who may leave HALTED, and which moves exist at all."""

import pytest

from engine.events import TradingState as T
from engine.trading_state import IllegalTransition, check_transition


def test_halt_from_active_by_anyone():
    assert check_transition(T.ACTIVE, T.HALTED, "monitor:ws_stale") is True


def test_same_state_is_no_change():
    assert check_transition(T.HALTED, T.HALTED, "operator") is False


def test_only_an_operator_leaves_halted():
    with pytest.raises(IllegalTransition, match="only an operator"):
        check_transition(T.HALTED, T.ACTIVE, "strategy")
    assert check_transition(T.HALTED, T.ACTIVE, "operator") is True
