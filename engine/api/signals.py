"""The kill switch by signal: when the store cannot carry a command (a full disk), a shell on the host still
reaches the running engine.

``cockpit halt``, ``cancel-all`` and ``close-all`` normally queue their command in the store; when the store cannot
be written they send the engine one of these signals instead. The engine carries it out through its one
``execute`` as ``operator:signal`` (a signal says nothing of who sent it) and shows it on its beacon. Only the
kill switch's tiers have a signal: anything else waits until the store writes again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

log = logging.getLogger(__name__)

SIGNAL_ACTOR = "operator:signal"

# command name -> signal. SIGRTMIN+n exists on Linux; elsewhere close-all has no signal.
KILL_SIGNALS: dict[str, int] = {"halt": signal.SIGUSR1, "cancel-all": signal.SIGUSR2}
if hasattr(signal, "SIGRTMIN"):
    KILL_SIGNALS["close-all"] = signal.SIGRTMIN + 1


def install(loop: asyncio.AbstractEventLoop, on_command: Callable[[str], None]) -> list[int]:
    """Call ``on_command(name)`` when one of the kill switch's signals arrives; returns the signals taken."""
    taken = []
    for name, number in KILL_SIGNALS.items():
        try:
            loop.add_signal_handler(number, on_command, name)
        except (NotImplementedError, RuntimeError, ValueError) as exc:  # not the main thread, or no such signal
            log.warning("the %s signal is not taken here: %s", name, exc)
            continue
        taken.append(number)
    return taken


def uninstall(loop: asyncio.AbstractEventLoop, taken: list[int]) -> None:
    for number in taken:
        loop.remove_signal_handler(number)


def send(pid: int, command: str) -> str | None:
    """Send ``command``'s signal to the engine ``pid``; None when sent, else why not."""
    number = KILL_SIGNALS.get(command)
    if number is None:
        return f"{command} has no signal: it waits until the store can be written"
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        return f"the engine (pid {pid}) is not running"
    except PermissionError:
        return f"no permission to signal the engine (pid {pid}): run as the user who started it"
    return None
