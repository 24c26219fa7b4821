"""Load the seven raw CSV files into the warehouse's `raw` schema, exactly as the contract types them.

Checks made here, each failing with one line naming file, line and column (exit code 2):
the file exists, is not empty and is UTF-8; its header holds every contract column (extra columns
are ignored with a warning, columns in another order are read by name); every row has as many
values as the header; every value parses as its declared type, and a number is one its type holds
exactly (a fraction in an INTEGER column, more decimals than a DECIMAL holds or exponent notation
is refused, never rounded); no record is longer than the reader's limit (config.max_record_bytes),
and the rows loaded are all the records the file holds, counted by a pass of our own (records.py),
since DuckDB's reader can drop a record longer than its buffer without a word. The line named is
the one an editor shows, also after a quoted value that spans lines.

An export that passes every check is loaded on a fast path: each file is read, its numbers checked
and cast in the same statement, while its records are counted beside DuckDB's read. Anything that
fails there makes the whole load start again on the checking path, which checks one thing after the
other as described above: a refused export gets the very line it always got.

One deviation is repaired rather than refused: a timestamp written with a UTC offset
(`2021-02-10T11:00:00+02:00`) names its instant exactly, so it is converted to UTC with a
warning. A timestamp with no zone at all is refused: which instant it means is unknown.
"""

from __future__ import annotations

import contextlib
import csv
import re
import stat
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from greenery import config, db
from greenery.contract import RAW_TABLES, TIMESTAMP_FORMAT, RawTable, number_problem, plain_number, wanted
from greenery.db import duckdb
from greenery.errors import InputError
from greenery.warehouse.records import (
    ExportScan,
    Records,
    count_records,
    file_identity,
    mixed_line_ending,
    physical_line,
)

UTF8_BOM = b"\xef\xbb\xbf"
OFFSET_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# An offset a time zone can have: hours 00-23, minutes 00-59 (DuckDB and Python read +02:99 as +03:39)
OFFSET_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]([01]\d|2[0-3]):?[0-5]\d")
ANY_OFFSET_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:?\d{2}")
ZONELESS_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?")


@dataclass
class LoadReport:
    data_dir: Path
    rows: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    scan: ExportScan | None = field(default=None, repr=False, compare=False)  # how the files were read, if shared

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def check_export_files(data_dir: Path) -> None:
    """The folder exists and each of the seven files is a regular file, before anything opens one
    (a FIFO or a device would block or never end)."""
    if not data_dir.is_dir():
        raise InputError(data_dir, None, None, "no such folder: expected the export's seven CSV files here")
    for table in RAW_TABLES:
        path = data_dir / table.file_name
        if not path.exists():
            raise InputError(path, None, None, "the file is missing from the export")
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a device or socket"
            raise InputError(path, None, None, f"is {kind}, not a regular file: the export's files must be plain files")


HEADER_LIMIT = 1 << 20  # a header longer than 1 MiB is not a header


def read_header(path: Path) -> list[str]:
    """The header row's column names, or an InputError naming what is wrong with it."""
    with path.open("rb") as handle:
        first = handle.readline(HEADER_LIMIT)
    if not first.strip():
        raise InputError(path, 1, None, "the file is empty: expected a header row")
    if b"\r" in first.rstrip(b"\r\n"):
        raise InputError(path, 1, None, "lines end with a carriage return alone (classic Mac OS); "
                                        "save the file with LF or CRLF line endings")
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


@dataclass(frozen=True)
class Reject:
    """A value DuckDB could not read, as its rejects table records it."""

    line_start: int  # byte offset of the row's first line in the file
    column: str | None
    error_type: str
    message: str

    @property
    def value(self) -> str:
        message = self.message
        return message.split('string "', 1)[-1].split('" to', 1)[0] if 'string "' in message else ""


def _rejects(con: duckdb.DuckDBPyConnection, rejects: str) -> list[Reject]:
    found = db.rows(con, f"""
        select line_byte_position, column_name, error_type, error_message
        from {rejects} order by line_byte_position, column_idx""")
    return [Reject(int(start), column, kind, message) for start, column, kind, message in found]


