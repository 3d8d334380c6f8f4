"""The Telegram bot: long polling of the Bot API through python-telegram-bot's ``Bot`` (no inbound port), the
allow-lists, and replies in the thread of the command.

The library's ``Bot`` does the HTTP, the Bot API's envelope and its errors (``RetryAfter`` for a 429 with
``retry_after``, ``InvalidToken`` for a refused token, ``NetworkError`` for a 502 or a dropped connection); the loop
here owns what the operator sees of it: every failure goes to the bot's ``BotLink`` (one alert per outage, backoff),
every command runs as its own task, so a poll is never held up by a close-all and a /halt never waits behind one.
Replies go as plain text (no ``parse_mode``): nothing in them is read as markup.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import warnings
from collections.abc import Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.api.server import Backend
from engine.chat.desk import Button, Desk, Reply, Sender, alert_buttons, alert_text
from engine.chat.link import BotLink, Spawn, scrubbed
from engine.kernel.config import TelegramChatConfig
from engine.kernel.events import Alert, Severity

if TYPE_CHECKING:
    from telegram import Bot, Update
    from telegram.error import RetryAfter

log = logging.getLogger(__name__)
# httpx logs every request's URL at INFO, and a Bot API URL carries the token: never below WARNING.
for _name in ("httpx", "httpcore", "telegram"):
    logging.getLogger(_name).setLevel(logging.WARNING)

TEXT_MAX = 4000  # the Bot API takes 4096 characters in a message
ALLOWED_UPDATES = ("message", "callback_query")


def retry_after_s(exc: RetryAfter) -> float:
    """The seconds a 429 asks to wait (python-telegram-bot 22 gives an int or a timedelta, and warns on reading it
    until it settles on timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


class TelegramBot:
    """One Telegram bot for the engine: polls, answers the allowed chats and users, posts alerts to them."""

    name = "telegram"

    def __init__(self, cfg: TelegramChatConfig, backend: Backend, spawn: Spawn) -> None:
        self.cfg = cfg
        self.backend = backend
        self.spawn = spawn
        self.link = BotLink(self.name, backend.alert)
        self.desk = Desk(backend, self.name, cfg.rate_per_min, on_command=self.link.commanded)
        self.token = cfg.token.get_secret_value() if cfg.token is not None else ""
        self.outbox: asyncio.Queue[Alert] = asyncio.Queue(maxsize=50)
        self._bot: Bot | None = None

    def _bot_now(self) -> Bot:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        if self._bot is None:
            # The long poll has a connection of its own, so replies never queue behind it.
            self._bot = Bot(
                self.token,
                base_url=self.cfg.api_url,
                request=HTTPXRequest(connection_pool_size=8, read_timeout=10.0, connect_timeout=5.0),
                get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=10.0, connect_timeout=5.0),
            )
        return self._bot

    async def run(self) -> None:
        """Poll for ever; every failure is the link's (one alert, backoff), never the engine's."""
        # python-telegram-bot is imported in a thread: the engine's loop does not wait for it.
        await asyncio.to_thread(importlib.import_module, "telegram")
        from telegram.error import InvalidToken, RetryAfter, TelegramError

        bot = self._bot_now()
        self.spawn("chat telegram alerts", self._send_alerts())
        offset: int | None = None
        ready = False
        while True:
            try:
                if not ready:
                    await bot.initialize()  # getMe: the token is good
                    await bot.delete_webhook()  # getUpdates refuses to run while a webhook is set
                    ready = True
                updates = await bot.get_updates(
                    offset=offset, timeout=int(self.cfg.poll_timeout_s), allowed_updates=ALLOWED_UPDATES
                )
            except RetryAfter as exc:
                seconds = retry_after_s(exc)
                await asyncio.sleep(self.link.failed(f"Telegram asks to wait {seconds:.0f} s (429)", seconds))
                continue
            except InvalidToken:
                ready = False
                await asyncio.sleep(self.link.failed("the token was refused (fix COCKPIT_CHAT__TELEGRAM__TOKEN)"))
                continue
            except TelegramError as exc:  # NetworkError (502, a dropped connection), TimedOut, Conflict, ...
                await asyncio.sleep(self.link.failed(f"Telegram is not answering ({self._why(exc)})"))
                continue
            self.link.up()
            for update in updates:
                offset = update.update_id + 1
                self.spawn(f"chat telegram update {update.update_id}", self._handle(update))

    def _why(self, exc: BaseException) -> str:
        return scrubbed(f"{type(exc).__name__}: {exc}", (self.token,))

    async def close(self) -> None:
        if self._bot is not None:
            try:
                await self._bot.shutdown()
            except Exception as exc:  # a bot that never started, or a service gone: nothing to tidy
                log.debug("telegram bot shutdown: %s", self._why(exc))
        self.link.stopped()

    # ------------------------------------------------------------ updates

    def _allowed(self, chat_id: int, user_id: int) -> bool:
        return chat_id in self.cfg.chat_ids and user_id in self.cfg.user_ids

    def _refused(self, chat_id: int, user_id: int) -> None:
        """Nothing done, nothing said to them: only a WARN with the ids (never the message text)."""
        self.backend.alert(
            Severity.WARN,
            "CHAT_UNAUTHORIZED",
            f"telegram: a command from user {user_id} in chat {chat_id}, not on the allow-lists, was ignored",
            {"bot": self.name, "user_id": user_id, "chat_id": chat_id},
        )

    async def _handle(self, update: Update) -> None:
        message, query = update.message, update.callback_query
        if message is not None and message.from_user is not None and message.text:
            if not message.text.startswith("/"):
                return  # talk in a group is not a command (and a stranger's talk there is no intrusion)
            user = message.from_user
            if not self._allowed(message.chat.id, user.id):
                self._refused(message.chat.id, user.id)
                return
            sender = Sender(self.name, str(user.id), user.username or user.first_name, str(message.chat.id))
            reply = await self.desk.command(sender, message.text)
            if reply is not None:
                await self._send(message.chat.id, reply, message.message_id)
        elif query is not None and query.data:
            user = query.from_user
            chat = query.message.chat.id if query.message is not None else user.id
            if not self._allowed(chat, user.id):
                self._refused(chat, user.id)
                return
            await self._call(self._bot_now().answer_callback_query(query.id))  # stops the button's spinner
            sender = Sender(self.name, str(user.id), user.username or user.first_name, str(chat))
            reply = await self.desk.press(sender, query.data)
            if reply is not None:
                thread = query.message.message_id if query.message is not None else None
                await self._send(chat, reply, thread)

    async def _send(self, chat_id: int, reply: Reply, thread: int | None) -> None:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

        markup = (
            InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data) for b in reply.buttons]])
            if reply.buttons
            else None
        )
        params = ReplyParameters(thread, allow_sending_without_reply=True) if thread is not None else None
        text = reply.text if len(reply.text) <= TEXT_MAX else reply.text[: TEXT_MAX - 1] + "…"
        await self._call(self._bot_now().send_message(chat_id, text, reply_parameters=params, reply_markup=markup))

    async def _call(self, call: Coroutine[Any, Any, Any]) -> None:
        """A reply: one more try after the service's own wait on a 429; a failure is logged (scrubbed)."""
        from telegram.error import RetryAfter, TelegramError

        try:
            await call
        except RetryAfter as exc:
            await asyncio.sleep(min(retry_after_s(exc), 30.0))
            log.warning("telegram: a reply was refused for flood control (429); not sent again")
        except TelegramError as exc:
            log.warning("telegram: a reply could not be sent (%s)", self._why(exc))

    # ------------------------------------------------------------ alerts to the chats

    def post_alert(self, alert: Alert) -> None:
        """Queue ``alert`` for every allowed chat, with the buttons that fit it (dropped when the queue is full:
        the alert is in the store and on the screen, and apprise's sinks have it too)."""
        try:
            self.outbox.put_nowait(alert)
        except asyncio.QueueFull:
            log.warning("telegram: alert #%d not posted to chat: too many waiting", alert.id)

    async def _send_alerts(self) -> None:
        while True:
            alert = await self.outbox.get()
            buttons: tuple[Button, ...] = alert_buttons(alert)
            for chat_id in self.cfg.chat_ids:
                await self._send(chat_id, Reply(alert_text(alert), buttons), None)
