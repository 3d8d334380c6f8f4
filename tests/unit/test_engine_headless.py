"""The engine never imports Textual: it is headless, and front ends are its clients."""

import subprocess
import sys


def test_importing_engine_does_not_import_textual():
    code = (
        "import sys, engine, engine.core.engine, engine.store.db, engine.venue.adapter, engine.sim;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'widgets', 'cockpit')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ccxt_is_imported_only_where_the_venue_is_connected():
    """ccxt costs most of a second to import: the cockpit's first frame and the CLI's quick commands never pay it
    (issue 13). Loading a "sim" configuration and importing the engine, the app and the CLI leave it out."""
    code = (
        "import sys, engine.core.engine, engine.core.emergency, cockpit.cli.dispatch, cockpit.app, cockpit.status;"
        "from engine.kernel.config import Settings, VenueConfig;"
        "Settings(venue=VenueConfig(exchange='sim')); Settings(venue=VenueConfig(exchange='binance'));"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'ccxt'];"
        "print(bad[:5]); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
