"""The loader on every quirk of the real export, and on input it must refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from shop import name, uid

from greenery import db
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
