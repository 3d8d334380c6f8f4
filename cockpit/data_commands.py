"""``cockpit data download`` and ``cockpit data list``: candles on disk for backtests (engine/api/marketdata.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from engine.api import marketdata
from engine.kernel.config import Settings
from engine.kernel.text import inert


def parse_when(text: str, flag: str) -> int:
    """``2026-01-01`` or ``2026-01-01T12:00`` (UTC unless it says otherwise) as ms since the epoch."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag} {text!r} is not a date: write YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _iso(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def download(settings: Settings, args: Any) -> int:
    try:
        since = parse_when(args.since, "--since")
        until = None if args.until is None else parse_when(args.until, "--until")
    except ValueError as exc:
        print(f"cockpit data download: {exc}", file=sys.stderr)
        return 2
    if until is not None and until <= since:
        print("cockpit data download: --until must be after --since", file=sys.stderr)
        return 2
    symbols = [s.upper() if "/" in s else s for s in args.symbols]
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        tasks: dict[str, Any] = {}

        def on_page(page: marketdata.Page) -> None:
            if page.symbol not in tasks:
                tasks[page.symbol] = progress.add_task(page.symbol, total=page.until_ms - page.since_ms, status="")
            progress.update(
                tasks[page.symbol],
                completed=page.last_ms - page.since_ms,
                total=max(page.until_ms - page.since_ms, page.last_ms - page.since_ms),
                status=f"{page.written} candles to {_iso(page.last_ms)}",
            )

        try:
            result = asyncio.run(
                marketdata.download(settings, symbols, args.timeframe, since, until, args.exchange, on_page)
            )
        except marketdata.DataError as exc:
            print(f"cockpit data download: {inert(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("stopped: what was written stays; run the same command again to go on", file=sys.stderr)
            return 1
        except Exception as exc:  # a venue error after the retries: said in one line, what was written stays
            print(f"cockpit data download: {type(exc).__name__}: {inert(exc, limit=300)}", file=sys.stderr)
            print("what was written stays; run the same command again to go on", file=sys.stderr)
            return 1
    for symbol, r in result.items():
        print(
            f"{inert(symbol)}: +{r['written']} candles, {_iso(r['first'])} .. {_iso(r['last'])} in {inert(r['file'])}"
        )
    return 0


def listing(settings: Settings, as_json: bool) -> int:
    files = marketdata.listing(settings)
    if as_json:
        print(json.dumps(files))
        return 0
    if not files:
        print(f"no candles under {inert(settings.engine.data_dir / 'market')}: `cockpit data download SYMBOL ...`")
        return 0
    for f in files:
        gaps = f["gaps"]
        missing = sum(g["missing"] or 0 for g in gaps)
        said = "no gap" if not gaps else f"{len(gaps)} gap(s), {missing} candle(s) missing"
        print(
            f"{inert(f['exchange'])} {inert(f['symbol'])} {inert(f['timeframe'])}: {f['candles']} candles "
            f"{_iso(f['first'])} .. {_iso(f['last'])} · {said}"
        )
        for g in gaps[:5]:
            print(f"    gap {_iso(g['from'])} .. {_iso(g['to'])} ({g['missing']} missing)")
    return 0
