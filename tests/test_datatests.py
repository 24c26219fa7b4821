"""Each kind of data test passes on the clean shop and fails, naming the right rows, on a broken one."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from shop import name, write_shop

from greenery import config
from greenery.errors import DataTestFailure
from greenery.warehouse.build import (
    BESIDE_BATCH,
    DataSource,
    _beside,
    _tests_until,
    build,
    first_models,
    first_tests,
)
from greenery.warehouse.manifest import DataTest, Manifest, Model, load_manifest


def build_shop(tmp_path: Path, edit=None):
    source = DataSource(write_shop(tmp_path / "export", edit), "test", None)
    return build(source, tmp_path / "w.duckdb")


def failing(tmp_path: Path, edit) -> dict[str, tuple[str, int, list[str]]]:
    """Build the edited shop and return the tests that did not pass."""
    try:
        result = build_shop(tmp_path, edit)
    except DataTestFailure as failure:
        result = failure.result
    return {t.name: (t.status, t.failing_rows, name(t.failing_keys)) for t in result.tests if t.status != "pass"}


def test_clean_shop_passes_every_test(tmp_path):
    result = build_shop(tmp_path)
    assert result.summary == {"pass": len(result.tests), "warn": 0, "fail": 0}


def order(rows, order_id):
    return next(r for r in rows["orders"] if r["order_id"] == order_id)


def test_unique_and_relationships(tmp_path):
    def edit(rows):
        rows["orders"].append(dict(order(rows, "o6")))  # duplicate order o6
        rows["order_items"].append({"order_id": "o9", "product_id": "p1", "quantity": "1"})  # unknown order

    failed = failing(tmp_path, edit)
    assert failed["unique_stg_orders_order_id"] == ("fail", 1, ["o6"])
    assert failed["relationships_stg_order_items_order_id__stg_orders"] == ("fail", 1, ["o9 / p1"])


def test_not_null_and_accepted_values(tmp_path):
    def edit(rows):
        order(rows, "o4")["status"] = "lost"
        rows["events"][0]["session_id"] = ""

    failed = failing(tmp_path, edit)
    assert failed["accepted_values_stg_orders_order_status"] == ("fail", 1, ["o4"])
    assert failed["not_null_stg_events_session_id"] == ("fail", 1, ["e01"])


def test_order_total_must_add_up(tmp_path):
    failed = failing(tmp_path, lambda rows: order(rows, "o2").update(order_total="35.0"))  # forgot the promo
    assert failed["assert_order_total_adds_up"] == ("fail", 1, ["o2"])


def test_delivered_before_created(tmp_path):
    failed = failing(tmp_path, lambda rows: order(rows, "o1").update(delivered_at="2021-02-09T09:00:00Z"))
    assert failed["assert_delivered_not_before_created"] == ("fail", 1, ["o1"])


def test_checkout_without_order(tmp_path):
    def edit(rows):
        rows["events"].append({"event_id": "e99", "session_id": "s9", "user_id": "u4", "page_url": "x",
                               "created_at": "2021-02-11T12:00:00Z", "event_type": "checkout",
                               "order_id": "o404", "product_id": ""})

    assert failing(tmp_path, edit)["assert_checkout_has_order"] == ("fail", 1, ["e99"])


def test_warn_level_failure_still_builds(tmp_path):
    def edit(rows):
        order(rows, "o1")["estimated_delivery_at"] = ""
        rows["addresses"][0]["zipcode"] = "2139"  # lost its leading zero

    result = build_shop(tmp_path, edit)
    warned = {t.name: name(t.failing_keys) for t in result.tests if t.status == "warn"}
    assert warned == {"assert_shipped_orders_have_estimate": ["o1"], "assert_zipcode_five_digits": ["a1"]}
    assert (tmp_path / "w.duckdb").is_file()


def test_error_failure_keeps_previous_warehouse_and_writes_json(tmp_path):
    build_shop(tmp_path)
    before = (tmp_path / "w.duckdb").read_bytes()
    with pytest.raises(DataTestFailure):
        build_shop(tmp_path, lambda rows: order(rows, "o2").update(order_total="35.0"))
    assert (tmp_path / "w.duckdb").read_bytes() == before
    assert (tmp_path / "w.rejected.duckdb").is_file()
    payload = json.loads(config.run_results_path(tmp_path / "w.duckdb").read_text())
    assert payload["summary"]["fail"] == 1
    failed = [r for r in payload["results"] if r["status"] == "fail"]
    assert failed[0]["name"] == "assert_order_total_adds_up"
    assert name(failed[0]["failing_keys"]) == ["o2"] and failed[0]["rationale"]


def test_at_most_five_failing_keys_are_listed(tmp_path):
    def edit(rows):
        for r in rows["orders"]:
            r["status"] = "unknown"

    assert failing(tmp_path, edit)["accepted_values_stg_orders_order_status"] == (
        "fail", 6, ["o1", "o2", "o3", "o4", "o5"])


@pytest.mark.parametrize(("rows", "expected"), [
    ("select 1 where false", (0, [])),
    # text order, duplicates kept, a missing key after every other: as list(k order by k)[1:5] gave
    ("select * from (values (2), (1), (1), (null), (3), (null)) as t(k)", (6, ["1", "1", "2", "3", None])),
    ("select * from (values (10), (9), (100)) as t(k)", (3, ["10", "100", "9"])),
    ("select * from (values ('b'), ('B'), (''), ('a'), (null)) as t(k)", (5, ["", "B", "a", "b", None])),
    ("select null::integer from range(3)", (3, [None, None, None])),
    ("select * from (values (null), (4)) as t(k), range(4)", (8, ["4", "4", "4", "4", None])),
    ("select 7 - k, 'second column' from range(8) as t(k)", (8, ["0", "1", "2", "3", "4"])),
])
def test_a_summary_counts_the_failing_rows_and_lists_the_first_five_keys(rows, expected):
    from greenery.warehouse.datatests import _summary_sql

    con = duckdb.connect()
    try:
        assert con.execute(_summary_sql(rows)).fetchall() == [expected]
    finally:
        con.close()


def test_a_batch_sums_up_each_test_and_a_test_without_failing_rows_passes():
    """Three tests in one statement (datatests.run_batch): a's keys 3, NULL, 1 (three failing rows, listed
    1, 3, then the missing key); b returns nothing (no row in the batch's result: passed); c's parameter
    keeps 5 and 6 of 0..6. Worked out by hand, in the order given."""
    from greenery.warehouse.datatests import run_batch

    tests = [DataTest("a", "assertion", "m", None, "error", "why", "select * from (values (3), (null), (1)) as t(k)"),
             DataTest("b", "assertion", "m", None, "warn", "why", "select 1 where false -- a comment ends it"),
             DataTest("c", "assertion", "m", None, "warn", "why", "select k from range(7) as t(k) where k > $above",
                      params={"above": 4})]
    con = duckdb.connect()
    try:
        found = [(r.name, r.status, r.failing_rows, r.failing_keys) for r in run_batch(con, tests)]
    finally:
        con.close()
    assert found == [("a", "fail", 3, ["1", "3", "(null)"]), ("b", "pass", 0, []), ("c", "warn", 2, ["5", "6"])]


def _more_dated_orders(shift_seconds: int):
    """The shop plus five copies of o1 (o7..o11: same buyer, item and dates), so the export carries 15
    delivery and promised dates: o1 2, o2 1, o3 2 and 2 per copy. The copies' dates are moved by
    `shift_seconds` (0: still a whole number of days after their order)."""
    def edit(rows):
        o1 = order(rows, "o1")
        for n in range(7, 12):
            copy = dict(o1, order_id=f"o{n}", tracking_id=f"t{n}")
            for column in ("estimated_delivery_at", "delivered_at"):
                day = datetime.fromisoformat(o1[column].replace("Z", "+00:00")) + timedelta(seconds=shift_seconds)
                copy[column] = day.strftime("%Y-%m-%dT%H:%M:%SZ")
            rows["orders"].append(copy)
            rows["order_items"].append({"order_id": f"o{n}", "product_id": "p1", "quantity": "2"})
    return edit


def test_whole_day_delivery_dates_warn_when_they_are_the_pattern(tmp_path):
    # All 15 dates are whole days after their order (o1 promised 2, delivered 3; o2 promised 3; o3
    # promised 3, delivered 2; the copies as o1): 15 of 15, at least 10 dates and at least half of them,
    # so all 8 dated orders are listed (the first five by id: o10 and o11 spell later UUIDs than o7).
    failed = failing(tmp_path, _more_dated_orders(0))
    assert failed == {"assert_delivery_dates_not_whole_days": ("warn", 8, ["o1", "o2", "o3", "o7", "o8"])}


@pytest.mark.parametrize("shift_seconds", [1, 3 * 3600 + 7 * 60 + 12])
def test_recorded_delivery_dates_pass(tmp_path, shift_seconds):
    # Moved by even one second, the copies' 10 dates are not whole days: 5 of 15 are (o1, o2, o3), under half.
    assert failing(tmp_path, _more_dated_orders(shift_seconds)) == {}


def test_a_few_whole_day_dates_are_not_a_pattern(tmp_path):
    # The clean shop: all 5 of its dates are whole days after their order, but 5 dates are too few to say.
    assert "assert_delivery_dates_not_whole_days" not in failing(tmp_path, None)


def test_tests_batched_in_one_statement_give_what_each_gives_alone(tmp_path):
    """The build runs the tests in a statement per cursor (datatests.run_tests); each test alone
    (run_test) gives the same status, count and keys, also for tests whose parameters share a name
    ($accepted) and for tests that fail."""
    from greenery import db
    from greenery.warehouse.datatests import batch_sql, run_test, run_tests
    from greenery.warehouse.manifest import load_manifest

    def edit(rows):
        order(rows, "o4")["status"] = "lost"
        order(rows, "o5")["shipping_service"] = "pigeon"
        rows["orders"].append(dict(order(rows, "o6")))
        rows["events"][0]["session_id"] = ""

    with pytest.raises(DataTestFailure):
        build_shop(tmp_path, edit)
    tests = load_manifest().tests
    sql, params = batch_sql(tests)
    assert sql.count(" as test_index, ") == len(tests) and len(params) == sum(len(t.params) for t in tests)
    con = db.connect(tmp_path / "w.rejected.duckdb", read_only=True)
    try:
        alone = [run_test(con, test) for test in tests]
        assert {t.name for t in alone if t.status != "pass"} >= {
            "accepted_values_stg_orders_order_status", "accepted_values_stg_orders_shipping_service",
            "unique_stg_orders_order_id", "not_null_stg_events_session_id"}
        for ways in (1, 2, 3):
            cursors = [con.cursor() for _ in range(ways)]
            assert run_tests(cursors, tests) == alone
            for cursor in cursors:
                cursor.close()
    finally:
        con.close()


def test_a_statement_gets_the_parameters_it_names_and_no_others():
    from greenery import db

    params = {"a": 1, "ab": 2, "b": 3, "c": 4, "c_1": 5, "abc": 6, "d": 7}
    assert db._used("select $a, $ab where x = $c_1 or y = $d", params) == {"a": 1, "ab": 2, "c_1": 5, "d": 7}
    assert db._used("select $abc_2", params) == {}
    assert db._used("select 1", None) == {}


def _test(name: str, reads: frozenset[str] | None) -> DataTest:
    return DataTest(name, "assertion", "stg_a", None, "error", "why", "select 1 where false", reads=reads)


def test_only_tests_reading_raw_tables_and_staging_views_run_beside_the_models():
    """stg_a reads raw.a; int_b reads stg_a. Beside the models (before int_b exists) may run: a test of
    raw.a and stg_a; not one reading int_b, nor one whose tables are not known."""
    def model(name, depends_on):
        return Model(name, "staging" if not depends_on else "intermediate", None, Path(f"{name}.sql"), "select 1",
                     "d", "one row per a", "", ("id",), {}, frozenset(depends_on), frozenset(), "view")

    tests = [_test("of_raw_and_staging", frozenset({"raw.a", "stg_a"})), _test("of_int", frozenset({"stg_a", "int_b"})),
             _test("unknown", None), _test("of_staging", frozenset({"stg_a"}))]
    manifest = Manifest({"stg_a": model("stg_a", ()), "int_b": model("int_b", ("stg_a",))}, tests)
    assert [m.name for m in first_models(manifest)] == ["stg_a"]
    assert [t.name for t in first_tests(manifest)] == ["of_raw_and_staging", "of_staging"]


def test_the_project_s_tests_know_what_they_read():
    """Generic tests read their model (and a relationship's parent); assertions what their SQL names."""
    tests = {t.name: t for t in load_manifest().tests}
    assert tests["unique_fct_orders_order_id"].reads == {"fct_orders"}
    assert tests["relationships_fct_orders_user_id__dim_users"].reads == {"fct_orders", "dim_users"}
    assert tests["assert_order_cost_matches_items"].reads == {"int_order_item_totals", "stg_orders"}
    first = {t.name for t in first_tests(load_manifest())}
    assert "assert_raw_tables_not_empty" in first and "unique_fct_orders_order_id" not in first


def test_tests_beside_the_models_stop_between_batches():
    con = duckdb.connect()
    tests = [_test(f"t{i}", frozenset()) for i in range(BESIDE_BATCH + 3)]
    enough = threading.Event()
    assert [r.name for r in _tests_until(con, tests, enough)] == [t.name for t in tests]
    enough.set()
    assert _tests_until(con, tests, enough) == []


def test_a_failed_build_interrupts_the_query_beside_it_and_waits_for_it():
    con = duckdb.connect()
    running = threading.active_count()
    started = time.monotonic()
    with pytest.raises(KeyError), _beside(con) as beside:
        long = beside(lambda cursor: cursor.execute("select count(*) from range(100000000000)").fetchall())
        time.sleep(0.2)
        raise KeyError("the build failed")
    assert time.monotonic() - started < 30  # interrupted: the count alone would take minutes
    assert long.done() and isinstance(long.exception(), duckdb.Error)
    assert threading.active_count() == running


def test_results_are_stored_in_declaration_order(tmp_path):
    """Whether a test ran beside the models or after them, the results keep the manifest's order."""
    result = build_shop(tmp_path)
    assert [t.name for t in result.tests] == [t.name for t in load_manifest().tests]
    stored = json.loads(config.run_results_path(tmp_path / "w.duckdb").read_text())["results"]
    assert [r["name"] for r in stored] == [t.name for t in load_manifest().tests]
