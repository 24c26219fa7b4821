"""Charts and tables for every screen (greenery.chapter_kit.figures, tables.with_toggle), formulas in words."""

from __future__ import annotations

import contextlib

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from greenery.chapter_kit import figures, matplotlib_reuse, tables  # noqa: E402
from greenery.publisher.mathsvg import spoken  # noqa: E402


@pytest.fixture(autouse=True)
def _default_style():
    """matplotlib's defaults and the SVG canvas, whatever an earlier test in this process set (a chapter
    executed in-process calls book.setup and turns the inline backend on)."""
    backend, interactive = matplotlib.get_backend(), matplotlib.is_interactive()
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.interactive(False)
        plt.switch_backend("svg")
        yield
    plt.switch_backend(backend)
    matplotlib.interactive(interactive)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def two_panels():
    """A laptop figure of two panels side by side, 8 pt ticks and a legend: on a phone, about 4 px text."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.barh(["ups", "fedex", "usps"], [20, 30, 40], label="late orders")
    left.legend(fontsize=8)
    right.bar(["Mon 00:00", "Mon 06:00", "Mon 12:00", "Mon 18:00"], [1, 2, 3, 4])
    right.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def test_text_sizes_are_read_from_the_svg():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xlabel("x", fontsize=8)
    ax.set_title("title", fontsize=13)
    ax.tick_params(labelsize=10)
    sizes = figures.text_sizes_pt(figures.svg(fig))
    assert min(sizes) == pytest.approx(8) and max(sizes) == pytest.approx(13)
    assert figures.natural_width_px('<svg width="300pt" height="10pt">') == pytest.approx(400)


def test_the_phone_version_fits_a_phone_at_full_size_with_legible_text():
    fig = two_panels()
    laptop, positions = figures.svg(fig), [ax.get_position().bounds for ax in fig.axes]
    assert min(figures.text_sizes_pt(laptop)) * figures.PX_PER_PT * figures.PHONE_WIDTH_PX / \
        figures.natural_width_px(laptop) < 5  # shrunk onto a phone, the laptop version is illegible
    phone = figures.phone_svg(fig)
    assert figures.natural_width_px(phone) <= figures.PHONE_WIDTH_PX + 2
    assert min(figures.text_sizes_pt(phone)) >= figures.MIN_TEXT_PT
    assert tuple(fig.get_size_inches()) == (9, 3.2)  # the chapter's figure is left as it was
    assert [ax.get_position().bounds for ax in fig.axes] == positions


def test_panels_are_stacked_and_the_legend_goes_above_the_plot():
    fig = two_panels()
    phone = pickle_copy(fig)
    assert figures._stack_panels(phone) == 2
    top, bottom = (ax.get_position() for ax in phone.axes)
    assert top.y0 > bottom.y1 and top.x0 == pytest.approx(bottom.x0)
    figures._legends_above(phone)
    legend = phone.axes[0].get_legend().get_window_extent(figures._renderer(phone))
    assert legend.y0 >= phone.axes[0].get_window_extent(figures._renderer(phone)).y1 - 1


def test_stacked_panels_of_a_shared_y_axis_each_show_its_numbers():
    """The promised-dates chart: two panels sharing y, numbered on the left one only; stacked on a
    phone, the lower panel had no y numbers at all."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.0), sharey=True)
    for ax in axes:
        ax.bar([1, 2, 3], [10, 20, 30])
    phone = pickle_copy(fig)
    figures._stack_panels(phone)
    renderer = figures._renderer(phone)
    for ax in phone.axes:
        assert [t for t in ax.get_yticklabels() if t.get_visible() and t.get_text()
                and t.get_window_extent(renderer).width > 0], "a stacked panel without y numbers"


def pickle_copy(fig):
    import pickle

    return pickle.loads(pickle.dumps(fig))


def test_a_y_label_is_moved_off_a_rotated_first_x_tick():
    """The hourly chart: its y label, longer than the plot is tall, reaches down to the first x tick
    label, which is rotated and right-aligned under the axis' corner."""
    fig, ax = plt.subplots(figsize=(8.5, 3.6))
    ax.bar(range(4), [1, 2, 3, 4])
    ax.set_xticks(range(4), ["Tue 1 Dec 00:00"] * 4, rotation=30, ha="right", fontsize=8)
    ax.set_xlim(0, 3)  # the first tick at the axis' corner
    ax.set_ylabel("Count per hour (axis cut above the shoppers' busiest hour)")
    renderer = figures._renderer(fig)

    def clash():
        label = ax.yaxis.label.get_window_extent(figures._renderer(fig))
        return any(figures._overlap(label, t) for t in figures._visible_ticks(ax.xaxis, renderer))

    assert clash()  # as drawn by the chapter
    figures.untangle(fig)
    assert not clash()


def test_a_title_is_lifted_off_a_bar_label_under_it():
    """The revenue chart: the taller bar's label ran into the title."""
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    bars = ax.bar(["Wed", "Thu"], [61164, 55953])
    ax.bar_label(bars, labels=["180 orders", "174 orders"])
    ax.set_title("Revenue per day", loc="left")

    def clash():
        renderer = figures._renderer(fig)
        return any(figures._overlap(ax._left_title.get_window_extent(renderer), t.get_window_extent(renderer))
                   for t in ax.texts)

    ax.set_title("Revenue per day", loc="left", pad=-4)  # as tight as the chapter's was
    assert clash()
    figures.untangle(fig)
    assert not clash()


