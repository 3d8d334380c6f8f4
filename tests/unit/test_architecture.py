"""The architecture contracts in pyproject.toml hold: the engine is headless and layered, with no import cycle;
the parts receive ports, not the engine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "7 kept, 0 broken" in result.stdout


def test_no_part_of_the_engine_reaches_for_the_engine():
    """Only the composition root (and nothing it builds) refers to ``Engine``."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "engine").rglob("*.py")
        if p.relative_to(ROOT / "engine").parts[0] != "core"
        and re.search(r"^\s*(from|import) engine\.core\b", p.read_text(encoding="utf-8"), re.M)
    ]
    assert offenders == []


def _sources_outside_the_venue() -> list[Path]:
    return [
        p
        for root in ("engine", "cockpit", "widgets")
        for p in (ROOT / root).rglob("*.py")
        if "venue" not in p.relative_to(ROOT).parts[1:2] and "sim" not in p.relative_to(ROOT).parts[1:2]
    ]


def test_the_venue_is_sealed_nothing_outside_it_touches_the_ccxt_client_or_builds_a_venue():
    """``Venue.from_settings`` is the one way to build a venue, and its ccxt clients (``.ex``, ``.urgent``) are its
    own: what the checklist probes is a ``Venue`` method too (import-linter keeps ``import ccxt`` inside the
    package; this keeps the client objects there)."""
    client = re.compile(r"\.(ex|urgent)\.\w")
    built = re.compile(r"(?<![\w.])Venue\(")
    offenders = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in _sources_outside_the_venue()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if client.search(line) or built.search(line)
    ]
    assert offenders == []
