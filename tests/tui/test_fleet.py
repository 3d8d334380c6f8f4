"""One cockpit watching several engines (`--url` repeated, `[[remote]]` entries), under Textual's Pilot: two real
engines on their own built-in simulators, in this test's process, each serving its API on its data directory's
socket; the real app follows both.

What an operator relies on: a list says every engine's state as it moves (a halt elsewhere is told at once); the
screen shows one engine and the kill-switch keys act on that one only; `e` shows the next, with nothing of the other
left on the screen; an engine that goes away is UNREACHABLE in the list; `Halt all engines` asks once, halts every
engine in reach and says, engine by engine, what each answered and which could not be reached.
"""

from __future__ import annotations

import getpass
import time

import pytest
from eventually import eventually
from tui.test_attach import banner, halted_at, rest_a_buy, said, settings_for

from cockpit.app import CockpitApp
from cockpit.attached import Target
from cockpit.fleet import FleetLink, Watched
from cockpit.screens import Confirm
from engine.core.engine import Engine
from engine.kernel.commands import Halt
from engine.kernel.events import TradingState
from widgets.engines import EngineStrip
from widgets.keyed_table import KeyedTable

ME = f"operator:key {getpass.getuser()}"


@pytest.fixture
async def engines(tmp_path):
    """Two engines, each on its own simulator and data directory, as two `cockpit run --headless` run them."""
    running = [Engine(settings_for(tmp_path / name)) for name in ("desk-a", "desk-b")]
    try:
        for engine in running:
            await engine.start()
        for engine in running:
            await eventually(engine.ready.is_set, timeout=20, message="the engine connected to its simulator")
        yield running
    finally:
        for engine in running:
            await engine.stop()


def strip(app) -> str:
    return app.main_screen.query_one(EngineStrip).render().plain


async def test_the_list_says_each_engines_state_and_the_keys_act_on_the_one_shown(engines, tmp_path):
    a, b = engines
    order_a = await rest_a_buy(a)
    fleet = FleetLink(
        [Watched("desk-a", Target.local(tmp_path / "desk-a")), Watched("desk-b", Target.local(tmp_path / "desk-b"))]
    )
    app = CockpitApp(link=fleet, settings=settings_for(tmp_path / "desk-a"))
    async with app.run_test(size=(100, 30)) as pilot:
        orders = app.main_screen.query_one("#orders", KeyedTable)
        await eventually(lambda: order_a in orders.keys, message="engine a's resting order on the screen")
        await eventually(
            lambda: "▶1 desk-a ACTIVE" in strip(app) and " 2 desk-b ACTIVE" in strip(app), message="both in the list"
        )

        await pilot.press("e")
        await eventually(lambda: said(app, "Now showing engine desk-b"), message="engine b on the screen")
        assert orders.keys == []  # nothing of engine a left on the screen
        assert "▶2 desk-b" in strip(app) and "attached to desk-b" in banner(app)

        halted = halted_at(b)
        pressed = time.monotonic()
        await pilot.press("h")
        await eventually(lambda: halted, timeout=1.0, message="h halted the engine shown, within a second")
        assert halted[0] - pressed < 1.0
        await eventually(lambda: "desk-b HALTED" in strip(app) and "HALTED" in banner(app))
        assert a.trading_state == TradingState.ACTIVE  # never the other one
        assert b.store.audit(limit=1)[0]["actor"] == ME

        # A halt elsewhere of the engine not shown: its line, and a word to the operator, at once.
        await a.execute(Halt(actor="operator:cli someone", reason="from the other desk"))
        await eventually(lambda: "desk-a HALTED" in strip(app), timeout=1.0, message="engine a's halt in the list")
        assert said(app, "Engine desk-a: HALTED by operator:cli someone: from the other desk")
        assert "desk-b" in banner(app) and orders.keys == []  # the screen still shows engine b


async def test_halt_all_engines_asks_once_halts_each_in_reach_and_reports_each(engines, tmp_path):
    a, b = engines
    fleet = FleetLink(
        [Watched("desk-a", Target.local(tmp_path / "desk-a")), Watched("desk-b", Target.local(tmp_path / "desk-b"))]
    )
    app = CockpitApp(link=fleet, settings=settings_for(tmp_path / "desk-a"))
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: "desk-a ACTIVE" in strip(app) and "desk-b ACTIVE" in strip(app))
        await b.stop()
        await eventually(lambda: "desk-b UNREACHABLE" in strip(app), timeout=3.0, message="engine b lost, said")
        assert said(app, "Lost engine desk-b")

        await app.run_action("halt_all")
        await eventually(lambda: isinstance(app.screen, Confirm), message="one question for every engine")
        assert "HALT ALL 2 ENGINES?" in str(app.screen.question) and "desk-b UNREACHABLE" in str(app.screen.question)
        await pilot.press("y")
        await eventually(lambda: said(app, "1 of 2 engines halted"), message="the answer, engine by engine")
        assert a.trading_state == TradingState.HALTED
        assert a.store.audit(limit=1)[0]["reason"] == "palette: halt all engines"
        report = next(m for title, m, _ in app.notices if title == "Halt all engines" and "halted" in m)
        assert "desk-a: " in report and "desk-b: NOT SENT: unreachable since" in report
        assert "cockpit halt --data-dir" in report  # what works for engine b meanwhile

        # Engine b's line and the selected one's keys: b shown while it is away says so; a comes back on `e`.
        await pilot.press("e")
        await eventually(lambda: "ENGINE UNREACHABLE" in banner(app), message="engine b shown, out of reach")
        await pilot.press("e")
        await eventually(lambda: "HALTED" in banner(app) and "desk-a" in banner(app), message="engine a again")