def test_a_title_set_where_it_is_is_left_there_as_every_round_would(monkeypatch):
    """A two-line title over a text just under it is set to the same pad round after round (the lift is
    measured from its lowest line, its pad from its baseline); untangle stops at the first round that
    repeats the last: the chart is the same, to the byte, as after all twelve rounds."""
    from matplotlib.axes import Axes

    def stuck():
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot([0, 1], [0, 1])
        ax.set_title("Orders and sessions started,\nhour by hour", loc="left")
        ax.text(0, 1.0, "Count per hour (axis cut)", transform=ax.transAxes, va="bottom")
        return fig

    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "test")
    quick, every_round = stuck(), stuck()
    pads, set_title = [], Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda self, *args, **kw: pads.append(kw["pad"]) or set_title(self, *args, **kw))
    figures.untangle(quick)
    assert len(pads) == 1
    laid_out_in_draw = figures._laid_out_in_draw
    monkeypatch.setattr(figures, "_laid_out_in_draw", lambda fig: True)  # each round drawn in full, none skipped
    figures.untangle(every_round)
    assert len(pads) == 1 + 12 and len(set(pads)) == 1
    monkeypatch.setattr(figures, "_laid_out_in_draw", laid_out_in_draw)
    assert figures.svg(quick) == figures.svg(every_round)


def test_a_diagram_scrolls_on_a_phone_wide_enough_for_its_text():
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.text(0.5, 0.5, "stg_orders", fontsize=6)
    ax.axis("off")
    assert figures.is_diagram(fig)
    shown = figures.picture_html(fig, "Diagram: models")
    width = float(shown.split("--phone-width: ")[1].split("px")[0])
    natural = figures.natural_width_px(figures.svg(fig))
    assert width == pytest.approx(natural * figures.MIN_PHONE_TEXT_PX / (6 * figures.PX_PER_PT), rel=0.01)
    assert "greenery-diagram" in shown and 'alt="Diagram: models"' in shown


def test_a_chart_is_one_picture_with_a_phone_source_and_escaped_alt_text():
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.bar(["ups", "fedex"], [20, 30])
    ax.tick_params(labelsize=12)
    shown = figures.picture_html(fig, 'Late share "by" carrier <b>')
    assert shown.count("data:image/svg+xml;base64,") == 2  # it prints legibly as it is: no print version
    assert '<source media="(max-width: 639.98px)"' in shown
    assert 'alt="Late share &quot;by&quot; carrier &lt;b&gt;"' in shown


def rate_bars(rows: int, height_per_row: float = 0.5):
    """The funnel's chart: a bar per product with 12 pt names, 0.5 inch a row (30 rows: 16 inches tall)."""
    fig, ax = plt.subplots(figsize=(6.4, height_per_row * rows + 1.3))
    ax.barh([f"Product name {i}  (n=45)" for i in range(rows)], [50] * rows)
    ax.tick_params(labelsize=12)
    ax.text(50, 1.0, "all products: 60.5 %", transform=ax.get_xaxis_transform(), fontsize=10)
    return fig


def test_a_tall_chart_gets_a_print_version_whose_text_is_at_least_7_pt_on_paper():
    fig = rate_bars(30)
    laptop = figures.svg(fig)
    # at half a sheet's height, as every chart prints, its 10 pt note would print at about 4.5 pt
    assert figures.printed_text_pt(laptop) < 5
    paper = figures.print_svg(fig, laptop)
    assert figures.printed_text_pt(paper, figures.PRINT_TALL_HEIGHT_MM) >= figures.MIN_PRINT_TEXT_PT - 0.05
    shown = figures.picture_html(fig, "Conversion by product")
    assert 'picture class="greenery-chart greenery-screen-chart"' in shown
    assert '<img class="greenery-print-chart" src="data:image/svg+xml;base64,' in shown
    assert shown.count('alt="Conversion by product"') == 2


def test_a_chart_too_tall_even_for_a_sheet_is_drawn_shorter_for_paper():
    fig = rate_bars(45, 0.6)  # 28 inches: a sheet holds it only at 3.5 pt
    laptop = figures.svg(fig)
    assert figures.printed_text_pt(laptop, figures.PRINT_TALL_HEIGHT_MM) < 5
    paper = figures.print_svg(fig, laptop)
    assert figures.printed_text_pt(paper, figures.PRINT_TALL_HEIGHT_MM) >= figures.MIN_PRINT_TEXT_PT - 0.05
    assert tuple(fig.get_size_inches()) == pytest.approx((6.4, 0.6 * 45 + 1.3))  # the chapter's figure unchanged


def test_an_ordinary_chart_has_no_print_version():
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.bar(["Wed", "Thu"], [1, 2])
    ax.tick_params(labelsize=12)
    assert figures.print_svg(fig, figures.svg(fig)) is None


def test_a_long_table_gets_a_toggle_and_a_short_one_none():
    assert tables.with_toggle("<table></table>", tables.PHONE_ROWS, "t1") == "<table></table>"
    long = tables.with_toggle("<table></table>", 1234, "t2")
    assert long.startswith('<input type="checkbox" class="greenery-more" id="greenery-more-t2">')
    assert '<label class="greenery-more" for="greenery-more-t2">' in long and "Show all 1,234 rows" in long


@pytest.mark.parametrize("latex, words", [
    (r"\text{repeat rate} = \frac{\text{users with two or more orders}}{\text{users with at least one order}}",
     "repeat rate equals users with two or more orders divided by users with at least one order"),
    (r"\hat p \pm z_{0.975}\sqrt{\frac{\hat p(1-\hat p)}{n}}",
     "p hat plus or minus z sub 0.975 the square root of p hat (1 minus p hat ) divided by n"),
    (r"x^2 \le 3", "x squared is at most 3"),
])
def test_a_formula_reads_in_words(latex, words):
    assert spoken(latex) == words



