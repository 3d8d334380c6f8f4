"""Commands from other shells and scripts (``cockpit halt`` ...): to the running engine's socket, or through the store.

With an engine running, the CLI sends the command to its service API on ``DATA_DIR/cockpit.sock`` (the engine names
the caller from the socket's credentials). While that engine is still starting (no socket yet), the CLI writes a row
to ``commands``; the running engine polls for pending rows, executes each through the same ``execute`` as a key
press, and writes the answer back for the CLI to print (only ``operator:cli`` rows: the inbox is the command
line's). With no engine running, a halt, resume or reduce-only goes through the same transition table straight
into the latched state, so the next start obeys it; cancel-all and close-all act on the venue directly
(``engine.core.emergency``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.api import beacon, signals
from engine.api.local import user_name
from engine.kernel.commands import BY_NAME, Command, CommandResult
from engine.kernel.errors import os_reason
from engine.kernel.events import CommandAudited, TradingState, TradingStateChanged, utcnow
from engine.kernel.tasks import Periodic
from engine.ops.incidents import Incidents, store_parts, write_snapshot
from engine.store.datadir import DataDirBusy, DataDirLock, engine_pid
from engine.store.db import DB_NAME, REQUEUED, Store
from engine.trading.state import IllegalTransition, check_transition

log = logging.getLogger(__name__)

# Commands that change only the latched state, which the store can hold without an engine running.
STATE_TARGETS = {"halt": TradingState.HALTED, "resume": TradingState.ACTIVE, "reduce-only": TradingState.REDUCE_ONLY}
# Commands the store can carry out alone when no engine runs.
STORE_ONLY = ("ack", "snapshot")
POLL_S = 0.2
# The kill switch's commands run however late they are picked up: late is better than never for a halt.
NEVER_EXPIRE = ("halt", "cancel-all", "close-all")
# A command nobody picked up within this many seconds is dropped, not run late: a `resume` queued while the
# engine was down must not fire after a fresh halt.
COMMAND_TTL_S = 60.0


def cli_actor() -> str:
    """``operator:cli alice``: who typed the command, for the audit trail, from the process's own user id (not the
    environment's LOGNAME); the same name the engine's socket gives a command line it answers."""
    return f"operator:cli {user_name(os.getuid())}"


def build_command(name: str, actor: str, reason: str, args: dict[str, Any]) -> Command:
    """A command record from its CLI name and JSON arguments; raise ValueError naming what is wrong."""
    cls = BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"unknown command {name!r}")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in args.items():
        if key not in known or key in ("actor", "reason"):
            raise ValueError(f"{name} takes no argument {key!r}")
        if value is not None and "Decimal" in str(known[key].type):
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise ValueError(f"{key} must be a number, not {value!r}") from None
        kwargs[key] = value
    return cls(actor=actor, reason=reason, **kwargs)


async def serve_commands(
    store: Store,
    execute: Callable[[Command], Awaitable[CommandResult]],
    on_failure: Callable[[str, BaseException], None],
    spawn: Callable[[str, Coroutine[Any, Any, Any]], Any],
) -> None:
    """Run pending commands from the store for ever (the engine owns this task).

    Each command is claimed (marked running) before it runs, so it runs at most once whatever happens, and runs
    as its own task, so a halt is never stuck behind a slow reconcile. A kill-switch command never expires."""

    async def run(row: dict[str, Any], command: Command) -> None:
        try:
            result = await execute(command)
        except asyncio.CancelledError:  # the engine is stopping mid-command
            if row["command"] in NEVER_EXPIRE:
                store.requeue_command(row["id"])  # the kill switch runs again at the next start
            else:
                store.finish_command(row["id"], False, "the engine stopped while running it; see `cockpit audit`")
            raise
        except Exception as exc:  # execute answers every refusal itself; this is a bug, reported, never rerun
            log.error("command %s failed", row["command"], exc_info=exc)
            store.finish_command(row["id"], False, f"failed: {type(exc).__name__}: {exc}")
            return
        store.finish_command(row["id"], result.ok, result.message, result.details)

    def round_() -> None:
        for row in store.pending_commands():
            age = (utcnow() - datetime.fromisoformat(row["ts"])).total_seconds()
            if age > COMMAND_TTL_S and row["command"] not in NEVER_EXPIRE:
                store.finish_command(row["id"], False, f"expired: not picked up within {COMMAND_TTL_S:g}s")
                log.warning("command %s from %s expired unrun (%.0fs old)", row["command"], row["actor"], age)
                continue
            args = json.loads(row.get("args") or "{}")
            if not str(row["actor"]).startswith("operator:cli ") and row.get("result") != REQUEUED:
                # The inbox carries what the command line queued; an actor it names otherwise (a monitor, a
                # strategy, a remote token) was written by hand, and is not taken for who it claims to be.
                store.finish_command(
                    row["id"],
                    False,
                    f"refused: the store's inbox carries `operator:cli` commands, not {row['actor']!r}",
                )
                log.warning("inbox row %s refused: actor %r is not the command line's", row["id"], row["actor"])
                continue
            try:
                command = build_command(row["command"], row["actor"], row["reason"], args)
            except ValueError as exc:
                store.finish_command(row["id"], False, f"bad command: {exc}")
                continue
            if not store.claim_command(row["id"]):
                continue
            log.info("command %s %s from %s: %s", row["command"], args, row["actor"], row["reason"])
            spawn(f"command {row['id']} {row['command']}", run(row, command))

    await Periodic("commands from other shells", round_, POLL_S, on_failure=on_failure).run()


def send(
    data_dir: Path,
    command: str,
    reason: str,
    timeout: float,
    args: dict[str, Any] | None = None,
    actor: str | None = None,
) -> tuple[bool, str]:
    """Ask the engine on ``data_dir`` to run ``command``; return (ok, what happened) for the operator."""
    ok, message, _ = send_detailed(data_dir, command, reason, timeout, args, actor)
    return ok, message


def send_detailed(
    data_dir: Path,
    command: str,
    reason: str,
    timeout: float,
    args: dict[str, Any] | None = None,
    actor: str | None = None,
    *,
    via_socket: bool = True,
) -> tuple[bool, str, dict[str, Any] | None]:
    """As ``send``, with the figures the engine returned (or None when it never answered). ``via_socket``: False
    when the caller already found no engine answering on the socket (the command line asks there first)."""
    data_dir = Path(data_dir).resolve()
    if not (data_dir / DB_NAME).exists():
        # A mistyped --data-dir must not "succeed" on an empty directory while the real engine trades on.
        return (
            False,
            (
                f"no cockpit store at {data_dir / DB_NAME}: no engine has run there. Pass the engine's "
                "--data-dir (see `cockpit status --data-dir DIR`)."
            ),
            None,
        )
    actor = actor or cli_actor()
    try:
        build_command(command, actor, reason, args or {})
    except ValueError as exc:
        return False, str(exc), None
    store = Store.in_dir(data_dir)
    try:
        lock = DataDirLock(data_dir)
        try:
            lock.acquire()  # no engine can start while the store is changed without one
        except DataDirBusy:
            pass  # an engine runs: queue the command for it
        else:
            try:
                if command in STORE_ONLY:
                    start = time.perf_counter()
                    ok, message, details = store_only(store, data_dir, command, actor, reason, args or {})
                    store.handle(
                        CommandAudited(
                            command=command,
                            actor=actor,
                            reason=reason,
                            args=dict(args or {}),
                            values={},
                            ok=ok,
                            result=message,
                            duration_ms=(time.perf_counter() - start) * 1000,
                        )
                    )
                    return ok, message, details
                if command == "resume" and (args or {}).get("override"):
                    # An override weighs every monitor's reading now: only a running engine has them.
                    return (
                        False,
                        f"no engine is running on {data_dir}: a resume with --override needs one, to read every "
                        "monitor again. Start cockpit (it comes back HALTED) and override there.",
                        None,
                    )
                ok, message = without_engine(store, data_dir, command, actor, reason)
                return ok, message, None
            except (sqlite3.Error, OSError) as exc:
                return (
                    False,
                    (
                        f"the store cannot be written ({store_reason(exc)}): {command} could not be recorded. No "
                        f"engine runs on {data_dir}, so nothing is trading; free space there and run it again"
                    ),
                    None,
                )
            finally:
                lock.release()
        # An engine runs: its socket answers at once, and names the caller from the kernel's credentials. An engine
        # still starting (its socket not served yet) gets the command through the store's inbox instead.
        from engine.api import client

        answer = client.command_if_running(data_dir, command, args, reason, timeout) if via_socket else None
        if answer is not None:
            return answer
        try:
            command_id = store.submit_command(command, actor, reason, args)
        except (sqlite3.Error, OSError) as exc:  # a full disk: the kill switch goes by signal instead
            return (*by_signal(data_dir, command, timeout, store_reason(exc)), None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = store.command(command_id)
            if row["status"] not in ("pending", "running"):
                return row["status"] == "done", row["result"], json.loads(row.get("details") or "null")
            time.sleep(POLL_S / 2)
        if engine_pid(data_dir) is None:
            return (
                False,
                (
                    f"the engine stopped before it answered (command id {command_id}); "
                    + (
                        "it runs again at the next start"
                        if command in NEVER_EXPIRE
                        else "check `cockpit audit` and `cockpit status`"
                    )
                ),
                None,
            )
        if store.command(command_id)["status"] == "running":
            return (
                False,
                (
                    f"the engine is still carrying out the command (id {command_id}) after {timeout:g}s; "
                    "see `cockpit audit` for its result"
                ),
                None,
            )
        return (
            False,
            (
                f"no answer from the engine within {timeout:g}s; the command stays queued "
                f"(id {command_id}) and runs when the engine gets to it"
            ),
            None,
        )
    finally:
        store.close()


def store_reason(exc: BaseException) -> str:
    """Why the store refused a write, in the operator's words."""
    return os_reason(exc) if isinstance(exc, OSError) else str(exc)


