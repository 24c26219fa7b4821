"""Named analysis queries over the marts (dbt's "analyses"): one SQL file per question.

Notebooks run them with `frame(con, name)` and show them with `show_sql(name)`, so the SQL a
reader sees is the SQL that produced the figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace

import duckdb
import pandas as pd

from greenery import config, db

# Table macros: rules several analyses share, each written once in the SQL file of its name
# (the file holds the macro's query; its arguments are named here).
MACROS = {"account_flags": ("max_sessions_per_hour", "max_sessions_per_account")}


@cache
def sql(name: str) -> str:
    return (config.ANALYSES_DIR / f"{name}.sql").read_text()


def macros_called(text: str) -> list[str]:
    """The table macros (MACROS) a query calls (its comments left aside)."""
    code = re.sub(r"--[^\n]*", "", text)
    return [name for name in MACROS if re.search(rf"\b{name}\(", code)]


def _define_macros(con: duckdb.DuckDBPyConnection, text: str) -> None:
    """Define on `con` the macros `text` calls (temporary: a read-only warehouse accepts them)."""
    for name in macros_called(text):
        db.run(con, f"create or replace temp macro {name}({', '.join(MACROS[name])}) as table {sql(name)}")


def frame(con: duckdb.DuckDBPyConnection, name: str, params: db.Params = None) -> pd.DataFrame:
    _define_macros(con, sql(name))
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


_NOQA = re.compile(r"[ \t]*--[ \t]*noqa\b[^\n]*")


def sql_for_readers(sql: str) -> str:
    """SQL as readers see it: linters' `-- noqa` comments dropped (they speak to sqlfluff, not to people)."""
    return _NOQA.sub("", sql)
