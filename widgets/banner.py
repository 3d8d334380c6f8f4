"""The top banner: mode and trading state in words an operator acts on, who set it and when, the venue's
connection and the keys that matter now; under it, the latest unacknowledged CRIT alert, when there is one.

Its first word after the mode never claims ACTIVE trading before the venue is connected: until then it says
CONNECTING, with the trading state beside it in brackets (a HALTED state is said as it is: it claims nothing). A
screen attached to an engine elsewhere that lost it says ENGINE UNREACHABLE in red, since when, the state it last
saw (in brackets: it may have moved since) and what to use instead of the keys."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

STATE_STYLE = {
    "ACTIVE": "bold black on green",
    "REDUCE_ONLY": "bold black on yellow",
    "HALTED": "bold white on red",
    "STARTING": "bold reverse",
}
# What the operator can do next, in the banner's words (the footer has every key).
STATE_HINT = {
    "ACTIVE": "h: halt · c: cancel all · x: close all",
    "REDUCE_ONLY": "only reducing orders · h: halt · u: resume",
    "HALTED": "u: resume · x: close all",
    "STARTING": "the engine is starting; h c x wait for it and run at once",
}
# ... and an attached screen's until it reaches its engine (a running one: not "starting").
REACHING_HINT = "reaching the engine; h c x wait for it and run at once"
CONNECTING_STYLE = "bold black on yellow"
UNREACHABLE_STYLE = "bold white on red"
KILL_KEYS_HINT = "h: halt · c: cancel all · x: close all"


class StatusBanner(Static):
    """``LIVE · HALTED by ws_stale at 14:25:30 · u: resume`` over ``● connected sim 127.0.0.1:9100``; ``connected``
    is None until the venue is first connected (then CONNECTING, never a guessed ACTIVE)."""

    DEFAULT_CSS = """
    StatusBanner { height: 2; width: 1fr; background: $boost; }
    StatusBanner.-unreachable { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    mode: reactive[str] = reactive("paper")
    state: reactive[str] = reactive("STARTING")  # until the engine's first picture (never a guessed ACTIVE)
    venue: reactive[str] = reactive("")
    connected: reactive[bool | None] = reactive(None)
    detail: reactive[str] = reactive("")
    set_by: reactive[str] = reactive("")  # who or what set the state, and when: "ws_stale at 14:25:30"
    kill_switch: reactive[str] = reactive("")  # a kill switch still retrying: "retrying: 2 order(s) left"
    unreachable: reactive[str] = reactive("")  # an attached screen's engine lost: "since 14:25:31"
    unreachable_hint: reactive[str] = reactive("")  # what to use instead of h c x meanwhile
    attached: reactive[str] = reactive("")  # an attached screen: "attached to the engine (pid 4242) · q detaches"
    reaching: reactive[bool] = reactive(False)  # an attached screen's: its STARTING is the engine being reached

    @property
    def connecting(self) -> bool:
        """Trading would be ACTIVE (or reduce-only) but the venue is not connected: not yet, or not any more."""
        return self.state in ("ACTIVE", "REDUCE_ONLY") and self.connected is not True

    def watch_unreachable(self, unreachable: str) -> None:
        """While the engine is out of reach both lines say something: each is cut at the width, never wrapped."""
        self.set_class(bool(unreachable), "-unreachable")

    def headline(self) -> Text:
        """The first line: ``PAPER · HALTED by ws_stale at 14:25:30 · u: resume · x: close all``, or
        ``PAPER · CONNECTING (trading ACTIVE) · h: halt ...`` while the venue is not connected."""
        text = Text()
        if self.unreachable:
            text.append(f" ENGINE UNREACHABLE {self.unreachable} ", style=UNREACHABLE_STYLE)
            text.append(f"· last seen {self.mode.upper()} · {self.state} ", style="bold")
            text.append("· h c x cannot reach it (below)" if self.unreachable_hint else "")
            return text
        if self.connecting:
            word = "trading ACTIVE" if self.state == "ACTIVE" else self.state
            text.append(f" {self.mode.upper()} · CONNECTING ({word}) ", style=CONNECTING_STYLE)
            text.append(f"· {KILL_KEYS_HINT}")
            return text
        label = f" {self.mode.upper()} · {self.state}"
        if self.set_by and self.state != "ACTIVE":
            label += f" by {self.set_by}"
        text.append(label + " ", style=STATE_STYLE.get(self.state, "bold reverse"))
        hint = REACHING_HINT if self.state == "STARTING" and self.reaching else STATE_HINT.get(self.state, "")
        text.append(f"· {hint}", style="bold" if self.state == "HALTED" else "")
        return text

    def render(self) -> Text:
        text = self.headline()
        text.append("\n ")
        if self.unreachable:
            text.append("● reconnecting…", style="bold red")
            if self.unreachable_hint:
                text.append(f" · {self.unreachable_hint}", style="bold")
            return text
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
        if self.attached:
            text.append(f" │ {self.attached}", style="dim")
        if self.kill_switch:
            text.append(f" │ KILL SWITCH {self.kill_switch}", style="bold white on red")
        return text


class CritBanner(Static):
    """The newest unacknowledged CRIT alert across the screen: what, when, and the key that acknowledges it.
    Hidden when none is waiting."""

    DEFAULT_CSS = """
    CritBanner { height: 1; width: 1fr; background: $error; color: $text; text-style: bold; display: none; }
    CritBanner.-shown { display: block; }
    """

    def show_alert(self, alert_id: int, when: str, code: str, message: str, waiting: int) -> None:
        more = f" (+{waiting - 1} more)" if waiting > 1 else ""
        self.update(Text(f" CRIT {when} {code}: {message}{more} · a: ack · l: alert log"))  # as written, no markup
        self.set_class(True, "-shown")
        self.alert_id = alert_id

    def clear(self) -> None:
        self.set_class(False, "-shown")
        self.alert_id = None
