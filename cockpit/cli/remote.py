"""The commands of the engine's table (``engine.kernel.commands.SPECS``: ``halt``, ``order``, ``reconcile`` ...)
from the command line: sent to the engine running on the data directory (its socket, else the store's inbox), and
``cancel-all`` / ``close-all`` with no engine running carried out on the venue directly (``engine.core.emergency``).
The answer is printed as the engine gave it, made inert; ``--json`` prints it whole."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.quick import MESSAGE_LIMIT  # shared with the kill switch's quick path, which answers before the rest
from engine.kernel.text import inert

if TYPE_CHECKING:
    from engine.kernel.config import Settings


def _symbol(settings: Settings, text: str) -> str:
    """``BTCUSDT`` or ``btc/usdt`` as the configured ``BTC/USDT`` (unknown symbols pass through for the engine
    to refuse with the list of configured ones)."""
    for symbol in settings.venue.symbols:
        if text.upper().replace("/", "") == symbol.replace("/", ""):
            return symbol
    return text


def remote_commands() -> dict[str, Any]:
    """The commands the engine runs (``engine.kernel.commands.SPECS``), by name."""
    from engine.kernel.commands import SPECS

    return {spec.name: spec for spec in SPECS}


def _remote_args(settings: Settings, command: str, args: argparse.Namespace) -> dict | None:
    if command == "strategy":
        return {"strategy": args.name, "enabled": args.action == "enable"}
    if command == "close":
        return {"symbol": _symbol(settings, args.symbol)}
    if command == "reconcile":
        return {"adopt": args.adopt}
    if command == "cancel-all" and args.include_stops:
        return {"include_stops": True}
    if command == "resume" and args.override is not None:
        return {"override": True}
    if command == "mode":
        return {"mode": args.mode}
    if command == "ack":
        return {"ids": list(args.ids), "every": args.every}
    if command == "order":
        return {
            "symbol": _symbol(settings, args.symbol),
            "side": args.side,
            "amount": str(args.amount),
            "type": "limit" if args.price is not None else "market",
            "price": None if args.price is None else str(args.price),
            "stop_loss": None if args.stop_loss is None else str(args.stop_loss),
            "take_profit": None if args.take_profit is None else str(args.take_profit),
        }
    return None


def run_remote(settings: Settings, command: str, args: argparse.Namespace) -> int:
    """A command for the engine running on the data dir; cancel-all and close-all with none act on the venue."""
    from engine.store.datadir import DB_NAME, engine_pid

    data_dir = settings.engine.data_dir
    details = None
    if remote_commands()[command].emergency and (data_dir / DB_NAME).exists() and engine_pid(data_dir) is None:
        import asyncio

        from engine.core.emergency import act_without_engine
        from engine.kernel.commands import CancelAll, CloseAll
        from engine.kernel.text import InertFormatter

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(InertFormatter("cockpit: %(message)s"))
        logging.basicConfig(level=logging.ERROR, handlers=[handler])
        print(f"no engine is running on {inert(data_dir.resolve())}: acting on the venue directly", file=sys.stderr)
        try:
            from engine.api.inbox import cli_actor

            kill: CancelAll | CloseAll = (
                CancelAll(actor=cli_actor(), reason=args.reason, include_stops=args.include_stops)
                if command == "cancel-all"
                else CloseAll(actor=cli_actor(), reason=args.reason)
            )
            result = asyncio.run(act_without_engine(settings, kill, retry_for_s=args.retry_for))
        except KeyboardInterrupt:
            print("stopped by the operator; HALTED stays latched. Run the command again to finish.", file=sys.stderr)
            return 1
        ok, message, details = result.ok, result.message, dict(result.details)
    else:
        reason = args.override if command == "resume" and args.override is not None else args.reason
        ok, message, details = _to_engine(
            data_dir, command, reason, args.timeout, _remote_args(settings, command, args)
        )
    if args.json:
        print(json.dumps({"ok": ok, "message": message, "details": details}, default=str))  # the true text
    else:
        # The answer carries the reason and the venue's words: shown inert (no escape reaches the terminal).
        print(inert(message, limit=MESSAGE_LIMIT, lines=True), file=sys.stdout if ok else sys.stderr)
        if command == "reconnect" and details and "after" in details:
            for name, after in details["after"].items():
                before = details["before"].get(name, "?")
                print(f"  {inert(name):<16} before: {inert(before):<24} after: {inert(after)}")
        if command == "reconcile" and details:
            _print_reconcile(details)
    return 0 if ok else 1


def _to_engine(
    data_dir: Path, command: str, reason: str, timeout: float, args: dict | None
) -> tuple[bool, str, dict | None]:
    """A running engine's socket first (the standard library only: no store, no engine imported), then the rest
    of the ways (``engine.api.inbox.send_detailed``: the store's inbox, the latched state with no engine)."""
    from engine.api import client

    answer = client.command_if_running(data_dir, command, args, reason, timeout)
    if answer is not None:
        return answer
    from engine.api.inbox import send_detailed

    return send_detailed(data_dir, command, reason, timeout, args, via_socket=False)


def _print_reconcile(report: dict) -> None:
    """What reconciliation found; every value is the venue's or the store's, shown inert."""
    orders = report.get("orders", {})
    for what in ("adopted", "resolved", "lost"):
        for item in orders.get(what, []):
            print(f"  order {what}: {inert(item)}")
    for raw in report.get("differences", []):
        d = {k: inert(v) for k, v in raw.items()}
        print(
            f"  {d['asset']}: venue {d['venue']}, engine {d['engine']}, diff {d['diff']} "
            f"({d['pct_of_equity']}% of equity)"
        )
    for raw in report.get("adopted", []):
        d = {k: inert(v) for k, v in raw.items()}
        print(f"  adopted: {d['asset']} {d['diff']}")
    for raw in report.get("mismatch", []):
        d = {k: inert(v) for k, v in raw.items()}
        print(
            f"  KEPT for the operator: {d['asset']} venue {d['venue']} vs engine {d['engine']} "
            f"({d['pct_of_equity']}% of equity) - check the venue's trades, then `cockpit reconcile --adopt`"
        )
