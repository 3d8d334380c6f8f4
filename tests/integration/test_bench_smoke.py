"""Every benchmark in bench/ runs with tiny parameters and gives one JSON object (issue 13). The figures are not
checked here: speed is measured by the benchmarks, not asserted in timed tests."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
from benchlib import judge, judge_paired  # noqa: E402
from run_all import BENCHMARKS, goal_rows, headline  # noqa: E402

HELPERS = {"benchlib", "run_all", "simproc", "floor"}  # the simulator's and the floors' processes, not benchmarks


def test_every_script_in_bench_is_run_by_run_all():
    scripts = {p.stem for p in BENCH.glob("*.py")} - HELPERS
    assert scripts == set(BENCHMARKS)


def test_a_ratio_is_decided_only_when_clear_of_its_goal_by_more_than_its_spread():
    floor = [10.0 + (i % 5) * 0.1 for i in range(20)]
    assert judge([12.0 + (i % 5) * 0.1 for i in range(20)], floor, 1.5)["verdict"] == "pass"
    assert judge([20.0 + (i % 5) * 0.1 for i in range(20)], floor, 1.5)["verdict"] == "fail"
    # A median at 1.45x the floor, with half the runs at 2x and half at 1x: the spread covers the goal.
    noisy = [20.0 if i % 2 else 10.0 for i in range(19)] + [14.5]
    judged = judge(noisy, floor, 1.5)
    assert judged["spread"] > abs(judged["ratio"] - 1.5) and judged["verdict"] == "not decided"
    assert judge([12.0] * 5, [10.0] * 5, 1.5)["verdict"] == "not decided"  # fewer than 20 samples decide nothing
    assert goal_rows({"goals": {"x": judged}})[0][2] == "NOT DECIDED"
    # Paired (each run and its floor's right after it): a load that moves both halves of a pair cancels in its ratio.
    loaded = [10.0 * (1 + i % 5) for i in range(20)]
    assert judge_paired([1.2 * x for x in loaded], loaded, 1.5)["verdict"] == "pass"
    assert judge([1.2 * x for x in loaded], loaded, 1.5)["verdict"] == "not decided"
    # The CPU-time ratios a benchmark judges beside its goals (cold_start's) are in the summary after them.
    cpu = {"x, CPU": judge_paired([1.2 * x for x in loaded], loaded, 1.5)}
    assert [(f, v) for f, _, v in goal_rows({"goals": {"x": judged}, "cpu_ratios": cpu})] == [
        ("x", "NOT DECIDED"),
        ("x, CPU", "PASS"),
    ]


@pytest.mark.parametrize("name", BENCHMARKS)
async def test_each_benchmark_runs_and_prints_json(name):
    # By its file: a module of the same name elsewhere on the path (tests/soak.py, once crashloop put tests/ first)
    # must not stand in for the benchmark.
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = await module.measure(**module.QUICK)
    assert json.loads(json.dumps(result, default=str))["benchmark"] == name
    assert headline(json.loads(json.dumps(result, default=str)))  # the summary table can read it
