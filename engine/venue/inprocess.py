"""ccxt's websockets in-process: a backtest's venue client reads the simulator's streams without a socket.

The ccxt client is the real one (its markets, its requests, its parsing of every message, its caches and futures):
only the websocket under it is replaced. Each connection ccxt opens is a link into the simulator's stream server in
the same process (``engine.sim.links``); a subscription or WS-API request goes to the server as the JSON text ccxt
wrote, and every push comes back as the object the server built, handed to ccxt's own message handler at once, in
order (no JSON text, no frame, no socket, no event-loop turn per message). REST stays ccxt's over loopback HTTP:
orders, cancels and reads are a few per simulated hour, the streams are every tick. Decision GATE-17.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class StreamWire(Protocol):
    """What the simulator's stream server offers an in-process client (``engine.sim.ws.StreamServer``)."""

    def open_link(self, url: str, deliver: Callable[[Any], None], on_close: Callable[[], None]) -> Any: ...

    def link_send(self, link: Any, raw: str) -> None: ...

    def close_link(self, link: Any) -> None: ...


class _Closed:
    """What ccxt's receive loop reads when the link ends: a close frame."""

    def __init__(self) -> None:
        from aiohttp import WSMsgType  # imported with ccxt, off the event loop (not at the engine's import)

        self.type = WSMsgType.CLOSE
        self.data = 1000
        self.extra = None


class LinkConnection:
    """Stands where ccxt's aiohttp websocket stands: ``send_str`` to the server, ``receive`` waits for the end."""

    def __init__(self, wire: StreamWire, client: Any, url: str) -> None:
        self.wire = wire
        self.client = client
        self.closed = False
        self._conn = None  # ccxt peeks at aiohttp's buffer through it; a link has none
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.link = wire.open_link(url, self._deliver, self._server_closed)

    def _deliver(self, message: Any) -> None:
        """One push, straight into ccxt's handler (what its receive loop does with a decoded frame)."""
        try:
            self.client.on_message_callback(self.client, message)
        except Exception:  # a websocket's receive loop would stop on it; the run's settle check then says so
            log.exception("ccxt could not handle a pushed message")

    def _server_closed(self) -> None:
        self.closed = True
        if not self._ended.done():
            self._ended.set_result(None)

    async def receive(self) -> _Closed:
        await asyncio.shield(self._ended)
        return _Closed()

    async def send_str(self, data: str) -> None:
        self.wire.link_send(self.link, data)

    async def ping(self) -> None:
        self.client.lastPong = int(time.time() * 1000)  # ccxt's keepalive, on the wall clock: the link is alive

    async def pong(self, data: Any = None) -> None:
        return None

    async def close(self, code: int = 1000) -> bool:
        self.wire.close_link(self.link)
        return True


def in_process(ex: Any, wire: StreamWire) -> None:
    """Make every websocket connection ``ex`` opens a link through ``wire`` (REST is left as it is)."""
    make_client = ex.client

    def client(url: str) -> Any:
        known = url in (ex.clients or {})
        c = make_client(url)
        if not known:

            async def create_connection(session: Any) -> LinkConnection:
                return LinkConnection(wire, c, url)

            c.create_connection = create_connection
        return c

    ex.client = client
