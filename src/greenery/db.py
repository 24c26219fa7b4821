"""Thin helpers over DuckDB connections.

DuckDB 2.0 keeps a statement's result open until it is read to the end, so every helper here
reads results completely; values always travel as query parameters.

`duckdb` here is DuckDB's engine, the C extension `_duckdb` that the `duckdb` package re-exports
(connections, statements, errors: everything the warehouse code uses, the very same objects). The
package adds a relation and expression API written in Python, and its import (~70 ms of CPU, with
importlib.metadata for its own version) was a sixth of `greenery build` on the real export. The
warehouse modules take `duckdb` from here; the chapters, which use that API, import the package.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _duckdb as duckdb  # the engine: see the module's doc

from greenery import config

if TYPE_CHECKING:  # pandas is imported by the chapters, not by `greenery build`, which never needs it
    import pandas as pd

Params = Mapping[str, Any] | None

# Rows per row group in the files `greenery build` writes (the warehouse being built and the history, each
# attached with it: `attach ... (row_group_size ...)`; DuckDB's default is 122,880). DuckDB writes a table's
# full row groups into the file as the statement inserting them runs, on every core, compressed; what is
# left (a table smaller than a row group, the last part of a larger one) is copied into the log at the commit
# and compressed by the next checkpoint, on one thread. At sample scale 100 most tables are smaller than the
# default (orders 36,005 rows, sessions 59,237): the models' commit wrote them all into the log (0.09 s), the
# warehouse's checkpoint beside the data tests compressed them (0.38 CPU s, which the history's last statements
# waited for) and closing the history checkpointed its orders and events (0.16 s, the build's last step).
# With 32,768: 0.02, 0.06 and 0.03 s (docs/engines-and-scale.md). A file written with another size (an older
# history) reads and grows as before.
ROW_GROUP_ROWS = 32_768


def connect(path: Path | str = ":memory:", read_only: bool = False,
            threads: int | None = None) -> duckdb.DuckDBPyConnection:
    # Threads, memory limit and where to spill: chosen in config.py, not DuckDB's defaults. `threads`
    # overrides the settings' (a build of a small export: config.build_threads).
    settings = config.duckdb_settings()
    con = duckdb.connect(str(path), read_only=read_only,
                         config=settings if threads is None else {**settings, "threads": threads})
    # Timestamps are stored as UTC; pin the session zone so date parts never shift.
    con.execute("set timezone = 'UTC'").fetchall()
    return con


def connect_beside(threads: int | None = None) -> Future[duckdb.DuckDBPyConnection]:
    """An in-memory connection (connect(threads=threads)) being opened on a thread of its own. A DuckDB
    instance costs ~20 ms of CPU (its catalog of built-in functions), with Python's lock left meanwhile:
    `greenery build` begins one before its imports and checks, and attaches the file it builds to it
    (greenery.warehouse.build). The caller takes the connection (`result`) and closes it, or closes it
    through close_when_open."""
    opened: Future[duckdb.DuckDBPyConnection] = Future()

    def open_it() -> None:
        try:
            opened.set_result(connect(threads=threads))
        except BaseException as error:  # a setting DuckDB refuses: raised where the connection is taken
            opened.set_exception(error)

    threading.Thread(target=open_it, name="greenery-connect", daemon=True).start()
    return opened


# The longest a connection being opened (connect_beside) is waited for: an instance takes milliseconds.
OPEN_DEADLINE_S = 60.0


def close_when_open(opening: Future[duckdb.DuckDBPyConnection] | None) -> None:
    """Close the connection `opening` opens (waited for OPEN_DEADLINE_S at most), if it opened one."""
    if opening is None:
        return
    with contextlib.suppress(Exception):
        opening.result(timeout=OPEN_DEADLINE_S).close()


def _used(sql: str, params: Params) -> dict:
    """The parameters `sql` refers to: DuckDB refuses any it does not use, and callers often share one dict."""
    return {name: value for name, value in (params or {}).items() if _mentions(sql, name)}


def _mentions(sql: str, name: str) -> bool:
    r"""Whether `sql` holds `$name` not followed by a letter, digit or underscore (regex `\$name\b`, without
    compiling one pattern per parameter name: the data tests' batch alone names a hundred)."""
    token = "$" + name
    at = sql.find(token)
    while at >= 0:
        end = at + len(token)
        if end == len(sql) or not (sql[end].isalnum() or sql[end] == "_"):
            return True
        at = sql.find(token, end)
    return False


def run(con: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> None:
    con.execute(sql, _used(sql, params)).fetchall()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> list[tuple]:
    return con.execute(sql, _used(sql, params)).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> Any:
    result = rows(con, sql, params)
    return result[0][0] if result else None


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, types: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Insert `rows` into `table`, whose columns in order are of DuckDB `types`, in one statement and in
    order: each column travels as one list parameter. `executemany` runs a statement per row (~0.5 ms each:
    12 ms for a build's 25 model runs; one per row's own commit outside a transaction)."""
    if not rows:
        return
    columns = {f"c{i}": [row[i] for row in rows] for i in range(len(types))}
    selected = ", ".join(f"unnest($c{i}::{kind}[])" for i, kind in enumerate(types))
    run(con, f"insert into {table} select {selected}", columns)


def first_row(con: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> dict[str, Any] | None:
    """The first row of a result by column name (no pandas: `greenery build` never imports it)."""
    cursor = con.execute(sql, _used(sql, params))
    row = cursor.fetchone()
    return None if row is None else dict(zip((d[0] for d in cursor.description), row, strict=True))


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Params = None) -> pd.DataFrame:
    """A small, already-aggregated result as a DataFrame."""
    return con.execute(sql, _used(sql, params)).df()
