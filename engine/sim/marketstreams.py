"""Binance market streams: subscriptions per connection and the events pushed to them.

Streams (lower-case symbol): ``@trade``, ``@aggTrade``, ``@ticker``, ``@miniTicker``, ``@bookTicker``,
``@depth`` (diff, ``depthUpdate`` with U/u ids continuous with GET /api/v3/depth's lastUpdateId),
``@depth5/10/20`` (partial book) and ``@kline_<interval>``; a ``@100ms`` / ``@1000ms`` suffix is accepted and
ignored (events go out on every change). Raw connections get the event itself, ``/stream`` wraps it as
``{"stream", "data"}``. Pushes are written synchronously with ``broadcast`` so they keep their order (to an
in-process ``Link``: handed over as they are, ``engine.sim.links``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import broadcast

from . import payloads
from .candles import INTERVALS_MS, align
from .links import Connection, Link, send
from .market import PublicTrade
from .matching import MatchingEngine

PARTIAL_DEPTHS = {"depth5": 5, "depth10": 10, "depth20": 20}


def canonical(stream: str) -> str:
    """The stream name without an update-speed suffix: ``btcusdt@depth@100ms`` -> ``btcusdt@depth``."""
    for suffix in ("@100ms", "@1000ms"):
        if stream.endswith(suffix):
            return stream[: -len(suffix)]
    return stream


@dataclass
class Subscription:
    """The streams one connection listens to (names as the client sent them)."""

    combined: bool
    streams: set[str] = field(default_factory=set)

    def names_for(self, base: str) -> list[str]:
        """The client's names for the canonical stream ``base``."""
        return [s for s in self.streams if canonical(s) == base]


