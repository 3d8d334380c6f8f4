"""The kill-switch keys under Pilot on the built-in simulator: x closes everything after one question that
lists it, r reconnects, a question is withdrawn when the state moves, the palette offers every command, and
[keys] remaps a binding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eventually import eventually
from textual.command import CommandList

from cockpit.app import CockpitApp, check_keymap
from cockpit.palette import CockpitCommands
from cockpit.screens import Confirm
from engine.core.engine import Engine
from engine.kernel.commands import SPECS, PlaceOrder, Resume
from engine.kernel.config import EngineConfig, RiskConfig, Settings, StrategyConfig
from engine.kernel.events import TradingState
from engine.store.db import Store


def make_app(tmp_path, keys: dict[str, str] | None = None) -> CockpitApp:
    settings = Settings(
        engine=EngineConfig(data_dir=tmp_path),
        strategy=StrategyConfig(enabled=False),
        risk=RiskConfig(max_position_pct=Decimal("20")),
        keys=keys or {},
    )
    return CockpitApp(Engine(settings))


def question(app) -> str:
    screen = app.screen
    return screen.question if isinstance(screen, Confirm) else ""


async def buy(engine: Engine, symbol: str, amount: str, take_profit: bool = False) -> None:
    last = engine.portfolio.last[symbol]
    result = await engine.execute(
        PlaceOrder(
            symbol=symbol,
            side="buy",
            type="market",
            amount=Decimal(amount),
            stop_loss=last * Decimal("0.5"),
            take_profit=last * Decimal("1.5") if take_profit else None,
        )
    )
    assert result.ok, result.message


async def test_x_asks_once_listing_what_it_sells_then_flattens_the_venue(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await buy(engine, "BTC/USDT", "0.01")
        await buy(engine, "ETH/USDT", "0.2", take_profit=True)
        positions = app.screen.query_one("#positions")

        def stop_at(symbol: str) -> str:
            cells = positions.row_cells(symbol)
            return str(cells[-1]) if cells else ""

        # Each position's stop rests at the venue (issue 22), and the positions panel says where it is: ETH's with
        # its take-profit, as one OCO.
        await eventually(lambda: stop_at("BTC/USDT") == "venue", message="BTC's stop at the venue")
        await eventually(lambda: stop_at("ETH/USDT") == "venue OCO", message="ETH's OCO at the venue")
        await pilot.press("x")
        await eventually(lambda: question(app).startswith("CLOSE ALL?"))
        assert "BTC 0.00999 (~" in question(app) and "ETH 0.1998 (~" in question(app)  # net of the fee
        assert engine.trading_state == TradingState.ACTIVE  # nothing happens before the answer
        await pilot.press("y")
        await eventually(
            lambda: (
                sum(engine.sim.balance("BTC")) < Decimal("0.00001")
                and sum(engine.sim.balance("ETH")) < Decimal("0.0001")
            ),
            timeout=10,
            message="flat at the venue",
        )
        assert engine.trading_state == TradingState.HALTED
        # No stop is placed again until a resume, and the panel says so (with the key that ends it).
        await eventually(lambda: "stops at the venue SUSPENDED · u: resume" in str(positions.border_title))
        (row, *_) = Store.in_dir(tmp_path).audit(limit=1)
        assert row["command"] == "close-all" and row["actor"] == "operator:key"


async def test_x_answered_no_does_nothing(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await pilot.press("x")
        await eventually(lambda: "nothing held to sell" in question(app))
        await pilot.press("n")
        await eventually(lambda: not question(app))
        assert engine.trading_state == TradingState.ACTIVE


async def test_a_question_is_withdrawn_when_the_kill_switch_fires(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await pilot.press("h")
        await pilot.press("u")
        await eventually(lambda: question(app).startswith("Resume trading?"))
        await pilot.press("c")  # the kill switch while the operator was deciding
        await eventually(lambda: not question(app), message="the Resume question is withdrawn")
        await pilot.press("y")  # a late "yes" lands on nothing
        await pilot.pause()
        assert engine.trading_state == TradingState.HALTED


async def test_a_question_is_withdrawn_when_another_shell_halts(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await pilot.press("d")
        await eventually(lambda: question(app).startswith("Reduce only?"))
        from engine.kernel.commands import Halt

        await engine.execute(Halt(actor="operator:cli bob@desk", reason="from the other shell"))
        await eventually(lambda: not question(app), message="the question about the old state is gone")
        assert engine.trading_state == TradingState.HALTED


async def test_r_reconnects(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        old = engine.venue
        await pilot.press("r")
        await eventually(
            lambda: any(r["command"] == "reconnect" for r in Store.in_dir(tmp_path).audit(limit=3)),
            timeout=15,
            message="reconnect carried out",
        )
        assert engine.venue is not old


async def test_palette_offers_every_command_of_the_registry(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)):
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await buy(engine, "BTC/USDT", "0.01")
        provider = CockpitCommands(app.screen)
        titles = [title for title, _, _ in provider._entries()]
        assert {s.title for s in SPECS if s.action} <= set(titles)
        assert "Close position BTC/USDT" in titles
        # every binding is a palette entry too: the screens, the order form, help, quit
        assert {"Alert log", "Audit", "Incidents", "Reconciliation", "Order", "Help", "Quit"} <= set(titles)


async def test_keys_section_remaps_a_binding(tmp_path):
    """A [keys] entry adds a key to the kill switch; h stays (the kill switch's keys are never taken away)."""
    app = make_app(tmp_path, keys={"halt": "f2"})
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await pilot.press("f2")
        await eventually(lambda: engine.trading_state == TradingState.HALTED)
        assert (await engine.execute(Resume(actor="operator:test", reason="drill"))).ok
        await pilot.press("h")
        await eventually(lambda: engine.trading_state == TradingState.HALTED)


def test_unknown_binding_id_is_refused_with_the_ids_there_are():
    with pytest.raises(ValueError, match="no such binding; the ids are halt, cancel_all, close_all"):
        check_keymap({"halt_everything": "f2"})


async def test_palette_entry_runs_the_same_command_as_the_key(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Halt")
        await eventually(lambda: app.screen.query_one(CommandList).option_count >= 1, message="palette hits shown")
        await pilot.press("enter")
        await eventually(lambda: engine.trading_state == TradingState.HALTED, message="halted from the palette")
        assert engine.state_info["actor"] == "operator:key"


async def test_a_acknowledges_the_selected_alert_and_capital_a_all_of_them(tmp_path):
    from widgets.alerts import AlertList

    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await pilot.press("h")
        from engine.kernel.events import Severity

        engine.alert(Severity.CRIT, "STOP_LOSS_FAILED", "exit failed (test)")
        alerts = app.query_one(AlertList)
        await eventually(lambda: any(a.code == "STOP_LOSS_FAILED" for a in alerts.alerts))
        alerts.focus()
        alerts.move_cursor(row=0)
        top = alerts.alerts[0]
        await pilot.press("a")
        await eventually(lambda: next(a for a in alerts.alerts if a.id == top.id).acked, message="top one acked")
        assert engine.alert_book.unacknowledged()  # the others are still open
        await pilot.press("A")
        await eventually(lambda: engine.alert_book.unacknowledged() == [], message="all acknowledged")
        row = next(r for r in Store.in_dir(tmp_path).alerts() if r["id"] == top.id)
        assert row["acked_by"] == "operator:key"


async def test_the_banner_names_the_monitor_that_halted_and_when(tmp_path):
    from engine.kernel.commands import Halt
    from widgets.banner import StatusBanner

    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)):
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await engine.execute(Halt(actor="monitor:ws_stale", reason="no data for 61s"))
        banner = app.query_one(StatusBanner)
        await eventually(lambda: "PAPER · HALTED by ws_stale at " in banner.render().plain)
        assert "u: resume" in banner.render().plain


