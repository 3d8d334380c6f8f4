"""Alerts to people: every notification URL (apprise's syntax: Slack, Telegram, e-mail, json:// webhooks...) gets
the alerts at or over its ``min_severity``, sent off the engine's path by one worker per target, retried with
backoff, and every delivery recorded; a delivery that fails after its retries is itself an alert on the screen and
in the store (never sent on, never lost silently). URLs can carry tokens: only their masked form is ever shown.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import apprise

from engine.config import NotifyTarget
from engine.events import Alert, AlertRaised, AlertUpdated, Event, NotificationSent, Severity
from engine.ports import AlertPort, Publish

log = logging.getLogger(__name__)
# apprise logs what it sends at INFO/DEBUG; a URL's token must never reach a log.
logging.getLogger("apprise").setLevel(logging.CRITICAL)

RANK = {"INFO": 0, "WARN": 1, "CRIT": 2}
NOTIFY_TYPE = {Severity.INFO: apprise.NotifyType.INFO, Severity.WARN: apprise.NotifyType.WARNING,
               Severity.CRIT: apprise.NotifyType.FAILURE}
BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
# Alerts about delivery itself stay on the screen and in the store: sending them would loop.
NOT_SENT = frozenset({"NOTIFY_FAILED"})


def masked(url: str) -> str:
    """The URL as apprise shows it with privacy on (tokens and passwords elided)."""
    ap = apprise.Apprise()
    if ap.add(url):
        for service in ap:
            return service.url(privacy=True).split("?")[0]
    return url.split("://")[0] + "://…"


@dataclass
class _Target:
    url: str
    label: str
    min_rank: int
    queue: asyncio.Queue[tuple[Alert, str]]


class Notifier:
    """Queues alerts per target from the bus and sends them in the background."""

    def __init__(self, targets: tuple[NotifyTarget, ...], retries: int, publish: Publish, alert: AlertPort,
                 title: str = "cockpit", backoff_s: tuple[float, ...] = BACKOFF_S) -> None:
        self.targets = [_Target(t.url.get_secret_value(), masked(t.url.get_secret_value()), RANK[t.min_severity],
                                asyncio.Queue()) for t in targets]
        self.retries = retries
        self.publish = publish
        self.alert = alert
        self.title = title
        self.backoff_s = backoff_s

    def on_event(self, event: Event) -> None:
        """Inline bus handler: a new alert, an escalation or a CRIT still unacknowledged goes out."""
        if isinstance(event, AlertRaised):
            self.send(event.alert, "new")
        elif isinstance(event, AlertUpdated) and event.change in ("escalated", "repeat"):
            self.send(event.alert, event.change)

    def send(self, alert: Alert, change: str, everyone: bool = False) -> None:
        if alert.code in NOT_SENT:
            return
        for target in self.targets:
            if everyone or RANK[alert.severity.value] >= target.min_rank:
                target.queue.put_nowait((alert, change))

    def workers(self) -> list[tuple[str, Any]]:
        """(name, coroutine) of one worker per target, for the engine to own."""
        return [(f"notify {t.label}", self._work(t)) for t in self.targets]

    async def _work(self, target: _Target) -> None:
        while True:
            alert, change = await target.queue.get()
            await self._deliver(target, alert, change)

    async def _deliver(self, target: _Target, alert: Alert, change: str) -> None:
        ap = apprise.Apprise()
        ap.add(target.url)
        title = f"{self.title}: {alert.severity.value} {alert.code}"
        if change == "escalated":
            title += " (escalated: unacknowledged)"
        elif change == "repeat":
            title += " (still unacknowledged)"
        body = alert.message + (f" (x{alert.count})" if alert.count > 1 else "") + f" [alert #{alert.id}]"
        error = ""
        for attempt in range(1, self.retries + 2):
            try:
                if await ap.async_notify(body=body, title=title, notify_type=NOTIFY_TYPE[alert.severity]):
                    self.publish(NotificationSent(alert.id, target.label, True, attempt))
                    return
                error = "the service refused or did not answer"
            except Exception as exc:  # a sink must never take the engine down; the failure is reported below
                error = f"{type(exc).__name__}"
            if attempt <= self.retries:
                await asyncio.sleep(self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)])
        self.publish(NotificationSent(alert.id, target.label, False, self.retries + 1, error))
        self.alert(Severity.WARN, "NOTIFY_FAILED",
                   f"alert #{alert.id} {alert.code} was not delivered to {target.label} after {self.retries + 1} "
                   f"attempt(s): {error}; it is in the store and on screen", values={"alert_id": alert.id})

    def pending(self) -> int:
        return sum(t.queue.qsize() for t in self.targets)
