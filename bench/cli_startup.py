"""CLI start-up: ``cockpit status`` on a data directory where nothing ran (with ./config.toml, the shipped one, when
run from the checkout), wall time and peak memory, against a bare interpreter started the same way (the floor),
alternating, in the same run.

Run: .venv/bin/python bench/cli_startup.py [--runs N]; prints one JSON object.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import judge, ratio, summary

PARAMS = {"runs": 20}
QUICK = {"runs": 1}


# The child's own peak memory (VmHWM) written at its exit: the kernel's ru_maxrss of a child also counts the
# memory of this process it was forked from.
HWM_HOOK = """
import atexit, os
def _hwm():
    with open("/proc/self/status") as status, open(os.environ["COCKPIT_BENCH_HWM"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(_hwm)
"""


def timed(argv: list[str], cwd: str) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit code) of one child process."""
    hook = Path(cwd) / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HWM_HOOK)
    hwm = Path(cwd) / "hwm"
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "COCKPIT_BENCH_HWM": str(hwm)}
    start = time.perf_counter()
    code = subprocess.call(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return seconds, int(hwm.read_text()) / 1024, code


def cockpit_argv() -> list[str]:
    script = Path(sys.executable).with_name("cockpit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cockpit.cli"]


async def measure(runs: int) -> dict[str, Any]:
    shipped = Path.cwd() / "config.toml"  # the shipped configuration, as an operator runs it from the checkout
    cwd = tempfile.mkdtemp(prefix="cockpit-bench-")  # no .env
    config = ["--config", str(shipped)] if shipped.is_file() else []
    missing = str(Path(cwd) / "nothing-ran-here")
    status_s, status_mb, floor_s, floor_mb = [], [], [], []
    code = None
    for _ in range(runs):
        seconds, mb, code = timed([*cockpit_argv(), "status", *config, "--data-dir", missing], cwd)
        status_s.append(seconds * 1000)
        status_mb.append(mb)
        seconds, mb, _ = timed([sys.executable, "-c", "pass"], cwd)
        floor_s.append(seconds * 1000)
        floor_mb.append(mb)
    status, floor = summary(status_s), summary(floor_s)
    return {
        "benchmark": "cli_startup",
        "runs": runs,
        "unit": "ms",
        "status_missing_dir": status,
        "status_exit_code": code,
        "status_peak_rss_mib": summary(status_mb, 1),
        "floor_bare_python": floor,
        "floor_peak_rss_mib": summary(floor_mb, 1),
        "ratio": ratio(status, floor),
        "goal": "<= 300 ms",
        "goals": {"cockpit status / python -c pass p50": judge(status_s, floor_s, 6.0)},
    }


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
