"""Request weights and order-rate limits as Binance spot counts them, with 429 and 418 answers.

Binance counts request weight per IP per minute and reports it in ``X-MBX-USED-WEIGHT-1M``. Over the limit it
answers 429 with ``Retry-After``; a client that keeps sending while limited is banned with 418 (spot API docs,
"LIMITS"), for 2 minutes at first, longer for repeat offenders. New orders are counted per 10 seconds and per day
(``X-MBX-ORDER-COUNT-10S`` / ``-1D``) and answer -1015 over the limit. Everything on loopback is one IP.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import errors

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
DAY_MS = 86_400_000


def depth_weight(limit: int) -> int:
    """Weight of GET /api/v3/depth by its ``limit``."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def request_weight(method: str, path: str, query: dict[str, str]) -> int:
    """Weight Binance charges for one REST request (spot API docs, per endpoint)."""
    has_symbol = bool(query.get("symbol"))
    symbols = query.get("symbols")
    n_symbols = len([s for s in symbols.strip("[]").split(",") if s.strip()]) if symbols else 0
    if path == "/api/v3/depth":
        try:
            return depth_weight(int(query.get("limit") or 100))
        except ValueError:
            return 5
    if path == "/api/v3/ticker/24hr":
        if has_symbol:
            return 2
        if n_symbols:
            return 2 if n_symbols <= 20 else 40 if n_symbols <= 100 else 80
        return 80
    if path in ("/api/v3/ticker/price", "/api/v3/ticker/bookTicker"):
        return 2 if has_symbol else 4
    if path == "/api/v3/openOrders" and method == "GET":
        return 6 if has_symbol else 80
    if path in ("/api/v3/order", "/api/v3/orderList"):
        return {"GET": 4}.get(method, 1)
    return WEIGHTS.get(path, 1)


WEIGHTS = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/trades": 25,
    "/api/v3/historicalTrades": 25,
    "/api/v3/aggTrades": 4,
    "/api/v3/klines": 2,
    "/api/v3/uiKlines": 2,
    "/api/v3/avgPrice": 2,
    "/api/v3/account": 20,
    "/api/v3/allOrders": 20,
    "/api/v3/myTrades": 20,
    "/api/v3/openOrderList": 6,
    "/sapi/v1/account/apiRestrictions": 1,
    "/api/v3/userDataStream": 2,
}


@dataclass
class LimitRefusal(Exception):
    """A request refused for rate: HTTP 429 or 418 with Retry-After seconds."""

    status: int
    retry_after: int
    error: errors.VenueError