def by_signal(data_dir: Path, command: str, timeout: float, why: str) -> tuple[bool, str]:
    """The store cannot carry ``command``: send the running engine its kill-switch signal and wait for its beacon
    to show HALTED. Anything but the kill switch waits until the store can be written."""
    running = engine_pid(data_dir)
    if running is None:
        return False, f"the store cannot be written ({why}) and no engine runs: nothing is trading"
    if not running.isdigit():
        return False, f"the store cannot be written ({why}) and the engine's pid is unknown: stop it with its terminal"
    pid = int(running)
    problem = signals.send(pid, command)
    if problem is not None:
        return False, f"the store cannot be written ({why}): {problem}; free space in {data_dir}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = beacon.read(data_dir)
        if seen and seen.get("pid") == pid and seen.get("state") == TradingState.HALTED.value:
            tail = "" if command == "halt" else f"; it is carrying out {command} (see `cockpit status`)"
            return True, (
                f"HALTED by signal: the store cannot be written ({why}), so {command} went to the engine "
                f"(pid {pid}) as a signal{tail}; the record waits until the store writes again"
            )
        time.sleep(POLL_S / 2)
    return (
        False,
        f"sent {command} to the engine (pid {pid}) by signal; its beacon did not show HALTED within {timeout:g}s",
    )


