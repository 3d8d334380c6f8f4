"""Small fakes of Telegram's Bot API and of Slack's Web API + Socket Mode websocket, on loopback (aiohttp), for the
chat bots' tests: the real python-telegram-bot and slack_sdk talk to them over real HTTP and websockets.

Shapes follow the services (shared notes "Telegram long polling + Slack Socket Mode bots against local fakes"):
Telegram's envelope ``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code", "description", "parameters"}``
with form-encoded requests; Slack's ``apps.connections.open`` → ``{"ok": true, "url": "ws://..."}``, then ``hello``
and envelopes on the websocket, acknowledged by ``{"envelope_id"}``. Faults: the next calls answered with a status
(502, 429 with ``retry_after``), a connection dropped without an answer, the websocket closed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

BOT_USER = {"id": 999, "is_bot": True, "first_name": "cockpit", "username": "cockpit_bot"}


async def _params(request: web.Request) -> dict[str, Any]:
    """A request's parameters, from a JSON body or a form (Telegram's clients send forms; values JSON-dumped)."""
    out: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        out.update(body if isinstance(body, dict) else {})
    elif request.can_read_body:
        out.update(dict(await request.post()))
    return out


class _Server:
    def __init__(self) -> None:
        self.app = web.Application()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


class FakeTelegram(_Server):
    """The Bot API for one bot token: getMe, deleteWebhook, getUpdates (long polling), sendMessage,
    answerCallbackQuery. ``say`` and ``press`` put a user's message or button press in the updates."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.new_update = asyncio.Event()
        self.sent: list[dict[str, Any]] = []  # sendMessage calls: chat_id, text, reply_parameters, reply_markup
        self.answered: list[str] = []  # callback query ids answered
        self.calls: list[str] = []  # method names, in order
        self.faults: list[tuple[str, int, float | None]] = []  # ("status", code, retry_after) | ("drop", 0, None)
        self._ids = itertools.count(1)
        self._messages = itertools.count(1000)
        self.app.router.add_post("/bot{token}/{method}", self._handle)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # ---------------------------------------------------------------- what users do

    def say(self, chat_id: int, user_id: int, text: str, username: str = "alice") -> int:
        """A message from a user in a chat; returns its message id."""
        message_id = next(self._messages)
        self._push(
            {
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private" if chat_id == user_id else "group"},
                    "from": {"id": user_id, "is_bot": False, "first_name": username.title(), "username": username},
                    "text": text,
                }
            }
        )
        return message_id

    def press(self, chat_id: int, user_id: int, data: str, message_id: int, username: str = "alice") -> str:
        """A button under the bot's message ``message_id`` pressed; returns the callback query's id."""
        query_id = uuid.uuid4().hex[:12]
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": username.title(), "username": username},
                    "chat_instance": "1",
                    "data": data,
                    "message": {
                        "message_id": message_id,
                        "date": int(time.time()),
                        "chat": {"id": chat_id, "type": "private"},
                        "from": BOT_USER,
                        "text": "…",
                    },
                }
            }
        )
        return query_id

    def _push(self, body: dict[str, Any]) -> None:
        self.updates.append({"update_id": next(self._ids), **body})
        self.new_update.set()

    def replies_to(self, message_id: int) -> list[dict[str, Any]]:
        return [s for s in self.sent if (s.get("reply_parameters") or {}).get("message_id") == message_id]

    def fail_next(self, count: int, status: int, retry_after: float | None = None) -> None:
        self.faults += [("status", status, retry_after)] * count

    def drop_next(self, count: int = 1) -> None:
        self.faults += [("drop", 0, None)] * count

    # ---------------------------------------------------------------- the API

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"].lower()
        self.calls.append(method)
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        if method == "getupdates" and self.faults:
            kind, status, retry_after = self.faults.pop(0)
            if kind == "drop":
                assert request.transport is not None
                request.transport.close()
                return web.Response()
            body: dict[str, Any] = {"ok": False, "error_code": status, "description": "Bad Gateway"}
            if retry_after is not None:
                body["description"] = f"Too Many Requests: retry after {retry_after:g}"
                body["parameters"] = {"retry_after": retry_after}
            return web.json_response(body, status=status)
        params = await _params(request)
        if method == "getme":
            return self._ok(BOT_USER)
        if method == "deletewebhook":
            return self._ok(True)
        if method == "getupdates":
            return self._ok(await self._get_updates(params))
        if method == "sendmessage":
            sent = {
                "chat_id": int(params["chat_id"]),
                "text": params["text"],
                "parse_mode": params.get("parse_mode"),
                "reply_parameters": json.loads(params["reply_parameters"]) if params.get("reply_parameters") else None,
                "reply_markup": json.loads(params["reply_markup"]) if params.get("reply_markup") else None,
                "at": time.perf_counter(),
            }
            self.sent.append(sent)
            message_id = next(self._messages)
            sent["message_id"] = message_id
            return self._ok(
                {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": {"id": sent["chat_id"], "type": "private"},
                    "from": BOT_USER,
                    "text": sent["text"],
                }
            )
        if method == "answercallbackquery":
            self.answered.append(str(params["callback_query_id"]))
            return self._ok(True)
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found: method not found"}, 404)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed ones are forgotten
        if not self.updates:
            self.new_update.clear()
            timeout = min(float(params.get("timeout") or 0), 1.0)
            try:
                await asyncio.wait_for(self.new_update.wait(), timeout)
            except TimeoutError:
                pass
        return list(self.updates)

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})


