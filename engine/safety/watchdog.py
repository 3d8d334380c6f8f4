"""The monitors' own watchdog: fail closed when the loop that reads every monitor stops reading.

The monitors' loop marks each pass it completes (``passed``). The watchdog looks from outside that loop (the
engine's health path, once a second, or its own task, ``run``): a loop that has not completed a pass in
``STALL_INTERVALS`` of its interval (and never less than ``STALL_FLOOR_S``, as the watchdog looks once a second) is
CRIT ``MONITORS_STALLED`` and halts as ``monitor:monitors_stalled``: limits nobody reads are limits that do not hold.
When the watchdog itself was held up as long (the whole event loop blocked, not the monitors alone), it judges at
its next look instead. Resume is refused while the loop stays stalled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from engine.kernel.commands import Halt
from engine.kernel.config import MonitorsConfig
from engine.kernel.events import Severity
from engine.kernel.ports import Ports

log = logging.getLogger(__name__)

STALL_INTERVALS = 3
STALL_FLOOR_S = 3.0
LOOK_EVERY_S = 1.0


class Watchdog:
    """When the monitors last completed a pass, and what to do when that is too long ago."""

    def __init__(self, cfg: MonitorsConfig, ports: Ports, clock: Callable[[], float]) -> None:
        self.cfg = cfg
        self.ports = ports
        self.clock = clock  # the monitors' clock (the engine's: simulated in a validation run)
        self.last_pass: float | None = None
        self.stalled: str | None = None  # why, while the loop is stalled
        self._looked_at: float | None = None  # the watchdog's own last look, on the wall clock

    @property
    def limit_s(self) -> float:
        return max(STALL_INTERVALS * self.cfg.interval_s, STALL_FLOOR_S)

    def passed(self) -> None:
        """The monitors completed a pass (called at the end of each)."""
        self.last_pass = self.clock()
        if self.stalled is not None:
            self.stalled = None
            self.ports.alert(
                Severity.INFO, "MONITOR_RECOVERED", "the monitors read again after a stall (trading stays as it is)"
            )

    def age_s(self) -> float | None:
        """Seconds since the monitors' last completed pass (None before the first)."""
        return None if self.last_pass is None else max(0.0, self.clock() - self.last_pass)

    def look(self) -> float | None:
        """One look from outside the monitors' loop: halt when it stalled. Returns the loop's age."""
        wall = time.monotonic()
        previous, self._looked_at = self._looked_at, wall
        age = self.age_s()
        if age is None or self.stalled is not None:
            return age
        if previous is not None and wall - previous > self.limit_s:
            log.warning("monitors' watchdog held up %.1fs itself: judging at its next look", wall - previous)
            return age
        if age > self.limit_s:
            self.stalled = (
                f"the monitors' loop has not completed a pass for {age:.1f}s "
                f"({STALL_INTERVALS} intervals of {self.cfg.interval_s:g}s, at least {STALL_FLOOR_S:g}s)"
            )
            values: dict[str, Any] = {
                "last_pass_age_s": round(age, 1),
                "limit_s": self.limit_s,
                "interval_s": self.cfg.interval_s,
            }
            self.ports.alert(
                Severity.CRIT,
                "MONITORS_STALLED",
                f"{self.stalled}: halting, since limits are not being watched",
                values,
            )
            self.ports.spawn(
                "monitor:monitors_stalled halt",
                self.ports.submit(Halt(actor="monitor:monitors_stalled", reason=self.stalled, values=values)),
            )
        return age

    def status(self) -> dict[str, Any]:
        """For the health line and ``/health``: the loop's age, its limit, and whether it is stalled."""
        age = self.age_s()
        return {
            "last_pass_age_s": None if age is None else round(age, 2),
            "limit_s": self.limit_s,
            "stalled": self.stalled is not None,
            "detail": self.stalled or "",
        }

    async def run(self) -> None:
        """The watchdog as a task of its own (on the wall clock, outside the monitors' loop), for a composition
        root that prefers it to the health path's look."""
        while True:
            await asyncio.sleep(LOOK_EVERY_S)
            try:
                self.look()
            except Exception as exc:  # the watchdog must outlive one bad look
                log.error("monitors' watchdog failed", exc_info=exc)
