"""Crash tests' holds: how long a process waits at a named point of its work, so that a test can kill it there.

Each hold is read from its own ``TEST_COCKPIT_*`` variable (never ``COCKPIT_``: that prefix is the settings');
unset, empty or not a number, there is no hold.
"""

from __future__ import annotations

import os


def hold_s(variable: str) -> float:
    """Seconds to wait where ``variable`` names a hold (0: none)."""
    try:
        return float(os.environ.get(variable, "") or 0)
    except ValueError:
        return 0.0
