"""The command handlers: what each command does once ``Engine.execute`` has checked that the trading state
permits it. One table maps each command type to its handler; every handler returns a ``CommandResult`` and leaves
the audit record to ``execute``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from engine.gate.checklist import Checklist
from engine.gate.preflight import Preflight, StreamProbe
from engine.gate.smoke import SmokeTrade
from engine.kernel.commands import (
    Ack,
    CancelAll,
    CancelOrder,
    CloseAll,
    ClosePosition,
    Command,
    CommandResult,
    ExitPosition,
    Halt,
    PlaceOrder,
    ProtectPosition,
    Reconcile,
    Reconnect,
    ReduceOnly,
    Resume,
    RunPreflight,
    SetMode,
    SetStrategy,
    Snapshot,
)
from engine.kernel.events import ChecklistCompleted, ModeChanged, Persisted, Severity, TradingState
from engine.ops.incidents import write_snapshot
from engine.safety.killswitch import trip_code
from engine.trading.state import is_operator
from engine.venue import errors as vx
from engine.venue.adapter import Venue

if TYPE_CHECKING:
    from engine.core.engine import Engine

# How long a reconnect waits for every stream's first event before it reports the state after.
RECONNECT_SETTLE_S = 5.0
RECONNECT_TIMEOUT_S = 20.0
# A strategy switched on or off, by whether it is now enabled (the catalogue test reads this table: docs/alerts.md).
STRATEGY_CODES = {True: "STRATEGY_ENABLED", False: "STRATEGY_DISABLED"}

Handler = Callable[[Any], Awaitable[CommandResult]]


class CommandHandlers:
    """The handlers of one engine, and the table of which command each one carries out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.table: dict[type[Command], Handler] = {
            Halt: self._halt,
            Resume: self._resume,
            ReduceOnly: self._reduce_only,
            CancelAll: self._kill,
            CloseAll: self._kill,
            ClosePosition: self._kill,
            Reconnect: self._reconnect,
            Reconcile: self._reconcile,
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            ExitPosition: self._exit,
            ProtectPosition: self._protect,
            SetStrategy: self._set_strategy,
            Ack: self._ack,
            Snapshot: self._snapshot,
            SetMode: self._set_mode,
            RunPreflight: self._preflight,
        }

    # ------------------------------------------------------------ the go/no-go checklist

    async def preflight(self, actor: str = "operator", *, with_orders: bool = True) -> Checklist:
        """Run the go/no-go checklist on this engine's venue, store and configuration (and, on a paper or testnet
        venue and ``with_orders``, a smoke trade through ``execute``); publish and return it. The TUI's checklist
        reads this; the engine runs it without orders at start and after every reconnect."""
        venue = self.engine.link.venue
        smoke = None
        if with_orders and self.engine.settings.preflight.smoke_trade and self.engine.mode != "live":
            smoke = SmokeTrade(
                self.engine.execute,
                self.engine.tracker,
                self.engine.portfolio,
                self.engine.link,
                self.engine.state.refusal,
                self.engine.symbols[0],
                self.engine.mode,
                self.engine.sync.last_event.get,
            )
        streams = StreamProbe(
            self.engine.sync.last_event.get,
            lambda: self.engine.link.venue is not None and self.engine.link.venue.user_stream_connected(),
        )
        checklist = await Preflight(
            self.engine.settings,
            venue=venue if venue is not None and venue.markets_loaded else None,
            venue_label=self.engine.venue_label,
            store=self.engine.store,
            confirm_live=self.engine.confirm_live,
            actor=actor,
            streams=streams,
            smoke=smoke,
            refusal=self.engine.execution.check,
            venue_problem="" if self.engine.connected else "the venue is not connected yet",
            mode=self.engine.mode,
            deadman=self.engine.deadman.state if self.engine.deadman is not None else None,
        ).run()
        self.engine.bus.publish(ChecklistCompleted(checklist.to_dict()))
        return checklist

    async def _preflight(self, c: RunPreflight) -> CommandResult:
        checklist = await self.preflight(c.actor)
        failures = "; ".join(f"FAIL {x.title}: {x.detail}" for x in checklist.failures())
        return CommandResult(True, checklist.line() + (f" ({failures})" if failures else ""), checklist.to_dict())

    async def _halt(self, c: Halt) -> CommandResult:
        self.engine.state.tripped()
        return self.engine.state.move(
            TradingState.HALTED, c.actor, c.reason or "halt requested", trip_code(c.actor), c.values
        )

    async def _resume(self, c: Resume) -> CommandResult:
        if c.override:
            return await self._resume_override(c)
        refused = self.engine.resume_refusal(c.actor)
        if refused is not None:
            return refused
        result = self.engine.state.move(TradingState.ACTIVE, c.actor, c.reason or "resume requested")
        if result.ok:
            self.engine.tiers.resumed()
        return result

    async def _resume_override(self, c: Resume) -> CommandResult:
        """An operator's resume past the monitors that still refuse it, with a stated reason: alerted
        (``RESUME_OVERRIDE``, what was overridden in its values), and the state change carries the override for
        the incident. A store that cannot be written still refuses it (nothing could be recorded)."""
        if not is_operator(c.actor):
            return CommandResult(False, f"only an operator may override the monitors (asked by {c.actor})")
        reason = c.reason.strip()
        if not reason:
            return CommandResult(
                False, "an override needs a reason: say why resuming is safe although a monitor refuses"
            )
        failure = self.engine.store_guard.failure
        if failure is not None:
            return CommandResult(
                False,
                f"resume refused: the store cannot be written ({failure}); free space in the data directory first",
            )
        if self.engine.trading_state == TradingState.ACTIVE:
            return CommandResult(True, "already ACTIVE (nothing to override)")
        overridden = self.engine.monitors.overridden()
        values = {"override": True, "override_reason": reason, "overridden": overridden, "by": c.actor}
        self.engine.alert(
            Severity.WARN,
            "RESUME_OVERRIDE",
            f"{c.actor} resumed past the monitors: {reason}"
            + (f" (overriding: {'; '.join(overridden)})" if overridden else " (nothing was refusing it)"),
            values=values,
        )
        result = self.engine.state.move(TradingState.ACTIVE, c.actor, f"override: {reason}", "", values)
        if result.ok:
            self.engine.tiers.resumed()
            return CommandResult(True, f"{result.message} (override)", {**result.details, **values})
        return result

    async def _reduce_only(self, c: ReduceOnly) -> CommandResult:
        return self.engine.state.move(
            TradingState.REDUCE_ONLY, c.actor, c.reason or "reduce-only requested", trip_code(c.actor), c.values
        )

    async def _place(self, c: PlaceOrder) -> CommandResult:
        execution = self.engine.execution
        # Spot: a buy is an entry; perps: an order the position does not absorb (a sell that opens a short too).
        entry = not execution.reduces(c.symbol, c.side, c.amount) if execution.portfolio.usdm else c.side == "buy"
        if entry and (held := self.engine.monitors.entry_hold(c.symbol)) is not None:
            # A per-symbol REDUCE_ONLY while a flash crash on it is being confirmed: not a halt.
            return CommandResult(False, f"not sent: {held} (monitor:flash_crash)")
        return await self.engine.execution.place(
            c.symbol, c.side, c.type, c.amount, c.price, c.actor, stop_loss=c.stop_loss, take_profit=c.take_profit
        )

    async def _cancel(self, c: CancelOrder) -> CommandResult:
        return await self.engine.execution.cancel(c.client_id, actor=c.actor)

    async def _exit(self, c: ExitPosition) -> CommandResult:
        return await self.engine.execution.exit_position(c.symbol, c.actor, c.reason)

    async def _protect(self, c: ProtectPosition) -> CommandResult:
        return await self.engine.venue_stops.protect(c.symbol, c.actor)

    async def _set_mode(self, c: SetMode) -> CommandResult:
        """Dry-run (decide and log, send nothing) or back to the mode the engine started in; never to another."""
        started = self.engine.settings.engine.mode
        allowed = {started, "dry-run"}
        if c.mode not in allowed:
            return CommandResult(
                False,
                f"mode {c.mode!r} is not reachable from here: this engine started in "
                f"{started!r}, so it can switch between {' and '.join(sorted(allowed))}; "
                "another mode takes a restart",
            )
        if c.mode == self.engine.mode:
            return CommandResult(True, f"already {c.mode}")
        previous, self.engine.mode = self.engine.mode, c.mode
        self.engine.execution.mode = c.mode
        self.engine.bus.publish(ModeChanged(previous, c.mode, c.actor, c.reason or "mode requested"))
        # `cockpit status` shows the mode the engine runs in now (a restart starts in the configured one again).
        self.engine.bus.publish(
            Persisted("engine", {"mode": self.engine.mode, "venue": self.engine.settings.venue.exchange})
        )
        self.engine.alert(
            Severity.WARN,
            "MODE_CHANGED",
            f"mode {previous} -> {c.mode} by {c.actor}"
            + ("; orders are decided and logged, none is sent" if c.mode == "dry-run" else "; orders are sent"),
        )
        return CommandResult(True, f"mode is now {c.mode}" + (" (nothing is sent)" if c.mode == "dry-run" else ""))

    async def _set_strategy(self, c: SetStrategy) -> CommandResult:
        error = self.engine.runner.set_enabled(c.strategy, c.enabled, c.reason or f"by {c.actor}")
        if error:
            return CommandResult(False, error)
        word = "enabled" if c.enabled else "disabled"
        self.engine.alert(Severity.INFO, STRATEGY_CODES[c.enabled], f"{c.strategy} {word} by {c.actor}")
        return CommandResult(True, f"{c.strategy} {word}")

    # ------------------------------------------------------------ kill switch

    async def _kill(self, c: CancelAll | CloseAll | ClosePosition) -> CommandResult:
        return await self.engine.tiers.run(c)

    async def _reconnect(self, c: Reconnect) -> CommandResult:
        """Close the streams and the REST session, open new ones, reload markets, reconcile; before and after."""
        if self.engine.link.venue is None or not self.engine.ready.is_set():
            return CommandResult(False, "the venue is not connected yet; the engine is still connecting")
        if self.engine.reconnecting.locked():
            return CommandResult(False, "a reconnect is already under way")
        await self.engine.reconnecting.acquire()  # released here, or by the background task that finishes connecting
        handed_over = False
        try:
            result, handed_over = await self._reconnect_now(c)
            return result
        finally:
            if not handed_over:
                self.engine.reconnecting.release()

    async def _reconnect_now(self, c: Reconnect) -> tuple[CommandResult, bool]:
        start = time.perf_counter()
        before = self.engine.sync.stream_states()
        await self.engine.sync.stop_streams()
        old = self.engine.link.venue
        assert old is not None  # _reconnect refuses before the venue is connected
        self.engine.link.venue = self.engine.make_venue()
        # Calls already on their way finish on the old client (an order in flight must get its answer); it is
        # closed once they have had their timeout.
        self.engine.tasks.spawn("close-old-venue", self._close_later(old))
        self.engine.sync.came_back()
        connecting = self.engine.tasks.spawn("reconnect connect", self._connect_again())
        try:
            refused = await asyncio.wait_for(asyncio.shield(connecting), RECONNECT_TIMEOUT_S)
        except TimeoutError:
            # Connecting goes on in the background, which now holds the reconnect lock: nothing overlaps it.
            self.engine.tasks.spawn("reconnect", self._finish_reconnect(connecting))
            return CommandResult(
                False,
                f"venue did not answer within {RECONNECT_TIMEOUT_S:g}s; still trying in the background",
                {"before": before},
            ), True
        if refused is not None:
            # The key refused (the auth monitor halts on it): said as the answer, not as a crashed task.
            return CommandResult(
                False, f"reconnect failed: the venue refused the API key ({refused}); check the key pair"
            ), False
        deadline = time.monotonic() + RECONNECT_SETTLE_S
        while time.monotonic() < deadline and any(s == "waiting" for s in self.engine.sync.stream_states().values()):
            await asyncio.sleep(0.05)
        after = self.engine.sync.stream_states()
        up = sum(1 for s in after.values() if s.startswith("up"))
        was = sum(1 for s in before.values() if s.startswith("up"))
        message = (
            f"reconnected in {time.perf_counter() - start:.1f}s; markets reloaded, orders reconciled; "
            f"streams up {was}/{len(before)} before, {up}/{len(after)} after"
        )
        self.engine.alert(
            Severity.INFO, "RECONNECTED", f"{message} (by {c.actor})", values={"before": before, "after": after}
        )
        return CommandResult(True, message, {"before": before, "after": after}), False

    async def _connect_again(self) -> str | None:
        """Connect the new venue client (streams first); the venue's refusal of the key is returned, not raised:
        a reconnect the key cannot make is an answer (``VENUE_AUTH`` is alerted by the sync), not a crash."""
        try:
            await self.engine.sync.connect(streams_first=True)
        except vx.AuthenticationError as exc:
            return f"{type(exc).__name__}: {str(exc)[:160]}"
        return None

    async def _ack(self, c: Ack) -> CommandResult:
        who = c.actor
        done = self.engine.alert_book.ack(None if c.every else c.ids, who)
        unknown = [] if c.every else [i for i in c.ids if i not in {a.id for a in done}]
        message = f"acknowledged {len(done)} alert(s)" + (f"; not open: {unknown}" if unknown else "")
        return CommandResult(not unknown or bool(done), message, {"acknowledged": [a.id for a in done]})

    async def _snapshot(self, c: Snapshot) -> CommandResult:
        try:
            path = await asyncio.to_thread(
                write_snapshot,
                self.engine.settings.engine.data_dir,
                self.engine.read.snapshot_parts(),
                c.reason or "on demand",
            )
        except OSError as exc:
            return CommandResult(False, f"snapshot not written: {exc.strerror or exc}")
        return CommandResult(True, str(path), {"path": str(path)})

    async def _reconcile(self, c: Reconcile) -> CommandResult:
        """Orders, fills, balances and holdings against the venue now; with ``adopt`` the venue's amounts are
        taken as the engine's first (the operator's answer to a kept mismatch)."""
        self.engine.link.require()
        adopted = []
        if c.adopt:
            await self.engine.execution.refresh_balances()  # adopt what the venue holds now, not a stale balance
            adopted = [d.to_dict() for d in self.engine.holdings.adopt_all()]
        report = await self.engine.sync.reconcile_all()
        if adopted:
            report = {**report, "adopted": adopted + list(report["adopted"])}
            self.engine.alert(
                Severity.WARN,
                "POSITION_ADOPTED",
                f"{len(adopted)} difference(s) adopted by {c.actor}",
                values={"adopted": adopted},
            )
        orders = report["orders"]
        message = (
            f"reconciled: {len(orders['adopted'])} order(s) adopted, {len(orders['resolved'])} resolved, "
            f"{len(orders['lost'])} lost; {report['new_fills']} new fill(s); "
            f"{len(report['differences'])} holding difference(s), {len(report['adopted'])} adopted, "
            f"{len(report['mismatch'])} kept for the operator"
        )
        return CommandResult(True, message, report)

    async def _close_later(self, venue: Venue) -> None:
        try:
            await asyncio.sleep(self.engine.settings.venue.timeout_ms / 1000 + 1)
        finally:
            await venue.close()

    async def _finish_reconnect(self, connecting: asyncio.Future[str | None]) -> None:
        try:
            await connecting
        finally:
            self.engine.reconnecting.release()
