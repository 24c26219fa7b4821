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
import textwrap
import warnings

import pandas as pd

from greenery.chapter_kit import matplotlib_reuse, tables

PHONE_WIDTH_PX = 340  # CSS px: the text column of a 390 px phone (measured in the book: 358 px) less a margin
PHONE_BELOW_PX = 640  # CSS px: the book's phone layout starts below this width (greenery.css)
MIN_TEXT_PT = 9  # 12 CSS px at natural size: above the 11 px a phone reader needs
Y_LABEL_CHARS = 24  # a longer y label goes above a phone's plot
MAX_PHONE_TEXT_PT = 10.5  # 14 CSS px: larger titles and labels would leave the plot no room
MIN_PHONE_TEXT_PX = 12  # CSS px: the smallest text of a diagram on a phone (it scrolls sideways)
PX_PER_PT = 4 / 3  # CSS: 96 px per inch, 72 pt per inch
# Paper (A4, the book's print margins in greenery.css): a chart is shown at most as wide as the text and
# as tall as PRINT_HEIGHT_MM (so a sheet is not left mostly empty before it), a chart's print version at
# most a sheet's height; either way never scaled up past its own size.
PT_PER_MM = 72 / 25.4
PRINT_WIDTH_MM = 186  # 210 mm less the 12 mm margins
PRINT_HEIGHT_MM = 130  # greenery.css: `.cell_output img { max-height }` in print
PRINT_TALL_HEIGHT_MM = 240  # greenery.css: `img.greenery-print-chart { max-height }`: a sheet less a heading
MIN_PRINT_TEXT_PT = 7  # the smallest text on paper a reader holding the sheet reads without effort


class _Unwanted(Exception):
    """Stops a savefig at the draw that would write an SVG whose caller wants only its size."""


def svg(fig, wanted=None) -> str:
    """The figure as SVG text, tight around what is drawn, with no timestamp (nbval compares it).

    savefig draws the figure twice: once without output, then the tight box is measured, then once into
    the SVG. The first draw is skipped unless a layout engine (constrained layout) runs in it: measuring
    the tight box places every tick, label, title, legend and note itself, as that draw would, and the
    second draw places them all again (tests/test_figures.py compares both ways on many kinds of chart).

    `wanted`, when given, is asked with the SVG's opening tag, which holds its size: savefig writes it once
    it has measured the tight box, before its last draw puts the figure into it. When it answers no, that
    draw is not made and only the opening tag is returned (enough for `natural_width_px`)."""
    buffer = io.StringIO()
    measured_alone = not _laid_out_in_draw(fig)

    def draw(renderer):
        if not buffer.tell():  # nothing written yet: the draw before the tight box is measured
            return type(fig).draw(fig, renderer) if not measured_alone else None
        if wanted is not None and not wanted(buffer.getvalue()):  # the tag is written: the draw that writes
            raise _Unwanted
        return type(fig).draw(fig, renderer)
    fig.draw = draw  # as savefig's own `_get_renderer` stops at the draw
    try:
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    except _Unwanted:
        pass
    finally:
        del fig.draw
    return buffer.getvalue()


def natural_width_px(svg_text: str) -> float:
    """The CSS width an SVG is drawn at when nothing scales it: matplotlib writes it in points."""
    found = re.search(r'<svg[^>]*\swidth="([0-9.]+)pt"', svg_text)
    return float(found.group(1)) * PX_PER_PT if found else 0.0


def text_sizes_pt(svg_text: str) -> list[float]:
    """The size of every piece of text in a matplotlib SVG: glyphs are drawn as paths, scaled by
    size / 100 (`scale(0.08 -0.08)` is 8 pt text)."""
    return [abs(float(s)) * 100 for s in re.findall(r'<g transform="[^"]*scale\(([-0-9.]+) -[0-9.]+\)"', svg_text)]


def natural_size_pt(svg_text: str) -> tuple[float, float]:
    """Width and height of a matplotlib SVG, in points, as drawn when nothing scales it."""
    found = re.search(r'<svg[^>]*\swidth="([0-9.]+)pt" height="([0-9.]+)pt"', svg_text)
    return (float(found.group(1)), float(found.group(2))) if found else (0.0, 0.0)


