"""What every chapter notebook uses: the warehouse connection, plot style, glue, SQL display, statistics.

Notebooks stay thin: a chapter states its question, runs a named analysis (greenery.analyses)
or a short aggregate query, and shows the small result as a table or chart with a takeaway.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import duckdb
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Markdown, display

from greenery import analyses, config, tables

GREEN, GREY, RED = "#2e7d32", "#9e9e9e", "#c62828"
_TABLE_IDS = itertools.count(1)


def open_warehouse(warehouse: str | os.PathLike | None = None,
                   data_dir: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the warehouse, building it first when it does not exist yet."""
    path = config.warehouse_path(warehouse)
    if not Path(path).is_file():
        from greenery.warehouse import build, choose_data

        build(choose_data(data_dir), path)
    from greenery import db

    return db.connect(path, read_only=True)


def setup() -> None:
    """Charts as SVG with fixed ids and no timestamp, so nbval compares figures as text."""
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    matplotlib.rcParams.update({
        "svg.hashsalt": "greenery",
        "figure.figsize": (6.4, 3.6),  # with 11 pt text: still about 9 px on a 390 px phone
        "figure.dpi": 100,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
        "axes.titlesize": 12,
        "font.size": 11,
    })
    set_matplotlib_formats("svg", metadata={"Date": None}, bbox_inches="tight")
    pd.set_option("display.max_rows", 60)


def glue(name: str, value, display_it: bool = False) -> None:
    """Store a value for the book to paste into prose ({glue:text}`name`, or `chapter.ipynb::name`)."""
    from myst_nb import glue as myst_glue

    myst_glue(name, value, display=display_it)


def say(text: str) -> None:
    """Prose computed from the data (a takeaway, a caveat with figures in it).

    Dollar signs are escaped: the book reads $...$ as mathematics."""
    display(Markdown(text.replace("$", r"\$")))


def show_sql(name: str, collapsed: bool = False) -> None:
    """Show an analysis's SQL; long ones folded in a dropdown the reader can open."""
    from greenery.publishing import sql_for_readers

    block = f"```sql\n{sql_for_readers(analyses.sql(name)).strip()}\n```"
    display(Markdown(f"::::{{dropdown}} The SQL: {name}.sql\n{block}\n::::" if collapsed else block))


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> None:
    """A small result as an HTML table without the index."""
    # Numbered ids instead of pandas' random ones, so re-running a chapter gives identical HTML.
    styled = frame.style.hide(axis="index").set_uuid(f"t{next(_TABLE_IDS)}")
    words = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
             and not pd.api.types.is_datetime64_any_dtype(frame[c])]
    if words:  # numbers and dates align right (the book's CSS), words left
        styled = styled.set_properties(subset=words, **{"text-align": "left"})
    if formats:
        styled = styled.format(formats, na_rep="–")
    styled = tables.for_every_screen(styled, frame)  # cards on a phone; see greenery.tables
    display(HTML(styled.to_html()))  # HTML only: a Styler's own text form holds a memory address
    display(HTML(tables.csv_download(frame)))


