"""The Slack bot: Socket Mode through the official ``slack_sdk`` (its aiohttp ``SocketModeClient`` and
``AsyncWebClient``), so no inbound port; the same commands as slash commands (``/stop``, or ``/cockpit stop``),
as messages in an allowed channel (``stop``, ``!stop``, ``@cockpit stop``) and as buttons.

Every envelope is acknowledged at once (Slack wants it within 3 s; a close-all can take longer) and answered by a
message in the thread of the command. Replies are ``plain_text`` blocks (never markup) with ``&``, ``<`` and ``>``
escaped in the fallback text, so ``<!channel>`` in a venue's error pages nobody. The SDK reconnects by itself after
a drop or a ``disconnect`` message; the loop here watches it, and a connection down past ``GRACE_S`` (or a refused
connect) is the link's outage: one alert, backoff.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
from typing import TYPE_CHECKING, Any

from engine.api.server import Backend
from engine.chat import link as links
from engine.chat.desk import Desk, Reply, Sender, alert_buttons, alert_text
from engine.chat.link import BotLink, Spawn, scrubbed
from engine.kernel.config import SlackChatConfig
from engine.kernel.events import Alert, Severity

if TYPE_CHECKING:
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest

log = logging.getLogger(__name__)
# The SDK logs its reconnects at INFO and request details at DEBUG: the engine's log keeps its own account.
logging.getLogger("slack_sdk").setLevel(logging.WARNING)

TEXT_MAX = 2900  # a plain_text section holds 3000 characters
WATCH_S = 0.5  # how often the connection is looked at
_MENTION = re.compile(r"<@[A-Z0-9]+>")


def slack_safe(text: str) -> str:
    """Text for a Slack ``text`` field: ``&``, ``<``, ``>`` escaped, as Slack asks (no mention, no link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackBot:
    """One Slack app for the engine: Socket Mode in, Web API out, the allowed channels and users only."""

    name = "slack"

    def __init__(self, cfg: SlackChatConfig, backend: Backend, spawn: Spawn) -> None:
        self.cfg = cfg
        self.backend = backend
        self.spawn = spawn
        self.link = BotLink(self.name, backend.alert)
        self.desk = Desk(backend, self.name, cfg.rate_per_min, on_command=self.link.commanded)
        self.tokens = tuple(t.get_secret_value() for t in (cfg.bot_token, cfg.app_token) if t is not None)
        self.outbox: asyncio.Queue[Alert] = asyncio.Queue(maxsize=50)
        self._client: SocketModeClient | None = None
        self._names: dict[str, str] = {}

    def _why(self, exc: BaseException) -> str:
        return scrubbed(f"{type(exc).__name__}: {exc}", self.tokens)

    async def run(self) -> None:
        """Connect, then watch the connection for ever; every failure is the link's, never the engine's."""
        await asyncio.to_thread(importlib.import_module, "slack_sdk.socket_mode.aiohttp")
        from slack_sdk.errors import SlackApiError
        from slack_sdk.socket_mode.aiohttp import SocketModeClient
        from slack_sdk.web.async_client import AsyncWebClient

        assert self.cfg.bot_token is not None and self.cfg.app_token is not None, "checked by the settings"
        web = AsyncWebClient(token=self.cfg.bot_token.get_secret_value(), base_url=self.cfg.api_url, timeout=10)
        # The SDK's own logger, under slack_sdk (kept at WARNING): its reconnects are the link's to report.
        client = self._client = SocketModeClient(
            app_token=self.cfg.app_token.get_secret_value(),
            web_client=web,
            logger=logging.getLogger("slack_sdk.socket_mode.cockpit"),
        )
        client.socket_mode_request_listeners.append(self._on_request)  # type: ignore[arg-type]  # it passes itself
        self.spawn("chat slack alerts", self._send_alerts())
        loop = asyncio.get_running_loop()
        down_since: float | None = None
        while True:
            if not await client.is_connected():
                if down_since is None:
                    down_since = loop.time()
                if self.link.state != "connected" or loop.time() - down_since >= links.GRACE_S:
                    # Not yet connected, or the SDK's own reconnect has not healed it in time: connect here.
                    try:
                        await client.connect_to_new_endpoint(force=True)
                    except SlackApiError as exc:
                        data = getattr(exc.response, "data", None)
                        error = str(data.get("error", "refused")) if isinstance(data, dict) else "refused"
                        why = (
                            "the app token was refused (fix COCKPIT_CHAT__SLACK__APP_TOKEN)"
                            if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked")
                            else f"Slack refused the connection ({scrubbed(error, self.tokens)})"
                        )
                        await asyncio.sleep(self.link.failed(why))
                        continue
                    except (TimeoutError, OSError, ValueError) as exc:  # aiohttp's errors are OSErrors
                        await asyncio.sleep(self.link.failed(f"Slack is not answering ({self._why(exc)})"))
                        continue
                    except Exception as exc:  # the SDK trips on a body that is not JSON (a proxy's 502 page)
                        why = f"Slack's apps.connections.open failed ({self._why(exc)})"
                        await asyncio.sleep(self.link.failed(why))
                        continue
            else:
                down_since = None
                self.link.up()
            await asyncio.sleep(WATCH_S)

    async def close(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()  # type: ignore[no-untyped-call]  # the SDK's close is not annotated
            except Exception as exc:  # a client that never connected: nothing to close
                log.debug("slack client close: %s", self._why(exc))
        self.link.stopped()

    # ------------------------------------------------------------ envelopes

    async def _on_request(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        self.spawn(f"chat slack {req.type} {req.envelope_id}", self._handle(req.type, req.payload))

    def _allowed(self, channel: str, user: str) -> bool:
        return channel in self.cfg.channel_ids and user in self.cfg.user_ids

    def _refused(self, channel: str, user: str) -> None:
        self.backend.alert(
            Severity.WARN,
            "CHAT_UNAUTHORIZED",
            f"slack: a command from user {scrubbed(user)} in channel {scrubbed(channel)}, not on the allow-lists, "
            "was ignored",
            {"bot": self.name, "user_id": scrubbed(user), "chat_id": scrubbed(channel)},
        )

    async def _handle(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "slash_commands":
            user, channel = str(payload.get("user_id", "")), str(payload.get("channel_id", ""))
            command, text = str(payload.get("command", "")), str(payload.get("text", ""))
            text = (text or "help") if command.lstrip("/") == "cockpit" else f"{command} {text}"
            await self._command(user, channel, str(payload.get("user_name") or ""), text, None)
        elif kind == "events_api":
            event = payload.get("event") or {}
            if event.get("type") not in ("message", "app_mention") or event.get("bot_id") or event.get("subtype"):
                return  # our own posts come back as messages; edits and joins are not commands
            text = _MENTION.sub("", str(event.get("text", ""))).strip()
            if event.get("type") == "message" and not text.startswith(("/", "!")):
                return  # in a channel, plain talk is not a command: `!stop`, `/stop` or `@cockpit stop` is
            user, channel = str(event.get("user", "")), str(event.get("channel", ""))
            thread = str(event.get("thread_ts") or event.get("ts") or "") or None
            await self._command(user, channel, "", text, thread)
        elif kind == "interactive" and payload.get("type") == "block_actions":
            user_info, actions = payload.get("user") or {}, payload.get("actions") or []
            user = str(user_info.get("id", ""))
            channel = str((payload.get("channel") or {}).get("id", ""))
            if not self._allowed(channel, user):
                self._refused(channel, user)
                return
            message = payload.get("message") or {}
            thread = str(message.get("thread_ts") or message.get("ts") or "") or None
            name = str(user_info.get("username") or user_info.get("name") or "") or await self._name(user)
            for action in actions[:1]:
                reply = await self.desk.press(Sender(self.name, user, name, channel), str(action.get("value", "")))
                if reply is not None:
                    await self._post(channel, reply, thread)

    async def _command(self, user: str, channel: str, name: str, text: str, thread: str | None) -> None:
        if not self._allowed(channel, user):
            self._refused(channel, user)
            return
        sender = Sender(self.name, user, name or await self._name(user), channel)
        reply = await self.desk.command(sender, text)
        if reply is not None:
            await self._post(channel, reply, thread)

    async def _name(self, user: str) -> str:
        """The user's handle (``users.info``, once per user); their id when Slack does not say."""
        if user not in self._names:
            from slack_sdk.errors import SlackApiError

            name = user
            if self._client is not None:
                try:
                    info = await self._client.web_client.users_info(user=user)
                    profile = info.get("user") or {}
                    name = str(profile.get("name") or profile.get("real_name") or user)
                except (TimeoutError, SlackApiError, OSError) as exc:
                    log.warning("slack: users.info for %s failed (%s)", scrubbed(user), self._why(exc))
            self._names[user] = name
        return self._names[user]

    async def _post(self, channel: str, reply: Reply, thread: str | None) -> None:
        from slack_sdk.errors import SlackApiError

        if self._client is None:
            return
        text = reply.text if len(reply.text) <= TEXT_MAX else reply.text[: TEXT_MAX - 1] + "…"
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "plain_text", "text": text}}]
        if reply.buttons:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": b.label},
                            "action_id": f"cockpit-{n}",
                            "value": b.data,
                        }
                        for n, b in enumerate(reply.buttons)
                    ],
                }
            )
        try:
            await self._client.web_client.chat_postMessage(
                channel=channel, text=slack_safe(text), blocks=blocks, thread_ts=thread, mrkdwn=False
            )
        except (TimeoutError, SlackApiError, OSError) as exc:
            log.warning("slack: a reply could not be sent (%s)", self._why(exc))

    # ------------------------------------------------------------ alerts to the channels

    def post_alert(self, alert: Alert) -> None:
        try:
            self.outbox.put_nowait(alert)
        except asyncio.QueueFull:
            log.warning("slack: alert #%d not posted to chat: too many waiting", alert.id)

    async def _send_alerts(self) -> None:
        while True:
            alert = await self.outbox.get()
            for channel in self.cfg.channel_ids:
                await self._post(channel, Reply(alert_text(alert), alert_buttons(alert)), None)
