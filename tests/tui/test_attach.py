"""Screens attached to a running engine, under Textual's Pilot: the real engine on its built-in simulator, in this
test's process, serving its API on the data directory's socket; the real app attached to it over that socket (or
over HTTP with a token), as `cockpit` attaches to `cockpit run --headless`. Nothing is mocked: the keys' commands
cross the socket (its path longer than a socket address holds, as on a deep home directory), the events come back on
the WebSocket.

What an operator relies on: the first frame is the engine's; h halts within a second; x asks and flattens; a halt
from one screen is on the others within a second and withdraws their questions; q detaches and the engine runs
on; when the engine cannot be reached the banner says so in red within two seconds and the kill keys say which
command works instead; when it is back, nothing that happened meanwhile is missing (journal numbers without a gap).
"""

from __future__ import annotations

import getpass
import os
import re
import time
from decimal import Decimal

import pytest
from eventually import eventually

from cockpit.app import CockpitApp
from cockpit.attached import AttachedLink, Target
from cockpit.screens import Confirm, QuitChoice
from engine.api import tokens
from engine.api.server import ApiServer
from engine.core.engine import Engine
from engine.kernel.commands import Halt, PlaceOrder
from engine.kernel.config import EngineConfig, RiskConfig, Settings, StrategyConfig
from engine.kernel.events import Severity, TradingState, TradingStateChanged
from engine.store.db import Store
from widgets.alerts import AlertList
from widgets.banner import StatusBanner
from widgets.keyed_table import KeyedTable

ME = f"operator:key {getpass.getuser()}"


def settings_for(data_dir) -> Settings:
    return Settings(
        engine=EngineConfig(data_dir=data_dir),
        strategy=StrategyConfig(enabled=False),
        risk=RiskConfig(max_position_pct=Decimal("20")),
    )


@pytest.fixture
def data_dir(tmp_path):
    """A data directory whose socket's path is longer than a socket address holds (107 bytes): both ends reach it
    through a descriptor of its directory, as they must on a deep home directory."""
    path = tmp_path / ("a-long-data-directory-" * 4)
    assert len(str(path / "cockpit.sock")) > 107
    return path


@pytest.fixture
async def engine(data_dir):
    """An engine on its built-in simulator, serving its socket, as `cockpit run --headless` runs one."""
    running = Engine(settings_for(data_dir))
    await running.start()
    await eventually(running.ready.is_set, timeout=20, message="the engine connected to its simulator")
    try:
        yield running
    finally:
        await running.stop()


def attached(data_dir, target: Target | None = None) -> CockpitApp:
    return CockpitApp(link=AttachedLink(target or Target.local(data_dir)), settings=settings_for(data_dir))


def banner(app) -> str:
    return app.main_screen.query_one(StatusBanner).render().plain


def said(app, text: str) -> bool:
    return any(text in message for _, message, _ in app.notices)


def halted_at(engine: Engine) -> list[float]:
    """When the engine's state moved to HALTED (monotonic), seen by a handler on its own bus."""
    times: list[float] = []
    engine.bus.add_handler(
        lambda e: (
            times.append(time.monotonic())
            if isinstance(e, TradingStateChanged) and e.state == TradingState.HALTED
            else None
        )
    )
    return times


async def rest_a_buy(engine: Engine) -> str:
    """A limit buy far under the price: it rests at the venue."""
    price = (engine.portfolio.last["BTC/USDT"] * Decimal("0.8")).quantize(Decimal("0.01"))
    result = await engine.execute(
        PlaceOrder(
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            amount=Decimal("0.001"),
            price=price,
            stop_loss=price * Decimal("0.9"),
        )
    )
    assert result.ok, result.message
    (order,) = engine.tracker.open_orders()
    return order.client_id


