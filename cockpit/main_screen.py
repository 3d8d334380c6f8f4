"""The main screen: what an operator needs in one glance, drawn from the engine's events alone.

Banner (state in words, who set it, the keys that matter now; CONNECTING until the venue is), the newest
unacknowledged CRIT, the health line and every monitor that is not OK with the go/no-go verdict, equity against its
limits with its curve, balances, positions with their stops, open orders with age, fill and a stuck marker, recent
fills, alerts; above the footer, for a few seconds, what a key just did (a notice line, never a toast over them).
The screen keeps a small model fed by events and redraws only what a batch of events changed, cell by cell: a
storm of tickers and order updates costs work per changed cell, never a table rebuilt per event.

What events carry from outside (actors, reasons, venue names and errors, alert texts, symbols, monitor readings)
reaches a widget made inert (cockpit/views.py): shown as visible escapes, never sent to the terminal.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static

from cockpit.bridge import EngineEvents, EnginesChanged, LinkChanged
from cockpit.views import (
    alert_row,
    balances_line,
    checklist_lines,
    checklist_record,
    fill_row,
    market_row,
    num,
    order_row,
    reading,
)
from engine.kernel.clock import now as utcnow
from engine.kernel.text import inert
from widgets.banner import CritBanner, StatusBanner
from widgets.engines import EngineStrip
from widgets.equity import EquityLine
from widgets.footer import KeyFooter
from widgets.health import HealthLine, MonitorStrip
from widgets.notice import NoticeLine

if TYPE_CHECKING:
    # The engine's records, for their names only: this module loads before the first frame, they after it (decision
    # BEN-10); where an event's class is needed at run time (``apply``), it is imported there.
    from engine.kernel.events import Alert, Balance, Event, Fill, Order, Position, TradingState

    # The panels' tables (Textual's DataTable): loaded with them, right after the first frame (decision BEN-14).
    from widgets.keyed_table import KeyedTable

RANK = {"INFO": 0, "WARN": 1, "CRIT": 2}
FILLS_SHOWN = 50
WIDE = 120  # columns from which the recent fills sit beside the alerts
MARKETS_MAX_LINES = 8  # the markets panel at its tallest (its border and header included)
FIXED_LINES = 7  # the banner (2), the health, monitor, equity and balances lines, and the footer
LATENCY_SAMPLES = 4096


def set_by(code: str, actor: str, ts: str) -> str:
    """``ws_stale at 14:25:30`` for a monitor, ``operator:key at 14:25:30`` for a person (times in UTC)."""
    when = ts[11:19] if len(ts) >= 19 else ""
    return inert(f"{code or actor}{' at ' + when if when else ''}", limit=200)


@dataclass(frozen=True)
class ScreenConfig:
    """What the screen needs to know besides events: set once, from the engine's settings."""

    mode: str
    quote: str
    symbols: tuple[str, ...]
    stuck_after_s: float = 300.0
    min_severity: str = "INFO"
    now: Callable[[], datetime] = utcnow


@dataclass
class Snapshot(Message):
    """The engine's state when the cockpit attached to it: the first frame."""

    state: TradingState
    state_info: Mapping[str, Any]
    venue: str
    connected: bool | None
    orders: list[Order]
    balances: list[Balance]
    positions: list[Position]
    alerts: list[Alert]
    fills: list[Fill] = field(default_factory=list)
    equity_curve: list[Decimal] = field(default_factory=list)
    stops: Mapping[str, Decimal] = field(default_factory=dict)
    stops_suspended: str = ""  # why the protective orders at the venue are suspended (empty: they are kept)
    monitors: list[Mapping[str, Any]] = field(default_factory=list)
    last: Mapping[str, Decimal] = field(default_factory=dict)
    equity: Decimal | None = None
    checklist: Mapping[str, Any] | None = None  # the latest go/no-go checklist run, as stored
    mode: str | None = None  # the engine's mode now (dry-run after ``m``), when it may differ from the screen's
    config: ScreenConfig | None = None  # the engine's own settings (an attached screen's), for the screen to take
    fresh: bool = False  # another engine's frame (a cockpit watching several): the screen starts from nothing


