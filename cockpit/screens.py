"""The cockpit's other screens: help, the logs and the order form (the questions are ``cockpit.questions``).

The logs (alerts, audit, incidents, an order's history, the reconciliation diff) show what the engine stored, read
through the app's link (the engine's service API: in a thread of its own in process, over the socket when attached),
never from the store here and never on the UI loop; none of them changes anything except through the app's actions,
which go through the engine's one ``execute``.
Escape (or q) closes a screen; the kill switch's keys h, c and x work on every screen (they are the app's,
priority). A list cuts its long cells at the terminal's width: the selected row is shown whole under the table,
and Enter shows it whole on a screen of its own (on the checklist with the check's evidence). What they show came
from outside (reasons, actors, venue errors, symbols): every row goes through ``cockpit.views.cells`` and every
line through ``shown``: inert, never read as markup. Numbers are shown as written, never in exponent notation
(``cockpit.views.plain``).

This module is loaded when one of them is first opened, not before the first frame. Why one module of this
length: every screen other than the main one, each a small class; they share the app's keys and the same way of
reading the engine, and a newcomer finds them all in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static

from cockpit.questions import Confirm, OverrideReason, QuitChoice, TooSmall
from cockpit.views import cell, cells, checklist_record, plain, qty, shown
from widgets.alerts import severity_text
from widgets.flow import Flow
from widgets.keyed_table import KeyedTable

log = logging.getLogger(__name__)


class RowDetail(ModalScreen[None]):
    """One row of a list whole: every column on its own line, wrapped, and what the table has no column for (a
    check's evidence, a command's values). Escape, Enter or q goes back; it scrolls when it is long."""

    BINDINGS = [Binding("escape,enter,q", "app.pop_screen", "Back", id="detail.back")]
    DEFAULT_CSS = """
    RowDetail { align: center middle; }
    RowDetail > VerticalScroll {
        width: 100; max-width: 100%; height: auto; max-height: 100%; border: thick $primary; background: $surface;
        padding: 0 1;
    }
    RowDetail #detail-title { text-style: bold; }
    """

    def __init__(self, title: str, fields: Sequence[tuple[str, Text]]) -> None:
        super().__init__()
        self.title_text = title
        self.fields = list(fields)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(shown(self.title_text), id="detail-title")
            yield Static(self.body(), id="detail-body")
            yield Static("Esc / Enter: back", classes="keys")

    def body(self) -> Text:
        text = Text()
        for i, (label, value) in enumerate(self.fields):
            if i:
                text.append("\n")
            text.append(f"{label}: ", style="bold")
            text.append_text(value)
        return text

    @property
    def text(self) -> str:
        return f"{self.title_text}\n{self.body().plain}"


class ListScreen(Screen[None]):
    """A full screen of rows the engine stored, newest first; Escape or q goes back, F5 reloads. The selected
    row is shown whole under the table (a cell the width cuts is never lost); Enter shows it on a screen of its
    own, with what the table has no column for. ``fetch`` reads through the app's link in a worker (never on the
    UI loop's time); ``rows`` draws what it read."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="screen.back"),
        Binding("f5", "reload", "Reload", id="screen.reload"),
    ]
    DEFAULT_CSS = """
    ListScreen > #title { height: 1; background: $boost; text-style: bold; padding: 0 1; }
    ListScreen > #summary { height: auto; max-height: 6; padding: 0 1; }
    ListScreen > KeyedTable { height: 1fr; }
    ListScreen > #detail { height: auto; max-height: 8; padding: 0 1; border-top: solid $primary 60%; }
    """
    TITLE = ""
    COLUMNS: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(shown(self.TITLE), id="title")
        yield Static(id="summary")
        yield KeyedTable(self.COLUMNS, id="rows")
        yield Static(id="detail")
        yield Footer()

    def __init__(self) -> None:
        super().__init__()
        self._loading = False
        self._again = False
        self.failed: str | None = None  # why the last read did not come back (the engine out of reach)

    def on_mount(self) -> None:
        self.action_reload()

    @property
    def link(self) -> Any:
        return self.app.link  # type: ignore[attr-defined]

    async def fetch(self) -> None:
        """Read what the rows are drawn from, through the app's link."""

    def rows(self) -> Iterable[tuple[str, Sequence[Any]]]:
        return ()

    def summary(self) -> str | Text:
        return ""

    def extra(self, key: str) -> list[tuple[str, Any]]:
        """What the row's whole view adds to its columns (name, value): a check's evidence, a command's values."""
        return []

    def fields(self, key: str) -> list[tuple[str, Text]]:
        """The row ``key`` whole: each column's label and cell, then ``extra``; inert, numbers written out."""
        row = self.query_one("#rows", KeyedTable).row_cells(key) or ()
        out = [(label, value if isinstance(value, Text) else Text(value)) for label, value in zip(self.COLUMNS, row)]
        for label, value in self.extra(key):
            out.append((str(label), cell(value if isinstance(value, (str, Text)) else plain(value))))
        return [(inert_label(label), value) for label, value in out]

    def action_reload(self) -> None:
        """Read again and redraw; asked while a read is on its way, it reads once more after it."""
        if self._loading:
            self._again = True
            return
        self._loading = True
        self.run_worker(self._reload(), group="reload")

    async def _reload(self) -> None:
        try:
            again = True
            while again:
                self._again = False
                try:
                    await self.fetch()
                    self.failed = None
                except Exception as exc:  # the worker's boundary: said on the screen and logged, never a crash
                    log.warning("%s: could not read: %s", type(self).__name__, exc)
                    self.failed = inert_label(str(exc) or type(exc).__name__)
                self.draw()
                again = self._again
        finally:
            self._loading = False

    def draw(self) -> None:
        tables = list(self.query("#rows").results(KeyedTable))
        if not tables:
            return  # closed while it read (Esc during a slow read): nothing to draw on
        table = tables[0]
        table.sync({key: cells(row) for key, row in self.rows()})
        summary = self.summary()
        if self.failed:
            summary = f"could not read it now: {self.failed} · F5: try again"
        self.query_one("#summary", Static).update(shown(summary, lines=True) if isinstance(summary, str) else summary)
        table.focus()
        self.show_detail(table.selected_key)

    def show_detail(self, key: str | None) -> None:
        """The selected row under the table, wrapped to the width: ``label value · label value ...``."""
        detail = self.query_one("#detail", Static)
        if key is None or self.query_one("#rows", KeyedTable).row_cells(key) is None:
            detail.update(Text("—", style="dim"))
            return
        parts = []
        for label, value in self.fields(key)[: len(self.COLUMNS)]:
            if not value.plain:
                continue
            part = Text(f"{label} ", style="dim")
            part.append_text(value)
            parts.append(part)
        detail.update(Flow(parts, lead=Text("▸ ", style="bold")))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail(event.row_key.value if event.row_key is not None else None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter: the row whole, on a screen of its own."""
        key = event.row_key.value if event.row_key is not None else None
        if key is not None:
            self.app.push_screen(RowDetail(f"{self.TITLE}: {key}", self.fields(key)))


def inert_label(label: str) -> str:
    """A field's name (an evidence key may come from outside): inert, as ``shown`` makes it."""
    return shown(label, limit=100).plain


def _time(ts: str | None) -> str:
    """``2026-11-30 14:25:30`` from an ISO time (UTC)."""
    return (ts or "")[:19].replace("T", " ")


def _value(value: Any) -> str:
    """A stored value in words: numbers written out (never ``1.1E-7``), a mapping as ``name value, ...``."""
    if isinstance(value, dict):
        return _mapping(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) or "—"
    if value is None:
        return "—"
    return plain(value)


def _mapping(values: dict[str, Any]) -> str:
    return " · ".join(f"{name} {_value(v)}" for name, v in values.items()) or "—"


class AlertLog(ListScreen):
    """Every stored alert; 1/2/3 filter by severity (INFO and up, WARN and up, CRIT), u unacknowledged only."""

    TITLE = "Alert log"
    COLUMNS = ("#", "time", "sev", "code", "count", "acked by", "message")
    BINDINGS = [
        Binding("1", "min_severity('INFO')", "All", id="alerts.all"),
        Binding("2", "min_severity('WARN')", "WARN+", id="alerts.warn"),
        Binding("3", "min_severity('CRIT')", "CRIT", id="alerts.crit"),
        Binding("u", "toggle_unacked", "Unacked only", id="alerts.unacked"),
    ]
    RANK = {"INFO": 0, "WARN": 1, "CRIT": 2}

    def __init__(self) -> None:
        super().__init__()
        self.min_severity = "INFO"
        self.unacked_only = False
        self.stored: list[dict[str, Any]] = []

    async def fetch(self) -> None:
        self.stored = await self.link.alerts(limit=1000)

    def rows(self):
        for a in self.stored:
            if self.RANK.get(a["severity"], 0) < self.RANK[self.min_severity]:
                continue
            if self.unacked_only and a.get("acked_by"):
                continue
            yield (
                str(a["id"]),
                (
                    str(a["id"]),
                    _time(a["ts"]),
                    severity_text(a["severity"], bool(a.get("acked_by"))),
                    a["code"],
                    str(a.get("count") or 1),
                    a.get("acked_by") or "",
                    a["message"],
                ),
            )

    def summary(self) -> str:
        return (
            f"showing {self.min_severity} and up{' · unacknowledged only' if self.unacked_only else ''} · "
            "1: all · 2: WARN+ · 3: CRIT · u: unacknowledged"
        )

    def action_min_severity(self, severity: str) -> None:
        self.min_severity = severity
        self.query_one("#rows", KeyedTable).sync({})
        self.draw()  # the rows read already, filtered anew

    def action_toggle_unacked(self) -> None:
        self.unacked_only = not self.unacked_only
        self.query_one("#rows", KeyedTable).sync({})
        self.draw()


class AuditLog(ListScreen):
    """Every command carried out, from every actor: who, what, why, the result and how long it took."""

    TITLE = "Audit log: every command, every actor"
    COLUMNS = ("time", "command", "actor", "ok", "ms", "reason", "result")

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, dict[str, Any]] = {}
        self.stored: list[dict[str, Any]] = []

    def extra(self, key: str) -> list[tuple[str, Any]]:
        record = self.records.get(key) or {}
        return [(name, _mapping(record[name])) for name in ("args", "values") if record.get(name)]

    async def fetch(self) -> None:
        self.stored = await self.link.audit(limit=500)

    def rows(self):
        self.records = {}
        for a in self.stored:
            self.records[str(a["id"])] = a
            ok = Text("ok", style="green") if a["ok"] else Text("FAILED", style="bold red")
            yield (
                str(a["id"]),
                (
                    _time(a["ts"]),
                    a["command"],
                    a["actor"],
                    ok,
                    f"{a['duration_ms'] or 0:.0f}",
                    a["reason"] or "",
                    a["result"] or "",
                ),
            )