async def test_the_first_frame_is_the_engines_and_h_halts_it_within_a_second(engine, data_dir):
    client_id = await rest_a_buy(engine)
    engine.alert(Severity.WARN, "ATTACH_PROBE", "raised before the screen attached")
    app = attached(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        orders = app.main_screen.query_one("#orders", KeyedTable)
        alerts = app.main_screen.query_one(AlertList)
        await eventually(lambda: client_id in orders.keys, message="the engine's resting order in the first frame")
        await eventually(lambda: any(a.code == "ATTACH_PROBE" for a in alerts.alerts), message="its alert too")
        await eventually(lambda: "PAPER · ACTIVE" in banner(app), message="the banner from the engine")
        assert f"attached to pid {os.getpid()} · q detaches" in banner(app)  # the engine runs in this process
        times = halted_at(engine)
        drawn: list[float] = []
        app.watch(
            app.main_screen.query_one(StatusBanner), "state", lambda s: drawn.append(time.monotonic()), init=False
        )
        pressed = time.monotonic()
        await pilot.press("h")
        await eventually(lambda: times, timeout=1.0, message="HALTED, as the engine sees it, within 1 s")
        await eventually(lambda: "PAPER · HALTED by " in banner(app), timeout=1.0, message="and on the screen")
        engine_ms, screen_ms = 1000 * (times[0] - pressed), 1000 * (drawn[0] - pressed)
        print(f"h -> HALTED in the engine {engine_ms:.0f} ms, on screen {screen_ms:.0f} ms")
        assert f"HALTED by {ME} at " in banner(app)
    (record, *_) = [r for r in engine.store.audit(limit=10) if r["command"] == "halt"]
    assert record["actor"] == ME and record["reason"] == "h pressed in cockpit"  # named by the socket, not the client
    assert engine.api_server is not None  # the screen quit; the engine did not


async def test_x_asks_listing_what_it_sells_and_flattens_the_venue(engine, data_dir):
    last = engine.portfolio.last["BTC/USDT"]
    bought = await engine.execute(
        PlaceOrder(symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.01"), stop_loss=last / 2)
    )
    assert bought.ok, bought.message
    app = attached(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: app.link.up and app.view.positions(), message="the position in the first frame")
        await pilot.press("x")
        await eventually(lambda: isinstance(app.screen, Confirm), message="one question")
        assert app.screen.question.startswith("CLOSE ALL?") and "BTC 0.00999 (~" in app.screen.question
        assert engine.trading_state == TradingState.ACTIVE  # nothing before the answer
        await pilot.press("y")
        await eventually(lambda: sum(engine.sim.balance("BTC")) < Decimal("0.00001"), timeout=10, message="flat")
        assert engine.trading_state == TradingState.HALTED
        await eventually(lambda: not app.view.positions(), message="the screen's view flat too")
    (record, *_) = [r for r in engine.store.audit(limit=10) if r["command"] == "close-all"]
    assert record["actor"] == ME


async def test_a_halt_from_one_screen_is_on_the_other_within_a_second_and_withdraws_its_question(engine, data_dir):
    one, two = attached(data_dir), attached(data_dir)
    async with one.run_test(size=(100, 30)) as first, two.run_test(size=(100, 30)) as second:
        await eventually(lambda: "PAPER · ACTIVE" in banner(one) and "PAPER · ACTIVE" in banner(two))
        await second.press("d")  # reduce only? asked on the second screen
        await eventually(lambda: isinstance(two.screen, Confirm), message="the question on the second screen")
        pressed = time.monotonic()
        await first.press("h")
        await eventually(lambda: "HALTED" in banner(two), timeout=1.0, message="the halt on the other screen")
        print(f"h on one screen -> HALTED on the other in {1000 * (time.monotonic() - pressed):.0f} ms")
        await eventually(lambda: not isinstance(two.screen, Confirm), timeout=1.0, message="its question withdrawn")
        assert said(two, "Question withdrawn: trading is now HALTED")
        await second.press("y")  # a late yes lands on nothing
        await second.pause()
        assert engine.trading_state == TradingState.HALTED
        # An answer on one screen withdraws the same question on the other: both ask to resume, one says yes.
        await first.press("u")
        await second.press("u")
        await eventually(lambda: isinstance(one.screen, Confirm) and isinstance(two.screen, Confirm))
        await first.press("y")
        await eventually(lambda: engine.trading_state == TradingState.ACTIVE, message="resumed from the first")
        await eventually(lambda: not isinstance(two.screen, Confirm), timeout=1.0, message="withdrawn on the second")
    assert [r["command"] for r in engine.store.audit(limit=5)][:2] == ["resume", "halt"]


async def test_q_detaches_and_the_engine_runs_on(engine, data_dir):
    app = attached(data_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: "PAPER · ACTIVE" in banner(app))
        await rest_a_buy(engine)  # an open order: the owner would be asked; an attached screen is not
        await eventually(lambda: app.view.open_orders())
        await pilot.press("q")
        await eventually(lambda: not app.is_running, message="the screen gone")
    assert app.return_code == 0
    assert app.detached == f"cockpit: detached; the engine keeps running (pid {os.getpid()})"  # said on the way out
    assert engine.api_server is not None and engine.trading_state == TradingState.ACTIVE
    assert len(engine.tracker.open_orders()) == 1


async def test_an_unreachable_engine_is_said_in_red_and_nothing_is_missed_when_it_is_back(engine, data_dir):
    app = attached(data_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        await eventually(lambda: "PAPER · ACTIVE" in banner(app))
        link = app.link
        stopped = time.monotonic()
        await engine.api_server.stop()  # the engine trades on; its API is gone (a restart, a socket removed)
        await eventually(lambda: "ENGINE UNREACHABLE since " in banner(app), timeout=2.0, message="said within 2 s")
        print(f"unreachable on screen {1000 * (time.monotonic() - stopped):.0f} ms after the API stopped")
        assert re.search(r"ENGINE UNREACHABLE since \d\d:\d\d:\d\d", banner(app)), banner(app)
        await pilot.press("h")
        await eventually(lambda: said(app, "NOT SENT: cannot reach the engine"), message="h says it cannot")
        assert said(app, f"cockpit halt --data-dir {data_dir}") and said(app, "works with no engine running")
        await pilot.press("c")
        await eventually(lambda: said(app, f"cockpit cancel-all --data-dir {data_dir}"))
        assert engine.trading_state == TradingState.ACTIVE  # nothing was sent, nor queued for later
        # Meanwhile, the engine goes on: alerts, and a halt from another shell.
        before = engine.service.journal.seq
        for i in range(3):
            engine.alert(Severity.WARN, f"WHILE_AWAY_{i}", f"raised while the screen could not see {i}")
        assert (await engine.execute(Halt(actor="operator:cli bob", reason="from another shell"))).ok
        after = engine.service.journal.seq
        await engine.api_server.start()
        back = time.monotonic()
        await eventually(lambda: "ENGINE UNREACHABLE" not in banner(app), timeout=5, message="reached again")
        print(f"reached again {1000 * (time.monotonic() - back):.0f} ms after the API came back")
        await eventually(lambda: "HALTED by operator:cli bob" in banner(app), message="the halt made meanwhile")
        alerts = app.main_screen.query_one(AlertList)
        await eventually(lambda: {f"WHILE_AWAY_{i}" for i in range(3)} <= {a.code for a in alerts.alerts})
        seen = list(link.seqs)
        assert seen == list(range(seen[0], seen[-1] + 1)), f"a gap in the journal numbers: {seen}"
        assert set(range(before + 1, after + 1)) <= set(seen), "an event published while away is missing"
        print(f"caught up {after - before} journaled events published while away (numbers {before + 1}..{after})")
        assert link.gaps == 0 and link.resyncs == 0
        assert said(app, "again: what happened meanwhile is drawn from its journal")


async def test_a_viewers_token_reads_its_kill_keys_say_it_may_only_read_and_a_revoked_one_is_said(engine, data_dir):
    server = ApiServer(engine.service, local=False, remote=True, host="127.0.0.1", port=0)
    await server.start()
    store = Store.in_dir(data_dir)
    try:
        viewer = tokens.create(store, "phone", "viewer", by="test")
        operator = tokens.create(store, "desk", "operator", by="test")
    finally:
        store.close()
    try:
        app = attached(data_dir, Target.remote(server.url, viewer))
        async with app.run_test(size=(100, 30)) as pilot:
            await eventually(lambda: "PAPER · ACTIVE" in banner(app), message="the viewer sees the engine")
            await pilot.press("h")
            await eventually(lambda: said(app, "this token (api:phone) may only read"), message="h says why not")
            assert engine.trading_state == TradingState.ACTIVE
            assert app.active_bindings["h"].enabled is False  # dimmed in the footer too
        app = attached(data_dir, Target.remote(server.url, operator))
        async with app.run_test(size=(100, 30)) as pilot:
            await eventually(lambda: "PAPER · ACTIVE" in banner(app))
            await pilot.press("h")
            await eventually(lambda: engine.trading_state == TradingState.HALTED, timeout=1.0)
            await eventually(lambda: "HALTED by api:desk" in banner(app))
        store = Store.in_dir(data_dir)
        try:
            tokens.revoke(store, "phone")
        finally:
            store.close()
        app = attached(data_dir, Target.remote(server.url, viewer))
        async with app.run_test(size=(100, 30)):
            await eventually(lambda: "ENGINE UNREACHABLE" in banner(app), timeout=5, message="a revoked token")
            await eventually(lambda: said(app, "the engine refused this token (401): it is wrong or revoked"))
            # Said at the first refusal, not after retries (each would count as a failed attempt, and ten block).
            assert len(server.failures.failures["127.0.0.1"]) == 1
    finally:
        await server.stop()


async def test_the_owner_on_the_simulator_says_its_orders_end_with_it(data_dir):
    app = CockpitApp(Engine(settings_for(data_dir)))
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(app.engine.ready.is_set, timeout=20)
        await rest_a_buy(app.engine)
        await pilot.press("q")
        await eventually(lambda: isinstance(app.screen, QuitChoice))
        assert "built-in simulator" in app.screen.what and "they end with it" in app.screen.what
        assert "would stay at the venue" not in app.screen.what
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.main_screen)


async def test_the_other_screens_read_through_the_engines_api(engine, data_dir):
    """The logs, an order's history, the incidents (with the report written beside the engine's store), the
    reconciliation and the checklist, read over the socket (the attached screen opens no store)."""
    from cockpit.screens import (
        AlertLog,
        AuditLog,
        ChecklistScreen,
        Incidents,
        OrderHistory,
        Reconciliation,
        Strategies,
    )

    client_id = await rest_a_buy(engine)
    app = attached(data_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        orders = app.main_screen.query_one("#orders", KeyedTable)
        await eventually(lambda: client_id in orders.keys)
        orders.focus()
        await pilot.pause()
        await pilot.press("o")
        await eventually(lambda: isinstance(app.screen, OrderHistory))
        await eventually(lambda: "engine" in [r[3] for r in rows(app.screen).values()], message="its first event")
        await pilot.press("escape")
        await pilot.press("h")
        await eventually(lambda: "HALTED" in banner(app))
        for key, screen, found in (
            ("t", AuditLog, lambda r: r[1] == "halt" and r[2] == ME),
            ("l", AlertLog, lambda r: r[3] == "TRADING_HALTED"),
            ("i", Incidents, lambda r: r[3] == ME),
        ):
            await eventually(lambda: app.screen is app.main_screen)
            await pilot.press(key)
            await eventually(lambda screen=screen: isinstance(app.screen, screen))
            await eventually(lambda found=found: any(found(r) for r in rows(app.screen).values()), message=key)
            if screen is not Incidents:
                await pilot.press("escape")
        (incident,) = list(rows(app.screen))[:1]
        await pilot.press("enter")
        await eventually(lambda: (data_dir / f"incident_{incident}.md").exists(), message="the report written")
        assert "# Incident" in (data_dir / f"incident_{incident}.md").read_text()
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.main_screen)
        await pilot.press("v")
        await eventually(lambda: isinstance(app.screen, Reconciliation))
        summary = app.screen.query_one("#summary")
        await eventually(lambda: "difference(s) kept for the operator" in str(summary.render()))
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.main_screen)
        await pilot.press("g")
        await eventually(lambda: isinstance(app.screen, ChecklistScreen))
        await eventually(lambda: "could not read" not in str(app.screen.query_one("#summary").render()))
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.main_screen)
        await pilot.press("S")  # the strategies, read over the socket (this engine runs none)
        await eventually(lambda: isinstance(app.screen, Strategies))
        await eventually(lambda: "no strategy runs" in str(app.screen.query_one("#summary").render()))


def rows(screen) -> dict[str, tuple]:
    table = screen.query_one("#rows", KeyedTable)
    return {k: tuple(str(c) for c in table.row_cells(k)) for k in table.keys}
