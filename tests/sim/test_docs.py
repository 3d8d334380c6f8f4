"""docs/simulator.md documents every fault, each option, and a command-line example for each."""

from __future__ import annotations

from pathlib import Path

from engine.sim.faults import CATALOGUE

DOC = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()


def test_every_fault_and_option_is_documented_with_an_example():
    for spec in CATALOGUE.values():
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{spec.name}`")), None)
        assert row is not None, f"{spec.name} missing from the fault table"
        scope = {"path", "method", "rate", "count", "symbol"}
        for opt in spec.options:
            assert f"`{opt.name}`" in row or opt.name in scope, f"{spec.name}: option {opt.name} undocumented"
        assert f"cockpit sim fault {spec.name}" in DOC, f"{spec.name}: no command-line example"
