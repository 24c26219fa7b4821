"""What every chapter notebook uses: the warehouse connection, plot style, glue, SQL display, rate charts.

Notebooks stay thin: a chapter states its question, runs a named analysis (greenery.chapter_kit.analyses)
or a short aggregate query, and shows the small result as a table or chart with a takeaway.
"""

from __future__ import annotations

import html
import itertools
import os
import re
from pathlib import Path

import duckdb
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Markdown, display

from greenery import config
from greenery.chapter_kit import analyses, escape, figures, matplotlib_reuse, stats, tables
from greenery.chapter_kit import formats as formats_

GREEN, GREY, RED = "#2e7d32", "#9e9e9e", "#c62828"
_TABLE_IDS = itertools.count(1)
_CSV_NAMES: set[str] = set()  # the CSV file names this page offers: each one once


def open_warehouse(warehouse: str | os.PathLike | None = None,
                   data_dir: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the built warehouse (`data_dir` is only named in the hint)."""
    from greenery import db

    path = config.warehouse_path(warehouse)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no warehouse at {path}: run `greenery build` (or `greenery report`) first")
    return db.connect(path, read_only=True)


def setup() -> None:
    """Charts as SVG with fixed ids and no timestamp, so nbval compares figures as text."""
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    matplotlib.rcParams.update({
        "svg.hashsalt": "greenery",
        "figure.figsize": (6.4, 3.6),  # with 12 pt text: about 10 px on a phone, where a chart is at least 480 px wide
        "figure.dpi": 100,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
        "axes.titlesize": 13,
        "font.size": 12,
        "text.parse_math": False,  # labels come from the data: a `$` is a dollar sign, never mathtext
    })
    set_matplotlib_formats("svg", metadata={"Date": None}, bbox_inches="tight")
    _CSV_NAMES.clear()  # a page's CSV names are unique within the page
    matplotlib_reuse.share_text_metrics()
    matplotlib_reuse.share_tick_updates()
    _charts_with_alt_text()
    pd.set_option("display.max_rows", 60)


def alt_text(fig) -> str:
    """What a chart shows, in words, for readers who cannot see it.

    The chapter's own sentence stating the finding when it gave one (`alt=` of `show`, `rate_chart`),
    else its axes' titles and labels."""
    if getattr(fig, "greenery_alt", None):
        return fig.greenery_alt
    parts = []
    for ax in fig.axes:
        title = next((t for t in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if t), "")
        axes = " against ".join(label for label in (ax.get_xlabel(), ax.get_ylabel()) if label)
        parts.append(f"{title} ({axes})" if title and axes else title or axes)
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    text = "; ".join([suptitle] * bool(suptitle) + [p for p in parts if p])
    return "Chart: " + (text or "untitled")


def describe(fig, alt: str | None) -> None:
    """Give a chart its alt text: one sentence stating what it shows ("Nine in ten buyers ordered twice")."""
    if alt:  # panels of one figure may each bring a sentence: they are read in order
        said = " ".join(str(alt).split())
        before = getattr(fig, "greenery_alt", None)
        fig.greenery_alt = f"{before} {said}" if before and said not in before else said


def show(alt: str | None = None, fig=None) -> None:
    """Show the current chart (or `fig`), with `alt` as its alt text when given; `plt.show()` otherwise."""
    fig = fig or plt.gcf()
    describe(fig, alt)
    display(fig)
    plt.close(fig)


def _charts_with_alt_text() -> None:
    """Charts reach the page as HTML: one <picture> with a laptop and a phone version of the SVG and
    the alt text (greenery.chapter_kit.figures). The output's metadata says whether the chapter
    wrote the alt text; when it did not, greenery.publisher.book_stage.clean uses the cell's own
    (mystnb.image.alt) if it has one."""
    from IPython import get_ipython
    from matplotlib.figure import Figure

    shell = get_ipython()
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    formatters["image/svg+xml"].pop(Figure, None)  # the picture holds the SVGs: not stored a third time
    formatters["image/png"].pop(Figure, None)
    formatters["text/html"].for_type(Figure, lambda fig: (
        figures.picture_html(fig, alt_text(fig)),
        {"greenery": {"chart": True, "alt_from_chapter": bool(getattr(fig, "greenery_alt", None))}}))


def glue(name: str, value, display_it: bool = False) -> None:
    """Store a value for the book to paste into prose ({glue:text}`name`, or `chapter.ipynb::name`)."""
    from myst_nb import glue as myst_glue

    # glued text is prose the chapter composed (values from the data in it already passed escape.*): uncut
    myst_glue(name, escape.plain(value, None) if isinstance(value, str) else value, display=display_it)


def say(text: str) -> None:
    """Prose computed from the data (a takeaway, a caveat with figures in it).

    Values from the export must be wrapped in `escape.markdown` by the caller (a name is data, not
    markup). Dollar signs not already escaped are escaped: the book reads $...$ as mathematics."""
    display(Markdown(re.sub(r"(?<!\\)\$", r"\\$", text)))


def sql_markdown(name: str) -> str:
    """An analysis's SQL as a Markdown code block (and the rule it calls, written once, shown with it)."""
    def block(text: str) -> str:
        # Pygments' SQL lexer stops at DuckDB's $name parameters (a Sphinx warning); its MySQL lexer reads them.
        return f"```{'mysql' if '$' in text else 'sql'}\n{text}\n```"

    text = analyses.sql_for_readers(analyses.sql(name)).strip()
    shown = block(text)
    for macro in analyses.macros_called(text):
        shown += f"\n\nIt calls `{macro}`, defined in {macro}.sql:\n\n" + block(
            analyses.sql_for_readers(analyses.sql(macro)).strip())
    return shown


def show_sql(name: str, collapsed: bool = False) -> None:
    """Show an analysis's SQL; long ones folded in a dropdown the reader can open."""
    shown = sql_markdown(name)
    display(Markdown(f"::::{{dropdown}} The SQL: {name}.sql\n{shown}\n::::" if collapsed else shown))


def fold(name: str, *parts: str) -> None:
    """Markdown for the page's folded "How this was computed" section, kept for the prose to paste.

    The chapter's Markdown places it after the answer and its evidence, inside a dropdown:

        :::{dropdown} How this was computed
        ```{glue:md} NAME
        :format: myst
        ```
        :::

    Parts are Markdown (method in words, parameters, `sql_markdown(...)`, data tests, rerun commands),
    joined by blank lines. Nothing is escaped here (a `$` in a SQL block is DuckDB's parameter, not
    mathematics): values from the export, and dollar signs in prose, are escaped by the caller."""
    glue(name, Markdown("\n\n".join(parts)))


def table(frame: pd.DataFrame, formats: dict | None = None, *, caption: str | None = None,
          csv: pd.DataFrame | bool | None = None, glue_as: str | None = None,
          phone_columns: list[str] | None = None) -> None:
    """A small result as an HTML table without the index, and under a table of figures its values as CSV.
    Text is cut to escape.MAX_CELL characters (column names to escape.MAX_SHOWN), control characters
    shown as escapes.

    - `frame` is what the table shows, holding values wherever it can: counts, shares as fractions,
      Decimals, datetimes (shown in the tables' date style, "2021-02-10 14:00", unless formatted).
    - `formats` maps a column to its display format (a format string, or a function from
      greenery.chapter_kit.formats such as `fmt.pct`): applied only to what is shown, never to the CSV.
    - `caption` is shown over the table and names its CSV ("greenery-repeat-rate.csv").
    - `csv` is what the download holds: None (the default) offers the frame itself when it is a table
      of figures (tables.of_figures) whose figures are values, not text formatted in the chapter;
      False offers nothing; a DataFrame offers those values instead (shares as fractions, interval
      bounds in columns of their own, amounts without currency signs), for a table that shows text
      such as "72.3–86.1 %" made from them.
    - `phone_columns` names the columns a phone's cards keep (the row's name and its key figures): the
      others are hidden below the phone width, said in a line under the table; laptops, paper and the
      CSV keep every column. For a long table whose cards would run for screens.
    - `glue_as` keeps the table (and its CSV link) for the prose to paste instead of showing it here:
      a table of the method, inside the page's "How this was computed" dropdown, as

          ```{glue} NAME
          ```
    """
    # Numbered ids instead of pandas' random ones, so re-running a chapter gives identical HTML.
    # the index is hidden; the cells' classes (tables.for_every_screen) need it unique
    shown = frame.rename(columns=escape.plain).reset_index(drop=True)
    formats = {escape.plain(k): v for k, v in (formats or {}).items()}
    texts = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]
    cut = lambda v: escape.plain(v, escape.MAX_CELL) if isinstance(v, str) else v  # noqa: E731
    shown = shown.assign(**{c: shown[c].map(cut) for c in texts})
    key = f"t{next(_TABLE_IDS)}"
    styled = shown.style.hide(axis="index").set_uuid(key)
    styled = styled.format(escape="html").format_index(escape="html", axis=1)  # data is text, never markup
    words = [c for c in shown.columns if not tables.is_figure(shown[c])]
    if words:  # numbers, dates and figures formatted as text align right (the book's CSS), words left
        styled = styled.set_properties(subset=words, **{"text-align": "left"})
    defaults = {c: formats_.table_time for c in shown.columns if c not in formats and (
        pd.api.types.is_datetime64_any_dtype(shown[c]) or tables.all_moments(shown[c]))}
    defaults |= {c: formats_.count for c in shown.columns if c not in formats
                 and pd.api.types.is_integer_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])}
    if formats or defaults:
        styled = styled.format(defaults | formats, na_rep=formats_.DASH, escape="html")
    if caption:
        styled = styled.set_caption(html.escape(caption))
    phone = None if phone_columns is None else [escape.plain(c) for c in phone_columns]
    styled = tables.for_every_screen(styled, shown, phone)  # cards on a phone; see greenery.chapter_kit.tables
    # HTML only: a Styler's own text form holds a memory address
    parts = [tables.with_toggle(styled.to_html(), len(shown), key)]
    if phone is not None and len(phone) < len(shown.columns):
        parts[0] += tables.phone_note(len(phone), len(shown.columns))
    if csv is None:
        csv = frame if tables.of_figures(frame) and not tables.formatted_figures(frame) else False
    if csv is not False:  # text bounded as on the page: the full value stays in the warehouse
        csv = csv.assign(**{c: csv[c].map(cut) for c in csv.columns if not pd.api.types.is_numeric_dtype(csv[c])})
        parts.append(tables.csv_download(csv, caption, _CSV_NAMES))
    if glue_as:
        # in the class of a cell's output, so that the book's CSS (phone cards, print) applies to it there too
        glue(glue_as, HTML(f'<div class="cell_output">{"".join(parts)}</div>'))
    else:
        for part in parts:
            display(HTML(part))


