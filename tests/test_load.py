"""The loader on every quirk of the real export, and on input it must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from shop import name, uid

from greenery import db
from greenery.contract import RAW_TABLES, plain_number
from greenery.errors import InputError
from greenery.warehouse.load import load_export


def load(folder: Path):
    con = db.connect()
    report = load_export(con, folder)
    return con, report


def test_line_endings_and_missing_final_newlines_as_delivered(shop_dir):
    # users/promos/order_items end lines with CRLF, the rest LF; only orders and events end with one.
    assert b"\r\n" in (shop_dir / "users.csv").read_bytes()
    assert b"\r\n" not in (shop_dir / "orders.csv").read_bytes()
    assert not (shop_dir / "users.csv").read_bytes().endswith(b"\n")
    con, report = load(shop_dir)
    assert report.rows == {"users": 4, "addresses": 4, "products": 3, "promos": 2, "orders": 6,
                           "order_items": 8, "events": 21}
    # No CR leaks into the last column of a CRLF file.
    assert db.scalar(con, "select count(*) from raw.users where address_id::varchar like '%\r%'") == 0
    assert name(db.scalar(con, "select address_id from raw.users where user_id = $u4", {"u4": uid("u4")})) == "a4"


def test_zipcode_keeps_leading_zero_as_text(shop_dir):
    con, _ = load(shop_dir)
    assert db.scalar(con, "select zipcode from raw.addresses where address_id = $a1", {"a1": uid("a1")}) == "02139"
    assert db.scalar(con, "select typeof(zipcode) from raw.addresses limit 1") == "VARCHAR"


def test_empty_strings_become_null(shop_dir):
    con, _ = load(shop_dir)
    assert db.scalar(con, "select count(*) from raw.orders where promo_id is null") == 4
    assert db.scalar(con, "select count(*) from raw.orders where promo_id = ''") == 0
    # 4 checkouts and 3 shipping notices have no product: 7 empty strings, read as null.
    assert db.scalar(con, "select count(*) from raw.events where product_id is null") == 7


def test_promo_names_are_keys(shop_dir):
    con, _ = load(shop_dir)
    joined = db.rows(con, "select o.order_id, p.discount from raw.orders o join raw.promos p using (promo_id) order by 1")
    assert [(name(o), float(d)) for o, d in joined] == [("o2", 5.0), ("o4", 2.0)]


def test_types_come_from_the_contract(shop_dir):
    con, _ = load(shop_dir)
    types = dict(db.rows(con, "select column_name, data_type from information_schema.columns "
                              "where table_schema = 'raw' and table_name = 'orders'"))
    assert types["created_at"] == "TIMESTAMP"
    assert types["order_total"] == "DECIMAL(12,2)"
    assert types["status"] == "VARCHAR"
    assert (types["order_id"], types["user_id"], types["promo_id"], types["tracking_id"]) == (
        "UUID", "UUID", "VARCHAR", "VARCHAR")  # ids are UUIDs; a promo's name and a tracking number are not
    # Z means UTC: the stored value is the instant as written.
    assert str(db.scalar(con, "select created_at from raw.orders where order_id = $o3",
                             {"o3": uid("o3")})) == "2021-02-10 23:59:59"


def test_columns_in_another_order_are_read_by_name(tmp_path):
    from shop import write_shop

    folder = write_shop(tmp_path / "x")
    lines = (folder / "products.csv").read_text().split("\n")
    swapped = [",".join(reversed(line.split(","))) for line in lines]
    (folder / "products.csv").write_text("\n".join(swapped))
    con, _ = load(folder)
    assert db.rows(con, "select name, price::varchar from raw.products where product_id = $p2",
                   {"p2": uid("p2")}) == [("Cactus", "20.50")]


def test_missing_column_names_file_and_column(shop_dir):
    text = (shop_dir / "orders.csv").read_text().replace(",shipping_service,", ",carrier,")
    (shop_dir / "orders.csv").write_text(text)
    with pytest.raises(InputError) as raised:
        load(shop_dir)
    error = raised.value
    assert (error.file.name, error.line, error.column) == ("orders.csv", 1, "shipping_service")


def test_unparseable_value_names_line_and_column(shop_dir):
    text = (shop_dir / "products.csv").read_text().replace("20.5", "twenty")
    (shop_dir / "products.csv").write_text(text)
    with pytest.raises(InputError) as raised:
        load(shop_dir)
    assert (raised.value.file.name, raised.value.line, raised.value.column) == ("products.csv", 3, "price")
    assert "twenty" in str(raised.value)


def test_missing_file(shop_dir):
    (shop_dir / "promos.csv").unlink()
    with pytest.raises(InputError, match="promos.csv: the file is missing"):
        load(shop_dir)


@pytest.mark.real_export
def test_real_export_loads_exactly_as_delivered(real_export):
    con, report = load(real_export)
    assert report.rows == {"users": 130, "addresses": 150, "products": 30, "promos": 6, "orders": 361,
                           "order_items": 862, "events": 3553}
    assert report.warnings == []
    assert db.scalar(con, "select count(*) from raw.addresses where zipcode like '0%'") > 0


def test_ids_are_uuids_in_any_form_duckdb_reads(tmp_path):
    """A UUID in capitals, in braces or without dashes is the same id: stored as 16 bytes, it joins
    with its lowercase form and is written back as 8-4-4-4-12 in lowercase."""
    from shop import write_shop

    def other_forms(rows):
        rows["orders"][0]["order_id"] = "raw:{" + uid("o1").upper() + "}"
        rows["order_items"][0]["order_id"] = "raw:" + uid("o1").replace("-", "")

    con, _ = load(write_shop(tmp_path / "x", edit=other_forms))
    assert db.rows(con, "select o.order_id::varchar, i.quantity from raw.orders o join raw.order_items i "
                        "using (order_id) where o.order_id = $o1", {"o1": uid("o1")}) == [(uid("o1"), 2)]


def test_a_refused_value_is_shown_on_one_line_with_control_characters_escaped(tmp_path):
    """A carriage return or a terminal escape inside a quoted id must not break the error's one line."""
    from shop import write_shop

    export = write_shop(tmp_path / "x", edit=lambda rows: rows["orders"][1].update(user_id="raw:u\r2\x1b[31m"))
    with pytest.raises(InputError) as raised:
        load(export)
    message = str(raised.value)
    assert (raised.value.line, raised.value.column) == (3, "user_id")
    assert "\r" not in message and "\x1b" not in message and "\n" not in message
    assert "cannot read 'u\\r2\\x1b[31m' as an id" in message


