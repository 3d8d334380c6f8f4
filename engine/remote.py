"""Commands from other shells and scripts (``cockpit halt`` ...), carried through the store.

The CLI writes a row to ``commands``; the running engine polls for pending rows, executes each through the
same path as a key press, and writes the answer back for the CLI to print. With no engine running, a halt or
resume is written straight into the latched trading state, so the next start obeys it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.datadir import engine_pid
from engine.events import (
    CancelAll, Command, Halt, ReduceOnly, Resume, SetStrategy, TradingState, TradingStateChanged, utcnow,
)
from engine.store import DB_NAME, Store

log = logging.getLogger(__name__)

COMMANDS: dict[str, type[Command]] = {
    "halt": Halt, "resume": Resume, "reduce-only": ReduceOnly, "cancel-all": CancelAll, "strategy": SetStrategy,
}
# Commands that change only the latched state, which the store can hold without an engine running.
STATE_TARGETS = {"halt": TradingState.HALTED, "resume": TradingState.ACTIVE, "reduce-only": TradingState.REDUCE_ONLY}
POLL_S = 0.2
# A command nobody picked up within this many seconds is dropped, not run late: a `resume` queued while the
# engine was down must not fire after a fresh halt.
COMMAND_TTL_S = 60.0


async def serve_commands(store: Store, execute) -> None:
    """Run pending commands from the store forever (the engine owns this task)."""
    while True:
        for row in store.pending_commands():
            age = (utcnow() - datetime.fromisoformat(row["ts"])).total_seconds()
            if age > COMMAND_TTL_S:
                store.finish_command(row["id"], False, f"expired: not picked up within {COMMAND_TTL_S:g}s")
                log.warning("command %s from %s expired unrun (%.0fs old)", row["command"], row["actor"], age)
                continue
            cls = COMMANDS.get(row["command"])
            if cls is None:
                store.finish_command(row["id"], False, f"unknown command {row['command']!r}")
                continue
            args = json.loads(row.get("args") or "{}")
            log.info("command %s %s from %s: %s", row["command"], args, row["actor"], row["reason"])
            try:
                command = cls(actor=row["actor"], reason=row["reason"], **args)
            except TypeError as exc:
                store.finish_command(row["id"], False, f"bad arguments for {row['command']}: {exc}")
                continue
            result = await execute(command)
            store.finish_command(row["id"], result.ok, result.message)
        await asyncio.sleep(POLL_S)


def send(data_dir: Path, command: str, reason: str, timeout: float,
         args: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Ask the engine on ``data_dir`` to run ``command``; return (ok, what happened) for the operator."""
    data_dir = Path(data_dir).resolve()
    if not (data_dir / DB_NAME).exists():
        # A mistyped --data-dir must not "succeed" on an empty directory while the real engine trades on.
        return False, (f"no cockpit store at {data_dir / DB_NAME}: no engine has run there. Pass the engine's "
                       "--data-dir (see `cockpit status --data-dir DIR`).")
    store = Store.in_dir(data_dir)
    try:
        actor = "operator:cli"
        if engine_pid(data_dir) is None:
            return _without_engine(store, data_dir, command, actor, reason)
        command_id = store.submit_command(command, actor, reason, args)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = store.command(command_id)
            if row["status"] != "pending":
                return row["status"] == "done", row["result"]
            time.sleep(POLL_S / 2)
        return False, (f"no answer from the engine within {timeout:g}s; the command stays queued "
                       f"(id {command_id}) and runs when the engine gets to it")
    finally:
        store.close()


def _without_engine(store: Store, data_dir: Path, command: str, actor: str, reason: str) -> tuple[bool, str]:
    if command not in STATE_TARGETS:
        return False, (f"no engine is running on {data_dir}: `{command}` needs one. Start cockpit "
                       "(it restores its orders and state) and try again" +
                       (", or cancel at the exchange." if command == "cancel-all" else "."))
    target = STATE_TARGETS[command]
    previous, _ = store.trading_state()
    if previous != target:
        store.handle(TradingStateChanged(previous, target, actor, reason))
    return True, f"{target.value} (no engine running on {data_dir}: the next start comes back {target.value})"