PANEL_TITLES = {
    "positions": "Markets · positions",
    "orders": "Open orders",
    "alerts": "Alerts (a: ack · l: log)",
    "fills": "Recent fills (f)",
}


class PanelFrame(Static):
    """A panel's frame (its border and title, where its table will be) in the first frame; its table replaces it
    right after (``MainScreen.mount_panels``)."""

    DEFAULT_CSS = "PanelFrame { height: 1fr; }"  # as its table's (``KeyedTable``): the same place on the screen


class MainScreen(Screen):
    """Everything the operator needs at a glance; the keys live on the app.

    With ``panels_after_frame`` (what ``cockpit`` does: the app starts its engine after the first frame) the first
    frame holds the banner, the health and equity lines, the footer's keys and each panel's frame with its title;
    the panels' tables, which cost more to style and draw than the rest of the screen together, take their frames'
    places right after it and before the engine starts, with the lines the first frame hides anyway (the CRIT line,
    the engines' list, the markets' filter) (decision BEN-10)."""

    BINDINGS = [Binding("escape", "close_filter", show=False)]

    def __init__(self, config: ScreenConfig, *, panels_after_frame: bool = False, attached: bool = False) -> None:
        super().__init__(id="main")
        self.config = config
        self._attached = attached  # a screen of a running engine's: until its first frame it is being reached
        self._panels_after_frame = panels_after_frame
        self._tables_pending = panels_after_frame  # the first frame's panels are frames until ``mount_panels``
        self._later_lines: list[tuple[Callable[[], Widget], str]] = []  # hidden lines mounted with the tables
        self.state = "ACTIVE"
        self.positions: dict[str, Position] = {}
        self.last: dict[str, Decimal] = {}
        self._balances_shown: object = None  # the balances line last drawn
        self._balances_from: object = None  # ... from these balances and positions' sizes
        self.first_seen: dict[str, Decimal] = {}  # each market's first price on this screen: how far it moved since
        self.market_filter = ""  # `/`: only the markets whose name holds it
        self.stops: dict[str, Decimal] = {}
        self.stops_suspended = ""  # why the venue's protective orders are suspended until a resume
        self.orders: dict[str, Order] = {}
        self.balances: list[Balance] = []
        self.readings: dict[str, Mapping[str, Any]] = {}
        self.crit_waiting: dict[int, Alert] = {}  # unacknowledged CRIT alerts, by id
        self.checklist: dict[str, Any] | None = None  # the latest go/no-go run this screen saw (checklist_record)
        # Event-to-widget latency: from the bridge taking a batch to the batch drawn (seconds), for the bench.
        self.draw_lag: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def compose(self) -> ComposeResult:
        banner = StatusBanner(id="banner")
        banner.set_reactive(StatusBanner.mode, inert(self.config.mode))
        banner.set_reactive(StatusBanner.reaching, self._attached)
        yield banner
        yield from self._later_line(lambda: EngineStrip(id="engines"), before="health")  # hidden until then (CSS)
        yield from self._later_line(lambda: CritBanner(id="crit"), before="health")
        yield HealthLine(id="health")
        yield MonitorStrip(id="monitors")
        yield EquityLine(inert(self.config.quote), id="equity")
        yield Static(id="balances")
        # Disabled until `/` opens it: a hidden field must never take the keys (h c x type letters into it).
        yield from self._later_line(
            lambda: Input(
                placeholder="filter markets by name · Enter keeps it · Esc clears (then h c x)",
                id="market-filter",
                disabled=True,
            ),
            before="positions",
        )
        yield self._panel("positions")
        yield self._panel("orders")
        with Horizontal(id="bottom"):
            yield self._panel("alerts")
            yield self._panel("fills")
        yield NoticeLine(id="notice")
        yield KeyFooter()

    def _later_line(self, make: Callable[[], Widget], before: str) -> ComposeResult:
        """A line hidden in the first frame (the CRIT line, the engines' list, the markets' filter): composed with
        the screen, or built and mounted with the panels' tables when those come after the first frame."""
        if self._panels_after_frame:
            self._later_lines.append((make, before))
        else:
            yield make()

    def _panel(self, panel_id: str) -> KeyedTable | PanelFrame:
        """The panel's table, or its frame for the first frame (the same id, classes and title: the same place on
        the screen); the table is built and mounted there right after the frame (``mount_panels``)."""
        title = PANEL_TITLES[panel_id]
        if not self._panels_after_frame:
            return self._table(panel_id)
        frame = PanelFrame(id=panel_id, classes="panel")
        frame.border_title = title
        return frame

    @staticmethod
    def _table(panel_id: str) -> KeyedTable:
        """A panel's table (Textual's DataTable, imported here: after the first frame when it is drawn first)."""
        from widgets.alerts import AlertList
        from widgets.keyed_table import KeyedTable

        if panel_id == "positions":
            table: KeyedTable = KeyedTable(
                ("symbol", "mark", "size", "entry", "value", "uPnL", "stop", "to stop", "stop at"),
                id="positions",
                classes="panel",
            )
        elif panel_id == "orders":
            table = KeyedTable(
                ("symbol", "side", "price", "amount", "fill", "age", "status", "by"),
                id="orders",
                classes="panel",
                count_as="orders",
            )
        elif panel_id == "alerts":
            table = AlertList(id="alerts", classes="panel")
        else:
            table = KeyedTable(
                ("time", "symbol", "side", "amount", "price"), id="fills", classes="panel", sort_by=("time", str, True)
            )
        table.border_title = PANEL_TITLES[panel_id]
        return table

    async def mount_panels(self) -> None:
        """The panels' tables in their frames' places (the first frame drew the frames); the first of them takes
        the focus, as it does when the screen is composed with them."""
        for frame in list(self.query(PanelFrame).results(PanelFrame)):
            table = self._table(str(frame.id))
            if frame.id == "positions":  # as tall as its frame (``_fit_markets``) before its rows come
                table.styles.min_height, table.styles.max_height = frame.styles.min_height, frame.styles.max_height
            parent = frame.parent
            assert isinstance(parent, Widget)
            index = list(parent.children).index(frame)
            await frame.remove()
            if index < len(parent.children):
                await parent.mount(table, before=index)
            else:
                await parent.mount(table)
        for make, before in self._later_lines:
            await self.mount(make(), before=f"#{before}")
        self._later_lines.clear()
        self._tables_pending = False
        self._fit_markets()
        if self.focused is None:
            self.focus_next()

    def on_mount(self) -> None:
        self.set_interval(1.0, self._tick)
        # The terminal's width is known already: the first frame is drawn narrow or wide (``on_resize`` comes after
        # it, and the recent fills' frame showed for a moment at 80 columns).
        self.set_class(self.app.size.width < WIDE, "-narrow")
        self._fit_markets()  # ... and its height: the markets panel's frame as tall as its table will be

    def on_resize(self, event) -> None:
        """Under ``WIDE`` columns the recent fills give their width to the alerts' messages (f shows them). The
        screen never scrolls (app.tcss): on a terminal too small it keeps the banner on its first line."""
        self.set_class(event.size.width < WIDE, "-narrow")
        self._fit_markets()
        self.scroll_home(animate=False)
        self.call_after_refresh(self._summarize_markets)

    # ------------------------------------------------------------ drawing from the model

    def _draw_markets(self) -> None:
        from widgets.keyed_table import KeyedTable

        at_venue = {o.symbol for o in self.orders.values() if o.is_protective_stop}
        oco = {o.symbol for o in self.orders.values() if o.is_take_profit_leg}
        suspended = bool(self.stops_suspended)
        table = self.query_one("#positions", KeyedTable)
        table.sync(
            {
                s: market_row(
                    s, self.last.get(s), self.positions.get(s), self.stops.get(s), s in at_venue, s in oco, suspended
                )
                for s in self._markets()
            }
        )
        # Said where the stops are shown, with the key that ends it (a resume places them again).
        table.border_title = "Markets · positions" + (
            " · stops at the venue SUSPENDED · u: resume" if suspended else ""
        )
        self.call_after_refresh(self._summarize_markets)  # how many rows are in sight is known after the layout

    def _draw_prices(self, symbols: set[str]) -> None:
        """Only the rows of the markets whose price moved (a batch of tickers and nothing else): redrawing and
        sorting every market's row for each batch made the screen's work grow with markets x batches (event ->
        screen p99 over 100 ms at 50 markets). The order follows once a second (``_tick``)."""
        from widgets.keyed_table import KeyedTable

        table = self.query_one("#positions", KeyedTable)
        listed = set(table.keys)
        wanted = self.market_filter
        if any(not wanted or wanted in s.upper().replace("/", "") for s in symbols - listed):
            self._draw_markets()  # a market's first price: its row comes with the whole panel's
            return
        at_venue = {o.symbol for o in self.orders.values() if o.is_protective_stop and o.symbol in symbols}
        for s in symbols & listed:
            table.upsert(s, market_row(s, self.last.get(s), self.positions.get(s), self.stops.get(s), s in at_venue))

    def _markets(self) -> list[str]:
        """What the markets panel lists, in its order: the positions first (the largest first), then the markets
        with open orders, then the rest by how far each moved since this screen first saw it; with a filter (`/`),
        only the names that hold it."""
        held = {s: p for s, p in self.positions.items() if p.amount}
        symbols = list(dict.fromkeys([*self.config.symbols, *held]))
        if self.market_filter:
            symbols = [s for s in symbols if self.market_filter in s.upper().replace("/", "")]
        ordering = {o.symbol for o in self.orders.values()}

        def moved(symbol: str) -> Decimal:
            first, last = self.first_seen.get(symbol), self.last.get(symbol)
            return abs(last / first - 1) if first and last else Decimal(0)

        def rank(symbol: str) -> tuple[int, Decimal]:
            if symbol in held:
                return 0, -abs(held[symbol].value or 0)
            return (1, Decimal(0)) if symbol in ordering else (2, -moved(symbol))

        return sorted(symbols, key=rank)

    def _summarize_markets(self) -> None:
        """``50 markets · 12 positions · 37 orders`` under the panel, with a sign when rows are out of sight (or a
        filter hides some); nothing when every market is in view."""
        if self._tables_pending:
            return  # the first frame's panel is its frame: the table, with its rows, comes right after it
        from widgets.keyed_table import KeyedTable

        tables = list(self.query("#positions").results(KeyedTable))
        if not tables:
            return  # called after a refresh that found the screen taken down
        table = tables[0]
        listed = len(self.config.symbols)
        held = sum(1 for p in self.positions.values() if p.amount)
        # The panel grows with its rows up to its max-height (_fit_markets): its border and header take three lines.
        tallest = table.styles.max_height
        room = int(tallest.value) - 3 if tallest is not None else MARKETS_MAX_LINES - 3
        shown = table.row_count
        if not self.market_filter and shown <= room:
            table.border_subtitle = ""
            return
        parts = [f"{listed} markets · {held} positions · {len(self.orders)} orders"]
        if self.market_filter:
            parts.append(f"filter {inert(self.market_filter, limit=20)}: {shown} shown")
        if shown > room:
            parts.append(f"↓ {shown - room} more")
        table.border_subtitle = " · ".join(parts)

    def _fit_markets(self) -> None:
        """The markets panel takes at most what the lines above it and the footer leave after the orders' and the
        alerts' own least (with many markets it would otherwise push the alerts off an 80x24 screen): it scrolls,
        and says what is out of sight, instead. From the screen's height alone, so a size gives one layout. From
        the first frame it is as tall as the markets it will list make it (its frame, then its table before their
        rows come): the panels under it stay where they are when the engine's data arrives."""
        fleet = self.has_class("-fleet")
        least = 2 * (4 if fleet else 5)  # the orders' and the alerts' min-height (app.tcss)
        room = self.app.size.height - FIXED_LINES - (1 if fleet else 0) - least
        tallest = max(4, min(MARKETS_MAX_LINES, room))
        markets = len(self.config.symbols) + 3  # its border and header take three lines
        for panel in self.query("#positions"):  # the table, or its frame; none while the screen is taken down
            panel.styles.max_height = tallest
            panel.styles.min_height = max(4, min(tallest, markets))

    def _reorder_markets(self) -> None:
        """The markets panel in its order again (once a second: movements change the order of the rest)."""
        from widgets.keyed_table import KeyedTable

        table = self.query_one("#positions", KeyedTable)
        table.order(self._markets())
        self.call_after_refresh(self._summarize_markets)

    def _draw_order(self, order: Order) -> None:
        from widgets.keyed_table import KeyedTable

        table = self.query_one("#orders", KeyedTable)
        if order.status.is_open:
            self.orders[order.client_id] = order
            table.upsert(order.client_id, order_row(order, self.config.now(), self.config.stuck_after_s))
        else:
            self.orders.pop(order.client_id, None)
            table.discard(order.client_id)
        if order.is_protective:
            self._draw_markets()  # where the position's stop rests ("stop at")

    def _tick(self) -> None:
        """Once a second: the ages of open orders move on (only their age and status cells change); the markets
        panel takes its order again."""
        from widgets.keyed_table import KeyedTable

        if self._tables_pending:
            return  # the first frame's panels are still frames (a start on a loaded machine)
        self._reorder_markets()
        table = self.query_one("#orders", KeyedTable)
        now = self.config.now()
        for client_id, order in self.orders.items():
            table.upsert(client_id, order_row(order, now, self.config.stuck_after_s))

    def _draw_balances(self) -> None:
        """One line at any width (its form fitted when drawn, decision TUI-17): the panels under it never move.
        With the positions' sizes, which tell it what the markets panel shows, and the prices of the moment, what is
        worth least when something has to give; drawn again when the balances or a position's size change (not
        with every price or every position's new value)."""
        sizes = {s: p.amount for s, p in self.positions.items()}
        if (self.balances, sizes) == self._balances_from:
            return
        self._balances_from = (list(self.balances), sizes)
        line = balances_line(self.balances, self.config.quote, self.positions, self.last)
        shown = tuple(line.forms)
        if shown != self._balances_shown:  # Static.update lays the whole screen out again (63 ms at 50 markets)
            self._balances_shown = shown
            self.query_one("#balances", Static).update(line)

    def _draw_readings(self) -> None:
        self.query_one(HealthLine).readings = self.readings
        self.query_one(MonitorStrip).readings = self.readings
        equity = self.query_one(EquityLine)
        equity.daily_loss = self.readings.get("daily_loss")
        equity.drawdown = self.readings.get("max_drawdown")
        equity.draw()

    def _draw_equity(self, value: Decimal | None) -> None:
        if value is None:
            return
        line = self.query_one(EquityLine)
        line.equity = num(value)
        line.draw()

    def _draw_checklist(self, checklist: Mapping[str, Any]) -> None:
        """``go/no-go GO · 14 PASS · 3 WARN (g)``: red with a FAIL, yellow with a WARN. From the engine's event or
        the store's row (the first frame), whichever is newer than what is shown."""
        record = checklist_record(checklist)
        if self.checklist is not None and (record.get("ts") or "") < (self.checklist.get("ts") or ""):
            return  # an older run than the one shown
        self.checklist = record
        strip = self.query_one(MonitorStrip)
        strip.checklist, strip.checklist_short, strip.checklist_level = checklist_lines(record)
        from cockpit.screens import ChecklistScreen  # loaded when a screen is first opened, or here

        for screen in self.app.screen_stack:
            if isinstance(screen, ChecklistScreen):
                screen.action_reload()  # `g` open while a run came in: it shows that run

    def _draw_crit(self) -> None:
        banner = self.query_one(CritBanner)
        if not self.crit_waiting:
            banner.clear()
            return
        newest = self.crit_waiting[max(self.crit_waiting)]
        banner.show_alert(
            newest.id, newest.ts.strftime("%H:%M:%S"), inert(newest.code), inert(newest.message), len(self.crit_waiting)
        )

    def _show_alert(self, alert: Alert, new: bool) -> None:
        from engine.kernel.events import Severity
        from widgets.alerts import AlertList

        if alert.severity == Severity.CRIT:
            if alert.acked:
                self.crit_waiting.pop(alert.id, None)
            else:
                self.crit_waiting[alert.id] = alert
            self._draw_crit()
        if RANK[alert.severity.value] >= RANK[self.config.min_severity] or alert.id in self.crit_waiting:
            self.query_one(AlertList).add_alert(alert_row(alert))
        if new and alert.severity == Severity.CRIT and not alert.acked:
            self.app.bell()
            if self.app.notice_target() is not self:  # here the CRIT line under the banner says it; elsewhere a toast
                self.app.notify(f"{alert.code}: {alert.message}", title="CRIT", severity="error", timeout=15)

    def _set_state(self, state: str, info: Mapping[str, Any]) -> None:
        self.state = state
        banner = self.query_one(StatusBanner)
        banner.state = state
        banner.set_by = set_by(info.get("code") or "", info.get("actor") or "", info.get("ts") or "") if info else ""
        self.app.refresh_bindings()  # what is allowed now changed: the footer shows it

    # ------------------------------------------------------------ messages

    def on_snapshot(self, snap: Snapshot) -> None:
        """The first frame, from the engine's current state (restored orders, a latched halt, alerts waiting); an
        attached screen draws one again each time it reaches its engine anew; a cockpit watching several engines
        draws another engine's (``fresh``) on a cleared screen."""
        from widgets.keyed_table import KeyedTable

        if snap.fresh:
            self._clear()
        if snap.config is not None:
            self.config = replace(snap.config, now=self.config.now)
            self.query_one(EquityLine).quote = inert(self.config.quote)
            self._fit_markets()  # the engine's own markets
        banner = self.query_one(StatusBanner)
        if snap.mode or snap.config is not None:
            banner.mode = inert(snap.mode or self.config.mode)
        banner.venue = inert(snap.venue, limit=200)
        banner.connected = snap.connected
        self._set_state(snap.state.value, snap.state_info)
        self.balances = list(snap.balances)
        self.positions = {p.symbol: p for p in snap.positions}
        self.last = dict(snap.last)
        for symbol, price in self.last.items():
            self.first_seen.setdefault(symbol, price)
        self._draw_balances()
        self.stops = dict(snap.stops)
        self.stops_suspended = snap.stops_suspended
        self._draw_markets()
        for client_id in set(self.orders) - {o.client_id for o in snap.orders}:
            self.orders.pop(client_id, None)  # ended while the screen was not following (drawn again: a new frame)
            self.query_one("#orders", KeyedTable).discard(client_id)
        for order in snap.orders:
            self._draw_order(order)
        for alert in sorted(snap.alerts, key=lambda a: a.id):
            self._show_alert(alert, new=False)
        fills = self.query_one("#fills", KeyedTable)
        for f in snap.fills[-FILLS_SHOWN:]:
            fills.upsert(f.trade_id, fill_row(f))
        self.readings = {m["code"]: reading(m) for m in snap.monitors}
        self._draw_readings()
        line = self.query_one(EquityLine)
        line.curve.clear()  # a frame drawn again (an attached screen that reached its engine anew) starts it over
        for point in snap.equity_curve:
            line.curve.append(float(point))
        if snap.equity_curve:
            line.add_point(float(snap.equity_curve[-1]))
        self._draw_equity(
            snap.equity if snap.equity is not None else (snap.equity_curve[-1] if snap.equity_curve else None)
        )
        if snap.checklist:
            self._draw_checklist(snap.checklist)
        self.app.refresh_too_small()
        frame_drawn = getattr(self.app, "frame_drawn", None)
        if frame_drawn is not None:
            frame_drawn(snap)

    def _clear(self) -> None:
        """Nothing of the engine shown before: its orders, alerts, fills, CRIT line, checklist and readings."""
        from widgets.keyed_table import KeyedTable

        self.orders.clear()
        self.first_seen.clear()
        self.crit_waiting.clear()
        self.checklist = None
        self.readings = {}
        strip = self.query_one(MonitorStrip)
        strip.checklist, strip.checklist_short, strip.checklist_level = "", "", "OK"
        for table in self.query(KeyedTable).results(KeyedTable):
            table.clear_rows()
        self._draw_crit()

    def open_filter(self) -> None:
        """`/`: the filter field over the markets panel, focused."""
        field = self.query_one("#market-filter", Input)
        field.disabled = False
        field.add_class("-shown")
        field.focus()

    def on_input_changed(self, message: Input.Changed) -> None:
        if message.input.id == "market-filter":
            self.market_filter = message.value.strip().upper().replace("/", "")
            self._draw_markets()
            self._reorder_markets()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        from widgets.keyed_table import KeyedTable

        if message.input.id == "market-filter":  # kept; the keys are the cockpit's again
            if not message.value.strip():
                message.input.remove_class("-shown")
            message.input.disabled = True  # the filter stays; the keys are the cockpit's again
            self.query_one("#positions", KeyedTable).focus()

    def action_close_filter(self) -> None:
        self.close_filter()

    def close_filter(self) -> bool:
        """Esc in the filter field: cleared and hidden. False when it was not open."""
        from widgets.keyed_table import KeyedTable

        fields = list(self.query("#market-filter").results(Input))  # none in the first frame's moment
        if not fields or not fields[0].has_class("-shown"):
            return False
        field = fields[0]
        field.value = ""
        field.remove_class("-shown")
        field.disabled = True
        self.market_filter = ""
        self._draw_markets()
        self._reorder_markets()
        self.query_one("#positions", KeyedTable).focus()
        return True

    def on_engines_changed(self, message: EnginesChanged) -> None:
        """A cockpit watching several engines: the list drawn again; news of an engine not on the screen told."""
        self.query_one(EngineStrip).show(message.lines)
        if self.has_class("-fleet") != (len(message.lines) > 1):
            self.set_class(len(message.lines) > 1, "-fleet")
            self._fit_markets()
        if message.notice:
            self.app.notify(message.notice, title="Engines", severity="warning", timeout=10)

    def on_link_changed(self, message: LinkChanged) -> None:
        """An attached screen lost its engine, or reached it again: the banner says so, in red while it is lost."""
        banner = self.query_one(StatusBanner)
        banner.unreachable = "" if message.up else f"since {message.since:%H:%M:%S}" if message.since else "now"
        link_changed = getattr(self.app, "link_changed", None)
        if link_changed is not None:
            link_changed(message)
        self.app.refresh_bindings()
        self.app.refresh_too_small()

    def on_engine_events(self, message: EngineEvents) -> None:
        """A batch of events: the model first, then each widget drawn once for the whole batch."""
        try:
            self._draw_batch(message)
        finally:
            message.drawn.set()  # the bridge may take the next batch

    def _draw_batch(self, message: EngineEvents) -> None:
        from engine.kernel.events import EquitySampled, TickerUpdated

        markets = readings = balances = False
        moved: set[str] = set()  # symbols whose price alone changed in this batch
        equity: Decimal | None = None
        for event in message.events:
            kind = self.apply(event)
            markets |= kind == "markets"
            readings |= kind == "readings"
            balances |= kind == "balances"
            if kind == "price" and isinstance(event, TickerUpdated):
                moved.add(event.symbol)
            if isinstance(event, EquitySampled):
                equity = event.equity
        if markets:
            self._draw_markets()
        elif moved:
            self._draw_prices(moved)
        if readings:
            self._draw_readings()
        if balances or markets:
            self._draw_balances()
        if equity is not None:
            self._draw_equity(equity)
            self.query_one(EquityLine).add_point(float(equity))
        self.app.refresh_too_small()  # the too-small notice says the state as the banner now does
        self.draw_lag.append(time.monotonic() - message.taken)

    def apply(self, event: Event) -> str:
        """One event into the model; returns which part of the screen it dirtied when that is drawn per batch."""
        from engine.kernel.events import (
            AlertRaised,
            AlertUpdated,
            BalancesUpdated,
            ChecklistCompleted,
            CommandAudited,
            EngineStarted,
            FillReceived,
            HealthUpdated,
            ModeChanged,
            MonitorsChanged,
            OrderCreated,
            OrderUpdated,
            PositionsUpdated,
            StopsChanged,
            StopsSuspended,
            TickerUpdated,
            TradingStateChanged,
            VenueConnection,
        )
        from widgets.keyed_table import KeyedTable

        if isinstance(event, TradingStateChanged):
            self._set_state(event.state.value, {"code": event.code, "actor": event.actor, "ts": event.ts.isoformat()})
            self.app.withdraw_questions(f"trading is now {event.state.value} (by {event.actor})")
        elif isinstance(event, CommandAudited):
            if event.kill_switch:  # from anyone: another screen of the same operator names the same actor
                self.app.withdraw_questions(f"{event.command} by {event.actor}")
        elif isinstance(event, (OrderCreated, OrderUpdated)):
            self._draw_order(event.order)
        elif isinstance(event, FillReceived):
            self.query_one("#fills", KeyedTable).upsert(event.fill.trade_id, fill_row(event.fill))
        elif isinstance(event, BalancesUpdated):
            self.balances = list(event.balances)
            return "balances"
        elif isinstance(event, PositionsUpdated):
            self.positions = {p.symbol: p for p in event.positions}
            return "markets"
        elif isinstance(event, TickerUpdated):
            self.last[event.symbol] = event.last
            self.first_seen.setdefault(event.symbol, event.last)
            return "price"
        elif isinstance(event, StopsChanged):
            self.stops = dict(event.stops)
            return "markets"
        elif isinstance(event, StopsSuspended):
            self.stops_suspended = inert(event.reason)
            return "markets"
        elif isinstance(event, MonitorsChanged):
            self.readings = {m["code"]: reading(m) for m in event.monitors}
            return "readings"
        elif isinstance(event, HealthUpdated):
            health = self.query_one(HealthLine)
            health.breaker = None if event.breaker is None else inert(event.breaker)
            health.polling = event.polling
            health.streams_down = tuple(inert(s, limit=200) for s in event.streams_down)
            health.monitors_age = event.monitors_age_s
            health.monitors_stalled = event.monitors_stalled
            health.chat = tuple(inert(bot, limit=60) for bot in event.chat)
            line = self.query_one(EquityLine)
            line.day_pnl = ("+" if event.day_pnl >= 0 else "") + num(event.day_pnl)
            line.day_negative = event.day_pnl < 0
            return "readings"
        elif isinstance(event, (AlertRaised, AlertUpdated)):
            pressing = isinstance(event, AlertRaised) or event.change in ("escalated", "repeat")
            self._show_alert(event.alert, new=pressing)
        elif isinstance(event, VenueConnection):
            banner = self.query_one(StatusBanner)
            banner.connected = event.connected
            banner.detail = inert(event.detail, limit=200)
        elif isinstance(event, ChecklistCompleted):
            self._draw_checklist(event.checklist)
        elif isinstance(event, ModeChanged):
            self.query_one(StatusBanner).mode = inert(event.mode)
        elif isinstance(event, EngineStarted):
            banner = self.query_one(StatusBanner)
            banner.venue = inert(event.venue, limit=200)
            banner.connected = True
        return ""
