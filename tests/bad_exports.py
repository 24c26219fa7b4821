"""A corpus of bad exports, made from the generated sample by code (never committed as data).

Each case damages a copy of a good export the way a late, partial, hand-edited or changed
upstream export would, and states what `greenery` must do about it:

- exit 2 (unusable input) with one line naming the file, the line and the column;
- exit 1 (an error-level data test failed) naming the test, with nothing published;
- exit 0 with a warning, when the figures stay right and the problem only needs a look.

The "Bad input" table of docs/operating.md lists the same cases; tests/test_bad_exports.py checks both.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

LAST_LINE = -1  # a case's expected line: the last line of the file, whatever its number
UNKNOWN_ID = "00000000-0000-4000-8000-00000000dead"  # a well-formed id that no row of the sample has


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Path], None]
    exit_code: int
    says: str  # in the message: the failing data test (1), the warning (0) or the reason (2)
    file: str | None = None  # exit 2: the file named
    line: int | None = None  # exit 2: the line named; None when the file as a whole is at fault
    column: str | None = None  # exit 2: the column named
    env: dict[str, str] = field(default_factory=dict)  # settings the run is given (a lowered limit)


# --------------------------------------------------------------------------- editing a CSV file as delivered

@dataclass
class CsvFile:
    """A raw file's lines, keeping its line ending and whether it ends with one."""

    path: Path
    lines: list[str]
    eol: str
    final_newline: bool

    @classmethod
    def read(cls, path: Path) -> CsvFile:
        text = path.read_bytes().decode("utf-8")
        eol = "\r\n" if "\r\n" in text else "\n"
        final = text.endswith(eol)
        lines = text.split(eol)
        return cls(path, lines[:-1] if final else lines, eol, final)

    def write(self) -> None:
        self.path.write_bytes((self.eol.join(self.lines) + (self.eol if self.final_newline else "")).encode())

    @property
    def header(self) -> list[str]:
        return self.lines[0].split(",")

    def row(self, line: int) -> dict[str, str]:
        return dict(zip(self.header, next(csv.reader([self.lines[line - 1]])), strict=True))

    def set_row(self, line: int, row: dict[str, str]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([row[name] for name in self.header])
        self.lines[line - 1] = buffer.getvalue().removesuffix("\n")  # a value may hold a newline: quoted

    def first_line(self, where: Callable[[dict[str, str]], bool]) -> int:
        return next(n for n in range(2, len(self.lines) + 1) if where(self.row(n)))


def set_value(file: str, line: int, column: str, value: str) -> Callable[[Path], None]:
    def damage(export: Path) -> None:
        data = CsvFile.read(export / file)
        row = data.row(line)
        row[column] = value
        data.set_row(line, row)
        data.write()

    return damage


def replace_bytes(file: str, old: bytes, new: bytes) -> Callable[[Path], None]:
    def damage(export: Path) -> None:
        content = (export / file).read_bytes()
        assert old in content, f"{old!r} is not in {file}"
        (export / file).write_bytes(content.replace(old, new, 1))

    return damage


def edit_header(file: str, edit: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    """Change the header and every row alike (drop, rename, add or reorder columns)."""
    def damage(export: Path) -> None:
        data = CsvFile.read(export / file)
        rows = [data.row(n) for n in range(2, len(data.lines) + 1)]
        header = edit(list(data.header))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header, lineterminator=data.eol, extrasaction="ignore",
                                restval="")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
        (export / file).write_bytes((text if data.final_newline else text[: -len(data.eol)]).encode())

    return damage


# --------------------------------------------------------------------------- the damages

def remove_file(export: Path) -> None:
    (export / "promos.csv").unlink()


def header_only(export: Path) -> None:
    data = CsvFile.read(export / "orders.csv")
    data.lines = data.lines[:1]
    data.write()


def empty_file(export: Path) -> None:
    (export / "users.csv").write_bytes(b"")


def truncate_last_line(export: Path) -> None:
    """Cut the last event after its fourth value, as a transfer that stopped mid-line would."""
    data = CsvFile.read(export / "events.csv")
    data.lines[-1] = ",".join(data.lines[-1].split(",")[:4])
    data.final_newline = False
    data.write()


def _shift_to_offset(stamp: str) -> str:
    """The same instant written in +02:00 instead of Z."""
    instant = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(hours=2)
    return instant.strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"


def offset_timestamps(export: Path) -> None:
    data = CsvFile.read(export / "orders.csv")
    for line in range(2, len(data.lines) + 1):
        row = data.row(line)
        row["created_at"] = _shift_to_offset(row["created_at"])
        data.set_row(line, row)
    data.write()


def zoneless_timestamp(export: Path) -> None:
    data = CsvFile.read(export / "orders.csv")
    row = data.row(5)
    row["created_at"] = row["created_at"].removesuffix("Z")
    data.set_row(5, row)
    data.write()


def byte_order_mark(export: Path) -> None:
    path = export / "users.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def quoted_commas_and_newlines(export: Path) -> None:
    set_value("addresses.csv", 2, "address", "12 Fern Street, Apt 4\nBuilding B")(export)
    set_value("products.csv", 3, "name", 'Pothos, "Golden"')(export)


def quoted_newline_then_bad_price(export: Path) -> None:
    """A value spanning two lines moves every later row down a line: the bad price, on the fifth row
    (line 5 of the good file), is on line 6 once the name above it spans two lines."""
    set_value("products.csv", 5, "price", "n/a")(export)
    set_value("products.csv", 2, "name", "Monstera\ndeliciosa")(export)


def duplicate_order(export: Path) -> None:
    data = CsvFile.read(export / "orders.csv")
    data.lines.append(data.lines[1])
    data.write()


def _first_delivered(data: CsvFile) -> int:
    return data.first_line(lambda row: row["status"] == "delivered")


def delivered_before_created(export: Path) -> None:
    data = CsvFile.read(export / "orders.csv")
    line = _first_delivered(data)
    row = data.row(line)
    created = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
    row["delivered_at"] = (created - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    data.set_row(line, row)
    data.write()


def zip_lost_leading_zero(export: Path) -> None:
    set_value("addresses.csv", 2, "zipcode", "2139")(export)


def promos_as_fifo(export: Path) -> None:
    """A named pipe where a file should be: reading it would block for ever."""
    (export / "promos.csv").unlink()
    os.mkfifo(export / "promos.csv")


def cr_only_line_endings(export: Path) -> None:
    data = CsvFile.read(export / "products.csv")
    data.eol = "\r"
    data.write()


def lf_line_in_crlf_file(export: Path) -> None:
    """users.csv ends its lines with CRLF (as delivered); a hand edit ended line 3 with a line feed alone."""
    path = export / "users.csv"
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join(lines[:3]) + b"\n" + b"\r\n".join(lines[3:]))


def phone_number_in_timestamp(export: Path) -> None:
    """A hand edit that pasted the phone number into created_at: the message must not repeat it."""
    data = CsvFile.read(export / "users.csv")
    row = data.row(2)
    row["created_at"] = row["phone_number"]
    data.set_row(2, row)
    data.write()


RECORD_LIMIT = 4096  # the loader's record limit in the case below, lowered so the test need not write 100 MB


def record_longer_than_limit(export: Path) -> None:
    """A page_url longer than the reader's limit on line 2: DuckDB's reader would drop the record
    without a word once it outgrows its buffer (seen with 100 MB at the real limit)."""
    set_value("events.csv", 2, "page_url", "https://greenery.com/product/" + "x" * (2 * RECORD_LIMIT))(export)


def switch_to_crlf(export: Path) -> None:
    data = CsvFile.read(export / "orders.csv")
    data.eol = "\r\n"
    data.write()


CASES: list[Case] = [
    # The export is unusable: exit 2, one line naming file, line and column.
    Case("missing_file", remove_file, 2, "the file is missing", "promos.csv"),
    Case("missing_column", edit_header("orders.csv", lambda h: [c for c in h if c != "order_total"]), 2,
         "expected column is missing", "orders.csv", 1, "order_total"),
    Case("renamed_column", edit_header("orders.csv", lambda h: ["carrier" if c == "shipping_service" else c
                                                                 for c in h]), 2,
         "expected column is missing", "orders.csv", 1, "shipping_service"),
    Case("empty_file", empty_file, 2, "the file is empty", "users.csv", 1),
    Case("truncated_last_line", truncate_last_line, 2, "fewer values than the header", "events.csv", LAST_LINE,
         "created_at"),
    Case("text_in_price", set_value("products.csv", 4, "price", "twelve"), 2, "cannot read 'twelve'",
         "products.csv", 4, "price"),
    Case("impossible_timestamp", set_value("orders.csv", 5, "created_at", "2021-02-30T10:00:00Z"), 2,
         "cannot read '2021-02-30T10:00:00Z' as a timestamp", "orders.csv", 5, "created_at"),
    Case("timestamp_without_zone", zoneless_timestamp, 2, "has no time zone", "orders.csv", 5, "created_at"),
    Case("offset_out_of_range", set_value("orders.csv", 5, "created_at", "2021-02-11T10:00:00+02:99"), 2,
         "has an offset no time zone has", "orders.csv", 5, "created_at"),
    Case("non_utf8_bytes", replace_bytes("products.csv", b"Pothos", b"Poth\xf3s"), 2, "not valid UTF-8",
         "products.csv", 3, "name"),
    Case("quoted_newline_then_bad_price", quoted_newline_then_bad_price, 2, "cannot read 'n/a'",
         "products.csv", 6, "price"),
    Case("unterminated_quote", replace_bytes("products.csv", b",Pothos,", b',"Pothos,'), 2,
         "unterminated quote", "products.csv", 3, "name"),
    Case("too_many_values", replace_bytes("promos.csv", b"active\r\n", b"active,oops\r\n"), 2,
         "more values than the header", "promos.csv", 2, "status"),
    Case("file_is_a_fifo", promos_as_fifo, 2, "is a FIFO, not a regular file", "promos.csv"),
    Case("cr_only_line_endings", cr_only_line_endings, 2, "carriage return alone", "products.csv", 1),
    Case("lf_line_in_crlf_file", lf_line_in_crlf_file, 2, "this line ends with a line feed alone", "users.csv", 3),
    Case("id_not_a_uuid", set_value("orders.csv", 3, "user_id", "no-such-user"), 2,
         "cannot read 'no-such-user' as an id", "orders.csv", 3, "user_id"),
    Case("record_longer_than_limit", record_longer_than_limit, 2, "longer than the loader reads",
         "events.csv", 2, env={"GREENERY_MAX_RECORD_BYTES": str(RECORD_LIMIT)}),
    Case("fraction_in_integer", set_value("products.csv", 3, "inventory", "56.6"), 2,
         "cannot read '56.6' as INTEGER: a whole number is expected", "products.csv", 3, "inventory"),
    Case("too_many_decimals", set_value("products.csv", 4, "price", "30.504"), 2,
         "cannot read '30.504' as DECIMAL(12,2): at most 2 decimals", "products.csv", 4, "price"),
    Case("exponent_notation", set_value("products.csv", 5, "inventory", "4e1"), 2,
         "cannot read '4e1' as INTEGER: exponent notation", "products.csv", 5, "inventory"),
    Case("personal_value_in_wrong_column", phone_number_in_timestamp, 2, "not shown: the file holds personal data",
         "users.csv", 2, "created_at"),
    # The export reads, but breaks an assumption the figures rest on: exit 1, nothing published.
    Case("header_only_file", header_only, 1, "assert_raw_tables_not_empty"),
    Case("duplicate_primary_key", duplicate_order, 1, "unique_stg_orders_order_id"),
    Case("order_for_unknown_user", set_value("orders.csv", 3, "user_id", UNKNOWN_ID), 1,
         "relationships_stg_orders_user_id__stg_users"),
    Case("item_for_unknown_product", set_value("order_items.csv", 3, "product_id", UNKNOWN_ID), 1,
         "relationships_stg_order_items_product_id__stg_products"),
    Case("negative_price", set_value("products.csv", 4, "price", "-12.5"), 1, "assert_amounts_not_negative"),
    Case("negative_quantity", set_value("order_items.csv", 3, "quantity", "-2"), 1, "assert_amounts_not_negative"),
    Case("delivered_before_created", delivered_before_created, 1, "assert_delivered_not_before_created"),
    Case("event_in_year_one", set_value("events.csv", 2, "created_at", "0001-01-01T00:00:00Z"), 1,
         "assert_timestamps_plausible"),
    Case("order_in_1900", set_value("orders.csv", 3, "created_at", "1900-02-10T10:00:00Z"), 1,
         "assert_timestamps_plausible"),
    # Figures stay right: exit 0, the book is published and the warning is listed.
    Case("extra_column", edit_header("products.csv", lambda h: [*h, "gift_note"]), 0,
         "ignored column(s) not in the contract: gift_note"),
    Case("columns_in_another_order", edit_header("products.csv", lambda h: list(reversed(h))), 0, "0 failed"),
    Case("timestamps_with_offset", offset_timestamps, 0, "carry a UTC offset instead of Z; converted to UTC"),
    Case("byte_order_mark", byte_order_mark, 0, "0 failed"),
    Case("quoted_commas_and_newlines", quoted_commas_and_newlines, 0, "0 failed"),
    Case("crlf_instead_of_lf", switch_to_crlf, 0, "0 failed"),
    Case("zip_lost_leading_zero", zip_lost_leading_zero, 0, "WARN assert_zipcode_five_digits"),
]


def make(case: Case, good_export: Path, folder: Path) -> Path:
    """A damaged copy of `good_export` for `case`."""
    export = folder / case.name
    shutil.copytree(good_export, export)
    case.damage(export)
    return export
