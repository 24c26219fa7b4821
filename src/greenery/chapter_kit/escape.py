"""Values from the export are data: wherever the book shows them, they read as literal text, bounded.

A product or promo name may hold HTML, Markdown, MyST roles, `$math$`, control characters,
escape sequences or bidirectional-text controls, and may be a megabyte long. `plain` makes a
value safe to print anywhere: every control character (C0, DEL, C1: NUL, ESC, ...) and every
invisible format character is shown as a visible escape `<U+001B>` (raw, they break XML and SVG,
drive a terminal, or reorder the text around them), and the text is cut to `MAX_SHOWN`
characters with an ellipsis (the full value stays in the warehouse). `markdown` escapes it for
prose that the book parses as MyST; `html` for raw HTML; `chart` also replaces what the charts'
font cannot draw; `terminal` is for the command's own output, where line breaks are kept.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import cache

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
# The longest value from the data a page or chart shows: a name of a few words fits in full, a
# megabyte-long one costs no more than any other (it once made two chapters take 97 s each and
# two 86 MB charts). Everything that shows data passes through `plain`, so this bounds them all.
MAX_SHOWN = 80
# A table cell: long enough for the chapters' own descriptions (the longest is about 700), a bound
# all the same for a value from the data.
MAX_CELL = 1000
ELLIPSIS = "…"


def _escaped(char: str) -> str:
    return f"<U+{ord(char):04X}>"


def _visible(char: str) -> str:
    if char in "\t\n\r":
        return " "
    if unicodedata.category(char) in ("Cc", "Cf"):  # controls and invisible formatting: shown, never obeyed
        return _escaped(char)
    return char


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """`text` cut to `limit` characters, the last one an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def plain(value: object, limit: int | None = MAX_SHOWN) -> str:
    """The value as printable text of at most `limit` characters (plus the escapes of what it holds;
    None: uncut, for prose the chapter composed): control characters and invisible formatting shown
    as `<U+XXXX>`, line breaks as spaces."""
    text = str(value)
    if limit is not None:
        text = shorten(text[:limit + 1], limit)  # cut first: a huge value is never scanned whole
    if text.isprintable():
        return text
    return "".join(_visible(c) for c in text)


def markdown(value: object) -> str:
    """The value escaped for Markdown/MyST prose: every ASCII punctuation character backslash-escaped
    (CommonMark allows it for all of them), so no markup, role, link, HTML or math is formed."""
    return _PUNCTUATION.sub(r"\\\1", plain(value))


def html(value: object) -> str:
    """The value escaped for raw HTML."""
    import html as _html  # here: `greenery build` escapes its messages with `terminal`, never loads html's entities

    return _html.escape(plain(value), quote=True)


@cache
def _chart_font_charmap() -> frozenset[int]:
    """The characters the charts' font can draw (matplotlib's own DejaVu Sans, the first of
    font.sans-serif that it finds; greenery.chapter_kit.book.setup pins it)."""
    import matplotlib
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont(font_manager.FontProperties(family=matplotlib.rcParams["font.family"]),
                                 fallback_to_default=True)
    return frozenset(FT2Font(path).get_charmap())


def chart(value: object) -> str:
    """A value as a chart label: `plain`, and each character the font lacks (an emoji in DejaVu Sans)
    shown as its `<U+XXXX>` escape, so matplotlib never warns of a missing glyph nor draws a box."""
    text = plain(value)
    drawable = _chart_font_charmap()
    if all(ord(c) in drawable or c == " " for c in text):
        return text
    return "".join(c if ord(c) in drawable or c == " " else _escaped(c) for c in text)


_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def terminal(text: str) -> str:
    """Text for the command's own output: every control character but line break and tab (ESC, CR,
    BEL, C1, bidirectional controls, the line and paragraph separators U+2028 and U+2029) shown as its
    `<U+XXXX>` escape, so no value can drive the terminal."""
    return _TERMINAL_CONTROL.sub(lambda m: _escaped(m.group()), text)
