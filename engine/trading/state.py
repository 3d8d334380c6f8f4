"""The trading-state machine: ACTIVE, REDUCE_ONLY, HALTED, with one transition table and one table of what each
state permits.

HALTED is latched: only an operator's resume leaves it (runbook 000 §3 "Kill-Switch Activated": trading
resumes only after a human has cleared the cause). In HALTED nothing new leaves except what the kill switch
itself does: cancels, and close-all's sells.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from engine.kernel.commands import CommandResult, Permit
from engine.kernel.events import Severity, TradingState, TradingStateChanged

log = logging.getLogger(__name__)

T = TradingState
P = Permit
TRANSITIONS: dict[TradingState, frozenset[TradingState]] = {
    T.ACTIVE: frozenset({T.REDUCE_ONLY, T.HALTED}),
    T.REDUCE_ONLY: frozenset({T.ACTIVE, T.HALTED}),
    T.HALTED: frozenset({T.ACTIVE, T.REDUCE_ONLY}),
}
# Leaving HALTED is a human decision.
OPERATOR_ONLY_FROM = frozenset({T.HALTED})
# What each state permits: the one place that says it (risk checks, runner, monitors and execute all ask here).
PERMITS: dict[TradingState, frozenset[Permit]] = {
    # A protective stop only ever sells what is held: it is kept (and placed again) even while HALTED.
    T.ACTIVE: frozenset({P.ENTRY, P.REDUCE, P.CANCEL, P.CLOSE, P.PROTECT, P.ALWAYS}),
    T.REDUCE_ONLY: frozenset({P.REDUCE, P.CANCEL, P.CLOSE, P.PROTECT, P.ALWAYS}),
    T.HALTED: frozenset({P.CANCEL, P.CLOSE, P.PROTECT, P.ALWAYS}),
}
WHY_NOT: dict[TradingState, str] = {
    T.REDUCE_ONLY: "trading is REDUCE_ONLY: only orders that shrink a position",
    T.HALTED: "trading is HALTED: no new orders until an operator resumes",
}


class IllegalTransition(Exception):
    """A state change the table does not allow."""


OPERATOR_PREFIXES = ("operator:", "api:", "telegram:", "slack:")


def is_operator(actor: str) -> bool:
    """A person: ``operator`` or ``operator:<where>`` (a key press, the CLI), ``api:<token name>`` (a remote
    client whose token has the operator role: a viewer's token sends no command at all), or a chat user on a bot's
    allow-lists (``telegram:<id> <name>``, ``slack:<id> <name>``: no one else's command reaches the engine).
    Monitors, strategies, stop-losses and the engine itself are not."""
    return actor == "operator" or actor.startswith(OPERATOR_PREFIXES)


def check_transition(current: TradingState, target: TradingState, actor: str) -> bool:
    """Return True if a change is needed, False if already there; raise if the table forbids it."""
    if current == target:
        return False
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"trading state {current.value} -> {target.value} is not allowed")
    if current in OPERATOR_ONLY_FROM and not is_operator(actor):
        raise IllegalTransition(f"only an operator may leave {current.value} (asked by {actor})")
    return True


def refusal(state: TradingState, permit: Permit) -> str | None:
    """Why ``state`` does not permit ``permit`` now, or None when it does."""
    if permit in PERMITS[state]:
        return None
    return WHY_NOT.get(state, f"trading is {state.value}: {permit.value} not permitted")


class TradingStateMachine:
    """Holds the trading state; every change goes through the table, is published (and so stored) first.

    ``epoch`` grows with every change and every kill-switch trip, so a question asked of the operator can tell
    that the state it asked about has moved on.
    """

    def __init__(self, publish: Callable[[Any], None], alert: Callable[..., object]) -> None:
        self._publish = publish
        self._alert = alert
        self.state = TradingState.ACTIVE
        self.info: dict[str, Any] = {}
        self.epoch = 0

    def restore(self, state: TradingState, info: dict[str, Any]) -> None:
        self.state, self.info = state, dict(info)

    def permits(self, permit: Permit) -> bool:
        return permit in PERMITS[self.state]

    def refusal(self, permit: Permit) -> str | None:
        return refusal(self.state, permit)

    def order_refusal(self, side: str) -> str | None:
        """Why an order on ``side`` may not go now: a buy opens (ENTRY), a sell reduces (REDUCE)."""
        return self.refusal(Permit.ENTRY if side == "buy" else Permit.REDUCE)

    def tripped(self) -> None:
        """A kill switch fired (even with the state already HALTED): questions asked before are stale."""
        self.epoch += 1

    def move(
        self, target: TradingState, actor: str, reason: str, code: str = "", values: Mapping[str, Any] | None = None
    ) -> CommandResult:
        """Change the state through the table; an illegal change is refused, logged and alerted."""
        try:
            if not check_transition(self.state, target, actor):
                return CommandResult(True, f"already {target.value}")
        except IllegalTransition as exc:
            self._alert(
                Severity.WARN,
                "ILLEGAL_TRANSITION",
                f"{exc}: {reason}",
                values={"from": self.state.value, "to": target.value, "actor": actor},
            )
            return CommandResult(False, str(exc))
        previous = self.state
        self.state = target  # first, so nothing slips through while the event is delivered
        self.epoch += 1
        event = TradingStateChanged(previous, target, actor, reason, code=code, values=dict(values or {}))
        self.info = {
            "actor": actor,
            "reason": reason,
            "ts": event.ts.isoformat(),
            "code": code,
            "values": dict(values or {}),
        }
        self._publish(event)
        # An automatic halt is a kill switch firing (runbook 000 §3: CRIT); an operator's is deliberate.
        severity = Severity.INFO
        if target == TradingState.HALTED:
            severity = Severity.WARN if is_operator(actor) else Severity.CRIT
        self._alert(
            severity,
            f"TRADING_{target.value}",
            f"{previous.value} -> {target.value} by {actor}: {reason}",
            values=dict(values or {}),
        )
        return CommandResult(True, f"{target.value} ({reason})")
