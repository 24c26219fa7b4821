"""A chart for every screen: how book.setup hands a matplotlib figure to the page.

A chart drawn for a laptop and shrunk onto a phone (390 px wide, about 340 px for the chart) loses
its text: 8 pt labels became 6 px. So each figure is drawn twice, as SVG:
- as the chapter drew it (laptops and paper), after moving a y label off the x tick labels;
- a phone version, drawn on a copy: panels side by side stacked, no text under `MIN_TEXT_PT`,
  legends above the plot, x tick labels rotated when they would touch, and the figure narrowed
  until its natural width fits `PHONE_WIDTH_PX`, so it is shown at full size, never scaled down.
The page gets both in one <picture>: the browser shows the phone version below `PHONE_BELOW_PX`.
Both are embedded as `data:` URIs, so the book works from `file://` and glyph ids never collide.
"""

from __future__ import annotations

import base64
import html
import io
import pickle
import re
import warnings

PHONE_WIDTH_PX = 340  # CSS px: the text column of a 390 px phone (measured in the book: 358 px) less a margin
PHONE_BELOW_PX = 640  # CSS px: the book's phone layout starts below this width (greenery.css)
MIN_TEXT_PT = 9  # 12 CSS px at natural size: above the 11 px a phone reader needs
MIN_PHONE_TEXT_PX = 12  # CSS px: the smallest text of a diagram on a phone (it scrolls sideways)
PX_PER_PT = 4 / 3  # CSS: 96 px per inch, 72 pt per inch


def svg(fig) -> str:
    """The figure as SVG text, tight around what is drawn, with no timestamp (nbval compares it)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def natural_width_px(svg_text: str) -> float:
    """The CSS width an SVG is drawn at when nothing scales it: matplotlib writes it in points."""
    found = re.search(r'<svg[^>]*\swidth="([0-9.]+)pt"', svg_text)
    return float(found.group(1)) * PX_PER_PT if found else 0.0


def text_sizes_pt(svg_text: str) -> list[float]:
    """The size of every piece of text in a matplotlib SVG: glyphs are drawn as paths, scaled by
    size / 100 (`scale(0.08 -0.08)` is 8 pt text)."""
    return [abs(float(s)) * 100 for s in re.findall(r'<g transform="[^"]*scale\(([-0-9.]+) -[0-9.]+\)"', svg_text)]


def _renderer(fig):
    """A renderer that has placed every label (any backend's: the SVG canvas has none of its own)."""
    fig.draw_without_rendering()
    return fig._get_renderer()


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _visible_ticks(axis, renderer) -> list:
    return [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]


def untangle(fig) -> None:
    """Move labels that run into each other apart: a y label clear of the x tick labels (the hourly
    chart's, longer than the plot is tall, crossed its first rotated tick), a title clear of the
    texts inside the plot (a bar's label under it)."""
    renderer = _renderer(fig)
    for ax in fig.axes:
        label = ax.yaxis.label
        ticks = _visible_ticks(ax.xaxis, renderer) if label.get_text() else []
        for _ in range(12):
            if not any(_overlap(label.get_window_extent(renderer), t) for t in ticks):
                break
            ax.yaxis.labelpad += 4
            renderer = _renderer(fig)
        inside = [t for t in ax.texts if t.get_visible() and t.get_text()]
        for loc, title in _titles(ax):
            for _ in range(12):
                box = title.get_window_extent(renderer)
                low = [t.get_window_extent(renderer) for t in inside]
                clash = [b for b in low if _overlap(box, b)]
                if not clash:
                    break
                lift = max(b.y1 for b in clash) - box.y0 + 3
                pad = (box.y0 - ax.get_window_extent(renderer).y1) + lift
                ax.set_title(title.get_text(), loc=loc, pad=pad * 72 / fig.dpi)
                renderer = _renderer(fig)


def _unclash_ticks(fig) -> None:
    """Rotate x tick labels that would touch their neighbours at phone width."""
    renderer = _renderer(fig)
    for ax in fig.axes:
        boxes = _visible_ticks(ax.xaxis, renderer)
        if any(_overlap(a.expanded(1.05, 1), b) for a, b in zip(boxes, boxes[1:], strict=False)):
            for tick in ax.get_xticklabels():
                tick.set_rotation(45)
                tick.set_horizontalalignment("right")
                tick.set_rotation_mode("anchor")


def _titles(ax) -> list[tuple[str, object]]:
    return [(loc, ax.get_title(loc) and getattr(ax, attr)) for loc, attr in
            (("left", "_left_title"), ("center", "title"), ("right", "_right_title")) if ax.get_title(loc)]


def _legends_above(fig) -> None:
    """A legend beside or inside a narrow plot hides data or squeezes it: it goes above the plot,
    under the title and above anything already between them (a reference line's label)."""
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        renderer = _renderer(fig)
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        size = max(legend.get_texts()[0].get_fontsize(), MIN_TEXT_PT) if labels else MIN_TEXT_PT
        box, titles = ax.get_window_extent(renderer), _titles(ax)
        floor = min((t.get_window_extent(renderer).y0 for _, t in titles), default=box.y1)
        moved = ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0, (floor - box.y0) / box.height),
                          frameon=False, fontsize=size, borderaxespad=0.2)
        top = moved.get_window_extent(_renderer(fig)).y1
        for loc, title in titles:
            ax.set_title(title.get_text(), loc=loc, pad=(top - box.y1) * 72 / fig.dpi + 4)