class MarketStreams:
    """Subscriptions and pushes of the market-data websocket connections."""

    def __init__(self, engine: MatchingEngine, clock: Callable[[], int], silenced: Callable[[], bool]) -> None:
        self.engine = engine
        self.clock = clock
        self.silenced = silenced
        self.connections: dict[Connection, Subscription] = {}
        self._kline_open: dict[tuple[str, str], int] = {}
        self._book_ticker_id: dict[str, int] = {}
        # Canonical stream -> (connection, the client's name for it), built when first needed after a change: every
        # price tick of every market asks who listens, and scanning each connection's streams for it made the
        # simulator's cost grow with markets × subscriptions (most of its CPU at 50 markets).
        self._index: dict[str, list[tuple[Connection, Subscription, str]]] | None = None

    def _listeners(self) -> dict[str, list[tuple[Connection, Subscription, str]]]:
        if self._index is None:
            index: dict[str, list[tuple[Connection, Subscription, str]]] = {}
            for ws, sub in self.connections.items():
                for name in sub.streams:
                    index.setdefault(canonical(name), []).append((ws, sub, name))
            self._index = index
        return self._index

    # ----- subscriptions ---------------------------------------------------------------------------------
    def add(self, ws: Connection, path: str, query: str) -> Subscription:
        """Register a connection; streams may be named in the path (/ws/a/b) or the query (/stream?streams=a/b)."""
        sub = Subscription(combined=path == "/stream")
        if sub.combined:
            for value in parse_qs(query).get("streams", []):
                sub.streams.update(s for s in value.split("/") if s)
        elif path.startswith("/ws/"):
            # /ws/<n> is ccxt's connection number; /ws/<stream>[/<stream>...] subscribes like Binance.
            sub.streams.update(s for s in path[len("/ws/") :].split("/") if s and not s.isdigit())
        self.connections[ws] = sub
        self._index = None
        return sub

    def remove(self, ws: Connection) -> None:
        """Forget a connection."""
        self.connections.pop(ws, None)
        self._index = None

    def request(self, sub: Subscription, raw: str | bytes) -> dict[str, Any]:
        """Answer SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS."""
        try:
            message = json.loads(raw)
            method, req_id = message["method"], message.get("id")
        except (ValueError, KeyError, TypeError):
            return {"error": {"code": 3, "msg": "Invalid JSON: expected a request object"}, "id": None}
        params = message.get("params") or []
        self._index = None  # the caller may change the subscription's streams after this too (a listen key)
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": req_id}
            (sub.streams.update if method == "SUBSCRIBE" else sub.streams.difference_update)(params)
            return {"result": None, "id": req_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(sub.streams), "id": req_id}
        return {"error": {"code": 1, "msg": f"Invalid request: unknown method {method!r}"}, "id": req_id}

    def wanted(self, base: str) -> bool:
        """Someone listens to the canonical stream ``base``."""
        return base in self._listeners()

    def _streams_of(self, prefix: str) -> set[str]:
        return {base for base in self._listeners() if base.startswith(prefix)}

    def push(self, base: str, data: dict[str, Any]) -> None:
        """Send ``data`` to every subscriber of the canonical stream ``base``."""
        if self.silenced():
            return
        raw: str | None = None
        for ws, sub, name in list(self._listeners().get(base, ())):
            if sub.combined:
                send(ws, {"stream": name, "data": data})
            elif isinstance(ws, Link):
                send(ws, data)
            else:
                raw = raw or json.dumps(data)
                broadcast([ws], raw)

    # ----- events ----------------------------------------------------------------------------------------
    def publish_prices(self, symbol: str) -> None:
        """The price of ``symbol`` moved: tickers, klines, book streams."""
        self.publish_book(symbol)
        if not self.connections:
            return
        key, now = symbol.lower(), self.clock()
        feed, book = self.engine.feeds[symbol], self.engine.books[symbol]
        if self.wanted(f"{key}@ticker"):
            self.push(f"{key}@ticker", payloads.ticker_event(feed, now, book))
        if self.wanted(f"{key}@miniTicker"):
            self.push(f"{key}@miniTicker", payloads.mini_ticker_event(feed, now))
        for stream in self._streams_of(f"{key}@kline_"):
            self._publish_kline(symbol, stream, now)

    def _publish_kline(self, symbol: str, stream: str, now: int) -> None:
        interval = stream.split("@kline_", 1)[1]
        interval_ms = INTERVALS_MS.get(interval)
        if interval_ms is None:
            return
        candles = self.engine.feeds[symbol].candles
        open_now = align(now, interval_ms)
        key = (symbol, interval)
        previous = self._kline_open.get(key)
        if previous is not None and previous < open_now:
            # The candle we were streaming has closed: send its final state with x=true first.
            closed = candles.aggregate(interval_ms, start_ms=previous, end_ms=None, limit=1, now_ms=now)
            if closed and closed[0].start_ms == previous:
                self.push(stream, payloads.kline_event(symbol, interval, closed[0], interval_ms, True, now))
        self._kline_open[key] = open_now
        current = candles.aggregate(interval_ms, start_ms=None, end_ms=None, limit=1, now_ms=now)
        if current:
            self.push(stream, payloads.kline_event(symbol, interval, current[-1], interval_ms, False, now))

    def publish_book(self, symbol: str) -> None:
        """The book of ``symbol`` changed (price moved, liquidity taken, own order): depth and book ticker."""
        book = self.engine.books[symbol]
        key = symbol.lower()
        if not self.connections or not self.wanted(f"{key}@depth"):
            book.sync()
        else:
            update = book.diff()
            if update is not None:
                self.push(f"{key}@depth", payloads.depth_update(symbol, update, self.clock()))
        if not self.connections:
            return
        for name, levels in PARTIAL_DEPTHS.items():
            if self.wanted(f"{key}@{name}"):
                self.push(f"{key}@{name}", payloads.depth_snapshot(book, levels))
        if self.wanted(f"{key}@bookTicker") and self._book_ticker_id.get(symbol) != book.update_id:
            self._book_ticker_id[symbol] = book.update_id
            self.push(f"{key}@bookTicker", payloads.book_ticker(symbol, book))

    def publish_trade(self, trade: PublicTrade) -> None:
        """A trade printed on the tape: ``@trade`` and ``@aggTrade``."""
        if not self.connections:
            return
        key, now = trade.symbol.lower(), self.clock()
        if self.wanted(f"{key}@trade"):
            self.push(f"{key}@trade", payloads.trade_event(trade, now))
        if self.wanted(f"{key}@aggTrade"):
            self.push(f"{key}@aggTrade", payloads.agg_trade_event(trade, now))
