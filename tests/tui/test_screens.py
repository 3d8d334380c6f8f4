"""Every screen and every binding of the cockpit, under Textual's Pilot, against the engine on the simulator:
what is not allowed now is shown disabled and says why, the logs show what the engine stored, the order form
goes through the risk checks, and quitting asks what to do with what is open."""

from __future__ import annotations

from decimal import Decimal

from eventually import eventually
from keys import type_into

from cockpit.app import BINDINGS, CockpitApp
from cockpit.screens import (
    AlertLog,
    AuditLog,
    Fills,
    Help,
    Incidents,
    OrderForm,
    OrderHistory,
    QuitChoice,
    Reconciliation,
    Strategies,
)
from engine.core.engine import Engine
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import TradingState
from widgets.keyed_table import KeyedTable


def make_app(tmp_path, strategy: bool = True, **engine_args) -> CockpitApp:
    settings = Settings(
        engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=strategy, interval_s=0.2)
    )
    return CockpitApp(Engine(settings, **engine_args))


def rows(screen) -> dict[str, tuple]:
    """Each row's cells as the operator reads them (plain text)."""
    table = screen.query_one("#rows", KeyedTable)
    return {k: tuple(str(c) for c in table.row_cells(k)) for k in table.keys}


def notified(app, text: str) -> bool:
    """Said to the operator: on the main screen's notice line, the too-small notice or a toast (every notice is
    kept in ``app.notices``)."""
    return any(text in message for _, message, _ in app.notices)


async def test_an_action_not_allowed_now_is_disabled_and_says_why(tmp_path):
    app = make_app(tmp_path, strategy=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        await pilot.pause()
        assert app.active_bindings["u"].enabled is False  # shown, disabled: already ACTIVE
        assert app.active_bindings["h"].enabled is True
        await pilot.press("u")
        await eventually(lambda: notified(app, "Not now: already ACTIVE"))
        assert not isinstance(app.screen, type(None)) and app.screen is app.main_screen  # no question asked
        await pilot.press("h")
        await eventually(lambda: app.engine.trading_state == TradingState.HALTED)
        await pilot.pause()
        assert app.active_bindings["u"].enabled is True
        assert app.active_bindings["h"].enabled is False
        await pilot.press("n")  # the order form: no new orders while HALTED
        await eventually(lambda: notified(app, "trading is HALTED"))
        assert app.screen is app.main_screen
        # c and x are never disabled: the venue may hold orders the engine does not know about
        assert app.active_bindings["c"].enabled and app.active_bindings["x"].enabled


async def test_help_lists_every_binding_with_whether_it_is_allowed_now(tmp_path):
    app = make_app(tmp_path, strategy=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        await pilot.press("question_mark")
        await eventually(lambda: isinstance(app.screen, Help))
        shown = rows(app.screen)
        assert set(shown) == {b.id for b in BINDINGS if b.id} - {"next_engine"}  # one engine: no engine to switch to
        assert "already ACTIVE" in shown["resume"][2]
        assert shown["halt"][2] == "yes"
        await pilot.press("h")  # the kill switch works on every screen
        await eventually(lambda: app.engine.trading_state == TradingState.HALTED)
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.main_screen)


async def test_logs_show_what_the_engine_stored(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await eventually(lambda: len(engine.sim.open_orders()) >= 2, timeout=15)
        await pilot.press("c")
        await eventually(lambda: engine.sim.open_orders() == [], timeout=10)

        await pilot.press("t")
        await eventually(lambda: isinstance(app.screen, AuditLog))
        await eventually(
            lambda: any(r[1] == "cancel-all" and r[2] == "operator:key" for r in rows(app.screen).values())
        )
        await pilot.press("escape")

        await pilot.press("l")
        await eventually(lambda: isinstance(app.screen, AlertLog))
        codes = {r[3] for r in rows(app.screen).values()}
        assert "TRADING_HALTED" in codes
        await pilot.press("3")  # CRIT only: an operator's halt is not CRIT
        await eventually(lambda: "TRADING_HALTED" not in {r[3] for r in rows(app.screen).values()})
        await pilot.press("1")
        await eventually(lambda: "TRADING_HALTED" in {r[3] for r in rows(app.screen).values()})
        await pilot.press("escape")

        await pilot.press("i")
        await eventually(lambda: isinstance(app.screen, Incidents))
        await eventually(lambda: len(rows(app.screen)) >= 1, message="the cancel-all trip is an incident")
        await pilot.press("enter")
        (incident_id,) = list(rows(app.screen))[:1]
        await eventually(lambda: (tmp_path / f"incident_{incident_id}.md").exists(), message="its report written")
        await pilot.press("escape")

        await pilot.press("v")
        await eventually(lambda: isinstance(app.screen, Reconciliation))
        await pilot.press("f5")
        await eventually(
            lambda: "difference(s) kept for the operator" in str(app.screen.query_one("#summary").render())
        )
        await pilot.press("escape")

        await pilot.press("f")
        await eventually(lambda: isinstance(app.screen, Fills))
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.main_screen)

        # The strategies: each with its symbols and record; switched off (the palette's action), it reads OFF
        # with the operator's reason, and ON again when enabled.
        await pilot.press("S")
        await eventually(lambda: isinstance(app.screen, Strategies))
        await eventually(lambda: "ladder" in rows(app.screen))
        ladder = rows(app.screen)["ladder"]
        assert ladder[1] == "ON" and ladder[2] == "BTC/USDT ETH/USDT" and ladder[4] == "0", ladder
        await app.run_action("set_strategy('ladder', False)")
        await pilot.press("f5")
        await eventually(lambda: rows(app.screen)["ladder"][1] == "OFF", message="read again after the switch")
        assert "1 strategy · 0 on · ladder off: palette" in str(app.screen.query_one("#summary").render())
        await app.run_action("set_strategy('ladder', True)")
        await pilot.press("f5")
        await eventually(lambda: rows(app.screen)["ladder"][1] == "ON")
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.main_screen)