def order_window(con: duckdb.DuckDBPyConnection) -> str:
    """How long the export's orders span, in words ("47 hours", "3.5 days"), for prose that depends on it."""
    first, last = con.execute("select first_order_at, last_order_at from build_info").fetchall()[0]
    if first is None:
        return "no orders"
    hours = (last - first).total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.{digits}f} %"


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (sound for small samples and rates near 0 or 1)."""
    if trials == 0:
        return (math.nan, math.nan)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (centre - half, centre + half)


def difference_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """95 % interval of p1 - p2 by Newcombe's method (hybrid of two Wilson intervals)."""
    if not n1 or not n2:
        return (math.nan, math.nan)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    return (p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def with_rates(frame: pd.DataFrame, successes: str, trials: str, name: str = "rate") -> pd.DataFrame:
    """Add the rate and its 95 % interval bounds to a frame of counts."""
    frame = frame.copy()
    frame[name] = frame[successes] / frame[trials]
    bounds = [wilson(int(k), int(n)) for k, n in zip(frame[successes], frame[trials], strict=True)]
    frame[f"{name}_low"] = [b[0] for b in bounds]
    frame[f"{name}_high"] = [b[1] for b in bounds]
    return frame


def rate_chart(frame: pd.DataFrame, label: str, title: str, xlabel: str, overall: float | None = None,
               rate: str = "rate", count: str | None = None, ax=None, overall_label: str = "all buyers"):
    """Horizontal bars of a rate per group with 95 % interval whiskers and the group's size."""
    ax = ax or plt.subplots(figsize=(6.4, 0.5 * len(frame) + 1.3))[1]
    y = range(len(frame))
    values = frame[rate] * 100
    # Wilson bounds can sit a rounding error past the rate itself: whiskers are never negative.
    errors = [(values - frame[f"{rate}_low"] * 100).clip(lower=0), (frame[f"{rate}_high"] * 100 - values).clip(lower=0)]
    ax.barh(list(y), values, color=GREEN, alpha=0.85, xerr=errors, ecolor="#333333", capsize=3)
    labels = [f"{g}  (n={n:,})" for g, n in zip(frame[label], frame[count], strict=True)] if count else frame[label]
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", pad=16)
    if overall is not None:  # the reference line is labelled where it meets the top of the chart
        ax.axvline(overall * 100, color=RED, linestyle="--", linewidth=1)
        ax.text(overall * 100, 1.01, f"{overall_label}: {overall * 100:.1f} %", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=9, color=RED)
    return ax


def compare_segments(frame: pd.DataFrame, title: str, order: list[str] | None = None,
                     overall: float | None = None) -> None:
    """Table, chart and takeaway for repeat rates across segments of one indicator.

    The takeaway names the largest gap between two segments of at least 5 buyers and its
    95 % interval; an interval that includes zero means the data cannot tell the segments apart.
    """
    frame = with_rates(frame, "repeat_buyers", "buyers")
    if order:
        frame = frame.set_index("segment").reindex([s for s in order if s in set(frame["segment"])]).reset_index()
    bounds = zip(frame["rate_low"], frame["rate_high"], strict=True)
    shown = frame.assign(interval=[f"{100 * lo:.0f}-{100 * hi:.0f} %" for lo, hi in bounds])
    table(shown[["segment", "buyers", "repeat_buyers", "rate", "interval"]].rename(columns={
        "segment": "Segment", "buyers": "Buyers", "repeat_buyers": "Repeat buyers", "rate": "Repeat rate",
        "interval": "95 % interval"}), {"Repeat rate": "{:.1%}"})
    rate_chart(frame, "segment", title, "Repeat rate (% of buyers in the segment)", overall, count="buyers")
    plt.show()
    gap = largest_gap(frame)
    if gap is None:
        say("**Takeaway:** too few buyers in all but one segment to compare.")
        return
    verdict = ("the interval excludes zero, so the gap is unlikely to be chance alone" if gap["low"] > 0
               else "the interval includes zero, so this data cannot tell the two apart")
    say(f"**Takeaway:** {gap['high_segment']} ({gap['high_rate']:.0%} of {gap['high_buyers']}) vs "
        f"{gap['low_segment']} ({gap['low_rate']:.0%} of {gap['low_buyers']}): a gap of "
        f"{100 * gap['gap']:.0f} points, 95 % interval {100 * gap['low']:.0f} to {100 * gap['high']:.0f} "
        f"points; {verdict}.")


def largest_gap(frame: pd.DataFrame, min_buyers: int = 5) -> dict | None:
    """The segments (of at least `min_buyers`) with the highest and lowest repeat rates, and the
    95 % interval of the difference between them; None when fewer than two segments qualify."""
    sized = frame[frame["buyers"] >= min_buyers]
    if len(sized) < 2:
        return None
    rates = sized["repeat_buyers"] / sized["buyers"]
    high, low = sized.loc[rates.idxmax()], sized.loc[rates.idxmin()]
    k1, n1, k2, n2 = int(high.repeat_buyers), int(high.buyers), int(low.repeat_buyers), int(low.buyers)
    lo, hi = difference_interval(k1, n1, k2, n2)
    return {"high_segment": high.segment, "high_rate": k1 / n1, "high_buyers": n1,
            "low_segment": low.segment, "low_rate": k2 / n2, "low_buyers": n2,
            "gap": k1 / n1 - k2 / n2, "low": lo, "high": hi}


def indicator_answer(indicators: pd.DataFrame, rate) -> str:
    """The indicators chapter's answer, in words, from the per-indicator segment counts."""
    gaps = {name: largest_gap(group) for name, group in indicators.groupby("indicator")}
    clear = {name: g for name, g in gaps.items() if g and g["low"] > 0}
    named = {name: name.replace("_", " ") for name in gaps}
    if clear:
        findings = "; ".join(
            f"**{named[n]}** ({g['high_segment']}: {g['high_rate']:.0%} vs {g['low_segment']}: "
            f"{g['low_rate']:.0%}, a gap of {100 * g['gap']:.0f} points, 95 % interval "
            f"{100 * g['low']:.0f} to {100 * g['high']:.0f})"
            for n, g in sorted(clear.items(), key=lambda item: -item[1]["gap"]))
        answer = f"Gaps too large to be chance alone: {findings}."
    else:
        answer = "No indicator separates repeat from one-time buyers by more than chance can explain."
    rest = ", ".join(sorted(named[n] for n in gaps if n not in clear))
    censored = ("Time left in the export is censoring, not behaviour: buyers whose first order came near "
                "its end had no time to order again, so read every other indicator with it in mind."
                if CENSORING in clear else "")
    return (f"**Answer.** Of {rate.buyers:,} buyers, {rate.repeat_buyers:,} ({rate.rate:.1%}) ordered again. "
            f"{answer} For the others ({rest}) this data cannot tell the segments apart. {censored}").strip()


CENSORING = "time_left_in_export"  # an artefact of where the export ends, not a trait of the buyer


def strongest_indicator(indicators: pd.DataFrame) -> str:
    """The buyer trait with the largest gap between segments, in words (censoring left aside)."""
    gaps = [(g["gap"], name) for name, group in indicators.groupby("indicator")
            if name != CENSORING and (g := largest_gap(group))]
    return max(gaps)[1].replace("_", " ") if gaps else "none (too few buyers per segment to compare)"
