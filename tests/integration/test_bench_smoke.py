"""Every benchmark in bench/ runs with tiny parameters and gives one JSON object (issue 13). The figures are not
checked here: speed is measured by the benchmarks, not asserted in timed tests."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
from run_all import BENCHMARKS, headline  # noqa: E402


def test_every_script_in_bench_is_run_by_run_all():
    scripts = {p.stem for p in BENCH.glob("*.py")} - {"benchlib", "run_all"}
    assert scripts == set(BENCHMARKS)


@pytest.mark.parametrize("name", BENCHMARKS)
async def test_each_benchmark_runs_and_prints_json(name):
    module = importlib.import_module(name)
    result = await module.measure(**module.QUICK)
    assert json.loads(json.dumps(result, default=str))["benchmark"] == name
    assert headline(json.loads(json.dumps(result, default=str)))  # the summary table can read it