def _same_alone_and_shared(monkeypatch, draw) -> None:
    """`draw()` (two drawings under two settings) gives the same with matplotlib's own text caches as with
    the shared ones (matplotlib_reuse.share_text_metrics, fresh), and the two settings do differ."""
    import matplotlib.text as mtext

    own = getattr(mtext._get_text_metrics_with_cache, "greenery_original", mtext._get_text_metrics_with_cache)
    own_layout = getattr(mtext.Text._get_layout, "greenery_original", mtext.Text._get_layout)
    monkeypatch.setattr(mtext, "_get_text_metrics_with_cache", own)  # undone after the test
    monkeypatch.setattr(mtext.Text, "_get_layout", own_layout)
    alone = draw()
    monkeypatch.setattr(matplotlib_reuse, "_TEXT_METRICS", {})
    monkeypatch.setattr(matplotlib_reuse, "_TEXT_LAYOUTS", {})
    matplotlib_reuse.share_text_metrics()
    assert draw() == alone
    assert alone[0] != alone[1]

def _hourly_chart():
    """The book's hourly chart, as its chapter draws it: a y label longer than the plot is tall, a legend
    inside, a note to the right of the last bars, 8 pt rotated ticks."""
    import pandas as pd

    hours = pd.date_range("2021-02-09 18:00", periods=54, freq="h")
    fig, ax = plt.subplots(figsize=(8.5, 3.6))
    ax.bar(hours, [5] * 54, width=1 / 24, label="sessions started, shoppers", align="edge")
    ax.annotate("160 sessions\n(150 flagged), off scale", (hours[50], 5), xytext=(8, -24), textcoords="offset points",
                fontsize=8, arrowprops={"arrowstyle": "-"})
    ticks = hours[hours.hour % 6 == 0]
    ax.set_xticks(list(ticks), [t.strftime("%a %d %b %H:%M") for t in ticks], rotation=30, ha="right", fontsize=8)
    ax.set_title("Orders and sessions started, hour by hour (UTC)", loc="left")
    ax.set_ylabel("Count per hour (axis cut above the shoppers' busiest hour)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def test_a_phone_chart_gives_its_plot_the_width():
    """The hourly chart: a y label longer than the plot is tall, a legend inside, a note to the right of
    the last bars, 8 pt rotated ticks. On a phone: the y label above the plot, written across; the legend
    above the plot; the note left of its point; the plot at least half the phone's width."""

    fig = _hourly_chart()
    captured = {}
    real_svg = figures.svg
    figures.svg = lambda f, wanted=None: captured.setdefault("fig", f) and real_svg(f, wanted)  # keep the phone figure
    try:
        drawn = figures.phone_svg(fig)
    finally:
        figures.svg = real_svg
    phone = captured["fig"]
    [plot] = phone.axes
    renderer = figures._renderer(phone)
    box = plot.get_window_extent(renderer)
    assert plot.get_ylabel() == "" and any("Count per hour" in t.get_text() for t in plot.texts)
    assert plot.get_legend().get_window_extent(renderer).y0 >= box.y1
    [note] = [t for t in plot.texts if "flagged" in t.get_text()]
    assert note.get_window_extent(renderer).x1 <= box.x1
    assert box.width >= 0.5 * figures.PHONE_WIDTH_PX * phone.dpi / 96
    assert figures.natural_width_px(drawn) <= figures.PHONE_WIDTH_PX + 2
    assert min(figures.text_sizes_pt(drawn)) >= figures.MIN_TEXT_PT


@pytest.mark.parametrize("engine", ["none", "constrained"])
def test_untangle_places_moved_labels_as_a_full_draw_would(monkeypatch, engine):
    """untangle places the labels and titles it reads (figures._placed) and re-places only the label or
    title it moved (figures._moved) instead of drawing the whole figure: the chart it leaves is the same,
    to the byte, as with a full draw each time."""
    def tangled():
        fig, ax = plt.subplots(figsize=(8.5, 3.6), layout=engine)
        bars = ax.bar(range(4), [1, 2, 3, 4])
        ax.bar_label(bars, labels=["one order", "two", "three", "four orders"])
        ax.set_xticks(range(4), ["Tue 1 Dec 00:00"] * 4, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(0, 3)
        ax.set_ylabel("Count per hour (axis cut above the shoppers' busiest hour)")
        ax.set_title("Orders per hour", loc="left", pad=-4)
        return fig

    quick = tangled()
    draws = []
    full_draw = figures._renderer
    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "test")  # ids from content, as the book sets them
    monkeypatch.setattr(figures, "_renderer", lambda fig, drawn=None: draws.append(fig) or full_draw(fig, drawn))
    figures.untangle(quick)
    monkeypatch.setattr(figures, "_moved", lambda fig, ax, renderer, title: full_draw(fig))
    monkeypatch.setattr(figures, "_placed", full_draw)
    drawn = tangled()
    figures.untangle(drawn)
    assert figures.svg(quick) == figures.svg(drawn)
    assert quick.axes[0].yaxis.labelpad > 4  # the label did move
    if engine == "none":  # without a layout engine nothing else moves: no draw at all
        assert not any(fig is quick for fig in draws)
    else:  # the engine runs in a draw: drawn to place the labels, and again after each move
        assert sum(fig is quick for fig in draws) > 1


def crowded_charts():
    """Charts whose phone versions take every step's changing branch: x tick labels laid flat and thinned,
    or rotated; labels over narrow bars stood upright with the plot rescaled; a note moved left; a
    legend moved above; a title lifted off a bar label; panels stacked."""

    hourly = _hourly_chart()

    labelled, ax = plt.subplots(figsize=(7.5, 2.8))
    bars = ax.bar([f"day {i}" for i in range(12)], [61164 - 900 * i for i in range(12)])
    ax.bar_label(bars, labels=[f"{180 - i} orders" for i in range(12)])
    ax.set_title("Revenue per day", loc="left", pad=-4)

    rotated, ax = plt.subplots(figsize=(9, 3))
    ax.bar([f"a long category name {i}" for i in range(8)], range(8))
    return [two_panels(), hourly, labelled, rotated]


@pytest.mark.parametrize("chart", range(4))
def test_phone_steps_share_a_draw_only_while_the_figure_is_unchanged(monkeypatch, chart):
    """A step hands the next the renderer of its last draw only when it changed nothing since, and steps
    that measure only what is placed when measured do not draw (`_reader`): the phone version is the same,
    to the byte, as when every step draws the figure afresh; and it takes fewer draws."""
    from matplotlib.figure import Figure

    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "test")  # ids from content, as the book sets them
    draws = []
    real_draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda fig, renderer: draws.append(fig) or real_draw(fig, renderer))
    shared = figures.phone_svg(crowded_charts()[chart])
    shared_draws = len(draws)
    full_draw = figures._renderer
    monkeypatch.setattr(figures, "_renderer", lambda fig, drawn=None: full_draw(fig))  # never trust a handed renderer
    monkeypatch.setattr(figures, "_reader", full_draw)  # nor measure without a draw
    monkeypatch.setattr(figures, "_placed", full_draw)  # nor place labels and titles without one
    fresh = figures.phone_svg(crowded_charts()[chart])
    assert shared == fresh
    assert shared_draws < len(draws) - shared_draws


