"""``cockpit validate --strategy NAME --sweep PARAM=a,b,c``: a small grid of parameters, one backtest per point, and
one table, best first on the scorecard's criteria (GO first, then the criteria passed, Sharpe, net PnL). A grid, no
optimiser: the operator reads the table, and a point that is best on a few days is a hypothesis, not a result."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from engine.kernel.config import ConfigError, Settings
from engine.kernel.errors import EngineError, StoreError
from engine.kernel.text import inert

MAX_POINTS = 50


def parse_sweep(items: list[str]) -> dict[str, list[str]]:
    """``NAME=a,b,c`` options as {NAME: [a, b, c]}; ValueError naming a bad one."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name.strip() or not choices:
            raise ValueError(f"--sweep {item!r} must look like period=10,14,20")
        grid[name.strip()] = choices
    points = 1
    for choices in grid.values():
        points *= len(choices)
    if points > MAX_POINTS:
        raise ValueError(f"--sweep makes {points} runs; at most {MAX_POINTS}: fewer values")
    return grid


def _rank(report: dict[str, Any]) -> tuple[Any, ...]:
    passed = sum(1 for c in report["criteria"].values() if c.get("pass"))
    sharpe = report.get("sharpe")
    return (report["verdict"] == "GO", passed, sharpe is not None, sharpe or 0, Decimal(report["pnl"]["net"]))


def sweep(settings: Settings, strategy: str, grid: dict[str, list[str]], plan: Any, as_json: bool) -> int:
    """Run every point of ``grid``; print the table (or a JSON array), best first; exit 0 when the best is GO."""
    from cockpit.gate_commands import _quiet_logs, _validate
    from engine.core.validation import ValidationError, with_params

    names = list(grid)
    points = [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]
    try:
        configured = [with_params(settings, strategy, p) for p in points]
        from engine.api.strategies import check  # every point's values, before the first run

        for s in configured:
            check(s)
    except ConfigError as exc:
        print(f"cockpit validate: {inert(exc, lines=True)}", file=sys.stderr)
        return 2
    _quiet_logs()
    rows = []
    for n, (point, s) in enumerate(zip(points, configured, strict=True), 1):
        print(f"run {n}/{len(points)}: {', '.join(f'{k}={v}' for k, v in point.items())}", file=sys.stderr)
        try:
            report = asyncio.run(_validate(s, plan))
        except (ValidationError, EngineError, StoreError, OSError) as exc:
            print(f"cockpit validate: could not run: {inert(exc)}", file=sys.stderr)
            return 2
        rows.append((point, report))
    rows.sort(key=lambda row: _rank(row[1]), reverse=True)
    if as_json:
        print(json.dumps([{"params": p, "report": r} for p, r in rows], default=str))
    else:
        table = Table(title=f"sweep of {strategy}, best first", title_justify="left")
        for name in [*names, "verdict", "trades", "win %", "Sharpe", "max DD %", "net PnL"]:
            table.add_column(inert(name))
        for point, r in rows:
            win = r.get("win_rate")
            table.add_row(
                *(inert(point[n]) for n in names),
                r["verdict"],
                str(r["trades"]),
                "n/a" if win is None else f"{win:g}",
                "n/a" if r.get("sharpe") is None else f"{r['sharpe']:g}",
                f"{r['max_drawdown_pct']:g}",
                str(Decimal(r["pnl"]["net"]).quantize(Decimal("0.01"))),
            )
        Console().print(table)
    return 0 if rows and rows[0][1]["verdict"] == "GO" else 1