async def test_a_terminal_under_80x24_says_so_and_still_halts(tmp_path):
    from cockpit.screens import TooSmall

    app = make_app(tmp_path)
    async with app.run_test(size=(60, 15)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await eventually(lambda: isinstance(app.screen, TooSmall), message="the too-small screen")
        await eventually(lambda: "need 80×24, have 60×15" in str(app.screen.message.render()))
        await pilot.press("h")
        await eventually(lambda: engine.trading_state == TradingState.HALTED)
        await pilot.resize_terminal(100, 30)
        await eventually(lambda: not isinstance(app.screen, TooSmall), message="back to the cockpit")


async def test_the_screen_shows_alerts_from_its_least_severity_up(tmp_path):
    from engine.kernel.config import AlertsConfig
    from engine.kernel.events import Severity
    from widgets.alerts import AlertList

    settings = Settings(
        engine=EngineConfig(data_dir=tmp_path),
        strategy=StrategyConfig(enabled=False),
        alerts=AlertsConfig(screen_min_severity="WARN"),
    )
    app = CockpitApp(Engine(settings))
    async with app.run_test(size=(100, 30)):
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        engine.alert(Severity.INFO, "RECONNECTED", "info only")
        engine.alert(Severity.WARN, "CLOCK_SKEW", "a warning")
        alerts = app.query_one(AlertList)
        await eventually(lambda: any(a.code == "CLOCK_SKEW" for a in alerts.alerts))
        assert not any(a.code == "RECONNECTED" for a in alerts.alerts)
        assert any(r["code"] == "RECONNECTED" for r in Store.in_dir(tmp_path).alerts())  # the store keeps all
