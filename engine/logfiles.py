"""JSON log files in the data directory, rotated: ``trading.log`` (everything the engine logs, alerts included),
``errors.log`` (warnings, errors and CRIT alerts) and ``trades.log`` (every order event and fill), one JSON
object per line."""

from __future__ import annotations

import json
import logging
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from engine.events import Event, FillReceived, OrderCreated, OrderUpdated

TRADES = logging.getLogger("cockpit.trades")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message."""

    converter = time.gmtime

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


class _FileHandler(RotatingFileHandler):
    """A log file that, when the disk refuses a line (full, read-only), drops it without printing a traceback
    to the terminal: the store's STORE_WRITE_FAILED alert says what is wrong and what to do."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class LogFiles:
    """Opens the three files on the root and trades loggers; ``close`` takes them off again."""

    def __init__(self, data_dir: Path, max_bytes: int, backups: int) -> None:
        self.data_dir = Path(data_dir)
        self.max_bytes = max_bytes
        self.backups = backups
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []

    def open(self) -> None:
        for logger, name, level in ((logging.getLogger(), "trading.log", logging.INFO),
                                    (logging.getLogger(), "errors.log", logging.WARNING),
                                    (TRADES, "trades.log", logging.INFO)):
            handler = _FileHandler(self.data_dir / name, maxBytes=self.max_bytes, backupCount=self.backups,
                                   encoding="utf-8")
            handler.setLevel(level)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
            self._handlers.append((logger, handler))
        TRADES.setLevel(logging.INFO)

    def close(self) -> None:
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
            TRADES.info("order %s %s %s %s %s @ %s filled %s status %s by %s", o.client_id, o.symbol, o.side,
                        o.type, o.amount, o.price if o.price is not None else "market", o.filled, o.status.value,
                        o.origin)
        elif isinstance(event, FillReceived):
            f = event.fill
            TRADES.info("fill %s %s %s %s @ %s fee %s %s order %s", f.trade_id, f.symbol, f.side, f.amount, f.price,
                        f.fee, f.fee_asset or "", f.client_id or "-")
