"""JSON log files in the data directory, rotated: ``trading.log`` (everything the engine logs, alerts included),
``errors.log`` (warnings, errors and CRIT alerts) and ``trades.log`` (every order event and fill), one JSON
object per line. They keep outside text (reasons, venue errors) faithfully: JSON escapes its control characters.
A log read as plain text (a terminal's stderr, ``cockpit.log``) goes through ``InertFormatter`` instead."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from engine.kernel.events import Event, FillReceived, OrderCreated, OrderUpdated

# InertFormatter lives with ``inert`` (a screen's log is set up before the engine's modules load) and is named here
# too, beside the JSON one.
from engine.kernel.text import InertFormatter as InertFormatter

TRADES = logging.getLogger("cockpit.trades")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message."""

    converter = staticmethod(time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


class LoopBufferedFileHandler(RotatingFileHandler):
    """A rotating file whose INFO records are written once per turn of the event loop, all in one write.

    A cancel-all that learns of 100 cancelled orders logs 200 lines (trades.log and trading.log): written one by
    one, with a flush each, they cost the kill switch about 7 ms before its next request could leave. Here they
    are kept (unformatted) until the running code yields to the loop; warnings and worse, and anything logged with
    no event loop running (the CLI, a thread), are written at once as before. A stop flushes what is kept."""

    def __init__(
        self,
        filename: str | os.PathLike[str],
        mode: str = "a",
        maxBytes: int = 0,
        backupCount: int = 0,
        encoding: str | None = None,
        delay: bool = False,
        errors: str | None = None,
    ) -> None:
        super().__init__(filename, mode, maxBytes, backupCount, encoding, delay, errors)
        self._kept: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self._write_kept()
            super().emit(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_kept()
            super().emit(record)
            return
        if not self._kept:
            loop.call_soon(self._write_kept_locked)
        self._kept.append(record)

    def _write_kept_locked(self) -> None:
        self.acquire()  # the handler's lock (``Handler.lock``, made in ``Handler.__init__``)
        try:
            self._write_kept()
        finally:
            self.release()

    def _write_kept(self) -> None:
        """Write every kept record in one go (the handler's lock is held)."""
        if not self._kept:
            return
        records, self._kept = self._kept, []
        try:
            text = "".join(self.format(r) + self.terminator for r in records)
            if self.shouldRollover(records[-1]):
                self.doRollover()
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # logging must never break the engine: report as logging does
            self.handleError(records[-1])

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_kept()
        finally:
            self.release()
        super().flush()

    def close(self) -> None:
        self.flush()
        super().close()

    def handleError(self, record: logging.LogRecord) -> None:
        """A line the disk refuses (full, read-only) is dropped without a traceback on the terminal: the store's
        STORE_WRITE_FAILED alert says what is wrong and what to do."""


class LogFiles:
    """Opens the three files on the root and trades loggers; ``close`` takes them off again."""

    def __init__(self, data_dir: Path, max_bytes: int, backups: int) -> None:
        self.data_dir = Path(data_dir)
        self.max_bytes = max_bytes
        self.backups = backups
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []

    def open(self) -> None:
        for logger, name, level in (
            (logging.getLogger(), "trading.log", logging.INFO),
            (logging.getLogger(), "errors.log", logging.WARNING),
            (TRADES, "trades.log", logging.INFO),
        ):
            handler = LoopBufferedFileHandler(
                self.data_dir / name, maxBytes=self.max_bytes, backupCount=self.backups, encoding="utf-8"
            )
            handler.setLevel(level)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
            self._handlers.append((logger, handler))
        TRADES.setLevel(logging.INFO)

    def close(self) -> None:
        _write_lines()
        for logger, handler in self._handlers:
            logger.removeHandler(handler)
            try:
                handler.close()
            except OSError:  # the last lines could not be flushed (a full disk): the store's alert said so
                pass
        self._handlers.clear()

    @staticmethod
    def on_event(event: Event) -> None:
        """Inline bus handler: orders and fills into trades.log."""
        if isinstance(event, (OrderCreated, OrderUpdated)):
            o = event.order
            _trade(
                "order %s %s %s %s %s @ %s filled %s status %s by %s",
                o.client_id,
                o.symbol,
                o.side,
                o.type,
                o.amount,
                o.price if o.price is not None else "market",
                o.filled,
                o.status.value,
                o.origin,
            )
        elif isinstance(event, FillReceived):
            f = event.fill
            _trade(
                "fill %s %s %s %s @ %s fee %s %s order %s",
                f.trade_id,
                f.symbol,
                f.side,
                f.amount,
                f.price,
                f.fee,
                f.fee_asset or "",
                f.client_id or "-",
            )


# Trade lines of this turn of the event loop: (time, message, args), made into log records once the code that
# learnt them yields (a cancel-all's 100 reports must not wait for 100 log records before its next request).
_lines: list[tuple[float, str, tuple[object, ...]]] = []


def _trade(msg: str, *args: object) -> None:
    """One trades.log line, stamped now, written when the running code yields to the event loop (at once with no
    loop running)."""
    if not TRADES.isEnabledFor(logging.INFO):
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _record(time.time(), msg, args)
        return
    if not _lines:
        loop.call_soon(_write_lines)
    _lines.append((time.time(), msg, args))


def _write_lines() -> None:
    lines = list(_lines)
    _lines.clear()
    for when, msg, args in lines:
        _record(when, msg, args)


def _record(when: float, msg: str, args: tuple[object, ...]) -> None:
    # Made directly: ``Logger.info`` would also walk the stack for the caller's file and line, which nobody reads.
    record = TRADES.makeRecord(TRADES.name, logging.INFO, __file__, 0, msg, args, None)
    record.created, record.msecs = when, (when - int(when)) * 1000
    TRADES.handle(record)
