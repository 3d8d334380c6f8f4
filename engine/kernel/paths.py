"""Where cockpit keeps its state by default: light enough for the kill switch's quick path to import."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """One per-user state directory, wherever cockpit is run from: ``$XDG_STATE_HOME/cockpit``, or
    ``~/.local/state/cockpit`` (the XDG base directory default)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cockpit"
