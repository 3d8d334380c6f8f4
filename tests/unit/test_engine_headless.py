"""The engine never imports Textual (STYLE.md, practice 1)."""

import subprocess
import sys


def test_importing_engine_does_not_import_textual():
    code = (
        "import sys, engine, engine.core, engine.store, engine.venue, engine.sim;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'widgets', 'cockpit')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
