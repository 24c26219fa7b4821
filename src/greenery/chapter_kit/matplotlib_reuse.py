"""matplotlib's repeated work done once: what a chart's versions measure again and again (book.setup installs
both, greenery.chapter_kit.figures draws the versions).

- `share_text_metrics`: each text's size, layout and glyphs worked out once per kind of renderer, not once per
  renderer object (each version of a chart makes new renderers);
- `share_tick_updates`: each axis' ticks and their labels' boxes worked out once per draw or measure of its
  plot, not at each step of it (`ticks_kept` widens that scope to several steps).

Each keeps exactly what matplotlib would have worked out, under everything it depends on: no chart changes
(tests/test_figures.py draws charts both ways and compares the SVGs). These replace private matplotlib
functions (3.11, pinned); the tests compare with matplotlib's own (`greenery_original`).
"""

from __future__ import annotations

import contextlib
import threading
from typing import NamedTuple

_TEXT_METRICS: dict = {}  # (what the renderer measures with, text, font, dpi) -> size: `_measuring`
_TEXT_LAYOUTS: dict = {}  # (what the renderer measures with, text, font, dpi, spacing, alignment, rotation) -> layout
_GLYPHS: dict = {}  # (font, text, its font features, its language) -> its glyphs' ids and places, their outlines
_MEASURINGS: dict = {}  # what a renderer measures with (`_measuring`) -> itself: one tuple shared by every key
_TEXT_MOST = 50_000  # distinct texts a chapter measures, lays out or writes: a few thousand; each emptied beyond this
# The font lists a generic family (sans-serif) is looked up in: matplotlib's own key for the font file of a text
_FONT_LISTS = ("font.serif", "font.sans-serif", "font.cursive", "font.fantasy", "font.monospace")


def _measuring(renderer):
    """The renderer that measures text for `renderer` (a mixed-mode renderer, savefig's for SVG, hands the
    question to the one it holds) and what its measures depend on besides the text, its font properties and
    the dpi (None for a renderer neither Agg nor SVG: not shared): its class and resolution (pixels per 72
    points), the hinting settings, the font lists a generic family is looked up in, whether the Last
    Resort font stands in for a character none holds, and the fonts matplotlib knows."""
    import matplotlib
    from matplotlib import font_manager
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.backends.backend_mixed import MixedModeRenderer
    from matplotlib.backends.backend_svg import RendererSVG

    actual = renderer._renderer if isinstance(renderer, MixedModeRenderer) else renderer
    if type(actual) not in (RendererAgg, RendererSVG):
        # the renderers this key was worked out for (the chapters' inline Agg, the book's SVG): another reads
        # settings of its own (a PDF's pdf.use14corefonts: Helvetica's metrics), and measures as matplotlib does
        return actual, None
    settings, fonts = matplotlib.rcParams, font_manager.fontManager
    # font.enable_last_resort: a character no font of the text holds is the Last Resort font's box, or the
    # font's own empty glyph, of another width (matplotlib.font_manager.get_font reads it). The fonts known:
    # a font added since (fontManager.addfont, which only appends) may be the one a family now names.
    measuring = (type(actual), actual.points_to_pixels(72.0), settings["text.hinting"],
                 settings["text.hinting_factor"], tuple(tuple(settings[name]) for name in _FONT_LISTS),
                 settings["font.enable_last_resort"], id(fonts), len(fonts.ttflist), len(fonts.afmlist))
    # the keys of a few thousand texts hold one copy, not one each: fewer objects for the garbage collector
    return actual, _kept(_MEASURINGS, measuring, None, lambda: measuring)