async def test_order_history_of_the_selected_order(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        orders = app.main_screen.query_one("#orders", KeyedTable)
        await eventually(lambda: len(orders.keys) >= 1, timeout=15, message="an open order on screen")
        orders.focus()
        await pilot.pause()
        client_id = orders.selected_key
        await pilot.press("o")
        await eventually(lambda: isinstance(app.screen, OrderHistory))
        assert [r[3] for r in rows(app.screen).values()][:1] == ["engine"]  # stored before it was sent

        def acknowledged() -> bool:
            app.screen.action_reload()  # F5
            return any(r[1] == "OPEN" for r in rows(app.screen).values())

        await eventually(acknowledged, message="the venue's OPEN in the history")
        assert client_id in str(app.screen.query_one("#title").render())


async def test_the_order_form_goes_through_the_risk_checks(tmp_path):
    app = make_app(tmp_path, strategy=False)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await eventually(lambda: "BTC/USDT" in engine.portfolio.last)
        price = engine.portfolio.last["BTC/USDT"]
        await pilot.press("n")
        await eventually(lambda: isinstance(app.screen, OrderForm))
        await pilot.press("tab", "tab")  # the cursor starts on the symbol; past the side to the amount
        await type_into(app, "abc")
        await pilot.press("enter")  # not a number: said, nothing sent
        await eventually(lambda: "not a number" in str(app.screen.query_one("#error").render()))
        await pilot.press("backspace", "backspace", "backspace")
        await type_into(app, "0.001")
        await pilot.press("tab")
        await type_into(app, str((price * Decimal("0.9")).quantize(Decimal("0.01"))))
        await pilot.press("tab")
        await type_into(app, str((price * Decimal("0.8")).quantize(Decimal("0.01"))))
        await pilot.press("enter")
        await eventually(
            lambda: any(
                o.origin == "operator" or o.origin.startswith("operator") for o in engine.tracker.open_orders()
            ),
            timeout=10,
            message="the operator's limit order resting",
        )
        await eventually(lambda: len(engine.sim.open_orders()) == 1)
        # The audit record is written when the command ends, a moment after the venue shows its effect.
        (row, *_) = await eventually(
            lambda: [r for r in engine.store.audit(limit=5) if r["command"] == "order"], message="the order audited"
        )
        assert row["actor"] == "operator:key" and row["ok"]


async def test_quit_asks_what_to_do_with_what_is_open(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        await eventually(lambda: len(engine.sim.open_orders()) >= 2, timeout=15)
        await pilot.press("q")
        await eventually(lambda: isinstance(app.screen, QuitChoice))
        await pilot.press("escape")  # stay
        await eventually(lambda: app.screen is app.main_screen)
        assert app.is_running
        await pilot.press("q")
        await eventually(lambda: isinstance(app.screen, QuitChoice))
        await pilot.press("c")  # cancel every order, then quit
        await eventually(lambda: not app.is_running, timeout=15, message="the app exits")
    from engine.store.db import Store

    store = Store.in_dir(tmp_path, readonly=True)
    assert [(r["command"], r["reason"]) for r in store.audit(limit=5)][0] == (
        "cancel-all",
        "quit: operator chose cancel_all",
    )
    assert store.orders(open_only=True) == []


async def test_m_switches_to_dry_run_and_back_after_one_question(tmp_path):
    app = make_app(tmp_path, strategy=False)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        banner = app.main_screen.query_one("#banner")
        await pilot.press("m")
        await eventually(lambda: app.screen.__class__.__name__ == "Confirm")
        await pilot.press("y")
        await eventually(lambda: engine.mode == "dry-run")
        await eventually(lambda: "DRY-RUN · ACTIVE" in banner.render().plain)
        price = engine.portfolio.last["BTC/USDT"] * Decimal("0.9")
        await pilot.press("n")
        await eventually(lambda: isinstance(app.screen, OrderForm))
        await pilot.press(
            "tab",
            "tab",
            *"0.001",
            "tab",
            *str(price.quantize(Decimal("0.01"))),
            "tab",
            *str((price * Decimal("0.9")).quantize(Decimal("0.01"))),
            "enter",
        )
        await eventually(lambda: notified(app, "dry-run: would place buy"))
        assert engine.sim.open_orders() == []  # nothing reached the venue
        await pilot.press("m", "y")
        await eventually(lambda: engine.mode == "paper" and "PAPER · ACTIVE" in banner.render().plain)
        modes = [r for r in engine.store.audit(limit=10) if r["command"] == "mode"]
        assert [r["args"]["mode"] for r in modes] == ["paper", "dry-run"]


async def test_words_from_the_venue_are_shown_as_written_not_as_markup(tmp_path):
    """An alert or a result with "[...]" in it (a venue's error text) is shown verbatim: not styled, not lost,
    and an unbalanced "[/x]" does not crash the screen."""
    from engine.kernel.events import Severity

    app = make_app(tmp_path, strategy=False)
    async with app.run_test(size=(100, 30)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        engine.alert(Severity.CRIT, "VENUE_SAID", "venue said [bold]no[/bold] and [/oops]")
        crit = app.main_screen.query_one("#crit")
        await eventually(lambda: "venue said [bold]no[/bold] and [/oops]" in str(crit.render()))
        await pilot.press("l")
        await eventually(lambda: any("[/oops]" in r[6] for r in rows(app.screen).values()))
        assert app.is_running


async def test_the_go_no_go_checklist_runs_from_its_screen_and_its_summary_is_on_the_main_screen(tmp_path):
    from cockpit.screens import ChecklistScreen

    app = make_app(tmp_path, strategy=False, checks_at_start=True)  # as the program builds it
    async with app.run_test(size=(100, 40)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        # The checks that place no order run by themselves once the engine is connected.
        await eventually(lambda: engine.store.checklist_runs(limit=1), timeout=20, message="the run at start")
        assert [r["actor"] for r in engine.store.checklist_runs(limit=1)] == ["engine:start"]
        await pilot.press("g")
        await eventually(lambda: isinstance(app.screen, ChecklistScreen))
        await pilot.press("f5")
        await eventually(lambda: app.screen.__class__.__name__ == "Confirm")
        await pilot.press("y")
        await eventually(
            lambda: isinstance(app.screen, ChecklistScreen) and len(rows(app.screen)) >= 10,
            timeout=60,
            message="every check on the screen",
        )
        statuses = {r[0] for r in rows(app.screen).values()}
        assert statuses <= {"PASS", "WARN", "FAIL"}
        strip = app.main_screen.query_one("#monitors")
        await eventually(lambda: "go/no-go " in str(strip.render()) and " PASS · " in str(strip.render()))
        assert [r["actor"] for r in engine.store.checklist_runs(limit=1)] == ["operator:key"]
