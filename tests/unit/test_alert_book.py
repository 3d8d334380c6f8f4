"""The alert book with an injected clock: duplicates counted, acknowledgement, WARN escalated to CRIT after
15 minutes, an unacknowledged CRIT sent again every 2 minutes (runbook 000 §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.kernel.config import AlertsConfig
from engine.kernel.events import AlertRaised, AlertUpdated, Severity
from engine.ops.alerts import AlertBook


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def book() -> tuple[AlertBook, list, Clock]:
    events: list = []
    clock = Clock()
    return AlertBook(AlertsConfig(), events.append, clock=clock), events, clock


def test_the_same_code_within_the_window_is_counted_on_the_first():
    b, events, clock = book()
    first = b.raise_alert(Severity.WARN, "WS_STALE", "no data for 11s")
    clock.advance(30)
    again = b.raise_alert(Severity.WARN, "WS_STALE", "no data for 12s")
    assert again.id == first.id and again.count == 2
    assert [type(e).__name__ for e in events] == ["AlertRaised", "AlertUpdated"]
    clock.advance(61)
    later = b.raise_alert(Severity.WARN, "WS_STALE", "no data again")
    assert later.id != first.id and later.count == 1
    other = b.raise_alert(Severity.WARN, "REST_LATENCY", "slow")
    assert other.id not in (first.id, later.id)


def test_acknowledged_alerts_stop_escalating_and_say_who():
    b, events, clock = book()
    warn = b.raise_alert(Severity.WARN, "CLOCK_SKEW", "skew 800ms")
    crit = b.raise_alert(Severity.CRIT, "STOP_LOSS_FAILED", "exit failed")
    (acked,) = b.ack([warn.id], "operator:key")
    assert acked.acked_by == "operator:key" and acked.acked_at == clock.now
    clock.advance(3600)
    changed = b.escalate()
    assert [a.id for a in changed] == [crit.id]  # only the unacknowledged CRIT is sent again
    assert b.ack(None, "operator:cli a@b")[0].id == crit.id
    assert b.escalate() == [] and b.unacknowledged() == []


def test_an_unacknowledged_warn_becomes_crit_after_15_minutes_and_a_crit_repeats_every_2():
    b, events, clock = book()
    warn = b.raise_alert(Severity.WARN, "REST_LATENCY", "p95 2.4s")
    clock.advance(14 * 60)
    assert b.escalate() == []
    clock.advance(61)
    (up,) = b.escalate()
    assert up.id == warn.id and up.severity == Severity.CRIT and up.escalated
    assert isinstance(events[-1], AlertUpdated) and events[-1].change == "escalated"
    clock.advance(60)
    assert b.escalate() == []
    clock.advance(61)
    (again,) = b.escalate()
    assert again.id == warn.id and events[-1].change == "repeat"


def test_ids_go_on_after_a_restart_and_open_alerts_keep_escalating():
    b, events, clock = book()
    old = b.raise_alert(Severity.WARN, "ORDER_LOST", "lost")
    restarted, out, _ = book()
    restarted.restore(max_id=old.id, unacknowledged=[old])
    new = restarted.raise_alert(Severity.INFO, "RECONNECTED", "ok")
    assert new.id == old.id + 1 and [a.id for a in restarted.unacknowledged()] == [old.id]
    assert isinstance(out[-1], AlertRaised)


def test_a_problem_that_comes_back_after_acknowledgement_is_a_new_alert():
    b, events, clock = book()
    first = b.raise_alert(Severity.WARN, "STOP_LOSS", "through stop")
    b.ack([first.id], "operator:key")
    clock.advance(30)
    again = b.raise_alert(Severity.WARN, "STOP_LOSS", "through stop again")
    assert again.id != first.id and not again.acked and [a.id for a in b.unacknowledged()] == [again.id]


def test_the_window_runs_from_the_first_alert_not_the_last():
    b, events, clock = book()
    first = b.raise_alert(Severity.WARN, "WS_STALE", "stale")
    for _ in range(3):
        clock.advance(30)
        latest = b.raise_alert(Severity.WARN, "WS_STALE", "stale")
    assert latest.id != first.id  # 90 s after the first: a new alert, not x4


def test_an_acknowledged_escalation_stays_acknowledged():
    b, events, clock = book()
    warn = b.raise_alert(Severity.WARN, "REST_LATENCY", "slow")
    clock.advance(15 * 60)
    (up,) = b.escalate()
    b.ack([up.id], "operator:key")
    clock.advance(10)
    new = b.raise_alert(Severity.WARN, "REST_LATENCY", "slow again")
    assert new.id != warn.id
    acked = next(a for a in b.recent if a.id == warn.id)
    assert acked.acked_by == "operator:key" and acked.severity == Severity.CRIT