class Incidents(ListScreen):
    """Every kill-switch trip with its times; Enter writes the post-incident report of the one selected."""

    TITLE = "Incidents: every kill-switch trip"
    COLUMNS = ("#", "opened", "trigger", "actor", "detect s", "act s", "recover s", "reason")
    BINDINGS = [Binding("w", "report", "Write report", id="incidents.report")]

    def __init__(self) -> None:
        super().__init__()
        self.stored: list[dict[str, Any]] = []

    async def fetch(self) -> None:
        self.stored = await self.link.incidents()

    def rows(self):
        def secs(v: Any) -> str:
            return "—" if v is None else f"{float(v):.1f}"

        for i in self.stored:
            yield (
                str(i["id"]),
                (
                    str(i["id"]),
                    _time(i["opened_at"]),
                    i["trigger"],
                    i["actor"],
                    secs(i.get("detect_s")),
                    secs(i.get("act_s")),
                    secs(i.get("recover_s")),
                    i.get("reason") or "",
                ),
            )

    def summary(self) -> str:
        if self.link.local_data_dir is None:
            return "Enter or w: the selected incident's report (the engine runs elsewhere: shown here)"
        return "Enter or w: write the selected incident's report (DIR/incident_ID.md)"

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.prevent_default()  # Enter writes the report here (the row is whole under the table)
        self.action_report()

    def action_report(self) -> None:
        key = self.query_one("#rows", KeyedTable).selected_key
        if key is None:
            self.notify("No incident selected.", title="Incident report")
            return
        self.run_worker(self._report(int(key)), group="report")

    async def _report(self, incident_id: int) -> None:
        """The report from the engine; written beside its store when that is on this machine, else shown."""
        try:
            report = await self.link.incident_report(incident_id)
            where = self.link.local_data_dir
            if where is None:
                text = shown(str(report["text"]), limit=None, lines=True)
                self.app.push_screen(RowDetail(f"Incident {incident_id} report", [("report", text)]))
                return
            path = where / str(report["name"])
            path.write_text(str(report["text"]), encoding="utf-8")
        except Exception as exc:  # the worker's boundary: said, never a crash (an OSError, the engine out of reach)
            self.notify(f"could not write the report: {exc}", title="Incident report", severity="error")
            return
        self.notify(f"written: {path}", title="Incident report", timeout=10)


