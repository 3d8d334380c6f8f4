"""Cold start of the cockpit in a real terminal (a pseudo-terminal of 120×40), with ./config.toml (the shipped one,
when run from the checkout): from the process start to its first frame (the footer's key list drawn) and to ready
(the banner says connected, to the built-in paper venue). The floor is a bare Textual app started the same way, to its
first frame (its footer's key drawn), alternating, in the same run. Every fourth run also times a start whose
configuration inputs changed since the last (the settings validated before the frame:
``first_frame_settings_changed``). Then the same for a cockpit attaching to `cockpit run --headless` on the
data directory (its screen fed by the engine's API), each start paired with a bare app's right after it too.

Run: .venv/bin/python bench/cold_start.py [--runs N] [--ready 1|0]; prints one JSON object.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from benchlib import judge, judge_paired, ratio, summary

PARAMS = {"runs": 20, "ready": 1}
QUICK = {"runs": 1, "ready": 0}
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[@-Z\\-_])")
BARE_APP = """
from textual.app import App
from textual.widgets import Footer, Static
class Bare(App):
    BINDINGS = [("h", "halt", "Halt")]
    def compose(self):
        yield Static("bare textual")
        yield Footer()
Bare().run()
"""


def cpu_ms(pid: int) -> float | None:
    """The CPU time ``pid`` has used so far, all its threads (Linux's per-thread scheduler statistics, in ns);
    None where there are none."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        return sum(int(Path(f"/proc/{pid}/task/{t}/schedstat").read_text().split()[0]) for t in tasks) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def run_in_pty(
    argv: list[str], cwd: str, marks: dict[str, bytes], timeout: float, env: dict[str, str] | None = None
) -> dict[str, float]:
    """Start ``argv`` on a pseudo-terminal; seconds from the start until each mark's text is on the screen, and
    the CPU time (ms) the program had used then (``NAME_cpu_ms``: what the load of the moment does not stretch)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, **(env or {}), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    # Both programs run from compiled bytecode, as an installed program does (Textual's is in site-packages
    # already; with PYTHONDONTWRITEBYTECODE the checkout's modules would be compiled from source on every start).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen: dict[str, float] = {}
    screen = b""
    try:
        while any(name not in seen for name in marks) and time.perf_counter() - start < timeout:
            ready, _, _ = select.select([master], [], [], 0.01)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += ANSI.sub(b"", chunk)
            for name, text in list(marks.items()):
                if name not in seen and text in screen:
                    seen[name] = time.perf_counter() - start
                    cpu = cpu_ms(proc.pid)
                    if cpu is not None:
                        seen[f"{name}_cpu_ms"] = cpu
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # our own child's session: nothing else
        proc.wait()
        os.close(master)
    return seen


def attached_runs(
    cockpit: list[str], config: list[str], cwd: str, marks: dict[str, bytes], runs: int, env: dict[str, str]
) -> tuple[list[float], list[float], list[tuple[float, float]]]:
    """`cockpit` on a data directory where `cockpit run --headless` runs attaches and draws the same screen, fed by
    the engine's API over its socket (its first frame is drawn before the engine is reached, as the in-process
    one's before its engine is built; the engine's state fills it in). Each start is paired with a bare Textual
    app's right after it, as the in-process starts are: (first frames, ready, pairs)."""
    attached_dir = Path(cwd) / "attached"
    headless = subprocess.Popen(
        [*cockpit, "run", "--headless", *config, "--data-dir", str(attached_dir)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first: list[float] = []
    ready: list[float] = []
    pairs: list[tuple[float, float]] = []
    cpu_pairs: list[tuple[float, float]] = []
    try:
        deadline = time.perf_counter() + 30
        while not (attached_dir / "cockpit.sock").exists() and time.perf_counter() < deadline:
            time.sleep(0.05)  # a poll for the engine's socket, not a wait for time to pass
        # One start not counted, until it shows the engine connected: the engine has finished its own start (which
        # shares the machine with the first starts measured otherwise), as it has when an operator attaches.
        ready_mark = {"ready": b"connected sim"}
        run_in_pty([*cockpit, *config, "--data-dir", str(attached_dir)], cwd, ready_mark, timeout=30, env=env)
        for _ in range(runs):
            seen = run_in_pty([*cockpit, *config, "--data-dir", str(attached_dir)], cwd, marks, timeout=20, env=env)
            if "first_frame" in seen:
                first.append(seen["first_frame"] * 1000)
            if "ready" in seen:
                ready.append(seen["ready"] * 1000)
            bare = run_in_pty([sys.executable, "-c", BARE_APP], cwd, {"first_frame": b"Halt"}, timeout=20)
            if "first_frame" in seen and "first_frame" in bare:
                pairs.append((seen["first_frame"] * 1000, bare["first_frame"] * 1000))
            if "first_frame_cpu_ms" in seen and "first_frame_cpu_ms" in bare:
                cpu_pairs.append((seen["first_frame_cpu_ms"], bare["first_frame_cpu_ms"]))
    finally:
        os.killpg(headless.pid, signal.SIGTERM)
        headless.wait(timeout=30)
    return first, ready, pairs, cpu_pairs


async def measure(runs: int, ready: int) -> dict[str, Any]:
    shipped = Path.cwd() / "config.toml"  # the shipped configuration (paper, the built-in simulator)
    config = ["--config", str(shipped)] if shipped.is_file() else []
    cwd = tempfile.mkdtemp(prefix="cockpit-bench-")
    script = Path(sys.executable).with_name("cockpit")
    cockpit = [str(script)] if script.exists() else [sys.executable, "-m", "cockpit.cli"]
    # The same point on both: the footer's first key drawn (the first frame; Textual draws the screen in one go).
    marks = {"first_frame": b"Cancel all"}
    bare_marks = {"first_frame": b"Halt"}
    if ready:
        marks["ready"] = b"connected sim"
    # The first frame's record (cockpit.firstframe) in a directory of this run's, not the user's cache.
    cache = {"XDG_CACHE_HOME": str(Path(cwd) / "cache")}
    # One start of each first, not counted: it compiles what is not compiled yet, and cockpit's validates the
    # configuration and keeps its first frame's values (what every start after a user's first one finds).
    run_in_pty([*cockpit, *config, "--data-dir", str(Path(cwd) / "warm")], cwd, marks, timeout=20, env=cache)
    run_in_pty([sys.executable, "-c", BARE_APP], cwd, bare_marks, timeout=20)
    first, ready_s, floor, validating = [], [], [], []
    pairs: list[tuple[float, float]] = []  # each start of cockpit and the bare app's right after it
    cpu_pairs: list[tuple[float, float]] = []  # ... the CPU time each had used at its first frame
    for i in range(runs):
        seen = run_in_pty(
            [*cockpit, *config, "--data-dir", str(Path(cwd) / f"data{i}")], cwd, marks, timeout=20, env=cache
        )
        if "first_frame" in seen:
            first.append(seen["first_frame"] * 1000)
        if "ready" in seen:
            ready_s.append(seen["ready"] * 1000)
        bare = run_in_pty([sys.executable, "-c", BARE_APP], cwd, bare_marks, timeout=20)
        if "first_frame" in bare:
            floor.append(bare["first_frame"] * 1000)
        if "first_frame" in seen and "first_frame" in bare:
            pairs.append((seen["first_frame"] * 1000, bare["first_frame"] * 1000))
        if "first_frame_cpu_ms" in seen and "first_frame_cpu_ms" in bare:
            cpu_pairs.append((seen["first_frame_cpu_ms"], bare["first_frame_cpu_ms"]))
        if i % 4 == 0:  # a start whose inputs changed (an empty cache): the settings validated before the frame
            seen = run_in_pty(
                [*cockpit, *config, "--data-dir", str(Path(cwd) / f"data{i}v")],
                cwd,
                {"first_frame": b"Cancel all"},
                timeout=20,
                env={"XDG_CACHE_HOME": str(Path(cwd) / f"cache{i}")},
            )
            if "first_frame" in seen:
                validating.append(seen["first_frame"] * 1000)
    attached_first, attached_ready, attached_pairs, attached_cpu = attached_runs(
        cockpit, config, cwd, marks, runs, cache
    )
    first_s, floor_s = summary(first), summary(floor)
    attached_s = summary(attached_first)
    out = {
        "benchmark": "cold_start",
        "runs": runs,
        "unit": "ms",
        "first_frame": first_s,
        "floor_bare_textual_first_frame": floor_s,
        "ratio_first_frame": ratio(first_s, floor_s),
        "attached_first_frame": attached_s,
        "ratio_attached_first_frame": ratio(attached_s, floor_s),
        "first_frame_settings_changed": summary(validating),
        "ratio_first_frame_settings_changed": ratio(summary(validating), floor_s),
        "goal": "first frame <= 500 ms, ready <= 3000 ms",
        # Judged on the pairs' own ratios (the load of the moment weighs on both); the ratio of medians beside it.
        "goals": {
            "first frame / bare Textual p50": judge_paired([a for a, _ in pairs], [b for _, b in pairs], 1.3),
            "attached first frame / bare Textual p50": judge_paired(
                [a for a, _ in attached_pairs], [b for _, b in attached_pairs], 1.3
            ),
        },
        "first_frame_unpaired": judge(first, floor, 1.3),
        # The CPU time each program had used at its first frame: the work, which the load of the moment does not
        # stretch (a figure beside the goals, judged the same way).
        "first_frame_cpu_ms": summary([a for a, _ in cpu_pairs]),
        "floor_bare_textual_first_frame_cpu_ms": summary([b for _, b in cpu_pairs]),
        "attached_first_frame_cpu_ms": summary([a for a, _ in attached_cpu]),
        "cpu_ratios": {
            "first frame / bare Textual, CPU": judge_paired([a for a, _ in cpu_pairs], [b for _, b in cpu_pairs], 1.3),
            "attached first frame / bare Textual, CPU": judge_paired(
                [a for a, _ in attached_cpu], [b for _, b in attached_cpu], 1.3
            ),
        },
    }
    if ready:
        out["ready"] = summary(ready_s)
        out["attached_ready"] = summary(attached_ready)
    return out


if __name__ == "__main__":
    from benchlib import cli

    cli(measure, PARAMS, __doc__)