def test_a_step_that_changed_the_figure_hands_on_no_renderer():
    """What makes the shared draws safe: each step returns its renderer only when it left the figure as drawn."""
    fig, ax = plt.subplots(figsize=(2.5, 3))
    ax.bar([f"cat {i}" for i in range(13)], range(13))
    renderer = figures._renderer(fig)
    assert figures._renderer(fig, renderer) is renderer
    assert figures._legends_above(fig, renderer) is renderer  # no legend: nothing moved
    ax.bar([0], [1], label="late")
    ax.legend()
    assert figures._legends_above(fig, renderer) is None
    ax.set_ylabel("A y label")
    assert figures.untangle(fig) is not None  # nothing ran into anything
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    ax.bar_label(ax.bar(["Wed", "Thu"], [61164, 55953]), labels=["180 orders", "174 orders"])
    ax.set_title("Revenue per day", loc="left", pad=-4)
    assert figures.untangle(fig) is None  # the title was lifted off the bar's label


@pytest.mark.parametrize("aspect", ["auto", "equal"])
def test_left_titles_are_placed_from_the_box_a_draw_leaves(aspect):
    """_titles_from_the_left_edge reads each plot's box without drawing the figure, unless a draw would move it."""
    def chart():
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.barh(["ups", "a long carrier name"], [1, 2])
        ax.set_aspect(aspect)
        ax.set_title("Late orders", loc="left")
        fig.tight_layout()
        return fig

    quick, drawn = chart(), chart()
    figures._titles_from_the_left_edge(quick)
    figures._renderer(drawn)
    figures._titles_from_the_left_edge(drawn)
    assert quick.axes[0]._left_title.get_position() == drawn.axes[0]._left_title.get_position()
    assert quick.axes[0]._left_title.get_position()[0] < 0  # from the figure's edge, left of the plot


def test_a_renderer_handed_on_after_a_change_shows_the_old_layout():
    """Why a step that changed the figure must hand on no renderer: a label placed by a draw (the y label,
    beside the y numbers) stays where the last draw put it until the figure is drawn again."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1000])
    ax.set_ylabel("orders")
    drawn = figures._renderer(fig)
    before = ax.yaxis.label.get_window_extent(drawn).x0
    ax.tick_params(axis="y", labelsize=30)  # wider numbers: a draw moves the y label left
    assert ax.yaxis.label.get_window_extent(figures._renderer(fig, drawn)).x0 == before  # the old place
    assert ax.yaxis.label.get_window_extent(figures._renderer(fig)).x0 < before - 10


def test_an_unwanted_svg_is_measured_not_drawn(monkeypatch):
    """svg's `wanted`: the opening tag it is asked with holds the size of the SVG it would write; when
    unwanted, savefig's last draw is not made, and the figure is left as it was for the next savefig."""
    from matplotlib.figure import Figure

    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "test")
    fig = two_panels()
    whole = figures.svg(fig)
    draws, real_draw = [], Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda f, renderer: draws.append(f) or real_draw(f, renderer))
    asked = []
    head = figures.svg(fig, lambda tag: asked.append(tag) or False)
    assert draws == []  # not the draw that writes (nor savefig's draw before measuring: `svg` skips it)
    assert asked == [head] and whole.startswith(head) and "<g " not in head  # its start: nothing drawn yet
    assert figures.natural_size_pt(head) == figures.natural_size_pt(whole) != (0.0, 0.0)
    assert "draw" not in vars(fig)
    assert figures.svg(fig, lambda tag: True) == whole == figures.svg(fig)
    assert len(draws) == 2  # one each: the draw that writes


@pytest.mark.parametrize("chart", range(4))
def test_a_phone_version_narrowed_again_is_measured_not_written(monkeypatch, chart):
    """Each version of the phone figure that is narrowed again is only measured: the one kept is the
    same, to the byte, as when every version is written in full."""
    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "test")
    real_svg, sizes = figures.svg, []
    monkeypatch.setattr(figures, "svg", lambda f, wanted=None: sizes.append(f.get_size_inches()[0]) or real_svg(f))
    written = figures.phone_svg(crowded_charts()[chart])
    monkeypatch.setattr(figures, "svg", real_svg)
    assert figures.phone_svg(crowded_charts()[chart]) == written
    assert chart != 1 or len(sizes) > 1  # the hourly chart is narrowed at least once


