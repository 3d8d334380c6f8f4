"""Trading state machine: ACTIVE, REDUCE_ONLY, HALTED, with one transition table.

HALTED is latched: only an operator's resume leaves it (runbook 000 §3 "Kill-Switch Activated":
trading resumes only after a human has cleared the cause).
"""

from __future__ import annotations

from engine.events import TradingState

T = TradingState
TRANSITIONS: dict[TradingState, frozenset[TradingState]] = {
    T.ACTIVE: frozenset({T.REDUCE_ONLY, T.HALTED}),
    T.REDUCE_ONLY: frozenset({T.ACTIVE, T.HALTED}),
    T.HALTED: frozenset({T.ACTIVE, T.REDUCE_ONLY}),
}
# Leaving HALTED is a human decision.
OPERATOR_ONLY_FROM = frozenset({T.HALTED})


class IllegalTransition(Exception):
    """A state change the table does not allow."""


def is_operator(actor: str) -> bool:
    """``operator`` or ``operator:<where>`` (a key press, the CLI); monitors and strategies are not."""
    return actor == "operator" or actor.startswith("operator:")


def check_transition(current: TradingState, target: TradingState, actor: str) -> bool:
    """Return True if a change is needed, False if already there; raise if the table forbids it."""
    if current == target:
        return False
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"trading state {current.value} -> {target.value} is not allowed")
    if current in OPERATOR_ONLY_FROM and not is_operator(actor):
        raise IllegalTransition(
            f"only an operator may leave {current.value} (asked by {actor})"
        )
    return True
