"""The notice line: what a key just did, said above the footer for a few seconds instead of a toast over the
panels. It takes lines from the panels above it only while it shows. An error stays longer, and a later notice
does not push it away before its time: it is shown under the error until then."""

from __future__ import annotations

import time

from rich.text import Text
from textual.timer import Timer
from textual.widgets import Static

STYLE = {"information": "", "warning": "bold yellow", "error": "bold white on red"}
ERRORS_KEPT = 2  # errors shown at once (the newest); with the newest other notice under them


class NoticeLine(Static):
    """``Halt · HALTED (by operator:key: h pressed in cockpit)``: the title in bold, the words as given (the caller
    made them inert), each hidden again after its own ``seconds``."""

    DEFAULT_CSS = """
    NoticeLine { height: auto; max-height: 3; width: 1fr; padding: 0 1; background: $boost; display: none; }
    NoticeLine.-shown { display: block; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._timer: Timer | None = None
        self._shown: list[tuple[float, str, Text]] = []  # (until, severity, text), oldest first

    def show(self, message: str, title: str = "", severity: str = "information", seconds: float = 4.0) -> None:
        text = Text()
        if title:
            text.append(f"{title} · ", style="bold")
        text.append(message, style=STYLE.get(severity, ""))
        now = time.monotonic()
        errors = [e for e in self._shown if e[0] > now and e[1] == "error"]
        room = ERRORS_KEPT - (severity == "error")
        self._shown = [*(errors[len(errors) - room :] if room > 0 else []), (now + seconds, severity, text)]
        self._draw()

    def _draw(self) -> None:
        now = time.monotonic()
        self._shown = [e for e in self._shown if e[0] > now]
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.set_class(bool(self._shown), "-shown")
        self.update(Text("\n").join(e[2] for e in self._shown))
        if self._shown:
            self._timer = self.set_timer(min(e[0] for e in self._shown) - now, self._draw)

    def clear(self) -> None:
        self._shown = []
        self._draw()

    @property
    def text(self) -> str:
        """What it says now, one notice a line (empty when hidden)."""
        return "\n".join(e[2].plain for e in self._shown)

    @property
    def shown(self) -> bool:
        return self.has_class("-shown")
