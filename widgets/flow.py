"""Lines of parts fitted to the width. ``Flow`` wraps between parts, never inside one (a list screen's selected row
under its table: ``▸ symbol BTC/USDT · side BUY ...`` goes on to a second line at a separator instead of being cut);
``Fitted`` keeps to one line by taking the first of its forms that fits (the main screen's balances: a line that
never grows, so the panels under it never move)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text


class Flow:
    """``lead`` then ``parts`` joined by ``separator``, packed into as many lines as the width needs; a part wider
    than a whole line is wrapped on its own."""

    def __init__(self, parts: Sequence[Text], lead: Text | None = None, separator: str = " · ") -> None:
        self.parts = list(parts)
        self.lead = lead or Text()
        self.separator = separator

    def lines(self, width: int) -> Text:
        width = max(1, width)
        out = self.lead.copy()
        line = out.cell_len
        for i, part in enumerate(self.parts):
            sep = self.separator if i else ""
            if i and line + len(sep) + part.cell_len > width:
                out.append(self.separator.rstrip() + "\n")
                line = 0
                sep = "  "  # the next line starts indented, under the first part
            out.append(sep)
            out.append_text(part)
            line += len(sep) + part.cell_len
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.lines(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, self.lines(10**6).cell_len)

    @property
    def plain(self) -> str:
        return self.lines(10**6).plain

    def __str__(self) -> str:
        return self.plain


class Fitted:
    """The first of ``forms`` (the fullest first) that fits the width on one line; the last one, cut with an
    ellipsis, when none does. Chosen when drawn, so a resize picks again with no redraw of the model."""

    def __init__(self, forms: Sequence[Text]) -> None:
        self.forms = list(forms) or [Text()]

    def fit(self, width: int) -> Text:
        for form in self.forms:
            if form.cell_len <= width:
                return form
        last = self.forms[-1].copy()
        last.truncate(max(1, width), overflow="ellipsis")
        return last

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line = self.fit(options.max_width).copy()
        line.no_wrap = True
        yield line

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, self.forms[0].cell_len)

    @property
    def plain(self) -> str:
        return self.forms[0].plain

    def __str__(self) -> str:
        return self.plain
