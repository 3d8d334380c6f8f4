"""What a monitor says: a reading (OK / WARN / CRIT, the value and the threshold in words) and, per monitor,
where it is in its episode (confirming a CRIT, acted, warned)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class Level(str, enum.Enum):
    OK = "OK"
    WARN = "WARN"
    CRIT = "CRIT"


@dataclass(frozen=True, slots=True)
class Reading:
    """One monitor's reading: its level, the value and the threshold it was judged against, in words."""

    level: Level
    value: str
    threshold: str
    detail: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    """What one monitor said last, and where it is in its episode."""

    code: str
    confirm: bool  # a CRIT needs confirm_readings readings in a row
    blocks_resume: bool  # while CRIT, an operator's resume is refused
    reading: Reading = field(default_factory=lambda: Reading(Level.OK, "—", "—"))
    crit_streak: int = 0
    acted: bool = False
    warned: bool = False
    since: float | None = None  # when the current non-OK episode began (monotonic)
    crit_since: float | None = None  # the first CRIT reading of the current run of them (monotonic)

    @property
    def status(self) -> Level:
        return self.reading.level

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.reading.level.value,
            "value": self.reading.value,
            "threshold": self.reading.threshold,
            "detail": self.reading.detail,
            "blocks_resume": self.blocks_resume,
        }


OK = Level.OK
WARN = Level.WARN
CRIT = Level.CRIT


def pct(value: Decimal) -> str:
    return f"{value:.2f}%"
