"""Issue 25 §7, what a new user tripped on, on the screen: the real cockpit under Textual's Pilot at 80×24 (or the
size named), each test failing on the screen as it was before.

1. The too-small notice follows the live state, names h, c and x, wraps; a small launch shows the banner first.
2. The banner says CONNECTING, not ACTIVE, until the venue is connected.
3. At 80 columns a cut cell is whole under its table; Enter shows a checklist row whole; balances wrap.
4. What a key did is said on a notice line, not in a toast over the panels; an error stays.
5. The order form starts on the symbol; its placeholders read as hints.
6. A day's loss keeps its minus; no number in exponent notation.
7. Help says h, c and x work on every screen.
8. The go/no-go verdict is on the main screen as soon as a run arrives (or from the store), and g shows it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from eventually import eventually
from still import StillCockpit, monitors
from textual.widgets import Input
from textual.widgets._toast import Toast

import cockpit.app as cockpit_app
from cockpit.app import CockpitApp
from cockpit.screens import ChecklistScreen, Fills, Help, OrderForm, RowDetail, TooSmall
from engine.core.engine import Engine
from engine.gate.checklist import Check, Checklist, Status
from engine.kernel.commands import Halt
from engine.kernel.config import EngineConfig, Settings, StrategyConfig
from engine.kernel.events import (
    Balance,
    ChecklistCompleted,
    Fill,
    FillReceived,
    HealthUpdated,
    MonitorsChanged,
    Severity,
    TradingState,
    utcnow,
)
from widgets.banner import StatusBanner
from widgets.equity import EquityLine
from widgets.health import MonitorStrip
from widgets.notice import NoticeLine

LONG_DETAIL = (
    "only 0.0 h of paper / dry-run in the last 24 h; no order ended: fill rate unknown; the window needs 24 h of "
    "paper or dry-run without a CRIT alert before a live start is advised"
)
LONG_FIX = (
    "run paper or dry-run for 24 h without CRIT alerts, then check again (runbook 000 §1): `cockpit run --headless`"
)


def settings_for(tmp_path, strategy: bool = False) -> Settings:
    return Settings(engine=EngineConfig(data_dir=tmp_path), strategy=StrategyConfig(enabled=strategy, interval_s=0.2))


def make_app(tmp_path) -> CockpitApp:
    return CockpitApp(Engine(settings_for(tmp_path)))


def screen_text(app) -> str:
    """The whole terminal as the operator sees it (every layer: toasts and modals included), as plain text."""
    return "\n".join("".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips())


BORDERS = str.maketrans(dict.fromkeys("█▀▄▌▐▍│─╭╮╰╯", " "))


def flat(text: str) -> str:
    """Words only: a text wrapped over lines (in a frame or not) reads the same as on one line."""
    return " ".join(text.translate(BORDERS).split())


def squeezed(text: str) -> str:
    """Without any space: a path too long for a line is folded inside itself."""
    return "".join(text.translate(BORDERS).split())


def checklist(ts: str, warn: int = 3, passed: int = 14, fail: int = 0, actor: str = "engine:start") -> dict:
    """A go/no-go run as the engine publishes it: ``passed`` PASS, ``warn`` WARN (the last one long), ``fail``."""
    checks = [Check(f"pass_{i}", f"Check {i}", Status.PASS, f"fine {i}") for i in range(passed)]
    checks += [Check(f"warn_{i}", f"Warning {i}", Status.WARN, f"so-so {i}", fix=f"fix {i}") for i in range(warn - 1)]
    if warn:
        checks.append(
            Check(
                "stability",
                "Stability over the last 24 h of paper / dry-run",
                Status.WARN,
                LONG_DETAIL,
                {"covered_h": 0.0, "min_fill_rate_pct": "90", "fee": Decimal("1.1E-7")},
                LONG_FIX,
            )
        )
    checks += [Check(f"fail_{i}", f"Failure {i}", Status.FAIL, f"bad {i}", fix="mend it") for i in range(fail)]
    return Checklist(tuple(checks), "paper", "sim", ts, actor, 12.0).to_dict()


# ---------------------------------------------------------------- 1. the too-small notice


async def test_the_too_small_notice_follows_the_live_state_names_h_c_and_x_and_wraps(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        notice = await eventually(lambda: next((s for s in app.screen_stack if isinstance(s, TooSmall)), None))

        def says() -> str:
            return str(notice.message.content)

        await eventually(lambda: "ACTIVE" in says(), message="the live state in the notice")
        await pilot.press("h")
        await eventually(lambda: app.engine.trading_state == TradingState.HALTED)
        # Before: "trading is ACTIVE" until the next resize.
        await eventually(lambda: "HALTED" in says(), message="HALTED, without a resize")
        assert "PAPER · HALTED by operator:key" in says()  # the banner's own words
        await eventually(lambda: "Halt · HALTED" in says(), message="what the key did, said in the notice")
        await pilot.pause()
        text = flat(screen_text(app))
        # Every kill key that works here, and the whole notice on screen: wrapped to 60 columns, not cut.
        assert "h: halt · c: cancel all · x: close all (asks once)" in text, screen_text(app)
        assert "terminal too small: need 80×24, have 60×20" in text
        assert notice.message.size.width <= 60


@pytest.mark.slow  # two engines, one after the other, on a store: over the fast tier's bar
async def test_a_small_launch_on_a_halted_store_shows_the_banner_first(tmp_path):
    settings = settings_for(tmp_path)
    first = Engine(settings)
    await first.start()
    await first.execute(Halt(actor="operator:cli", reason="closing time"))
    await first.stop()
    app = CockpitApp(settings=settings)  # as `cockpit` opens it: the engine built after the first frame
    async with app.run_test(size=(40, 10)) as pilot:
        await eventually(lambda: app.started.is_set(), timeout=20)
        await eventually(lambda: app.engine.ready.is_set(), timeout=20)
        banner = app.main_screen.query_one(StatusBanner)
        await eventually(lambda: "HALTED by operator:cli" in banner.render().plain)
        await pilot.pause()
        # Before: the main screen had scrolled five lines down (to the focused table), the banner off screen.
        assert app.main_screen.scroll_y == 0
        assert banner.region.y == 0
        first_line = screen_text(app).splitlines()[0]
        assert "PAPER · HALTED" in first_line, screen_text(app)


# ---------------------------------------------------------------- 2. CONNECTING, never a guessed ACTIVE


async def test_the_banner_says_connecting_not_active_until_the_venue_is_connected(tmp_path):
    engine = Engine(settings_for(tmp_path))
    gate = asyncio.Event()
    connect = engine.sync.connect

    async def held_connect(*args, **kwargs):
        await gate.wait()
        return await connect(*args, **kwargs)

    engine.sync.connect = held_connect  # type: ignore[method-assign]
    app = CockpitApp(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.main_screen.query_one(StatusBanner)
        await eventually(lambda: app.started.is_set())
        await eventually(lambda: "CONNECTING" in banner.render().plain, message="CONNECTING while the venue is not")
        await pilot.pause()
        first, second = banner.render().plain.splitlines()
        assert first.startswith(" PAPER · CONNECTING (trading ACTIVE) · h: halt · c: cancel all · x: close all")
        assert "PAPER · ACTIVE" not in first  # before: "PAPER · ACTIVE" over "● DISCONNECTED" for a second or so
        assert second.startswith(" ● connecting")
        gate.set()
        await eventually(lambda: engine.ready.is_set(), timeout=20)
        await eventually(lambda: banner.render().plain.startswith(" PAPER · ACTIVE · h: halt"))
        assert " ● connected" in banner.render().plain


# ---------------------------------------------------------------- 3. nothing that matters cut at 80 columns


@pytest.mark.slow  # through four screens and a question-free snapshot: about 5 s
async def test_at_80_columns_the_selected_row_is_whole_under_its_table_and_enter_shows_a_check_whole(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        engine.bus.publish(ChecklistCompleted(checklist(utcnow().isoformat())))
        await pilot.press("g")
        screen = await eventually(lambda: isinstance(app.screen, ChecklistScreen) and app.screen)
        await eventually(lambda: "stability" in screen.query_one("#rows").keys)
        await pilot.press("ctrl+end")  # the long WARN, the last row
        await pilot.pause()
        text = flat(screen_text(app))
        assert flat(LONG_DETAIL) in text and flat(LONG_FIX) in text, screen_text(app)  # before: cut at 80
        await pilot.press("enter")
        detail = await eventually(lambda: isinstance(app.screen, RowDetail) and app.screen)
        await pilot.pause()
        text = flat(screen_text(app))
        for part in (LONG_DETAIL, LONG_FIX, "evidence covered_h: 0.0", "evidence fee: 0.00000011"):
            assert flat(part) in text, f"{part!r} not on screen:\n{screen_text(app)}"
        assert "E-7" not in detail.text
        await pilot.press("escape")
        await eventually(lambda: isinstance(app.screen, ChecklistScreen))
        await pilot.press("escape")

        long = "the venue answered a very long message that an operator needs whole: " + "word " * 20 + "END"
        engine.alert(Severity.WARN, "LONG_WORDS", long)
        await pilot.press("l")
        await eventually(lambda: app.screen.__class__.__name__ == "AlertLog")
        await pilot.pause()
        assert flat(long) in flat(screen_text(app)), screen_text(app)  # the newest alert, selected, whole
        await pilot.press("escape")

        await pilot.press("s")  # a snapshot: its result names the archive's path, long
        await eventually(lambda: [r for r in engine.store.audit(limit=5) if r["command"] == "snapshot"])
        (row,) = [r for r in engine.store.audit(limit=5) if r["command"] == "snapshot"][:1]
        await pilot.press("t")
        await eventually(lambda: app.screen.__class__.__name__ == "AuditLog")
        await pilot.pause()
        assert squeezed(row["result"]) in squeezed(screen_text(app)), screen_text(app)


async def test_help_at_80_columns_shows_the_selected_key_whole_and_says_h_c_and_x(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        await pilot.press("question_mark")
        help_screen = await eventually(lambda: isinstance(app.screen, Help) and app.screen)
        await pilot.pause()
        text = flat(screen_text(app))
        # 7. Before: "h and c work on every screen".
        assert "h, c and x (the kill switch) work on every screen" in text
        assert "h and c work" not in text
        await pilot.press("down", "down")  # close all: the longest description, cut at 80 columns before
        await pilot.pause()
        assert help_screen.query_one("#rows").selected_key == "close_all"
        assert flat(cockpit_app.DESCRIPTION["close_all"]) in flat(screen_text(app)), screen_text(app)


async def test_balances_keep_to_one_line_at_80_columns_with_no_asset_cut(tmp_path):
    """Before, the fourth asset was cut at 80 columns; then the line wrapped to two and moved the panels (decision
    TUI-17): now the other assets' amounts in orders (the orders panel's) and the label give way first."""
    app = StillCockpit(tmp_path)
    app.first.balances = [
        Balance("USDT", Decimal("9899.95"), Decimal("100.05")),
        Balance("BTC", Decimal("0.00104"), Decimal("0.0005")),
        Balance("ETH", Decimal("0.0286"), Decimal("0.0286")),
        Balance("SOL", Decimal("1.25"), Decimal("0")),
    ]
    async with app.run_test(size=(80, 24)):
        parts = ("USDT 10,000.00 (100.05 in orders)", "BTC 0.00154", "ETH 0.0572", "SOL 1.25")
        balances = app.main_screen.query_one("#balances")
        await eventually(
            lambda: all(part in flat(screen_text(app)) for part in parts) and balances.size.height == 1,
            message="the four balances on one line at 80 columns",
        )


# ---------------------------------------------------------------- 4. no toast over the panels


@pytest.mark.slow  # waits out a notice's time (twice) and opens a question on another screen: about 8 s
async def test_what_a_key_did_is_said_on_the_notice_line_not_in_a_toast_over_the_panels(tmp_path, monkeypatch):
    monkeypatch.setattr(cockpit_app, "NOTICE_S", {"information": 2.0, "warning": 2.0, "error": 15.0}, raising=False)
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        await pilot.press("u")  # not now: already ACTIVE
        await pilot.press("h")
        await eventually(lambda: app.engine.trading_state == TradingState.HALTED)
        banner = app.main_screen.query_one(StatusBanner)
        await eventually(lambda: "HALTED by operator:key" in banner.render().plain, message="the halt drawn")
        await pilot.pause()
        # Before: a toast for each, about 5 s, over the orders and alerts.
        assert not list(app._notifications), "a toast on the main screen"
        notice = app.main_screen.query_one(NoticeLine)
        assert ("Resume", "Not now: already ACTIVE", "warning") in app.notices
        await eventually(lambda: "Halt · HALTED" in notice.text, message="said on the notice line instead")
        await pilot.pause()
        assert not app.screen.query(Toast)
        orders, alerts = app.main_screen.query_one("#orders"), app.main_screen.query_one("#alerts")
        assert not notice.region.overlaps(orders.region) and not notice.region.overlaps(alerts.region)
        await eventually(lambda: not notice.shown, timeout=8, message="brief: gone after its time")
        # An error stays its time; what comes after it is said under it, not over it.
        app.notify("the venue answered 503", title="Order", severity="error")
        app.notify("Already HALTED.", title="Halt")
        await pilot.pause()
        assert notice.text.splitlines() == ["Order · the venue answered 503", "Halt · Already HALTED."]
        await eventually(lambda: notice.text == "Order · the venue answered 503", timeout=8)
        # On another screen it is a toast: brief, unless it is an error.
        await pilot.press("question_mark")
        await eventually(lambda: isinstance(app.screen, Help))
        await pilot.press("u")  # resume asks; this screen has no notice line
        await pilot.press("n")
        await pilot.pause()
        toasts = [n for n in app._notifications if n.severity != "error"]
        assert toasts and all(n.timeout <= cockpit_app.TOAST_MAX_S for n in toasts)


# ---------------------------------------------------------------- 5. the order form


async def test_the_order_form_starts_on_the_symbol_and_its_placeholders_read_as_hints(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        await pilot.press("n")
        form = await eventually(lambda: isinstance(app.screen, OrderForm) and app.screen)
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "symbol"  # before: the amount
        for field in ("amount", "price", "stop"):
            box = form.query_one(f"#{field}", Input)
            assert box.placeholder.startswith("e.g. "), box.placeholder
            style = box.get_component_rich_style("input--placeholder")
            assert style.italic, f"{field}: its hint is not told from a value"  # dimmed and in italics
        await pilot.press("escape")


# ---------------------------------------------------------------- 6. signs and units


async def test_a_days_loss_keeps_its_minus(tmp_path):
    health = HealthUpdated(
        market_data_age_s=0.4,
        rest_p95_ms=4.0,
        rest_errors_today=0,
        ws_reconnects_today=0,
        breaker="CLOSED",
        polling=False,
        streams_down=(),
        day_pnl=Decimal("-2.91"),
        drawdown_pct=Decimal("0.41"),
    )
    readings = MonitorsChanged(monitors(daily_loss=("OK", "0.03%", "2.40% / 3%")))
    app = StillCockpit(tmp_path, events=[health, readings])
    async with app.run_test(size=(80, 24)) as pilot:
        line = app.main_screen.query_one(EquityLine)
        await eventually(lambda: "day -2.91" in str(line.query_one("#equity-figures").content))
        await pilot.pause()
        assert "day -2.91 (-0.03%/-3%)" in screen_text(app), screen_text(app)  # before: "(0.03%/3%)"


async def test_a_fee_is_written_out_never_in_exponent_notation(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        fill = Fill(
            "t-tiny",
            "ck-tiny",
            "BTC/USDT",
            "buy",
            Decimal("65000.5"),
            Decimal("0.0001"),
            Decimal("1.1E-7"),
            "BTC",
            utcnow(),
        )
        engine.store.handle(FillReceived(fill))  # as the store keeps it: the text "1.1E-7"
        await pilot.press("f")
        screen = await eventually(lambda: isinstance(app.screen, Fills) and app.screen)
        await eventually(lambda: "t-tiny" in screen.query_one("#rows").keys)
        cells = [str(c) for c in screen.query_one("#rows").row_cells("t-tiny")]
        assert cells[5] == "0.00000011 BTC", cells  # before: "1.1E-7 BTC"
        assert cells[3:5] == ["0.0001", "65,000.5"], cells
        await pilot.pause()
        assert "E-7" not in screen_text(app)


# ---------------------------------------------------------------- 8. the go/no-go verdict on the main screen


@pytest.mark.slow  # two engines, one after the other, on a store: over the fast tier's bar
async def test_a_stored_go_no_go_run_is_on_the_main_screen_from_the_first_frame(tmp_path):
    settings = settings_for(tmp_path)
    first = Engine(settings)
    await first.start()
    first.bus.publish(ChecklistCompleted(checklist(utcnow().isoformat())))  # the store keeps it
    await first.stop()
    app = CockpitApp(Engine(settings))
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        strip = app.main_screen.query_one(MonitorStrip)
        # Before: "go/no-go GO · 0 PASS · 0 WARN · 0 FAIL" (the store's row has no "summary").
        await eventually(lambda: "go/no-go GO · 14 PASS · 3 WARN (g)" in strip.render().plain, message=strip.checklist)
        await pilot.pause()
        assert "go/no-go GO · 14 PASS · 3 WARN (g)" in screen_text(app)


async def test_a_go_no_go_run_is_on_the_main_screen_as_it_arrives_and_g_shows_the_latest(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        engine = app.engine
        await eventually(engine.ready.is_set, timeout=20)
        strip = app.main_screen.query_one(MonitorStrip)
        engine.bus.publish(ChecklistCompleted(checklist(utcnow().isoformat())))  # the engine's run at its start
        await eventually(lambda: "go/no-go GO · 14 PASS · 3 WARN" in strip.render().plain)
        await pilot.press("g")
        screen = await eventually(lambda: isinstance(app.screen, ChecklistScreen) and app.screen)
        summary = screen.query_one("#summary")
        await eventually(lambda: "GO · 14 PASS · 3 WARN · 0 FAIL" in str(summary.content))
        assert "not run yet" not in str(summary.content)
        # A run after a reconnect comes in while `g` is open: shown at once (before: the screen kept the old one).
        engine.bus.publish(ChecklistCompleted(checklist(utcnow().isoformat(), warn=1, passed=15, fail=1)))
        await eventually(
            lambda: "NO-GO · 15 PASS · 1 WARN · 1 FAIL" in str(summary.content), timeout=20, message="the new run"
        )
        await eventually(lambda: "fail_0" in screen.query_one("#rows").keys)
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.main_screen)
        assert "go/no-go NO-GO · 15 PASS · 1 WARN · 1 FAIL (g)" in strip.render().plain
