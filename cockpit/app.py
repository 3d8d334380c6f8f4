"""The cockpit: one full-screen main screen over an embedded engine; keys send commands, events redraw.

Every key is a binding with an id (remappable in the config's ``[keys]`` section) that runs the same command the
CLI sends, through the engine's one ``execute``. Halt and cancel-all ask nothing; close-all and resume ask once,
and a question is withdrawn when the state it asks about changes before it is answered.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from textual import work
from textual.app import App
from textual.binding import Binding

from cockpit.bridge import pump
from cockpit.main_screen import MainScreen, Snapshot
from cockpit.palette import CockpitCommands
from cockpit.screens import Confirm, TooSmall
from cockpit.views import num, qty
from engine.commands import (
    Ack, CancelAll, CloseAll, ClosePosition, Command, CommandResult, Halt, Reconnect, ReduceOnly, Resume, SetStrategy,
)
from engine.commands import Snapshot as TakeSnapshot
from engine.core import Engine, EngineError
from engine.datadir import DataDirBusy
from engine.events import TradingState
from widgets.alerts import AlertList

log = logging.getLogger(__name__)

ACTOR = "operator:key"
HANGUP = {"halt": Halt, "cancel_all": CancelAll, "close_all": CloseAll}
MIN_SIZE = (80, 24)
HANGUP_FINISH_S = 600.0  # after a hang-up, how long the kill switch may keep retrying before the program exits
BINDINGS = [
    Binding("h", "halt", "Halt", id="halt", priority=True),
    Binding("c", "cancel_all", "Cancel all", id="cancel_all", priority=True),
    Binding("x", "close_all", "Close all", id="close_all", priority=True),
    Binding("r", "reconnect", "Reconnect", id="reconnect"),
    Binding("u", "resume", "Resume", id="resume"),
    Binding("d", "reduce_only", "Reduce only", id="reduce_only"),
    Binding("a", "ack", "Ack alert", id="ack"),
    Binding("A", "ack_all", "Ack all", id="ack_all", show=False),
    Binding("s", "snapshot", "Snapshot", id="snapshot", show=False),
    Binding("q", "quit_cockpit", "Quit", id="quit"),
]
BINDING_IDS = tuple(b.id for b in BINDINGS if b.id)


def check_keymap(keymap: dict[str, str]) -> None:
    """Refuse a ``[keys]`` entry that names no binding, with the ids there are."""
    unknown = sorted(set(keymap) - set(BINDING_IDS))
    if unknown:
        raise ValueError(f"[keys] {', '.join(unknown)}: no such binding; the ids are {', '.join(BINDING_IDS)}")


class CockpitApp(App):
    """Shows the engine's state live; h halts, c cancels every order, x closes every position, r reconnects."""

    TITLE = "cockpit"
    CSS_PATH = "app.tcss"
    BINDINGS = BINDINGS
    COMMANDS = App.COMMANDS | {CockpitCommands}

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.main_screen = MainScreen(engine)
        self._hangup_started = False
        keymap = dict(engine.settings.keys)
        check_keymap(keymap)
        if keymap:
            self.set_keymap(keymap)

    def get_default_screen(self) -> MainScreen:
        return self.main_screen

    async def on_mount(self) -> None:
        try:
            await self.engine.start()
        except (EngineError, DataDirBusy, OSError, RuntimeError) as exc:
            self.exit(return_code=2, message=f"cockpit: {exc}")
            return
        subscription = self.engine.bus.subscribe()
        snap = self.engine.snapshot()
        # Queued to the screen ahead of every event, so it is drawn first, once the screen is composed.
        self.main_screen.post_message(Snapshot(snap))
        if snap["state"] == TradingState.HALTED and snap["state_info"]:
            info = snap["state_info"]
            self.notify(f"Restored HALTED (by {info.get('actor')}: {info.get('reason')}). u: resume",
                        severity="warning", timeout=10)
        self.run_worker(pump(subscription, self.main_screen.post_message), name="engine-bridge")
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hung_up)
        except (NotImplementedError, RuntimeError, ValueError):
            log.warning("no SIGHUP handler here: [tui] on_hangup cannot run")

    def on_resize(self, event) -> None:
        """Under 80×24 the screen says so instead of cutting panels off without a word; h and c still work."""
        width, height = event.size
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        shown = next((s for s in self.screen_stack if isinstance(s, TooSmall)), None)
        if small and shown is None:
            shown = TooSmall(MIN_SIZE)
            self.push_screen(shown)
        elif not small and shown is not None:
            shown.dismiss()
            return
        if shown is not None:
            self.call_after_refresh(shown.show, width, height, self.engine.trading_state.value)

    def _hung_up(self) -> None:
        """The terminal went away (an SSH drop): run the configured policy, recorded, then exit. A second SIGHUP
        changes nothing: the first one's work goes on."""
        if self._hangup_started:
            return
        self._hangup_started = True
        self.run_worker(self._on_hangup(), name="hangup", group="hangup")

    async def _on_hangup(self) -> None:
        policy = self.engine.settings.tui.on_hangup
        log.warning("terminal hung up (SIGHUP): on_hangup = %s", policy)
        command = HANGUP.get(policy)
        if command is not None:
            result = await self.engine.execute(command(actor="operator:hangup",
                                                       reason=f"terminal hung up (SIGHUP); [tui] on_hangup = {policy}"))
            log.warning("on hangup: %s", result.message)
            # What the venue did not let it finish is retried; nobody is watching, so stay until it is done.
            deadline = time.monotonic() + HANGUP_FINISH_S
            while self.engine.kill_switch_retrying() and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
        self.exit(return_code=0)

    async def on_unmount(self) -> None:
        await self.engine.stop()

    # ------------------------------------------------------------ questions

    async def ask(self, question: str) -> bool:
        """Ask once; a yes counts only if the trading state did not move while the question was open."""
        epoch = self.engine.state.epoch
        answer = await self.push_screen_wait(Confirm(question, epoch=epoch))
        if answer and self.engine.state.epoch != epoch:
            self.notify("The trading state changed while you were deciding; nothing was done.",
                        title="Withdrawn", severity="warning")
            return False
        return bool(answer)

    def withdraw_questions(self, why: str) -> None:
        """Dismiss every open question asked before the state last moved (a kill switch, a halt elsewhere)."""
        epoch = self.engine.state.epoch
        for screen in list(self.screen_stack):
            if isinstance(screen, Confirm) and screen.epoch is not None and screen.epoch != epoch:
                screen.dismiss(False)
                self.notify(f"Question withdrawn: {why}", title="Withdrawn", severity="warning")

    # ------------------------------------------------------------ operator actions

    async def _run(self, command: Command, title: str) -> CommandResult:
        result = await self.engine.execute(command)
        self.notify(result.message, title=title, severity="information" if result.ok else "error",
                    timeout=10 if command.kill_switch else 5)
        if command.kill_switch:
            self.withdraw_questions(f"{title.lower()} ran")
        return result

    async def action_halt(self) -> None:
        """Halt at once: no question asked (DESIGN.md: halt is one key)."""
        await self._run(Halt(actor=ACTOR, reason="h pressed in cockpit"), "Halt")

    def action_cancel_all(self) -> None:
        """Halt and cancel every open order at the venue; no question asked."""
        self.notify("Halting and cancelling every open order…", title="Cancel all", severity="warning")
        self._kill(CancelAll(actor=ACTOR, reason="c pressed in cockpit"), "Cancel all")

    @work(group="commands", exclusive=False)
    async def _kill(self, command: Command, title: str) -> None:
        await self._run(command, title)

    def _what_close_sells(self, symbol: str | None = None) -> str:
        portfolio = self.engine.portfolio
        held = [p for p in portfolio.positions() if symbol is None or p.symbol == symbol]
        orders = [o for o in self.engine.tracker.open_orders() if symbol is None or o.symbol == symbol]
        sells = ", ".join(f"{p.symbol.split('/')[0]} {qty(p.amount)} (~{num(p.value)} {portfolio.quote})"
                          for p in held) or "nothing held to sell"
        return f"cancel {len(orders)} open order(s) and sell at market: {sells}"

    @work(group="commands")
    async def action_close_all(self) -> None:
        """Halt, cancel every order and sell every position at market, after one question that lists it."""
        if not await self.ask(f"CLOSE ALL? Halt, {self._what_close_sells()}."):
            self.notify("Nothing closed.", title="Close all")
            return
        self.notify("Halting, cancelling and selling at market…", title="Close all", severity="warning")
        await self._run(CloseAll(actor=ACTOR, reason="x pressed in cockpit"), "Close all")

    @work(group="commands")
    async def action_close_position(self, symbol: str) -> None:
        """Close one position (from the palette), after one question."""
        if not await self.ask(f"Close {symbol}? {self._what_close_sells(symbol)}."):
            return
        await self._run(ClosePosition(actor=ACTOR, reason="palette: close position", symbol=symbol), "Close position")

    @work(group="commands", exclusive=False)
    async def action_reconnect(self) -> None:
        """Reopen the streams and the REST session, reload markets and reconcile."""
        self.notify("Reconnecting…", title="Reconnect")
        await self._run(Reconnect(actor=ACTOR, reason="r pressed in cockpit"), "Reconnect")

    @work(group="commands")
    async def action_resume(self) -> None:
        """Resume trading after one confirmation."""
        if self.engine.trading_state == TradingState.ACTIVE:
            self.notify("Already ACTIVE.", title="Resume")
            return
        if not await self.ask("Resume trading? New orders will be allowed again."):
            self.notify(f"Still {self.engine.trading_state.value}.", title="Resume")
            return
        await self._run(Resume(actor=ACTOR, reason="u pressed in cockpit"), "Resume")

    @work(group="commands")
    async def action_reduce_only(self) -> None:
        """Only position-reducing orders from now on, after one confirmation."""
        if self.engine.trading_state == TradingState.REDUCE_ONLY:
            self.notify("Already REDUCE_ONLY.", title="Reduce only")
            return
        if not await self.ask("Reduce only? Only orders that shrink a position will go out."):
            return
        await self._run(ReduceOnly(actor=ACTOR, reason="d pressed in cockpit"), "Reduce only")

    async def action_ack(self) -> None:
        """Acknowledge the alert under the cursor (stops its escalation)."""
        alert_id = self.main_screen.query_one(AlertList).selected_id
        if alert_id is None:
            self.notify("No alert selected: move to one in the alert list, or A acknowledges all.", title="Ack")
            return
        await self._run(Ack(actor=ACTOR, reason="a pressed in cockpit", ids=(alert_id,)), "Ack")

    async def action_ack_all(self) -> None:
        """Acknowledge every unacknowledged alert."""
        await self._run(Ack(actor=ACTOR, reason="A pressed in cockpit", every=True), "Ack all")

    async def action_snapshot(self) -> None:
        """Write a snapshot archive of the whole state now."""
        await self._run(TakeSnapshot(actor=ACTOR, reason="s pressed in cockpit"), "Snapshot")

    async def action_set_strategy(self, name: str, enabled: bool) -> None:
        await self._run(SetStrategy(actor=ACTOR, reason="palette", strategy=name, enabled=enabled), "Strategy")

    @work(group="commands")
    async def action_quit_cockpit(self) -> None:
        """Quit; asks first when orders are still resting at the venue."""
        open_orders = len(self.engine.tracker.open_orders())
        if open_orders and not await self.push_screen_wait(
            Confirm(f"Quit? {open_orders} open order(s) stay at the venue, unwatched. (c first cancels them)")
        ):
            return
        self.exit()