def many_kinds_of_chart():
    """One of each kind of chart a chapter might draw, for `svg` against savefig's own tight box."""
    import numpy as np
    import pandas as pd
    from mpl_toolkits.axes_grid1.inset_locator import inset_axes

    charts = [two_panels()]
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")  # a layout engine runs in the draw
    ax.plot(range(10), np.arange(10) ** 2, label="squares")
    ax.plot(range(10), range(10), label="identity")
    ax.legend(loc="best")
    ax.set_xlabel("x with a long label")
    charts.append(fig)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(range(5), [1e6, 2e6, 3e6, 2.5e6, 4e6])  # numbers written with an offset above the axis
    ax.annotate("peak", (4, 4e6), xytext=(-40, -20), textcoords="offset points", arrowprops={"arrowstyle": "->"})
    ax.text(0.1, 0.9, "a note long enough to be wrapped inside the figure's width " * 3, wrap=True,
            transform=ax.transAxes)
    ax.set_title("Offset numbers, a note and an arrow")
    twin = ax.twinx()
    twin.plot(range(5), [5, 3, 4, 1, 2], color="red")
    twin.set_ylabel("share (%)")
    charts.append(fig)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    image = left.imshow(np.arange(20).reshape(4, 5), aspect="equal")
    fig.colorbar(image, ax=left)
    right.barh(["a", "b", "c"], [3, 1, 2])
    right.set_xscale("log")
    fig.suptitle("A suptitle over an image and a log axis")
    fig.legend(["bars"], loc="lower center")
    inset = inset_axes(right, width="30%", height="30%", loc="upper right")
    inset.plot([0, 1], [1, 0])
    charts.append(fig)
    fig = plt.figure(figsize=(4, 4))
    polar = fig.add_subplot(projection="polar")
    polar.plot(np.linspace(0, 2 * np.pi, 50), np.linspace(0, 1, 50))
    polar.set_title("Polar", loc="left")
    charts.append(fig)
    fig, ax = plt.subplots(figsize=(7, 3))
    days = pd.date_range("2021-02-01", periods=30, freq="D")
    bars = ax.bar(days, range(30))
    ax.bar_label(bars, fontsize=6, rotation=90)
    ax.tick_params(axis="x", rotation=45)
    ax.set_ylabel("orders per day, a label taller than the plot", wrap=True)
    fig.tight_layout()
    charts.append(fig)
    return charts


@pytest.mark.parametrize("chart", range(6))
def test_an_svg_measured_without_the_first_draw_is_savefigs_own(monkeypatch, chart):
    """`svg` skips savefig's draw before it measures the tight box: the SVG is the same, to the byte, as
    savefig's with that draw, on every kind of chart."""
    import io

    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "test")
    ours = figures.svg(many_kinds_of_chart()[chart])
    buffer = io.StringIO()
    many_kinds_of_chart()[chart].savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    assert ours == buffer.getvalue()


@pytest.mark.parametrize("chart", range(4))
def test_a_reader_measures_ticks_texts_and_boxes_as_a_draw_leaves_them(monkeypatch, chart):
    """`_reader` does not draw the figure: tick labels, texts, notes and the plots' boxes it measures are
    where a draw puts them, at the phone's size after its layout, and after ticks and labels were changed."""
    from matplotlib.figure import Figure

    def measured(fig, renderer):
        boxes = []
        for ax in fig.axes:
            boxes.append(tuple(ax.get_window_extent().bounds))
            boxes += [tuple(t.get_window_extent(renderer).bounds) for t in [*ax.get_xticklabels(), *ax.texts]]
        return boxes

    def phone():
        fig = pickle_copy(crowded_charts()[chart])
        fig.set_layout_engine("none")
        figures._phone_text(fig)
        figures._fit(fig, figures.PHONE_WIDTH_PX / 96)
        return fig

    draws, real_draw = [], Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda f, renderer: draws.append(f) or real_draw(f, renderer))
    read, drawn = phone(), phone()
    assert measured(read, figures._reader(read)) == measured(drawn, figures._renderer(drawn))
    for fig in (read, drawn):
        figures._unclash_ticks(fig)
        figures._upright_bar_labels(fig)
    assert measured(read, figures._reader(read)) == measured(drawn, figures._renderer(drawn))
    assert read not in draws


@pytest.mark.parametrize("chart", range(4))
def test_labels_and_titles_are_placed_as_a_draw_places_them(monkeypatch, chart):
    """`_placed` does not draw the figure: y labels and titles are where a draw puts them, at the phone's
    size after its layout and after the tick labels changed (flat, thinned, rotated)."""
    from matplotlib.figure import Figure

    def placed(fig, renderer):
        return [tuple(t.get_window_extent(renderer).bounds) for ax in fig.axes
                for t in [ax.yaxis.label, ax.title, ax._left_title, ax._right_title]]

    def phone():
        fig = pickle_copy(crowded_charts()[chart])
        fig.set_layout_engine("none")
        figures._phone_text(fig)
        figures._fit(fig, figures.PHONE_WIDTH_PX / 96)
        figures._unclash_ticks(fig)
        return fig

    draws, real_draw = [], Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda f, renderer: draws.append(f) or real_draw(f, renderer))
    quick, drawn = phone(), phone()
    assert placed(quick, figures._placed(quick)) == placed(drawn, figures._renderer(drawn))
    assert quick not in draws


