"""The cockpit: one full-screen main screen over an embedded engine; keys send commands, events redraw."""

from __future__ import annotations

import logging

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer

from cockpit.bridge import EngineEvent, pump
from cockpit.screens import Confirm
from cockpit.views import alert_row, balance_row, market_row, num, order_row
from engine.core import Engine, EngineError
from engine.datadir import DataDirBusy
from engine.events import (
    AlertRaised,
    BalancesUpdated,
    CancelAll,
    EngineStarted,
    Halt,
    OrderCreated,
    OrderUpdated,
    PositionsUpdated,
    Resume,
    TickerUpdated,
    TradingStateChanged,
    VenueConnection,
)
from widgets.alerts import AlertList
from widgets.banner import StatusBanner
from widgets.keyed_table import KeyedTable

log = logging.getLogger(__name__)


class CockpitApp(App):
    """Shows the engine's state live; h halts, c cancels every order, u resumes, q quits."""

    TITLE = "cockpit"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("h", "halt", "Halt", id="halt", priority=True),
        Binding("c", "cancel_all", "Cancel all", id="cancel_all", priority=True),
        Binding("u", "resume", "Resume", id="resume"),
        Binding("q", "quit_cockpit", "Quit", id="quit"),
    ]

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.start_error: str | None = None

    def compose(self) -> ComposeResult:
        yield StatusBanner(id="banner")
        with Horizontal(id="top"):
            balances = KeyedTable(("asset", "free", "locked", "total"), id="balances", classes="panel")
            balances.border_title = "Balances"
            yield balances
            positions = KeyedTable(("symbol", "last", "position", "entry", "value", "uPnL"), id="positions",
                                   classes="panel")
            positions.border_title = "Markets · positions"
            yield positions
        orders = KeyedTable(("symbol", "side", "price", "amount", "filled", "status", "by", "client id"),
                            id="orders", classes="panel")
        orders.border_title = "Open orders"
        yield orders
        alerts = AlertList(id="alerts", classes="panel")
        alerts.border_title = "Alerts"
        yield alerts
        yield Footer()

    # ------------------------------------------------------------ lifecycle

    async def on_mount(self) -> None:
        banner = self.query_one(StatusBanner)
        banner.mode = self.engine.mode
        try:
            await self.engine.start()
        except (EngineError, DataDirBusy, OSError, RuntimeError) as exc:
            self.start_error = str(exc)
            self.exit(return_code=2, message=f"cockpit: {exc}")
            return
        subscription = self.engine.bus.subscribe()
        self._draw_snapshot()
        self.run_worker(pump(subscription, self.post_message), name="engine-bridge", exclusive=False)

    async def on_unmount(self) -> None:
        await self.engine.stop()

    def _draw_snapshot(self) -> None:
        snap = self.engine.snapshot()
        banner = self.query_one(StatusBanner)
        banner.state = snap["state"].value
        banner.venue = snap["venue"]
        self.query_one("#balances", KeyedTable).sync({b.asset: balance_row(b, self.engine.portfolio.quote) for b in snap["balances"]})
        self._draw_markets()
        self.query_one("#orders", KeyedTable).sync({o.client_id: order_row(o) for o in snap["orders"]})
        alerts = self.query_one(AlertList)
        for a in snap["alerts"]:
            alerts.add_alert(alert_row(a))
        info = snap["state_info"]
        if snap["state"].value == "HALTED" and info:
            self.notify(f"Restored HALTED (by {info.get('actor')}: {info.get('reason')}). u: resume",
                        severity="warning", timeout=10)

    def _draw_markets(self) -> None:
        portfolio = self.engine.portfolio
        held = {p.symbol: p for p in portfolio.positions()}
        self.query_one("#positions", KeyedTable).sync(
            {s: market_row(s, portfolio.last.get(s), held.get(s)) for s in self.engine.symbols}
        )

    # ------------------------------------------------------------ events from the engine

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        banner = self.query_one(StatusBanner)
        if isinstance(event, TradingStateChanged):
            banner.state = event.state.value
        elif isinstance(event, (OrderCreated, OrderUpdated)):
            table = self.query_one("#orders", KeyedTable)
            order = event.order
            if order.status.is_open:
                table.upsert(order.client_id, order_row(order))
            else:
                table.discard(order.client_id)
        elif isinstance(event, BalancesUpdated):
            self.query_one("#balances", KeyedTable).sync(
                {b.asset: balance_row(b, self.engine.portfolio.quote) for b in event.balances
                 if b.total > 0 or b.asset == self.engine.portfolio.quote}
            )
            equity = self.engine.portfolio.equity()
            banner.equity = f"{num(equity)} {self.engine.portfolio.quote}" if equity is not None else ""
        elif isinstance(event, (PositionsUpdated, TickerUpdated)):
            self._draw_markets()
            equity = self.engine.portfolio.equity()
            if equity is not None:
                banner.equity = f"{num(equity)} {self.engine.portfolio.quote}"
        elif isinstance(event, AlertRaised):
            self.query_one(AlertList).add_alert(alert_row(event.alert))
        elif isinstance(event, VenueConnection):
            banner.connected = event.connected
            banner.detail = event.detail
        elif isinstance(event, EngineStarted):
            banner.venue = event.venue
            banner.connected = True

    # ------------------------------------------------------------ operator actions

    async def action_halt(self) -> None:
        """Halt at once: no question asked (DESIGN.md: halt is one key)."""
        result = await self.engine.execute(Halt(actor="operator", reason="h pressed in cockpit"))
        self.notify(result.message, title="Halt", severity="warning" if result.ok else "error")

    def action_cancel_all(self) -> None:
        """Halt and cancel every open order at the venue; no question asked."""
        self.notify("Halting and cancelling every open order…", title="Cancel all", severity="warning")
        self._cancel_all()

    @work(group="commands", exclusive=False)
    async def _cancel_all(self) -> None:
        result = await self.engine.execute(CancelAll(actor="operator", reason="c pressed in cockpit"))
        self.notify(result.message, title="Cancel all", severity="information" if result.ok else "error",
                    timeout=10)

    @work(group="commands")
    async def action_resume(self) -> None:
        """Resume trading after one confirmation."""
        if self.engine.trading_state.value == "ACTIVE":
            self.notify("Already ACTIVE.", title="Resume")
            return
        if not await self.push_screen_wait(Confirm("Resume trading? New orders will be allowed again.")):
            self.notify("Still HALTED.", title="Resume")
            return
        result = await self.engine.execute(Resume(actor="operator", reason="u pressed in cockpit"))
        self.notify(result.message, title="Resume", severity="information" if result.ok else "error")

    @work(group="commands")
    async def action_quit_cockpit(self) -> None:
        """Quit; asks first when orders are still resting at the venue."""
        open_orders = len(self.engine.tracker.open_orders())
        if open_orders and not await self.push_screen_wait(
            Confirm(f"Quit? {open_orders} open order(s) stay at the venue, unwatched. (c first cancels them)")
        ):
            return
        self.exit()
