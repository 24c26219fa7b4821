"""A Sphinx math renderer that draws formulas at build time with matplotlib's mathtext.

The book must read from `file://` with no network, so it cannot load MathJax from a CDN. Each
formula ($...$ and $$...$$) becomes an SVG image embedded in the page itself (a `data:` URI, so
glyph ids of two formulas never collide), with the formula in plain words as its alternative text
(`spoken`: "repeat rate equals users with two or more orders divided by users with at least one
order"), never the raw LaTeX a screen reader would spell out. It prints as sharply as it shows.
Enabled in _config.yml: `html_math_renderer: greenery_svg`.
"""

from __future__ import annotations

import base64
import io
import re
from functools import cache

from docutils import nodes

INLINE_SIZE, BLOCK_SIZE = 12, 15  # points; the page's text is about 12 pt


@cache
def svg(latex: str, size: float) -> str:
    """The formula as SVG text, without the timestamp matplotlib writes into its metadata."""
    import matplotlib

    matplotlib.use("svg")
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "greenery-math", "mathtext.fontset": "dejavusans"}):
        mathtext.math_to_image(f"${' '.join(latex.split())}$", buffer, format="svg", prop=FontProperties(size=size))
    return re.sub(r"\s*<metadata>.*?</metadata>", "", buffer.getvalue().decode(), flags=re.S)


# LaTeX commands read aloud; anything else keeps its name without the backslash.
WORDS = {"times": "times", "cdot": "times", "pm": "plus or minus", "le": "is at most", "leq": "is at most",
         "ge": "is at least", "geq": "is at least", "ne": "is not equal to", "neq": "is not equal to",
         "approx": "is about", "sum": "the sum of", "ldots": "and so on", "dots": "and so on", "infty": "infinity",
         "alpha": "alpha", "beta": "beta", "mu": "mu", "sigma": "sigma", "lambda": "lambda", "in": "in",
         "lvert": "", "rvert": "", "left": "", "right": "", ",": " ", ";": " ", "quad": " ", "qquad": " "}
SYMBOLS = {"=": " equals ", "+": " plus ", "-": " minus ", "−": " minus ", "<": " is less than ",
           ">": " is more than ", "/": " divided by ", "%": " percent"}


def _group(text: str, start: int) -> tuple[str, int]:
    """The {…} group (or single character) at `start`, and the index after it."""
    while start < len(text) and text[start] == " ":
        start += 1
    if start >= len(text):
        return "", start
    if text[start] != "{":
        return text[start], start + 1
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i], i + 1
    return text[start + 1:], len(text)


def spoken(latex: str) -> str:
    """A formula in plain words for a screen reader: fractions, roots, hats, sub- and superscripts,
    text and operators read out ("p hat plus or minus z times the square root of …")."""
    out, i = [], 0
    while i < len(latex):
        char = latex[i]
        if char == "\\":
            name = re.match(r"\\([A-Za-z]+|.)", latex[i:]).group(1)
            i += len(name) + 1
            if name in ("frac", "dfrac", "tfrac"):
                top, i = _group(latex, i)
                bottom, i = _group(latex, i)
                out.append(f" {spoken(top)} divided by {spoken(bottom)} ")
            elif name == "sqrt":
                inside, i = _group(latex, i)
                out.append(f" the square root of {spoken(inside)} ")
            elif name in ("hat", "bar", "tilde"):
                inside, i = _group(latex, i)
                out.append(f" {spoken(inside)} {name} ")
            elif name in ("text", "mathrm", "textrm", "mathit", "textit", "operatorname", "mathbf"):
                inside, i = _group(latex, i)
                out.append(f" {inside} ")
            else:
                out.append(f" {WORDS.get(name, name)} ")
        elif char in "_^":
            inside, i = _group(latex, i + 1)
            words = spoken(inside)
            out.append(" squared " if char == "^" and words == "2" else f" {'sub' if char == '_' else 'to the power'} "
                       f"{words} ")
        elif char in "{}":
            i += 1
        else:
            out.append(SYMBOLS.get(char, char))
            i += 1
    return " ".join("".join(out).split())


# Formulas drawn before the page is written, by the process that read the page (book_render.EarlyReads, while
# the chapters still run): the same `svg` of the same arguments, so the page is the same.
DRAWN: dict[tuple[str, float], str] = {}


def drawing(node) -> tuple[str, float]:
    """What `svg` is asked for a formula node: a formula on its own line in display style (fractions at full
    size, as LaTeX sets it), at the larger size."""
    if isinstance(node, nodes.math_block):
        return re.sub(r"\\frac\b", r"\\dfrac", node.astext()), BLOCK_SIZE
    return node.astext(), INLINE_SIZE


def draw_ahead(doctree) -> dict[tuple[str, float], str]:
    """Every formula of a page, drawn: for DRAWN in the process that will write the page."""
    found = [*doctree.findall(nodes.math), *doctree.findall(nodes.math_block)]
    return {args: svg(*args) for args in map(drawing, found)}


def image(latex: str, size: float, css_class: str, alt: str | None = None) -> str:
    from html import escape

    drawn = DRAWN.get((latex, size))
    data = base64.b64encode((svg(latex, size) if drawn is None else drawn).encode()).decode()
    return (f'<img class="{css_class}" role="math" alt="{escape((alt or spoken(latex)).strip())}" '
            f'src="data:image/svg+xml;base64,{data}"/>')


def visit_math(self, node) -> None:
    self.body.append(image(*drawing(node), "greenery-math"))
    raise nodes.SkipNode


def visit_displaymath(self, node) -> None:
    formula = image(*drawing(node), "greenery-math", alt=spoken(node.astext()))
    self.body.append(f'<div class="math-wrapper greenery-displaymath">{formula}</div>')
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("greenery_svg", (visit_math, None), (visit_displaymath, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
