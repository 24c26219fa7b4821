"""Every model on the hand-made shop (tests/shop.py); the arithmetic is in the comments."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from shop import PERSONAL_VALUES, name, uid

from greenery import config, db


def name_rows(con, sql: str, params=None) -> list[tuple]:
    return name(db.rows(con, sql, params))


def name_scalar(con, sql: str, params=None):
    return name(db.scalar(con, sql, params))


def table(con, sql: str) -> dict:
    """Rows keyed by their first column, ids as their short names (shop.name)."""
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return {name(row[0]): dict(zip(names, name(row), strict=True)) for row in result.fetchall()}


def test_staging_renames_and_keeps_every_row(shop_db):
    counts = dict(name_rows(shop_db, """
        select 'users', count(*) from stg_users union all select 'addresses', count(*) from stg_addresses
        union all select 'products', count(*) from stg_products union all select 'promos', count(*) from stg_promos
        union all select 'orders', count(*) from stg_orders union all select 'items', count(*) from stg_order_items
        union all select 'events', count(*) from stg_events"""))
    assert counts == {"users": 4, "addresses": 4, "products": 3, "promos": 2, "orders": 6, "items": 8, "events": 21}
    product = table(shop_db, "select * from stg_products")["p2"]
    assert product == {"product_id": "p2", "product_name": "Cactus", "price_usd": Decimal("20.50"), "inventory": 0}
    assert name_scalar(shop_db, "select order_status from stg_orders where order_id = $o",
                       {"o": uid("o2")}) == "shipped"
    assert name_scalar(shop_db, "select discount_usd from stg_promos where promo_id = 'Spring sale'") == Decimal("5")


def test_int_order_item_totals(shop_db):
    totals = table(shop_db, "select * from int_order_item_totals")
    # o2: p2 x1 (20.50) + p3 x2 (10.50) = 31.00 over 2 products, 3 units.
    assert totals["o2"] == {"order_id": "o2", "product_count": 2, "unit_count": 3, "items_amount_usd": Decimal("31.00")}
    # o5: p1 (10.00) + p2 (20.50) = 30.50.
    assert totals["o5"]["items_amount_usd"] == Decimal("30.50")
    assert len(totals) == 6


def test_dim_users_has_location_and_no_personal_data(shop_db):
    users = table(shop_db, "select * from dim_users")
    assert set(users) == {"u1", "u2", "u3", "u4"}
    assert users["u1"]["zipcode"] == "02139"  # the leading zero survives
    assert users["u1"]["state"] == "Massachusetts"
    shown = repr(users)
    assert not [value for value in PERSONAL_VALUES if value in shown]


def test_fct_orders(shop_db):
    orders = table(shop_db, "select * from fct_orders")
    o1, o2, o3, o4 = orders["o1"], orders["o2"], orders["o3"], orders["o4"]
    # o1: promised 02-12 09:00, delivered 02-13 09:00 -> 3 days to delivery, 1 day late.
    assert (o1["days_to_delivery"], o1["days_late"], o1["was_delivered_late"]) == (3.0, 1.0, True)
    # o3: delivered 02-12 23:59:59, promised a day later -> 2 days, -1 (early).
    assert (o3["days_to_delivery"], o3["days_late"], o3["was_delivered_late"]) == (2.0, -1.0, False)
    # o2 is shipped, not delivered: no delivery figures.
    assert (o2["days_to_delivery"], o2["was_delivered_late"]) == (None, None)
    assert (o2["has_promo"], o2["discount_usd"], o2["product_count"], o2["unit_count"]) == (True, Decimal("5"), 2, 3)
    assert (o1["has_promo"], o1["discount_usd"]) == (False, Decimal("0"))
    # u3 ordered o4 (02-10 12:00), o5 (02-11 08:00), o6 (02-11 20:00).
    assert [orders[o]["user_order_number"] for o in ("o4", "o5", "o6")] == [1, 2, 3]
    assert (o4["promo_id"], o4["discount_usd"]) == ("gone", Decimal("2"))
    assert [orders[o]["user_order_number"] for o in ("o1", "o2", "o3")] == [1, 2, 1]


def test_fct_orders_reads_the_orders_without_copying_them(shop_db):
    """Each common table expression of fct_orders is read once, so DuckDB inlines it: one read twice is
    materialized first, a copy of every column of every order (0.2 CPU s of the build at scale 1000)."""
    from greenery.warehouse.manifest import load_manifest

    plan = db.rows(shop_db, "explain " + load_manifest().models["fct_orders"].sql)[0][1]
    assert "CTE" not in plan


def test_int_order_lines_is_quantity_times_list_price(shop_db):
    lines = name_rows(shop_db, "select order_id, product_id, quantity, price_usd, line_amount_usd from int_order_lines "
                             "where order_id in ($o2, $o3) order by 1, 2", {"o2": uid("o2"), "o3": uid("o3")})
    assert lines == [("o2", "p2", 1, Decimal("20.50"), Decimal("20.50")),   # 1 x 20.50
                     ("o2", "p3", 2, Decimal("5.25"), Decimal("10.50")),    # 2 x 5.25
                     ("o3", "p3", 4, Decimal("5.25"), Decimal("21.00"))]    # 4 x 5.25
    totals = name_rows(shop_db, "select order_id, product_count, unit_count, items_amount_usd from int_order_item_totals "
                              "where order_id = $o", {"o": uid("o2")})
    assert totals == [("o2", 2, 3, Decimal("31.00"))]  # 20.50 + 10.50


def test_fct_order_items_prices_each_line(shop_db):
    items = name_rows(shop_db, "select order_id, product_id, user_id, line_amount_usd from fct_order_items order by 1, 2")
    assert items[:3] == [("o1", "p1", "u1", Decimal("20.00")), ("o2", "p2", "u1", Decimal("20.50")),
                         ("o2", "p3", "u1", Decimal("10.50"))]
    assert name_scalar(shop_db, "select sum(line_amount_usd) from fct_order_items") == Decimal("117.75")  # 20+31+21+10+30.5+5.25


def test_fct_events_flags_shipping_notices(shop_db):
    counts = dict(name_rows(shop_db, "select is_shopper_event, count(*) from fct_events group by 1"))
    assert counts == {True: 18, False: 3}  # three package_shipped events (o1, o3, o2)


def test_dim_user_order_history(shop_db):
    users = table(shop_db, "select * from dim_user_order_history")
    u1, u2, u3, u4 = (users[u] for u in ("u1", "u2", "u3", "u4"))
    assert (u1["order_count"], u1["lifetime_spend_usd"], u1["promo_order_count"]) == (2, Decimal("55.00"), 1)
    assert u1["first_order_at"] == datetime(2021, 2, 10, 9, 0)
    assert u1["last_order_at"] == datetime(2021, 2, 11, 15, 30)
    # u3: 10.50 + 33.50 + 6.25 = 50.25, one promo order worth 2.
    assert (u3["order_count"], u3["lifetime_spend_usd"], u3["lifetime_discount_usd"]) == (3, Decimal("50.25"), Decimal("2"))
    assert [users[u]["order_count_band"] for u in ("u1", "u2", "u3", "u4")] == ["2", "1", "3", "0"]
    assert (u2["is_buyer"], u2["is_repeat_buyer"]) == (True, False)
    assert (u4["is_buyer"], u4["order_count"], u4["lifetime_spend_usd"]) == (False, 0, Decimal("0"))


def test_repeat_rate_on_the_shop(shop_db):
    # Buyers u1, u2, u3; repeat buyers u1 (2 orders) and u3 (3): 2 / 3.
    from greenery.chapter_kit.analyses import repeat_rate

    rate = repeat_rate(shop_db)
    assert (rate.repeat_buyers, rate.buyers, rate.users) == (2, 3, 4)
    assert rate.rate == pytest.approx(2 / 3)


def test_fct_order_promos(shop_db):
    promos = table(shop_db, "select * from fct_order_promos")
    assert (promos["o2"]["promo_id"], promos["o2"]["promo_status"], promos["o2"]["discount_usd"]) == (
        "Spring sale", "active", Decimal("5"))
    assert (promos["o4"]["promo_status"], promos["o1"]["promo_status"]) == ("inactive", None)


def test_fct_first_orders(shop_db):
    first = table(shop_db, "select * from fct_first_orders")
    assert set(first) == {"u1", "u2", "u3"}  # u4 never ordered
    u1, u2, u3 = first["u1"], first["u2"], first["u3"]
    # u1's first order o1: Wednesday 09:00, 25.00, delivered a day late; before it, session s1
    # had 2 page views and 1 cart add (the 20:00 shipping notice is later and not the shopper's).
    assert (u1["order_id"], u1["hour_utc"], u1["weekday"], u1["order_total_usd"]) == ("o1", 9, "Wednesday", Decimal("25.00"))
    assert (u1["was_delivered_late"], u1["days_late"], u1["is_repeat_buyer"]) == (True, 1.0, True)
    assert (u1["sessions_before"], u1["page_views_before"], u1["add_to_carts_before"]) == (1, 2, 1)
    # u2: o3 at 23:59:59, early by a day, never came back.
    assert (u2["hour_utc"], u2["was_delivered_late"], u2["is_repeat_buyer"], u2["unit_count"]) == (23, False, False, 4)
    # u3: o4 with promo "gone", still preparing: no delivery figures; s6 before it.
    assert (u3["has_promo"], u3["promo_id"], u3["days_to_delivery"], u3["order_count"]) == (True, "gone", None, 3)
    assert (u3["sessions_before"], u3["page_views_before"], u3["add_to_carts_before"]) == (1, 1, 1)


def test_fct_sessions(shop_db):
    sessions = table(shop_db, "select * from fct_sessions")
    assert len(sessions) == 6
    s1 = sessions["s1"]
    # s1 runs 08:50:00 to the checkout at 08:59:59 (599 s); the 20:00 shipping notice is not the shopper's.
    assert s1["duration_minutes"] == pytest.approx(599 / 60)
    assert (s1["page_views"], s1["add_to_carts"], s1["checkouts"], s1["order_id"]) == (2, 1, 1, "o1")
    assert (s1["products_viewed"], s1["products_added"], s1["products_touched"]) == (2, 1, 2)
    s2 = sessions["s2"]
    assert (s2["page_views"], s2["products_viewed"], s2["has_add_to_cart"], s2["has_checkout"]) == (2, 1, False, False)
    assert s2["duration_minutes"] == 5.0
    # s3 added p3 without viewing it: touched 2, viewed 1.
    assert (sessions["s3"]["products_viewed"], sessions["s3"]["products_touched"]) == (1, 2)
    assert sum(s["has_checkout"] for s in sessions.values()) == 4  # s1, s3, s4, s6
    assert sum(s["has_add_to_cart"] for s in sessions.values()) == 5  # all but s2


def test_fct_session_products(shop_db):
    rows = {(r[0], r[1]): r[2:] for r in name_rows(shop_db, """
        select session_id, product_id, was_viewed, was_added_to_cart, was_ordered, quantity_ordered
        from fct_session_products""")}
    assert rows[("s1", "p1")] == (True, True, True, 2)
    assert rows[("s1", "p3")] == (True, False, False, 0)
    assert rows[("s3", "p3")] == (False, True, True, 2)  # added and ordered without a view
    assert rows[("s5", "p1")] == (True, True, False, 0)  # the abandoned cart
    assert len(rows) == 8  # s1: p1, p3; s2: p2; s3: p2, p3; s4: p3; s5: p1; s6: p1


def test_dim_promos(shop_db):
    promos = table(shop_db, "select * from dim_promos")
    assert promos == {
        "Spring sale": {"promo_id": "Spring sale", "discount_usd": Decimal("5"), "promo_status": "active", "is_active": True},
        "gone": {"promo_id": "gone", "discount_usd": Decimal("2"), "promo_status": "inactive", "is_active": False},
    }


def _model(name: str, sql: str, materialized: str, depends_on=()):
    from pathlib import Path

    from greenery.warehouse.manifest import Model

    return Model(name, "intermediate", None, Path(f"{name}.sql"), sql, "d", "one row per n", "", ("n",), {},
                 frozenset(depends_on), frozenset(), materialized)


def test_a_view_computed_once_is_read_by_every_later_model_and_left_a_view():
    """v draws three numbers from a sequence each time it is computed; t1 reads v, t2 reads v through the
    view w. Computed once (once={"v"}), the temporary table holds 1, 2, 3 and both tables see their
    maximum, 3; the warehouse keeps v a view (computed again when read: 4, 5, 6) and no temporary table.
    Computed at each read, t1 sees 1..3 and t2 4..6."""
    from greenery.warehouse.build import make_models

    def build(once):
        con = db.connect()
        db.run(con, "create sequence s")
        models = [_model("v", "select nextval('s') as n from range(3)", "view"),
                  _model("w", "select n from v", "view", ["v"]),
                  _model("t1", "select max(n) as n from v", "table", ["v"]),
                  _model("t2", "select max(n) as n from w", "table", ["w"])]
        rows = make_models(con, models, once)
        return con, rows

    con, rows = build(frozenset({"v"}))
    assert rows == {"v": None, "w": None, "t1": 1, "t2": 1}
    assert db.rows(con, "select (select n from t1), (select n from t2)") == [(3, 3)]
    assert db.rows(con, "select count(*) from duckdb_tables() where temporary") == [(0,)]
    assert db.rows(con, "select table_name, table_type from information_schema.tables order by 1") == [
        ("t1", "BASE TABLE"), ("t2", "BASE TABLE"), ("v", "VIEW"), ("w", "VIEW")]
    assert db.rows(con, "select n from v order by n") == [(4,), (5,), (6,)]

    con, _ = build(frozenset())
    assert db.rows(con, "select (select n from t1), (select n from t2)") == [(3, 6)]


def test_the_views_computed_once_are_views_two_tables_read():
    """COMPUTED_ONCE names views of the project that two or more tables read, directly or through views:
    a name gone stale, or a view only one table reads, would be work for nothing."""
    from greenery.warehouse.build import COMPUTED_ONCE
    from greenery.warehouse.manifest import load_manifest

    models = load_manifest().models

    def reads(name: str, target: str) -> bool:
        return any(up == target or (models[up].materialized == "view" and reads(up, target))
                   for up in models[name].depends_on)

    assert COMPUTED_ONCE
    for view in COMPUTED_ONCE:
        assert models[view].materialized == "view"
        readers = {m.name for m in models.values() if m.materialized == "table" and reads(m.name, view)}
        assert len(readers) >= 2, (view, readers)
    assert {m for m in models if reads(m, "int_session_product_events")
            and models[m].materialized == "table"} == {"fct_sessions", "fct_product_conversion"}


def test_the_file_being_built_is_written_in_row_groups_of_row_group_rows(tmp_path):
    """A table of 40,000 rows made in the file a build writes (build._open) is stored as one row group of
    db.ROW_GROUP_ROWS (32,768) and one of the 7,232 left, both in the file once committed, its log left
    empty of rows; DuckDB's default row group (122,880 rows) would hold it whole, copied into the log at
    the commit and compressed only by the checkpoint."""
    from greenery.warehouse.build import _open

    con = _open(tmp_path / "b.duckdb", None)
    try:
        db.run(con, "begin transaction")
        db.run(con, "create table t as select range as i from range(40000)")
        db.run(con, "commit")
        assert db.rows(con, "select row_group_id, sum(count), bool_and(persistent) from pragma_storage_info('t') "
                            "where segment_type <> 'VALIDITY' group by all order by 1") == [(0, 32768, True),
                                                                                              (1, 7232, True)]
        # the log holds the commit's record, not the rows: under a kibibyte (the rows: 312.5 KiB)
        assert db.scalar(con, "select wal_size from pragma_database_size() where database_name = 'building'") \
            .endswith(" bytes")
    finally:
        con.close()


def test_a_small_export_is_built_with_one_duckdb_thread_a_larger_one_with_the_settings(monkeypatch):
    """config.build_threads: at most SMALL_EXPORT_BYTES, one thread; a byte more, the settings' (one per
    core); $GREENERY_DUCKDB_THREADS, when set, wins even on a small export."""
    monkeypatch.delenv("GREENERY_DUCKDB_THREADS", raising=False)
    monkeypatch.setattr(config.os, "cpu_count", lambda: 8)
    assert config.build_threads(0) == 1
    assert config.build_threads(config.SMALL_EXPORT_BYTES) == 1
    assert config.build_threads(config.SMALL_EXPORT_BYTES + 1) == 8
    monkeypatch.setenv("GREENERY_DUCKDB_THREADS", "3")
    assert config.build_threads(1) == 3


def test_a_build_sets_the_threads_its_export_s_size_asks_for(shop_dir, tmp_path, monkeypatch):
    """The shop's seven files (a few kilobytes, the size build.export_bytes sums) are built with DuckDB on one
    thread; made to look larger than SMALL_EXPORT_BYTES, with the settings' (here 3). Both through `greenery
    build`, whose instance is opened beside with one thread before the export is known, and through build()
    alone, which opens its own."""
    from greenery import cli
    from greenery.warehouse import build as building

    monkeypatch.setenv("GREENERY_HISTORY", str(tmp_path / "history.duckdb"))
    monkeypatch.delenv("GREENERY_DUCKDB_THREADS", raising=False)
    monkeypatch.setattr(config.os, "cpu_count", lambda: 3)
    size = building.export_bytes(shop_dir)
    assert size == sum(path.stat().st_size for path in shop_dir.glob("*.csv")) > 0
    seen = []
    opened = building._open

    def watched(*args, **kwargs):
        con = opened(*args, **kwargs)
        seen.append(db.scalar(con, "select current_setting('threads')"))
        return con

    monkeypatch.setattr(building, "_open", watched)

    def both(name: str) -> None:
        assert cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / f"{name}.duckdb")]) == 0
        building.build(building.choose_data(shop_dir), tmp_path / f"{name}-alone.duckdb",
                       history=tmp_path / f"{name}-history.duckdb")

    both("small")
    monkeypatch.setattr(config, "SMALL_EXPORT_BYTES", size - 1)
    both("large")
    assert seen == [1, 1, 3, 3]


def test_the_build_s_threads_travel_as_a_query_parameter(tmp_path, monkeypatch):
    """A value in SQL is a parameter, never formatted in (the house rule), the threads _open sets included:
    here an instance opened with one thread (as `greenery build` opens it) set to two."""
    from greenery.warehouse import build as building

    ran, run = [], db.run

    def watched(con, sql, params=None):
        ran.append((sql, params))
        return run(con, sql, params)

    monkeypatch.setattr(db, "run", watched)
    con = building._open(tmp_path / "building.duckdb", db.connect_beside(1), 2)
    try:
        assert db.scalar(con, "select current_setting('threads')") == 2
        assert [(sql, params) for sql, params in ran if "threads" in sql] == [("set threads = $threads", {"threads": 2})]
    finally:
        con.close()


def test_a_file_gone_before_the_size_is_summed_is_the_load_s_missing_file_not_a_crash(shop_dir, tmp_path):
    """A CSV removed between choose_data's check and build.export_bytes (which picks the build's threads): the
    build refuses it as the load does (an InputError naming the file, exit 2), not an unexpected
    FileNotFoundError (exit 5); export_bytes counts what it can see."""
    import shutil

    from greenery.errors import InputError
    from greenery.warehouse import build as building

    export = tmp_path / "export"
    shutil.copytree(shop_dir, export)
    source = building.choose_data(export)
    whole = building.export_bytes(export)
    gone = (export / "users.csv").stat().st_size
    (export / "users.csv").unlink()
    assert building.export_bytes(export) == whole - gone
    with pytest.raises(InputError, match="users.csv: the file is missing from the export$"):
        building.build(source, tmp_path / "w.duckdb", history=tmp_path / "h.duckdb")
    assert not (tmp_path / "w.duckdb").exists()
