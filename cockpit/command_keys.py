"""The keys that send a command to the engine (the kill switch's, resume, reduce only, mode, acknowledge, snapshot,
a strategy on or off, quit), and the one table of what is allowed now and why not: the footer dims what is not, and a
key pressed then says why (decision TUI-12).

A part of ``CockpitApp`` (``cockpit.app``), which holds the link, the screens and the questions these use."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work

from cockpit.bindings import ACTOR, BINDINGS, COMMAND_ACTIONS, DESCRIPTION, DETACH, KILL_CLI, KILL_KEYS
from cockpit.link import Link, LinkState
from cockpit.questions import OverrideReason, QuitChoice
from cockpit.views import num, qty
from widgets.banner import StatusBanner

if TYPE_CHECKING:
    from engine.kernel.commands import Command, CommandResult

log = logging.getLogger("cockpit.app")  # the app's log, as before this part had a module of its own

HALTED_WHY = "trading is HALTED: no new orders until an operator resumes"


class CommandKeys:
    """``CockpitApp``'s keys that send a command, and what is allowed now."""

    # ------------------------------------------------------------ operator actions

    async def _run(self, command: Command, title: str, link: Link | None = None) -> CommandResult:
        """``command`` sent to the engine (``link``: the one a key was pressed for; else the link's own), its
        answer told."""
        link = link or self.link.pinned()
        title += self.link.on_engine(link)
        if not await self._engine_up(title, command.name if command.kill_switch else None, link):
            from engine.kernel.commands import CommandResult

            return CommandResult(False, "not sent: the engine is not up or cannot be reached")
        result = await link.execute(command)
        if self.link.owns_engine:
            # The state is drawn from its event too; this draws it the moment the command returns, even when a
            # storm of events is still waiting to be drawn ahead of that one. (An attached screen's view is the
            # events': its own event follows within milliseconds.)
            self.main_screen.query_one(StatusBanner).state = self.view.trading_state.value
        self.notify(
            result.message,
            title=title,
            severity="information" if result.ok else "error",
            timeout=10 if command.kill_switch else 5,
        )
        if command.kill_switch:
            self.withdraw_questions(f"{title.lower()} ran")
        return result

    async def action_halt(self) -> None:
        """Halt at once: no question asked (halt is one key, always)."""
        from engine.kernel.commands import Halt

        command = Halt(actor=ACTOR, reason="h pressed in cockpit")
        if not self.started.is_set() or not self.link.owns_engine:
            # Waits for the engine (or its answer over the link) in a worker: the screen goes on meanwhile. The
            # engine is the one selected now, even if another is selected before the answer.
            self._kill(command, "Halt", self.link.pinned())
            return
        await self._run(command, "Halt")

    def action_cancel_all(self) -> None:
        """Halt and cancel every open order at the venue; no question asked."""
        from engine.kernel.commands import CancelAll

        if isinstance(self.screen, QuitChoice):
            self.screen.dismiss("cancel_all")  # the quit question's answer: cancel all, then quit
            return
        self.notify("Halting and cancelling every open order…", title="Cancel all", severity="warning")
        self._kill(CancelAll(actor=ACTOR, reason="c pressed in cockpit"), "Cancel all", self.link.pinned())

    def action_cancel_all_with_stops(self) -> None:
        """Halt and cancel every open order at the venue, the protective stops too (the palette's entry)."""
        from engine.kernel.commands import CancelAll

        self.notify("Halting and cancelling every order, stops too…", title="Cancel all", severity="warning")
        self._kill(
            CancelAll(actor=ACTOR, reason="cancel all with stops from the palette", include_stops=True), "Cancel all"
        )

    @work(group="commands", exclusive=False)
    async def _kill(self, command: Command, title: str, link: Link | None = None) -> None:
        await self._run(command, title, link)

    def _what_close_sells(self, symbol: str | None = None) -> str:
        view = self.view
        held = [p for p in view.positions() if symbol is None or p.symbol == symbol]
        orders = [o for o in view.open_orders() if symbol is None or o.symbol == symbol]
        sells = (
            ", ".join(f"{p.symbol.split('/')[0]} {qty(p.amount)} (~{num(p.value)} {view.quote})" for p in held)
            or "nothing held to sell"
        )
        return f"cancel {len(orders)} open order(s) and sell at market: {sells}"

    @work(group="commands")
    async def action_close_all(self) -> None:
        """Halt, cancel every order and sell every position at market, after one question that lists it."""
        from engine.kernel.commands import CloseAll

        if isinstance(self.screen, QuitChoice):
            self.screen.dismiss("close_all")  # the quit question's answer (it was the question): close, then quit
            return
        link = self.link.pinned()
        title = "Close all" + self.link.on_engine(link)
        if not await self._engine_up(title, "close-all", link):
            return
        if not await self.ask(f"CLOSE ALL{self.link.on_engine(link)}? Halt, {self._what_close_sells()}."):
            self.notify("Nothing closed.", title=title)
            return
        self.notify("Halting, cancelling and selling at market…", title=title, severity="warning")
        await self._run(CloseAll(actor=ACTOR, reason="x pressed in cockpit"), "Close all", link)

    @work(group="commands")
    async def action_close_position(self, symbol: str) -> None:
        """Close one position (from the palette), after one question."""
        from engine.kernel.commands import ClosePosition

        if not await self.ask(f"Close {symbol}? {self._what_close_sells(symbol)}."):
            return
        await self._run(ClosePosition(actor=ACTOR, reason="palette: close position", symbol=symbol), "Close position")

    @work(group="commands", exclusive=False)
    async def action_reconnect(self) -> None:
        """Reopen the streams and the REST session, reload markets and reconcile."""
        from engine.kernel.commands import Reconnect

        self.notify("Reconnecting…", title="Reconnect")
        await self._run(Reconnect(actor=ACTOR, reason="r pressed in cockpit"), "Reconnect")

    @work(group="commands")
    async def action_resume(self) -> None:
        """Resume trading after one confirmation."""
        from engine.kernel.commands import Resume
        from engine.kernel.events import TradingState

        view = self.view
        if view.trading_state == TradingState.ACTIVE:
            self.notify("Already ACTIVE.", title="Resume")
            return
        await self.link.refresh()  # the refusal as the engine sees it now, not as the last status said
        refused = view.resume_refused
        if refused is not None:
            await self._resume_override(refused)
            return
        if not await self.ask("Resume trading? New orders will be allowed again."):
            self.notify(f"Still {view.trading_state.value}.", title="Resume")
            return
        await self._run(Resume(actor=ACTOR, reason="u pressed in cockpit"), "Resume")

    async def _resume_override(self, refusal: str) -> None:
        """A refused resume asks a second question: resume past the monitors, with the operator's reason."""
        from engine.kernel.commands import Resume

        view = self.view
        epoch = view.epoch
        if not await self.ask(f"{refusal}\n\nOverride the monitors and resume anyway? You will be asked why."):
            self.notify(f"Still {view.trading_state.value}.", title="Resume")
            return
        reason = await self.push_screen_wait(OverrideReason(refusal, epoch=epoch))
        if reason is None:
            self.notify(f"Still {view.trading_state.value}.", title="Resume")
            return
        if view.epoch != epoch:
            self.notify(
                "The trading state changed while you were deciding; nothing was done.",
                title="Withdrawn",
                severity="warning",
            )
            return
        await self._run(Resume(actor=ACTOR, reason=reason, override=True), "Resume (override)")

    @work(group="commands")
    async def action_reduce_only(self) -> None:
        """Only position-reducing orders from now on, after one confirmation."""
        from engine.kernel.commands import ReduceOnly
        from engine.kernel.events import TradingState

        if self.view.trading_state == TradingState.REDUCE_ONLY:
            self.notify("Already REDUCE_ONLY.", title="Reduce only")
            return
        if not await self.ask("Reduce only? Only orders that shrink a position will go out."):
            return
        await self._run(ReduceOnly(actor=ACTOR, reason="d pressed in cockpit"), "Reduce only")

    @work(group="commands")
    async def action_mode(self) -> None:
        """Dry-run (nothing is sent) or back to the mode the engine started in, after one confirmation."""
        from engine.kernel.commands import SetMode

        view = self.view
        started = view.started_mode
        target = started if view.mode == "dry-run" else "dry-run"
        if target == view.mode:
            self.notify(
                f"This engine started in {started}: there is no other mode to switch to without a restart.",
                title="Mode",
            )
            return
        question = (
            "Switch to DRY-RUN? Orders are decided and logged; none is sent, stop-loss exits included."
            if target == "dry-run"
            else f"Switch back to {target.upper()}? Orders will be sent again."
        )
        if not await self.ask(question):
            return
        await self._run(SetMode(actor=ACTOR, reason="m pressed in cockpit", mode=target), "Mode")

    @work(group="commands", exclusive=False)
    async def action_ack(self) -> None:
        """Acknowledge the alert under the cursor (stops its escalation)."""
        from engine.kernel.commands import Ack
        from widgets.alerts import AlertList

        alert_id = self.main_screen.query_one(AlertList).selected_id
        if alert_id is None:
            self.notify("No alert selected: move to one in the alert list, or A acknowledges all.", title="Ack")
            return
        await self._run(Ack(actor=ACTOR, reason="a pressed in cockpit", ids=(alert_id,)), "Ack")

    @work(group="commands", exclusive=False)
    async def action_ack_all(self) -> None:
        """Acknowledge every unacknowledged alert."""
        from engine.kernel.commands import Ack

        await self._run(Ack(actor=ACTOR, reason="A pressed in cockpit", every=True), "Ack all")

    @work(group="commands", exclusive=False)
    async def action_snapshot(self) -> None:
        """Write a snapshot archive of the whole state now."""
        from engine.kernel.commands import Snapshot as TakeSnapshot

        await self._run(TakeSnapshot(actor=ACTOR, reason="s pressed in cockpit"), "Snapshot")

    @work(group="commands", exclusive=False)
    async def action_set_strategy(self, name: str, enabled: bool) -> None:
        from engine.kernel.commands import SetStrategy

        await self._run(SetStrategy(actor=ACTOR, reason="palette", strategy=name, enabled=enabled), "Strategy")

    @work(group="commands")
    async def action_quit_cockpit(self) -> None:
        """Quit. An attached screen detaches (its engine runs on). The owner of its engine, with orders or
        positions open, asks what to do with them: keep, cancel all or close all; on the built-in simulator it
        says that they end with this process."""
        from engine.kernel.commands import CancelAll, CloseAll

        link, view = self.link, self.view
        if not link.owns_engine:
            pid = f" (pid {view.pid})" if view.pid else ""
            self.detached = f"cockpit: detached; the engine keeps running{pid}"
            log.warning("detached from %s", link.describe())
            self.exit(message=Text(self.detached))
            return
        if not self.started.is_set():
            self.exit()  # nothing known yet to keep or close; the engine is stopped on the way out
            return
        open_orders = len(view.open_orders())
        held = view.positions()
        if not open_orders and not held:
            self.exit()
            return
        symbols = ", ".join(p.symbol for p in held) or "none"
        listed = f"{open_orders} open order(s) and {len(held)} position(s) ({symbols})"
        simulator = view.exchange == "sim"
        if simulator:
            what = (
                f"{listed} are on the built-in simulator, which runs inside this cockpit: they end with it "
                "(nothing stays at any venue)."
            )
        else:
            what = f"{listed} would stay at the venue, unwatched."
        choice = await self.push_screen_wait(QuitChoice(what, epoch=view.epoch, simulator=simulator))
        if choice is None:
            return
        if choice == "keep":
            log.warning("quit: %s %s", what, "ended with the simulator" if simulator else "kept at the venue")
        else:
            command = CancelAll if choice == "cancel_all" else CloseAll
            self.notify("Halting and clearing the book before quitting…", title="Quit", severity="warning")
            result = await self._run(command(actor=ACTOR, reason=f"quit: operator chose {choice}"), "Quit")
            if not result.ok:
                self.notify(
                    "Not quitting: the kill switch did not finish; it keeps retrying. q again to decide.",
                    title="Quit",
                    severity="error",
                    timeout=15,
                )
                return
        self.exit()

    # ------------------------------------------------------------ what is allowed now, and why not

    def why_not(self, action: str) -> str | None:
        """Why an action cannot run now, or None when it can. The kill switch (halt, cancel all, close all) is
        never held back: even when the engine thinks nothing is open, the venue is asked; before the engine is up
        they wait for it. An attached screen's keys say when its engine cannot be reached (and the kill switch's,
        what to run instead), and a viewer's token sends nothing."""
        link = self.link
        if action in ("help", "quit"):
            return None
        if action == "next_engine":  # an engine out of reach too: its line says so, the screen shows it
            return "answer or close what is open first (Esc)" if self.screen is not self.main_screen else None
        if not self.started.is_set():
            if action in KILL_KEYS:
                return None
            return "the engine is still starting" if link.owns_engine else "the engine is being reached"
        if not link.owns_engine:
            if link.state == LinkState.DOWN:
                return self.unreachable(KILL_CLI.get(action)).removeprefix("NOT SENT: ")
            if link.state == LinkState.CONNECTING:
                return None if action in KILL_KEYS else "the engine is being reached"
            if action in COMMAND_ACTIONS and not self.view.may_command:
                return f"this token ({self.view.actor}) may only read: its role is viewer, not operator"
        from engine.kernel.events import TradingState  # loaded by then (the engine's start); not before the frame

        view = self.view
        state = view.trading_state
        if action == "halt" and state == TradingState.HALTED:
            return "already HALTED"
        if action == "resume":
            if state == TradingState.ACTIVE:
                return "already ACTIVE"
            if view.resume_refused is not None:
                return view.resume_refused
        if action == "reduce_only" and state == TradingState.REDUCE_ONLY:
            return "already REDUCE_ONLY"
        if action == "new_order":
            if state == TradingState.HALTED:
                return HALTED_WHY
            if not view.ready:
                return "the venue is not connected yet"
        if action == "reconnect" and not view.ready:
            return "the engine is still starting"
        if action == "order_history" and self._selected_order() is None:
            return "select an open order first (Tab to the orders table)"
        if action in ("ack", "ack_all") and not view.unacknowledged():
            return "no alert waiting to be acknowledged"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Shown disabled in the footer (not hidden) when not allowed now; the help screen says why."""
        if action == "next_engine" and not self.link.several:
            return False  # one engine: no such key
        if action in DESCRIPTION and self.why_not(action) and not (action == "resume" and self._overridable()):
            return None
        return True

    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:
        """A key whose action is not allowed now says why instead of doing nothing."""
        if isinstance(action, str) and default_namespace in (None, self):
            name = action.split("(", 1)[0].strip()
            if name in ("halt", "cancel_all", "close_all") and (
                isinstance(self.screen, OverrideReason) or getattr(self.focused, "id", None) == "market-filter"
            ):
                return False  # the letter is typed into the reason or the filter; Esc first, then the kill switch
            if name in DESCRIPTION:
                why = self.why_not(name)
                if why and not (name == "resume" and self._overridable()):
                    title = next((b.description for b in BINDINGS if b.id == name), name)
                    if name in KILL_KEYS and not self.link.owns_engine:  # the kill switch not sent: said in red
                        self.notify(f"NOT SENT: {why}", title=title, severity="error", timeout=15)
                    else:
                        self.notify(f"Not now: {why}", title=title, severity="warning")
                    return True
        return await super().run_action(action, default_namespace, namespaces)

    def _overridable(self) -> bool:
        """A resume the monitors refuse can still be asked for: its second question offers the override."""
        if not (self.started.is_set() and self.link.up):
            return False
        from engine.kernel.events import TradingState  # loaded by then (the engine's start); not before the frame

        return self.view.trading_state != TradingState.ACTIVE and self.view.resume_refused is not None

    def help_entries(self) -> list[tuple[str, str, str, str | None]]:
        keymap = dict(self.settings.keys)
        described = {**DESCRIPTION, **({} if self.link.owns_engine else {"quit": DETACH})}
        return [
            (keymap.get(b.id, b.key_display or b.key), b.id, described.get(b.id, b.description), self.why_not(b.id))
            for b in BINDINGS
            if b.id and (b.id != "next_engine" or self.link.several)
        ]
