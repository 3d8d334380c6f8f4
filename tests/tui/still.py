"""The cockpit app drawn from a fixed set of real engine records, for screen snapshots: the same app, screen,
bindings and widgets as `cockpit`, but fed a fixed first frame and fixed events at a fixed time instead of a live
simulator, so a snapshot changes only when the screen does."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from decimal import Decimal as D

from cockpit.app import CockpitApp
from cockpit.bridge import EngineEvents
from cockpit.link import Link, LinkState, Mirror
from cockpit.main_screen import Snapshot
from engine.kernel.config import EngineConfig, Settings, StrategyConfig, VenueConfig
from engine.kernel.events import (
    Alert,
    Balance,
    BalancesUpdated,
    Fill,
    HealthUpdated,
    MonitorsChanged,
    Order,
    OrderStatus,
    Position,
    Severity,
    TradingState,
    TradingStateChanged,
)
from engine.sim.market import markets

NOW = datetime(2026, 11, 30, 14, 25, 40, tzinfo=UTC)
MONITORS = (
    "ws_stale",
    "rest_errors",
    "rate_limit_ban",
    "rest_latency",
    "stream_latency",
    "reconnects",
    "stuck_order",
    "daily_loss",
    "max_drawdown",
    "flash_crash",
    "position_mismatch",
    "clock_skew",
    "auth_failure",
    "maintenance",
)
VALUES = {
    "ws_stale": ("0.4s (ticker BTC/USDT)", "10s / 60s"),
    "rest_errors": ("0 in 60s", "5"),
    "rest_latency": ("4ms", "2000ms"),
    "stream_latency": ("12ms", "2000ms"),
    "reconnects": ("0/h", "6/h"),
    "daily_loss": ("0.00%", "2% / 3%"),
    "max_drawdown": ("0.41%", "5% / 10%"),
    "clock_skew": ("+3ms", "1000ms"),
}


def monitors(**bad: tuple[str, str, str]) -> tuple[dict, ...]:
    """Every monitor OK with a plausible value, but those given as code=(status, value, threshold)."""
    out = []
    for code in MONITORS:
        value, threshold = VALUES.get(code, ("ok", "—"))
        status = "OK"
        if code in bad:
            status, value, threshold = bad[code]
        out.append(
            {
                "code": code,
                "status": status,
                "value": value,
                "threshold": threshold,
                "detail": "",
                "blocks_resume": False,
            }
        )
    return tuple(out)


def alert(i: int, severity: Severity, code: str, message: str, seconds_ago: int, acked: bool = False) -> Alert:
    return Alert(
        severity,
        code,
        message,
        ts=NOW - timedelta(seconds=seconds_ago),
        id=i,
        acked_by="operator:key" if acked else None,
    )


ORDERS = [
    Order(
        "ck-1",
        "BTC/USDT",
        "buy",
        "limit",
        D("0.00154"),
        D("64902.19"),
        OrderStatus.OPEN,
        created_at=NOW - timedelta(seconds=42),
        origin="strategy:ladder",
    ),
    Order(
        "ck-2",
        "BTC/USDT",
        "sell",
        "limit",
        D("0.00154"),
        D("65850.00"),
        OrderStatus.PARTIALLY_FILLED,
        filled=D("0.0005"),
        created_at=NOW - timedelta(seconds=754),
        origin="strategy:ladder",
    ),
]
FILLS = [
    Fill("t1", "ck-0", "BTC/USDT", "buy", D("64880.10"), D("0.00154"), D("0.0999"), "USDT", NOW - timedelta(minutes=9)),
    Fill("t2", "ck-2", "BTC/USDT", "sell", D("65850.00"), D("0.0005"), D("0.0329"), "USDT", NOW - timedelta(minutes=1)),
]
ALERTS = [
    alert(1, Severity.INFO, "ENGINE_STARTED", "paper engine on sim 127.0.0.1:9100", 900),
    alert(
        2, Severity.WARN, "ORDER_ADOPTED", "open order x-77 on ETH/USDT was not placed by this engine", 600, acked=True
    ),
]


class StillLink(Link):
    """A link to no engine: its view holds the fixed first frame's state; nothing is ever sent or read."""

    owns_engine = True  # pictured as `cockpit` on its own engine
    state = LinkState.UP

    def __init__(self, settings: Settings, state: TradingState, state_info: dict) -> None:
        self.settings = settings
        self.view = Mirror()
        self.view.trading_state, self.view.state_info = state, dict(state_info)
        self.view.ready = True
        self.view.mode = self.view.started_mode = settings.engine.mode
        self.view.quote, self.view.symbols = settings.engine.quote_asset, tuple(settings.venue.symbols)
        self.view.exchange = settings.venue.exchange
        self.engine = None
        self.answers: dict[str, object] = {}  # what a query answers, by its name (None for any other)

    async def query(self, name: str, **params) -> object:
        return self.answers.get(name)


