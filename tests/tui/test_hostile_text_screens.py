"""Issue 25 §1 on the screen: the real cockpit under Textual's Pilot (and the real program in tmux), with a halt
from another shell whose reason and actor carry terminal escapes, bidi overrides and markup, and a CRIT alert
whose words are Rich markup. The banner still says HALTED; what the terminal is sent holds the escapes as visible
text (``\\x1b[2J``), never the escapes themselves; markup shows as its brackets."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys

import pytest
from eventually import eventually
from rich.console import Console

from cockpit.app import CockpitApp
from cockpit.screens import AlertLog, AuditLog, Incidents
from engine.core.engine import Engine
from engine.kernel.commands import Halt
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import Severity, TradingState
from widgets.banner import CritBanner, StatusBanner

WIPE_AND_RETITLE = "X\x1b[2J\x1b]0;pwned\x07"
REASON = WIPE_AND_RETITLE + " abc\u202edef \x9b2J \u2066iso\u2069 [bold]not bold[/bold] line\nbreak"
MARKUP = "[bold red]venue says[/bold red] [link=http://evil]click[/link] [/]"
RAW = {"\x1b": "ESC", "\x07": "BEL", "\x9b": "CSI (C1)", "\u202e": "RLO", "\u2066": "LRI"}


def make_app(tmp_path) -> CockpitApp:
    return CockpitApp(Engine(Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=False))))


def terminal_output(app) -> tuple[str, str]:
    """What the terminal is sent for the whole screen (styles as escape sequences), and the screen as plain text:
    drawn as ``App.export_screenshot`` draws it, into a recording console instead of an SVG."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.file.getvalue(), console.export_text()


def assert_inert_screen(app, where: str) -> str:
    """Nothing on screen acts on the terminal: no escape but the screen's own styles reaches it. Returns the text."""
    sent, text = terminal_output(app)
    found = [name for ch, name in RAW.items() if ch in text]
    assert not found, f"{where}: raw {', '.join(found)} on screen:\n{text}"
    assert "\x1b[2J" not in sent and "\x1b]0;" not in sent and "\x07" not in sent, f"{where}: {sent[:2000]!r}"
    return text


@pytest.mark.slow  # the app under Pilot through three screens: over the fast tier's bar (tests/conftest.py)
async def test_a_hostile_halt_reason_and_actor_are_shown_inert_and_the_banner_still_says_halted(tmp_path, monkeypatch):
    app = make_app(tmp_path)
    async with app.run_test(size=(250, 40)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        banner = app.query_one(StatusBanner)
        await eventually(lambda: "PAPER · ACTIVE" in banner.render().plain)

        # An actor is named by the transport now (a socket's peer, a token's checked name), never by the client: a
        # hostile one can only come from inside. The screen shows it inert all the same.
        halted = await engine.execute(Halt(actor="operator:cli eve" + WIPE_AND_RETITLE, reason=REASON))
        assert halted.ok, halted.message
        assert engine.trading_state == TradingState.HALTED
        assert engine.state_info["reason"] == REASON  # kept faithfully
        await eventually(lambda: "PAPER · HALTED by operator:cli eveX\\x1b[2J" in banner.render().plain)
        await eventually(  # the reason's own words (the actor's escapes are in the banner already)
            lambda: "abc\\u202edef" in assert_inert_screen(app, "main screen"),
            message="the reason, escapes visible, in the alert list",
        )
        text = assert_inert_screen(app, "main screen")
        assert "HALTED by operator:cli eveX\\x1b[2J" in text  # the banner kept its place and its words
        assert "abc\\u202edef" in text

        for key, screen in (("l", AlertLog), ("t", AuditLog), ("i", Incidents)):
            await pilot.press(key)
            await eventually(lambda screen=screen: isinstance(app.screen, screen))
            await pilot.pause()

            def reason_shown(name: str = screen.__name__) -> bool:
                text = assert_inert_screen(app, name)
                assert "X\\x1b[2J\\x1b]0;pwned\\x07" in text and "[bold]not bold[/bold]" in text, text
                return True

            await eventually(reason_shown, message=f"the reason on the {screen.__name__} screen")
            await pilot.press("escape")
            await eventually(lambda: app.screen is app.main_screen)
        assert "PAPER · HALTED" in banner.render().plain


async def test_an_alert_in_markup_shows_its_brackets(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(250, 40)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        engine.alert(Severity.CRIT, "VENUE_ERROR", MARKUP + " " + WIPE_AND_RETITLE)
        crit = app.query_one(CritBanner)
        await eventually(lambda: crit.has_class("-shown"), message="the CRIT banner")
        await pilot.pause()
        text = assert_inert_screen(app, "main screen with a CRIT alert")
        assert "[bold red]venue says[/bold red]" in text  # in the CRIT line and the alert list (no toast over them)
        assert text.count("[bold red]venue says") >= 2
        assert "X\\x1b[2J" in text
        await pilot.press("l")
        await eventually(lambda: isinstance(app.screen, AlertLog))
        await pilot.pause()
        assert "[link=http://evil]click[/link]" in assert_inert_screen(app, "alert log")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


@pytest.mark.slow
@pytest.mark.usefixtures("tmux_installed")
async def test_in_tmux_a_hostile_halt_from_another_shell_leaves_the_banner_and_the_title(tmp_path):
    """`cockpit halt --reason $'X\\e[2J\\e]0;pwned\\a'` from another shell while the cockpit runs in tmux: the pane
    keeps its banner (now HALTED), its title is not "pwned", and the reason is on screen with its escapes visible."""
    session = f"cockpit-hostile-{os.getpid()}"
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    command = f"exec env -u COLUMNS -u LINES TERM=xterm-256color {sys.executable} -m cockpit.cli --data-dir {data}"
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "40", command)  # room for the alert's words
    screen = lambda: tmux("capture-pane", "-p", "-t", session)
    try:
        await eventually(lambda: "PAPER · ACTIVE" in screen(), timeout=40, message="the main screen")
        title = tmux("display-message", "-p", "-t", session, "#{pane_title}")
        halt = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cockpit.cli", "halt", "--reason", WIPE_AND_RETITLE, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        assert halt.returncode == 0, halt.stderr
        await eventually(lambda: "PAPER · HALTED by operator:cli" in screen(), timeout=15, message="HALTED banner")

        def reason_shown() -> bool:
            text = screen()
            assert "X\\x1b[2J\\x1b]0;pwned\\x07" in text, text
            return True

        await eventually(reason_shown, timeout=15, message="the reason, escapes visible, in the alert list")
        text = screen()
        assert "PAPER · HALTED by operator:cli" in text and "Markets · positions" in text, text  # nothing wiped
        assert "pwned" not in tmux("display-message", "-p", "-t", session, "#{pane_title}")
        assert tmux("display-message", "-p", "-t", session, "#{pane_title}") == title
    finally:
        tmux("kill-session", "-t", session)
        await eventually(lambda: _unlocked(data), timeout=60, message="the cockpit exits once its terminal is gone")


def _unlocked(data) -> bool:
    """The cockpit in tmux has let go of its data directory (its hang-up policy ran and it exited)."""
    try:
        from engine.store.datadir import engine_pid

        return engine_pid(data) is None
    except Exception:
        return False
