"""Run the data tests against a built warehouse and record their results.

A test's SQL returns the failing rows, the first column naming each one. A result is `pass`
(no rows), `warn` (rows, severity warn) or `fail` (rows, severity error). Results are written
to JSON beside the warehouse and to the warehouse's `data_test_results` table, which the
data-quality chapter reads.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from greenery import db
from greenery.db import duckdb
from greenery.outputs import atomic
from greenery.warehouse.manifest import DataTest

MAX_FAILING_KEYS = 5


@dataclass(frozen=True)
class TestResult:
    name: str
    kind: str
    model: str
    column: str | None
    severity: str
    rationale: str
    status: str  # pass, warn or fail
    failing_rows: int
    failing_keys: list[str]


def _outcome(test: DataTest, count: int, keys: list) -> TestResult:
    status = "pass" if count == 0 else ("fail" if test.severity == "error" else "warn")
    keys = ["(null)" if key is None else key for key in keys]  # a missing key is a finding too
    return TestResult(test.name, test.kind, test.model, test.column, test.severity, test.rationale,
                      status, int(count), keys)


def _summary(key: str) -> str:
    """The select list summing up failing rows whose key is `key`: their number and the first
    MAX_FAILING_KEYS keys as text, in text order, a missing key (NULL) after every other: what
    `array_slice(list(key order by key), 1, 5)` gives.

    Without sorting every failing key for the first five: `min(key, 5)` keeps the five smallest keys as it
    goes (duplicates included, NULLs left out), and the NULLs that list would have sorted last are added
    after them, as many as fit. A warning's failing rows can be most of a table (332,786 orders'
    delivery dates at sample scale 1000): sorting them all cost 0.27 CPU s a build there."""
    n = MAX_FAILING_KEYS
    least = f"coalesce(min({key}, {n}), [])"
    return (f"count(*), list_concat({least}, "
            f"list_resize([]::varchar[], least({n} - len({least}), count(*) - count({key}))))")


def _summary_sql(sql: str) -> str:
    """A test's failing rows summed up (_summary of its first column as text)."""
    return f"""
        select {_summary('#1::varchar')}
        from ({sql}
        )"""


def run_test(con: duckdb.DuckDBPyConnection, test: DataTest) -> TestResult:
    count, keys = db.rows(con, _summary_sql(test.sql), test.params)[0]
    return _outcome(test, count, keys)


def _own_parameters(index: int, test: DataTest) -> tuple[str, dict]:
    """The test's SQL and parameters with each parameter renamed `t<index>_<name>`: tests sharing a
    name (`$accepted`) with different values can then run in one statement."""
    sql = test.sql
    for name in test.params:
        sql = re.sub(rf"\${name}\b", f"$t{index}_{name}", sql)
    return sql, {f"t{index}_{name}": value for name, value in test.params.items()}


def batch_sql(tests: list[DataTest]) -> tuple[str, dict]:
    """One statement for many tests: each test's failing keys as text, tagged with its position, `union
    all`, summed up (_summary) per position. One query instead of one per test: the fixed cost of a
    statement (parse, plan, schedule, fetch) is paid once, and DuckDB schedules every test's scan in one
    plan. The summary is planned once for the batch, not once per test (on the real export, where planning
    is most of the tests' time, 63 summaries cost more to plan than to run). A test without failing rows
    has no row in the result."""
    parts, params = [], {}
    for index, test in enumerate(tests):
        sql, own = _own_parameters(index, test)
        parts.append(f"select {index} as test_index, #1::varchar as failing_key from ({sql}\n)")
        params.update(own)
    return (f"select test_index, {_summary('failing_key')}\nfrom (\n" + "\nunion all\n".join(parts)
            + "\n)\ngroup by test_index"), params


def run_batch(con: duckdb.DuckDBPyConnection, tests: list[DataTest]) -> list[TestResult]:
    """Several tests in one statement (batch_sql), results in the order of `tests`; a test the result
    has no row for failed on no row."""
    if not tests:
        return []
    sql, params = batch_sql(tests)
    found = {index: (count, keys) for index, count, keys in db.rows(con, sql, params)}
    return [_outcome(test, *found.get(index, (0, []))) for index, test in enumerate(tests)]


def run_tests(cursors: list[duckdb.DuckDBPyConnection], tests: list[DataTest]) -> list[TestResult]:
    """Every test, in declaration order, in one statement per cursor (run_batch; `con.cursor()`, each a
    connection of its own): the tests only read, so with two cursors two batches run side by side,
    the tests dealt to them in turn so that the large scans are shared out."""
    ways = max(1, min(len(cursors), len(tests)))
    if ways == 1:
        return run_batch(cursors[0], tests)
    results: list[TestResult | None] = [None] * len(tests)
    with ThreadPoolExecutor(max_workers=ways) as pool:
        for start, done in enumerate(pool.map(run_batch, cursors[:ways], [tests[s::ways] for s in range(ways)])):
            results[start::ways] = done
    return results


def summarize(results: list[TestResult]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {status: counts.get(status, 0) for status in ("pass", "warn", "fail")}


def store_results(con: duckdb.DuckDBPyConnection, results: list[TestResult]) -> None:
    """The results as the warehouse's `data_test_results` table, in one statement."""
    columns = {"name": "varchar", "kind": "varchar", "model": "varchar", "column_name": "varchar",
               "severity": "varchar", "rationale": "varchar", "status": "varchar", "failing_rows": "bigint",
               "failing_keys": "varchar[]"}
    values = {name: [getattr(r, "column" if name == "column_name" else name) for r in results] for name in columns}
    selected = ", ".join(f"unnest(${name}::{kind}[]) as {name}" for name, kind in columns.items())
    db.run(con, f"create or replace table data_test_results as select {selected}", values)


def write_json(path: Path, results: list[TestResult], build_info: dict) -> None:
    payload = {
        "build": build_info,
        "summary": summarize(results),
        "results": [asdict(r) for r in results],
    }
    # through a new file of our own: a link or FIFO at a fixed temporary name is never written through
    atomic.write_text(path, json.dumps(payload, indent=2, default=str) + "\n")
