"""In-process websocket connections: a backtest's engine in the simulator's own process listens to the streams
without a socket (decision GATE-17).

A ``Link`` stands where a websocket connection would: the stream server registers it, routes it and pushes to it
exactly as to a ``ServerConnection``, but each push is handed to ``deliver`` as the object it is (no JSON text, no
frame, no event-loop turn), in the order it was made. What the client does with it (ccxt's own message handler) is
the client's business (``engine.venue.inprocess``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast

log = logging.getLogger(__name__)


class Link:
    """One in-process connection to the stream server: its path (``/ws/1``, ``/ws-api/v3``...) and its reader."""

    def __init__(self, path: str, query: str, deliver: Callable[[Any], None], on_close: Callable[[], None]) -> None:
        self.path = path
        self.query = query
        self.deliver = deliver
        self.on_close = on_close  # the server closed it (a ws-drop fault, the simulator stopping)
        self.closed = False

    def __repr__(self) -> str:
        return f"Link({self.path!r})"


Connection = ServerConnection | Link


def send(ws: Connection, body: Any) -> None:
    """Push ``body`` to one connection: the object itself to a link, its JSON text to a websocket."""
    if isinstance(ws, Link):
        if not ws.closed:
            ws.deliver(body)
    else:
        broadcast([ws], json.dumps(body))