def test_a_reader_draws_a_figure_whose_boxes_a_draw_moves():
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_aspect("equal")  # a draw narrows the box to keep the aspect
    before = ax.get_window_extent().width
    figures._reader(fig)
    assert ax.get_window_extent().width < before - 50


def test_the_copies_drawn_for_phones_and_paper_are_not_left_open_in_pyplot():
    # Unpickling a pyplot figure registers the copy with pyplot: left open, every chart would keep its
    # copies alive until the chapter ends (and pyplot warns past 20 open figures).
    fig, ax = plt.subplots(figsize=(6, 30))  # tall: a print version too
    ax.barh([f"product {i}" for i in range(30)], range(30))
    before = plt.get_fignums()
    figures.picture_html(fig, "bars")
    assert plt.get_fignums() == before
    plt.close(fig)


def texts_laid_out_every_way():
    """The same words laid out every way a text's layout depends on (alignments, rotation and its mode, a rotation
    that follows the data's transform, line spacing, lines aligned among themselves, size, font), and texts laid out
    as matplotlib does: a formula (mathtext), a `$` sign, text wrapped to the figure's width."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([0, 10], [0, 5])
    ways = [{}, {"ha": "right"}, {"ha": "center", "va": "top"}, {"va": "baseline"}, {"va": "center_baseline"},
            {"rotation": 30}, {"rotation": 30, "rotation_mode": "anchor"}, {"linespacing": 2.5},
            {"multialignment": "right"}, {"fontsize": 14}, {"rotation": 90, "ha": "right"}, {"fontweight": "bold"},
            {"family": "monospace"}]
    for i, way in enumerate(ways):
        ax.text(0.05 + i * 0.07, 0.5, "Orders per day\nthe last 30", transform=ax.transAxes, **{"fontsize": 7, **way})
    ax.text(2, 1, "Orders per day", rotation=20, transform_rotates_text=True)
    ax.set_xlabel(r"$x^2$ orders per day")
    ax.set_ylabel("Revenue ($) per day")
    ax.text(0.5, 0.1, "a note wrapped to the figure's width " * 4, wrap=True, transform=ax.transAxes)
    ax.set_title("Orders per day", loc="left")
    return fig


@pytest.mark.parametrize("backend", ["svg", "agg"])
@pytest.mark.parametrize("chart", range(13))
def test_text_sizes_layouts_and_glyphs_shared_between_renderers_draw_the_same_chart(monkeypatch, backend, chart):
    """`share_text_metrics` (book.setup) keeps a text's size and its layout for every renderer of its kind, and
    its glyphs for every SVG: every version of every kind of chart (laptop, phone and paper SVGs, diagrams,
    texts laid out every way) is the same, to the byte, as with matplotlib's own cache of sizes per renderer,
    and its layout and glyphs worked out at each use, whether the figures' canvas is SVG or Agg (the chapters'
    inline backend); and what is shared is used: texts are measured, laid out and looked up fewer times."""
    import matplotlib.text as mtext
    import matplotlib.textpath as mtextpath
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.backends.backend_svg import RendererSVG

    def charts():
        plt.switch_backend(backend)
        diagram, ax = plt.subplots(figsize=(8, 3))  # no axes to read: drawn once (`diagram_html`)
        ax.axis("off")
        for x, name in enumerate(["raw.orders", "stg_orders", "fct_orders"]):
            ax.text(x / 3 + 0.05, 0.5, name, fontsize=7, bbox={"boxstyle": "round"})
        return [*many_kinds_of_chart(), *crowded_charts(), rate_bars(30), diagram, texts_laid_out_every_way()]

    # matplotlib's own first, even where an earlier test's book.setup shared the sizes and layouts; its ticks
    # matplotlib's own both times (book.setup's `share_tick_updates` would spare the layouts measured here)
    _own_tick_updates(monkeypatch, [])
    own = getattr(mtext._get_text_metrics_with_cache, "greenery_original", mtext._get_text_metrics_with_cache)
    own_layout = getattr(mtext.Text._get_layout, "greenery_original", mtext.Text._get_layout)
    own_glyphs = mtextpath.TextToPath.get_glyphs_with_font
    own_glyphs = getattr(own_glyphs, "greenery_original", own_glyphs)
    measured, laid_out, looked_up = [], [], []
    monkeypatch.setattr(mtext, "_get_text_metrics_with_cache", own)
    monkeypatch.setattr(mtext.Text, "_get_layout", lambda self, renderer: laid_out.append(self) or own_layout(self, renderer))
    monkeypatch.setattr(mtextpath.TextToPath, "get_glyphs_with_font",
                        lambda *args, **kw: looked_up.append(args) or own_glyphs(*args, **kw))
    for cls in (RendererAgg, RendererSVG):
        real = cls.get_text_width_height_descent
        monkeypatch.setattr(cls, "get_text_width_height_descent",
                            lambda self, *args, real=real: measured.append(args) or real(self, *args))
    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "test")
    figure = charts()[chart]
    alone = figures.picture_html(figure, "alt")
    sizes, layouts, lookups = len(measured), len(laid_out), len(looked_up)
    plt.close("all")
    # undone after the test
    monkeypatch.setattr(mtext, "_get_text_metrics_with_cache", mtext._get_text_metrics_with_cache)
    monkeypatch.setattr(mtext.Text, "_get_layout", mtext.Text._get_layout)
    monkeypatch.setattr(mtextpath.TextToPath, "get_glyphs_with_font", mtextpath.TextToPath.get_glyphs_with_font)
    for cache in ("_TEXT_METRICS", "_TEXT_LAYOUTS", "_GLYPHS"):
        monkeypatch.setattr(matplotlib_reuse, cache, {})
    matplotlib_reuse.share_text_metrics()
    matplotlib_reuse.share_text_metrics()  # twice is once
    assert mtext.Text._get_layout.greenery_original.__name__ == "<lambda>"  # matplotlib's own, counted
    assert mtextpath.TextToPath.get_glyphs_with_font.greenery_original.__name__ == "<lambda>"
    shared = figures.picture_html(charts()[chart], "alt")
    assert shared == alone
    assert len(measured) - sizes < sizes
    assert len(laid_out) - layouts < layouts / 2
    assert len(looked_up) - lookups < lookups or figures.is_diagram(figure)  # a diagram is drawn once: its texts too


def test_a_text_is_measured_again_in_the_font_its_family_now_names(monkeypatch):
    """A generic family (sans-serif) is looked up in the font lists when a text is measured: a size or a layout
    kept from before the lists changed is not used."""

    def boxes():
        found = []
        for fonts in (["DejaVu Sans"], ["DejaVu Sans Mono"]):
            with matplotlib.rc_context({"font.sans-serif": fonts}):
                fig, ax = plt.subplots()
                found.append(tuple(ax.text(0, 0, "Orders per day").get_window_extent(fig._get_renderer()).bounds))
        return found

    _same_alone_and_shared(monkeypatch, boxes)


def test_a_text_is_measured_again_when_the_fonts_it_falls_back_to_change(monkeypatch):
    """matplotlib's font for a text (matplotlib.font_manager.get_font) also reads `font.enable_last_resort` (a
    character no font holds drawn as the Last Resort font's box, or as the font's own empty glyph: another
    width): a size or a layout kept from before it changed is not used."""
    import warnings


    def boxes():
        found = []
        for settings in ({}, {"font.enable_last_resort": False}):
            with matplotlib.rc_context(settings):
                fig, ax = plt.subplots()
                text = ax.text(0, 0, "AVATAR x\N{CJK UNIFIED IDEOGRAPH-4E2D}y")  # in no font matplotlib ships
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "Glyph ... missing from font(s)"
                    found.append(tuple(text.get_window_extent(fig._get_renderer()).bounds))
                plt.close(fig)
        return found

    _same_alone_and_shared(monkeypatch, boxes)


def test_a_pdf_s_texts_are_measured_as_matplotlib_measures_them(monkeypatch):
    """Only Agg's and SVG's measures are shared (what their key holds is all they read): a PDF reads settings
    of its own (pdf.use14corefonts: Helvetica's metrics, not DejaVu's), and is drawn as with matplotlib's own
    caches, here its tight box."""
    import io
    import warnings


    def pdfs():
        found = []
        for settings in ({}, {"pdf.use14corefonts": True}):
            with matplotlib.rc_context(settings), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig, ax = plt.subplots(figsize=(3, 2))
                ax.set_title("Orders per day")
                buffer = io.BytesIO()
                fig.savefig(buffer, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
                found.append(buffer.getvalue())
                plt.close(fig)
        return found

    _same_alone_and_shared(monkeypatch, pdfs)


def test_a_text_is_measured_again_in_a_font_added_since(monkeypatch):
    """A family no font had yet is drawn in the default font; once a chapter adds a font of that family
    (matplotlib.font_manager.fontManager.addfont, which empties matplotlib's own lookups), the text is measured
    in it, not with the size kept from before."""
    import warnings

    import matplotlib.text as mtext
    from matplotlib import font_manager

    manager = font_manager.fontManager
    cmr10 = next(f.fname for f in manager.ttflist if f.name == "cmr10")

    def boxes():
        found = []
        monkeypatch.setattr(manager, "ttflist", [f for f in manager.ttflist if f.name != "cmr10"])
        manager._findfont_cached.cache_clear()
        for add in (False, True):
            if add:
                manager.addfont(cmr10)
            fig, ax = plt.subplots()
            text = ax.text(0, 0, "Orders per day", family="cmr10")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "findfont: Font family 'cmr10' not found"
                found.append(tuple(text.get_window_extent(fig._get_renderer()).bounds))
            plt.close(fig)
        monkeypatch.undo()  # matplotlib's own fonts again
        manager._findfont_cached.cache_clear()
        return found

    own = getattr(mtext._get_text_metrics_with_cache, "greenery_original", mtext._get_text_metrics_with_cache)
    own_layout = getattr(mtext.Text._get_layout, "greenery_original", mtext.Text._get_layout)
    with monkeypatch.context() as patched:
        patched.setattr(mtext, "_get_text_metrics_with_cache", own)
        patched.setattr(mtext.Text, "_get_layout", own_layout)
        alone = boxes()
    with monkeypatch.context() as patched:
        patched.setattr(matplotlib_reuse, "_TEXT_METRICS", {})
        patched.setattr(matplotlib_reuse, "_TEXT_LAYOUTS", {})
        patched.setattr(mtext, "_get_text_metrics_with_cache", mtext._get_text_metrics_with_cache)  # undone after
        patched.setattr(mtext.Text, "_get_layout", mtext.Text._get_layout)
        matplotlib_reuse.share_text_metrics()
        shared = boxes()
    assert shared == alone
    assert alone[0] != alone[1]


def _own_tick_updates(monkeypatch, counted: list) -> None:
    """matplotlib's own tick updates and tick label boxes, at every step of a draw or a measure (undoing
    `share_tick_updates` where an earlier test's book.setup installed it), each real update counted."""
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis, XAxis, YAxis

    for cls, name in ((Axes, "draw"), (Axes, "get_tightbbox"), (Axes, "_update_title_position"), (Axis, "draw"),
                      (Axis, "get_tightbbox"), (XAxis, "_update_label_position"), (YAxis, "_update_label_position")):
        method = getattr(cls, name)
        monkeypatch.setattr(cls, name, getattr(method, "greenery_original", method))  # undone after the test
    update = getattr(Axis._update_ticks, "greenery_original", Axis._update_ticks)
    monkeypatch.setattr(Axis, "_update_ticks", lambda self: counted.append(self) or update(self))
    monkeypatch.setattr(Axis, "_get_ticklabel_bboxes",
                        getattr(Axis._get_ticklabel_bboxes, "greenery_original", Axis._get_ticklabel_bboxes))


@pytest.mark.parametrize("backend", ["svg", "agg"])
@pytest.mark.parametrize("chart", range(13))
def test_ticks_worked_out_once_per_draw_or_measure_draw_the_same_chart(monkeypatch, backend, chart):
    """`share_tick_updates` (book.setup) works each axis' ticks and their labels' boxes out once per draw or
    measure of its plot: every version of every kind of chart (laptop, phone and paper SVGs; a layout engine, a
    fixed aspect, an inset, a colorbar, a twin and shared axes, a log and a polar axis, dates, offset numbers) is
    the same, to the byte, as with matplotlib updating them at every step, on the SVG and the Agg canvas; and the
    ticks are updated fewer than half as many times."""
    import matplotlib.text as mtext

    def charts():
        plt.switch_backend(backend)
        diagram, ax = plt.subplots(figsize=(8, 3))
        ax.axis("off")
        ax.text(0.05, 0.5, "raw.orders", fontsize=7, bbox={"boxstyle": "round"})
        return [*many_kinds_of_chart(), *crowded_charts(), rate_bars(30), diagram, texts_laid_out_every_way()]

    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "test")
    # the text caches as the chapters have them (book.setup): only the ticks are drawn both ways
    monkeypatch.setattr(mtext, "_get_text_metrics_with_cache", mtext._get_text_metrics_with_cache)
    monkeypatch.setattr(mtext.Text, "_get_layout", mtext.Text._get_layout)
    matplotlib_reuse.share_text_metrics()
    updated = []
    _own_tick_updates(monkeypatch, updated)
    own = figures.picture_html(charts()[chart], "alt")
    own_updates = len(updated)
    plt.close("all")
    matplotlib_reuse.share_tick_updates()
    matplotlib_reuse.share_tick_updates()  # twice is once
    kept = figures.picture_html(charts()[chart], "alt")
    assert kept == own
    assert len(updated) - own_updates < own_updates / 2 or figures.is_diagram(charts()[chart])


