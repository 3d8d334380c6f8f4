"""The keys that open the other screens and the order form (each screen's module loaded at the first one opened,
decision BEN-10), and those that follow several engines (the next one, one from the palette, halt them all).

A part of ``CockpitApp`` (``cockpit.app``), which holds the link and sends the commands (``cockpit.command_keys``)."""

from __future__ import annotations

from textual import work

from cockpit.bindings import ACTOR
from cockpit.questions import Confirm
from engine.kernel.text import inert


class ScreenKeys:
    """``CockpitApp``'s keys that open a screen or a form, and those of a cockpit watching several engines."""

    # ------------------------------------------------------------ screens and forms

    def _selected_order(self) -> str | None:
        from widgets.keyed_table import KeyedTable  # the panels' tables load after the first frame (BEN-14)

        tables = self.main_screen.query("#orders").results(KeyedTable)
        key = next((t.selected_key for t in tables), None)
        return key if key and self.view.order(key) else None

    def action_filter_markets(self) -> None:
        """`/`: filter the markets panel by name."""
        if self.screen is self.main_screen:
            self.main_screen.open_filter()

    # ------------------------------------------------------------ several engines

    @work(group="select-engine")
    async def action_next_engine(self) -> None:
        """Show the next engine of those this cockpit watches."""
        if self.link.several:
            await self.link.select(self.link.index + 1)

    @work(group="select-engine")
    async def action_select_engine(self, index: int) -> None:
        """Show engine ``index`` (0-based; from the palette)."""
        if self.link.several and not await self.link.select(index):
            self.notify(f"Already showing {self.link.describe()}.", title="Engine")

    @work(group="commands", exclusive=False)
    async def action_halt_all(self) -> None:
        """Halt every engine this cockpit watches, after one question; each engine's answer told."""
        from engine.kernel.commands import Halt

        fleet = self.link
        if not fleet.several:
            await self.action_halt()
            return
        states = ", ".join(f"{line.name} {line.state}" for line in fleet.lines())
        if not await self.push_screen_wait(Confirm(f"HALT ALL {len(fleet.links)} ENGINES? ({states})")):
            self.notify("Nothing halted.", title="Halt all engines")
            return
        answers = await fleet.halt_all(lambda: Halt(actor=ACTOR, reason="palette: halt all engines"))
        lines = [
            f"{inert(a.name, limit=40)}: {'' if a.ok else 'FAILED: ' if a.sent else ''}{a.message}" for a in answers
        ]
        failed = [a for a in answers if not a.ok]
        head = f"{len(answers) - len(failed)} of {len(answers)} engines halted"
        self.notify(
            f"{head}: " + " · ".join(lines),
            title="Halt all engines",
            severity="error" if failed else "warning",
            timeout=20,
        )

    def action_help(self) -> None:
        from cockpit.screens import Help

        self.push_screen(Help(self.help_entries))

    def action_checklist(self) -> None:
        from cockpit.screens import ChecklistScreen

        self.push_screen(ChecklistScreen())

    @work(group="commands")
    async def action_run_checklist(self) -> None:
        """Run the go/no-go checklist now, after one question (on a paper venue its smoke trade places orders)."""
        from cockpit.screens import ChecklistScreen
        from engine.kernel.commands import RunPreflight

        if not await self.ask(
            "Run the go/no-go checklist now? On a paper or testnet venue its smoke trade places "
            "a small market order and a far limit order (then cancels it)."
        ):
            return
        self.notify("Running the go/no-go checklist…", title="Go/no-go")
        await self._run(RunPreflight(actor=ACTOR, reason="checklist screen"), "Go/no-go")
        if isinstance(self.screen, ChecklistScreen):
            self.screen.action_reload()

    def action_fills(self) -> None:
        from cockpit.screens import Fills

        self.push_screen(Fills())

    def action_alert_log(self) -> None:
        from cockpit.screens import AlertLog

        self.push_screen(AlertLog())

    def action_audit_log(self) -> None:
        from cockpit.screens import AuditLog

        self.push_screen(AuditLog())

    def action_strategies(self) -> None:
        from cockpit.screens import Strategies

        self.push_screen(Strategies())

    def action_incidents(self) -> None:
        from cockpit.screens import Incidents

        self.push_screen(Incidents())

    def action_reconciliation(self) -> None:
        from cockpit.screens import Reconciliation

        self.push_screen(Reconciliation())

    def action_order_history(self) -> None:
        from cockpit.screens import OrderHistory

        client_id = self._selected_order()
        if client_id is not None:
            self.push_screen(OrderHistory(client_id))

    @work(group="commands")
    async def action_reconcile(self, adopt: bool) -> None:
        """Reconcile now (from the reconciliation screen); adopting the venue's amounts asks first."""
        from cockpit.screens import Reconciliation
        from engine.kernel.commands import Reconcile

        if adopt and not await self.ask(
            "Adopt the venue's amounts as the engine's? The differences kept for you become the engine's holdings."
        ):
            return
        await self._run(Reconcile(actor=ACTOR, reason="reconciliation screen", adopt=adopt), "Reconcile")
        if isinstance(self.screen, Reconciliation):
            self.screen.action_reload()

    @work(group="commands")
    async def action_new_order(self) -> None:
        """The order form; what it sends goes through the same risk checks as any order."""
        from cockpit.screens import OrderForm
        from engine.kernel.commands import PlaceOrder

        order = await self.push_screen_wait(OrderForm(self.view.symbols or tuple(self.main_screen.config.symbols)))
        if order is None:
            return
        kind = "limit" if order["price"] is not None else "market"
        await self._run(
            PlaceOrder(
                actor=ACTOR,
                reason="order form",
                symbol=order["symbol"],
                side=order["side"],
                type=kind,
                amount=order["amount"],
                price=order["price"],
                stop_loss=order["stop_loss"],
            ),
            "Order",
        )
