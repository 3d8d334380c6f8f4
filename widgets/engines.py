"""The engine list of a cockpit watching several engines: one line, every engine's number, name and state in
words, the one on the screen marked; hidden when the cockpit watches one engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.text import Text
from textual.widgets import Static

STYLE = {
    "ACTIVE": "bold green",
    "REDUCE_ONLY": "bold yellow",
    "HALTED": "bold white on red",
    "UNREACHABLE": "bold white on red",
    "CONNECTING": "yellow",
}


class Line(Protocol):
    number: int
    name: str  # already inert (the caller's)
    state: str
    alerts: int
    selected: bool
    viewer: bool


class EngineStrip(Static):
    """``ENGINES ▶1 prod-a ACTIVE · 2 prod-b HALTED ⚠3 · 3 lab UNREACHABLE · e: next``"""

    DEFAULT_CSS = """
    EngineStrip { height: 1; width: 1fr; display: none; text-wrap: nowrap; text-overflow: ellipsis; }
    EngineStrip.-shown { display: block; }
    """

    def show(self, lines: Sequence[Line]) -> None:
        self.set_class(len(lines) > 1, "-shown")
        text = Text(" ENGINES ", style="bold reverse")
        for line in lines:
            text.append("  ")
            mark = "▶" if line.selected else " "
            text.append(f"{mark}{line.number} {line.name} ", style="bold underline" if line.selected else "")
            text.append(line.state, style=STYLE.get(line.state, "bold"))
            if line.alerts:
                text.append(f" ⚠{line.alerts}", style="bold yellow")
            if line.viewer:
                text.append(" (viewer)", style="dim")
        text.append("  · e: next", style="dim")
        self.update(text)
        self.lines = list(lines)
