"""The main screen: banner, health line, balances, markets and positions, open orders, alerts.

It owns its widgets and draws every engine event it is sent, so drawing goes on while a modal question is
on top of it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from cockpit.bridge import EngineEvent
from cockpit.views import alert_row, balance_row, market_row, num, order_row
from engine.events import (
    AlertRaised,
    AlertUpdated,
    BalancesUpdated,
    CommandAudited,
    EngineStarted,
    HealthUpdated,
    OrderCreated,
    OrderUpdated,
    PositionsUpdated,
    TickerUpdated,
    TradingStateChanged,
    VenueConnection,
)
from widgets.alerts import AlertList
from widgets.banner import StatusBanner
from widgets.health import HealthLine
from widgets.keyed_table import KeyedTable


def set_by(code: str, actor: str, ts: str) -> str:
    """``ws_stale at 14:25:30`` for a monitor, ``operator:key at 14:25:30`` for a person (times in UTC)."""
    when = ts[11:19] if len(ts) >= 19 else ""
    return f"{code or actor}{' at ' + when if when else ''}"


RANK = {"INFO": 0, "WARN": 1, "CRIT": 2}


class Snapshot(Message):
    """The engine's state when the cockpit attached to it: the first frame."""

    def __init__(self, snap: dict) -> None:
        super().__init__()
        self.snap = snap


class MainScreen(Screen):
    """Everything the operator needs at a glance; the keys live on the app."""

    def __init__(self, engine) -> None:
        super().__init__(id="main")
        self.engine = engine

    def compose(self) -> ComposeResult:
        yield StatusBanner(id="banner")
        yield HealthLine(id="health")
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

    def on_mount(self) -> None:
        self.query_one(StatusBanner).mode = self.engine.mode
        self.query_one(HealthLine).stale_after_s = self.engine.settings.venue.stale_s

    def on_snapshot(self, message: Snapshot) -> None:
        """The first frame, from the engine's current state (restored orders, a latched halt)."""
        snap = message.snap
        banner = self.query_one(StatusBanner)
        banner.state = snap["state"].value
        banner.venue = snap["venue"]
        info = snap["state_info"]
        if info:
            banner.set_by = set_by(info.get("code") or "", info.get("actor") or "", info.get("ts") or "")
        quote = self.engine.portfolio.quote
        self.query_one("#balances", KeyedTable).sync({b.asset: balance_row(b, quote) for b in snap["balances"]})
        self._draw_markets()
        self.query_one("#orders", KeyedTable).sync({o.client_id: order_row(o) for o in snap["orders"]})
        alerts = self.query_one(AlertList)
        for a in snap["alerts"]:
            alerts.add_alert(alert_row(a))

    def _draw_markets(self) -> None:
        portfolio = self.engine.portfolio
        held = {p.symbol: p for p in portfolio.positions()}
        self.query_one("#positions", KeyedTable).sync(
            {s: market_row(s, portfolio.last.get(s), held.get(s)) for s in self.engine.symbols}
        )

    def _draw_equity(self) -> None:
        equity = self.engine.portfolio.equity()
        if equity is not None:
            self.query_one(StatusBanner).equity = f"{num(equity)} {self.engine.portfolio.quote}"

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        banner = self.query_one(StatusBanner)
        if isinstance(event, TradingStateChanged):
            banner.state = event.state.value
            banner.set_by = set_by(event.code, event.actor, event.ts.isoformat())
            self.app.withdraw_questions(f"trading is now {event.state.value} (by {event.actor})")
        elif isinstance(event, CommandAudited):
            if event.kill_switch and event.actor != "operator:key":
                self.app.withdraw_questions(f"{event.command} by {event.actor}")
        elif isinstance(event, (OrderCreated, OrderUpdated)):
            table = self.query_one("#orders", KeyedTable)
            order = event.order
            if order.status.is_open:
                table.upsert(order.client_id, order_row(order))
            else:
                table.discard(order.client_id)
        elif isinstance(event, BalancesUpdated):
            quote = self.engine.portfolio.quote
            self.query_one("#balances", KeyedTable).sync(
                {b.asset: balance_row(b, quote) for b in event.balances if b.total > 0 or b.asset == quote}
            )
            self._draw_equity()
        elif isinstance(event, (PositionsUpdated, TickerUpdated)):
            self._draw_markets()
            self._draw_equity()
        elif isinstance(event, HealthUpdated):
            health = self.query_one(HealthLine)
            health.ws_age_s = event.market_data_age_s
            health.rest_p95_ms = event.rest_p95_ms
            health.rest_errors = event.rest_errors_today
            health.ws_reconnects = event.ws_reconnects_today
            health.breaker = event.breaker
            health.polling = event.polling
            health.day_pnl = ("+" if event.day_pnl >= 0 else "") + num(event.day_pnl)
            health.day_pnl_negative = event.day_pnl < 0
            health.drawdown = f"{event.drawdown_pct:.2f}%"
        elif isinstance(event, (AlertRaised, AlertUpdated)):
            if RANK[event.alert.severity.value] < RANK[self.engine.settings.alerts.screen_min_severity]:
                return
            self.query_one(AlertList).add_alert(alert_row(event.alert))
            new_or_pressing = isinstance(event, AlertRaised) or event.change in ("escalated", "repeat")
            if new_or_pressing and event.alert.severity.value == "CRIT":
                self.app.bell()
        elif isinstance(event, VenueConnection):
            banner.connected = event.connected
            banner.detail = event.detail
        elif isinstance(event, EngineStarted):
            banner.venue = event.venue
            banner.connected = True