class RateLimiter:
    """Request weight per minute with 429 then 418, and new-order counts per 10 s and per day."""

    def __init__(
        self,
        weight_limit: int = 6000,
        orders_per_10s: int = 100,
        orders_per_day: int = 200_000,
        ban_after: int = 3,
        ban_seconds: int = 120,
    ) -> None:
        self.weight_limit = weight_limit
        self.orders_per_10s = orders_per_10s
        self.orders_per_day = orders_per_day
        # How many requests a limited client may still send before the ban (Binance does not publish this).
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self._minute = -1
        self.used_weight = 0
        self._refused_this_minute = 0
        self._banned_until_ms = 0
        self._bans = 0
        self._orders_10s: list[int] = []
        self._orders_day: list[int] = []
        # A 429 answered by a fault with ``ban_after``: until when, how many early requests are tolerated, seen.
        self._limited_until_ms = 0
        self._early_allowed = 0
        self._early = 0

    def limit_until(self, now_ms: int, until_ms: int, ban_after: int) -> None:
        """A 429 was answered with a Retry-After up to ``until_ms``: requests before then are answered 429 too, and
        more than ``ban_after`` of them are a client that does not back off, banned with 418 (the http-status
        fault's ``ban_after``)."""
        if now_ms >= self._limited_until_ms:
            self._early = 0
        self._limited_until_ms, self._early_allowed = max(self._limited_until_ms, until_ms), ban_after

    @property
    def bans(self) -> int:
        """How many 418 bans were given."""
        return self._bans

    def limited(self, now_ms: int) -> bool:
        """A fault's 429 Retry-After is still running."""
        return now_ms < self._limited_until_ms

    def reset(self) -> None:
        """Forget used weight, refusals and bans (test hook)."""
        self._minute, self.used_weight, self._refused_this_minute = -1, 0, 0
        self._banned_until_ms, self._bans = 0, 0
        self._limited_until_ms, self._early = 0, 0
        self._orders_10s.clear()
        self._orders_day.clear()

    def charge(self, weight: int, now_ms: int) -> None:
        """Count a request's weight; LimitRefusal (429 or 418) when over the limit or banned."""
        minute = now_ms // MINUTE_MS
        if minute != self._minute:
            self._minute, self.used_weight, self._refused_this_minute = minute, 0, 0
        if now_ms < self._banned_until_ms:
            raise self._ban_refusal(now_ms)
        if now_ms < self._limited_until_ms:
            self._early += 1
            if self._early > self._early_allowed:
                self._bans += 1
                self._banned_until_ms = now_ms + min(self.ban_seconds * 2 ** (self._bans - 1), 3 * 86_400) * 1000
                raise self._ban_refusal(now_ms)
            raise LimitRefusal(
                429,
                max(1, -(-(self._limited_until_ms - now_ms) // 1000)),
                errors.VenueError(-1003, "Too many requests; back off until the Retry-After has passed.", 429),
            )
        self.used_weight += weight
        if self.used_weight <= self.weight_limit:
            return
        self._refused_this_minute += 1
        if self._refused_this_minute > self.ban_after:
            # Bans grow for repeat offenders: 2 min, then 4, 8, ... (Binance: "from 2 minutes to 3 days").
            self._bans += 1
            seconds = min(self.ban_seconds * 2 ** (self._bans - 1), 3 * 86_400)
            self._banned_until_ms = now_ms + seconds * 1000
            raise self._ban_refusal(now_ms)
        retry_after = max(1, -(-((minute + 1) * MINUTE_MS - now_ms) // 1000))
        raise LimitRefusal(
            429,
            retry_after,
            errors.VenueError(
                -1003,
                f"Too much request weight used; current limit is {self.weight_limit} request weight per "
                "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                429,
            ),
        )

    def _ban_refusal(self, now_ms: int) -> LimitRefusal:
        retry_after = max(1, -(-(self._banned_until_ms - now_ms) // 1000))
        return LimitRefusal(
            418,
            retry_after,
            errors.VenueError(
                -1003,
                f"Way too much request weight used; IP banned until {self._banned_until_ms}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
                418,
            ),
        )

    def count_order(self, now_ms: int) -> tuple[int, int]:
        """Count a new order; -1015 (HTTP 429) over the 10-second or daily limit; returns (10s, day) counts."""
        self._orders_10s = [t for t in self._orders_10s if t > now_ms - TEN_SECONDS_MS]
        self._orders_day = [t for t in self._orders_day if t > now_ms - DAY_MS]
        if len(self._orders_10s) >= self.orders_per_10s:
            raise errors.VenueError(
                -1015, f"Too many new orders; current limit is {self.orders_per_10s} orders per 10 SECOND.", 429
            )
        if len(self._orders_day) >= self.orders_per_day:
            raise errors.VenueError(
                -1015, f"Too many new orders; current limit is {self.orders_per_day} orders per DAY.", 429
            )
        self._orders_10s.append(now_ms)
        self._orders_day.append(now_ms)
        return len(self._orders_10s), len(self._orders_day)

    def order_counts(self) -> tuple[int, int]:
        """Orders counted in the current 10-second and day windows."""
        return len(self._orders_10s), len(self._orders_day)