def _is_offset_timestamp(reject: Reject, types: dict[str, str]) -> bool:
    if reject.error_type != "CAST" or types.get(reject.column) != "TIMESTAMP":
        return False
    if not OFFSET_TIMESTAMP.fullmatch(reject.value):
        return False
    try:
        datetime.fromisoformat(reject.value)  # a real date and time, not 2021-02-30
    except ValueError:
        return False
    return True


def shown_value(value: str, quote: bool) -> str:
    """A refused value as an error line may show it: quoted, at most 40 characters, control
    characters escaped (a line break or a terminal escape must not break the one line); or not
    at all when its file holds personal data (`quote` False). Both engines' loaders use it."""
    if not quote:
        return "a value (not shown: the file holds personal data)"
    visible = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return f"'{visible if len(visible) <= 40 else visible[:37] + '...'}'"


def _describe(reject: Reject, types: dict[str, str], header: list[str],
              quote_values: bool) -> tuple[str | None, str]:
    """The column to name and the reason, in words an analyst can act on.

    Values are quoted only from files without personal data: in a row that lost a separator, a
    phone number or an email can land in any column, so such files' values are never echoed."""
    shown = shown_value(reject.value, quote_values)
    column_type = types.get(reject.column)
    if reject.error_type == "CAST" and column_type == "TIMESTAMP":
        if ZONELESS_TIMESTAMP.fullmatch(reject.value):
            return reject.column, (f"timestamp {shown} has no time zone: expected Z (UTC) or an offset "
                                   "such as +02:00, so the instant it means is unknown")
        if ANY_OFFSET_TIMESTAMP.fullmatch(reject.value) and not OFFSET_TIMESTAMP.fullmatch(reject.value):
            return reject.column, (f"timestamp {shown} has an offset no time zone has (hours 00-23, minutes "
                                   "00-59): refused, never normalised")
        return reject.column, f"cannot read {shown} as a timestamp like 2021-02-11T23:30:33Z"
    if reject.error_type == "CAST":
        return reject.column, f"cannot read {shown} as {wanted(column_type)}"
    if reject.error_type == "INVALID ENCODING":
        return reject.column, "the bytes are not valid UTF-8"
    if reject.error_type == "MISSING COLUMNS":
        return reject.column, "the row has fewer values than the header (truncated line?)"
    if reject.error_type == "TOO MANY COLUMNS":
        return header[-1], "the row has more values than the header, after this last column"
    if reject.error_type == "UNQUOTED VALUE" or "unterminated quote" in reject.message:
        return reject.column, "a quoted value is never closed (unterminated quote)"
    return reject.column, f"the row cannot be read ({reject.error_type.lower()})"


class _Recheck(Exception):
    """The fast path met something wrong: the load starts again on the checking path (load_export)."""


# error()'s text when a number fails the fast path's check; never shown (the checking path names it)
NUMBER_REFUSED = "greenery: a number its type does not hold exactly"


def _checked_casts(table: RawTable) -> tuple[dict[str, str], dict[str, str]]:
    """The fast path's select list for a table's numbers (column -> expression) and its parameters:
    each number read as text is cast to its type when it is a plain number the type holds exactly
    (_check_numbers' test, in the same statement as the read), else the statement fails (error())."""
    casts, params = {}, {"refused": NUMBER_REFUSED}
    for index, column in enumerate(c for c in table.columns if plain_number(c.type)):
        name, type_ = column.name, column.type
        params[f"n{index}"] = plain_number(type_)
        casts[name] = (f'case when "{name}" is null then null '
                       f'when regexp_full_match("{name}", $n{index}) then coalesce(try_cast("{name}" as {type_}), '
                       f'error($refused)) else error($refused) end as "{name}"')
    return casts, params