# --------------------------------------------------------------------------- every record accounted for

RECORD_FILES = [  # content, records (header included), longest record in bytes without its line ending
    (b"a,b\n1,2\n3,4\n", 3, 3),
    (b'a,b\n1,"x\ny"\n3,4', 3, 7),  # a quoted newline; no final newline
    (b"a,b\r\n1,2\r\n", 2, 3),  # CRLF: the CR is the line ending's, not the record's
    (b'a,b\r\n1,"x\r\ny"\r\n', 2, 8),  # a quoted CRLF
    (b"a,b\n1,2", 2, 3),  # no final newline
    (b"a,b\r\n1,22", 2, 4),
    (b"\xef\xbb\xbfa,b\n1,2\n", 2, 6),  # a BOM belongs to the header's bytes
    (b"a,b\n1,2\n\n", 2, 3),  # an empty trailing line is no record
    (b"a,b\r\n1,2\r\n\r\n", 2, 3),
    (b"a,b\n\n1,2\n\n\n3,4\n", 3, 3),  # blank lines in between neither
    (b'a,b\n1,"say ""hi""\nthere"\n2,""\n', 3, 20),  # escaped quotes inside and an empty quoted value
    (b'a,b\n1,"\n\n"\n', 2, 6),  # a quoted value of blank lines is one record
]


# Files up to SMALL_FILE_BYTES are counted by a loop over their lines, larger ones in numpy chunks:
# every case runs through both (small 0: always chunks; 1 << 30: always lines).
COUNTERS = pytest.mark.parametrize("small", [0, 1 << 30], ids=["chunks", "lines"])


@COUNTERS
@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
@pytest.mark.parametrize(("content", "count", "longest"), RECORD_FILES)
def test_records_are_counted_quote_aware_in_any_chunking(tmp_path, monkeypatch, content, count, longest, chunk,
                                                         small):
    from greenery.warehouse import records

    monkeypatch.setattr(records, "CHUNK_BYTES", chunk)  # every boundary: inside quotes, between CR and LF
    monkeypatch.setattr(records, "SMALL_FILE_BYTES", small)
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    found = records.count_records(path, limit=100)
    assert (found.count, found.longest, found.too_long_at) == (count, longest, None)
    # DuckDB's reader, given a record it can hold, agrees: every record but the header is a row.
    con = db.connect()
    assert db.scalar(con, "select count(*) from read_csv($p, header = true, auto_detect = false, "
                          "columns = {'a': 'VARCHAR', 'b': 'VARCHAR'}, quote = '\"', escape = '\"')",
                     {"p": str(path)}) == count - 1


