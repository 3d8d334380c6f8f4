"""The go/no-go gate from the command line: ``cockpit preflight``, ``cockpit validate``, ``cockpit report daily``.

``preflight`` asks the engine running on the data directory, if there is one (through the store, like every command
from another shell); with none, it starts the engine there without its strategies for the checklist's length (so
the smoke trade goes through the same order path and audit trail), or in live mode runs the checks with a venue
client of its own (no smoke trade with real money). Exit status: 0 GO, 1 NO-GO, 2 could not run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.gate.checklist import Checklist
from engine.kernel.config import Settings
from engine.kernel.errors import EngineError, StoreError
from engine.kernel.text import inert

STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "GO": "bold green", "NO-GO": "bold red"}
# How long `cockpit preflight` waits for a temporary engine to connect before checking anyway (the checks then say
# what is unreachable).
CONNECT_WAIT_S = 30.0


def _shown(text: object) -> str:
    """Outside text (a venue's error, a check's evidence, a file name) for a Rich console: inert, then escaped so
    Rich reads no markup in it."""
    return escape(inert(text))


def _quiet_logs() -> None:
    """The engine's log lines go to its log files; on the terminal only what the command prints (and a crash)."""
    from engine.ops.logfiles import InertFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.CRITICAL)
    handler.setFormatter(InertFormatter("cockpit: %(message)s"))
    logging.basicConfig(handlers=[handler])


# ---------------------------------------------------------------- preflight


def preflight(settings: Settings, *, as_json: bool, confirm_live: bool, timeout: float) -> int:
    """``cockpit preflight [--json]``: run the checklist, print it, exit 0 GO / 1 NO-GO / 2 could not run."""
    from engine.api.inbox import send_detailed
    from engine.store.datadir import engine_pid
    from engine.store.db import DB_NAME

    _quiet_logs()
    data_dir = settings.engine.data_dir
    if (data_dir / DB_NAME).exists() and engine_pid(data_dir) is not None:
        ok, message, details = send_detailed(data_dir, "preflight", "cockpit preflight", timeout)
        if not details:
            print(f"cockpit preflight: could not run on the running engine: {inert(message)}", file=sys.stderr)
            return 2
        checklist = Checklist.from_dict(details)
    else:
        try:
            checklist = asyncio.run(_without_engine(settings, confirm_live))
        except (EngineError, StoreError, OSError) as exc:
            print(f"cockpit preflight: could not run: {inert(exc)}", file=sys.stderr)
            return 2
    if as_json:
        print(json.dumps(checklist.to_dict(), default=str))
    else:
        print_checklist(checklist)
    return 0 if checklist.verdict == "GO" else 1


async def _without_engine(settings: Settings, confirm_live: bool) -> Checklist:
    from engine.api.inbox import cli_actor
    from engine.core.engine import Engine
    from engine.gate.preflight import run_standalone
    from engine.kernel.commands import RunPreflight
    from engine.kernel.events import ChecklistCompleted
    from engine.store.datadir import DataDirBusy
    from engine.store.db import Store

    if settings.engine.mode == "live":
        store = Store.in_dir(settings.engine.data_dir)
        try:
            checklist = await run_standalone(settings, store, confirm_live=confirm_live, actor=cli_actor())
            store.handle(ChecklistCompleted(checklist.to_dict()))
            return checklist
        finally:
            store.close()
    quiet = settings.model_copy(update={"strategy": settings.strategy.model_copy(update={"enabled": False})})
    engine = Engine(quiet, confirm_live=confirm_live, serve_chat=False)
    try:
        await engine.start()
    except DataDirBusy as exc:
        raise EngineError(f"{exc}; run `cockpit preflight` again to ask that engine") from None
    try:
        deadline = time.monotonic() + CONNECT_WAIT_S
        while not engine.ready.is_set() and not engine.failed.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        result = await engine.execute(RunPreflight(actor=cli_actor(), reason="cockpit preflight"))
        if not result.details:
            raise EngineError(result.message)
        return Checklist.from_dict(result.details)
    finally:
        await engine.stop("preflight done")


