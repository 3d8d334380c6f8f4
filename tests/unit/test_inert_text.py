"""``engine.kernel.text``: outside text made inert before a terminal, a log line or a report shows it (issue 25 §1).

Every character a terminal or a renderer would act on instead of showing (escape sequences, C1 controls, DEL,
bidi overrides and isolates, zero-width joiners, line separators, lone surrogates) comes out as a visible escape;
markup stays literal characters; a long text is cut with an ellipsis; ordinary text is left as it is."""

from __future__ import annotations

import json
import logging
import unicodedata

import pytest

from engine.kernel.text import ELLIPSIS, inert, inert_md
from engine.ops.logfiles import InertFormatter, JsonFormatter

# What a terminal acts on: none of these may come out of ``inert``.
RAW = ("\x1b", "\x07", "\x9b", "\x7f", "\x00", "\r", "\u202e", "\u202d", "\u2066", "\u2069", "\u200d", "\u2028")


def acts_on_a_terminal(text: str) -> list[str]:
    return [
        ch
        for ch in text
        if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or unicodedata.category(ch) in ("Cf", "Cs", "Zl", "Zp")
    ]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("X\x1b[2J", "X\\x1b[2J"),  # ESC, CSI: erase the screen
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # OSC ending in BEL: retitle the window
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "\\x1b]8;;http://evil\\x1b\\link\\x1b]8;;\\x1b\\"),  # hyperlink
        ("a\x9b2Jb", "a\\x9b2Jb"),  # C1 CSI: one byte, same effect as ESC [
        ("a\x85b", "a\\x85b"),  # C1 NEL
        ("del\x7f", "del\\x7f"),
        ("nul\x00", "nul\\x00"),
        ("abc\u202edef", "abc\\u202edef"),  # RLO: what follows reads right to left
        ("\u2066iso\u2069 \u2067x\u2069 \u2068y\u2069", "\\u2066iso\\u2069 \\u2067x\\u2069 \\u2068y\\u2069"),
        ("a\u200db\u200bc\u200ed", "a\\u200db\\u200bc\\u200ed"),  # ZWJ, ZWSP, LRM
        ("\ufeffbom", "\\ufeffbom"),
        ("one\u2028two\u2029", "one\\u2028two\\u2029"),
        ("bad byte \udcff", "bad byte \\udcff"),  # a command line's undecodable byte (surrogateescape)
    ],
)
def test_what_a_terminal_acts_on_is_shown_as_a_visible_escape(text, shown):
    assert inert(text) == shown
    assert acts_on_a_terminal(inert(text)) == []


def test_markup_stays_literal_characters():
    for text in ("[red]x[/red]", "[bold red]ALERT[/]", "[link=http://x]y[/link]", "**md** [link](x) `code`", "$x"):
        assert inert(text) == text


def test_ordinary_text_is_untouched():
    for text in ("maintenance", "HALTED (drill) · 3 order(s)", "BTC/USDT", "Überweisung 済み €", "flash_crash 61.2s"):
        assert inert(text) == text


def test_newlines_and_tabs_make_one_line_unless_lines_are_asked_for():
    assert inert("a\nb\tc\r\nd") == "a b c  d"
    assert inert("a\nb\tc\rd", lines=True) == "a\nb c\\x0dd"  # a carriage return would overwrite the line


def test_a_very_long_text_is_cut_with_an_ellipsis_and_never_inside_an_escape():
    long = "x" * 10_000
    assert inert(long) == "x" * 1999 + ELLIPSIS
    assert len(inert(long, limit=50)) == 50
    assert inert(long, limit=None) == long
    escapes = inert("\x1b" * 10_000)
    assert len(escapes) <= 2000 and escapes.endswith(ELLIPSIS)
    assert escapes[:-1].replace("\\x1b", "") == ""  # whole escapes only
    assert inert("ab", limit=2) == "ab" and inert("abc", limit=2) == "a" + ELLIPSIS


def test_anything_is_shown_as_its_str():
    assert inert(ValueError("venue says \x1b[2J")) == "venue says \\x1b[2J"
    assert inert(None) == "None" and inert(3) == "3"


def test_inert_md_escapes_markdown_but_keeps_words_readable():
    assert inert_md("**md** [link](x) ![img](y) <b>&amp; `c` a|b ~~s~~") == (
        "\\*\\*md\\*\\* \\[link\\](x) !\\[img\\](y) \\<b\\>\\&amp; \\`c\\` a\\|b \\~\\~s\\~\\~"
    )
    assert inert_md("# heading") == "\\# heading"
    assert inert_md("- item") == "\\- item" and inert_md("1. one") == "1\\. one"
    assert inert_md("_em_") == "\\_em\\_"
    # What Markdown does not read as markup stays as it is: a code's underscore, a dash in a word, a sentence.
    assert inert_md("flash_crash at 2026-11-30T14:25:30.1+00:00 (drill-1). ok") == (
        "flash_crash at 2026-11-30T14:25:30.1+00:00 (drill-1). ok"
    )
    # Control characters first: the escape's backslash is itself escaped, so the report shows ``\x1b``.
    assert inert_md("X\x1b[2J\u202e") == "X\\\\x1b\\[2J\\\\u202e"
    assert acts_on_a_terminal(inert_md("a\nb\x07")) == []


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("cockpit", logging.ERROR, __file__, 1, message, args, None)


def test_plain_text_log_lines_are_inert_and_json_log_lines_keep_the_true_text():
    hostile = "X\x1b[2J\x1b]0;pwned\x07\nforged line \u202e"
    line = InertFormatter("cockpit: %(message)s").format(record("halted: %s", hostile))
    assert line == "cockpit: halted: X\\x1b[2J\\x1b]0;pwned\\x07 forged line \\u202e"
    logged = JsonFormatter().format(record("halted: %s", hostile))
    assert "\x1b" not in logged and "\u202e" not in logged  # JSON escapes them ...
    assert json.loads(logged)["msg"] == f"halted: {hostile}"  # ... and keeps the true text
