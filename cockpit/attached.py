"""A screen attached to a running engine: a client of its service API, over the data directory's Unix socket or a
remote URL with a bearer token.

``cockpit`` on a data directory where an engine already runs (``cockpit run --headless``, or another cockpit)
attaches to it instead of refusing: the same screen, keys and questions; ``q`` detaches and the engine runs on.
The engine names the actor of every command from the transport (``operator:key alice`` on the socket, ``api:NAME``
for a token), never from this client.

Following: the event stream (``WS /api/ws``) first, then a first frame from the queries, then every event. The link
keeps the last journal number it saw; when the connection drops (the engine stopped, its API restarted, the network)
it says so at once (a WebSocket heartbeat finds a silent peer within ``HEARTBEAT_S`` and half again), tries again
with backoff, and on its return asks for what it missed (``?since=N``) after a fresh first frame: no event is lost,
and a ``resync`` (the journal no longer has them all) redraws from the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import stat
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from textual.message import Message

from cockpit.bridge import LinkChanged, pump
from cockpit.link import Emergency, Feed, Link, LinkError, LinkState, Mirror, QueryFailed, screen_config
from cockpit.main_screen import ScreenConfig
from engine.api.local import bindable, socket_path
from engine.kernel.text import inert

if TYPE_CHECKING:
    # The engine's records, for their names only: this module loads before the first frame, they after it (decision
    # BEN-10); the event stream's decoder and a command's answer import them where they are used.
    from engine.kernel.commands import Command, CommandResult

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0  # a ping after this long without a word from the engine; no pong within half of it: gone
BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)  # between attempts to reach the engine again (then the last, for ever)
FIRST_REACH_S = 2.0  # how long a screen just opened tries before it says the engine cannot be reached
STATUS_EVERY_S = 1.0  # what no event carries (the resume refusal, a kill switch retrying): asked this often
STRATEGIES_EVERY = 5  # ... and the strategies every fifth time
QUERY_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 120.0  # a close-all may take the venue's time; the engine answers every command
MESSAGE_MAX = 16 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """Where the engine is: its data directory's socket on this machine, or a remote URL and a bearer token."""

    base_url: str
    socket: Path | None = None
    token: str | None = None
    data_dir: Path | None = None

    @classmethod
    def local(cls, data_dir: Path) -> Target:
        data_dir = Path(data_dir).resolve()
        return cls("http://engine", socket=socket_path(data_dir), data_dir=data_dir)

    @classmethod
    def remote(cls, url: str, token: str) -> Target:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LinkError(f"--url {url!r}: give the engine's remote API as http(s)://HOST:PORT")
        return cls(f"{parts.scheme}://{parts.netloc}", token=token)

    @property
    def where(self) -> str:
        return str(self.data_dir) if self.data_dir is not None else self.base_url


def read_token(path: Path) -> str:
    """The bearer token in ``path``, refused when the file is readable by its group or others (a token is a key:
    owner-only, like the data directory); LinkError says what to do."""
    try:
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise LinkError(
                f"the token file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}): a token is a "
                f"key; make it yours alone (chmod 600 {path}) and start again"
            )
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise LinkError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    if not token or any(c.isspace() for c in token):
        raise LinkError(f"the token file {path} holds no token (one line, as `cockpit api token create` printed it)")
    return token