def print_checklist(checklist: Checklist) -> None:
    """The checklist as a table, then what to fix, then the verdict."""
    console = Console()
    table = Table(
        title=f"go/no-go checklist · {_shown(checklist.mode.upper())} · {_shown(checklist.venue)}",
        title_justify="left",
    )
    table.add_column("", no_wrap=True)
    table.add_column("check")
    table.add_column("evidence")
    for c in checklist.checks:
        table.add_row(f"[{STYLE[c.status.value]}]{c.status.value}[/]", _shown(c.title), _shown(c.detail))
    console.print(table)
    for c in checklist.checks:
        if c.status.value != "PASS" and c.fix:
            console.print(f"[{STYLE[c.status.value]}]{c.status.value}[/] {_shown(c.title)}: fix: {_shown(c.fix)}")
    console.print(f"[{STYLE[checklist.verdict]}]{_shown(checklist.line())}[/] ({checklist.duration_ms / 1000:.1f} s)")


# ---------------------------------------------------------------- validate


def parse_duration(text: str) -> float:
    """``48h``, ``90m``, ``2d``, ``3600s`` or a number of hours, in seconds; ValueError with what is wrong."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "h")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration: write 48h, 90m, 2d or 3600s") from None
    if not value > 0:
        raise ValueError(f"{text!r}: the duration must be positive")
    return value * units[unit]


def validate(
    settings: Settings,
    *,
    duration_s: float | None,
    speed: float | None,
    seed: int | None,
    replay: dict[str, str],
    tick_s: float | None,
    as_json: bool,
    strategy: str | None = None,
    sweep: list[str] | None = None,
    in_process: bool | None = None,
) -> int:
    """``cockpit validate``: run, show progress, write and store the report, send it; exit 0 GO, 1 NO-GO, 2 could
    not run. ``strategy``: a backtest of that strategy alone, on the symbols of the replayed data, for as long as
    the data runs (unless ``duration_s`` says)."""
    from engine.core.validation import Plan, ValidationError, backtest

    cfg = settings.validation
    resolved = {symbol: Path(path).resolve() for symbol, path in replay.items()}
    candle_s: float | None = None
    if strategy is not None:
        try:
            settings, covered, candle_s = backtest(settings, strategy, resolved)
        except ValidationError as exc:
            print(f"cockpit validate: {inert(exc)}", file=sys.stderr)
            return 2
        duration_s = duration_s or covered
    # A backtest on candles steps once a candle, the venue walking each one's open, extremes and close between
    # steps, unless --tick or [validation] tick_s in the config file asks for finer steps (decision GATE-25).
    if tick_s is None and candle_s is not None and "tick_s" not in cfg.model_fields_set:
        tick_s = candle_s
    plan = Plan(
        duration_s=duration_s or cfg.duration_h * 3600,
        # A backtest runs as fast as it goes (nobody watches it live); a paper validation at [validation] speed.
        speed=speed or (math.inf if strategy is not None else cfg.speed),
        tick_s=tick_s or cfg.tick_s,
        seed=settings.venue.sim_seed if seed is None else seed,
        replay=resolved,
        # A backtest on replayed data: the streams in-process unless --loopback (GATE-17); otherwise the paper
        # venue's own websockets unless --in-process.
        in_process=in_process if in_process is not None else (strategy is not None and bool(resolved)),
    )
    if strategy is not None and sweep:
        from cockpit.sweep import parse_sweep
        from cockpit.sweep import sweep as run_sweep

        try:
            grid = parse_sweep(sweep)
        except ValueError as exc:
            print(f"cockpit validate: {exc}", file=sys.stderr)
            return 2
        return run_sweep(settings, strategy, grid, plan, as_json)
    _quiet_logs()
    try:
        report = asyncio.run(_validate(settings, plan))
    except (ValidationError, EngineError, StoreError, OSError) as exc:
        print(f"cockpit validate: could not run: {inert(exc)}", file=sys.stderr)
        return 2
    path = _write(settings, report)
    if path is None:
        return 2
    if as_json:
        print(json.dumps(report, default=str))
    else:
        print_report(report, path)
    try:
        asyncio.run(_record_and_send(settings, report, path))
    except StoreError as exc:
        print(
            f"cockpit validate: the report is in {inert(path)} but could not be stored: {inert(exc)}", file=sys.stderr
        )
        return 2
    return 0 if report["verdict"] == "GO" else 1


async def _validate(settings: Settings, plan: Any) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="cockpit-validation-", dir=_scratch_root()))
    try:
        return await _run_with_progress(settings, plan, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def _run_with_progress(settings: Settings, plan: Any, scratch: Path) -> dict[str, Any]:
    from engine.core.engine import Engine
    from engine.core.validation import Validation

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task("validating", total=plan.duration_s, status="starting")

        def show(p: Any) -> None:
            equity = "—" if p.equity is None else f"{p.equity:,.2f}"
            progress.update(
                task,
                completed=p.simulated_s,
                status=(
                    f"{p.now:%Y-%m-%d %H:%M} · {p.simulated_s / 3600:.1f}/{p.duration_s / 3600:g} h · "
                    f"{p.trades} trades · equity {equity} {settings.engine.quote_asset}"
                ),
            )

        run = Validation(settings, plan, Engine, scratch / "data", on_progress=show)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, run.stop)  # Ctrl+C: stop after this step, report what ran
        source = (
            f"seed {plan.seed}"
            if not plan.replay
            else "replay " + ", ".join(f"{k}={v}" for k, v in plan.replay.items())
        )
        console.print(
            f"validating {plan.duration_s / 3600:g} simulated h on the simulator ({_shown(source)}, tick "
            f"{plan.tick_s:g} s, {f'at most x{plan.speed:g}' if math.isfinite(plan.speed) else 'uncapped'}); "
            "Ctrl+C stops it with a partial report",
            highlight=False,
        )
        try:
            return await run.run()
        finally:
            loop.remove_signal_handler(signal.SIGINT)


def _scratch_root() -> str | None:
    """Where the run's own store lives: memory-backed when the machine has it (nothing there must survive a power
    cut: the report goes to the real store), else the system's temporary directory."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _write(settings: Settings, report: dict[str, Any]) -> Path | None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data_dir = Path(settings.engine.data_dir)
    path = data_dir / f"validation_report_{stamp}.json"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        print(
            f"cockpit validate: cannot write {inert(path)}: {inert(exc.strerror or exc)}; fix the data directory's "
            "permissions or free space, or pass another --data-dir",
            file=sys.stderr,
        )
        print(json.dumps(report, default=str))
        return None
    return path


