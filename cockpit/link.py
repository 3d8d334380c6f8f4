"""The link: what the cockpit needs of an engine, whether the engine runs in this process or in another one.

The app never reaches into an engine. It asks its link for:

- the **first frame** (``Snapshot``: the engine's state when the screen starts following it, or follows it again),
- the **events** after it, in batches, through the one bridge (``cockpit.bridge.pump``),
- ``execute(command)``: a key's command, answered with the engine's ``CommandResult``,
- the **lists** the other screens show (alerts, fills, audit, incidents, an order's history, the reconciliation, the
  go/no-go checklist), read off the UI loop,
- a **mirror** (``view``) of the few values a key checks at once, with no I/O: the trading state and its epoch,
  whether the venue is ready, the open orders and positions, the unacknowledged alerts, the resume refusal.

Two links: ``cockpit.inprocess.InProcessLink`` wraps an engine this program started (its keys call the engine's
``execute`` as ``operator:key``; its view reads the engine itself), and ``cockpit.attached.AttachedLink`` is a client
of a running engine's service API (the data directory's socket, or a remote URL with a token; the engine names the
actor; its view is the ``Mirror`` below, kept current from the events).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import shlex
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from cockpit.main_screen import ScreenConfig, Snapshot

if TYPE_CHECKING:  # names only: the engine's records are loaded after the first frame (decision BEN-10)
    from engine.kernel.commands import Command, CommandResult
    from engine.kernel.events import Alert, Event, Fill, Order, Position, TradingState

log = logging.getLogger(__name__)

FILLS_SHOWN = 50  # the first frame's recent fills
CURVE_SHOWN = 120  # the first frame's equity samples
LIST_ROWS = 500  # one page of a list screen (the service's largest)


class LinkError(Exception):
    """The link could not be opened (an engine that would not start); the message says why."""


class QueryFailed(Exception):
    """A query the engine did not answer (out of reach) or refused; the message says which."""


class LinkState(str, enum.Enum):
    """Where the link stands: never reached yet, following the engine, or lost and trying again."""

    CONNECTING = "connecting"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Emergency:
    """What to run instead of a key when the engine cannot be reached: the CLI, which works with no engine."""

    data_dir: str | None
    remote: bool

    def command(self, name: str) -> str:
        where = f" --data-dir {shlex.quote(self.data_dir)}" if self.data_dir else " --data-dir DIR"
        return f"cockpit {name}{where}"

    def advice(self, name: str) -> str:
        on_host = " on the engine's host" if self.remote else ""
        return f"from a shell{on_host}: {self.command(name)} (it works with no engine running)"


class View:
    """The values a key checks at once, without I/O (``CockpitApp.why_not``, the questions' epoch). ``epoch`` moves
    whenever the trading state moves or a kill switch fires: a question asked before is stale."""

    trading_state: TradingState
    state_info: Mapping[str, Any]
    epoch: int
    ready: bool
    mode: str
    started_mode: str
    quote: str
    symbols: tuple[str, ...]
    resume_refused: str | None
    kill_switch_retrying: list[str]
    strategies: list[dict[str, Any]]
    pid: int | None
    data_dir: str | None
    may_command: bool
    actor: str
    exchange: str

    def open_orders(self) -> list[Order]:
        raise NotImplementedError

    def order(self, client_id: str) -> Order | None:
        raise NotImplementedError

    def positions(self) -> list[Position]:
        raise NotImplementedError

    def unacknowledged(self) -> int:
        raise NotImplementedError


class Mirror(View):
    """The engine's values as an attached screen last heard them: loaded from a first frame and the status, kept
    current from every event (``apply``, as each arrives, before the screen draws it)."""

    def __init__(self) -> None:
        self._trading_state: TradingState | None = None  # ACTIVE until a frame says otherwise (``trading_state``)
        self.state_info: dict[str, Any] = {}
        self.epoch = 0
        self.engine_epoch: int | None = None  # the engine's own count, from its last frame
        self.ready = False
        self.mode = ""
        self.started_mode = ""
        self.quote = ""
        self.symbols: tuple[str, ...] = ()
        self.resume_refused: str | None = None
        self.kill_switch_retrying: list[str] = []
        self.strategies: list[dict[str, Any]] = []
        self.pid: int | None = None
        self.data_dir: str | None = None
        self.may_command = True
        self.actor = ""
        self.exchange = ""
        self._orders: dict[str, Order] = {}
        self._positions: dict[str, Position] = {}
        self._open_alerts: set[int] = set()

    @property
    def trading_state(self) -> TradingState:  # type: ignore[override]
        """ACTIVE until a frame or an event says otherwise; the engine's records load when it is first read (after
        the first frame: an attached screen draws it before it reaches its engine, decision BEN-14)."""
        if self._trading_state is None:
            from engine.kernel.events import TradingState

            self._trading_state = TradingState.ACTIVE
        return self._trading_state

    @trading_state.setter
    def trading_state(self, state: TradingState) -> None:
        self._trading_state = state

    def open_orders(self) -> list[Order]:
        return list(self._orders.values())

    def order(self, client_id: str) -> Order | None:
        return self._orders.get(client_id)

    def positions(self) -> list[Position]:
        return [p for p in self._positions.values() if p.amount]

    def unacknowledged(self) -> int:
        return len(self._open_alerts)

    def moved(self) -> None:
        """The state moved (or a kill switch fired): every question asked before is stale."""
        self.epoch += 1

    def load(self, frame: Snapshot, engine_epoch: int | None) -> None:
        """A first frame (at attach, or after the link came back): everything it says, as it says it."""
        if frame.state != self.trading_state or (
            engine_epoch is not None and self.engine_epoch is not None and engine_epoch != self.engine_epoch
        ):
            self.moved()
        self.engine_epoch = engine_epoch
        self.trading_state, self.state_info = frame.state, dict(frame.state_info)
        self._orders = {o.client_id: o for o in frame.orders if o.status.is_open}
        self._positions = {p.symbol: p for p in frame.positions}
        self._open_alerts = {a.id for a in frame.alerts if _waiting(a)}
        if frame.mode:
            self.mode = frame.mode
        if frame.config is not None:
            self.quote, self.symbols = frame.config.quote, frame.config.symbols
        if frame.connected is not None:
            self.ready = True

    def load_status(self, status: Mapping[str, Any]) -> None:
        """The status query's figures that no event carries (the trading state itself is the events')."""
        self.ready = bool(status.get("ready", self.ready))
        self.resume_refused = status.get("resume_refused")
        self.kill_switch_retrying = list(status.get("kill_switch_retrying") or [])
        pid = status.get("pid")
        self.pid = int(pid) if isinstance(pid, int) else self.pid
        self.data_dir = status.get("data_dir") or self.data_dir

    def apply(self, event: Event) -> None:
        from engine.kernel.events import (
            AlertRaised,
            AlertUpdated,
            CommandAudited,
            EngineStarted,
            ModeChanged,
            OrderCreated,
            OrderUpdated,
            PositionsUpdated,
            TradingStateChanged,
            VenueConnection,
        )

        if isinstance(event, TradingStateChanged):
            self.trading_state = event.state
            self.state_info = {
                "actor": event.actor,
                "reason": event.reason,
                "ts": event.ts.isoformat(),
                "code": event.code,
                "values": dict(event.values),
            }
            self.moved()
        elif isinstance(event, CommandAudited):
            if event.kill_switch:
                self.moved()  # a kill switch fired, even on a state already HALTED (the engine counts it too)
        elif isinstance(event, (OrderCreated, OrderUpdated)):
            if event.order.status.is_open:
                self._orders[event.order.client_id] = event.order
            else:
                self._orders.pop(event.order.client_id, None)
        elif isinstance(event, PositionsUpdated):
            self._positions = {p.symbol: p for p in event.positions}
        elif isinstance(event, (AlertRaised, AlertUpdated)):
            if _waiting(event.alert):
                self._open_alerts.add(event.alert.id)
            else:
                self._open_alerts.discard(event.alert.id)
        elif isinstance(event, ModeChanged):
            self.mode = event.mode
        elif isinstance(event, EngineStarted) or (isinstance(event, VenueConnection) and event.connected):
            self.ready = True


def _waiting(alert: Alert) -> bool:
    """Waiting for an operator's acknowledgement (the engine's alert book: every unacknowledged WARN and CRIT)."""
    from engine.kernel.events import Severity

    return alert.severity != Severity.INFO and not alert.acked


class Feed:
    """Events on their way from an attached link to the screen: lossless for the events that must arrive (state
    changes, orders, alerts), the newest only of fast data (tickers, balances, positions, health: as the engine's own
    subscription), and the link's messages (a first frame, the link down or up) in their place between them."""

    def __init__(self) -> None:
        self._queue: deque[Any] = deque()
        self._latest: dict[Hashable, Event] = {}
        self._ready = asyncio.Event()

    def put(self, item: Event | Message) -> None:
        from engine.kernel.events import Event

        key = item.coalesce_key if isinstance(item, Event) else None
        if key is None:
            self._queue.append(item)
        else:
            if key not in self._latest:
                self._queue.append(_Slot(key))
            self._latest[key] = item  # type: ignore[assignment]
        self._ready.set()

    def get_nowait(self) -> Event | Message | None:
        if not self._queue:
            return None
        item = self._queue.popleft()
        if isinstance(item, _Slot):
            return self._latest.pop(item.key)
        return item  # type: ignore[no-any-return]

    async def get(self) -> Event | Message:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        item = self.get_nowait()
        assert item is not None
        return item


