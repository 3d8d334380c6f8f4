"""The top banner: mode and trading state in words, the venue, and what the operator's keys will do."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLE = {
    "ACTIVE": "bold black on green",
    "REDUCE_ONLY": "bold black on yellow",
    "HALTED": "bold white on red",
}
STATE_HINT = {
    "ACTIVE": "trading · h: halt · c: cancel all · x: close all",
    "REDUCE_ONLY": "only position-reducing orders · h: halt · x: close all",
    "HALTED": "no new orders · x: close all · u: resume",
}


class StatusBanner(Static):
    """Shows e.g. ``LIVE · HALTED by ws_stale at 14:25:30  no new orders · u: resume`` and the venue's
    connection."""

    DEFAULT_CSS = """
    StatusBanner { height: 2; width: 1fr; background: $boost; }
    """

    mode: reactive[str] = reactive("paper")
    state: reactive[str] = reactive("ACTIVE")
    venue: reactive[str] = reactive("")
    connected: reactive[bool | None] = reactive(None)
    detail: reactive[str] = reactive("")
    equity: reactive[str] = reactive("")
    set_by: reactive[str] = reactive("")  # who or what set the state, and when: "ws_stale at 14:25:30"

    def render(self) -> Text:
        text = Text()
        label = f" {self.mode.upper()} · {self.state} "
        if self.set_by and self.state != "ACTIVE":
            label += f"by {self.set_by} "
        text.append(label, style=STATE_STYLE.get(self.state, "bold reverse"))
        text.append(f" {STATE_HINT.get(self.state, '')}", style="bold" if self.state == "HALTED" else "")
        text.append("\n ")
        if self.connected is None:
            text.append("● connecting", style="yellow")
        elif self.connected:
            text.append("● connected", style="green")
        else:
            text.append("● DISCONNECTED", style="bold red")
            if self.detail:
                text.append(f" ({self.detail})", style="red")
        if self.venue:
            text.append(f" {self.venue}", style="dim")
        if self.equity:
            text.append(" │ equity ")
            text.append(self.equity, style="bold")
        return text
