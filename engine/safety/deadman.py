"""The venue's dead-man's switch (perps): Binance's ``countdownCancelAll`` armed for every symbol and renewed while
the engine is healthy, so that a dead engine's working orders are cancelled by the venue itself within
``[venue] deadman_s`` (runbook 002 "Issue: Connection/Network Problems", "Ctrl+C twice": nothing may rest at the venue
that no one watches).

Healthy means: connected to the venue, and the monitors' loop passing (``Watchdog``): an engine that cannot watch
its limits lets the countdown run out. A renewal that fails is a WARN (``DEADMAN_FAILED``), said once per episode;
the next success logs that it is armed again. A clean stop disarms it (countdown 0): orders left
resting on purpose stay, as on spot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from engine.kernel.events import Severity
from engine.kernel.ports import AlertPort, VenueLink
from engine.venue import errors as vx

log = logging.getLogger(__name__)


class DeadMan:
    """Arms and renews the venue's countdown for every symbol."""

    def __init__(
        self,
        seconds: float,
        symbols: tuple[str, ...],
        link: VenueLink,
        alert: AlertPort,
        healthy: Callable[[], str | None],
    ) -> None:
        self.seconds = seconds
        self.symbols = symbols
        self.link = link
        self.alert = alert
        self.healthy = healthy  # why the engine is not healthy now, or None
        self.renewed_at: float | None = None  # monotonic, the last renewal of every symbol
        self.failure: str | None = None  # why the last renewal failed (None: it did not)
        self.held_back: str | None = None  # why the last renewal was not made (the engine not healthy)

    @property
    def every_s(self) -> float:
        """Renewed three times per countdown: one lost renewal never lets it run out."""
        return max(0.2, self.seconds / 3)

    async def renew(self) -> None:
        """Arm (again) every symbol's countdown, unless the engine is not healthy: then the countdown runs."""
        why = self.healthy()
        self.held_back = why
        venue = self.link.venue
        if why is None and (venue is None or not venue.markets_loaded):
            why = "the venue is connecting"  # a reconnect swapped the client: the next turn renews it
        self.held_back = why
        if why is not None or venue is None:
            log.warning("dead-man's switch not renewed: %s", why)
            return
        try:
            await asyncio.gather(*(venue.arm_deadman(s, self.seconds) for s in self.symbols))
        except (vx.BaseError, NotImplementedError) as exc:
            if self.failure is None:
                self.alert(
                    Severity.WARN,
                    "DEADMAN_FAILED",
                    f"the dead-man's switch (countdownCancelAll, {self.seconds:g}s) was not renewed: "
                    f"{type(exc).__name__}: {str(exc)[:160]}; working orders may be cancelled by the venue",
                )
            self.failure = f"{type(exc).__name__}: {exc}"[:200]
            return
        if self.failure is not None:
            log.info("the dead-man's switch is armed again (%gs)", self.seconds)
        self.failure = None
        self.renewed_at = time.monotonic()

    async def disarm(self) -> None:
        """Countdown 0 for every symbol (a clean stop); best effort, briefly."""
        venue = self.link.venue
        if venue is None or self.renewed_at is None:
            return
        try:
            async with asyncio.timeout(2.0):
                await asyncio.gather(*(venue.arm_deadman(s, 0, urgent=True) for s in self.symbols))
        except (TimeoutError, vx.BaseError) as exc:
            log.warning("dead-man's switch not disarmed at stop: %s", exc)

    def state(self) -> dict[str, Any]:
        """What the checklist and the status read."""
        age = None if self.renewed_at is None else round(time.monotonic() - self.renewed_at, 1)
        return {
            "deadman_s": self.seconds,
            "armed": self.renewed_at is not None and self.failure is None and age is not None and age < self.seconds,
            "renewed_s_ago": age,
            "failure": self.failure,
            "held_back": self.held_back,
        }
