"""Venue time: a market clock that may run faster than real time, and the server clock that checks signatures.

Signed requests carry the client's wall-clock timestamp, so signatures and ``/api/v3/time`` use the wall clock
(plus any injected skew) whatever the speed; market data, orders and fills are stamped with market time, which
runs ``speed`` times faster than the wall clock from ``start_ms`` (a replayed CSV starts at its own first candle).
A *stepped* clock's market time moves only when ``advance`` is called: a validation run moves it in lockstep with
the engine, so the same seed gives the same run whatever the machine's load.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Market time (``now_ms``) and server time (``server_ms``); ``skew_ms`` shifts server time only (the clock-skew
    fault)."""

    def __init__(
        self,
        speed: float = 1.0,
        start_ms: int | None = None,
        wall: Callable[[], float] = time.time,
        stepped: bool = False,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self.stepped = stepped
        self._wall = wall
        self._wall0 = wall()
        self.start_ms = int(self._wall0 * 1000) if start_ms is None else int(start_ms)
        self.skew_ms = 0
        self.unshown_ms = 0  # the part of the skew that /api/v3/time does not show (clock-skew --time-shows false)
        self._stepped_ms = 0

    def now_ms(self) -> int:
        """Market time in milliseconds: what candles, trades, orders and events are stamped with."""
        # Not skewed: clock-skew is about signature timestamps and /time; shifting market time too would stamp
        # trades backwards when the fault ends and freeze the current candle.
        if self.stepped:
            return self.start_ms + self._stepped_ms
        return self.start_ms + int((self._wall() - self._wall0) * 1000 * self.speed)

    def advance(self, ms: int) -> None:
        """Move a stepped clock's market time forward by ``ms``."""
        if not self.stepped:
            raise RuntimeError("only a stepped clock is advanced by hand")
        if ms < 0:
            raise ValueError("market time never goes back")
        self._stepped_ms += int(ms)

    def limits_ms(self) -> int:
        """The time request weights and order counts are kept on: server time, or market time on a stepped clock
        (a validation run's minute is a simulated minute: an engine 2,000 times faster is no faster there)."""
        return self.now_ms() if self.stepped else self.server_ms()

    def server_ms(self) -> int:
        """Server time in milliseconds: what signed timestamps are checked against and /api/v3/time answers."""
        return int(self._wall() * 1000) + self.skew_ms

    def time_answer_ms(self) -> int:
        """What GET /api/v3/time answers: server time, less any skew the venue's time answer does not show."""
        return self.server_ms() - self.unshown_ms

    def market_seconds(self, wall_seconds: float) -> float:
        """How much market time passes in ``wall_seconds`` of real time."""
        return wall_seconds * self.speed
