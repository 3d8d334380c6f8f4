"""The cockpit: one full-screen main screen over an embedded engine; keys send commands, events redraw."""

from __future__ import annotations

import logging

from textual import work
from textual.app import App
from textual.binding import Binding

from cockpit.bridge import pump
from cockpit.main_screen import MainScreen, Snapshot
from cockpit.screens import Confirm
from engine.core import Engine, EngineError
from engine.datadir import DataDirBusy
from engine.events import CancelAll, Halt, Resume, TradingState

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
        self.main_screen = MainScreen(engine)

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

    async def on_unmount(self) -> None:
        await self.engine.stop()

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
        if self.engine.trading_state == TradingState.ACTIVE:
            self.notify("Already ACTIVE.", title="Resume")
            return
        if not await self.push_screen_wait(Confirm("Resume trading? New orders will be allowed again.")):
            self.notify(f"Still {self.engine.trading_state.value}.", title="Resume")
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
