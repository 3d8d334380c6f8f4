"""What some tests need from the machine, required with a reason rather than skipped: a test that skips in CI
proves nothing there (issue 27). .ci/run installs each of them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def tmux() -> str:
    """tmux's path, or the test fails saying how to get it (the real program is driven in a tmux pane)."""
    path = shutil.which("tmux")
    if path is None:
        pytest.fail(
            "tmux is not installed: this test runs the real program in a tmux pane "
            "(apt-get install tmux; .ci/run installs it)",
            pytrace=False,
        )
    return path


@contextmanager
def read_only(directory: Path) -> Iterator[str]:
    """``directory`` read-only the way a disk goes, and the reason the store gives for it: file modes for a user,
    a read-only bind mount for root (CI runs as root, and root writes through file modes). A root that cannot
    bind-mount fails the test with the reason, rather than skipping it."""
    if os.geteuid() != 0:
        os.chmod(directory, 0o555)
        try:
            yield "no permission to write there"
        finally:
            os.chmod(directory, 0o755)
        return
    d = str(directory)
    mounted = subprocess.run(["mount", "--bind", d, d], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(
            f"a read-only data directory as root needs a bind mount (CAP_SYS_ADMIN): {mounted.stderr.strip()}",
            pytrace=False,
        )
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", d, d], check=True, capture_output=True)
        yield "the file system is read-only"
    finally:
        subprocess.run(["umount", "-l", d], capture_output=True)
