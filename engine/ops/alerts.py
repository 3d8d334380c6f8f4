"""The alert book: every alert gets an id, the same code again within ``dedupe_s`` is counted on the first one
(not repeated), an operator acknowledges one or all, and what stays unacknowledged escalates (runbook 000 §4:
a WARN becomes CRIT after ``warn_escalate_s``; a CRIT is sent again every ``crit_repeat_s``).

The book publishes ``AlertRaised`` for a new alert and ``AlertUpdated`` for every change; the store, the screen,
the log files and the notifier are sinks that subscribe.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from engine.kernel.config import AlertsConfig
from engine.kernel.events import Alert, AlertRaised, AlertUpdated, Severity, utcnow
from engine.kernel.ports import Publish

log = logging.getLogger(__name__)

LEVEL = {Severity.INFO: logging.INFO, Severity.WARN: logging.WARNING, Severity.CRIT: logging.ERROR}
RANK = {Severity.INFO: 0, Severity.WARN: 1, Severity.CRIT: 2}


class AlertBook:
    """Alerts by id: de-duplicated, acknowledged, escalated."""

    def __init__(self, cfg: AlertsConfig, publish: Publish, clock: Callable[[], datetime] = utcnow) -> None:
        self.cfg = cfg
        # The log files' least severity (the store keeps every alert: it is the record).
        log.setLevel(LEVEL[Severity(cfg.log_min_severity)])
        self.publish = publish
        self.clock = clock
        self.next_id = 1
        self.open: dict[int, Alert] = {}  # unacknowledged WARN and CRIT alerts, by id
        self.recent: deque[Alert] = deque(maxlen=200)  # newest last, for the screen and snapshots
        self._last: dict[tuple[Severity, str], Alert] = {}  # (severity, code) -> the latest alert with it
        self._sent: dict[int, datetime] = {}  # CRIT id -> when it was last sent to people

    def restore(self, max_id: int, unacknowledged: Iterable[Alert]) -> None:
        """Ids go on from the store's; what was left unacknowledged keeps escalating after a restart."""
        self.next_id = max_id + 1
        for alert in unacknowledged:
            if alert.severity != Severity.INFO:
                self.open[alert.id] = alert
                self.recent.append(alert)

    def raise_alert(
        self, severity: Severity, code: str, message: str, values: Mapping[str, Any] | None = None
    ) -> Alert:
        now = self.clock()
        key = (severity, code)
        first = self._last.get(key)
        if first is not None:
            first = self.open.get(first.id, first)
        # Counted on the first only within the window from the first, and never onto an acknowledged alert: a
        # problem that comes back after the operator acknowledged it is a new alert.
        if first is not None and not first.acked and now - first.ts <= timedelta(seconds=self.cfg.dedupe_s):
            counted = replace(first, count=first.count + 1, last_ts=now)
            self._keep(counted)
            log.log(LEVEL[severity], "%s %s (x%d): %s", severity.value, code, counted.count, message)
            self.publish(AlertUpdated(counted, "count"))
            return counted
        alert = Alert(severity, code, message, ts=now, values=dict(values or {}), id=self.next_id, last_ts=now)
        self.next_id += 1
        self._keep(alert)
        log.log(LEVEL[severity], "%s %s: %s", severity.value, code, message)
        self.publish(AlertRaised(alert))
        if severity == Severity.CRIT:
            self._sent[alert.id] = now
        return alert

    def _keep(self, alert: Alert) -> None:
        self._last[(alert.severity, alert.code)] = alert
        if alert.severity != Severity.INFO and not alert.acked:
            self.open[alert.id] = alert
        for i, seen in enumerate(self.recent):
            if seen.id == alert.id:
                self.recent[i] = alert
                return
        self.recent.append(alert)

    def ack(self, ids: Iterable[int] | None, who: str) -> list[Alert]:
        """Acknowledge the alerts with ``ids`` (None: every open one); returns those acknowledged now."""
        now = self.clock()
        chosen = list(self.open) if ids is None else [i for i in ids if i in self.open]
        done = []
        for alert_id in chosen:
            alert = replace(self.open.pop(alert_id), acked_by=who, acked_at=now)
            self._sent.pop(alert_id, None)
            self._keep(alert)
            self.publish(AlertUpdated(alert, "ack"))
            done.append(alert)
        return done

    def escalate(self) -> list[Alert]:
        """Raise unacknowledged WARNs to CRIT after ``warn_escalate_s``; send unacknowledged CRITs again every
        ``crit_repeat_s``. Returns what changed."""
        now = self.clock()
        changed = []
        for alert in list(self.open.values()):
            if alert.severity == Severity.WARN and now - alert.ts >= timedelta(seconds=self.cfg.warn_escalate_s):
                up = replace(alert, severity=Severity.CRIT, escalated=True)
                if self._last.get((Severity.WARN, alert.code), up).id == up.id:
                    del self._last[(Severity.WARN, alert.code)]  # a new WARN of this code is a new alert
                self._keep(up)
                self._sent[up.id] = now
                log.error(
                    "CRIT %s escalated: unacknowledged for %.0fs: %s",
                    up.code,
                    (now - alert.ts).total_seconds(),
                    up.message,
                )
                self.publish(AlertUpdated(up, "escalated"))
                changed.append(up)
            elif alert.severity == Severity.CRIT and now - self._sent.get(alert.id, alert.ts) >= timedelta(
                seconds=self.cfg.crit_repeat_s
            ):
                self._sent[alert.id] = now
                self.publish(AlertUpdated(alert, "repeat"))
                changed.append(alert)
        return changed

    def unacknowledged(self) -> list[Alert]:
        return sorted(self.open.values(), key=lambda a: a.id)
