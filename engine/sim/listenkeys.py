"""Binance's legacy user-data stream: listen keys from POST /api/v3/userDataStream, read on /ws/<listenKey>.

ccxt 4.5 subscribes through the WS-API instead, but other clients (binance-connector, older bots) still use
listen keys. A key lives 60 minutes after its last keepalive (PUT); then ``listenKeyExpired`` is sent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from . import errors

LIFETIME_MS = 60 * 60 * 1000


@dataclass
class ListenKey:
    """One listen key: the API key that made it and when it expires (server time, ms)."""

    key: str
    api_key: str
    expires_ms: int


class ListenKeys:
    """Listen keys by value; Binance hands the same key back while it is valid."""

    def __init__(self) -> None:
        self.keys: dict[str, ListenKey] = {}

    def create(self, api_key: str, now_ms: int) -> str:
        """POST: the API key's valid listen key (extended), or a new one."""
        for lk in self.keys.values():
            if lk.api_key == api_key and lk.expires_ms > now_ms:
                lk.expires_ms = now_ms + LIFETIME_MS
                return lk.key
        value = secrets.token_urlsafe(45).replace("-", "a").replace("_", "b")[:60]
        self.keys[value] = ListenKey(value, api_key, now_ms + LIFETIME_MS)
        return value

    def keepalive(self, value: str, api_key: str, now_ms: int) -> None:
        """PUT: extend a key by 60 minutes; -1125 if it does not exist (or belongs to another API key)."""
        lk = self.keys.get(value)
        if lk is None or lk.api_key != api_key or lk.expires_ms <= now_ms:
            raise errors.VenueError(-1125, "This listenKey does not exist.")
        lk.expires_ms = now_ms + LIFETIME_MS

    def close(self, value: str, api_key: str) -> None:
        """DELETE: forget a key; -1125 if it does not exist."""
        lk = self.keys.get(value)
        if lk is None or lk.api_key != api_key:
            raise errors.VenueError(-1125, "This listenKey does not exist.")
        del self.keys[value]

    def valid(self, value: str, now_ms: int) -> bool:
        """The key exists and has not expired."""
        lk = self.keys.get(value)
        return lk is not None and lk.expires_ms > now_ms

    def expire(self, now_ms: int, *, everything: bool = False, api_key: str | None = None) -> list[str]:
        """Drop keys past their time (or all, or those of one API key); returns the dropped values."""
        dropped = [
            v
            for v, lk in self.keys.items()
            if everything or lk.expires_ms <= now_ms or (api_key is not None and lk.api_key == api_key)
        ]
        for value in dropped:
            del self.keys[value]
        return dropped
