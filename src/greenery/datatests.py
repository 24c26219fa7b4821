"""Run the data tests against a built warehouse and record their results.

A test's SQL returns the failing rows, the first column naming each one. A result is `pass`
(no rows), `warn` (rows, severity warn) or `fail` (rows, severity error). Results are written
to JSON beside the warehouse and to the warehouse's `data_test_results` table, which the
data-quality chapter reads.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from greenery import db
from greenery.manifest import DataTest

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
    return TestResult(test.name, test.kind, test.model, test.column, test.severity, test.rationale,
                      status, int(count), list(keys))


def run_tests(con: duckdb.DuckDBPyConnection, tests: list[DataTest]) -> list[TestResult]:
    return [run_test(con, test) for test in tests]


def summarize(results: list[TestResult]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {status: counts.get(status, 0) for status in ("pass", "warn", "fail")}


def store_results(con: duckdb.DuckDBPyConnection, results: list[TestResult]) -> None:
    db.run(
        con,
        """
        create or replace table data_test_results (
            name varchar, kind varchar, model varchar, column_name varchar, severity varchar,
            rationale varchar, status varchar, failing_rows bigint, failing_keys varchar[]
        )
        """,
    )
    con.executemany(
        "insert into data_test_results values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [list(asdict(r).values()) for r in results],
    )


def write_json(path: Path, results: list[TestResult], build_info: dict) -> None:
    payload = {
        "build": build_info,
        "summary": summarize(results),
        "results": [asdict(r) for r in results],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)