async def _record_and_send(settings: Settings, report: dict[str, Any], path: Path) -> None:
    """Store the report (the checklist reads it) and send its summary to every notification target."""
    from engine.kernel.events import Alert, Severity, ValidationReported
    from engine.ops.notify import Notifier
    from engine.store.db import Store

    store = Store.in_dir(settings.engine.data_dir)
    try:
        store.handle(ValidationReported(report, str(path)))
        targets = settings.alerts.notify
        if not targets:
            return
        alert = Alert(Severity.INFO, "VALIDATION_REPORT", summary_line(report, path), values={"path": str(path)})
        if report["verdict"] != "GO":
            alert = replace(alert, severity=Severity.WARN)

        def failed(severity: Any, code: str, message: str, values: Any = None) -> None:
            print(f"cockpit validate: {inert(message)}", file=sys.stderr)

        notifier = Notifier(targets, settings.alerts.notify_retries, store.handle, failed, title="cockpit validate")
        notifier.send(alert, "new")
        notifier.send_to_the_rest(alert, "new")  # every sink gets a report, whatever its least severity
        workers = [asyncio.ensure_future(work) for _, work in notifier.workers()]
        await notifier.drain(timeout_s=15.0)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    finally:
        store.close()


def summary_line(report: dict[str, Any], path: Path | None = None) -> str:
    """One sentence for people: the verdict, the four criteria, PnL, what it ran on."""
    source = (
        f"seed {report.get('seed')}"
        if not report.get("replay")
        else "replay " + ", ".join(f"{k}={v['file']}" for k, v in report["replay"].items())
    )
    line = (
        f"validation {report['verdict']} over {report['simulated']['hours']:g} h ({source}): "
        f"{report['trades']} trades, win rate {report['win_rate']}%, Sharpe {report['sharpe']}, max drawdown "
        f"{report['max_drawdown_pct']}%, PnL {report['pnl']['net']}{_funding(report)}"
    )
    if report.get("failed"):
        line += "; failed: " + "; ".join(report["failed"])
    if path is not None:
        line += f"; report {path.name}"
    return line