def printed_text_pt(svg_text: str, height_mm: float = PRINT_HEIGHT_MM) -> float:
    """The smallest text of a chart on paper: shrunk to the text's width and `height_mm` at most."""
    width, height = natural_size_pt(svg_text)
    sizes = text_sizes_pt(svg_text)
    if not sizes or not width or not height:
        return float("inf")
    scale = min(1.0, PRINT_WIDTH_MM * PT_PER_MM / width, height_mm * PT_PER_MM / height)
    return min(sizes) * scale


def _renderer(fig, drawn=None):
    """A renderer that has placed every label, by drawing the figure (any backend's: the SVG canvas has none
    of its own). Most steps need less: `_reader` (what is placed when measured), `_placed` (labels, titles).

    `drawn` is the renderer a step last placed the figure's labels with, handed on by that step when it
    changed nothing since (each step returns it, or None once it changed the figure): it is used as it is,
    instead of placing the same labels in the same places again. (matplotlib's `stale` flag cannot tell:
    reading tick labels sets it.)"""
    if drawn is not None:
        return drawn
    fig.draw_without_rendering()
    return fig._get_renderer()


def _reader(fig):
    """A renderer to measure, without drawing the figure, what matplotlib places whenever it is measured:
    tick labels (placed when read), texts and notes (placed when measured) and the plots' boxes (where the
    layout put them, as a draw leaves them: `apply_aspect`). A figure whose boxes a draw would move (a
    fixed aspect, a locator's inset) is drawn first. Y labels and titles are placed by a draw: `_placed`."""
    if any(ax.get_aspect() != "auto" or ax.get_box_aspect() is not None or ax.get_axes_locator() is not None
           for ax in fig.axes):
        return _renderer(fig)
    for ax in fig.axes:
        ax.apply_aspect()  # the box a draw would leave: the layout's
    return fig._get_renderer()


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _visible_ticks(axis, renderer) -> list:
    return [t.get_window_extent(renderer) for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]


