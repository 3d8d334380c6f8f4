"""One chat bot's connection as the operator sees it (the health line, ``cockpit status``): connected, failing or
off, when the last command came, and one alert per outage, retried with backoff (issue 21: the chat service being
down or its token refused is one alert; it never disturbs the engine or the kill switch)."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from engine.kernel.events import Severity, utcnow
from engine.kernel.text import inert

# Between attempts while the service fails: doubling up to a minute (a refused token is not fixed by hammering).
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
# How long a connection the library heals by itself (a Socket Mode reconnect) may be down before it is an outage.
GRACE_S = 10.0
# Telegram's token in a URL (bot123456:ABC...), Slack's tokens (xoxb-, xapp-): never shown, whatever says them.
_TOKENS = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}|xox[a-z]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")

Alert = Callable[[Severity, str, str, dict[str, Any] | None], None]


class Spawn(Protocol):
    """The engine's owned-task spawner (``TaskGroup.spawn``): a bot's tasks are the engine's."""

    def __call__(self, name: str, coro: Coroutine[Any, Any, Any], /) -> Any: ...


def scrubbed(text: object, secrets: tuple[str, ...] = ()) -> str:
    """``text`` inert, with every token in it (the configured ones, and anything shaped like one) replaced."""
    out = str(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "<token>")
    return inert(_TOKENS.sub("<token>", out), limit=300)


class BotLink:
    """The state of one bot: ``connecting`` → ``connected`` ⇄ ``failing`` (``off`` when it is stopped)."""

    def __init__(self, name: str, alert: Alert, backoff_s: tuple[float, ...] | None = None) -> None:
        self.name = name
        self.alert = alert
        self.backoff_s = backoff_s or BACKOFF_S
        self.state = "connecting"
        self.detail = ""
        self.last_command_at: str | None = None
        self.failures = 0
        self.alerts_raised = 0
        self._alerted = False
        self.on_change: Callable[[], None] = lambda: None  # the engine's beacon, for `cockpit status`

    def up(self) -> None:
        """The service answered: connected (and, after an outage that was alerted, say it is back)."""
        if self.state == "connected":
            return
        if self._alerted:
            self.alert(
                Severity.INFO,
                "CHAT_RESTORED",
                f"{self.name}: connected again; chat commands work",
                {"bot": self.name},
            )
        self.state, self.detail, self.failures, self._alerted = "connected", "", 0, False
        self.on_change()

    def failed(self, why: str, wait_s: float | None = None) -> float:
        """The service failed (``why``, already scrubbed): failing, one alert for the outage; returns how long to
        wait before the next attempt (the service's own ``retry_after`` when it gave one, else the backoff)."""
        changed = self.state != "failing"
        self.state, self.detail = "failing", why
        self.failures += 1
        if changed:
            self.on_change()
        backoff = self.backoff_s[min(self.failures - 1, len(self.backoff_s) - 1)]
        wait = backoff if wait_s is None else max(wait_s, 0.0)
        if not self._alerted:
            self._alerted = True
            self.alerts_raised += 1
            self.alert(
                Severity.WARN,
                "CHAT_UNAVAILABLE",
                f"{self.name}: {why}; trying again with backoff (next in {wait:.0f} s). Trading and the kill "
                "switch are not affected: the keys and `cockpit halt` still work",
                {"bot": self.name},
            )
        return wait

    def commanded(self) -> None:
        self.last_command_at = utcnow().isoformat()
        self.on_change()

    def stopped(self) -> None:
        self.state = "off"
        self.on_change()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "last_command_at": self.last_command_at,
            "detail": self.detail,
        }
