"""The losing-streak guard: a strategy that keeps losing is stood down before it hurts the account.

Runbook 001 §5 / 000 §3. The guard only counts closed round trips and answers "may this strategy trade?";
the engine asks it before acting on a strategy's intents and tells it every round trip's PnL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

GUARD = "guard"
OPERATOR = "operator"
FAILURE = "failure"  # it raised or overran its step; looked at again every ``re_enable_s``


@dataclass
class _State:
    """One strategy's streak and, when stood down, by whom, since when and why."""

    consecutive_losses: int = 0
    streak_pnl: Decimal = Decimal(0)
    # GUARD (lifted by the cooldown), OPERATOR (lifted only by enable) or FAILURE (lifted at a check, stats allowing)
    disabled_by: str | None = None
    disabled_at: datetime | None = None
    reason: str = ""


class LossStreakGuard:
    """Disables a strategy after ``max_consecutive_losses`` losing round trips, for ``cooldown_s`` seconds; one that
    failed (raised, overran its step) is looked at again every ``re_enable_s`` and runs again when its losing streak
    is under the limit (runbook 003 "Strategy Underperforming": re-evaluated after ``re_enable_check_hours``)."""

    def __init__(self, max_consecutive_losses: int, cooldown_s: float, re_enable_s: float = 3600.0) -> None:
        if max_consecutive_losses < 1:
            raise ValueError("max_consecutive_losses must be at least 1")
        if cooldown_s < 0:
            raise ValueError("cooldown_s must not be negative")
        self.max_consecutive_losses = max_consecutive_losses
        self.cooldown_s = cooldown_s
        self.re_enable_s = re_enable_s
        self.states: dict[str, _State] = {}
        # A check changed a state by itself (a cooldown over, a failure's check passed or put off): the owner saves
        # it, so a restart neither brings back a stand-down that ended nor moves a check that was put off.
        self.changed = False

    def record(self, strategy: str, pnl: Decimal, now: datetime) -> bool:
        """Count one closed round trip; True when this loss just disabled the strategy."""
        state = self._state(strategy, now)
        # Break-even counts as not-a-loss: only money actually lost should stand a strategy down.
        if pnl >= 0:
            state.consecutive_losses = 0
            state.streak_pnl = Decimal(0)
            return False
        state.consecutive_losses += 1
        state.streak_pnl += pnl
        if state.disabled_by is not None or state.consecutive_losses < self.max_consecutive_losses:
            return False
        state.disabled_by = GUARD
        state.disabled_at = now
        state.reason = f"{state.consecutive_losses} losing trades in a row ({state.streak_pnl})"
        return True

    def is_enabled(self, strategy: str, now: datetime) -> bool:
        """Whether ``strategy`` may open new trades at ``now``; an expired cooldown re-enables it here."""
        return self._state(strategy, now).disabled_by is None

    def disable(self, strategy: str, now: datetime, reason: str) -> None:
        """Operator stand-down: lasts until ``enable``, whatever the cooldown."""
        state = self._state(strategy, now)
        state.disabled_by = OPERATOR
        state.disabled_at = now
        state.reason = reason

    def fail(self, strategy: str, now: datetime, reason: str) -> None:
        """The strategy raised or overran its step: stood down until a check finds its stats allow it again."""
        state = self._state(strategy, now)
        state.disabled_by = FAILURE
        state.disabled_at = now
        state.reason = reason

    def enable(self, strategy: str) -> None:
        """Operator re-enable: lifts any stand-down and starts a fresh streak."""
        self.states[strategy] = _State()

    def disabled_until(self, strategy: str) -> datetime | None:
        """When a guard stand-down ends; None when enabled or disabled by the operator (indefinite)."""
        state = self.states.get(strategy)
        if state is None or state.disabled_at is None:
            return None
        if state.disabled_by == GUARD:
            return state.disabled_at + timedelta(seconds=self.cooldown_s)
        if state.disabled_by == FAILURE:
            return state.disabled_at + timedelta(seconds=self.re_enable_s)
        return None

    def status(self, strategy: str, now: datetime) -> dict[str, Any]:
        """A snapshot for screens and the CLI."""
        state = self._state(strategy, now)
        return {
            "strategy": strategy,
            "enabled": state.disabled_by is None,
            "consecutive_losses": state.consecutive_losses,
            "streak_pnl": state.streak_pnl,
            "disabled_by": state.disabled_by,
            "disabled_at": state.disabled_at,
            "disabled_until": self.disabled_until(strategy),
            "reason": state.reason,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able state: ISO timestamps, Decimals as strings."""
        return {
            "max_consecutive_losses": self.max_consecutive_losses,
            "cooldown_s": self.cooldown_s,
            "re_enable_s": self.re_enable_s,
            "strategies": {
                name: {
                    "consecutive_losses": s.consecutive_losses,
                    "streak_pnl": str(s.streak_pnl),
                    "disabled_by": s.disabled_by,
                    "disabled_at": s.disabled_at.isoformat() if s.disabled_at else None,
                    "reason": s.reason,
                }
                for name, s in self.states.items()
            },
        }

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        max_consecutive_losses: int | None = None,
        cooldown_s: float | None = None,
        re_enable_s: float | None = None,
    ) -> LossStreakGuard:
        """Restore saved state; pass the current config's limits so a restart applies them, not the saved ones."""
        guard = cls(
            data["max_consecutive_losses"] if max_consecutive_losses is None else max_consecutive_losses,
            data["cooldown_s"] if cooldown_s is None else cooldown_s,
            data.get("re_enable_s", 3600.0) if re_enable_s is None else re_enable_s,
        )
        for name, s in data.get("strategies", {}).items():
            guard.states[name] = _State(
                consecutive_losses=int(s["consecutive_losses"]),
                streak_pnl=Decimal(s["streak_pnl"]),
                disabled_by=s["disabled_by"],
                disabled_at=datetime.fromisoformat(s["disabled_at"]) if s["disabled_at"] else None,
                reason=s["reason"],
            )
        return guard

    def _state(self, strategy: str, now: datetime) -> _State:
        state = self.states.setdefault(strategy, _State())
        until = self.disabled_until(strategy)
        if until is None or now < until:
            return state
        self.changed = True
        if state.disabled_by == FAILURE and state.consecutive_losses >= self.max_consecutive_losses:
            state.disabled_at = now  # its stats do not allow it yet: looked at again after another period
            return state
        # The cooldown is over (or the check passed): a fresh start, as if the operator had re-enabled it.
        self.states[strategy] = state = _State()
        return state