def test_ticks_kept_within_a_draw_are_worked_out_again_once_the_view_or_the_plot_moves(monkeypatch):
    """Within one draw or measure, an axis' ticks and their labels' boxes are kept only while what they are
    worked out from is unchanged: once the view is zoomed (autoscaled) or the plot moved (a fixed aspect, an
    inset placed), they are what matplotlib works out afresh."""
    updated = []
    _own_tick_updates(monkeypatch, updated)
    matplotlib_reuse.share_tick_updates()

    def ticks_and_boxes(fig, ax):
        renderer = fig._get_renderer()
        found = []
        for change in (lambda: None, lambda: ax.set_xlim(0, 40), lambda: ax.set_position([0.3, 0.3, 0.2, 0.2])):
            change()
            ticks = ax.xaxis._update_ticks()
            boxes = ax.xaxis._get_ticklabel_bboxes(ticks, renderer)
            found.append(([t.label1.get_text() for t in ticks], [tuple(b.bounds) for b in boxes[0]]))
        return found

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(range(10), range(10))
    with matplotlib_reuse.ticks_kept():
        kept = ticks_and_boxes(fig, ax)
        again = len(updated)
        ax.xaxis._update_ticks()
        assert len(updated) == again  # unchanged since: kept
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(range(10), range(10))
    assert kept == ticks_and_boxes(fig, ax)  # no scope: matplotlib's own each time
    assert kept[0][0] != kept[1][0] and kept[1][1] != kept[2][1]