def test_both_counters_agree_on_any_bytes(tmp_path, monkeypatch):
    """Random files of quotes, commas, CRs and LFs (seeded): the line loop and the numpy chunks find
    the same records, longest record and first record over the limit, at every chunk size."""
    import random

    from greenery.warehouse import records

    rng = random.Random(24)
    path = tmp_path / "f.csv"
    for _ in range(300):
        path.write_bytes(bytes(rng.choice(b'ab,"\r\n\n') for _ in range(rng.randrange(0, 60))))
        monkeypatch.setattr(records, "SMALL_FILE_BYTES", 1 << 30)
        by_lines = records.count_records(path, limit=5)
        monkeypatch.setattr(records, "SMALL_FILE_BYTES", 0)
        monkeypatch.setattr(records, "CHUNK_BYTES", rng.choice([1, 2, 3, 7, 1 << 20]))
        assert records.count_records(path, limit=5) == by_lines, path.read_bytes()


@COUNTERS
@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
@pytest.mark.parametrize(("content", "count", "longest"), RECORD_FILES)
def test_the_count_feeds_a_hasher_every_byte_it_reads(tmp_path, monkeypatch, content, count, longest, chunk, small):
    """The fingerprint's sha256 taken in the count's own read is the file's sha256, and the count the same."""
    import hashlib

    from greenery.warehouse import records

    monkeypatch.setattr(records, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(records, "SMALL_FILE_BYTES", small)
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    hasher = hashlib.sha256()
    assert records.count_records(path, 100, hasher) == records.count_records(path, 100)
    assert hasher.hexdigest() == hashlib.sha256(content).hexdigest()


def _counting_reads(monkeypatch) -> tuple[list[str], list[str]]:
    """The files count_records and fingerprint.hash_file read from now on, by name."""
    from greenery.outputs import fingerprint
    from greenery.warehouse import records

    counted, hashed = [], []
    count, hash_file = records.count_records, getattr(fingerprint, "hash_file", None)
    monkeypatch.setattr(records, "count_records", lambda path, *a: counted.append(path.name) or count(path, *a))
    monkeypatch.setattr(fingerprint, "hash_file", lambda path, h: hashed.append(path.name) or hash_file(path, h),
                        raising=False)
    return counted, hashed


def test_the_fingerprint_and_the_load_share_one_read_of_each_file(shop_dir, tmp_path, monkeypatch):
    """ExportScan: the fingerprint's read counts each file's records, and the load takes that count
    without reading the file again; the fingerprint is the one fingerprint.export computes alone."""
    from greenery import config
    from greenery.outputs import fingerprint
    from greenery.warehouse.records import ExportScan, count_records

    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "alone.json"))
    alone = fingerprint.export(shop_dir)
    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "shared.json"))  # no digest to reuse
    files = [shop_dir / t.file_name for t in RAW_TABLES]
    expected = {path.name: count_records(path, config.max_record_bytes()) for path in files}
    counted, hashed = _counting_reads(monkeypatch)
    scan = ExportScan(config.max_record_bytes, fingerprinted=True)
    assert scan.export(shop_dir) == alone
    assert sorted(counted) == sorted(expected) and hashed == []  # one read each, counted as it was hashed
    assert {path.name: scan.records(path) for path in files} == expected
    assert len(counted) == len(files)  # the load read nothing again
    assert scan.export(shop_dir) == alone and len(counted) == len(files)  # nor does the history's question


def test_a_file_the_load_counted_first_is_only_hashed_by_the_fingerprint(shop_dir, tmp_path, monkeypatch):
    from greenery import config
    from greenery.outputs import fingerprint
    from greenery.warehouse.records import ExportScan

    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "alone.json"))
    alone = fingerprint.export(shop_dir)
    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "shared.json"))
    counted, hashed = _counting_reads(monkeypatch)
    scan = ExportScan(config.max_record_bytes)  # no fingerprint begun: the load does not wait for one
    events = shop_dir / "events.csv"
    assert scan.records(events).count == 22  # the shop: 21 events and the header
    assert scan.export(shop_dir) == alone
    assert counted.count("events.csv") == 1 and hashed == ["events.csv"]  # hashed alone, not counted twice