def print_report(report: dict[str, Any], path: Path) -> None:
    console = Console()
    sim = report["simulated"]
    run = report["run"]
    table = Table(
        title=f"paper validation · {sim['hours']:g} simulated h from {sim['start'][:16]}", title_justify="left"
    )
    for name in ("criterion", "value", "threshold", ""):
        table.add_column(name)
    labels = {
        "trades": "trades (round trips)",
        "win_rate": "win rate %",
        "sharpe": "Sharpe (hourly, annualised)",
        "max_drawdown_pct": "max drawdown %",
        "duration_h": "simulated hours",
    }
    for key, row in report["criteria"].items():
        verdict = "[green]pass[/]" if row["pass"] else "[bold red]FAIL[/]"
        table.add_row(labels.get(key, key), _show(row["value"]), f"{row['rule']} {_show(row['threshold'])}", verdict)
    console.print(table)
    orders = report["orders"]
    source = (
        f"seed {report['seed']}"
        if not report.get("replay")
        else "replay " + ", ".join(f"{k}={v['file']} (sha256 {v['sha256'][:12]})" for k, v in report["replay"].items())
    )
    console.print(
        f"PnL {report['pnl']['net']} ({report['pnl']['return_pct']}%), realised {report['pnl']['realized']}, "
        f"fees {report['fees']}{_funding(report)} · {report['fills']} fills, fill rate {_show(report['fill_rate'])}% "
        f"({orders['filled']}/{orders['ended']} orders), avg slippage {_show(report['avg_slippage_bps'])} bps · "
        f"{report['errors']} error(s), {report['reconnects']} reconnect(s), alerts "
        f"{report['alerts']['CRIT']} CRIT / {report['alerts']['WARN']} WARN · {orders['refused_by_risk']} orders "
        f"refused by risk checks"
    )
    speed = run.get("speed_achieved")
    console.print(
        _shown(f"{source} · tick {sim['tick_s']:g} s · ran {run['wall_s']:g} s (x{speed}) · ")
        + ("[yellow]interrupted: partial report[/] · " if run.get("interrupted") else "")
        + _shown(f"report {path}")
    )
    console.print(
        f"[{STYLE[report['verdict']]}]{report['verdict']}[/]"
        + ("" if not report["failed"] else ": " + _shown("; ".join(report["failed"])))
    )


def _funding(report: dict[str, Any]) -> str:
    """Perps: the funding the positions received or paid over the run (in the PnL before it already)."""
    if report.get("funding") is None:
        return ""
    amount = Decimal(report["funding"])
    return f", funding {'received' if amount >= 0 else 'paid'} {abs(amount)} (in the PnL)"


def _show(value: Any) -> str:
    return "n/a" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------- report daily


def report_daily(settings: Settings, day: str | None, as_json: bool) -> int:
    """``cockpit report daily [--date D]``: the summary the sinks receive at 23:59 UTC, for day D (UTC, default
    today). Exit 0, or 1 when nothing was recorded that day."""
    from cockpit.status import open_store
    from engine.ops import daily

    day = day or datetime.now(UTC).date().isoformat()
    data_dir = settings.engine.data_dir
    store = open_store(settings)
    if store is None:
        return 1
    try:
        found = daily.from_store(store, day)
    finally:
        store.close()
    if found is None:
        print(f"nothing recorded on {inert(day)} (UTC) in {inert(data_dir)}", file=sys.stderr)
        return 1
    message, values = found
    if as_json:
        print(json.dumps({"day": day, "message": message, **values}, default=str))
        return 0
    print(inert(message))
    print(
        f"  fills {values.get('trades_count')} · round trips won {values.get('winning_trades')} / lost "
        f"{values.get('losing_trades')} · orders ended {values.get('orders_done')} (filled "
        f"{values.get('orders_filled')}, fill rate {_pct(values.get('fill_rate'))}) · ws reconnects "
        f"{values.get('ws_reconnects')} · start equity {values.get('start_equity')}"
    )
    return 0


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{Decimal(str(value)):.1f}%"