class FakeSlack(_Server):
    """Slack's Web API (apps.connections.open, auth.test, chat.postMessage, users.info) and one Socket Mode
    websocket. ``slash``, ``message`` and ``click`` send envelopes the way Slack does."""

    def __init__(self, bot_token: str, app_token: str) -> None:
        super().__init__()
        self.bot_token, self.app_token = bot_token, app_token
        self.sockets: list[web.WebSocketResponse] = []
        self.acks: list[str] = []
        self.posted: list[dict[str, Any]] = []
        self.opens = 0  # apps.connections.open answered ok
        self.open_faults: list[int] = []  # statuses for the next apps.connections.open calls
        self.connected = asyncio.Event()
        self.names = {"U1": "alice", "U2": "bob", "U9": "mallory"}
        self.app.router.add_route("*", "/api/{method}", self._api)
        self.app.router.add_get("/link", self._link)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        auth = request.headers.get("Authorization", "")
        params = await _params(request)
        if method == "apps.connections.open":
            if auth != f"Bearer {self.app_token}":
                return web.json_response({"ok": False, "error": "invalid_auth"})
            if self.open_faults:
                return web.Response(status=self.open_faults.pop(0), text="Bad Gateway")
            self.opens += 1
            return web.json_response({"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"})
        if auth != f"Bearer {self.bot_token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method == "auth.test":
            return web.json_response({"ok": True, "user_id": "UBOT", "bot_id": "B1", "team_id": "T1"})
        if method == "users.info":
            user = str(params.get("user"))
            return web.json_response({"ok": True, "user": {"id": user, "name": self.names.get(user, user)}})
        if method == "chat.postMessage":
            self.posted.append({**params, "at": time.perf_counter()})
            return web.json_response({"ok": True, "channel": params.get("channel"), "ts": f"{time.time():.6f}"})
        return web.json_response({"ok": False, "error": "unknown_method"})

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # autoping: the SDK's pings are answered
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A111"}})
        self.connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    body = json.loads(msg.data)
                    if "envelope_id" in body:
                        self.acks.append(body["envelope_id"])
        finally:
            if ws in self.sockets:
                self.sockets.remove(ws)
            if not self.sockets:
                self.connected.clear()
        return ws

    async def _send(self, kind: str, payload: dict[str, Any]) -> str:
        envelope_id = uuid.uuid4().hex
        for ws in list(self.sockets)[-1:]:
            await ws.send_json(
                {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": False}
            )
        return envelope_id

    async def slash(self, channel: str, user: str, command: str, text: str = "") -> str:
        return await self._send(
            "slash_commands",
            {
                "command": command,
                "text": text,
                "user_id": user,
                "user_name": self.names.get(user, user),
                "channel_id": channel,
                "team_id": "T1",
                "api_app_id": "A111",
                "response_url": "http://127.0.0.1/unused",
                "trigger_id": "1",
            },
        )

    async def message(self, channel: str, user: str, text: str) -> tuple[str, str]:
        """A message in a channel; returns (envelope id, its ts)."""
        ts = f"{time.time():.6f}"
        event = {"type": "message", "user": user, "text": text, "channel": channel, "ts": ts}
        payload = {"type": "event_callback", "team_id": "T1", "api_app_id": "A111", "event_id": "E1", "event": event}
        return await self._send("events_api", payload), ts

    async def click(self, channel: str, user: str, value: str, message_ts: str = "1.0") -> str:
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": self.names.get(user, user)},
            "channel": {"id": channel},
            "message": {"ts": message_ts},
            "actions": [{"action_id": "cockpit-0", "block_id": "b", "value": value}],
            "response_url": "http://127.0.0.1/unused",
            "trigger_id": "1",
        }
        return await self._send("interactive", payload)

    async def drop(self) -> None:
        """Close every Socket Mode connection, as a network drop or a Slack restart does."""
        for ws in list(self.sockets):
            await ws.close()

    def posted_to(self, channel: str) -> list[dict[str, Any]]:
        return [p for p in self.posted if p.get("channel") == channel]