def _stack_panels(fig) -> int:
    """Panels side by side go one above the other; returns how many rows there now are."""
    from matplotlib.gridspec import GridSpec

    panels = [ax for ax in fig.axes if ax.get_subplotspec() is not None]
    rows = {ax.get_subplotspec().rowspan.start for ax in panels}
    if len(panels) < 2 or len(rows) > 1:
        return 1
    grid = GridSpec(len(panels), 1, figure=fig)
    for i, ax in enumerate(sorted(panels, key=lambda a: a.get_subplotspec().colspan.start)):
        ax.set_subplotspec(grid[i, 0])
    return len(panels)


def phone_svg(fig) -> str:
    """The phone version of a figure, drawn on a copy (the chapter's figure is left as it was)."""
    from matplotlib.text import Text

    phone = pickle.loads(pickle.dumps(fig))
    width_in, height_in = phone.get_size_inches()
    panels = _stack_panels(phone)
    for text in phone.findobj(Text):
        text.set_fontsize(max(text.get_fontsize(), MIN_TEXT_PT))
    width = PHONE_WIDTH_PX / 96
    phone.set_size_inches(width, height_in * panels / (1 if panels == 1 else 1.15))
    with warnings.catch_warnings():  # a layout that cannot be tightened stays as drawn
        warnings.simplefilter("ignore")
        if panels > 1 or phone.get_layout_engine() is not None:
            phone.tight_layout()
    _legends_above(phone)
    _unclash_ticks(phone)
    untangle(phone)
    drawn = svg(phone)
    for _ in range(4):  # labels outside the axes widen the tight box: narrow the figure by the excess
        excess = natural_width_px(drawn) - PHONE_WIDTH_PX
        if excess <= 1 or width <= 1.2:
            break
        width = max(width - excess / 96 - 0.02, 1.2)
        phone.set_size_inches(width, phone.get_size_inches()[1])
        _unclash_ticks(phone)
        untangle(phone)
        drawn = svg(phone)
    return drawn


def _data_uri(svg_text: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg_text.encode()).decode()


def is_diagram(fig) -> bool:
    """A figure without axes to read (the lineage): it cannot be reflowed, only shown large enough."""
    return bool(fig.axes) and not any(ax.axison for ax in fig.axes)


def diagram_html(fig, alt: str) -> str:
    """A diagram is drawn once; on a phone it is shown wide enough for its smallest text to be
    `MIN_PHONE_TEXT_PX`, and scrolls sideways (greenery.css), with a line saying so."""
    drawn = svg(fig)
    smallest = min(text_sizes_pt(drawn), default=MIN_TEXT_PT) * PX_PER_PT
    width = natural_width_px(drawn) * max(1.0, MIN_PHONE_TEXT_PX / smallest)
    return (f'<picture class="greenery-chart greenery-diagram"><img src="{_data_uri(drawn)}" '
            f'alt="{html.escape(alt)}" style="--phone-width: {width:.0f}px"></picture>'
            '<p class="greenery-swipe">↑ Wide figure: swipe it sideways to see all of it</p>')


def picture_html(fig, alt: str) -> str:
    """Both versions in one <picture> (no width or height set: each is shown at its own size or less)."""
    if is_diagram(fig):
        return diagram_html(fig, alt)
    untangle(fig)
    laptop, phone = svg(fig), phone_svg(fig)
    return (f'<picture class="greenery-chart"><source media="(max-width: {PHONE_BELOW_PX - 0.02}px)" '
            f'srcset="{_data_uri(phone)}"><img src="{_data_uri(laptop)}" alt="{html.escape(alt)}"></picture>')