def test_tick_label_boxes_are_kept_only_with_the_ticks_they_were_measured_with(monkeypatch):
    """Labels measured after the view moved but before the ticks were worked out again (the old labels where
    the new view puts them) are not kept for the ticks worked out next; and an axis whose view autoscales when
    read (data added since) has its ticks worked out as matplotlib does."""
    _own_tick_updates(monkeypatch, [])
    matplotlib_reuse.share_tick_updates()

    def widths(fig, ax, scoped):
        renderer = fig._get_renderer()
        with matplotlib_reuse.ticks_kept() if scoped else contextlib.nullcontext():
            ticks = ax.xaxis._update_ticks()
            ax.set_xlim(*(x + 100 for x in ax.get_xlim()))  # the same ticks, each with a longer label
            before = ax.xaxis._get_ticklabel_bboxes(ticks, renderer)
            ticks = ax.xaxis._update_ticks()
            after = ax.xaxis._get_ticklabel_bboxes(ticks, renderer)
            ax.plot([0, 500], [0, 1])  # the view autoscales when next read
            ax.set_autoscalex_on(True)
            grown = [t.label1.get_text() for t in ax.xaxis._update_ticks()]
        return [[round(b.width, 3) for b in side[0]] for side in (before, after)], grown

    def chart():
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(range(10), range(10))
        return fig, ax

    kept = widths(*chart(), scoped=True)
    assert kept == widths(*chart(), scoped=False)
    assert kept[0][0] != kept[0][1] and kept[1][-1] == "500"
