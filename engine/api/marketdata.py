"""Market data on disk: ``cockpit data download`` fetches candles through ccxt page after page and appends them to
one CSV per symbol and timeframe; ``cockpit data list`` says what is there (ranges and gaps).

The format is the replay's (``engine.sim.replay``): ``timestamp,open,high,low,close,volume`` with a header line,
the timestamp in milliseconds (UTC open time), one candle a line, oldest first. A file is
``DATA_DIR/market/<exchange>/<BASEQUOTE>-<timeframe>.csv`` (``data/market/binance/BTCUSDT-1m.csv``), so
``cockpit validate --replay DATA_DIR/market/binance`` and ``cockpit sim --replay BTCUSDT=FILE`` read it as it is.
A download appends page by page: an interrupted one goes on from the last candle written when run again.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.kernel.config import Settings
from engine.strategies.api import TIMEFRAMES_MS
from engine.venue.adapter import Endpoint, Venue

HEADER = ["timestamp", "open", "high", "low", "close", "volume"]
PAGE = 1000


class DataError(Exception):
    """A download or listing that cannot go on; the message says what to do."""


def market_dir(settings: Settings, exchange: str) -> Path:
    return settings.engine.data_dir / "market" / exchange


def file_for(settings: Settings, exchange: str, symbol: str, timeframe: str) -> Path:
    return market_dir(settings, exchange) / f"{symbol.replace('/', '').upper()}-{timeframe}.csv"


def _last_ts(path: Path) -> int | None:
    """The open time of the last candle in ``path`` (None for no file or no candle)."""
    if not path.is_file():
        return None
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 4096))
        lines = [line for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(",", 1)[0]
        if head.isdigit():
            return int(head)
    return None


def _first_ts(path: Path) -> int | None:
    with path.open(encoding="utf-8") as f:
        for line in f:
            head = line.split(",", 1)[0]
            if head.isdigit():
                return int(head)
    return None


@dataclass(frozen=True)
class Page:
    """Progress of one symbol's download: candles written so far, the last open time, the end asked for."""

    symbol: str
    written: int
    last_ms: int
    since_ms: int
    until_ms: int  # the end asked for, or the newest candle so far


def _venue(settings: Settings, exchange: str | None) -> tuple[Venue, str]:
    """A client for downloading: ``exchange`` (public data, no key), or the configured venue."""
    cfg = settings.venue
    if exchange is not None:
        public = Endpoint(exchange, None, None, None, None, sandbox=False)
        try:
            return Venue.from_settings(cfg, "live", endpoint=public), exchange
        except ValueError as exc:
            raise DataError(str(exc)) from None
    if cfg.exchange == "sim" and cfg.rest_url is None:
        raise DataError(
            "[venue] exchange is the built-in simulator, which runs only inside an engine: pass --exchange ID "
            "(e.g. binance), or run `cockpit sim` and set [venue] rest_url to it"
        )
    # Candles are public: no key is sent, and a paper configuration reads the venue's own market, not its testnet.
    endpoint = Endpoint(cfg.exchange, cfg.rest_url, cfg.ws_url, None, None, sandbox=False)
    return Venue.from_settings(cfg, "live", endpoint=endpoint), cfg.exchange


async def download(
    settings: Settings,
    symbols: list[str],
    timeframe: str,
    since_ms: int,
    until_ms: int | None,
    exchange: str | None,
    on_page: Callable[[Page], None] = lambda page: None,
) -> dict[str, Any]:
    """Fetch ``symbols``' candles from ``since_ms`` to ``until_ms`` (default: the last closed candle), appending to
    each file from its last candle on; {symbol: {"file", "written", "first", "last"}}."""
    if timeframe not in TIMEFRAMES_MS:
        raise DataError(f"--timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES_MS)}")
    tf_ms = TIMEFRAMES_MS[timeframe]
    venue, name = _venue(settings, exchange)
    out: dict[str, Any] = {}
    try:
        await venue.load_markets()
        for symbol in symbols:
            if symbol not in venue.markets:
                raise DataError(f"{symbol} is not traded on {name}; write it as the venue does, e.g. BTC/USDT")
        for symbol in symbols:
            path = file_for(settings, name, symbol, timeframe)
            path.parent.mkdir(parents=True, exist_ok=True)
            last = _last_ts(path)
            if last is not None and (first := _first_ts(path)) is not None and since_ms < first:
                raise DataError(
                    f"{path} starts at {first} (ms), after --since: it only grows forward; move it away to "
                    "download from earlier"
                )
            start = since_ms if last is None else max(since_ms, last + tf_ms)
            written = 0
            with path.open("a", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                if last is None and f.tell() == 0:
                    writer.writerow(HEADER)
                while until_ms is None or start < until_ms:
                    page = await venue.fetch_ohlcv(symbol, timeframe, start, PAGE)
                    rows = [r for r in page if int(r[0]) >= start and (until_ms is None or int(r[0]) < until_ms)]
                    at_the_end = len(page) < PAGE
                    if at_the_end and rows and rows[-1][0] == page[-1][0]:
                        rows.pop()  # the newest candle a venue has is the one forming: a file holds closed ones
                    if rows:
                        writer.writerows([int(r[0]), *(repr(float(v)) for v in r[1:6])] for r in rows)
                        f.flush()  # page by page: an interrupted download keeps what it wrote
                        written += len(rows)
                        start = int(rows[-1][0]) + tf_ms
                        on_page(Page(symbol, written, int(rows[-1][0]), since_ms, until_ms or start))
                    if at_the_end or not rows:
                        break
            out[symbol] = {"file": str(path), "written": written, "first": _first_ts(path), "last": _last_ts(path)}
    finally:
        await venue.close()
    return out


def describe(path: Path) -> dict[str, Any]:
    """One file: its symbol and timeframe (from the name), candles, first and last open time, and its gaps."""
    symbol, _, timeframe = path.stem.rpartition("-")
    tf_ms = TIMEFRAMES_MS.get(timeframe)
    times: list[int] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            head = line.split(",", 1)[0]
            if head.isdigit():
                times.append(int(head))
    gaps = []
    if tf_ms:
        gaps = [(a + tf_ms, b) for a, b in zip(times, times[1:], strict=False) if b - a > tf_ms]
    return {
        "file": str(path),
        "symbol": symbol,
        "timeframe": timeframe,
        "candles": len(times),
        "first": times[0] if times else None,
        "last": times[-1] if times else None,
        "gaps": [{"from": a, "to": b, "missing": (b - a) // tf_ms if tf_ms else None} for a, b in gaps],
    }


def listing(settings: Settings) -> list[dict[str, Any]]:
    """Every candle file under the data directory's ``market/``, by exchange."""
    root = settings.engine.data_dir / "market"
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.glob("*/*.csv")):
        entry = describe(path)
        entry["exchange"] = path.parent.name
        out.append(entry)
    return out


def replay_files(directory: Path) -> dict[str, Path]:
    """A directory of candle files as ``--replay`` takes them: {BASEQUOTE: file}, the finest timeframe per symbol."""
    best: dict[str, tuple[int, Path]] = {}
    for path in sorted(directory.glob("*.csv")):
        symbol, _, timeframe = path.stem.rpartition("-")
        tf_ms = TIMEFRAMES_MS.get(timeframe)
        if symbol and tf_ms and (symbol not in best or tf_ms < best[symbol][0]):
            best[symbol.upper()] = (tf_ms, path)
    return {symbol: path for symbol, (_, path) in best.items()}
