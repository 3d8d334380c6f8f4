"""Run the simulator in the foreground until SIGINT/SIGTERM (``cockpit sim``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from .server import Simulator

log = logging.getLogger(__name__)


async def _serve(rest_port: int, ws_port: int, seed: int, host: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with Simulator(seed=seed, rest_port=rest_port, ws_port=ws_port, host=host) as sim:
            # The operator copies these lines into the cockpit config; the secret goes to stdout only.
            print(f"REST {sim.rest_url}", flush=True)
            print(f"WS {sim.ws_url}", flush=True)
            print(f"API key {sim.api_key}", flush=True)
            print(f"API secret {sim.api_secret}", flush=True)
            await stop.wait()
            log.info("signal received, stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(rest_port: int, ws_port: int, seed: int, host: str = "127.0.0.1") -> int:
    """Serve until SIGINT/SIGTERM; print REST/WS URLs and the API key and secret once serving; return 0."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(rest_port, ws_port, seed, host))
    except KeyboardInterrupt:  # Ctrl+C before the signal handlers were installed
        return 0
    except OSError as exc:
        log.error("cannot start simulator: %s", exc)
        return 1
    return 0
