"""The architecture contracts in pyproject.toml hold: the engine is headless and layered, with no import cycle;
the parts receive ports, not the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    result = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                             "lint_imports_command()"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "4 kept, 0 broken" in result.stdout


def test_no_part_of_the_engine_reaches_for_the_engine():
    """Only the composition root (and nothing it builds) refers to ``Engine``."""
    offenders = [p.name for p in (ROOT / "engine").glob("*.py")
                 if p.name != "core.py" and "engine.core" in p.read_text(encoding="utf-8")]
    assert offenders == []
