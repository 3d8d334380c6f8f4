"""The one program: ``cockpit`` opens the TUI; subcommands run the simulator or the engine headless.

``--config FILE`` and ``--data-dir DIR`` are accepted by every subcommand, before or after its name.

``main`` is the program's entry (``cockpit``, ``python -m cockpit.cli``). It hands the kill switch and the status
from a second shell to ``cockpit.quick`` first, which answers through a running engine's socket before anything
else of the program is imported; for everything else it runs the full program, in rooms by what each part does:

- ``parser.py``: every subcommand's arguments, flags and help, so the command line reads as one contract;
- ``dispatch.py``: a parsed command line to what carries it out, the settings loaded on the way, and the exit
  codes of the values the parser cannot judge alone;
- ``remote.py``: the commands of the engine's table (``halt``, ``order``, ``reconcile`` ...), sent to the engine
  running on the data directory, and ``cancel-all`` / ``close-all`` on the venue directly when none runs;
- ``screen.py``: the TUI, attached to a running engine (or to remote ones) or over an engine of its own;
- ``headless.py``: ``cockpit run --headless``, the engine itself under a service manager.
"""

from __future__ import annotations

import contextlib
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """The program (``cockpit``); the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        from cockpit import quick

        answered = quick.run(argv)  # the kill switch and status from a second shell: a running engine's socket
        if answered is None:
            from cockpit.cli.dispatch import full_program

            code = full_program(argv)
        else:
            code = answered
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped reading (`cockpit audit | head -1`): it has what it wanted. Nothing more is printed,
        # not even Python's own complaint when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code
