"""What every chapter notebook uses: the warehouse connection, plot style, glue, SQL display, statistics.

Notebooks stay thin: a chapter states its question, runs a named analysis (greenery.analyses)
or a short aggregate query, and shows the small result as a table or chart with a takeaway.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import duckdb
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from greenery import analyses, config

GREEN, GREY, RED = "#2e7d32", "#9e9e9e", "#c62828"


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
        "figure.figsize": (7.5, 3.6),
        "figure.dpi": 100,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titleweight": "bold",
        "axes.titlesize": 12,
        "font.size": 10,
    })
    set_matplotlib_formats("svg", metadata={"Date": None}, bbox_inches="tight")
    pd.set_option("display.max_rows", 60)


def glue(name: str, value, display_it: bool = False) -> None:
    """Store a value for the book to paste into prose ({glue:text}`name`, or `chapter.ipynb::name`)."""
    from myst_nb import glue as myst_glue

    myst_glue(name, value, display=display_it)


def say(text: str) -> None:
    """Prose computed from the data (a takeaway, a caveat with figures in it)."""
    display(Markdown(text))


def show_sql(name: str) -> None:
    display(Markdown(f"```sql\n{analyses.sql(name).strip()}\n```"))


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> None:
    """A small result as an HTML table without the index."""
    styled = frame.style.hide(axis="index")
    if formats:
        styled = styled.format(formats, na_rep="–")
    display(styled)


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
               rate: str = "rate", count: str | None = None, ax=None):
    """Horizontal bars of a rate per group with 95 % interval whiskers and the group's size."""
    ax = ax or plt.subplots(figsize=(7.5, 0.45 * len(frame) + 1.2))[1]
    y = range(len(frame))
    values = frame[rate] * 100
    errors = [values - frame[f"{rate}_low"] * 100, frame[f"{rate}_high"] * 100 - values]
    ax.barh(list(y), values, color=GREEN, alpha=0.85, xerr=errors, ecolor="#333333", capsize=3)
    labels = [f"{g}  (n={n:,})" for g, n in zip(frame[label], frame[count], strict=True)] if count else frame[label]
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    if overall is not None:
        ax.axvline(overall * 100, color=RED, linestyle="--", linewidth=1, label=f"all buyers: {overall * 100:.1f} %")
        ax.legend(loc="lower right", frameon=False)
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left")
    return ax