class StillCockpit(CockpitApp):
    """The real app on a link to no engine; ``events`` are drawn after the first frame."""

    def __init__(
        self,
        tmp_path,
        state: TradingState = TradingState.ACTIVE,
        state_info: dict | None = None,
        alerts: list[Alert] | None = None,
        events: list = (),
        symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"),
        chat: tuple[str, ...] = (),
    ) -> None:
        settings = Settings(
            engine=EngineConfig(data_dir=tmp_path),
            strategy=StrategyConfig(enabled=False),
            venue=VenueConfig(symbols=symbols),
        )
        super().__init__(link=StillLink(settings, state, state_info or {}), settings=settings)
        self.main_screen.config = replace(self.main_screen.config, now=lambda: NOW)
        self.first = Snapshot(
            state=state,
            state_info=state_info or {},
            venue="sim 127.0.0.1:9100",
            connected=True,
            orders=ORDERS,
            balances=[Balance("USDT", D("9899.95"), D("100.05")), Balance("BTC", D("0.00104"), D("0"))],
            positions=[Position("BTC/USDT", D("0.00104"), D("64880.10"), D("65020.55"))],
            alerts=ALERTS + list(alerts or []),
            fills=FILLS,
            equity_curve=[D(10000) + D(i % 7) * D("1.5") - D(i // 9) for i in range(60)],
            stops={"BTC/USDT": D("63500.00")},
            monitors=list(monitors()),
            last={"BTC/USDT": D("65020.55"), "ETH/USDT": D("3498.21")},
            equity=D("10067.57"),
            checklist={"verdict": "GO", "summary": {"PASS": 15, "WARN": 3, "FAIL": 0}},
        )
        self.events = list(events)
        self.chat = chat

    def frame_drawn(self, snap) -> None:
        """No notice of a restored halt: the pictures are of the screen, not of what is said once at a start."""

    async def on_mount(self, event) -> None:
        event.prevent_default()  # there is no engine: the app's own on_mount does not run
        self.started.set()  # ... but the pictures are of a cockpit whose engine is up
        self.refresh_bindings()  # as the app does once its engine is up: the footer shows what is allowed now
        self.main_screen.post_message(self.first)
        health = HealthUpdated(
            market_data_age_s=0.4,
            rest_p95_ms=4.0,
            rest_errors_today=0,
            ws_reconnects_today=0,
            breaker="CLOSED",
            polling=False,
            streams_down=(),
            day_pnl=D("67.57"),
            drawdown_pct=D("0.41"),
            monitors_age_s=0.6,
            user_stream_age_s=0.2,
            chat=self.chat,
        )
        self.main_screen.post_message(EngineEvents([health, *self.events], 0.0))


def fifty_markets(tmp_path) -> StillCockpit:
    """50 markets (BTC, ETH and 48 of the simulator's synthetic ones), 12 positions, 37 open orders."""
    specs = markets(48)
    symbols = tuple(f"{spec.base}/{spec.quote}" for spec in specs.values())
    app = StillCockpit(tmp_path, symbols=symbols)
    last = {f"{spec.base}/{spec.quote}": spec.start_price for spec in specs.values()}
    held = symbols[::4][:12]
    positions = [
        Position(s, (Decimal(40 + 7 * i) / last[s]).quantize(Decimal("0.0001")), last[s] * Decimal("0.99"), last[s])
        for i, s in enumerate(held)
    ]
    orders = [
        replace(ORDERS[0], client_id=f"ck-{i}", symbol=s, price=last[s] * Decimal("0.98"))
        for i, s in enumerate(symbols[1:38])
    ]
    app.first = replace(app.first, last=last, positions=positions, orders=orders, stops={})
    return app


def live_balances() -> BalancesUpdated:
    """What a live session's balances look like once the engine's data arrives: the quote with a ladder's buys
    resting, BTC (the first frame's position, all of it locked in its stop), ETH (locked in its stop but the
    rounding) and some fee dust: wider than 80 columns in full."""
    return BalancesUpdated(
        (
            Balance("USDT", D("9665.05"), D("199.90")),
            Balance("BTC", D("0"), D("0.00104")),
            Balance("ETH", D("0.00007"), D("0.0299")),
            Balance("BNB", D("0.0123"), D("0")),
        )
    )


def halted_by_ws_stale() -> dict:
    change = TradingStateChanged(
        TradingState.ACTIVE,
        TradingState.HALTED,
        "monitor:ws_stale",
        "market data 61.2s old",
        ts=NOW - timedelta(seconds=10),
        code="ws_stale",
    )
    crit = monitors(ws_stale=("CRIT", "61.2s (ticker BTC/USDT)", "10s / 60s"))
    return {
        "state": TradingState.HALTED,
        "state_info": {
            "actor": "monitor:ws_stale",
            "code": "ws_stale",
            "ts": change.ts.isoformat(),
            "reason": change.reason,
        },
        "events": [change, MonitorsChanged(crit)],
    }