def _laid_out_in_draw(fig) -> bool:
    """Whether a layout engine (constrained layout) runs in each draw, moving the plots: after
    `set_layout_engine("none")` or tight_layout() the figure has none, or a placeholder."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    engine = fig.get_layout_engine()
    return engine is not None and not isinstance(engine, PlaceHolderLayoutEngine)


def _moved(fig, ax, renderer, title: bool):
    """A renderer after `ax`'s y label or (`title`) its title moved (its labelpad, its pad): with no layout
    engine nothing else moves, so the one that moved is placed again as a draw places it (the label from
    the tick labels' boxes, the title over the axes, neither of which changed, nor depends on the other)
    instead of drawing every bar and line of the figure again; with a layout engine the figure is drawn."""
    if _laid_out_in_draw(fig):
        return _renderer(fig)
    if title:
        ax._update_title_position(renderer)
    else:
        ax.yaxis._update_label_position(renderer)
    return renderer


def _placed(fig):
    """A renderer after every y label and title is placed as a draw places them, without drawing the
    figure: a y label beside its tick labels' boxes, a title over the axes and its x tick labels (all
    placed when read: `_reader`). A figure whose layout engine runs in a draw is drawn."""
    if _laid_out_in_draw(fig):
        return _renderer(fig)
    renderer = _reader(fig)
    # nothing between them changes the ticks: each axis' worked out once (matplotlib_reuse.share_tick_updates)
    with matplotlib_reuse.ticks_kept():
        for ax in fig.axes:  # in a draw's order: the title, then the axes' labels
            ax._update_title_position(renderer)
            ax.yaxis._update_label_position(renderer)
    return renderer


def untangle(fig, drawn=None):
    """Move labels that run into each other apart: a y label clear of the x tick labels (the hourly
    chart's, longer than the plot is tall, crossed its first rotated tick), a title clear of the
    texts inside the plot (a bar's label under it). Returns the renderer it placed them with when it
    moved nothing (`_renderer`'s `drawn`), else None."""
    renderer = drawn if drawn is not None else _placed(fig)
    moved = False
    for ax in fig.axes:
        label = ax.yaxis.label
        ticks = _visible_ticks(ax.xaxis, renderer) if label.get_text() else []
        for _ in range(12):
            if not any(_overlap(label.get_window_extent(renderer), t) for t in ticks):
                break
            ax.yaxis.labelpad += 4
            renderer, moved = _moved(fig, ax, renderer, title=False), True
        inside = [t for t in ax.texts if t.get_visible() and t.get_text()]
        for loc, title in _titles(ax):
            last = None
            for _ in range(12):
                box = title.get_window_extent(renderer)
                low = [t.get_window_extent(renderer) for t in inside]
                clash = [b for b in low if _overlap(box.expanded(1, 1.3), b)]  # touching counts too
                if not clash:
                    break
                lift = max(b.y1 for b in clash) - box.y0 + 3
                pad = (box.y0 - ax.get_window_extent(renderer).y1) + lift
                # A title can be set to the same pad round after round (the pad is worked out from its lowest
                # line, not its baseline, and the clash looked for beyond it: a two-line title over the y label
                # on top). Set again with what it was just set with, where nothing else moves (no layout
                # engine), it is placed where it is: every round left would do just that, so none is made.
                lifting = (pad * 72 / fig.dpi, title.get_fontsize(), title.get_position()[0])
                if lifting == last and not _laid_out_in_draw(fig):
                    break
                ax.set_title(title.get_text(), loc=loc, pad=lifting[0], fontsize=lifting[1], x=lifting[2])
                renderer, moved, last = _moved(fig, ax, renderer, title=True), True, lifting
    return None if moved else renderer


def _touching(ticks, renderer) -> bool:
    boxes = [t.get_window_extent(renderer) for t in ticks if t.get_visible()]
    return any(_overlap(a.expanded(1.1, 1), b) for a, b in zip(boxes, boxes[1:], strict=False))


def _unclash_ticks(fig) -> None:
    """x tick labels that would touch their neighbours at phone width are laid flat and thinned (every
    second, third … label kept, as a reader of an hourly axis needs only some hours named), and only
    rotated when even every sixth would touch. (Tick labels are placed when read: no draw, `_reader`.)"""
    renderer = None
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticklabels() if t.get_text()]
        if len(ticks) < 2:
            continue
        renderer = renderer or _reader(fig)
        if not _touching(ticks, renderer):
            continue
        for tick in ticks:
            tick.set_rotation(0)
            tick.set_horizontalalignment("center")
        for step in (1, 2, 3, 4, 6):
            for i, tick in enumerate(ticks):
                tick.set_visible(i % step == 0)
            if not _touching(ticks, renderer):
                break
        else:
            for tick in ticks:
                tick.set_rotation(45)
                tick.set_horizontalalignment("right")
                tick.set_rotation_mode("anchor")


def _titles(ax) -> list[tuple[str, object]]:
    return [(loc, ax.get_title(loc) and getattr(ax, attr)) for loc, attr in
            (("left", "_left_title"), ("center", "title"), ("right", "_right_title")) if ax.get_title(loc)]


def _upright_bar_labels(fig) -> None:
    """Labels over narrow bars that touch their neighbours stand upright, with room above the tallest.
    (Texts are placed when measured: no draw, `_reader`.)"""
    def level(ax):
        return [t for t in ax.texts if t.get_visible() and t.get_text() and t.get_rotation() == 0]

    if all(len(level(ax)) < 2 for ax in fig.axes):  # no two labels that could touch: nothing to measure
        return
    renderer = _reader(fig)
    for ax in fig.axes:
        labels = level(ax)
        boxes = [t.get_window_extent(renderer) for t in labels]
        if not any(_overlap(a.expanded(1.15, 1), b) for i, a in enumerate(boxes) for b in boxes[i + 1:]):
            continue
        for text in labels:
            text.set_rotation(90)
            text.set_verticalalignment("bottom")
            text.set_horizontalalignment("center")
        top = max(t.get_window_extent(renderer).y1 for t in labels)
        box = ax.get_window_extent(renderer)
        if top > box.y1:
            low, high = ax.get_ylim()
            ax.set_ylim(low, low + (high - low) * (top - box.y0) / box.height * 1.05)


def _y_label_on_top(fig) -> None:
    """A y label longer than a phone's plot is tall goes above the plot, written across (as a phone
    chart's unit line), instead of a column of wrapped lines eating the plot's width."""
    for ax in fig.axes:
        label = ax.yaxis.label
        if len(label.get_text()) > Y_LABEL_CHARS:
            ax.text(0, 1.02, textwrap.fill(label.get_text(), _line_chars()), transform=ax.transAxes, ha="left",
                    va="bottom", fontsize=label.get_fontsize(), color=label.get_color(), gid="greenery-y-label")
            ax.set_ylabel("")


def _notes_inside(fig) -> None:
    """A note written to the right of its point (an annotation's offset) that runs past the plot's
    right edge is written to the left of it instead: on a phone there is no margin to hold it.
    (Notes are placed when measured: no draw, `_reader`.)"""
    from matplotlib.text import Annotation

    def notes(ax):
        return [t for t in ax.texts if isinstance(t, Annotation) and t.get_text()]

    if not any(notes(ax) for ax in fig.axes):  # no note to move: nothing to measure
        return
    renderer = _reader(fig)
    for ax in fig.axes:
        right = ax.get_window_extent(renderer).x1
        for note in notes(ax):
            if note.anncoords in ("offset points", "offset pixels") and note.get_window_extent(renderer).x1 > right:
                x, y = note.xyann
                note.xyann = (-abs(x), y)
                note.set_horizontalalignment("right")


def _legends_above(fig, drawn=None):
    """A legend beside or inside a narrow plot hides data or squeezes it: it goes above the plot,
    under the title and above anything already between them (a reference line's label). Returns
    `drawn` when there was no legend to move, else None."""
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        renderer, drawn = drawn if drawn is not None else _placed(fig), None  # a legend moved: placed again next
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        size = max(legend.get_texts()[0].get_fontsize(), MIN_TEXT_PT) if labels else MIN_TEXT_PT
        box, titles = ax.get_window_extent(renderer), _titles(ax)
        floor = min((t.get_window_extent(renderer).y0 for _, t in titles), default=box.y1)
        left = (fig.bbox.x0 + 2 - box.x0) / box.width  # from the figure's edge, as the title: the widest line
        moved = ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(left, (floor - box.y0) / box.height),
                          frameon=False, fontsize=size, borderaxespad=0.2)
        # the moved legend's box is worked out from its anchor when asked: the renderer that placed the rest serves
        top = moved.get_window_extent(_renderer(fig, renderer)).y1
        for loc, title in titles:
            ax.set_title(title.get_text(), loc=loc, pad=(top - box.y1) * 72 / fig.dpi + 4,
                         fontsize=title.get_fontsize(), x=title.get_position()[0])
    return drawn


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
        # a shared y axis was labelled on the left panel only: stacked, each panel needs its own numbers
        ax.yaxis.set_tick_params(labelleft=True)
    return len(panels)


def _wrap(text, chars: int) -> None:
    """Break a label longer than `chars` between words (a phone has no room for one long line)."""
    words = text.get_text()
    if len(words) > chars and "\n" not in words:
        text.set_text(textwrap.fill(words, chars, break_long_words=False))


def _line_chars() -> int:
    return int(PHONE_WIDTH_PX / (MAX_PHONE_TEXT_PT * PX_PER_PT * 0.64))  # characters across (bold: wide)


def _phone_text(fig) -> None:
    """Text between MIN_TEXT_PT and MAX_PHONE_TEXT_PT, long labels wrapped to fit a phone's width."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_fontsize(min(max(text.get_fontsize(), MIN_TEXT_PT), MAX_PHONE_TEXT_PT))
    line = _line_chars()
    for ax in fig.axes:
        for _, title in _titles(ax):
            _wrap(title, line)
        _wrap(ax.xaxis.label, int(line * 0.6))  # centred under a plot that is narrower than the phone
        _wrap(ax.yaxis.label, int(line * 0.8))  # up the plot's side: about its height
        legend = ax.get_legend()
        for text in legend.get_texts() if legend else []:
            _wrap(text, line)
        # the names beside horizontal bars, the categories under vertical ones: half the width at most
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t.get_text() for t in axis.get_ticklabels()]  # read from the axis' formatter
            most = line // 2 if axis is ax.yaxis else line // 3  # under vertical bars: narrower still
            wrapped = [textwrap.fill(t, most, break_long_words=False) if len(t) > most else t for t in labels]
            if wrapped != labels:
                axis.set_ticks(axis.get_ticklocs(), wrapped)


def _room_for_rows(fig) -> None:
    """Tall enough for every row of names beside horizontal bars, wrapped ones included."""
    needed = 0.0
    for ax in fig.axes:
        labels = [t.get_text() for t in ax.yaxis.get_ticklabels() if t.get_text()]
        if labels and not tables.looks_numeric(pd.Series(labels)):
            bars = sum(len(c) for c in ax.containers)  # grouped bars, each with its own label, need a line each
            lines = max(sum(t.count("\n") + 1 for t in labels) + len(labels) * 0.6, bars * 1.4)
            needed += lines * MAX_PHONE_TEXT_PT * 1.25 / 72 + 1.6  # plus title, legend and x axis
        else:
            needed += 2.4
    if needed > fig.get_size_inches()[1]:
        fig.set_size_inches(fig.get_size_inches()[0], needed)


def _titles_from_the_left_edge(fig) -> None:
    """A left title starts at the figure's edge, not the plot's: the names beside the bars leave it little room.

    It needs only each plot's box, where the layout put it (`_reader`: no draw)."""
    _reader(fig)
    for ax in fig.axes:
        box = ax.get_window_extent()
        moved = [ax._left_title, *(t for t in ax.texts if t.get_gid() == "greenery-y-label")]
        for text in [t for t in moved if t.get_text()]:
            text.set_x((fig.bbox.x0 + 2 - box.x0) / box.width)


def _fit(fig, width_in: float) -> None:
    """The plot as wide as the phone allows beside its tick labels: titles, legends and notes above
    or inside it are left out of the layout, then back in for the saved image's tight box."""
    floating = []
    for ax in fig.axes:
        legend = ax.get_legend()
        floating += [a for a in [*(t for _, t in _titles(ax)), *ax.texts, *([legend] if legend else [])]
                     if a.get_in_layout()]
    for artist in floating:
        artist.set_in_layout(False)
    with warnings.catch_warnings():  # a layout that cannot be tightened stays as drawn
        warnings.simplefilter("ignore")
        fig.set_size_inches(width_in, fig.get_size_inches()[1])
        fig.tight_layout()
    for artist in floating:
        artist.set_in_layout(True)


def phone_svg(fig) -> str:
    """The phone version of a figure, drawn on a copy (the chapter's figure is left as it was)."""
    try:
        phone = pickle.loads(pickle.dumps(fig))
    except (pickle.PicklingError, AttributeError, TypeError) as failure:  # a lambda formatter, say
        raise TypeError(f"a chart is copied for phones by pickling it: {failure} (use a named function or one "
                        "of matplotlib.ticker's formatters)") from None
    try:
        return _for_phones(phone)
    finally:
        import matplotlib.pyplot as plt

        plt.close(phone)  # unpickling registered the copy with pyplot: it is not a figure of the page


def _for_phones(phone) -> str:
    """phone_svg's steps on its copy."""
    phone.set_layout_engine("none")
    height_in = phone.get_size_inches()[1]
    panels = _stack_panels(phone)
    phone.set_size_inches(PHONE_WIDTH_PX / 96, max(height_in, 2.6) * (1 if panels == 1 else panels * 0.9))
    _phone_text(phone)
    _y_label_on_top(phone)
    _room_for_rows(phone)
    _fit(phone, PHONE_WIDTH_PX / 96)
    _unclash_ticks(phone)
    _upright_bar_labels(phone)
    _notes_inside(phone)
    _fit(phone, PHONE_WIDTH_PX / 96)
    # what sits above the plot, bottom up once its size is settled: notes, title, then the legend under it
    _titles_from_the_left_edge(phone)
    # each step hands the next the renderer it placed the labels with while it changed nothing since (`_renderer`)
    untangle(phone, _legends_above(phone, untangle(phone)))
    width = PHONE_WIDTH_PX / 96
    for narrowed in range(4):  # labels outside the axes still widen the tight box: narrow the figure by the excess
        plots = [ax.get_position().width for ax in phone.axes if ax.axison]
        last = narrowed == 3 or width <= 1.5 or min(plots, default=1) < 0.4  # never crush the plot to make room
        # a version that will be narrowed again is only measured, not written (`svg`'s `wanted`)
        drawn = svg(phone, None if last else lambda head: natural_width_px(head) - PHONE_WIDTH_PX <= 1)
        excess = natural_width_px(drawn) - PHONE_WIDTH_PX
        if last or excess <= 1:
            return drawn
        width = max(width - excess / 96 - 0.02, 1.5)
        _fit(phone, width)
        _titles_from_the_left_edge(phone)
        untangle(phone)
    raise AssertionError("unreachable: the fourth version is the last")


def print_svg(fig, laptop: str) -> str | None:
    """What paper shows of a chart whose laptop version, at most `PRINT_HEIGHT_MM` tall, would print
    its text below `MIN_PRINT_TEXT_PT` (thirty products' bars, 16 inches tall, printed at 4.5 pt); None
    for every other chart.

    The laptop version itself when up to a sheet's height (`PRINT_TALL_HEIGHT_MM`) is enough; else a
    version drawn on a copy: text under the floor grows to it, and a figure too tall or too wide for a
    sheet at that size is made shorter or narrower (its rows closer together), down to half its size."""
    if printed_text_pt(laptop) >= MIN_PRINT_TEXT_PT:
        return None
    if printed_text_pt(laptop, PRINT_TALL_HEIGHT_MM) >= MIN_PRINT_TEXT_PT:
        return laptop
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    copy = pickle.loads(pickle.dumps(fig))
    for text in copy.findobj(Text):
        text.set_fontsize(max(text.get_fontsize(), MIN_PRINT_TEXT_PT))
    start = copy.get_size_inches()
    drawn = svg(copy)
    for _ in range(6):
        if printed_text_pt(drawn, PRINT_TALL_HEIGHT_MM) >= MIN_PRINT_TEXT_PT - 0.05:
            break
        needed = MIN_PRINT_TEXT_PT / min(text_sizes_pt(drawn))  # the scale at which the smallest text is legible
        width, height = natural_size_pt(drawn)
        excess_w = max(0.0, width * needed - PRINT_WIDTH_MM * PT_PER_MM) / needed / 72
        excess_h = max(0.0, height * needed - PRINT_TALL_HEIGHT_MM * PT_PER_MM) / needed / 72
        now = copy.get_size_inches()
        size = (max(now[0] - excess_w * 1.05, start[0] / 2), max(now[1] - excess_h * 1.05, start[1] / 2))
        if tuple(size) == tuple(now):
            break
        copy.set_size_inches(*size)
        drawn = svg(copy)
    plt.close(copy)  # the copy may have been registered with pyplot: not a figure of the page
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
    """Both versions in one <picture> (no width or height set: each is shown at its own size or less),
    and a print version after it when the laptop version would print too small (`print_svg`)."""
    if is_diagram(fig):
        return diagram_html(fig, alt)
    untangle(fig)
    laptop, phone = svg(fig), phone_svg(fig)
    paper = print_svg(fig, laptop)
    picture = (f'<picture class="greenery-chart{" greenery-screen-chart" if paper else ""}">'
               f'<source media="(max-width: {PHONE_BELOW_PX - 0.02}px)" srcset="{_data_uri(phone)}">'
               f'<img src="{_data_uri(laptop)}" alt="{html.escape(alt)}"></picture>')
    # The print version replaces the picture on paper (greenery.css), up to a sheet tall; a picture
    # printed from a phone would print its phone version. Hidden on screens, so its alt is read once.
    return picture + (f'<img class="greenery-print-chart" src="{_data_uri(paper)}" alt="{html.escape(alt)}">'
                      if paper else "")
