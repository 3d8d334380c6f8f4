"""Alerts to people: every notification URL (apprise's syntax: Slack, Telegram, e-mail, json:// webhooks...) gets
the alerts at or over its ``min_severity``, sent off the engine's path by one worker per target, retried with
backoff, and every delivery recorded; a delivery that fails after its retries is itself an alert on the screen and
in the store (never sent on, never lost silently). URLs can carry tokens: only their masked form is ever shown.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from engine.kernel.config import NotifyTarget
from engine.kernel.events import Alert, AlertRaised, AlertUpdated, Event, NotificationSent, Severity
from engine.kernel.ports import AlertPort, Publish
from engine.kernel.text import inert

log = logging.getLogger(__name__)
# apprise logs what it sends at INFO/DEBUG; a URL's token must never reach a log.
logging.getLogger("apprise").setLevel(logging.CRITICAL)

RANK = {"INFO": 0, "WARN": 1, "CRIT": 2}
# apprise's notify types by severity (imported where a URL is configured: apprise takes ~0.2 s to import).
NOTIFY_TYPE = {Severity.INFO: "INFO", Severity.WARN: "WARNING", Severity.CRIT: "FAILURE"}
BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
# Alerts about delivery itself stay on the screen and in the store: sending them would loop.
NOT_SENT = frozenset({"NOTIFY_FAILED"})


# Schemes whose host is a plain host name (a webhook); in every other scheme the "host" may be a token (tgram://).
WEBHOOKS = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})


def masked(url: str) -> str:
    """A label for a notification URL that holds no secret: scheme and, for a webhook, host and port only (no
    user, password, path, query: any of them can carry a token)."""
    parts = urlsplit(url)
    if parts.scheme in WEBHOOKS and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}/…"
    return f"{parts.scheme or 'url'}://…"


@dataclass
class _Target:
    url: str
    label: str
    min_rank: int
    queue: asyncio.Queue[tuple[Alert, str]]
    sending: tuple[Alert, str] | None = field(default=None)


class Notifier:
    """Queues alerts per target from the bus and sends them in the background."""

    def __init__(
        self,
        targets: tuple[NotifyTarget, ...],
        retries: int,
        publish: Publish,
        alert: AlertPort,
        title: str = "cockpit",
        backoff_s: tuple[float, ...] = BACKOFF_S,
    ) -> None:
        self.targets = [
            _Target(
                t.url.get_secret_value(),
                f"#{n} {masked(t.url.get_secret_value())}",
                RANK[t.min_severity],
                asyncio.Queue(),
            )
            for n, t in enumerate(targets, 1)
        ]
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

    def send(self, alert: Alert, change: str) -> None:
        if alert.code in NOT_SENT:
            return
        for target in self.targets:
            if RANK[alert.severity.value] >= target.min_rank:
                target.queue.put_nowait((alert, change))

    def send_to_the_rest(self, alert: Alert, change: str) -> None:
        """To the targets whose least severity kept them from getting ``alert`` already (the daily summary)."""
        for target in self.targets:
            if RANK[alert.severity.value] < target.min_rank:
                target.queue.put_nowait((alert, change))

    def workers(self) -> list[tuple[str, Any]]:
        """(name, coroutine) of one worker per target, for the engine to own."""
        return [(f"notify {t.label}", self._work(t)) for t in self.targets]

    async def _work(self, target: _Target) -> None:
        # apprise is imported here, off the event loop, and only when a URL is configured.
        await asyncio.to_thread(importlib.import_module, "apprise")
        while True:
            target.sending = await target.queue.get()
            try:
                await self._deliver(target, *target.sending)
            finally:
                target.sending = None

    async def drain(self, timeout_s: float) -> None:
        """At stop: let what is queued go out for up to ``timeout_s``, then record what could not as failed."""
        deadline = time.monotonic() + timeout_s
        while self.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for target in self.targets:
            left = [target.sending] if target.sending else []
            while not target.queue.empty():
                left.append(target.queue.get_nowait())
            for alert, _ in left:
                self.publish(NotificationSent(alert.id, target.label, False, 0, "engine stopped before delivery"))
                log.error("alert #%d %s not delivered to %s: the engine stopped", alert.id, alert.code, target.label)

    async def _deliver(self, target: _Target, alert: Alert, change: str) -> None:
        import apprise

        ap = apprise.Apprise()
        ap.add(target.url)
        # An alert's words can hold a venue's error or an operator's reason: inert (no escape, no control), and
        # sent as plain text, which apprise escapes for each service that reads HTML or Markdown (e-mail, Telegram,
        # Slack), so a "<b>" or "[link](…)" in them is shown, never rendered.
        title = f"{self.title}: {alert.severity.value} {inert(alert.code, limit=80)}"
        if change == "escalated":
            title += " (escalated: unacknowledged)"
        elif change == "repeat":
            title += " (still unacknowledged)"
        body = inert(alert.message) + (f" (x{alert.count})" if alert.count > 1 else "") + f" [alert #{alert.id}]"
        error = ""
        for attempt in range(1, self.retries + 2):
            try:
                kind = getattr(apprise.NotifyType, NOTIFY_TYPE[alert.severity])
                if await ap.async_notify(
                    body=body, title=title, notify_type=kind, body_format=apprise.NotifyFormat.TEXT
                ):
                    self.publish(NotificationSent(alert.id, target.label, True, attempt))
                    return
                error = "the service refused or did not answer"
            except Exception as exc:  # a sink must never take the engine down; the failure is reported below
                error = f"{type(exc).__name__}"
            if attempt <= self.retries:
                await asyncio.sleep(self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)])
        self.publish(NotificationSent(alert.id, target.label, False, self.retries + 1, error))
        self.alert(
            Severity.WARN,
            "NOTIFY_FAILED",
            f"deliveries to {target.label} are failing ({error}); alert #{alert.id} {alert.code} is in the "
            "store and on screen; `cockpit status` lists what was not delivered",
            values={"target": target.label, "first_alert_id": alert.id},
        )

    def pending(self) -> int:
        return sum(t.queue.qsize() + (1 if t.sending else 0) for t in self.targets)