def test_a_file_the_fingerprint_names_but_never_reads_is_counted_by_the_load(shop_dir, tmp_path, monkeypatch):
    """A fingerprint that fails half way (a file gone) leaves the load to count what it did not read."""
    from greenery import config
    from greenery.warehouse.records import ExportScan

    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "shared.json"))
    counted, _ = _counting_reads(monkeypatch)
    scan = ExportScan(config.max_record_bytes, fingerprinted=True)
    orders = shop_dir / "orders.csv"
    real_read = scan.read

    def read(path, hasher):
        if path.name == "orders.csv":
            raise OSError("gone")
        real_read(path, hasher)

    scan.read = read
    with pytest.raises(OSError, match="gone"):
        scan.export(shop_dir)
    assert "orders.csv" not in counted
    assert scan.records(orders).count == 7  # 6 orders and the header, counted now
    assert counted.count("orders.csv") == 1


def test_a_build_reads_each_export_file_once_for_its_fingerprint_and_its_records(shop_dir, tmp_path, monkeypatch):
    """`greenery build` with no digest to reuse: each file's bytes are read once by Python (the
    headers aside), and the history records the export's fingerprint as fingerprint.export finds it."""
    import hashlib

    from greenery.outputs import fingerprint
    from greenery.warehouse import records
    from greenery.warehouse.build import DataSource, build

    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "alone.json"))
    alone = fingerprint.export(shop_dir)
    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "build.json"))
    counted, _ = _counting_reads(monkeypatch)
    digested = []
    file_digest = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda f, d: digested.append(Path(f.name).name) or file_digest(f, d))
    if hasattr(records, "ExportScan"):  # a slow machine still waits for the fingerprint to name its files
        monkeypatch.setattr(records.ExportScan, "DECLARE_DEADLINE_S", 600.0)
    build(DataSource(shop_dir, "test", None), tmp_path / "w.duckdb", history=tmp_path / "h.duckdb")
    for table in RAW_TABLES:
        assert counted.count(table.file_name) + digested.count(table.file_name) == 1, (counted, digested)
    con = db.connect(tmp_path / "h.duckdb", read_only=True)
    assert {e for (e,) in db.rows(con, "select distinct export from export_tables")} == {alone}
    con.close()