def _read(con: duckdb.DuckDBPyConnection, table: RawTable, path: Path, columns: dict[str, str],
          rejects: str, fast: bool = False) -> int:
    """raw.<table> from the file: every column the file has, in its order (the reader is positional),
    typed as `columns` says; rows that do not parse go to the `rejects` table. The reader's line
    limit is ours, with a buffer 16 times larger (DuckDB's ratio): records longer than the limit
    are refused (count_file_records), and none can then outgrow the buffer. `fast`: numbers are
    checked and cast in the same statement (_checked_casts), and any failure is a _Recheck.
    Returns the rows read (what `create table ... as` says it inserted)."""
    casts, params = _checked_casts(table) if fast else ({}, {})
    select = ", ".join(casts.get(name, f'"{name}"') for name in table.column_names)
    try:
        return db.scalar(
            con,
            f"""
            create or replace table raw.{table.name} as
            select {select}
            from read_csv(
                $path, header = true, auto_detect = false, columns = $columns, delim = ',',
                quote = '"', escape = '"', timestampformat = $timestamp_format, encoding = 'utf-8',
                store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{rejects}_scan',
                max_line_size = $limit, buffer_size = $buffer
            )
            """,
            {"path": str(path), "columns": columns, "timestamp_format": TIMESTAMP_FORMAT,
             "limit": config.max_record_bytes(), "buffer": 16 * config.max_record_bytes(), **params},
        )
    except duckdb.Error as error:  # what the rejects table cannot hold: the file as a whole is unreadable
        if fast:
            raise _Recheck from None
        mixed = mixed_line_ending(path)  # what DuckDB cannot read, and does not say where
        if mixed:
            raise InputError(path, mixed[0], None, mixed[1]) from None
        detail = "" if table.personal else f": {str(error).splitlines()[0]}"  # the message may quote a row
        raise InputError(path, None, None, f"cannot be read as CSV{detail}") from None


def _convert_offset_timestamps(con: duckdb.DuckDBPyConnection, table: RawTable, path: Path,
                               header: list[str], types: dict[str, str], rejects: str) -> None:
    """Re-read the file with its timestamps as text and turn every `+hh:mm` offset into UTC."""
    timestamps = [name for name in table.column_names if types[name] == "TIMESTAMP"]
    _read(con, table, path, {name: "VARCHAR" if name in timestamps else _read_type(types.get(name))
                             for name in header}, rejects)
    converted = ", ".join(
        f'coalesce(try_strptime("{name}", $utc), try_strptime("{name}", $offset)::timestamp) as "{name}"'
        for name in timestamps)
    db.run(con, f"create or replace table raw.{table.name} as "
                f"select * replace ({converted}) from raw.{table.name}",
           {"utc": TIMESTAMP_FORMAT, "offset": OFFSET_TIMESTAMP_FORMAT})


def count_file_records(path: Path, scan: ExportScan | None = None) -> Records:
    """The file's records, counted by our own pass (`scan`'s when given: the fingerprint may have counted
    them as it read the file); InputError naming the first record longer than the reader's limit (DuckDB
    would drop it without a word). Both engines' loaders use it."""
    limit = config.max_record_bytes()
    records = scan.records(path) if scan is not None else count_records(path, limit)
    if records.too_long_at is not None:
        raise InputError(path, physical_line(path, records.too_long_at), None,
                         f"a record of {records.too_long_bytes:,} bytes is longer than the loader reads "
                         f"({limit:,} bytes; GREENERY_MAX_RECORD_BYTES)")
    return records


def _check_unchanged(path: Path, records: Records, before: tuple[int, ...],
                     after: tuple[int, ...] | None = None) -> None:
    """The file was not written to since it was counted, nor since its read began (`before`): else the
    count and the rows read may be of two versions of it, and the fault no record's. `after`: the file's
    identity once its read ended, taken then (else now)."""
    if not (after or file_identity(path)) == records.identity == before:
        raise InputError(path, None, None, "the file changed while it was read (is the export still being "
                                           "written?): run again once it is complete")


def _check_count(con: duckdb.DuckDBPyConnection, table: RawTable, path: Path, records: Records,
                 rows: int | None = None) -> int:
    """The rows loaded (`rows`, else counted now) are all the file's records (the header aside), or InputError."""
    if rows is None:
        rows = db.scalar(con, f"select count(*) from raw.{table.name}")
    if rows != records.count - 1:
        raise InputError(path, physical_line(path, records.longest_at), None,
                         f"the file holds {records.count - 1:,} records but {rows:,} were read; "
                         f"its longest record ({records.longest:,} bytes) starts on this line")
    return rows


def _read_type(type_: str | None) -> str:
    """The type the reader is given: numbers as text, checked and cast by _check_numbers (DuckDB's
    reader would round them); a column not in the contract as text too."""
    return "VARCHAR" if type_ is None or plain_number(type_) else type_