class _Slot:
    __slots__ = ("key",)

    def __init__(self, key: Hashable) -> None:
        self.key = key


class Link:
    """What the app needs of an engine (see the module's docstring)."""

    owns_engine = False  # the engine stops when this program does (the quit question is about its orders)
    several = False  # watches several engines, one on the screen (``cockpit.fleet.FleetLink``: select, halt_all)
    kind = "in-process"  # "in-process", "local" (the data directory's socket) or "remote" (a URL and a token)
    state = LinkState.CONNECTING
    down_since: datetime | None = None
    view: View
    emergency = Emergency(None, remote=False)
    # A directory on this machine where the engine keeps its files (an incident report is written there), or None.
    local_data_dir: Path | None = None
    where = ""  # a remote engine's host:port, for the banner ("" on this machine)

    async def open(self) -> None:
        """Be ready to follow: an in-process engine built and started; LinkError when it cannot be."""

    async def follow(self, post: Callable[[Message], object]) -> None:
        """Post the first frame, then every batch of events, to ``post`` (the main screen), until cancelled."""
        raise NotImplementedError

    async def execute(self, command: Command) -> CommandResult:
        raise NotImplementedError

    async def query(self, name: str, **params: Any) -> Any:
        """A query of the service API (``engine.core.service.QUERIES``), its answer as plain JSON values."""
        raise NotImplementedError

    async def refresh(self) -> None:
        """Bring what the view cannot learn from events (the resume refusal) up to date now."""

    async def close(self) -> None:
        """Stop following (and an in-process engine with it)."""

    @property
    def up(self) -> bool:
        return self.state == LinkState.UP

    def pinned(self) -> Link:
        """The link a key acts through: this one (a cockpit watching several engines: the one selected now)."""
        return self

    def on_engine(self, pinned: Link) -> str:
        """Which engine a command went to, for its title (`` on engine prod-b``): "" with one engine."""
        return ""

    def describe(self) -> str:
        """Where the engine is, for the operator: ``the engine (pid 4242)``."""
        pid = self.view.pid
        return f"the engine (pid {pid})" if pid else "the engine"

    # ------------------------------------------------------------ the lists, newest first

    async def alerts(self, limit: int = 1000) -> list[dict[str, Any]]:
        return await self._pages("alerts", limit)

    async def fills(self, limit: int = 1000) -> list[dict[str, Any]]:
        return await self._pages("trades", limit)

    async def audit(self, limit: int = LIST_ROWS) -> list[dict[str, Any]]:
        return await self._pages("audit", limit)

    async def incidents(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.query("incidents", limit=limit)
        return list(rows or [])

    async def order_events(self, client_id: str) -> list[dict[str, Any]]:
        return list(await self.query("order_events", client_id=client_id) or [])

    async def reconciliation(self) -> dict[str, Any]:
        return dict(await self.query("reconciliation") or {})

    async def checklist(self) -> dict[str, Any] | None:
        run = await self.query("preflight")
        return dict(run) if run else None

    async def incident_report(self, incident_id: int) -> dict[str, Any]:
        """The post-incident report: ``{"id", "name", "text"}`` (Markdown)."""
        return dict(await self.query("incident_report", id=incident_id))

    async def _pages(self, name: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` rows, newest first, a page (``LIST_ROWS``) at a time."""
        rows: list[dict[str, Any]] = []
        before: int | None = None
        while len(rows) < limit:
            params: dict[str, Any] = {"limit": min(LIST_ROWS, limit - len(rows))}
            if before is not None:
                params["before"] = before
            page = list(await self.query(name, **params) or [])
            rows += page
            if len(page) < params["limit"] or not page or page[-1].get("id") is None:
                break
            before = int(page[-1]["id"])
        return rows

    # ------------------------------------------------------------ the first frame

    async def first_frame(self, config: ScreenConfig | None = None) -> tuple[Snapshot, dict[str, Any]]:
        """The first frame from the service's queries (the snapshot, the latest fills, the equity curve and the
        latest checklist run), and the snapshot's own answer (its ``journal_seq``, ``state_epoch``...)."""
        snap, trades, curve, checklist = await asyncio.gather(
            self.query("snapshot"),
            self.query("trades", limit=FILLS_SHOWN),
            self.query("equity_curve", limit=CURVE_SHOWN),
            self.query("preflight"),
            return_exceptions=True,
        )
        if isinstance(snap, BaseException):
            raise snap
        # What the store adds (recent fills, the curve, the last checklist) is drawn without, rather than no frame.
        extras = {"fills": trades, "equity curve": curve, "checklist": checklist}
        for name, got in extras.items():
            if isinstance(got, Exception):
                log.warning("the first frame is drawn without its %s: %s", name, got)
        trades, curve, checklist = (None if isinstance(got, Exception) else got for got in extras.values())
        return frame(snap, trades, curve, checklist, config), snap


def frame(
    snap: Mapping[str, Any],
    trades: list[Mapping[str, Any]] | None,
    curve: list[Mapping[str, Any]] | None,
    checklist: Mapping[str, Any] | None,
    config: ScreenConfig | None = None,
) -> Snapshot:
    """The first frame from the service's answers (plain JSON), its records decoded into the engine's own types."""
    from engine.api import wire
    from engine.kernel.events import Alert, Balance, Order, Position, TradingState

    ready = bool(snap.get("ready"))
    return Snapshot(
        state=TradingState(snap["state"]),
        state_info=dict(snap.get("state_info") or {}),
        venue=str(snap.get("venue") or ""),
        # None ("connecting") until the venue has been connected once: not a DISCONNECTED that never was.
        connected=True if snap.get("connected") else (False if ready else None),
        orders=[wire.record(Order, o) for o in snap.get("orders") or []],
        balances=[wire.record(Balance, b) for b in snap.get("balances") or []],
        positions=[wire.record(Position, p) for p in snap.get("positions") or []],
        alerts=[wire.record(Alert, a) for a in snap.get("alerts") or []],
        fills=[_fill(r) for r in reversed(trades or [])],
        equity_curve=[Decimal(str(r["equity"])) for r in curve or [] if r.get("equity") is not None],
        stops={k: Decimal(str(v)) for k, v in (snap.get("stops") or {}).items() if v is not None},
        stops_suspended=str(snap.get("stops_suspended") or ""),
        monitors=list(snap.get("monitors") or []),
        last={k: Decimal(str(v)) for k, v in (snap.get("last") or {}).items() if v is not None},
        equity=None if snap.get("equity") is None else Decimal(str(snap["equity"])),
        checklist=dict(checklist) if checklist else None,
        mode=snap.get("mode"),
        config=config,
    )


def _fill(row: Mapping[str, Any]) -> Fill:
    """A fill from the store's row (as the service answers it: amounts as written, the time ISO)."""
    from engine.kernel.events import Fill

    return Fill(
        str(row["trade_id"]),
        row.get("client_id"),
        str(row["symbol"]),
        str(row["side"]),
        Decimal(str(row["price"])),
        Decimal(str(row["amount"])),
        Decimal(str(row.get("fee") or 0)),
        row.get("fee_asset"),
        _time(row.get("ts")),
    )


def _time(value: Any) -> datetime:
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def screen_config(config: Mapping[str, Any], now: Callable[[], datetime] | None = None) -> ScreenConfig:
    """The screen's settings from the engine's own (the ``config`` query: an attached screen shows the engine as
    it was configured, not as this machine's configuration would have it)."""
    engine = config.get("engine") or {}
    venue = config.get("venue") or {}
    extra = {"now": now} if now is not None else {}
    return ScreenConfig(
        mode=str(engine.get("mode") or "paper"),
        quote=str(engine.get("quote_asset") or "USDT"),
        symbols=tuple(venue.get("symbols") or ()),
        stuck_after_s=float((config.get("monitors") or {}).get("stuck_order_s") or 300.0),
        min_severity=str((config.get("alerts") or {}).get("screen_min_severity") or "INFO"),
        **extra,
    )
