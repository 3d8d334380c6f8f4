"""Text from outside the program made inert before a terminal, a log line or a report shows it.

A reason typed by an operator, a venue's error message, an alert's words, a symbol or strategy name, a chat message:
any of them may carry terminal escapes (``ESC [2J`` wipes the screen, ``ESC ]0;...BEL`` retitles the window),
C1 controls, bidirectional overrides that reorder what the eye reads, or Markdown and Rich markup. The store and
JSON keep the text faithfully; everything that *shows* it passes it through here first:

- ``inert`` gives one line: every control character, DEL, C1 control, bidi or zero-width format character, line or
  paragraph separator and lone surrogate (an undecodable byte of a command line) is replaced by a visible escape
  (``\\x1b``, ``\\u202e``); a newline or tab becomes a space unless ``lines`` is set; a very long text is cut
  with an ellipsis.
- ``inert_md`` does the same and also escapes what Markdown would read as markup.
- ``InertFormatter`` passes plain-text log lines (a terminal's stderr, ``cockpit.log``) through ``inert``.

Rich markup is the front end's concern: the TUI renders outside text as ``rich.text.Text`` (never as markup) after
``inert``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

# Everything but printable ASCII is looked at one character at a time (plain ASCII text costs one regex scan).
_SUSPECT = re.compile(r"[^\x20-\x7e]")
# Characters a terminal or a renderer acts on instead of showing: C0 controls, DEL, C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Unicode categories shown as escapes: format characters (bidi overrides and isolates, zero-width joiners and
# spaces, soft hyphen, byte-order mark), lone surrogates, line and paragraph separators.
_ESCAPED_CATEGORIES = frozenset({"Cf", "Cs", "Zl", "Zp"})
# Markdown's punctuation that is markup wherever it stands (emphasis, code, links, images, HTML, entities,
# strike-through, tables, math, escapes); an underscore inside a word (``flash_crash``) is never emphasis.
_MD_INLINE = re.compile(r"([\\`*\[\]<>&~|$]|(?<![^\W_])_|_(?![^\W_]))")
# What is markup only at the start of a line (headings, lists, quotes, rules, setext underlines); a text made
# inert is one line, so only its start can be a line's start: ``# x``, ``- x``, ``+ x``, ``1. x``, ``2) x``, ``===``.
_MD_LINE_START = re.compile(r"^(\s*(?:\d+(?=[.)]))?)([#\-+=.)])")
ELLIPSIS = "…"


def _visible(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _is_format(ch: str) -> bool:
    """Bidi overrides and isolates, zero-width joiners, marks and other invisible format characters (Cf), lone
    surrogates (Cs), line and paragraph separators (Zl, Zp)."""
    return unicodedata.category(ch) in _ESCAPED_CATEGORIES


def _shown(ch: str, lines: bool) -> str:
    if ch == "\n":
        return ch if lines else " "
    if ch == "\t" or (ch == "\r" and not lines):
        return " "
    if _CONTROL.match(ch) or _is_format(ch):
        return _visible(ch)
    return ch


def inert(text: object, *, limit: int | None = 2000, lines: bool = False) -> str:
    """``text`` as plain characters that show as themselves; at most ``limit`` characters (None: no limit).

    With ``lines``, newlines are kept (a carriage return is then shown as ``\\x0d``: it would overwrite the line).
    A cut never splits an escape: the text ends on whole characters and the ellipsis."""
    source = str(text)
    if limit is not None and len(source) > limit:
        source = source[: limit + 1]  # each character shows as one or more: what is past this is cut anyway
    if _SUSPECT.search(source) is None:
        shown = source
    else:
        shown = _SUSPECT.sub(lambda m: _shown(m.group(), lines), source)
    if limit is None or len(shown) <= limit:
        return shown
    if shown is source:
        return source[: max(limit - 1, 0)] + ELLIPSIS
    out: list[str] = []
    used = 0
    for ch in source:
        piece = _shown(ch, lines) if _SUSPECT.match(ch) else ch
        if used + len(piece) > limit - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + ELLIPSIS


def inert_md(text: object, *, limit: int | None = 2000) -> str:
    """``inert`` for a Markdown report: also escapes what Markdown would read as markup or a table's cell edge."""
    shown = _MD_INLINE.sub(r"\\\1", inert(text, limit=limit))
    return _MD_LINE_START.sub(r"\1\\\2", shown, count=1)


class InertFormatter(logging.Formatter):
    """Plain-text log lines with outside text made inert: a reason or a venue's error logged to a terminal cannot
    wipe or retitle it, nor forge a log line with a newline. One line per record; a traceback keeps its lines
    (each made inert)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return inert(super().formatMessage(record), limit=None)

    def formatException(self, ei: Any) -> str:
        return inert(super().formatException(ei), limit=None, lines=True)

    def formatStack(self, stack_info: str) -> str:
        return inert(super().formatStack(stack_info), limit=None, lines=True)
