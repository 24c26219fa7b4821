"""The raw export's contract: seven tables, their columns and DuckDB types, declared once.

The loader reads with exactly these types (no sniffing), the sample generator writes these
columns in this order, and the personal-data tests search outputs for the values of the columns
marked `pii` (the only list of them).
Timestamps are UTC instants written as ISO 8601 with a `Z`; they are stored as TIMESTAMP in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    pii: bool = False  # personal data: never shown in the book, never carried into marts


@dataclass(frozen=True)
class RawTable:
    name: str
    key: str
    columns: tuple[Column, ...]
    crlf: bool  # line ending as delivered (the sample reproduces it)
    final_newline: bool

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def personal(self) -> bool:
        """The file holds personal data: no error line ever quotes a value from it."""
        return any(c.pii for c in self.columns)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, type_: str = "VARCHAR", pii: bool = False) -> Column:
    return Column(name, type_, pii)


MONEY = "DECIMAL(12,2)"
TS = "TIMESTAMP"
# Greenery's record ids are UUIDs. Stored as such they take 16 bytes instead of 36 characters, so
# the joins, groupings and uniqueness tests over millions of events hash and compare numbers, not
# text (a build at scale 1000: 22.5 s with text ids, 15-17 s with these). Cast to text, an id is
# its canonical lowercase form; an id that is not a UUID is refused at load, naming line and column.
# Not ids in this sense: promo_id (the promo's name) and tracking_id (the carrier's number).
ID = "UUID"
ID_WANTED = "an id: a UUID such as 123e4567-e89b-12d3-a456-426614174000"


def wanted(type_: str) -> str:
    """What a value of a column typed `type_` should be, in an error line ("cannot read 'x' as ...")."""
    return ID_WANTED if type_ == ID else type_


# Numbers are read as text and checked before they are cast: both engines' casts round ('56.6' as
# INTEGER is 57, '30.504' as DECIMAL(12,2) is 30.50) and read exponents ('4e1' is 40). A value must
# be a plain number that the type holds exactly: an optional sign, digits, and for a DECIMAL at most
# its scale of decimals. The pattern is one both engines' regular expressions (RE2, Java) read alike;
# callers anchor it (DuckDB's regexp_full_match; Spark's \A...\z).
DECIMAL_TYPE = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def decimal_scale(type_: str) -> int | None:
    """The scale of a DECIMAL(p,s) type, 0 for INTEGER, None for a type that is not a number."""
    if type_ == "INTEGER":
        return 0
    match = DECIMAL_TYPE.fullmatch(type_)
    return int(match[2]) if match else None


def plain_number(type_: str) -> str | None:
    """The text a value of a numeric column must be (unanchored pattern), None for other types."""
    scale = decimal_scale(type_)
    if scale is None:
        return None
    if scale == 0:
        return r"[-+]?[0-9]+"
    return rf"[-+]?([0-9]+(\.[0-9]{{0,{scale}}})?|\.[0-9]{{1,{scale}}})"


def number_problem(type_: str, text: str) -> str:
    """Why `text` is refused for a numeric column, to follow "cannot read 'x' as TYPE" ('' when the
    text is no number at all). Both engines' loaders use it, so their messages are the same."""
    scale = decimal_scale(type_)
    if scale is None:
        return ""
    if re.fullmatch(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+", text):
        return ": exponent notation; write the plain number"
    pattern = plain_number(type_)
    if pattern and re.fullmatch(pattern, text):
        return ": out of the type's range"
    if re.fullmatch(r"[-+]?[0-9]*\.[0-9]+", text):
        if scale == 0:
            return ": a whole number is expected (a fraction is never rounded)"
        return f": at most {scale} decimals (more are never rounded)"
    return ""

RAW_TABLES: tuple[RawTable, ...] = (
    RawTable(
        "users",
        "user_id",
        (
            _c("user_id", ID),
            _c("first_name", pii=True),
            _c("last_name", pii=True),
            _c("email", pii=True),
            _c("phone_number", pii=True),
            _c("created_at", TS),
            _c("updated_at", TS),
            _c("address_id", ID),
        ),
        crlf=True,
        final_newline=False,
    ),
    RawTable(
        "addresses",
        "address_id",
        (
            _c("address_id", ID),
            _c("address", pii=True),
            _c("zipcode"),  # text: 5 digits, leading zeros kept
            _c("state"),
            _c("country"),
        ),
        crlf=False,
        final_newline=False,
    ),
    RawTable(
        "products",
        "product_id",
        (_c("product_id", ID), _c("name"), _c("price", MONEY), _c("inventory", "INTEGER")),
        crlf=False,
        final_newline=False,
    ),
    RawTable(
        "promos",
        "promo_id",
        (_c("promo_id"), _c("discount", MONEY), _c("status")),
        crlf=True,
        final_newline=False,
    ),
    RawTable(
        "orders",
        "order_id",
        (
            _c("order_id", ID),
            _c("user_id", ID),
            _c("promo_id"),  # the promo's name, empty when no promo was used
            _c("address_id", ID),
            _c("created_at", TS),
            _c("order_cost", MONEY),
            _c("shipping_cost", MONEY),
            _c("order_total", MONEY),
            _c("tracking_id"),
            _c("shipping_service"),
            _c("estimated_delivery_at", TS),
            _c("delivered_at", TS),
            _c("status"),
        ),
        crlf=False,
        final_newline=True,
    ),
    RawTable(
        "order_items",
        "order_id, product_id",
        (_c("order_id", ID), _c("product_id", ID), _c("quantity", "INTEGER")),
        crlf=True,
        final_newline=False,
    ),
    RawTable(
        "events",
        "event_id",
        (
            _c("event_id", ID),
            _c("session_id", ID),
            _c("user_id", ID),
            _c("page_url"),
            _c("created_at", TS),
            _c("event_type"),
            _c("order_id", ID),
            _c("product_id", ID),
        ),
        crlf=False,
        final_newline=True,
    ),
)

TABLES_BY_NAME = {t.name: t for t in RAW_TABLES}


def personal_values(rows: Mapping[str, Iterable[Mapping[str, str]]]) -> set[str]:
    """Every personal value in an export's rows (table name -> rows as dicts), by the `pii` flags above:
    the flagged `*_name` columns of a row joined into a full name, every other flagged value as is.
    The personal-data tests search outputs for exactly these."""
    values: set[str] = set()
    for table in RAW_TABLES:
        flagged = [c.name for c in table.columns if c.pii]
        names = [c for c in flagged if c.endswith("_name")]
        for row in rows.get(table.name, []):
            if names:
                values.add(" ".join(row[c] for c in names))
            values |= {row[c] for c in flagged if c not in names}
    return {v for v in values if v.strip()}
