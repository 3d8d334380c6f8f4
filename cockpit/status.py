"""``cockpit status``: what the store says, readable by an operator or (with --json) by a script.

What the store holds came from outside (reasons, actors, venue errors, symbols, alert texts): the human-readable
lines show it through ``inert`` (no escape sequence reaches the terminal); --json prints the true text (JSON
escapes control characters itself)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.kernel.text import inert
from engine.store.datadir import DB_NAME, engine_pid

if TYPE_CHECKING:
    from engine.kernel.config import Settings
    from engine.store.db import Store


def print_status(settings: Settings, as_json: bool = False) -> int:
    data_dir = settings.engine.data_dir
    store = open_store(settings)
    if store is None:
        return 1
    from engine.api.statusreport import status_report  # with the store: a mistyped --data-dir answers fast

    try:
        chat = settings.chat.enabled()
        report = status_report(
            store, data_dir, engine_pid(data_dir), settings.engine.mode, chat, settings.venue.symbols
        )
    finally:
        store.close()
    return render_status(report, data_dir, as_json)


def render_status(report: dict[str, Any], data_dir: Path, as_json: bool = False) -> int:
    """The report (``engine.api.statusreport``) as ``cockpit status`` prints it, from the store or from the
    running engine that read its own store (``cockpit.quick``): the same lines either way."""
    if as_json:
        print(json.dumps(report, default=str))
        return 0
    pid, state, info, mode = report["engine_pid"], report["trading_state"], report["state_changed"], report["mode"]
    print(f"engine: {'running (pid ' + inert(pid) + ')' if pid else 'not running'} on {inert(data_dir.resolve())}")
    if store_failure := report["store_failure"]:
        print(
            f"STORE FAILING: the engine cannot write its store ({inert(store_failure)}); it is {state} and "
            "records nothing until there is room. halt / cancel-all / close-all still reach it (by signal)"
        )
    line = f"trading: {inert(str(mode).upper())} · {state}"
    if info:
        tripped = f" [{inert(info['code'])}]" if info.get("code") else ""
        line += f" (by {inert(info['actor'])}{tripped} at {inert(info['ts'])}: {inert(info['reason'])})"
    print(line)
    if point := report["equity"]:
        print(
            f"equity: {_plain(point['equity'])} (peak {_plain(point['peak'])}, "
            f"drawdown {Decimal(point['drawdown_pct']):.2f}%) at {point['ts'][:19]}"
        )
    if today := report["today"]:
        print(
            f"today: {today['trades_count']} fills, {today['winning_trades']} won / {today['losing_trades']} lost, "
            f"net PnL {_money(today['net_pnl'])}, fees {_money(today['fees'])}, REST errors {today['rest_errors']}, "
            f"ws reconnects {today['ws_reconnects']}"
        )
    monitors = report["monitors"]
    troubled = [m for m in monitors if m.get("status") != "OK"]
    if monitors:
        print(
            "monitors: all OK"
            if not troubled
            else "monitors: "
            + ", ".join(
                f"{inert(m['code'])} {inert(m['status'])} {inert(m['value'])} (limit {inert(m['threshold'])})"
                for m in troubled
            )
        )
    if chat := report.get("chat"):
        print(
            "chat: "
            + ", ".join(
                f"{inert(b['name'])} {inert(b['state'])}"
                + (f" (last command {inert(str(b['last_command_at'])[11:19])})" if b.get("last_command_at") else "")
                for b in chat
            )
        )
    for pos in report.get("positions") or []:
        if pos.get("side") in ("long", "short"):  # perps (runbook 002 "Monitor positions"): one line each
            print(
                f"position: {inert(pos['symbol'])} {inert(pos['side']).upper()} {_plain(pos['amount'])} "
                f"{_plain(pos.get('leverage'))}x, entry {_plain(pos.get('entry'))}, mark {_plain(pos.get('mark'))}, "
                f"liquidation {_plain(pos.get('liquidation_price'))} "
                f"({inert(str(pos.get('liquidation_distance_pct')))}% away), uPnL {_plain(pos.get('unrealized_pnl'))}"
            )
    if suspended := report.get("stops_suspended"):
        print(
            f"stops at the venue: SUSPENDED ({inert(suspended)}); the positions rest unprotected there until "
            "`cockpit resume` places them again"
        )
    orders = report["open_orders"]
    print(f"open orders: {len(orders)}")
    for o in orders:
        print(
            f"  {inert(o['symbol'])} {inert(o['side'])} {_plain(o['amount'])} @ "
            f"{_plain(o['price']) if o['price'] is not None else 'market'} filled {_plain(o['filled'])} "
            f"{inert(o['status'])} {inert(o['client_id'])}"
        )
    alerts = report["alerts"]
    print("latest alerts:" if alerts else "latest alerts: none")
    for a in alerts:
        count = f" (x{a['count']})" if (a.get("count") or 1) > 1 else ""
        acked = f" [acked by {inert(a['acked_by'])}]" if a.get("acked_by") else ""
        print(
            f"  #{a['id']} {inert(a['ts'][:19])} {inert(a['severity'])} {inert(a['code'])}{count}: "
            f"{inert(a['message'])}{acked}"
        )
    return 0


def print_audit(settings: Settings, as_json: bool = False, limit: int = 20) -> int:
    """``cockpit audit``: the commands carried out, newest first, from every actor."""
    data_dir = settings.engine.data_dir
    if not (data_dir / DB_NAME).exists():
        print(f"no cockpit store in {inert(data_dir)}: nothing has run there (use --data-dir DIR)", file=sys.stderr)
        return 1
    if limit < 1:
        print("cockpit audit: --limit must be at least 1", file=sys.stderr)
        return 2
    from engine.store.db import Store

    store = Store.in_dir(data_dir, readonly=True)
    try:
        rows = store.audit(limit=limit)
    finally:
        store.close()
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "time": r["ts"],
                        "command": r["command"],
                        "actor": r["actor"],
                        "reason": r["reason"],
                        "args": r["args"],
                        "values": r["values"],
                        "ok": r["ok"],
                        "result": r["result"],
                        "duration_ms": r["duration_ms"],
                        "kill_switch": r["kill_switch"],
                    }
                    for r in rows
                ],
                default=str,
            )
        )
        return 0
    if not rows:
        print("no commands recorded yet")
    for r in rows:
        mark = "ok  " if r["ok"] else "FAIL"
        print(
            f"{inert(r['ts'][:19])} {mark} {inert(r['command']):<11} {r['duration_ms']:>8.1f} ms  {inert(r['actor'])}"
            f"{': ' + inert(r['reason']) if r['reason'] else ''}"
        )
        print(f"{'':24}-> {inert(r['result'])}")
    return 0


def print_incidents(settings: Settings, as_json: bool = False) -> int:
    """``cockpit incidents``: newest first, with time to detect, to act and to recover."""
    from engine.ops.incidents import timings

    store = open_store(settings)
    if store is None:
        return 1
    try:
        rows = store.incidents(limit=100)
    finally:
        store.close()
    out = [
        {
            "id": r["id"],
            "opened_at": r["opened_at"],
            "trigger": r["trigger"],
            "actor": r["actor"],
            "reason": r["reason"],
            "recovered_at": r["recovered_at"],
            "snapshot": r["snapshot"],
            **timings(r),
        }
        for r in rows
    ]
    if as_json:
        print(json.dumps(out, default=str))
        return 0
    if not out:
        print("no incidents")
    for r in out:
        fmt = lambda v: "?" if v is None else f"{v:.1f}s"
        print(
            f"#{r['id']} {inert(r['opened_at'][:19])} {inert(r['trigger'])} by {inert(r['actor'])}: "
            f"detect {fmt(r['detect_s'])}, act {fmt(r['act_s'])}, "
            f"recover {fmt(r['recover_s']) if r['recovered_at'] else 'not yet'}"
        )
        print(f"    {inert(r['reason'])}")
    return 0


def print_incident_report(settings: Settings, incident_id: int) -> int:
    """``cockpit incident report ID``: writes the Markdown post-incident report next to the store."""
    from engine.ops.incidents import write_report

    store = open_store(settings)
    if store is None:
        return 1
    try:
        path = write_report(store, settings.engine.data_dir, incident_id)
    except KeyError:
        print(f"no incident {incident_id}; `cockpit incidents` lists them", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot write the report in {inert(settings.engine.data_dir)}: {inert(exc.strerror)}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(inert(path))
    return 0


def _plain(value: object) -> str:
    """A Decimal written out in full, never in exponent notation (``1.1E-7`` is ``0.00000011``)."""
    try:
        return format(Decimal(str(value)), "f")
    except (ArithmeticError, ValueError):
        return inert(value)


def _money(value: object) -> str:
    """A stored Decimal string to the cent, for reading (the store keeps every digit)."""
    try:
        return f"{Decimal(str(value)).quantize(Decimal('0.01')):,}"
    except (ArithmeticError, ValueError):
        return str(value)


def open_store(settings: Settings) -> Store | None:
    data_dir = settings.engine.data_dir
    if not (data_dir / DB_NAME).exists():
        print(f"no cockpit store in {inert(data_dir)}: nothing has run there (use --data-dir DIR)", file=sys.stderr)
        return None
    from engine.store.db import Store

    return Store.in_dir(data_dir, readonly=True)