def _kept(cache: dict, key: tuple, font, work):
    """`cache[key]`, worked out by `work()` the first time. A key holding `font`, live font properties, is
    looked up with them and kept with a copy (a chart changes its texts' fonts afterwards: the phone's sizes)."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _TEXT_MOST:
            cache.clear()
        kept = key if font is None else tuple(font.copy() if part is font else part for part in key)
        found = cache[kept] = work()
    return found


def share_text_metrics() -> None:
    """Measure and lay out each text once per kind of renderer, not once per renderer object (book.setup
    installs it).

    matplotlib keeps the size of every text it measured in a cache of the renderer that measured it, and each
    version of a chart makes new renderers (the laptop SVG's tight box and its drawing, the phone version's
    layouts at each width, each a renderer of its own): the same tick labels and titles were measured again and
    again, about a tenth of a chart's time. A text's size depends only on what the renderer's
    `get_text_width_height_descent` reads: the text, its font, the renderer's class and resolution (its
    pixels per 72 points), the hinting settings and the font lists (`_measuring`); so sizes are kept under
    exactly that key, for every renderer of the process.

    A text's layout (`Text._get_layout`: its lines' sizes and offsets and its box around the point it is
    placed at) was worked out again each time the text was measured or drawn, with no cache at all: tick
    labels are measured a dozen times in a chart's versions (the tight layouts, the tight boxes, every title
    and y label placed beside them), about a quarter of a chart's time, most of it finding the font file and
    reading its line heights. The layout reads, besides the sizes above, the text's line spacing, alignments,
    rotation and rotation mode and the figure's dpi, never where the text is; so layouts are kept under that
    key. Mathematical text (its size also reads mathtext's settings), TeX and text wrapped to the figure's
    width (its lines depend on where it is) are measured and laid out as matplotlib does.

    An SVG writes each text as glyphs (`TextToPath.get_glyphs_with_font`: which glyph goes where, and the
    outline of each glyph the SVG does not hold yet), which were looked up and placed (kerning) again at every
    draw of every version: they depend only on the font (matplotlib passes fonts sized to `TextToPath.FONT_SCALE`
    at 72 dpi: both its callers take them from `TextToPath._get_font`), the text, its font features and its
    language; so they are kept under that key (`_shared_glyphs`). The sizes, layouts and glyphs are the very
    numbers matplotlib works out: no chart changes (tests/test_figures.py draws charts both ways and compares
    the SVGs)."""
    import matplotlib.text as mtext
    import matplotlib.textpath as mtextpath
    from matplotlib.transforms import Bbox

    if getattr(mtext._get_text_metrics_with_cache, "greenery_shared", False):
        return
    measured, laid_out = mtext._get_text_metrics_with_cache, mtext.Text._get_layout

    def shared(renderer, text, fontprop, ismath, dpi):
        if ismath is not False:
            return measured(renderer, text, fontprop, ismath, dpi)
        actual, measuring = _measuring(renderer)
        if measuring is None:
            return measured(renderer, text, fontprop, ismath, dpi)
        return _kept(_TEXT_METRICS, (measuring, text, fontprop, dpi), fontprop,
                     lambda: actual.get_text_width_height_descent(text, fontprop, ismath))

    def shared_layout(self, renderer):
        text = self.get_text()
        if renderer is None or self.get_usetex() or self.get_wrap() or (self.get_parse_math() and "$" in text):
            return laid_out(self, renderer)
        measuring = _measuring(renderer)[1]
        if measuring is None:
            return laid_out(self, renderer)
        font = self._fontproperties
        key = (measuring, text, font, self.get_figure(root=True).dpi, self._linespacing,
               self._get_multialignment(), self._horizontalalignment, self._verticalalignment,
               self.get_rotation(), self.get_rotation_mode())

        def work():
            box, lines, corner = laid_out(self, renderer)
            points = box.get_points().copy()  # kept as numbers: fewer objects for the garbage collector
            points.flags.writeable = False
            return points, tuple(lines), corner

        points, lines, corner = _kept(_TEXT_LAYOUTS, key, font, work)
        return Bbox(points.copy()), list(lines), corner  # the box and the list are the caller's to change

    shared.greenery_shared = shared_layout.greenery_shared = True
    shared.greenery_original, shared_layout.greenery_original = measured, laid_out  # matplotlib's own (the tests)
    mtext._get_text_metrics_with_cache, mtext.Text._get_layout = shared, shared_layout
    mtextpath.TextToPath.get_glyphs_with_font = _shared_glyphs(mtextpath.TextToPath.get_glyphs_with_font)


def _shared_glyphs(own):
    """`TextToPath.get_glyphs_with_font` looking each text's glyphs up once (`share_text_metrics`).

    It returns where each glyph of the text goes and the outline of each glyph not in `glyph_map` (the glyphs
    an SVG holds already), in a new map, or in `glyph_map` itself when `return_new_glyphs_only` is false. A
    text's glyphs and all their outlines are worked out once and kept read-only (every caller copies them)."""
    from collections import OrderedDict

    def glyphs(self, font, s, glyph_map=None, return_new_glyphs_only=False, *, features=None, language=None):
        def work():
            placed, outlines, rects = own(self, font, s, features=features, language=language)
            for vertices, codes in outlines.values():
                vertices.flags.writeable = codes.flags.writeable = False
            return tuple(placed), outlines, tuple(rects)

        key = (font, s, features, language)  # the font object: one per font file, kept alive by the key
        try:
            hash(key)
        except TypeError:  # features given as a list: as matplotlib does
            return own(self, font, s, glyph_map, return_new_glyphs_only, features=features, language=language)
        placed, outlines, rects = _kept(_GLYPHS, key, None, work)
        glyph_map = OrderedDict() if glyph_map is None else glyph_map
        new = OrderedDict() if return_new_glyphs_only else glyph_map
        for glyph, *_ in placed:
            if glyph not in glyph_map:
                new[glyph] = outlines[glyph]
        return list(placed), new, list(rects)

    glyphs.greenery_original = own
    return glyphs


_TICKS = threading.local()  # `share_tick_updates`: while one plot is drawn or measured, its axes' ticks and label boxes


class _KeptTicks(NamedTuple):
    """An axis' ticks kept within one draw or measure (`share_tick_updates`)."""
    state: tuple  # what they were worked out from (`_tick_state`)
    ticks: tuple  # the ticks `Axis._update_ticks` returned
    ticker: tuple  # its locators and formatters, held: the ids in `state` stay theirs
    boxes: dict  # (renderer, the ticks asked about) -> their labels' boxes, as `_get_ticklabel_bboxes` gave them


def _tick_state(axis) -> tuple:
    """What an axis' ticks are worked out from that drawing or measuring its plot may change, and the objects
    whose ids it holds: the view limits (autoscaled), where the plot is and the dpi (a fixed aspect applied, an
    inset placed: how many ticks fit, where their labels go), the scale, the locators and formatters. What else
    they read (the tick parameters, the tick labels' font) only a chapter sets, never a draw or a measure."""
    ticker = (axis._scale, axis.major.locator, axis.major.formatter, axis.minor.locator, axis.minor.formatter)
    return (tuple(axis.get_view_interval()), axis.axes.transAxes.get_matrix().tobytes(),
            axis.get_figure(root=True).dpi, *map(id, ticker)), ticker


def _autoscale_pending(axes) -> bool:
    """Whether reading the plot's view limits would autoscale them first (`Axes._unstale_viewLim`: data added
    since, to it or to a plot sharing an axis with it): the ticks are then worked out as matplotlib does."""
    return any(other._stale_viewlims[name] for name in axes._axis_names
               for other in axes._shared_axes[name].get_siblings(axes))


@contextlib.contextmanager
def ticks_kept():
    """Within it, an axis' ticks and their labels' boxes are worked out once per state (`share_tick_updates`);
    nested, it is the outermost one's."""
    if getattr(_TICKS, "kept", None) is not None:
        yield
        return
    _TICKS.kept = {}
    try:
        yield
    finally:
        _TICKS.kept = None


def share_tick_updates() -> None:
    """Work an axis' ticks and their labels' boxes out once per draw or measure of its plot, not at each step
    of it (book.setup installs it).

    matplotlib updates an axis' ticks (its locator and formatter run, each tick is placed and labelled) and
    measures their labels wherever it needs them: measuring one plot's tight box (savefig's tight box, each
    plot in tight_layout) did it about ten times for its y axis (the axis' own box, the y label placed beside
    the tick labels, the left spine's box, the title placed over the plot, which measures the y axis again)
    and drawing it a few times more, each time to the same result. Within one of those calls (a plot's draw or
    tight box, an axis' draw or tight box, a title or a y label placed) nothing the ticks are worked out from
    changes but what `_tick_state` reads, so an axis' ticks are kept under that state, and its labels' boxes
    with them (under the ticks asked about and the renderer) until the ticks are worked out again or the call
    returns. An axis whose view would be autoscaled when read is left to matplotlib (which autoscales, then
    works its ticks out). Updating the ticks again would give each tick the place and label it already has, so
    nothing else differs: no chart changes (tests/test_figures.py draws charts both ways and compares the SVGs)."""
    import functools

    from matplotlib.axes import Axes
    from matplotlib.axis import Axis, XAxis, YAxis

    if getattr(Axis._update_ticks, "greenery_shared", False):
        return
    update, boxes = Axis._update_ticks, Axis._get_ticklabel_bboxes

    def kept_update(self):
        kept = getattr(_TICKS, "kept", None)
        if kept is None or _autoscale_pending(self.axes):  # matplotlib's own, in its order (it autoscales first)
            return update(self)
        state, ticker = _tick_state(self)
        found = kept.get(self)
        if found is not None and found.state == state:
            return list(found.ticks)
        kept.pop(self, None)  # the boxes kept were those of the ticks before
        drawn = update(self)
        if _tick_state(self)[0] == state:
            kept[self] = _KeptTicks(state, tuple(drawn), ticker, {})
        return drawn

    def kept_boxes(self, ticks, renderer):
        kept = getattr(_TICKS, "kept", None)
        found = None if kept is None or _autoscale_pending(self.axes) else kept.get(self)
        if found is None or found.state != _tick_state(self)[0]:  # its ticks not updated in this state within this call
            return boxes(self, ticks, renderer)
        key = (renderer, tuple(ticks))
        if key not in found.boxes:
            found.boxes[key] = boxes(self, ticks, renderer)
        return tuple([box.frozen() for box in side] for side in found.boxes[key])  # the caller's to change

    def within(method):
        @functools.wraps(method)
        def kept_within(*args, **kwargs):
            with ticks_kept():
                return method(*args, **kwargs)
        kept_within.greenery_original = method
        return kept_within

    for cls, name in ((Axes, "draw"), (Axes, "get_tightbbox"), (Axes, "_update_title_position"), (Axis, "draw"),
                      (Axis, "get_tightbbox"), (XAxis, "_update_label_position"), (YAxis, "_update_label_position")):
        setattr(cls, name, within(getattr(cls, name)))
    kept_update.greenery_shared = True
    kept_update.greenery_original, kept_boxes.greenery_original = update, boxes
    Axis._update_ticks, Axis._get_ticklabel_bboxes = kept_update, kept_boxes