def order_window(con: duckdb.DuckDBPyConnection) -> str:
    """How long the export's orders span, in words ("47 hours", "3.5 days"), for prose that depends on it."""
    info = analyses.record(con, "build_info")
    first, last = info.first_order_at, info.last_order_at
    if first is None:
        return "no orders"
    hours = (last - first).total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def pct(value: float | None, digits: int = 1) -> str:
    return formats_.pct(value, digits)


def with_rates(frame: pd.DataFrame, successes: str, trials: str, name: str = "rate") -> pd.DataFrame:
    """Add the rate and its 95 % interval bounds to a frame of counts."""
    frame = frame.copy()
    frame[name] = frame[successes] / frame[trials]
    bounds = [stats.wilson(int(k), int(n)) for k, n in zip(frame[successes], frame[trials], strict=True)]
    frame[f"{name}_low"] = [b[0] for b in bounds]
    frame[f"{name}_high"] = [b[1] for b in bounds]
    return frame


def rate_chart(frame: pd.DataFrame, label: str, title: str, xlabel: str, overall: float | None = None,
               rate: str = "rate", count: str | None = None, ax=None, overall_label: str = "all buyers",
               alt: str | None = None):
    """Horizontal bars of a rate per group with 95 % interval whiskers and the group's size.

    `alt`: one sentence stating what the chart shows, for readers who cannot see it."""
    ax = ax or plt.subplots(figsize=(6.4, 0.5 * len(frame) + 1.3))[1]
    describe(ax.figure, alt)
    y = range(len(frame))
    values = frame[rate] * 100
    # Wilson bounds can sit a rounding error past the rate itself: whiskers are never negative.
    errors = [(values - frame[f"{rate}_low"] * 100).clip(lower=0), (frame[f"{rate}_high"] * 100 - values).clip(lower=0)]
    ax.barh(list(y), values, color=GREEN, alpha=0.85, xerr=errors, ecolor="#333333", capsize=3)
    labels = [f"{escape.chart(g)}  (n={n:,})" for g, n in zip(frame[label], frame[count], strict=True)] if count \
        else [escape.chart(g) for g in frame[label]]
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    # the reference line is labelled where it meets the top of the chart, on a line of its own under the title
    ax.set_title(title, loc="left", pad=28 if overall is not None else 8)
    if overall is not None:
        ax.axvline(overall * 100, color=RED, linestyle="--", linewidth=1)
        ax.text(overall * 100, 1.0, f"{overall_label}: {formats_.pct(overall)}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=10, color=RED)
    return ax
