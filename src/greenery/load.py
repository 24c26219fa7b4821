"""Load the seven raw CSV files into the warehouse's `raw` schema, exactly as the contract types them.

Checks made here, each failing with one line naming file, line and column (exit code 2):
the file exists, is not empty and is UTF-8; its header holds every contract column (extra columns
are ignored with a warning, columns in another order are read by name); every value parses as
its declared type (DuckDB reports the line of the first that does not).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from greenery import db
from greenery.contract import RAW_TABLES, TIMESTAMP_FORMAT, RawTable
from greenery.errors import InputError

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class LoadReport:
    data_dir: Path
    rows: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def read_header(path: Path) -> list[str]:
    """The header row's column names, or an InputError naming what is wrong with it."""
    with path.open("rb") as handle:
        first = handle.readline()
    if not first.strip():
        raise InputError(path, 1, None, "the file is empty: expected a header row")
    first = first.removeprefix(UTF8_BOM)
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, 1, None, f"the header is not UTF-8 (byte {exc.start + 1})") from None
    names = next(csv.reader([text.rstrip("\r\n")]))
    return [name.strip() for name in names]


def _check_header(table: RawTable, path: Path, header: list[str], report: LoadReport) -> None:
    duplicated = sorted({n for n in header if header.count(n) > 1})
    if duplicated:
        raise InputError(path, 1, duplicated[0], "the column appears more than once in the header")
    missing = [name for name in table.column_names if name not in header]
    if missing:
        raise InputError(path, 1, missing[0], "expected column is missing from the header")
    extra = [name for name in header if name not in table.column_names]
    if extra:
        report.warnings.append(f"{path}:1: ignored column(s) not in the contract: {', '.join(extra)}")


def _first_reject(con: duckdb.DuckDBPyConnection, rejects: str) -> tuple[int, str, str, str] | None:
    found = db.rows(
        con, f"select line, column_name, error_type, error_message from {rejects} order by line limit 1"
    )
    return found[0] if found else None


def _describe_reject(error_type: str, message: str, column_type: str | None) -> str:
    if error_type == "CAST":
        value = message.split('string "', 1)[-1].split('" to', 1)[0] if 'string "' in message else ""
        shown = value if len(value) <= 40 else value[:37] + "..."
        expected = "a UTC timestamp like 2021-02-11T23:30:33Z" if column_type == "TIMESTAMP" else column_type
        return f"cannot read '{shown}' as {expected}"
    if error_type == "INVALID ENCODING":
        return "the bytes are not valid UTF-8"
    if error_type == "MISSING COLUMNS":
        return "the row has fewer values than the header (truncated line?)"
    if error_type == "TOO MANY COLUMNS":
        return "the row has more values than the header"
    return f"{error_type.lower()}: {message.splitlines()[0]}"


def load_table(con: duckdb.DuckDBPyConnection, table: RawTable, data_dir: Path, report: LoadReport) -> int:
    path = data_dir / table.file_name
    if not path.is_file():
        raise InputError(path, None, None, "the file is missing from the export")
    header = read_header(path)
    _check_header(table, path, header, report)

    types = {c.name: c.type for c in table.columns}
    # Read every column the file has, in its order (the reader is positional), typed by the contract.
    columns = {name: types.get(name, "VARCHAR") for name in header}
    rejects = f"rejects_{table.name}"
    select = ", ".join(f'"{name}"' for name in table.column_names)
    db.run(
        con,
        f"""
        create or replace table raw.{table.name} as
        select {select}
        from read_csv(
            $path, header = true, auto_detect = false, columns = $columns, delim = ',',
            quote = '"', escape = '"', timestampformat = $timestamp_format, encoding = 'utf-8',
            store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{rejects}_scan'
        )
        """,
        {"path": str(path), "columns": columns, "timestamp_format": TIMESTAMP_FORMAT},
    )
    first = _first_reject(con, rejects)
    if first:
        line, column, error_type, message = first
        raise InputError(path, int(line), column, _describe_reject(error_type, message, types.get(column)))
    rows = db.scalar(con, f"select count(*) from raw.{table.name}")
    report.rows[table.name] = rows
    return rows


def load_export(con: duckdb.DuckDBPyConnection, data_dir: Path) -> LoadReport:
    """Load all seven tables into schema `raw`; raise InputError at the first unusable value."""
    report = LoadReport(data_dir=data_dir)
    db.run(con, "create schema if not exists raw")
    for table in RAW_TABLES:
        load_table(con, table, data_dir, report)
    return report