class Strategies(ListScreen):
    """Every strategy the engine runs: on or off (and why, and until when), its symbols and candles, and its record
    since the engine started (closed round trips, won, realised PnL, losses in a row). It reads the engine again
    every few seconds; switching one is the palette's *Enable/Disable strategy NAME* (the same command as
    `cockpit strategy enable|disable NAME`)."""

    TITLE = "Strategies"
    COLUMNS = ("strategy", "state", "symbols", "tf", "trips", "win %", "PnL", "losing")
    REFRESH_S = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.stored: list[dict[str, Any]] = []

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(self.REFRESH_S, self.action_reload)

    async def fetch(self) -> None:
        self.stored = list(await self.link.query("strategies") or [])

    def rows(self):
        for s in self.stored:
            yield (
                s["strategy"],
                (
                    s["strategy"],
                    self._state(s),
                    " ".join(s.get("symbols") or []) or "—",
                    s.get("timeframe") or "—",
                    str(s.get("round_trips", 0)),
                    "—" if s.get("win_rate") is None else f"{Decimal(str(s['win_rate'])) * 100:.0f}",
                    self._pnl(s.get("realised_pnl")),
                    str(s.get("consecutive_losses", 0)),
                ),
            )

    @staticmethod
    def _state(s: dict[str, Any]) -> Text:
        if s.get("enabled", True):
            return Text("ON", style="green")
        until = s.get("disabled_until")
        return Text(f"OFF until {_time(until)[11:16]}" if until else "OFF", style="bold red")

    @staticmethod
    def _pnl(value: Any) -> Text:
        try:
            pnl = Decimal(str(value if value is not None else 0))
        except InvalidOperation:
            return Text(str(value))
        return Text(f"{pnl:,.2f}", style="green" if pnl > 0 else "red" if pnl < 0 else "")

    def extra(self, key: str) -> list[tuple[str, Any]]:
        s = next((s for s in self.stored if s["strategy"] == key), None)
        if s is None:
            return []
        out: list[tuple[str, Any]] = [("wins", s.get("wins", 0)), ("losses", s.get("losses", 0))]
        if not s.get("enabled", True):
            out += [
                ("off because", s.get("reason") or "—"),
                ("switched off by", s.get("disabled_by") or "—"),
                ("switched off at", _time(s.get("disabled_at")) or "—"),
                ("back on at", _time(s.get("disabled_until")) or "only by an operator"),
            ]
        return out

    def summary(self) -> Text:
        on = sum(1 for s in self.stored if s.get("enabled", True))
        if not self.stored:
            return Text("no strategy runs: [strategy] run in config.toml names them (docs/strategies.md)")
        line = Text(f"{len(self.stored)} strateg{'y' if len(self.stored) == 1 else 'ies'} · {on} on")
        off = [s for s in self.stored if not s.get("enabled", True)]
        for s in off:
            line.append(" · ")
            line.append_text(shown(f"{s['strategy']} off: {s.get('reason') or 'by an operator'}", limit=120))
        line.append(" · ctrl+p: Enable/Disable strategy NAME", style="dim")
        return line


