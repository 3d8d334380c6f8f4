"""``cockpit run --headless``: the engine with no screen, logging JSON lines to stderr, stopped by SIGINT or
SIGTERM, and speaking systemd's notify protocol when a service manager asks for it (docs/deploy/)."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.kernel.config import Settings


def run_headless(settings: Settings, confirm_live: bool) -> int:
    """The engine until SIGINT or SIGTERM, or until it fails; exit 2 when it could not start or stopped on an error."""
    import asyncio

    from engine.core.engine import Engine, EngineError
    from engine.ops.logfiles import JsonFormatter
    from engine.ops.sdnotify import ServiceNotifier, status_line
    from engine.store.datadir import DataDirBusy

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("cockpit").info("data in %s", Path(settings.engine.data_dir).resolve())

    async def run() -> int:
        engine = Engine(settings, confirm_live=confirm_live, take_signals=True, checks_at_start=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await engine.start()
        except (EngineError, DataDirBusy) as exc:
            logging.getLogger("cockpit").error("%s", exc)
            return 2
        # Under systemd (Type=notify, docs/deploy/): READY=1 once the venue is connected and the state restored,
        # the watchdog fed from this loop, STOPPING=1 at the stop. Nothing at all without $NOTIFY_SOCKET.
        service = ServiceNotifier()
        if service.enabled:
            engine.tasks.spawn(
                "systemd notify",
                service.serve(
                    engine.ready,
                    lambda: status_line(
                        engine.mode,
                        engine.venue_label,
                        engine.trading_state.value,
                        engine.state_info,
                        engine.ready.is_set(),
                    ),
                ),
            )
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(engine.failed.wait())
        try:
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            failing.cancel()
            why = "signal received" if stop.is_set() else "engine failed"
            service.stopping(f"stopping: {why}" + (f": {engine.fatal_error}" if engine.fatal_error else ""))
            await engine.stop(why)
        if engine.fatal_error:
            logging.getLogger("cockpit").error("%s", engine.fatal_error)
            return 2
        return 0

    return asyncio.run(run())
