"""The cockpit's other screens: questions asked once, the quit choice, help, the logs and the order form.

The logs (alerts, audit, incidents, an order's history, the reconciliation diff) read what the engine stored;
none of them changes anything except through the app's actions, which go through the engine's one ``execute``.
Escape (or q) closes a screen; the kill-switch keys h and c work on every screen (they are the app's, priority).
What they show came from outside (reasons, actors, venue errors, symbols): every row goes through
``cockpit.views.cells`` and every line through ``shown``: inert, never read as markup.

Why one module of this length: every screen other than the main one, each a small class; they share the app's
keys and the same way of reading the store, and a newcomer finds them all in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from cockpit.views import cells, shown
from widgets.alerts import severity_text
from widgets.keyed_table import KeyedTable


class Confirm(ModalScreen[bool]):
    """Asks one question; ``y`` answers yes, ``n`` or Escape answers no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 64; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    Confirm .keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, question: str, epoch: int | None = None) -> None:
        super().__init__()
        self.question = question
        self.epoch = epoch  # the trading state's epoch it was asked in; None: not about the trading state

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(shown(self.question, lines=True))
            yield Static("y: yes   n / Esc: no", classes="keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuitChoice(ModalScreen[str | None]):
    """Quitting with orders or positions open: keep them, cancel every order, or close everything; Esc stays."""

    # c and x are the app's kill-switch keys (priority, on every screen); while this question is open they
    # answer it (CockpitApp.action_cancel_all / action_close_all), so the kill switch runs once, for the quit.
    BINDINGS = [
        Binding("k", "choose('keep')", "Keep", id="quit.keep"),
        Binding("escape", "choose(None)", "Stay", id="quit.stay"),
    ]
    DEFAULT_CSS = """
    QuitChoice { align: center middle; }
    QuitChoice > Vertical { width: 70; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    QuitChoice .keys { margin-top: 1; }
    """

    def __init__(self, what: str, epoch: int | None = None) -> None:
        super().__init__()
        self.what = what
        self.epoch = epoch

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(shown(f"Quit cockpit? {self.what}", lines=True))
            yield Static(
                "k: keep them at the venue, unwatched · c: cancel every order, then quit\n"
                "x: close everything (cancel and sell at market), then quit · Esc: stay",
                classes="keys",
            )

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class TooSmall(ModalScreen[None]):
    """Shown while the terminal is under 80×24: says so, and h and c still work (they are the app's keys)."""

    DEFAULT_CSS = """
    TooSmall { align: center middle; background: $error 30%; }
    TooSmall > Static { width: auto; height: auto; padding: 0 1; background: $surface; }
    """

    def __init__(self, need: tuple[int, int]) -> None:
        super().__init__()
        self.need = need
        self.message = Static()

    def compose(self) -> ComposeResult:
        yield self.message

    def show(self, width: int, height: int, state: str) -> None:
        w, h = self.need
        self.message.update(
            Text(
                f"terminal too small: need {w}×{h}, have {width}×{height}\ntrading is {state} · h: halt · c: cancel all"
            )
        )


class ListScreen(Screen[None]):
    """A full screen of rows read from the store, newest first; Escape or q goes back, F5 reloads."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="screen.back"),
        Binding("f5", "reload", "Reload", id="screen.reload"),
    ]
    DEFAULT_CSS = """
    ListScreen > #title { height: 1; background: $boost; text-style: bold; padding: 0 1; }
    ListScreen > #summary { height: auto; max-height: 6; padding: 0 1; }
    ListScreen > KeyedTable { height: 1fr; }
    """
    TITLE = ""
    COLUMNS: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(shown(self.TITLE), id="title")
        yield Static(id="summary")
        yield KeyedTable(self.COLUMNS, id="rows")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def rows(self) -> Iterable[tuple[str, Sequence[Any]]]:
        return ()

    def summary(self) -> str | Text:
        return ""

    def action_reload(self) -> None:
        table = self.query_one("#rows", KeyedTable)
        table.sync({key: cells(row) for key, row in self.rows()})
        summary = self.summary()
        self.query_one("#summary", Static).update(shown(summary, lines=True) if isinstance(summary, str) else summary)
        table.focus()

    @property
    def engine(self):
        return self.app.engine  # type: ignore[attr-defined]


def _time(ts: str | None) -> str:
    """``2026-11-30 14:25:30`` from an ISO time (UTC)."""
    return (ts or "")[:19].replace("T", " ")


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

    def _stored(self) -> list[dict[str, Any]]:
        return self.engine.store.alerts(limit=1000) if self.engine.store else []

    def rows(self):
        for a in self._stored():
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
        self.action_reload()

    def action_toggle_unacked(self) -> None:
        self.unacked_only = not self.unacked_only
        self.query_one("#rows", KeyedTable).sync({})
        self.action_reload()


class AuditLog(ListScreen):
    """Every command carried out, from every actor: who, what, why, the result and how long it took."""

    TITLE = "Audit log: every command, every actor"
    COLUMNS = ("time", "command", "actor", "ok", "ms", "reason", "result")

    def rows(self):
        for a in self.engine.store.audit(limit=500) if self.engine.store else []:
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

    def rows(self):
        def secs(v: Any) -> str:
            return "—" if v is None else f"{float(v):.1f}"

        from engine.ops.incidents import timings  # here: the cockpit's first frame does not wait for it

        for i in self.engine.store.incidents() if self.engine.store else []:
            t = timings(i)
            yield (
                str(i["id"]),
                (
                    str(i["id"]),
                    _time(i["opened_at"]),
                    i["trigger"],
                    i["actor"],
                    secs(t["detect_s"]),
                    secs(t["act_s"]),
                    secs(t["recover_s"]),
                    i.get("reason") or "",
                ),
            )

    def summary(self) -> str:
        return "Enter or w: write the selected incident's report (DIR/incident_ID.md)"

    def on_data_table_row_selected(self) -> None:
        self.action_report()

    def action_report(self) -> None:
        key = self.query_one("#rows", KeyedTable).selected_key
        if key is None:
            self.notify("No incident selected.", title="Incident report")
            return
        try:
            from engine.ops.incidents import write_report

            path = write_report(self.engine.store, self.engine.settings.engine.data_dir, int(key))
        except (OSError, KeyError) as exc:
            self.notify(f"could not write the report: {exc}", title="Incident report", severity="error")
            return
        self.notify(f"written: {path}", title="Incident report", timeout=10)


class ChecklistScreen(ListScreen):
    """The latest go/no-go checklist: every check with PASS / WARN / FAIL, its evidence and how to fix a failure.
    F5 runs it again now (asks once: on a paper venue its smoke trade places orders)."""

    TITLE = "Go/no-go checklist"
    COLUMNS = ("status", "check", "detail", "fix")
    BINDINGS = [Binding("f5", "app.run_checklist", "Run now", id="checklist.run")]
    STYLE = {"PASS": "green", "WARN": "bold yellow", "FAIL": "bold white on red"}

    def _latest(self) -> dict[str, Any] | None:
        runs = self.engine.store.checklist_runs(limit=1) if self.engine.store else []
        return runs[0] if runs else None

    def rows(self):
        latest = self._latest()
        for c in (latest or {}).get("checks", []):
            status = Text(c["status"], style=self.STYLE.get(c["status"], ""))
            yield c["code"], (status, c["title"], c["detail"], c.get("fix") or "")

    def summary(self) -> str:
        latest = self._latest()
        if latest is None:
            return "not run yet · F5: run it now (cockpit preflight does the same from a shell)"
        return (
            f"{latest['verdict']} · {latest['passed']} PASS · {latest['warned']} WARN · {latest['failed']} FAIL · "
            f"run {_time(latest['ts'])} by {latest['actor']} in {latest['mode']} · F5: run it again"
        )


class Fills(ListScreen):
    """Every fill the engine has seen, newest first: what traded, at what price, with what fee, for which order."""

    TITLE = "Fills"
    COLUMNS = ("time", "symbol", "side", "amount", "price", "fee", "order")

    def rows(self):
        for f in reversed(self.engine.store.fills() if self.engine.store else []):
            side = Text(f["side"].upper(), style="green" if f["side"] == "buy" else "red")
            yield (
                f["trade_id"],
                (
                    _time(f["ts"]),
                    f["symbol"],
                    side,
                    f["amount"],
                    f["price"],
                    f"{f['fee']} {f['fee_asset'] or ''}".strip(),
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

    def rows(self):
        events = self.engine.store.order_events(self.client_id) if self.engine.store else []
        for i, e in enumerate(events):
            yield (
                str(i),
                (
                    _time(e.get("ts")),
                    e.get("status", ""),
                    e.get("filled") or "",
                    e.get("source") or "",
                    e.get("detail") or "",
                ),
            )

    def summary(self) -> str:
        order = self.engine.tracker.get(self.client_id)
        if order is None:
            return "not tracked"
        return (
            f"{order.side.upper()} {order.amount} {order.symbol} @ {order.price or 'market'} · "
            f"{order.status.value}"
            f" · filled {order.filled} · venue id {order.venue_id or '—'} · placed by {order.origin}"
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

    def rows(self):
        report = self.engine.sync.last_reconcile or {}
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
                yield f"{kind}-{d['asset']}", (what, d["asset"], d["engine"], d["venue"], d["diff"], d["pct_of_equity"])

    def summary(self) -> str:
        report = self.engine.sync.last_reconcile
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
    """Every binding: key, id, what it does, and whether it is allowed now (and why not)."""

    TITLE = "Keys: every binding (remap by id in the config's [keys])"
    COLUMNS = ("key", "id", "now", "does")

    def __init__(self, entries: Callable[[], list[tuple[str, str, str, str | None]]]) -> None:
        super().__init__()
        self.entries = entries

    def rows(self):
        for key, binding_id, description, why_not in self.entries():
            now = Text("yes", style="green") if why_not is None else Text(f"no: {why_not}", style="yellow")
            yield binding_id, (key, binding_id, now, description)

    def summary(self) -> str:
        return "h and c work on every screen. ctrl+p: every command by name."


class OrderForm(ModalScreen[dict | None]):
    """An operator's order: symbol, side, amount, optional limit price and stop-loss. It goes through the same
    risk checks as any order; a refusal says why."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="order.cancel")]
    DEFAULT_CSS = """
    OrderForm { align: center middle; }
    OrderForm > Vertical { width: 64; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    OrderForm Horizontal { height: auto; }
    OrderForm Label { width: 14; padding: 1 0; }
    OrderForm Input, OrderForm Select { width: 1fr; }
    OrderForm #error { color: $error; height: auto; }
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
                yield Input(placeholder="e.g. 0.001", id="amount")
            with Horizontal():
                yield Label("limit price")
                yield Input(placeholder="empty: market", id="price")
            with Horizontal():
                yield Label("stop-loss")
                yield Input(placeholder="price (required for entries)", id="stop")
            yield Static(id="error")
            yield Button("Send", variant="primary", id="send")

    def on_mount(self) -> None:
        self.query_one("#amount", Input).focus()

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
    "AuditLog",
    "ChecklistScreen",
    "Confirm",
    "Fills",
    "Help",
    "Incidents",
    "ListScreen",
    "OrderForm",
    "OrderHistory",
    "QuitChoice",
    "Reconciliation",
    "TooSmall",
]
