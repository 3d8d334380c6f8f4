"""The questions the app asks over any screen, and the notice of a terminal too small.

They are the app's own (it checks for them on every key and every notice), so they load with it; the other screens
(``cockpit.screens``) load when one is first opened, after the first frame. Each question is asked once: ``y``
answers yes, ``n`` or Escape no; the kill switch's keys work over every one of them.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from cockpit.views import shown


class Confirm(ModalScreen[bool]):
    """Asks one question; ``y`` answers yes, ``n`` or Escape answers no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical {
        width: 64; max-width: 100%; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    Confirm .keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, question: str, epoch: int | None = None) -> None:
        super().__init__()
        self.question = question
        self.epoch = epoch  # the trading state's epoch it was asked in; None: not about the trading state

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(shown(self.question, lines=True))
            yield Static("y: yes   n / Esc: no", classes="keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class OverrideReason(ModalScreen[str | None]):
    """The second question of a refused resume: why resuming past the monitors is safe, in the operator's words.
    Enter sends it (an empty reason is refused), Esc answers no. While the field has the cursor, letters are
    typed into it: the kill-switch keys work again after Esc (the screen says so)."""

    BINDINGS = [Binding("escape", "cancel", "No", id="override.cancel")]
    DEFAULT_CSS = """
    OverrideReason { align: center middle; }
    OverrideReason > Vertical {
        width: 72; max-width: 100%; height: auto; border: thick $error; background: $surface; padding: 1 2;
    }
    OverrideReason #error { color: $error; height: auto; }
    OverrideReason .keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, refusal: str, epoch: int | None = None) -> None:
        super().__init__()
        self.refusal = refusal
        self.epoch = epoch

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(shown(f"Override: {self.refusal}", lines=True))
            yield Static("Why is resuming safe now? (audited and alerted as an override)")
            yield Input(placeholder="e.g. market checked by hand: the spread is back", id="reason")
            yield Static(id="error")
            yield Static("Enter: resume past the monitors · Esc: no (then h / c / x work again)", classes="keys")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if not reason:
            self.query_one("#error", Static).update("A reason is needed: say why resuming is safe.")
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitChoice(ModalScreen[str | None]):
    """Quitting with orders or positions open: keep them, cancel every order, or close everything; Esc stays. On
    the built-in simulator (``simulator``) nothing can be kept: k quits and says so."""

    # c and x are the app's kill-switch keys (priority, on every screen); while this question is open they
    # answer it (CockpitApp.action_cancel_all / action_close_all), so the kill switch runs once, for the quit.
    BINDINGS = [
        Binding("k", "choose('keep')", "Keep", id="quit.keep"),
        Binding("escape", "choose(None)", "Stay", id="quit.stay"),
    ]
    DEFAULT_CSS = """
    QuitChoice { align: center middle; }
    QuitChoice > Vertical {
        width: 70; max-width: 100%; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    QuitChoice .keys { margin-top: 1; }
    """

    def __init__(self, what: str, epoch: int | None = None, simulator: bool = False) -> None:
        super().__init__()
        self.what = what
        self.epoch = epoch
        self.simulator = simulator

    def compose(self) -> ComposeResult:
        keep = "k: quit, and they end with it" if self.simulator else "k: keep them at the venue, unwatched"
        with Vertical():
            yield Static(shown(f"Quit cockpit? {self.what}", lines=True))
            yield Static(
                f"{keep} · c: cancel every order, then quit\n"
                "x: close everything (cancel and sell at market), then quit · Esc: stay",
                classes="keys",
            )

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class TooSmall(ModalScreen[None]):
    """Shown while the terminal is under 80×24: says so, with the banner's own first line kept live (the trading
    state as it is now, who set it), the kill switch's keys that still work here (h, c and x: the app's, priority)
    and the last thing a key did. Its words wrap to the terminal's width."""

    DEFAULT_CSS = """
    TooSmall { align: center top; background: $error 30%; }
    TooSmall > Static { width: auto; max-width: 100%; height: auto; padding: 0 1; background: $surface; }
    """
    KEYS = "still working here: h: halt · c: cancel all · x: close all (asks once)"

    def __init__(self, need: tuple[int, int]) -> None:
        super().__init__()
        self.need = need
        self.message = Static()
        self.size_seen: tuple[int, int] = (0, 0)
        self.headline = Text()
        self.last = Text()

    def compose(self) -> ComposeResult:
        yield self.message

    def show(self, width: int, height: int, headline: Text | str | None = None, last: Text | None = None) -> None:
        """Draw the notice for a ``width`` × ``height`` terminal; ``headline``: the banner's first line now;
        ``last``: what a key just did (kept until the next)."""
        self.size_seen = (width, height)
        if headline is not None:
            self.headline = headline if isinstance(headline, Text) else Text(headline)
        if last is not None:
            self.last = last
        w, h = self.need
        text = Text()
        text.append_text(self.headline)
        text.append(f"\nterminal too small: need {w}×{h}, have {width}×{height}\n")
        text.append(self.KEYS, style="bold")
        if self.last.plain:
            text.append("\n")
            text.append_text(self.last)
        self.message.update(text)

    @property
    def text(self) -> str:
        """What the notice says now, as plain text."""
        content = self.message.content
        return content.plain if isinstance(content, Text) else str(content)