class ChecklistScreen(ListScreen):
    """The latest go/no-go checklist: every check with PASS / WARN / FAIL, its evidence and how to fix a failure;
    the selected check whole under the table, Enter for its every piece of evidence. The latest run is the newest
    of the store's and the one the engine just published (at its start and after every reconnect); a run that
    comes in while this screen is open is shown at once. F5 runs it again now (asks once: on a paper venue its
    smoke trade places orders)."""

    TITLE = "Go/no-go checklist"
    COLUMNS = ("status", "check", "detail", "fix")
    BINDINGS = [Binding("f5", "app.run_checklist", "Run now", id="checklist.run")]
    STYLE = {"PASS": "green", "WARN": "bold yellow", "FAIL": "bold white on red"}

    def __init__(self) -> None:
        super().__init__()
        self.checks: dict[str, dict[str, Any]] = {}  # the shown run's checks, by code
        self.stored: dict[str, Any] | None = None  # the engine's latest stored run

    async def fetch(self) -> None:
        self.stored = await self.link.checklist()

    def _latest(self) -> dict[str, Any] | None:
        candidates = [checklist_record(self.stored)] if self.stored else []
        seen = getattr(self.app, "main_screen", None)
        if seen is not None and seen.checklist is not None:
            candidates.append(seen.checklist)
        return max(candidates, key=lambda c: c.get("ts") or "", default=None)

    def rows(self):
        latest = self._latest()
        self.checks = {c["code"]: c for c in (latest or {}).get("checks", [])}
        for c in self.checks.values():
            status = Text(c["status"], style=self.STYLE.get(c["status"], ""))
            yield c["code"], (status, c["title"], c["detail"], c.get("fix") or "")

    def extra(self, key: str) -> list[tuple[str, Any]]:
        evidence = (self.checks.get(key) or {}).get("evidence") or {}
        return [(f"evidence {name}", _value(value)) for name, value in evidence.items()]

    def summary(self) -> str:
        latest = self._latest()
        if latest is None:
            return "not run yet · F5: run it now (cockpit preflight does the same from a shell)"
        counts = latest["summary"]
        run = " ".join(
            part
            for part in (
                "run",
                _time(latest.get("ts")),
                f"by {latest['actor']}" if latest.get("actor") else "",
                f"in {latest['mode']}" if latest.get("mode") else "",
            )
            if part
        )
        return (
            f"{latest['verdict']} · {counts['PASS']} PASS · {counts['WARN']} WARN · {counts['FAIL']} FAIL · {run} · "
            "Enter: a check whole · F5: run it again (with its smoke trade)"
        )


