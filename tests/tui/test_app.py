"""The real cockpit app under Textual's Pilot, on the real simulator: keys halt and cancel at the venue."""

from __future__ import annotations

import asyncio

from eventually import eventually
from keys import typed
from textual.widgets import Input

from cockpit.app import CockpitApp
from engine.core.engine import Engine
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import TradingState
from engine.store.db import Store
from widgets.alerts import AlertList
from widgets.banner import StatusBanner
from widgets.keyed_table import KeyedTable


def make_app(tmp_path, strategy: bool = True) -> CockpitApp:
    settings = Settings(
        engine=EngineConfig(data_dir=tmp_path),
        strategy=StrategyConfig(enabled=strategy, interval_s=0.2),
    )
    return CockpitApp(Engine(settings))


async def test_h_halts_at_once_and_is_persisted(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        banner = app.query_one(StatusBanner)
        await eventually(lambda: "PAPER · ACTIVE" in banner.render().plain)
        await pilot.press("h")
        assert engine.trading_state == TradingState.HALTED
        await eventually(lambda: "PAPER · HALTED by operator:key at " in banner.render().plain)
        assert "u: resume" in banner.render().plain
        assert Store.in_dir(tmp_path).trading_state()[0] == TradingState.HALTED
        await eventually(lambda: any(a.code == "TRADING_HALTED" for a in app.query_one(AlertList).alerts))


async def test_c_cancels_every_order_at_the_venue(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        orders = app.query_one("#orders", KeyedTable)
        await eventually(lambda: len(engine.sim.open_orders()) >= 2, timeout=15, message="the ladder resting orders")
        await eventually(lambda: len(orders.keys) >= 2, message="open orders on screen")
        await pilot.press("c")
        await eventually(lambda: engine.sim.open_orders() == [], timeout=10, message="the simulator has no open orders")
        await eventually(lambda: orders.keys == [], message="the orders table is empty")
        assert engine.trading_state == TradingState.HALTED


async def test_resume_asks_once(tmp_path):
    app = make_app(tmp_path, strategy=False)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await pilot.press("h")
        await pilot.press("u")
        await eventually(lambda: app.screen.__class__.__name__ == "Confirm")
        await pilot.press("n")
        await eventually(lambda: app.screen.__class__.__name__ != "Confirm")
        assert engine.trading_state == TradingState.HALTED
        await pilot.press("u")
        await eventually(lambda: app.screen.__class__.__name__ == "Confirm")
        await pilot.press("y")
        await eventually(lambda: engine.trading_state == TradingState.ACTIVE)


async def test_balances_and_footer_shown(tmp_path):
    app = make_app(tmp_path, strategy=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        balances = app.main_screen.query_one("#balances")
        await eventually(lambda: "USDT 10,000.00" in str(balances.content), message="USDT balance on screen")
        await pilot.pause()
        footer_keys = {key for key, active in app.active_bindings.items() if active.binding.show}
        assert {"h", "c", "x", "u", "a", "q"} <= footer_keys


async def test_a_cockpit_that_cannot_start_its_engine_says_why_once_and_exits_2(tmp_path):
    """A second cockpit on a data directory in use: exit status 2 and no other error (the message itself is
    checked from the command line in tests/integration/test_engine_sim.py)."""
    first = Engine(Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=False)))
    await first.start()
    try:
        app = make_app(tmp_path, strategy=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
        assert app.return_code == 2
        assert app._exception is None  # no second error (the main screen mounting after the exit began)
    finally:
        await first.stop()


class HeldStart(CockpitApp):
    """The cockpit as ``cockpit`` opens it (from the settings: the engine built after the first frame), with the
    engine's start held until the test lets it go, so keys can be pressed while it is starting."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings=settings)
        self.go = asyncio.Event()

    async def _start(self) -> None:
        await self.go.wait()
        await super()._start()


async def test_the_screen_comes_before_the_engine_and_a_kill_key_pressed_meanwhile_is_not_lost(tmp_path):
    settings = Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=False))
    app = HeldStart(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        banner = app.query_one(StatusBanner)
        await eventually(lambda: "PAPER" in banner.render().plain, message="the first frame, engine not built")
        assert app.engine is None and not app.started.is_set()
        assert app.why_not("resume") == "the engine is still starting"
        assert app.why_not("halt") is None and app.why_not("cancel_all") is None and app.why_not("quit") is None
        await pilot.press("u")  # not now: says why, does nothing
        await pilot.press("c")  # the kill switch waits for the engine
        assert app.engine is None
        app.go.set()
        await eventually(lambda: app.started.is_set(), timeout=20, message="engine up")
        engine = app.engine
        await eventually(
            lambda: engine.trading_state == TradingState.HALTED,
            timeout=10,
            message="c pressed while starting carried out once the engine was up",
        )
        store = Store.in_dir(tmp_path)
        await eventually(
            lambda: [r for r in store.audit(limit=20) if r["command"] == "cancel-all"], message="audited like any key"
        )
        (row,) = [r for r in store.audit(limit=20) if r["command"] == "cancel-all"]
        assert row["actor"] == "operator:key"
        # Pressed before the venue was connected, it is retried by the engine until the venue has answered.
        await eventually(
            lambda: engine.ready.is_set() and not engine.kill_switch_retrying(),
            timeout=20,
            message="the cancel-all carried out at the venue",
        )
        assert not [r for r in store.audit(limit=20) if r["command"] == "resume"]
        await eventually(lambda: "HALTED by operator:key" in banner.render().plain)


async def test_a_refused_resume_asks_a_second_question_and_resumes_as_an_override(tmp_path):
    """After a flash crash the calm rule refuses resume; `u` says why and offers the override; the reason is typed
    (h, c and x are letters there, not the kill switch), and the resume is audited as an override."""
    from runbook import MON

    from engine.kernel.config import MonitorsConfig

    settings = Settings(
        engine=EngineConfig(data_dir=tmp_path),
        strategy=StrategyConfig(enabled=False),
        # Stale-data limits a loaded machine cannot trip: another trip would withdraw the question (by design).
        monitors=MonitorsConfig(**{**MON, "flash_calm_s": 600.0, "ws_stale_warn_s": 30.0, "ws_stale_crit_s": 60.0}),
    )
    app = CockpitApp(Engine(settings))
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        engine.sim.faults.inject("flash-crash", symbol="BTCUSDT", percent=15, seconds=0.3, recover=0)
        await eventually(lambda: engine.trading_state == TradingState.HALTED, timeout=30, message="the crash halts")
        await eventually(
            lambda: engine.resume_refusal("operator:key") is not None, timeout=30, message="calm refuses resume"
        )
        await pilot.press("u")
        await eventually(lambda: app.screen.__class__.__name__ == "Confirm")
        assert "flash_crash" in app.screen.question and "Override" in app.screen.question
        await pilot.press("y")
        await eventually(lambda: app.screen.__class__.__name__ == "OverrideReason")
        await pilot.press("enter")  # an empty reason is refused; the question stays
        assert app.screen.__class__.__name__ == "OverrideReason"
        reason = "checked the book by hand"  # has h and c: typed, not the kill switch
        typed(app, reason)
        await eventually(lambda: app.screen.query_one(Input).value == reason, message="the reason typed")
        await pilot.press("enter")
        await eventually(lambda: engine.trading_state == TradingState.ACTIVE, message="resumed by the override")
        record = next(r for r in engine.store.audit(limit=20) if r["command"] == "resume")
        assert record["ok"] and record["values"]["override"] is True
        assert record["reason"] == "checked the book by hand"
        assert not [r for r in engine.store.audit(limit=20) if r["command"] in ("cancel-all", "close-all")]