def store_only(
    store: Store, data_dir: Path, command: str, actor: str, reason: str, args: dict[str, Any]
) -> tuple[bool, str, dict[str, Any] | None]:
    """Acknowledge alerts, or write a snapshot from what the store holds, with no engine running."""
    from engine.kernel.config import AlertsConfig
    from engine.ops.alerts import AlertBook

    if command == "ack":
        book = AlertBook(AlertsConfig(), store.handle)
        book.restore(store.max_alert_id(), store.unacknowledged_alerts())
        ids = None if args.get("every") else [int(i) for i in args.get("ids", [])]
        done = book.ack(ids, actor)
        return (
            bool(done) or ids is None,
            f"acknowledged {len(done)} alert(s) (no engine running)",
            {"acknowledged": [a.id for a in done]},
        )
    parts = store_parts(store)
    try:
        path = write_snapshot(data_dir, parts, f"{reason} (from the store; no engine running)")
    except OSError as exc:
        return False, f"snapshot not written: {exc.strerror or exc}", None
    return True, str(path), {"path": str(path)}


def without_engine(store: Store, data_dir: Path, command: str, actor: str, reason: str) -> tuple[bool, str]:
    """A state change latched in the store through the same transition table, and audited."""
    if command not in STATE_TARGETS:
        return False, (
            f"no engine is running on {data_dir}: `{command}` needs one. Start cockpit "
            "(it restores its orders and state) and try again."
        )
    start = time.perf_counter()
    target = STATE_TARGETS[command]
    previous, _ = store.trading_state()
    incidents = None
    blocking = (
        [
            f"{m['code']}: {m['value']} (limit {m['threshold']})"
            for m in store.load_json("monitors") or []
            if m.get("blocks_resume") and m.get("status") == "CRIT"
        ]
        if target != TradingState.HALTED
        else []
    )
    try:
        changed = check_transition(previous, target, actor)
    except IllegalTransition as exc:
        ok, message = False, str(exc)
    else:
        ok = not blocking
        if blocking:
            changed = False
            message = (
                "resume refused: when the engine last looked, the condition that tripped it still held: "
                + "; ".join(blocking)
                + ". Start cockpit; it reads every monitor again before resuming."
            )
        if changed:
            change = TradingStateChanged(previous, target, actor, reason)
            incidents = Incidents(data_dir, store.handle, lambda: store_parts(store), spawn=None)
            last = store.incidents(limit=1)
            incidents.restore(
                next((r for r in last if not r["recovered_at"]), None),
                max((r["id"] for r in last), default=0),
                previous,
                None,
            )
            store.handle(change)
            incidents.on_event(change)  # a halt opens an incident (and its snapshot), a resume closes one
        if ok:
            message = f"{target.value} (no engine running on {data_dir}: the next start comes back {target.value})"
    audit = CommandAudited(
        command=command,
        actor=actor,
        reason=reason,
        args={},
        values={},
        ok=ok,
        result=message,
        duration_ms=(time.perf_counter() - start) * 1000,
        kill_switch=command == "halt",
    )
    store.handle(audit)
    if incidents is not None:
        incidents.on_event(audit)
    return ok, message