class Fills(ListScreen):
    """Every fill the engine has seen, newest first: what traded, at what price, with what fee, for which order."""

    TITLE = "Fills"
    COLUMNS = ("time", "symbol", "side", "amount", "price", "fee", "order")

    def __init__(self) -> None:
        super().__init__()
        self.stored: list[dict[str, Any]] = []

    async def fetch(self) -> None:
        self.stored = await self.link.fills(limit=1000)

    def rows(self):
        for f in self.stored:
            side = Text(f["side"].upper(), style="green" if f["side"] == "buy" else "red")
            yield (
                f["trade_id"],
                (
                    _time(f["ts"]),
                    f["symbol"],
                    side,
                    plain(f["amount"]),
                    plain(f["price"], grouping=True),
                    f"{plain(f['fee'])} {f['fee_asset'] or ''}".strip(),
                    f["client_id"] or "",
                ),
            )


class OrderHistory(ListScreen):
    """One order's life: every event with its source (the engine, a stream, a poll, reconciliation)."""

    COLUMNS = ("time", "status", "filled", "source", "detail")

    def __init__(self, client_id: str) -> None:
        super().__init__()
        self.client_id = client_id
        self.TITLE = f"Order {client_id}"
        self.stored: list[dict[str, Any]] = []

    async def fetch(self) -> None:
        self.stored = await self.link.order_events(self.client_id)

    def rows(self):
        for i, e in enumerate(self.stored):
            yield (
                str(i),
                (
                    _time(e.get("ts")),
                    e.get("status", ""),
                    plain(e.get("filled")),
                    e.get("source") or "",
                    e.get("detail") or "",
                ),
            )

    def summary(self) -> str:
        order = self.link.view.order(self.client_id)
        if order is None:
            return "not tracked"
        price = plain(order.price, grouping=True) if order.price is not None else "market"
        kind = ""
        if order.is_take_profit_leg:
            kind = f" · take-profit leg of the OCO {order.oco_list_id} (its stop: {order.oco_partner})"
        elif order.is_protective_stop and self.link.view.order(order.oco_partner) is not None:
            kind = f" · stop leg of the OCO {order.oco_list_id} (its take-profit: {order.oco_partner})"
        elif order.is_protective_stop:
            kind = " · the position's protective stop at the venue"
        return (
            f"{order.side.upper()} {qty(order.amount)} {order.symbol} @ {price} · {order.status.value}"
            f" · filled {qty(order.filled)} · venue id {order.venue_id or '—'} · placed by {order.origin}{kind}"
        )


