"""The go/no-go checklist's record: checks (PASS / WARN / FAIL with evidence and a fix) and a run of them.

What the engine publishes (``ChecklistCompleted``), stores, and front ends show: a checklist screen lists
``checks``; a summary line is ``line()``; ``summary()`` counts each status. The checks themselves are run by
``engine.gate.preflight``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """A check's answer: PASS, WARN (go, but look), FAIL (no go)."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the checklist: what was checked, the answer, the evidence (values, thresholds), how to fix."""

    code: str
    title: str
    status: Status
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "status": self.status.value,
            "detail": self.detail,
            "evidence": dict(self.evidence),
            "fix": self.fix,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        return cls(d["code"], d["title"], Status(d["status"]), d["detail"], d.get("evidence") or {}, d.get("fix", ""))


@dataclass(frozen=True)
class Checklist:
    """One run of the checklist; GO when no check FAILs."""

    checks: tuple[Check, ...]
    mode: str
    venue: str
    ts: str
    actor: str
    duration_ms: float

    def summary(self) -> dict[str, int]:
        """How many checks PASS, WARN and FAIL."""
        out = {s.value: 0 for s in Status}
        for c in self.checks:
            out[c.status.value] += 1
        return out

    @property
    def verdict(self) -> str:
        return "NO-GO" if self.failures() else "GO"

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == Status.FAIL]

    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == Status.WARN]

    def line(self) -> str:
        """The summary line: ``GO · 14 PASS · 2 WARN · 0 FAIL``."""
        s = self.summary()
        return f"{self.verdict} · {s['PASS']} PASS · {s['WARN']} WARN · {s['FAIL']} FAIL"

    def get(self, code: str) -> Check | None:
        return next((c for c in self.checks if c.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "summary": self.summary(),
            "mode": self.mode,
            "venue": self.venue,
            "ts": self.ts,
            "actor": self.actor,
            "duration_ms": round(self.duration_ms, 1),
            "checks": [c.to_dict() for c in self.checks],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Checklist:
        return cls(
            tuple(Check.from_dict(c) for c in d.get("checks", [])),
            d.get("mode", ""),
            d.get("venue", ""),
            d.get("ts", ""),
            d.get("actor", ""),
            float(d.get("duration_ms") or 0),
        )
