"""The first frame drawn from the values validated last time (cockpit.firstframe, decision BEN-06): only when every
input is the same, never for what is acted on, and a configuration that fails after the frame closes the screen
with its message and exit status 2, the engine never built."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
from eventually import eventually

from cockpit import cli, firstframe
from cockpit.app import CockpitApp
from engine.kernel.config import ConfigError


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[engine]\nmode = "paper"\n[venue]\nexchange = "sim"\nsymbols = ["BTC/USDT"]\n{extra}')
    return path


def test_the_record_is_drawn_from_only_while_every_input_is_the_same(tmp_path, monkeypatch):
    path, data = config(tmp_path, '[keys]\nhalt = "f2"\n'), tmp_path / "data"
    assert firstframe.recalled(path, data) is None  # nothing validated yet: the settings load before the frame
    firstframe.remember(firstframe.validated(path, data), path, data)
    early = firstframe.recalled(path, data)
    assert early is not None
    assert (early.engine.mode, early.venue.symbols, early.keys) == ("paper", ("BTC/USDT",), {"halt": "f2"})
    assert early.engine.data_dir == data
    assert "secret" not in firstframe.record_path().read_text()
    assert firstframe.recalled(path, tmp_path / "other").engine.data_dir == tmp_path / "other"  # the flag's, each time
    assert firstframe.recalled(path, None) is None  # --data-dir left out: another input
    monkeypatch.setenv("COCKPIT_VENUE__API_SECRET", "secret")
    assert firstframe.recalled(path, data) is None  # the environment changed
    monkeypatch.delenv("COCKPIT_VENUE__API_SECRET")
    assert firstframe.recalled(path, data) is not None
    (tmp_path / ".env").write_text("COCKPIT_ENGINE__MODE=dry-run\n")
    assert firstframe.recalled(path, data) is None  # .env beside it changed
    (tmp_path / ".env").unlink()
    config(tmp_path, '[keys]\nhalt = "f3"\n')
    assert firstframe.recalled(path, data) is None  # the file changed


def test_live_is_never_drawn_early(tmp_path):
    path, data = tmp_path / "live.toml", tmp_path / "data"
    path.write_text('[engine]\nmode = "live"\n[venue]\nexchange = "binance"\n')
    firstframe.remember(firstframe.validated(path, data), path, data)
    assert firstframe.recalled(path, data) is None


@pytest.mark.parametrize("how", ["in-process", "attached"])
async def test_a_configuration_that_fails_after_the_frame_closes_the_screen_with_its_message(tmp_path, capsys, how):
    path, data = config(tmp_path), tmp_path / "data"
    firstframe.remember(firstframe.validated(path, data), path, data)
    early = firstframe.recalled(path, data)
    assert early is not None
    early.load = lambda: firstframe.validated(config(tmp_path, "[monitors]\ninterval_s = inf\n"), data)
    if how == "attached":  # checked before the engine is reached, as before its frame (decision BEN-14)
        from cockpit.attached import AttachedLink, Target

        link = AttachedLink(Target.local(data))
        app = CockpitApp(link=link, settings=early, panels_after_frame=True)
    else:
        app = CockpitApp(settings=early)
    async with app.run_test(size=(100, 30)):
        await eventually(lambda: app.started.is_set(), timeout=20)
    assert app.start_failed and app.engine is None and app.return_code == 2
    if how == "attached":
        assert link._session is None  # never opened: nothing was asked of the engine
    said = " ".join(capsys.readouterr().err.split())  # on stderr as before the screen, wrapped to the terminal
    assert "cockpit: " in said and "monitors.interval_s: Input should be a finite number" in said, said


def test_a_frame_that_differs_from_the_settings_loaded_is_not_carried_on(tmp_path):
    path, data = config(tmp_path, '[keys]\nhalt = "f2"\n'), tmp_path / "data"
    firstframe.remember(firstframe.validated(path, data), path, data)
    early = firstframe.recalled(path, data)
    assert early is not None
    early.load = lambda: firstframe.validated(config(tmp_path, '[keys]\nhalt = "f4"\n'), data)
    with pytest.raises(ConfigError, match="configuration changed while cockpit was starting"):
        early.validate()  # a frame drawn from other keys is not carried on


def test_the_screens_imports_leave_the_settings_models_for_after_the_frame():
    code = "import sys, cockpit.cli.dispatch, cockpit.app, cockpit.firstframe; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


FIRST_FRAME_PROBE = """
import asyncio, gc, sys
from pathlib import Path
from types import SimpleNamespace as NS
from cockpit import cli, firstframe
from cockpit.app import CockpitApp