def _first_with(path: Path, header: list[str], bad: dict[str, set[str]]) -> tuple[int, str, str] | None:
    """The line, column and text of the first record holding one of the `bad` values (column -> texts),
    in file order (the warehouse keeps none). Only on the way to an error: a pass of Python's reader."""
    positions = {header.index(column): column for column in bad}
    csv.field_size_limit(max(csv.field_size_limit(), config.max_record_bytes()))
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        end, seen_header = 0, False
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row or not seen_header:
                seen_header = seen_header or bool(row)
                continue
            for index, column in positions.items():
                if index < len(row) and row[index] in bad[column]:
                    return start, column, row[index]
    return None


def _check_numbers(con: duckdb.DuckDBPyConnection, table: RawTable, path: Path, header: list[str]) -> None:
    """Every number (read as text) is one its column's type holds exactly; then cast to that type.
    Refused: a fraction in an INTEGER column, more decimals than a DECIMAL holds, exponent notation,
    a value out of range, anything else that is not a plain number."""
    numbers = {c.name: c.type for c in table.columns if plain_number(c.type)}
    if not numbers:
        return
    params = {f"p{i}": plain_number(type_) for i, type_ in enumerate(numbers.values())}
    bad = {name: f'"{name}" is not null and (not regexp_full_match("{name}", $p{i}) '
                 f'or try_cast("{name}" as {type_}) is null)'
           for i, (name, type_) in enumerate(numbers.items())}
    counts = db.rows(con, "select " + ", ".join(f"count(*) filter (where {where})" for where in bad.values())
                     + f" from raw.{table.name}", params)[0]
    failing = [name for name, count in zip(bad, counts, strict=True) if count]
    if failing:
        texts = {name: {text for (text,) in db.rows(
                    con, f'select distinct "{name}" from raw.{table.name} where {bad[name]} limit 1000', params)}
                 for name in failing}
        line, column, text = _first_with(path, header, texts) or (
            None, failing[0], min(texts[failing[0]]))
        shown = shown_value(text, quote=not table.personal)
        raise InputError(path, line, column,
                         f"cannot read {shown} as {wanted(numbers[column])}{number_problem(numbers[column], text)}")
    casts = ", ".join(f'cast("{name}" as {type_}) as "{name}"' for name, type_ in numbers.items())
    db.run(con, f"create or replace table raw.{table.name} as select * replace ({casts}) from raw.{table.name}")


@dataclass
class _Read:
    """A table the fast path read, its checks left to _settle: the file's path, its records and its identity
    before and after the read, and the rows read."""

    table: RawTable
    path: Path
    records: Records
    before: tuple[int, ...]
    after: tuple[int, ...]
    rows: int


def _settle(con: duckdb.DuckDBPyConnection, unsettled: list[_Read], report: LoadReport) -> None:
    """The fast path's checks of the tables read, in their order, as load_table made them table by table:
    the reader refused nothing (else _Recheck: offset timestamps to convert or a value refused, which the
    checking path handles step by step), the file did not change, the rows read are all its records. Whether
    the reader refused anything is asked of every table in one statement (a statement a table was 6 ms of
    the real export's load)."""
    if not unsettled:
        return
    rejected = db.rows(con, "select " + ", ".join(f"(select count(*) from rejects_{read.table.name})"
                                                  for read in unsettled))[0]
    for read, refused in zip(list(unsettled), rejected, strict=True):
        unsettled.remove(read)  # settled now, whatever this finds
        if refused:
            raise _Recheck
        _check_unchanged(read.path, read.records, read.before, read.after)
        report.rows[read.table.name] = _check_count(con, read.table, read.path, read.records, read.rows)


