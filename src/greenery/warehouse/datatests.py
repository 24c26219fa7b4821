"""Run the data tests against a built warehouse and record their results.

A test's SQL returns the failing rows, the first column naming each one. A result is `pass`
(no rows), `warn` (rows, severity warn) or `fail` (rows, severity error). Results are written
to JSON beside the warehouse and to the warehouse's `data_test_results` table, which the
data-quality chapter reads.
"""

from __future__ import annotations

import json
import queue
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from greenery import db
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


def run_test(con: duckdb.DuckDBPyConnection, test: DataTest) -> TestResult:
    count, keys = db.rows(
        con,
        f"""
        select count(*), coalesce(array_slice(list(#1::varchar order by #1::varchar), 1, {MAX_FAILING_KEYS}), [])
        from ({test.sql})
        """,
        test.params,
    )[0]
    status = "pass" if count == 0 else ("fail" if test.severity == "error" else "warn")
    keys = ["(null)" if key is None else key for key in keys]  # a missing key is a finding too
    return TestResult(test.name, test.kind, test.model, test.column, test.severity, test.rationale,
                      status, int(count), keys)


def run_tests(cursors: list[duckdb.DuckDBPyConnection], tests: list[DataTest]) -> list[TestResult]:
    """Every test, in declaration order. Tests only read, so they run side by side, one per cursor
    (`con.cursor()`, each a connection of its own: most tests are small queries whose time is spent
    waiting, not computing)."""
    free: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
    for cursor in cursors:
        free.put(cursor)

    def run(test: DataTest) -> TestResult:
        cursor = free.get()
        try:
            return run_test(cursor, test)
        finally:
            free.put(cursor)

    with ThreadPoolExecutor(max_workers=len(cursors)) as pool:
        return list(pool.map(run, tests))


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
