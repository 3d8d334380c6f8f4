"""A backtest's `decide` on the engine's thread under the interval timer's deadline (decision GATE-27)."""

from __future__ import annotations

import signal
import time

import pytest

from engine.strategies.runner import _decide_under_alarm


class Stubborn:
    """Never returns, and swallows every Exception on its way."""

    def decide(self, view: object) -> list[object]:
        while True:
            try:
                time.sleep(0.01)  # its work: a hang, not a wait of the test
            except Exception:  # the point: a strategy that swallows what it can
                pass


class Quick:
    def decide(self, view: object) -> list[object]:
        return [view]


def test_a_decide_that_never_returns_and_swallows_exceptions_is_cut_at_its_deadline():
    before = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        _decide_under_alarm(Stubborn(), None, 0.2)  # type: ignore[arg-type]
    assert 0.15 < time.monotonic() - started < 5
    assert signal.getsignal(signal.SIGALRM) is before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_decide_in_time_returns_its_intents_and_leaves_no_timer():
    intents, took = _decide_under_alarm(Quick(), "view", 5.0)  # type: ignore[arg-type]
    assert intents == ["view"] and 0 <= took < 1
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