def load_table(con: duckdb.DuckDBPyConnection, table: RawTable, data_dir: Path, report: LoadReport,
               counted: Future | None = None, unsettled: list[_Read] | None = None) -> int:
    """One file into raw.<table>. `counted` (the fast path): count_file_records of the file, running
    beside the read; a failure on the way raises _Recheck, except the checks whose line the checking
    path would give the same way (a record too long, then a row count that differs when the reader
    refused nothing), which raise their InputError in the same order. On the fast path a table whose
    rows are its file's records is added to `unsettled`, its other checks made by _settle (before any
    later table's error, or once every table is read: _load_all); without `unsettled`, at once."""
    path = data_dir / table.file_name
    before = file_identity(path)  # before the read begins: _check_unchanged
    header = read_header(path)
    _check_header(table, path, header, report)
    fast = counted is not None
    records = None if fast else count_file_records(path)

    types = {c.name: c.type for c in table.columns}
    rejects = f"rejects_{table.name}"
    rows = _read(con, table, path, {name: _read_type(types.get(name)) for name in header}, rejects, fast)
    if fast:
        records = counted.result()  # a record too long: refused before the reader's rejects are looked at
        read = _Read(table, path, records, before, file_identity(path), rows)
        if unsettled is None:  # no caller to settle it after the later tables: its checks are made now
            _settle(con, [read], report)
            return rows
        unsettled.append(read)
        if rows != records.count - 1:  # refused rows, or an InputError: settled now
            _settle(con, unsettled, report)
        return rows
    found = _rejects(con, rejects)
    fatal = next((r for r in found if not _is_offset_timestamp(r, types)), None)
    if fatal:
        column, reason = _describe(fatal, types, header, quote_values=not table.personal)
        raise InputError(path, physical_line(path, fatal.line_start), column, reason)
    if found:  # every value DuckDB refused is a timestamp with an explicit UTC offset: exact, so converted
        _convert_offset_timestamps(con, table, path, header, types, rejects)
        first = found[0]
        report.warnings.append(
            f"{path}:{physical_line(path, first.line_start)}: column '{first.column}': {len(found):,} timestamp(s) "
            "carry a UTC offset instead of Z; converted to UTC")
    _check_unchanged(path, records, before)
    rows = _check_count(con, table, path, records)
    _check_numbers(con, table, path, header)
    report.rows[table.name] = rows
    return rows


def _load_all(con: duckdb.DuckDBPyConnection, data_dir: Path, fast: bool, scan: ExportScan | None = None) -> LoadReport:
    report = LoadReport(data_dir=data_dir, scan=scan)
    db.run(con, "create schema if not exists raw")
    if not fast:
        for table in RAW_TABLES:
            load_table(con, table, data_dir, report)
        return report
    # The files' own record counts, one after the other on a thread of their own, ahead of DuckDB's
    # reads (numpy and DuckDB leave Python's lock while they work): the count no longer adds to the load.
    # With a `scan`, a count the fingerprint's read made is waited for instead of read again.
    counting = ThreadPoolExecutor(max_workers=1)
    unsettled: list[_Read] = []
    try:
        counts = {table.name: counting.submit(count_file_records, data_dir / table.file_name, scan)
                  for table in RAW_TABLES}
        for table in RAW_TABLES:
            try:
                load_table(con, table, data_dir, report, counts[table.name], unsettled)
            except InputError:
                _settle(con, unsettled, report)  # an earlier table's failure comes first, as table by table
                raise
            # A _Recheck (a read DuckDB refused, its transaction aborted) goes to the checking path as it is,
            # which checks every table again from the start.
        _settle(con, unsettled, report)
    finally:
        counting.shutdown(wait=True, cancel_futures=True)
    return report


def load_export(con: duckdb.DuckDBPyConnection, data_dir: Path,
                before_commit: Callable[[], None] | None = None, scan: ExportScan | None = None) -> LoadReport:
    """Load all seven tables into schema `raw`, in one transaction of its own (committed); raise
    InputError at the first unusable value. `before_commit` runs in that transaction once every
    table is loaded (the build creates the views that read only raw tables there, in the same commit).
    `scan`: the build's reads of the export, whose record counts the fast path takes (records.ExportScan).

    The fast path first; if anything there fails, the transaction is rolled back and the checking
    path loads the export again and names the first problem, as it always has (module doc)."""
    check_export_files(data_dir)
    for fast in (True, False):
        db.run(con, "begin transaction")
        try:
            report = _load_all(con, data_dir, fast, scan)
            if before_commit is not None:
                before_commit()
        except _Recheck:
            db.run(con, "rollback")
            continue
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                db.run(con, "rollback")
            raise
        db.run(con, "commit")
        return report
    raise AssertionError("the checking path never raises _Recheck")