@COUNTERS
@pytest.mark.parametrize("chunk", [1, 4, 1 << 20])
def test_the_first_record_longer_than_the_limit_is_found_with_its_line(tmp_path, monkeypatch, chunk, small):
    from greenery.warehouse import records

    monkeypatch.setattr(records, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(records, "SMALL_FILE_BYTES", small)
    path = tmp_path / "f.csv"
    path.write_bytes(b'a,b\r\n1,"x\r\ny"\r\n2,' + b"z" * 9 + b"\r\n3," + b"w" * 20)
    found = records.count_records(path, limit=10)
    # Offsets: the header 0-4, record 2 5-14 (10 bytes with its CRLF), record 3 from 15: "2," and 9 z.
    assert (found.count, found.too_long_at, found.too_long_bytes) == (4, 15, 11)
    assert records.physical_line(path, found.too_long_at) == 4  # the quoted CRLF makes it line 4, record 3
    assert (found.longest, found.longest_at) == (22, 28)  # "3," and 20 w, after record 3's CRLF
    assert records.count_records(path, limit=22).too_long_at is None


def test_a_record_longer_than_the_limit_is_refused_at_its_line(tmp_path, monkeypatch):
    from shop import write_shop

    export = write_shop(tmp_path / "x", edit=lambda rows: rows["products"][1].update(name="Cactus " + "x" * 300))
    monkeypatch.setenv("GREENERY_MAX_RECORD_BYTES", "250")  # the shop's longest other record: 218 bytes (events)
    with pytest.raises(InputError) as raised:
        load(export)
    assert (raised.value.file.name, raised.value.line, raised.value.column) == ("products.csv", 3, None)
    # id (36), name (307), price 20.5 (4), inventory 0 (1), three commas
    assert "a record of 351 bytes is longer than the loader reads (250 bytes" in str(raised.value)


def test_a_record_the_reader_drops_is_caught_by_the_count(tmp_path, monkeypatch):
    """The backstop: were a record to outgrow DuckDB's buffer (here the length check is switched off),
    the reader drops it without a word, and the count differs: refused, naming the longest record."""
    from shop import write_shop

    from greenery.warehouse import load as loader

    export = write_shop(tmp_path / "x", edit=lambda rows: rows["events"][3].update(page_url="x" * 50_000))
    monkeypatch.setenv("GREENERY_MAX_RECORD_BYTES", "1000")  # DuckDB's buffer: 16,000 bytes
    real = loader.count_records
    monkeypatch.setattr(loader, "count_records", lambda path, limit: real(path, 1 << 30))
    with pytest.raises(InputError) as raised:
        load(export)
    assert (raised.value.file.name, raised.value.line, raised.value.column) == ("events.csv", 5, None)
    assert "the file holds 21 records but 20 were read" in str(raised.value)


def test_the_record_limit_setting_is_checked(monkeypatch, shop_dir):
    from greenery.errors import UsageError

    monkeypatch.setenv("GREENERY_MAX_RECORD_BYTES", "2MB")
    with pytest.raises(UsageError, match="GREENERY_MAX_RECORD_BYTES='2MB': expected a number of bytes"):
        load(shop_dir)


# --------------------------------------------------------------------------- numbers exactly as written

NUMBER_COLUMNS = [(t.name, c.name, c.type) for t in RAW_TABLES for c in t.columns if plain_number(c.type)]


def test_every_numeric_column_of_the_contract_is_covered():
    assert {(table, column) for table, column, _ in NUMBER_COLUMNS} == {
        ("products", "price"), ("products", "inventory"), ("promos", "discount"), ("orders", "order_cost"),
        ("orders", "shipping_cost"), ("orders", "order_total"), ("order_items", "quantity")}


@pytest.mark.parametrize(("table", "column", "type_"), NUMBER_COLUMNS)
@pytest.mark.parametrize("kind", ["fraction", "exponent", "out of range", "words"])
def test_a_number_its_type_cannot_hold_exactly_is_refused(tmp_path, table, column, type_, kind):
    from shop import write_shop

    written, says = {
        "fraction": ("56.6", "a whole number is expected (a fraction is never rounded)") if type_ == "INTEGER"
        else ("2.004", "at most 2 decimals (more are never rounded)"),
        "exponent": ("4e1", "exponent notation; write the plain number"),
        "out of range": ("3000000000", "out of the type's range") if type_ == "INTEGER"
        else ("12345678901", "out of the type's range"),
        "words": ("twelve", None),
    }[kind]
    export = write_shop(tmp_path / "x", edit=lambda rows: rows[table][1].update({column: written}))
    with pytest.raises(InputError) as raised:
        load(export)
    assert (raised.value.file.name, raised.value.line, raised.value.column) == (f"{table}.csv", 3, column)
    assert str(raised.value).endswith(f"cannot read '{written}' as {type_}" + (f": {says}" if says else ""))


def test_numbers_that_fit_exactly_are_loaded_as_written(tmp_path):
    from decimal import Decimal

    from shop import write_shop

    def edit(rows):
        rows["products"][0].update(price="+7.", inventory="+3")
        rows["products"][1].update(price=".5", inventory="-0")
        rows["products"][2].update(price="9999999999.99", inventory="2147483647")

    con, _ = load(write_shop(tmp_path / "x", edit=edit))
    assert db.rows(con, "select price, inventory from raw.products order by price") == [
        (Decimal("0.50"), 0), (Decimal("7.00"), 3), (Decimal("9999999999.99"), 2147483647)]
    assert db.scalar(con, "select typeof(inventory) || ' ' || typeof(price) from raw.products limit 1") == \
        "INTEGER DECIMAL(12,2)"


def test_an_export_that_passes_is_loaded_by_the_fast_path(shop_dir, monkeypatch):
    """Each file read with its numbers checked and cast in the same statement: neither the separate
    number check nor the rejects' rows are asked for."""
    from greenery.warehouse import load as loader

    def never(*args):
        raise AssertionError("the checking path ran")

    monkeypatch.setattr(loader, "_check_numbers", never)
    monkeypatch.setattr(loader, "_rejects", never)
    con, report = load(shop_dir)
    assert report.rows == {"users": 4, "addresses": 4, "products": 3, "promos": 2, "orders": 6,
                           "order_items": 8, "events": 21}
    assert db.scalar(con, "select typeof(quantity) from raw.order_items limit 1") == "INTEGER"


def test_a_bad_number_met_on_the_fast_path_is_named_by_the_checking_path_all_rolled_back(tmp_path, shop_dir):
    from shop import write_shop

    export = write_shop(tmp_path / "x", edit=lambda rows: rows["orders"][1].update(order_cost="1.005"))
    con = db.connect()
    with pytest.raises(InputError) as raised:
        load_export(con, export)
    assert (raised.value.file.name, raised.value.line, raised.value.column) == ("orders.csv", 3, "order_cost")
    assert str(raised.value).endswith("cannot read '1.005' as DECIMAL(12,2): at most 2 decimals (more are never rounded)")
    # The load's transaction was rolled back (the tables read before orders.csv included), and the
    # connection is usable: a good export loads on it.
    assert db.scalar(con, "select count(*) from duckdb_tables() where schema_name = 'raw'") == 0
    assert load_export(con, shop_dir).rows["orders"] == 6


def test_the_first_bad_number_in_the_file_is_named(tmp_path):
    """The warehouse keeps no row order: the line is found in the file, the earliest of the refused values."""
    from shop import write_shop

    def edit(rows):
        rows["order_items"][5]["quantity"] = "1.5"
        rows["order_items"][2]["quantity"] = "2.5"

    with pytest.raises(InputError) as raised:
        load(write_shop(tmp_path / "x", edit=edit))
    assert (raised.value.line, raised.value.column) == (4, "quantity")
    assert "'2.5'" in str(raised.value)


@pytest.mark.parametrize("offset", ["+02:99", "+0299", "+24:00", "-00:60"])
def test_an_offset_no_time_zone_has_is_refused_never_normalised(shop_dir, offset):
    """The attacker's review: `+02:99` was read as +03:39 (DuckDB and Python both carry the minutes
    over), a value changed in silence. An offset's hours run 00-23, its minutes 00-59."""
    text = (shop_dir / "orders.csv").read_text().replace("2021-02-11T15:30:00Z", f"2021-02-11T17:30:00{offset}")
    (shop_dir / "orders.csv").write_text(text)
    with pytest.raises(InputError) as raised:
        load(shop_dir)
    assert (raised.value.file.name, raised.value.line, raised.value.column) == ("orders.csv", 3, "created_at")
    assert raised.value.reason == (f"timestamp '2021-02-11T17:30:00{offset}' has an offset no time zone has "
                                   "(hours 00-23, minutes 00-59): refused, never normalised")


def test_an_offset_a_time_zone_has_is_converted_to_utc(shop_dir):
    text = (shop_dir / "orders.csv").read_text().replace("2021-02-11T15:30:00Z", "2021-02-11T17:29:00+01:59")
    (shop_dir / "orders.csv").write_text(text)
    con, report = load(shop_dir)
    assert db.scalar(con, "select count(*) from raw.orders where created_at = '2021-02-11 15:30:00'") == 1
    assert any("converted to UTC" in warning for warning in report.warnings)


@pytest.mark.parametrize("file,at,crlf,named,alone", [
    ("users.csv", 2, True, 2, "a line feed alone"), ("promos.csv", 2, True, 2, "a line feed alone"),
    ("orders.csv", 4, False, 4, "CR LF"),
    ("orders.csv", 1, False, 2, "a line feed alone"),  # the header's ending is the file's: line 2 is the odd one
])
def test_a_line_with_the_other_line_ending_is_named(shop_dir, file, at, crlf, named, alone):
    """The attacker's review: one line ending in a line feed alone inside a CRLF file (or CRLF inside an
    LF file) was `cannot be read as CSV`, with no line: DuckDB's reader says nothing of where."""
    path = shop_dir / file
    lines = path.read_bytes().split(b"\r\n" if crlf else b"\n")
    odd, usual = (b"\n", b"\r\n") if crlf else (b"\r\n", b"\n")
    path.write_bytes(usual.join(lines[:at]) + odd + usual.join(lines[at:]))  # line `at` ends with `odd`
    with pytest.raises(InputError) as raised:
        load(shop_dir)
    assert (raised.value.file.name, raised.value.line, raised.value.column) == (file, named, None)
    other = "CR LF" if alone == "a line feed alone" else "a line feed alone"
    assert raised.value.reason == (f"this line ends with {alone}, the lines before it with {other}: save the file "
                                   "with one kind of line ending")


def test_a_file_that_changes_while_it_is_read_is_named_as_such(shop_dir, monkeypatch):
    """The attacker's review: a file written to during a build (an export still being copied) was blamed
    on its longest record ('the file holds 6 records but 7 were read'), or loaded in silence."""
    from greenery.warehouse import load as loader

    read = loader._read
    orders = shop_dir / "orders.csv"
    record = orders.read_bytes().split(b"\n")[1]

    def read_after_a_write(con, table, path, *args, **kwargs):
        if path == orders:  # the copy goes on: one more record arrives while the loader works
            with orders.open("ab") as handle:
                handle.write(b"\n" + record.replace(uid("o1").encode(), uid("o9").encode()))
        return read(con, table, path, *args, **kwargs)

    monkeypatch.setattr(loader, "_read", read_after_a_write)
    with pytest.raises(InputError) as raised:
        load(shop_dir)
    assert (raised.value.file.name, raised.value.line, raised.value.column) == ("orders.csv", None, None)
    assert raised.value.reason == ("the file changed while it was read (is the export still being written?): "
                                   "run again once it is complete")


def test_the_fast_path_asks_for_the_readers_refusals_once_for_every_table(shop_dir, monkeypatch):
    """The rows read are what each `create table ... as` returns, and whether the reader refused any row is
    asked of the seven rejects tables in one statement, not in one statement a table."""
    asked = []
    rows = db.rows
    monkeypatch.setattr(db, "rows", lambda con, sql, params=None: asked.append(sql) or rows(con, sql, params))
    _, report = load(shop_dir)
    assert report.rows["events"] == 21
    assert len([sql for sql in asked if "rejects_" in sql and "read_csv" not in sql]) == 1
    assert not [sql for sql in asked if "count(*) from raw." in sql]


def test_an_earlier_file_that_changed_while_read_is_named_before_a_later_files_error(tmp_path, monkeypatch):
    """The fast path settles a table's checks after the later tables are read; a later table's error still
    comes after an earlier table's, as when each table was checked before the next was read: products.csv
    changed while it was read (its identity after the read differs) and events.csv holds a record too long."""
    from shop import write_shop

    from greenery.warehouse import load as loader

    export = write_shop(tmp_path / "x", edit=lambda rows: rows["events"][3].update(page_url="x" * 300))
    monkeypatch.setenv("GREENERY_MAX_RECORD_BYTES", "250")  # the shop's longest other record: 218 bytes
    seen = []
    identity = loader.file_identity

    def changed_after_read(path):
        seen.append(path.name)
        found = identity(path)
        return (*found[:-1], found[-1] + 1) if seen.count("products.csv") == 2 and path.name == "products.csv" \
            else found

    monkeypatch.setattr(loader, "file_identity", changed_after_read)
    with pytest.raises(InputError) as raised:
        load(export)
    assert raised.value.file.name == "products.csv"
    assert "the file changed while it was read" in str(raised.value)
    monkeypatch.setattr(loader, "file_identity", identity)  # unchanged: the events' record is named
    with pytest.raises(InputError) as raised:
        load(export)
    assert (raised.value.file.name, raised.value.line) == ("events.csv", 5)


def test_a_table_read_alone_on_the_fast_path_is_checked_at_once(shop_dir, monkeypatch):
    """load_table on the fast path with no list to settle it later (no caller to do so) makes its checks
    before returning: the file changed while it was read is named, and a file that did not has its rows."""
    from concurrent.futures import Future

    from greenery.warehouse import load as loader

    users = next(t for t in RAW_TABLES if t.name == "users")

    def read_alone(identity=loader.file_identity):
        monkeypatch.setattr(loader, "file_identity", identity)
        con = db.connect()
        db.run(con, "create schema raw")
        counted: Future = Future()
        counted.set_result(loader.count_file_records(shop_dir / users.file_name))
        report = loader.LoadReport(shop_dir)
        try:
            return loader.load_table(con, users, shop_dir, report, counted), report.rows
        finally:
            con.close()

    assert read_alone() == (4, {"users": 4})
    calls = []

    def changed_after_read(path, identity=loader.file_identity):
        calls.append(path)
        found = identity(path)
        return (*found[:-1], found[-1] + 1) if len(calls) == 2 else found

    with pytest.raises(InputError, match="the file changed while it was read"):
        read_alone(changed_after_read)