class AttachedLink(Link):
    """A client of a running engine's service API."""

    owns_engine = False

    def __init__(self, target: Target) -> None:
        self.target = target
        self.kind = "local" if target.socket is not None else "remote"
        self.where = urlsplit(target.base_url).netloc if self.kind == "remote" else ""
        self.view: Mirror = Mirror()
        self.local_data_dir = target.data_dir
        self.last_seq: int | None = None  # the last journal number seen
        self.seqs: deque[int] = deque(maxlen=100_000)  # every journaled event's number, as received (no gap)
        self.gaps = 0  # numbers found missing (each answered with a fresh frame)
        self.resyncs = 0  # the engine's "start again from a frame"
        self.connects = 0  # connections that reached the first frame
        self.reached = asyncio.Event()  # set while following
        self.config: ScreenConfig | None = None
        self._session: Any = None
        self._dir_fd: int | None = None
        self._wire_unknown: set[str] = set()

    @property
    def emergency(self) -> Emergency:  # type: ignore[override]
        data_dir = self.view.data_dir or (str(self.target.data_dir) if self.target.data_dir else None)
        return Emergency(data_dir, remote=self.kind == "remote")

    def describe(self) -> str:
        pid = self.view.pid
        where = f" at {self.target.base_url}" if self.kind == "remote" else ""
        return f"the engine{where} (pid {pid})" if pid else f"the engine{where}"

    # ------------------------------------------------------------ the connection

    async def open(self) -> None:
        """aiohttp and the event stream's decoder (the engine's records), imported in a thread (the first frame
        does not wait for them), and a session for the target."""
        await asyncio.to_thread(importlib.import_module, "aiohttp")
        await asyncio.to_thread(importlib.import_module, "engine.api.wire")
        import aiohttp

        if self.target.socket is not None:
            name, self._dir_fd = bindable(self.target.socket)  # a long path: through a descriptor of its directory
            connector: Any = aiohttp.UnixConnector(path=name)
            headers = {"X-Cockpit-Front-End": "key"}
        else:
            connector = aiohttp.TCPConnector()
            headers = {"Authorization": f"Bearer {self.target.token}"}
        self._session = aiohttp.ClientSession(
            connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=QUERY_TIMEOUT_S)
        )

    async def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
            self._session = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    async def follow(self, post: Callable[[Message], object]) -> None:
        """Follow the engine for as long as the screen is open, reaching it again whenever it is lost."""
        feed = Feed()
        bridge = asyncio.ensure_future(pump(feed, post))
        try:
            await self._follow(feed)
        finally:
            bridge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bridge

    async def _follow(self, feed: Feed) -> None:
        import aiohttp

        attempt = 0
        first_try = time.monotonic()
        while True:
            why = "the engine closed the connection"
            try:
                await self._session_once(feed)
            except aiohttp.WSServerHandshakeError as exc:
                why = _reason(exc)
                if exc.status in (401, 403):  # a wrong or revoked token: trying again would only count failures
                    self._refused(feed, f"the engine refused this token ({exc.status}): it is wrong or revoked")
                    await asyncio.Event().wait()  # nothing more to follow: the screen says why until it is closed
            except (aiohttp.ClientError, OSError, TimeoutError, QueryFailed, ValueError) as exc:
                why = _reason(exc)
            except Exception as exc:  # the link's boundary: a screen that cannot read its engine must not look current
                log.exception("following the engine failed")
                why = f"this screen could not read the engine ({type(exc).__name__}); see cockpit.log"
            if self.connects:
                attempt = 0 if self.state == LinkState.UP else attempt
            self.reached.clear()
            if self.state == LinkState.UP or (
                self.state == LinkState.CONNECTING and time.monotonic() - first_try >= FIRST_REACH_S
            ):
                self.state = LinkState.DOWN
                self.down_since = datetime.now(UTC)
                log.warning("%s cannot be reached: %s", self.describe(), why)
                feed.put(LinkChanged(False, self.down_since, why))
            await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1

    def _refused(self, feed: Feed, why: str) -> None:
        """The engine answers but will not let this screen in: said, and not tried again."""
        self.state, self.down_since = LinkState.DOWN, datetime.now(UTC)
        self.reached.clear()
        log.error("%s: %s", self.describe(), why)
        feed.put(LinkChanged(False, self.down_since, f"{why}; start again with another --token-file"))

    async def _session_once(self, feed: Feed) -> None:
        """One connection: hello, a first frame, then every event until it ends."""
        import aiohttp

        since = f"?since={self.last_seq}" if self.last_seq is not None and self.connects else ""
        async with self._session.ws_connect(
            f"{self.target.base_url}/api/ws{since}", heartbeat=HEARTBEAT_S, max_msg_size=MESSAGE_MAX
        ) as ws:
            hello = await ws.receive_json(timeout=QUERY_TIMEOUT_S)
            if not isinstance(hello, dict) or hello.get("type") != "hello":
                raise QueryFailed(f"not an engine's event stream (it began with {str(hello)[:80]!r})")
            self.view.actor = str(hello.get("actor") or "")
            self.view.may_command = bool(hello.get("may_command", True))
            if self.last_seq is None:
                self.last_seq = int(hello.get("seq") or 0)
            if self.config is None:
                settings = await self.query("config")
                self.config = screen_config(settings)
                self.view.started_mode = self.config.mode
                self.view.exchange = str((settings.get("venue") or {}).get("exchange") or "")
            self.view.load_status(await self.query("status"))
            await self._frame(feed, up=True)
            poller = asyncio.ensure_future(self._poll())
            try:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await self._receive(msg.data, feed)
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        raise QueryFailed(_reason(msg.data) if msg.data else "the event stream broke off")
            finally:
                poller.cancel()
            if ws.close_code is not None and ws.close_code != 1000:
                raise QueryFailed(f"the engine closed the event stream (code {ws.close_code})")

    async def _frame(self, feed: Feed, up: bool = False) -> None:
        """A fresh first frame, drawn before every event received after it."""
        snapshot, raw = await self.first_frame(self.config)
        self.view.load(snapshot, raw.get("state_epoch"))
        if up:
            back = self.connects > 0
            self.connects += 1
            self.state, self.down_since = LinkState.UP, None
            self.reached.set()
            feed.put(LinkChanged(True, detail="reconnected" if back else "attached"))
        feed.put(snapshot)

    async def _receive(self, text: str, feed: Feed) -> None:
        from engine.api import wire

        body = json.loads(text)
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "hello":
            return
        if kind == "resync":
            self.resyncs += 1
            log.warning("the engine's journal lacks events after %s: redrawn from a frame", self.last_seq)
            self.last_seq = max(self.last_seq or 0, int(body.get("seq") or 0))
            await self._frame(feed)
            return
        seq = body.get("seq")
        if isinstance(seq, int):
            last = self.last_seq or 0
            if seq <= last:
                return  # already seen (the catch-up and the live stream overlap)
            if seq > last + 1:
                self.gaps += 1
                log.warning("events %d to %d never arrived: redrawn from a frame", last + 1, seq - 1)
                self.last_seq = seq
                await self._frame(feed)
            self.last_seq = seq
            self.seqs.append(seq)
        try:
            event = wire.decode(body)
        except wire.WireError as exc:  # a newer engine's event: its state comes with the next frame
            if kind not in self._wire_unknown:
                self._wire_unknown.add(str(kind))
                log.warning("an event this cockpit cannot read: %s", exc)
            return
        self.view.apply(event)
        feed.put(event)

    async def _poll(self) -> None:
        """What no event carries, asked every ``STATUS_EVERY_S`` while the link is up."""
        n = 0
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            try:
                self.view.load_status(await self.query("status"))
                if n % STRATEGIES_EVERY == 0:
                    self.view.strategies = list(await self.query("strategies") or [])
            except (QueryFailed, ValueError) as exc:
                log.debug("status not read: %s", exc)
            n += 1

    async def refresh(self) -> None:
        with contextlib.suppress(QueryFailed, ValueError):
            self.view.load_status(await self.query("status"))

    # ------------------------------------------------------------ queries and commands

    async def query(self, name: str, **params: Any) -> Any:
        import aiohttp

        if self._session is None:
            raise QueryFailed("not connected to the engine yet")
        query = {k: str(v) for k, v in params.items() if v is not None}
        try:
            async with self._session.get(f"{self.target.base_url}/api/{name}", params=query) as response:
                answer = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise QueryFailed(f"cannot reach the engine ({_reason(exc)})") from None
        if status >= 400:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise QueryFailed(str(message or f"the engine answered {status}"))
        return answer

    async def execute(self, command: Command) -> CommandResult:
        """The command sent to the engine, which names its actor; its answer, or why there is none."""
        import aiohttp

        from engine.api import wire
        from engine.kernel.commands import CommandResult

        if self._session is None:
            return CommandResult(False, f"{command.name}: not sent, the engine was never reached")
        body = {"args": wire.plain(command.args()), "reason": command.reason}
        try:
            async with self._session.post(
                f"{self.target.base_url}/api/commands/{command.name}",
                json=body,
                timeout=aiohttp.ClientTimeout(total=COMMAND_TIMEOUT_S),
            ) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return CommandResult(
                False,
                f"{command.name}: no answer from {self.describe()} ({_reason(exc)}); whether it ran is in "
                f"`cockpit audit`. {self.emergency.advice(command.name)}",
            )
        if not isinstance(answer, dict):
            return CommandResult(False, f"{command.name}: the engine answered {inert(str(answer), limit=200)}")
        return CommandResult(bool(answer.get("ok")), str(answer.get("message") or ""), answer.get("details") or {})


def _reason(exc: object) -> str:
    """An error in a few words (aiohttp's own texts are long and name the socket)."""
    if isinstance(exc, QueryFailed):
        return str(exc)
    name = type(exc).__name__
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return {429: "refused for a while after failed attempts (429)"}.get(status, f"the engine answered {status}")
    if name == "ServerTimeoutError":
        return "no answer to the heartbeat"
    if isinstance(exc, (ConnectionRefusedError, FileNotFoundError)) or "Connect" in name:
        return "nothing listens there"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).split(" [", 1)[0]
    return inert(f"{name}: {text}" if text else name, limit=200)
