"""The chat bots of one engine, as the engine starts, feeds and stops them: each enabled bot runs as the engine's
own task in its process (no inbound port, no second process to keep alive), and alerts at or over a bot's
``alerts`` severity are posted to its chats with the buttons that fit them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from engine.api.server import Backend
from engine.chat.link import Spawn
from engine.chat.slack import SlackBot
from engine.chat.telegram import TelegramBot
from engine.kernel.config import ChatConfig
from engine.kernel.events import AlertRaised, AlertUpdated, Event

RANK = {"INFO": 0, "WARN": 1, "CRIT": 2}
# About the bots themselves: a chat that is down cannot carry news of its own outage, and an unauthorized sender's
# id is for the operator's screen, not for the chat it came from.
NOT_POSTED = ("CHAT_",)


class ChatBots:
    """Every enabled bot: started with the engine, stopped with it; ``states`` for the health line and status."""

    def __init__(
        self, cfg: ChatConfig, backend: Backend, spawn: Spawn, on_change: Callable[[], None] = lambda: None
    ) -> None:
        self.spawn = spawn
        self.bots: list[TelegramBot | SlackBot] = []
        if cfg.telegram.enabled:
            self.bots.append(TelegramBot(cfg.telegram, backend, spawn))
        if cfg.slack.enabled:
            self.bots.append(SlackBot(cfg.slack, backend, spawn))
        for bot in self.bots:
            bot.link.on_change = on_change
        self._tasks: list[Any] = []
        self._min_rank = {bot.name: RANK.get(bot.cfg.alerts, 99) for bot in self.bots}

    def start(self) -> None:
        self._tasks = [self.spawn(f"chat {bot.name}", bot.run()) for bot in self.bots]

    async def stop(self) -> None:
        """Stop polling first (a service going away with the engine is no outage), then close each client."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for bot in self.bots:
            await bot.close()

    def on_event(self, event: Event) -> None:
        """Inline bus handler: a new alert (or one escalated) goes to every bot that takes its severity."""
        if isinstance(event, AlertRaised) or (isinstance(event, AlertUpdated) and event.change == "escalated"):
            alert = event.alert
            if alert.code.startswith(NOT_POSTED):
                return
            for bot in self.bots:
                if RANK[alert.severity.value] >= self._min_rank[bot.name]:
                    bot.post_alert(alert)

    def states(self) -> list[dict[str, Any]]:
        """``[{name, state, last_command_at, detail}]``, one per enabled bot."""
        return [bot.link.to_dict() for bot in self.bots]
