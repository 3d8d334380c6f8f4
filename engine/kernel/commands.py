"""Commands: small immutable records that every actor submits to the one ``Engine.execute``.

An operator's key, the command palette, the CLI, a monitor, a strategy and a stop-loss all build one of these
and get a ``CommandResult`` back; each leaves the same audit record (who, why, the values, result, duration).
``SPECS`` is the one registry of what an operator can ask for: the CLI and the TUI's palette are built from it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, ClassVar

from engine.kernel.events import CommandAudited


class Permit(str, enum.Enum):
    """What a command needs the trading state to allow (the table is in ``engine.trading.state``)."""

    ENTRY = "new entries"  # an order that opens or grows a position
    REDUCE = "reducing orders"  # an order that only shrinks a position (a strategy exit, a stop-loss)
    CANCEL = "cancels"
    CLOSE = "close-all"  # the kill switch flattening positions at market
    PROTECT = "protective stops"  # a held position's stop at the venue: it only ever sells what is held
    ALWAYS = "anything"  # state changes (their own table decides), reconnect, strategy switches


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to a command: whether it was done, a sentence for the operator, and figures for scripts."""

    ok: bool
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Command:
    """Base of everything an actor may ask of the engine.

    ``actor`` says who asked (``operator:key``, ``operator:cli alice``, ``monitor:<code>``,
    ``strategy:<name>``, ``stop:<symbol>``); ``values`` are the readings that made it ask (a monitor's).
    """

    name: ClassVar[str] = "command"
    permit: ClassVar[Permit] = Permit.ALWAYS
    kill_switch: ClassVar[bool] = False  # a tier of the kill switch: never held back by breaker or rate limits

    actor: str = "operator"
    reason: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    def args(self) -> dict[str, Any]:
        """The command's own fields (without actor, reason and values), for the audit record."""
        skip = {"actor", "reason", "values"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


@dataclass(frozen=True, slots=True)
class Halt(Command):
    """Kill switch tier 1: no new orders from anyone, at once; latched until an operator resumes."""

    name: ClassVar[str] = "halt"
    kill_switch: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class CancelAll(Command):
    """Kill switch tier 2: halt, then cancel every open order at the venue (every symbol) and check. The
    protective stops of the positions still held are kept (they only reduce risk) unless ``include_stops``."""

    name: ClassVar[str] = "cancel-all"
    permit: ClassVar[Permit] = Permit.CANCEL
    kill_switch: ClassVar[bool] = True

    include_stops: bool = False


@dataclass(frozen=True, slots=True)
class CloseAll(Command):
    """Kill switch tier 3: halt, cancel every order, sell every position at market, verify only dust is left."""

    name: ClassVar[str] = "close-all"
    permit: ClassVar[Permit] = Permit.CLOSE
    kill_switch: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class ClosePosition(Command):
    """Cancel the orders of one symbol and sell its position at market (the operator's flatten of one)."""

    name: ClassVar[str] = "close"
    permit: ClassVar[Permit] = Permit.CLOSE
    kill_switch: ClassVar[bool] = True

    symbol: str = ""


@dataclass(frozen=True, slots=True)
class ExitPosition(Command):
    """A strategy's exit or a stop-loss: sell the whole position at market, a reducing order like any other."""

    name: ClassVar[str] = "exit"
    permit: ClassVar[Permit] = Permit.REDUCE

    symbol: str = ""


@dataclass(frozen=True, slots=True)
class ProtectPosition(Command):
    """Make the venue's protective stop of one symbol match the position held (``engine:stops``): place it, amend
    it (cancel and replace) when the size or the stop moved, remove it once the position is gone."""

    name: ClassVar[str] = "protect"
    permit: ClassVar[Permit] = Permit.PROTECT

    symbol: str = ""


@dataclass(frozen=True, slots=True)
class Resume(Command):
    """Clear a halt or reduce-only and return to ACTIVE (only an operator leaves HALTED).

    ``override``: an operator resumes past the monitors that still refuse it (a condition they judge still holds,
    e.g. a market not calm yet by the flash-crash rule), with a stated ``reason``; it is audited as an override
    (its ``values`` say ``override: true``), alerted (``RESUME_OVERRIDE``) and recorded with the incident."""

    name: ClassVar[str] = "resume"

    override: bool = False

    def __post_init__(self) -> None:
        if self.override and not self.values.get("override"):
            # The audit record's values say it was an override, whoever built the command.
            object.__setattr__(self, "values", {**self.values, "override": True})


@dataclass(frozen=True, slots=True)
class ReduceOnly(Command):
    """Only orders that shrink a position may go out (runbook 002: RISK_REDUCE_ONLY_MODE)."""

    name: ClassVar[str] = "reduce-only"


@dataclass(frozen=True, slots=True)
class Reconnect(Command):
    """Close and reopen the streams and the REST session, reload markets, reconcile; report before and after."""

    name: ClassVar[str] = "reconnect"


@dataclass(frozen=True, slots=True)
class Reconcile(Command):
    """Compare orders, fills, balances and holdings with the venue now; ``adopt`` takes the venue's amounts."""

    name: ClassVar[str] = "reconcile"

    adopt: bool = False


@dataclass(frozen=True, slots=True)
class Ack(Command):
    """Acknowledge alerts by id, or every unacknowledged one (``every``); who acknowledged is stored."""

    name: ClassVar[str] = "ack"

    ids: tuple[int, ...] = ()
    every: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot(Command):
    """Write a snapshot archive of the engine's whole state now (secrets left out)."""

    name: ClassVar[str] = "snapshot"


@dataclass(frozen=True, slots=True)
class PlaceOrder(Command):
    """One order; a buy needs ``stop_loss`` while ``[risk] require_stop_loss`` is on. A buy's ``take_profit`` rests
    with its stop as one OCO at the venue once it fills."""

    name: ClassVar[str] = "order"

    symbol: str = ""
    side: str = "buy"
    type: str = "limit"
    amount: Decimal = Decimal(0)
    price: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None

    @property
    def permit(self) -> Permit:  # type: ignore[override]
        # Spot: a buy opens or grows a position, a sell only shrinks one.
        return Permit.ENTRY if self.side == "buy" else Permit.REDUCE


@dataclass(frozen=True, slots=True)
class CancelOrder(Command):
    """Cancel one order by its client id."""

    name: ClassVar[str] = "cancel"
    permit: ClassVar[Permit] = Permit.CANCEL

    client_id: str = ""


@dataclass(frozen=True, slots=True)
class SetStrategy(Command):
    """Enable or disable a strategy by name."""

    name: ClassVar[str] = "strategy"

    strategy: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class SetMode(Command):
    """Switch between sending orders (the mode the engine started in) and ``dry-run`` (decide and log, send
    nothing). Only those two: going live takes a restart with --confirm-live (and the go/no-go gate)."""

    name: ClassVar[str] = "mode"

    mode: str = "dry-run"


@dataclass(frozen=True, slots=True)
class RunPreflight(Command):
    """Run the go/no-go checklist now (with a smoke trade on a paper or testnet venue); the details are the
    checklist with every check's evidence."""

    name: ClassVar[str] = "preflight"


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One thing an operator can ask for, as the CLI and the TUI offer it."""

    name: str  # the CLI's subcommand
    command: type[Command]
    title: str  # the palette's and the footer's words
    help: str
    action: str | None = None  # the TUI action (and binding id) that runs it, if it has a key
    emergency: bool = False  # works with no engine running, on the venue directly


SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "halt", Halt, "Halt", "halt: no new orders from anyone (latched; works with no engine running)", action="halt"
    ),
    CommandSpec(
        "cancel-all",
        CancelAll,
        "Cancel all",
        "halt, then cancel every open order at the venue (the positions' protective stops are kept)",
        action="cancel_all",
        emergency=True,
    ),
    CommandSpec(
        "close-all",
        CloseAll,
        "Close all",
        "halt, cancel every order, sell every position at market; verify only dust is left",
        action="close_all",
        emergency=True,
    ),
    CommandSpec("close", ClosePosition, "Close position", "cancel one symbol's orders and sell its position"),
    CommandSpec(
        "reconnect",
        Reconnect,
        "Reconnect",
        "reopen streams and REST session, reload markets, reconcile",
        action="reconnect",
    ),
    CommandSpec(
        "reconcile",
        Reconcile,
        "Reconcile",
        "compare orders, fills and holdings with the venue now; print the diff and what was adopted",
    ),
    CommandSpec("resume", Resume, "Resume", "back to ACTIVE (works with no engine running)", action="resume"),
    CommandSpec(
        "reduce-only", ReduceOnly, "Reduce only", "only orders that shrink a position from now on", action="reduce_only"
    ),
    CommandSpec(
        "ack",
        Ack,
        "Acknowledge all alerts",
        "acknowledge alerts (by id, or all): stops their escalation",
        action="ack_all",
    ),
    CommandSpec("snapshot", Snapshot, "Snapshot", "write a snapshot archive of the whole state now", action="snapshot"),
    CommandSpec("order", PlaceOrder, "Order", "buy or sell through the same risk checks as any order"),
    CommandSpec("strategy", SetStrategy, "Strategy", "enable or disable a strategy by name"),
    CommandSpec(
        "mode",
        SetMode,
        "Mode",
        "switch to dry-run (decide and log, send nothing) or back to the mode the engine started in",
        action="mode",
    ),
)
BY_NAME: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (
        Halt,
        CancelAll,
        CloseAll,
        ClosePosition,
        ExitPosition,
        ProtectPosition,
        Resume,
        ReduceOnly,
        Reconnect,
        Reconcile,
        Ack,
        Snapshot,
        PlaceOrder,
        CancelOrder,
        SetStrategy,
        SetMode,
        RunPreflight,
    )
}


def audit_record(
    command: Command, result: CommandResult, started: float, args: Mapping[str, Any] | None = None
) -> CommandAudited:
    """The one audit record of a command carried out, wherever it ran (the engine's ``execute`` or the no-engine
    emergency path): who, why, the values behind it, the result and how long since ``started``
    (``time.perf_counter()``)."""
    return CommandAudited(
        command=command.name,
        actor=command.actor,
        reason=command.reason,
        args=command.args() if args is None else args,
        values=dict(command.values),
        ok=result.ok,
        result=result.message,
        duration_ms=(time.perf_counter() - started) * 1000,
        kill_switch=command.kill_switch,
    )
