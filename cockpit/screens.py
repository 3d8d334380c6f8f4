"""Small modal screens: a yes/no question asked once, for actions that should not happen by accident."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class Confirm(ModalScreen[bool]):
    """Asks one question; ``y`` answers yes, ``n`` or Escape answers no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 64; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    Confirm .keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, question: str, epoch: int | None = None) -> None:
        super().__init__()
        self.question = question
        self.epoch = epoch  # the trading state's epoch it was asked in; None: not about the trading state

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question)
            yield Static("y: yes   n / Esc: no", classes="keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TooSmall(ModalScreen[None]):
    """Shown while the terminal is under 80×24: says so, and h and c still work (they are the app's keys)."""

    DEFAULT_CSS = """
    TooSmall { align: center middle; background: $error 30%; }
    TooSmall > Static { width: auto; height: auto; padding: 0 1; background: $surface; }
    """

    def __init__(self, need: tuple[int, int]) -> None:
        super().__init__()
        self.need = need
        self.message = Static()

    def compose(self) -> ComposeResult:
        yield self.message

    def show(self, width: int, height: int, state: str) -> None:
        w, h = self.need
        self.message.update(f"terminal too small: need {w}×{h}, have {width}×{height}\n"
                            f"trading is {state} · h: halt · c: cancel all")