tmp = Path(sys.argv[1])
path, data = tmp / "config.toml", tmp / "data"
path.write_text('[engine]\\nmode = "paper"\\n')
# The record a start validated earlier keeps (its values; validating them here would load what is looked for).
settings = NS(
    engine=NS(mode="paper", quote_asset="USDT", data_dir=data), venue=NS(exchange="sim", symbols=("BTC/USDT",)),
    monitors=NS(stuck_order_s=300.0), alerts=NS(screen_min_severity="INFO"), tui=NS(on_hangup="halt"), keys={},
    remote=(), strategy=NS(params={}),
)
firstframe.remember(settings, path, data)
early = firstframe.recalled(path, data)
LATER = ("engine.kernel.events", "engine.kernel.commands", "cockpit.screens", "cockpit.fleet", "cockpit.palette")
seen = {}
from cockpit.main_screen import MainScreen
mount_panels = MainScreen.mount_panels

async def tables_after_frame(screen):
    seen["tables"] = "textual.widgets._data_table" in sys.modules  # Textual's DataTable: with the tables
    await mount_panels(screen)

MainScreen.mount_panels = tables_after_frame

def load():
    seen.update({name: name in sys.modules for name in LATER})
    seen["collector held"] = not gc.isenabled()  # `cockpit` holds it from its start to its first frame
    from engine.kernel.config import ConfigError
    raise ConfigError("the probe stops here, before the engine")

early.load = load

async def main():
    if sys.argv[2:] == ["attached"]:  # `cockpit` where an engine runs (none answers here: the probe stops first)
        from cockpit.attached import AttachedLink, Target

        app = CockpitApp(link=AttachedLink(Target.local(data)), settings=early, panels_after_frame=True)
    else:
        app = CockpitApp(settings=early)
    async with app.run_test(size=(100, 30)) as pilot:
        while not app.started.is_set():
            await pilot.pause(0.02)
        keys = " ".join(str(key.render()) for key in app.main_screen.query("FooterKey"))
        assert "Cancel all" in keys, keys
        said = str(app.main_screen.query_one("#banner").headline())  # a running engine is reached, not started
        assert ("reaching the engine;" in said) == (sys.argv[2:] == ["attached"]), said

with firstframe.collector_held():
    asyncio.run(main())
print(seen)
"""


@pytest.mark.parametrize("how", ["in-process", "attached"])
def test_the_first_frame_leaves_the_engine_records_and_other_screens_for_after_it(tmp_path, how):
    """Up to the moment the settings are checked in full (right after the first frame, before the engine is
    built or reached), the screen has loaded neither the engine's events and commands nor the other screens, the
    palette's commands, a fleet's link or the panels' tables (decisions BEN-10, BEN-14), its footer's keys are
    composed, and the garbage collector held until the frame is on again: for
    `cockpit` over its own engine and for `cockpit` attaching to one that runs."""
    probe = [sys.executable, "-c", FIRST_FRAME_PROBE, str(tmp_path), *(["attached"] if how == "attached" else [])]
    out = subprocess.run(probe, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = out.stdout.strip().splitlines()[-1]
    assert seen.count(": False") == 7, seen  # looked at when the settings were loaded: none of the seven was there


def test_the_collector_held_until_the_first_frame_is_never_left_off(tmp_path):
    """`cockpit` turns Python's garbage collector off from its start to its first frame (decision BEN-14): a start
    that ends before any frame (a bad configuration) turns it on again, and a collector already off is left so."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[monitors]\ninterval_s = inf\n")
    assert gc.isenabled()
    assert cli.main(["--config", str(bad), "--data-dir", str(tmp_path / "data")]) == 2
    assert gc.isenabled()
    gc.disable()
    try:
        with firstframe.collector_held():
            firstframe.release_collector()
        assert not gc.isenabled()  # not this start's to turn on
    finally:
        gc.enable()
