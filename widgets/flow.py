"""A line of parts that wraps between parts, never inside one: ``balances USDT 9,899.95 (100.05 in orders) · BTC
0.00104`` goes on to a second line at a separator when the terminal is narrow, instead of being cut."""

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
