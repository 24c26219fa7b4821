"""A model's DuckDB SQL as Spark SQL, with sqlglot, at build time (no second copy of any model).

sqlglot translates what it knows (`count(*) filter (where ...)`, `::varchar`, `strftime`,
`date_diff`, `list_contains`, `$name` parameters) and raises on what it cannot express. Some
constructs translate without error yet would mean something else on Spark, or are not
deterministic on either engine; they are refused here by name so that a model using them fails
`tests/test_transpile.py` instead of giving different figures on the two engines:

- a function sqlglot does not know (passed through verbatim, so Spark may lack it or differ);
- `dayname` (Spark 4's returns 'Mon', DuckDB's 'Monday': write `strftime(ts, '%A')`);
- `regexp_full_match` (not in Spark: write `regexp_matches(s, '^...$')`);
- `any_value`/`arbitrary`/`first` (each engine picks another row: write `min`);
- `pivot`/`unpivot` (different syntax and semantics: write a `union all`).

Raw tables are read as `raw.<table>` in DuckDB; Spark has no such schema in a session of its own,
so `raw.<table>` becomes the temporary view `raw_<table>`.
"""

from __future__ import annotations

from functools import cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

READ, WRITE = "duckdb", "spark"
REFUSED_FUNCTIONS = {
    "dayname": "Spark's dayname returns 'Mon', DuckDB's 'Monday': use strftime(ts, '%A')",
    "regexp_full_match": "Spark has no regexp_full_match: use regexp_matches(s, '^...$')",
    "any_value": "each engine picks a different row: use min() or max()",
    "arbitrary": "each engine picks a different row: use min() or max()",
    "first": "each engine picks a different row: use min() or max()",
}


class TranspileError(Exception):
    """A model's SQL cannot be run on Spark as written: rewrite it in a form both engines run."""


def raw_view(table: str) -> str:
    """The Spark temporary view that holds the raw table DuckDB calls raw.<table>."""
    return f"raw_{table}"


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _refuse(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Pivot):
            raise TranspileError("pivot/unpivot differ between engines: write a union all")
        if isinstance(node, exp.AnyValue | exp.First):
            raise TranspileError(f"{node.sql(READ)}: {REFUSED_FUNCTIONS['any_value']}")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name in REFUSED_FUNCTIONS:
                raise TranspileError(f"{name}(): {REFUSED_FUNCTIONS[name]}")
            if isinstance(node, exp.Anonymous):
                raise TranspileError(f"{name}(): sqlglot does not know this DuckDB function, so it cannot "
                                     "vouch for its meaning on Spark")


def _rename_raw(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Table) and node.db == "raw":
        return exp.to_table(raw_view(node.name))
    return node


@cache
def to_spark(sql: str) -> str:
    """The Spark SQL of one DuckDB query; TranspileError when it cannot be run there as written."""
    try:
        trees = sqlglot.parse(sql, read=READ)
        if len([t for t in trees if t is not None]) != 1:
            raise TranspileError("expected exactly one statement")
        tree = trees[0]
        _refuse(tree)
        spark_sql = tree.transform(_rename_raw).sql(WRITE, unsupported_level=ErrorLevel.RAISE)
        sqlglot.parse_one(spark_sql, read=WRITE)  # what we hand to Spark must at least parse as Spark SQL
    except SqlglotError as error:
        raise TranspileError(str(error).splitlines()[0]) from None
    return spark_sql


def tables_read(sql: str, dialect: str = WRITE) -> frozenset[str]:
    """Every table name a query mentions, lowercased (a common table expression's too: a caller that
    waits for the models among them then waits at worst for one more than it needs)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError as error:
        raise TranspileError(str(error).splitlines()[0]) from None
    return frozenset(table.name.lower() for table in tree.find_all(exp.Table) if table.name)
