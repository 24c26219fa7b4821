"""Named analysis queries over the marts (dbt's "analyses"): one SQL file per question.

Notebooks run them with `frame(con, name)` and show them with `show_sql(name)`, so the SQL a
reader sees is the SQL that produced the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace

import duckdb
import pandas as pd

from greenery import config, db


@cache
def sql(name: str) -> str:
    return (config.ANALYSES_DIR / f"{name}.sql").read_text()


def frame(con: duckdb.DuckDBPyConnection, name: str, params: db.Params = None) -> pd.DataFrame:
    return db.frame(con, sql(name), params)


def record(con: duckdb.DuckDBPyConnection, name: str, params: db.Params = None) -> SimpleNamespace:
    """The one row of a single-row analysis, each value keeping its column's type."""
    rows = frame(con, name, params).to_dict("records")
    return SimpleNamespace(**rows[0])


def model_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows of every model in build order. The build does not count views (counting computes them),
    so they are counted here; the names come from the build's own list of models, never from data."""
    runs = frame(con, "model_runs")
    return {model: int(count) if pd.notna(count) else int(db.scalar(con, f'select count(*) from "{model}"'))
            for model, count in zip(runs["model"], runs["row_count"], strict=True)}


@dataclass(frozen=True)
class RepeatRate:
    users: int
    buyers: int
    repeat_buyers: int
    rate: float


def repeat_rate(con: duckdb.DuckDBPyConnection) -> RepeatRate:
    users, buyers, repeat_buyers, rate = db.rows(con, sql("repeat_rate"))[0]
    return RepeatRate(users, buyers, repeat_buyers, float(rate))