class Reconciliation(ListScreen):
    """The last reconciliation: orders adopted, resolved and lost; holdings the engine and the venue disagree on,
    what was adopted and what waits for the operator. F5 reconciles again now; A adopts the venue's amounts."""

    TITLE = "Reconciliation: the engine against the venue"
    COLUMNS = ("what", "item", "engine", "venue", "diff", "% equity")
    BINDINGS = [
        Binding("f5", "reconcile", "Reconcile now", id="reconcile.now"),
        Binding("A", "adopt", "Adopt venue's amounts", id="reconcile.adopt"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: dict[str, Any] = {}

    async def fetch(self) -> None:
        self.report = await self.link.reconciliation()

    def rows(self):
        report = self.report
        orders = report.get("orders") or {}
        for kind in ("adopted", "resolved", "lost"):
            for client_id in orders.get(kind, []):
                yield f"order-{kind}-{client_id}", (f"order {kind}", client_id, "", "", "", "")
        for kind, label in (
            ("mismatch", "NEEDS OPERATOR"),
            ("adopted", "holding adopted"),
            ("differences", "difference"),
        ):
            for d in report.get(kind, []):
                what = Text(label, style="bold red") if kind == "mismatch" else label
                numbers = (plain(d["engine"]), plain(d["venue"]), plain(d["diff"]), plain(d["pct_of_equity"]))
                yield f"{kind}-{d['asset']}", (what, d["asset"], *numbers)

    def summary(self) -> str:
        report = self.report
        if not report:
            return "no reconciliation yet · F5: reconcile now"
        return (
            f"{report.get('new_fills', 0)} fill(s) fetched that the streams missed · "
            f"{len(report.get('mismatch', []))} difference(s) kept for the operator · "
            "F5: reconcile now · A: adopt the venue's amounts (asks)"
        )

    async def action_reconcile(self) -> None:
        await self.app.run_action("reconcile(False)")  # type: ignore[attr-defined]
        self.action_reload()

    async def action_adopt(self) -> None:
        await self.app.run_action("reconcile(True)")
        self.action_reload()


class Help(ListScreen):
    """Every binding: key, what it does, whether it is allowed now (and why not), and its id."""

    TITLE = "Keys: every binding (remap by id in the config's [keys])"
    COLUMNS = ("key", "does", "now", "id")  # what a key does first: the selected one is whole under the table

    def __init__(self, entries: Callable[[], list[tuple[str, str, str, str | None]]]) -> None:
        super().__init__()
        self.entries = entries

    def rows(self):
        for key, binding_id, description, why_not in self.entries():
            now = Text("yes", style="green") if why_not is None else Text(f"no: {why_not}", style="yellow")
            yield binding_id, (key, description, now, binding_id)

    def summary(self) -> str:
        return (
            "h, c and x (the kill switch) work on every screen, x after one question. Enter: the row whole. "
            "ctrl+p: every command by name."
        )


class OrderForm(ModalScreen[dict | None]):
    """An operator's order: symbol, side, amount, optional limit price and stop-loss. It goes through the same
    risk checks as any order; a refusal says why. The cursor starts on the symbol; an empty field shows a hint
    (``e.g. 0.001``, dimmed and in italics), never something that reads as a value already there."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="order.cancel")]
    DEFAULT_CSS = """
    OrderForm { align: center middle; }
    OrderForm > Vertical { width: 64; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    OrderForm Horizontal { height: auto; }
    OrderForm Label { width: 14; padding: 1 0; }
    OrderForm Input, OrderForm Select { width: 1fr; }
    OrderForm #error { color: $error; height: auto; }
    OrderForm Input > .input--placeholder { color: $text-disabled; text-style: italic; }
    """

    def __init__(self, symbols: Sequence[str]) -> None:
        super().__init__()
        self.symbols = tuple(symbols)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("New order (Tab moves, Enter sends, Esc cancels)")
            with Horizontal():
                yield Label("symbol")
                yield Select(
                    [(shown(s), s) for s in self.symbols], value=self.symbols[0], allow_blank=False, id="symbol"
                )
            with Horizontal():
                yield Label("side")
                yield Select([("buy", "buy"), ("sell", "sell")], value="buy", allow_blank=False, id="side")
            with Horizontal():
                yield Label("amount")
                yield Input(placeholder="e.g. 0.001 (in the base asset)", id="amount")
            with Horizontal():
                yield Label("limit price")
                yield Input(placeholder="e.g. 64000 · leave empty for market", id="price")
            with Horizontal():
                yield Label("stop-loss")
                yield Input(placeholder="e.g. 62000 · entries need one", id="stop")
            yield Static(id="error")
            yield Button("Send", variant="primary", id="send")

    def on_mount(self) -> None:
        self.query_one("#symbol", Select).focus()

    def _decimal(self, field: str, required: bool) -> Decimal | None:
        raw = self.query_one(f"#{field}", Input).value.strip()
        if not raw:
            if required:
                raise ValueError(f"{field} is required")
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ValueError(f"{field} {raw!r} is not a number") from None
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{field} must be a positive number, not {raw!r}")
        return value

    def _submit(self) -> None:
        try:
            order = {
                "symbol": self.query_one("#symbol", Select).value,
                "side": self.query_one("#side", Select).value,
                "amount": self._decimal("amount", True),
                "price": self._decimal("price", False),
                "stop_loss": self._decimal("stop", False),
            }
        except ValueError as exc:
            self.query_one("#error", Static).update(shown(exc))
            return
        self.dismiss(order)

    def on_input_submitted(self) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            self._submit()

    def action_cancel(self) -> None:
        self.dismiss(None)


__all__ = [
    "AlertLog",
    "RowDetail",
    "AuditLog",
    "ChecklistScreen",
    "Confirm",
    "Fills",
    "Help",
    "Incidents",
    "ListScreen",
    "OrderForm",
    "OrderHistory",
    "OverrideReason",
    "QuitChoice",
    "Reconciliation",
    "TooSmall",
]
