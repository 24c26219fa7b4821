"""History across builds: type-2 versions, the changes of the latest build, nothing lost on failure."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from shop import PERSONAL_VALUES, name, uid, write_shop

from greenery import db
from greenery.chapter_kit import analyses
from greenery.chapter_kit import formats as fmt
from greenery.errors import DataTestFailure
from greenery.warehouse.build import DataSource, build


def ship(rows, order_ids=("o4", "o5", "o6")):
    for row in rows["orders"]:
        if row["order_id"] in order_ids:
            row.update(status="shipped", tracking_id=f"t-{row['order_id']}", shipping_service="dhl",
                       estimated_delivery_at="2021-02-15T12:00:00Z")


@pytest.fixture
def builder(tmp_path):
    history = tmp_path / "history.duckdb"

    def build_shop(name, edit=None, since=None):
        source = DataSource(write_shop(tmp_path / name, edit), "test", None)
        build(source, tmp_path / "w.duckdb", history=history, since=since)
        return db.connect(tmp_path / "w.duckdb", read_only=True)

    return build_shop, history


def test_first_build_has_nothing_to_compare(builder):
    build_shop, _ = builder
    con = build_shop("first")
    assert db.scalar(con, "select count(*) from history_builds") == 1
    assert db.scalar(con, "select count(*) from history_changes") == 0


def test_three_orders_shipped_are_exactly_what_changed(builder):
    build_shop, history = builder
    build_shop("first").close()
    con = build_shop("second", ship)
    changes = name(db.rows(con, """
        select key, change, before->>'order_status', after->>'order_status'
        from history_changes where snapshot = 'orders_snapshot' order by key"""))
    assert changes == [("o4", "changed", "preparing", "shipped"), ("o5", "changed", "preparing", "shipped"),
                       ("o6", "changed", "preparing", "shipped")]
    assert db.scalar(con, "select count(*) from history_changes where snapshot <> 'orders_snapshot'") == 0
    con.close()
    kept = db.connect(history, read_only=True)
    versions = name(db.rows(kept, """select order_id, order_status, valid_to is null from orders_snapshot
                                    where order_id in ($o4, $o5, $o6) order by order_id, valid_from""",
                            {o: uid(o) for o in ("o4", "o5", "o6")}))
    assert versions == [("o4", "preparing", False), ("o4", "shipped", True), ("o5", "preparing", False),
                        ("o5", "shipped", True), ("o6", "preparing", False), ("o6", "shipped", True)]
    assert db.scalar(kept, "select count(*) from orders_snapshot") == 9  # 6 first versions + 3 new ones


def test_new_rows_inventory_and_an_unchanged_rebuild(builder):
    build_shop, _ = builder
    build_shop("first").close()

    def grow(rows):
        rows["products"][0]["inventory"] = "3"
        rows["users"].append({**rows["users"][3], "user_id": "u5", "email": "x@example.com"})
        rows["events"].append({**rows["events"][-1], "event_id": "e99", "created_at": "2021-02-11T23:00:00Z"})

    con = build_shop("second", grow)
    found = {(s, name(k), c) for s, k, c in db.rows(con, "select snapshot, key, change from history_changes")}
    # events are kept by a hash of their id
    e99 = db.scalar(con, "select lower(to_hex(md5_number($id)))", {"id": uid("e99")})
    assert found == {("products_snapshot", "p1", "changed"), ("users_snapshot", "u5", "new"),
                     ("events_snapshot", e99, "new")}
    before, after = db.rows(con, "select before, after from history_changes where key = $p1", {"p1": uid("p1")})[0]
    assert (json.loads(before)["inventory"], json.loads(after)["inventory"]) == (5, 3)
    assert analyses.frame(con, "product_changes").to_dict("records") == [
        {"product_name": "Fern", "inventory_before": 5, "inventory_now": 3, "price_before_usd": Decimal("10.00"),
         "price_now_usd": Decimal("10.00")}]
    assert sorted(map(tuple, analyses.frame(con, "changes_by_table").values.tolist())) == [
        ("events_snapshot", "new", 1), ("products_snapshot", "changed", 1), ("users_snapshot", "new", 1)]
    assert analyses.frame(con, "status_moves", {"shown": 10}).empty
    con.close()
    con = build_shop("third", grow)  # the same data again
    assert db.scalar(con, "select count(*) from history_changes") == 0
    assert db.scalar(con, "select count(*) from history_builds") == 3


def test_changes_are_against_the_build_asked_for_whatever_builds_ran_between(builder):
    """Build 1 (the book's), build 2 (p1 5 -> 3, p3 12 -> 7), build 3 (p3 back to 12, user u5 added),
    then build 4 of build 3's data compared with build 1: p1 changed (5 -> 3), u5 new; p3, changed and
    changed back, is not a change; nothing else is."""
    build_shop, _ = builder

    def second(rows):
        rows["products"][0]["inventory"] = "3"
        rows["products"][2]["inventory"] = "7"

    def third(rows):
        rows["products"][0]["inventory"] = "3"
        rows["users"].append({**rows["users"][3], "user_id": "u5", "email": "x@example.com"})

    build_shop("first").close()
    build_shop("second", second).close()
    con = build_shop("third", third)
    assert {(s, name(k), c) for s, k, c in db.rows(con, "select snapshot, key, change from history_changes")} == {
        ("products_snapshot", "p3", "changed"), ("users_snapshot", "u5", "new")}  # against build 2, by default
    con.close()
    con = build_shop("fourth", third, since=1)
    assert {(s, name(k), c) for s, k, c in db.rows(con, "select snapshot, key, change from history_changes")} == {
        ("products_snapshot", "p1", "changed"), ("users_snapshot", "u5", "new")}
    assert analyses.frame(con, "product_changes")[["product_name", "inventory_before", "inventory_now"]] \
        .values.tolist() == [["Fern", 5, 3]]
    assert db.rows(con, "select * from history_comparison") == [(4, 1, 1)]
    assert analyses.frame(con, "history_builds")[["build_id", "compared"]].values.tolist() == [
        [1, True], [2, False], [3, False], [4, False]]
    con.close()
    con = build_shop("fifth", third, since=99)  # not a build of this history: the previous one instead
    assert db.rows(con, "select * from history_comparison") == [(5, 4, 99)]
    assert db.scalar(con, "select count(*) from history_changes") == 0


def test_every_product_replaced_is_three_removed_and_three_added(builder):
    build_shop, _ = builder

    def renamed(rows):  # new ids for every product, wherever one is named
        for table in ("products", "order_items", "events"):
            for row in rows[table]:
                if row.get("product_id"):
                    row["product_id"] = row["product_id"] + "-new"

    build_shop("first").close()
    con = build_shop("second", renamed)
    changes = db.rows(con, "select change, count(*) from history_changes where snapshot = 'products_snapshot' "
                           "group by change order by change")
    assert changes == [("new", 3), ("removed", 3)]


def test_failed_build_leaves_history_untouched(builder, tmp_path):
    build_shop, history = builder
    build_shop("first").close()
    before = history.read_bytes()

    def broken(rows):
        ship(rows)
        rows["orders"][0]["order_total"] = "1.0"

    with pytest.raises(DataTestFailure):
        build_shop("broken", broken)
    assert history.read_bytes() == before


def test_the_history_keeps_ids_as_text_as_before_ids_were_typed(builder):
    """Histories written when ids were text stay readable: keys and id columns are kept as the same
    canonical text, so an earlier history file is compared with, never refused or seen as all new."""
    build_shop, history = builder
    build_shop("first").close()
    kept = db.connect(history, read_only=True)
    types = dict(db.rows(kept, "select table_name || '.' || column_name, data_type from information_schema.columns "
                               "where column_name in ('order_id', 'product_id', 'user_id', 'address_id')"))
    assert types == {"orders_snapshot.order_id": "VARCHAR", "products_snapshot.product_id": "VARCHAR",
                     "users_snapshot.user_id": "VARCHAR", "users_snapshot.address_id": "VARCHAR"}
    assert name(db.scalar(kept, "select address_id from users_snapshot where user_id = $u1", {"u1": uid("u1")})) == "a1"


def test_personal_data_never_enters_history(builder):
    build_shop, history = builder
    build_shop("first").close()
    kept = db.connect(history, read_only=True)
    for (table,) in db.rows(kept, "select table_name from information_schema.tables"):
        text = db.scalar(kept, f'select coalesce(string_agg(to_json(t)::varchar, \'\\n\'), \'\') from "{table}" as t')
        assert not [v for v in PERSONAL_VALUES if v in text], table


def test_the_chapter_lists_exactly_the_three_shipped_orders(builder, tmp_path):
    """Done when: a build, then one on a copy where three orders went from preparing to shipped."""
    from greenery.chapter_kit.contents import notebook_path
    from greenery.publisher.chapter_process import execute

    build_shop, _ = builder
    build_shop("first").close()
    build_shop("second", ship).close()
    chapter = execute(notebook_path("notebooks/what_changed"), tmp_path / "what_changed.ipynb",
                      {"warehouse": str(tmp_path / "w.duckdb")})
    shown = name("\n".join(str(output.get("data", {}).get(f"{prefix}text/html", ""))
                           + str(output.get("data", {}).get(f"{prefix}text/markdown", ""))
                           for cell in chapter.cells for output in cell.get("outputs", [])
                           for prefix in ("", "application/papermill.record/")))  # shown, and glued for the fold
    assert "**0 rows were added, 0 removed and 3 changed**: 3 orders changed status" in shown
    # the page shows the move and its count; the orders' ids only in the folded method
    move = re.search(r">Preparing</td>\s*<td[^>]*>Shipped</td>\s*<td[^>]*>3</td>\s*</tr>", shown)
    assert move, "the move preparing -> shipped, 3 orders"
    assert "- Preparing → Shipped: `o4`, `o5`, `o6`" in shown
    assert not any(f"`{order}`" in shown or f">{order}<" in shown for order in ("o1", "o2", "o3"))


def test_a_history_from_other_snapshots_is_refused_and_left_alone(builder):
    """A history written by an older definition (event ids as text) is never mixed with new versions."""
    from greenery.errors import HistoryError

    build_shop, history = builder
    con = db.connect(history)
    con.execute("create table events_snapshot (event_id varchar, row_hash varchar, data_kind varchar, "
                "valid_from timestamptz, valid_to timestamptz)")
    con.close()
    before = history.read_bytes()
    with pytest.raises(HistoryError, match="events_snapshot was written by another version of the snapshots"):
        build_shop("first")
    assert history.read_bytes() == before


def test_rebuilding_an_earlier_export_compares_with_the_build_in_between(builder, tmp_path):
    """report A, build B, report A: the last build shows B -> A, and chapters are keyed by the build."""
    from greenery.warehouse.build import built_identity

    build_shop, _ = builder
    build_shop("a").close()
    first = built_identity(tmp_path / "w.duckdb")
    build_shop("b", ship).close()
    con = build_shop("a")
    moves = name(db.rows(con, "select key, before->>'order_status', after->>'order_status' from history_changes "
                              "where snapshot = 'orders_snapshot' order by key"))
    assert moves == [("o4", "shipped", "preparing"), ("o5", "shipped", "preparing"), ("o6", "shipped", "preparing")]
    again = built_identity(tmp_path / "w.duckdb")
    assert again[0] == first[0] and again[1] != first[1]  # same export and code, another build: chapters rerun


def test_reuse_facts_are_the_identity_and_the_compared_builds_read_apart(builder, tmp_path):
    """`greenery report` reads both from one opening of the warehouse: the same answers as built_identity
    and compared_builds: build 3 (export a again), asked to compare with build 1, suits builds 1 and 3."""
    from greenery.warehouse.build import built_identity, reuse_facts
    from greenery.warehouse.history import compared_builds

    build_shop, _ = builder
    assert reuse_facts(tmp_path / "w.duckdb") == (None, set())  # no warehouse yet
    build_shop("a").close()
    build_shop("b", ship).close()
    build_shop("a", since=1).close()
    identity, suited = reuse_facts(tmp_path / "w.duckdb")
    assert identity == built_identity(tmp_path / "w.duckdb") and identity[1] == 3
    assert suited == compared_builds(tmp_path / "w.duckdb") == {1, 3}
    (tmp_path / "plain.duckdb").write_bytes(b"not a database")
    assert reuse_facts(tmp_path / "plain.duckdb") == (None, set())


def test_a_build_counts_the_exports_whose_metrics_it_can_compare(tmp_path):
    """`greenery build` looks for moved metrics only from two measured exports on: export a (1), export b (2),
    a again (still 2: a's metrics are recorded once)."""
    history = tmp_path / "history.duckdb"
    found = [build(DataSource(write_shop(tmp_path / name, edit), "test", None), tmp_path / "w.duckdb",
                   history=history).measured_exports for name, edit in (("a", None), ("b", ship), ("a", None))]
    assert found == [1, 2, 2]


def test_a_build_that_failed_to_publish_is_undone_and_not_compared_with(builder, tmp_path, monkeypatch):
    """The history never records a build whose warehouse was not moved in (here: the rename fails)."""
    from pathlib import Path

    build_shop, history = builder
    build_shop("a").close()
    real_replace = Path.replace

    def full_disk(self, target):
        if Path(target).name == "w.duckdb":
            raise OSError(28, "No space left on device")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", full_disk)
    with pytest.raises(OSError):
        build_shop("b", ship)
    monkeypatch.undo()
    kept = db.connect(history, read_only=True)
    assert db.rows(kept, "select build_id, state from builds order by build_id") == [(1, "published")]
    kept.close()
    con = build_shop("c", ship)
    assert db.scalar(con, "select count(*) from history_changes") == 3  # compared with a, not with b


def test_report_build_build_report_shows_what_changed_since_the_book(tmp_path, monkeypatch):
    """`report E`, `build E2` twice (as `make lab` does), `report E2`: the page compares with the build the
    first book showed, so it lists the two inventories E2 changed (build 3 alone changed nothing)."""
    import csv
    import shutil

    from greenery.outputs.ownership import read_stamp
    from greenery.publisher.run import publish, shown_build
    from greenery.sample import generate
    from greenery.warehouse.build import choose_data

    history = tmp_path / "history" / "h.duckdb"
    monkeypatch.setenv("GREENERY_HISTORY", str(history))
    first, second = tmp_path / "E", tmp_path / "E2"
    generate(first, 0.3, 42)
    shutil.copytree(first, second)
    products = second / "products.csv"
    rows = list(csv.DictReader(products.read_text().splitlines(keepends=True)))
    changed = {rows[0]["name"], rows[1]["name"]}
    for row in rows[:2]:
        row["inventory"] = str(int(row["inventory"]) + 7)
    eol = "\r\n" if "\r\n" in products.read_text() else "\n"
    with products.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator=eol)
        writer.writeheader()
        writer.writerows(rows)
    out, warehouse, log = tmp_path / "book", tmp_path / "w.duckdb", []
    publish(data_dir=first, out=out, warehouse=warehouse, log=log.append)
    assert shown_build(read_stamp(out)) == 1
    for _ in range(2):
        build(choose_data(second, log=log.append), warehouse)
    publish(data_dir=second, out=out, warehouse=warehouse, log=log.append)
    assert shown_build(read_stamp(out)) == 4  # rebuilt to compare with build 1
    page = (out / "notebooks" / "what_changed.html").read_text()
    with db.connect(history, read_only=True) as con:  # the page names the first book's build by its time
        first_book = fmt.moment(db.scalar(con, "select built_at from builds where build_id = 1"))
    assert f"Since the previous book (built {first_book})" in page and "0 rows were added, 0 removed and 2 changed" in page
    assert re.search(r">1</td>\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>compared with<", page)
    assert all(escape_html(n) in page for n in changed)
    summary = (out / "notebooks" / "summary.html").read_text()
    assert f"0 rows added, 0 removed and 2 changed since the previous book (built {first_book})" in summary


def escape_html(text: str) -> str:
    from greenery.chapter_kit import escape

    return escape.html(text)


def test_the_history_is_attached_before_the_checkpoint_and_checked_once_a_build(builder, monkeypatch):
    """Attaching the history while the checkpoint wrote the models waited for the checkpoint: it is attached
    first. And a history found ours when the build began, under the lock held since, is not opened again
    to check it (each check opens it in a DuckDB instance of its own)."""
    from greenery.outputs import ownership
    from greenery.warehouse import build as build_module

    build_shop, _ = builder
    build_shop("first").close()  # the history file exists from here on
    attached_then, checks = [], []
    checkpoint = build_module._checkpoint
    check = ownership.check_history

    def checkpoint_seeing(con):
        attached_then.append(db.rows(con, "select database_name from duckdb_databases() where database_name = 'history'"))
        checkpoint(con)

    monkeypatch.setattr(build_module, "_checkpoint", checkpoint_seeing)
    monkeypatch.setattr(ownership, "check_history", lambda *args: checks.append(args) or check(*args))
    from greenery.warehouse import history as history_module

    monkeypatch.setattr(history_module, "check_history", ownership.check_history)
    build_shop("second").close()
    assert attached_then == [[("history",)]]
    assert len(checks) == 1


@pytest.mark.parametrize("count", [0, 2])
def test_the_watch_findings_table_keeps_its_columns_and_rows(count):
    """export_watch, made with its rows in one statement: the same columns and types with no finding
    (a first build's fresh export finds none but freshness) as with some, every value kept."""
    from greenery.warehouse import history as history_module
    from greenery.warehouse.watch import Finding

    findings = [Finding("volume", "orders", "warn", "orders: 3 rows, 90 % fewer", 3, 30.0, 0.5),
                Finding("freshness", None, "ok", "fresh", None, None, None)][:count]
    con = db.connect()
    try:
        history_module._write_watch(con, findings)
        assert [(r[0], r[1]) for r in db.rows(con, "describe export_watch")] == [
            ("check_name", "VARCHAR"), ("subject", "VARCHAR"), ("status", "VARCHAR"), ("message", "VARCHAR"),
            ("value", "DOUBLE"), ("previous", "DOUBLE"), ("threshold", "DOUBLE")]
        assert db.rows(con, "select * from export_watch") == [
            ("volume", "orders", "warn", "orders: 3 rows, 90 % fewer", 3.0, 30.0, 0.5),
            ("freshness", None, "ok", "fresh", None, None, None)][:count]
    finally:
        con.close()


def test_a_build_runs_in_one_duckdb_instance_and_leaves_no_log(builder, monkeypatch):
    """The file being built is attached to the build's in-memory instance, and the same connection marks the
    build published: one DuckDB instance a build (each costs ~20 ms of CPU). Both files are whole when the
    build returns: no log beside the warehouse or the history, the build published in the history."""
    from greenery.warehouse import build as build_module

    opened = []
    connect = db.connect
    monkeypatch.setattr(db, "connect", lambda *args, **kwargs: opened.append(args) or connect(*args, **kwargs))
    build_shop, history = builder
    build_shop("first").close()
    warehouse = history.parent / "w.duckdb"
    assert opened == [(), (warehouse,)]  # the build's, in memory; then the test's own, read-only
    monkeypatch.setattr(db, "connect", connect)
    for path in (warehouse, history, build_module.config.building_path(warehouse)):
        assert not any(log.exists() for log in build_module.config.log_paths(path)), path
    kept = db.connect(history, read_only=True)
    assert db.rows(kept, "select build_id, state from builds") == [(1, "published")]
    kept.close()


def test_a_file_left_unwritten_by_its_detach_is_never_renamed(tmp_path):
    """DuckDB does not write a database it detaches while another connection reads it: its log stays beside
    it, and the file alone does not hold what was committed. _write says so rather than let it be renamed."""
    from greenery.warehouse.build import _cursor, _open, _write

    building = tmp_path / "x.duckdb"
    con = _open(building, None)
    try:
        db.run(con, "create table t as select 1 as a")
        reader = _cursor(con)  # reads the file being built by default, as `con` does
        db.run(reader, "begin transaction")
        assert db.rows(reader, "select a from t") == [(1,)]
        with pytest.raises(RuntimeError, match="left its log"):
            _write(con, building)
        reader.close()
    finally:
        con.close()
    assert db.rows(db.connect(building, read_only=True), "select a from t") == [(1,)]  # the log replayed


def test_the_instance_opened_beside_is_the_one_the_build_runs_in(builder, tmp_path):
    """greenery build opens its in-memory connection on a thread before its imports (db.connect_beside); the
    build takes it, attaches the file it builds to it and closes it; close_when_open after that is harmless."""
    from greenery.warehouse.build import build as build_warehouse

    instance = db.connect_beside()
    source = DataSource(write_shop(tmp_path / "export"), "test", None)
    result = build_warehouse(source, tmp_path / "beside.duckdb", history=tmp_path / "h.duckdb", instance=instance)
    assert result.summary["fail"] == 0
    with pytest.raises(db.duckdb.ConnectionException):
        instance.result().execute("select 1")  # closed by the build
    db.close_when_open(instance)
    assert db.scalar(db.connect(tmp_path / "beside.duckdb", read_only=True), "select count(*) from fct_orders") > 0


def test_a_build_failing_while_syncs_are_off_turns_them_on_before_closing(builder, monkeypatch):
    """From the history's commit to the warehouse's last checkpoint DuckDB's syncs are off (only the file being
    built is written then); a failure there closes the connection, which writes the history attached to it:
    syncs on first, so that the history's checkpoint is synced as always."""
    from greenery.warehouse import build as build_module

    build_shop, _ = builder
    statements = []
    run = db.run
    monkeypatch.setattr(db, "run", lambda con, sql, params=None: statements.append(sql) or run(con, sql, params))

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(build_module, "store_results", fail)
    with pytest.raises(OSError):
        build_shop("first")
    syncs = [sql for sql in statements if "fsync_mode" in sql]
    assert syncs[-2:] == ["set fsync_mode = 'none'", "set fsync_mode = 'standard'"]


def test_the_history_is_written_in_row_groups_of_row_group_rows_also_a_file_written_before(tmp_path):
    """A history file whose table was written with DuckDB's default row groups (130,000 rows: 122,880 and
    7,120) gains 40,000 rows through history.attach: they are stored as one row group of db.ROW_GROUP_ROWS
    (32,768) and one of the 7,232 left, in the file once committed (the log holds under a kibibyte, not the
    rows), and every row reads back."""
    from greenery.warehouse import history

    path = tmp_path / "history.duckdb"
    con = db.connect()
    db.run(con, "attach $path as before", {"path": str(path)})
    db.run(con, "create table before.t as select range as i from range(130000)")
    con.close()
    con = db.connect()
    try:
        history.attach(con, path, checked=True)
        db.run(con, "begin transaction")
        db.run(con, "insert into history.t select range + 130000 from range(40000)")
        db.run(con, "commit")
        assert db.rows(con, "select row_group_id, sum(count), bool_and(persistent) from pragma_storage_info('history.t') "
                            "where segment_type <> 'VALIDITY' group by all order by 1") == [
            (0, 122880, True), (1, 7120, True), (2, 32768, True), (3, 7232, True)]
        assert db.scalar(con, "select wal_size from pragma_database_size() where database_name = 'history'") \
            .endswith(" bytes")
        assert db.rows(con, "select count(*), sum(i) from history.t") == [(170000, 169999 * 170000 // 2)]
    finally:
        con.close()
