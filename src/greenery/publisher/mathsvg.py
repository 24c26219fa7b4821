"""A Sphinx math renderer that draws formulas at build time with matplotlib's mathtext.

The book must read from `file://` with no network, so it cannot load MathJax from a CDN. Each
formula ($...$ and $$...$$) becomes an SVG image embedded in the page itself (a `data:` URI, so
glyph ids of two formulas never collide), with the LaTeX source as its alternative text. It
prints as sharply as it shows. Enabled in _config.yml: `html_math_renderer: greenery_svg`.
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


def image(latex: str, size: float, css_class: str, alt: str | None = None) -> str:
    from html import escape

    data = base64.b64encode(svg(latex, size).encode()).decode()
    return (f'<img class="{css_class}" role="math" alt="{escape((alt or latex).strip())}" '
            f'src="data:image/svg+xml;base64,{data}"/>')


def visit_math(self, node) -> None:
    self.body.append(image(node.astext(), INLINE_SIZE, "greenery-math"))
    raise nodes.SkipNode


def visit_displaymath(self, node) -> None:
    # display style, as LaTeX sets a formula on its own line: fractions at full size
    latex = node.astext()
    formula = image(re.sub(r"\\frac\b", r"\\dfrac", latex), BLOCK_SIZE, "greenery-math", alt=latex)
    self.body.append(f'<div class="math-wrapper greenery-displaymath">{formula}</div>')
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("greenery_svg", (visit_math, None), (visit_displaymath, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
