"""Text from outside the program made inert before a terminal, a log line or a report shows it.

A reason typed by an operator, a venue's error message, an alert's words, a symbol or strategy name, a chat message:
any of them may carry terminal escapes (``ESC [2J`` wipes the screen, ``ESC ]0;...BEL`` retitles the window),
C1 controls, bidirectional overrides that reorder what the eye reads, or Markdown and Rich markup. The store and
JSON keep the text faithfully; everything that *shows* it passes it through here first:

- ``inert`` gives one line: every control character, DEL, C1 control and bidi or zero-width format character is
  replaced by a visible escape (``\\x1b``, ``\\u202e``); a newline or tab becomes a space unless ``lines`` is set;
  a very long text is cut with an ellipsis.
- ``inert_md`` does the same and also escapes what Markdown would read as markup.

Rich markup is the front end's concern: the TUI renders outside text as ``rich.text.Text`` (never as markup) after
``inert``.
"""

from __future__ import annotations

import re
import unicodedata

# Characters a terminal or a renderer acts on instead of showing: C0 controls, DEL, C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Markdown's punctuation that could start markup (links, emphasis, headings, tables, code, HTML).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")
ELLIPSIS = "…"


def _visible(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _is_format(ch: str) -> bool:
    """Bidi overrides and isolates, zero-width joiners, marks and other invisible format characters (Cf)."""
    return unicodedata.category(ch) == "Cf"


def inert(text: object, *, limit: int | None = 2000, lines: bool = False) -> str:
    """``text`` as plain characters that show as themselves; at most ``limit`` characters (None: no limit)."""
    out: list[str] = []
    for ch in str(text):
        if lines and ch == "\n":
            out.append(ch)
        elif ch in "\n\t\r" and not lines:
            out.append(" ")
        elif ch == "\t":
            out.append(" ")
        elif _CONTROL.match(ch) or _is_format(ch):
            out.append(_visible(ch))
        else:
            out.append(ch)
    shown = "".join(out)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(limit - 1, 0)] + ELLIPSIS
    return shown


def inert_md(text: object, *, limit: int | None = 2000) -> str:
    """``inert`` for a Markdown report: also escapes what Markdown would read as markup or a table's cell edge."""
    return _MD_SPECIAL.sub(r"\\\1", inert(text, limit=limit))
