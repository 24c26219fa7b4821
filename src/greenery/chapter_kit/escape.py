"""Values from the export are data: wherever the book shows them, they read as literal text.

A product or promo name may hold HTML, Markdown, MyST roles, `$math$`, control characters or
bidirectional-text controls. `plain` makes a value safe to print anywhere (no control
character survives: they break XML and SVG, or reorder the text around them); `markdown`
escapes it for prose that the book parses as MyST; `html` for raw HTML. Chart labels are plain
text because the book's charts never parse mathtext (greenery.chapter_kit.book.setup).
"""

from __future__ import annotations

import html as _html
import re
import string
import unicodedata

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def _visible(char: str) -> str:
    if char in "\t\n\r":
        return " "
    category = unicodedata.category(char)
    if category == "Cc":  # NUL and other control characters: invalid in XML, meaningless in a name
        return "\ufffd"
    if category == "Cf":  # bidirectional and other invisible format characters: shown, not obeyed
        return f"<U+{ord(char):04X}>"
    return char


def plain(value: object) -> str:
    """The value as printable text: control characters replaced, invisible formatting made visible."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_visible(c) for c in text)


def markdown(value: object) -> str:
    """The value escaped for Markdown/MyST prose: every ASCII punctuation character backslash-escaped
    (CommonMark allows it for all of them), so no markup, role, link, HTML or math is formed."""
    return _PUNCTUATION.sub(r"\\\1", plain(value))


def html(value: object) -> str:
    """The value escaped for raw HTML."""
    return _html.escape(plain(value), quote=True)
