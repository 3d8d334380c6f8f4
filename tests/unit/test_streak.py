"""The losing-streak guard stands a strategy down after N losses and lets it back after the cooldown."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from engine.strategies.streak import LossStreakGuard

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
S = "ma_cross"


def lose(guard: LossStreakGuard, n: int, now: datetime = T0) -> list[bool]:
    return [guard.record(S, D("-1.5"), now) for _ in range(n)]


def test_disables_after_n_losses():
    guard = LossStreakGuard(3, 60)
    assert lose(guard, 2) == [False, False]
    assert guard.is_enabled(S, T0)
    assert lose(guard, 1) == [True]
    assert not guard.is_enabled(S, T0)
    status = guard.status(S, T0)
    assert status["enabled"] is False
    assert status["consecutive_losses"] == 3
    assert status["streak_pnl"] == D("-4.5")
    assert status["disabled_until"] == T0 + timedelta(seconds=60)
    assert "3 losing trades" in status["reason"]
    # Already disabled: another loss does not "just disable" it again.
    assert lose(guard, 1) == [False]
    assert guard.is_enabled("mean_reversion", T0)


def test_win_or_break_even_resets_the_count():
    guard = LossStreakGuard(3, 60)
    lose(guard, 2)
    assert guard.record(S, D("0.01"), T0) is False
    assert guard.status(S, T0)["consecutive_losses"] == 0
    lose(guard, 2)
    assert guard.record(S, D("0"), T0) is False
    assert lose(guard, 2) == [False, False]
    assert guard.is_enabled(S, T0)


def test_cooldown_reenables_at_exactly_disabled_at_plus_cooldown():
    guard = LossStreakGuard(2, 30)
    lose(guard, 2)
    assert not guard.is_enabled(S, T0 + timedelta(seconds=29, microseconds=999_999))
    assert guard.is_enabled(S, T0 + timedelta(seconds=30))
    status = guard.status(S, T0 + timedelta(seconds=30))
    assert (status["consecutive_losses"], status["disabled_until"], status["reason"]) == (0, None, "")
    # A fresh count: one more loss is not enough.
    assert guard.record(S, D("-1"), T0 + timedelta(seconds=31)) is False


def test_operator_disable_survives_cooldown_until_enable():
    guard = LossStreakGuard(2, 30)
    lose(guard, 2)
    guard.disable(S, T0 + timedelta(seconds=5), "operator: watching the spread")
    later = T0 + timedelta(days=1)
    assert not guard.is_enabled(S, later)
    status = guard.status(S, later)
    assert (status["disabled_until"], status["reason"]) == (None, "operator: watching the spread")
    guard.enable(S)
    assert guard.is_enabled(S, later)
    assert guard.status(S, later)["consecutive_losses"] == 0


def test_round_trip_through_json():
    guard = LossStreakGuard(2, 30)
    lose(guard, 2)
    guard.record("mean_reversion", D("-0.25"), T0)
    guard.disable("ladder", T0, "manual")
    data = json.loads(json.dumps(guard.to_dict()))
    assert data["strategies"][S]["disabled_at"] == "2024-01-01T12:00:00+00:00"
    assert data["strategies"][S]["streak_pnl"] == "-3.0"

    restored = LossStreakGuard.from_dict(data)
    assert restored.to_dict() == guard.to_dict()
    for name in (S, "mean_reversion", "ladder"):
        assert restored.status(name, T0) == guard.status(name, T0)
    assert restored.is_enabled(S, T0 + timedelta(seconds=30))
    assert not restored.is_enabled("ladder", T0 + timedelta(days=1))


def test_from_dict_applies_current_limits():
    guard = LossStreakGuard(2, 30)
    lose(guard, 2)
    restored = LossStreakGuard.from_dict(guard.to_dict(), max_consecutive_losses=5, cooldown_s=120)
    assert (restored.max_consecutive_losses, restored.cooldown_s) == (5, 120)
    assert restored.status(S, T0)["disabled_until"] == T0 + timedelta(seconds=120)


def test_a_failed_strategy_is_checked_after_the_period_and_runs_again_only_when_its_stats_allow():
    """Runbook 003: a strategy disabled for raising is re-evaluated after re_enable_check_hours."""
    hour = timedelta(hours=1)
    guard = LossStreakGuard(3, 60, re_enable_s=3600)
    guard.fail(S, T0, "raised RuntimeError")
    assert not guard.is_enabled(S, T0 + hour - timedelta(seconds=1))
    assert guard.status(S, T0)["disabled_by"] == "failure"
    assert guard.is_enabled(S, T0 + hour)  # no losing streak: back

    guard.fail(S, T0, "raised again")
    lose(guard, 3, T0)  # its stats do not allow it: checked again an hour later, and again
    assert not guard.is_enabled(S, T0 + hour)
    assert not guard.is_enabled(S, T0 + 2 * hour - timedelta(seconds=1))
    saved = LossStreakGuard.from_dict(json.loads(json.dumps(guard.to_dict())))
    assert saved.re_enable_s == 3600 and saved.status(S, T0 + hour)["disabled_by"] == "failure"


def test_a_check_that_changes_a_state_says_so_for_it_to_be_saved():
    """A restart goes on from what was saved: a check that put a failed strategy's next check off (its stats do not
    allow it) or ended a cooldown marks the guard changed, and the saved state keeps the put-off check."""
    hour = timedelta(hours=1)
    guard = LossStreakGuard(3, 60, re_enable_s=3600)
    guard.fail(S, T0, "raised")
    lose(guard, 3, T0)
    assert not guard.is_enabled(S, T0 + timedelta(minutes=59)) and not guard.changed  # nothing to check yet
    assert not guard.is_enabled(S, T0 + hour) and guard.changed  # checked: put off an hour
    saved = LossStreakGuard.from_dict(json.loads(json.dumps(guard.to_dict())))
    assert saved.disabled_until(S) == T0 + 2 * hour  # not due again at once after a restart
    other = LossStreakGuard(2, 60)
    lose_other = [other.record("x", D("-1"), T0) for _ in range(2)]
    assert lose_other[-1] and not other.changed
    assert other.is_enabled("x", T0 + timedelta(seconds=60)) and other.changed  # the cooldown ended
