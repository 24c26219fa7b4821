"""Both engines mean the same thing: the hand-made shop and the scale-1 sample built on DuckDB and on
Spark give the same marts row for row, the same data-test results and JSON, the same history and
the same book; an error-level failure and an unreadable value stop a Spark build as they stop a
DuckDB one.

Needs pyspark and Java (`make spark-test` installs them); skipped, saying which is missing, without.
With $GREENERY_SPARK_CLUSTER naming a folder (`make spark-cluster-test`), the Spark builds run on a
standalone cluster on 127.0.0.1 (a master and a worker started from pyspark's own spark-class, their
logs and pid files in that folder), stopped when the session ends, also when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import tree_digest
from shop import uid, write_shop

from greenery import cli, config, db
from greenery.contract import ID_WANTED
from greenery.errors import ExitCode
from greenery.warehouse.build import DataSource
from greenery.warehouse.build import build as duckdb_build
from greenery.warehouse.engines.spark import SparkOptions, available
from greenery.warehouse.engines.spark import build as spark_build
from greenery.warehouse.manifest import load_manifest

pytestmark = pytest.mark.spark
MISSING = available()
if MISSING and os.environ.get("GREENERY_REQUIRE_SPARK"):  # `make spark-test`: Spark must run, not be skipped
    raise RuntimeError(f"make spark-test cannot run Spark: {MISSING}")
if MISSING:
    pytest.skip(f"Spark tests skipped: {MISSING}", allow_module_level=True)

EPOCH = "1700000000"  # both engines stamp their builds with the same time, so history and books compare
BUILT_AT = datetime.fromtimestamp(int(EPOCH), UTC)
MARTS = [m.name for m in load_manifest().build_order() if m.layer == "marts"]


class Built:
    """One export built on both engines, each with its own warehouse, history and (Spark) Parquet marts."""

    def __init__(self, root: Path, export: Path, master: str = "local[*]"):
        self.root, self.export, self.master = root, export, master
        self.duckdb = root / "duckdb" / "w.duckdb"
        self.spark = root / "spark" / "w.duckdb"
        self.marts = root / "spark" / "marts"

    def history(self, engine: str) -> Path:
        return self.root / engine / "history.duckdb"

    def build(self) -> Built:
        source = DataSource(self.export, "--data-dir", None)
        for path in (self.duckdb, self.spark):
            path.parent.mkdir(parents=True, exist_ok=True)
        duckdb_build(source, self.duckdb, history=self.history("duckdb"), built_at=BUILT_AT)
        self.result = spark_build(source, self.spark, SparkOptions(master=self.master, marts_dir=str(self.marts)),
                                  history=self.history("spark"), built_at=BUILT_AT)
        return self


@pytest.fixture(scope="session", autouse=True)
def pinned_build_time():
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    yield
    if before is None:
        os.environ.pop("SOURCE_DATE_EPOCH", None)
    else:
        os.environ["SOURCE_DATE_EPOCH"] = before


@pytest.fixture(scope="session")
def spark_master():
    """local[*]; or, with $GREENERY_SPARK_CLUSTER, a standalone cluster's master, stopped by its process
    ids when the session ends however it ends (the make target's trap stops it if pytest is killed)."""
    folder = os.environ.get("GREENERY_SPARK_CLUSTER")
    if not folder:
        yield "local[*]"
        return
    from greenery.tools import spark_cluster

    cluster = spark_cluster.start(Path(folder))
    try:
        yield cluster.url
    finally:
        with contextlib.suppress(Exception):
            from pyspark.sql import SparkSession

            if SparkSession.getActiveSession() is not None:  # the driver first: no executor left behind
                SparkSession.getActiveSession().stop()
        spark_cluster.stop(cluster)


@pytest.fixture(scope="session")
def shop_built(tmp_path_factory, pinned_build_time, spark_master) -> Built:
    root = tmp_path_factory.mktemp("engines-shop")
    return Built(root, write_shop(root / "export"), spark_master).build()


@pytest.fixture(scope="session")
def sample_built(tmp_path_factory, pinned_build_time, spark_master) -> Built:
    from greenery.sample import generate

    root = tmp_path_factory.mktemp("engines-sample")
    generate(root / "export", config.SAMPLE_SCALE, config.SAMPLE_SEED)
    return Built(root, root / "export", spark_master).build()


@pytest.fixture(params=["shop", "sample"])
def built(request) -> Built:
    return request.getfixturevalue(f"{request.param}_built")


def _differences(con, left: str, right: str) -> int:
    """Rows in one and not the other, as multisets (order-insensitive, duplicates counted)."""
    return db.scalar(con, f"select (select count(*) from ({left} except all {right})) "
                          f"+ (select count(*) from ({right} except all {left}))")


def _compare(built: Built):
    con = db.connect()
    db.run(con, "attach $path as d (read_only)", {"path": str(built.duckdb)})
    db.run(con, "attach $path as s (read_only)", {"path": str(built.spark)})
    return con


@pytest.mark.cluster
def test_every_mart_is_the_same_row_for_row(built):
    """The Parquet Spark wrote, cast to the types DuckDB gives each column, equals DuckDB's mart; and
    so does the warehouse table made from it. Timestamps are UTC instants on both sides."""
    con = _compare(built)
    for mart in MARTS:
        columns = db.rows(con, "select column_name, data_type from information_schema.columns "
                               "where table_catalog = 'd' and table_name = $t order by ordinal_position", {"t": mart})
        cast = ", ".join(f'"{name}"::{kind}' for name, kind in columns)
        files = str(built.marts / mart / "*.parquet")
        db.run(con, f"create temp table parquet_{mart} as select {cast} from read_parquet($files)", {"files": files})
        duck, rows = f"(select * from d.{mart})", db.scalar(con, f"select count(*) from d.{mart}")
        assert rows > 0, f"{mart} is empty: the comparison would prove nothing"
        assert db.scalar(con, f"select count(*) from parquet_{mart}") == rows, mart
        assert _differences(con, duck, f"(select * from parquet_{mart})") == 0, f"{mart}: Parquet differs"
        assert _differences(con, duck, f"(select * from s.{mart})") == 0, f"{mart}: warehouse table differs"
        spark_columns = db.rows(con, "select column_name, data_type from information_schema.columns "
                                     "where table_catalog = 's' and table_name = $t order by ordinal_position",
                                {"t": mart})
        assert spark_columns == columns, mart


@pytest.mark.cluster
def test_the_tables_the_chapters_read_besides_marts_are_the_same(built):
    con = _compare(built)
    # A DuckDB build leaves views uncounted (the marts chapter counts them in the warehouse); a Spark
    # build's warehouse holds no staging or intermediate views, so it counts every model itself.
    assert db.scalar(con, "select count(*) from d.model_runs where row_count is null") > 0
    assert db.scalar(con, "select count(*) from s.model_runs where row_count is null") == 0
    for model, folder, materialized, rows in db.rows(con, "select * from d.model_runs"):
        counted = rows if rows is not None else db.scalar(con, f"select count(*) from d.{model}")
        assert db.rows(con, "select folder, materialized, row_count from s.model_runs where model = $m",
                       {"m": model}) == [(folder, materialized, counted)], model
    for table in ("data_test_results", "raw_row_counts", "history_builds", "history_changes"):
        assert _differences(con, f"(select * from d.{table})", f"(select * from s.{table})") == 0, table
    shown = "data_kind, data_label, data_dir, built_at, first_event_at, last_event_at, first_order_at, " \
            "last_order_at, rows_read"
    assert _differences(con, f"(select {shown} from d.build_info)", f"(select {shown} from s.build_info)") == 0
    for table in ("orders_snapshot", "products_snapshot", "users_snapshot", "events_snapshot", "builds"):
        db.run(con, "attach if not exists $path as hd (read_only)", {"path": str(built.history("duckdb"))})
        db.run(con, "attach if not exists $path as hs (read_only)", {"path": str(built.history("spark"))})
        assert db.scalar(con, f"select count(*) from hd.{table}") > 0, table
        mine = "* exclude (warehouse)" if table == "builds" else "*"  # each engine's own warehouse path
        assert _differences(con, f"(select {mine} from hd.{table})", f"(select {mine} from hs.{table})") == 0, table


@pytest.mark.cluster
def test_data_test_results_and_json_are_the_same(built):
    duck = json.loads(config.run_results_path(built.duckdb).read_text())
    spark = json.loads(config.run_results_path(built.spark).read_text())
    assert spark["results"] == duck["results"]
    assert spark["summary"] == duck["summary"]
    assert spark["build"]["engine"] == "spark" and spark["build"]["marts_dir"] == str(built.marts)


def test_the_sample_warns_on_both_engines_with_the_same_keys(sample_built):
    """The sample has warn-level findings: the keys listed (first five, sorted) must agree, not just the count."""
    duck = json.loads(config.run_results_path(sample_built.duckdb).read_text())["results"]
    warned = [r for r in duck if r["status"] == "warn"]
    assert warned, "the sample should trip at least one warn-level test"
    spark = {r["name"]: r for r in json.loads(config.run_results_path(sample_built.spark).read_text())["results"]}
    for result in warned:
        assert spark[result["name"]]["failing_keys"] == result["failing_keys"]


def _duplicate_order(rows):
    rows["orders"].append(dict(rows["orders"][0]))


def test_an_error_level_failure_stops_a_spark_build_as_on_duckdb(shop_built, tmp_path, capsys):
    broken = write_shop(tmp_path / "broken", edit=_duplicate_order)
    warehouse_before, marts_before = shop_built.spark.read_bytes(), tree_digest(shop_built.marts)
    code = cli.main(["build", "--engine", "spark", "--data-dir", str(broken), "--warehouse", str(shop_built.spark),
                     "--marts-dir", str(shop_built.marts)])
    out = capsys.readouterr()
    assert code == ExitCode.DATA_TEST_FAILED
    assert f"FAIL unique_stg_orders_order_id (stg_orders): 1 row, e.g. {uid('o1')}" in out.out
    assert "the previous warehouse" in out.err
    assert shop_built.spark.read_bytes() == warehouse_before
    assert tree_digest(shop_built.marts) == marts_before
    assert shop_built.spark.with_name("w.rejected.duckdb").is_file()
    # The same failures, with the same keys, as DuckDB finds in the same export.
    spark = json.loads(config.run_results_path(shop_built.spark).read_text())["results"]
    duck_warehouse = tmp_path / "duck" / "w.duckdb"
    duck_warehouse.parent.mkdir()
    assert cli.main(["build", "--data-dir", str(broken), "--warehouse", str(duck_warehouse)]) == 1
    assert json.loads(config.run_results_path(duck_warehouse).read_text())["results"] == spark


@pytest.mark.parametrize(("table", "row", "column", "written", "shown", "wanted"), [
    ("products", 1, "price", "twelve", "twelve", "DECIMAL(12,2)"),
    ("orders", 2, "user_id", "raw:no-such-user", "no-such-user", ID_WANTED),  # ids are UUIDs
    # Spark's casts round as DuckDB's do: a number must be one its type holds exactly.
    ("products", 1, "inventory", "56.6", "56.6", "INTEGER: a whole number is expected (a fraction is never rounded)"),
    ("products", 2, "inventory", "4e1", "4e1", "INTEGER: exponent notation; write the plain number"),
    ("promos", 1, "discount", "2.004", "2.004", "DECIMAL(12,2): at most 2 decimals (more are never rounded)"),
    ("orders", 0, "order_total", "1e2", "1e2", "DECIMAL(12,2): exponent notation; write the plain number"),
])
def test_an_unreadable_value_is_refused_as_on_duckdb(tmp_path, capsys, table, row, column, written, shown, wanted):
    """Spark names the file, the column and the value; DuckDB the line too."""
    export = write_shop(tmp_path / "export", edit=lambda rows: rows[table][row].update({column: written}))
    code = cli.main(["build", "--engine", "spark", "--data-dir", str(export),
                     "--warehouse", str(tmp_path / "w.duckdb"), "--marts-dir", str(tmp_path / "marts")])
    assert code == ExitCode.BAD_INPUT
    where = f"column '{column}': cannot read '{shown}' as {wanted}"
    assert capsys.readouterr().err.strip() == f"error: {export / f'{table}.csv'}: {where}"
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "marts").exists()
    assert cli.main(["build", "--data-dir", str(export), "--warehouse", str(tmp_path / "d.duckdb")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {export / f'{table}.csv'}:{row + 2}: {where}"


def test_a_record_longer_than_the_limit_is_refused_at_its_line_as_on_duckdb(tmp_path, capsys, monkeypatch):
    export = write_shop(tmp_path / "export", edit=lambda rows: rows["events"][0].update(page_url="x" * 300))
    monkeypatch.setenv("GREENERY_MAX_RECORD_BYTES", "250")
    expected = f"error: {export / 'events.csv'}:2: a record of "
    code = cli.main(["build", "--engine", "spark", "--data-dir", str(export),
                     "--warehouse", str(tmp_path / "w.duckdb"), "--marts-dir", str(tmp_path / "marts")])
    assert code == ExitCode.BAD_INPUT
    assert capsys.readouterr().err.startswith(expected)
    assert cli.main(["build", "--data-dir", str(export), "--warehouse", str(tmp_path / "d.duckdb")]) == 2
    assert capsys.readouterr().err.startswith(expected)


def test_a_refused_value_from_a_file_with_personal_data_is_never_quoted(tmp_path, capsys):
    export = write_shop(tmp_path / "export", edit=lambda rows: rows["users"][1].update(address_id="raw:201-555-0199"))
    code = cli.main(["build", "--engine", "spark", "--data-dir", str(export),
                     "--warehouse", str(tmp_path / "w.duckdb"), "--marts-dir", str(tmp_path / "marts")])
    assert code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "201-555-0199" not in err and "not shown: the file holds personal data" in err


UUID_FORMS = ["123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000",
              "{123e4567-e89b-12d3-a456-426614174000}", "123e4567e89b12d3a456426614174000",
              "123e-4567e89b12d3a456426614174000-", "{123e4567e89b12d3a456426614174000",
              " 123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-42661417400",
              "123e4567-e89b-12d3-a456-4266141740000", "123e4567-e89b-12d3-a456-426614174000\n",
              "123e4567e89b12d3a456426614174000\r\n", "{123e4567-e89b-12d3-a456-426614174000}\n",
              "123e4567-e89b-12d3-a456-426614174000\u2028", "123e4567-e89b-12d3-a456-426614174000\x85",
              "123g4567-e89b-12d3-a456-426614174000", "{}", "-", "no-such-user", "\ufeff123e4567e89b12d3a456426614174000"]


def test_spark_reads_exactly_the_ids_duckdb_reads_and_writes_them_alike():
    from greenery.warehouse.engines.spark import SparkOptions, _uuid_text, session

    spark = session(SparkOptions())
    frame = spark.createDataFrame([(v,) for v in UUID_FORMS], "v string")
    spark_ids = {row.v: row.id for row in frame.select("v", _uuid_text(frame.v).alias("id")).collect()}
    con = db.connect()
    duck_ids = dict(db.rows(con, "select v, try_cast(v as uuid)::varchar from unnest($v) as t(v)", {"v": UUID_FORMS}))
    assert spark_ids == duck_ids
    assert sum(v is not None for v in duck_ids.values()) == 5  # the first five forms are one id


def test_both_engines_can_share_one_history(shop_built, tmp_path):
    """The history keeps ids as text whichever engine wrote it: a DuckDB build, then a Spark build
    of the same export on the same history, finds nothing changed (and is not refused)."""
    source, history = DataSource(shop_built.export, "--data-dir", None), tmp_path / "history.duckdb"
    duckdb_build(source, tmp_path / "d.duckdb", history=history, built_at=BUILT_AT)
    spark_build(source, tmp_path / "s.duckdb", SparkOptions(marts_dir=str(tmp_path / "marts")), history=history)
    con = db.connect(tmp_path / "s.duckdb", read_only=True)
    assert db.scalar(con, "select count(*) from history_builds") == 2
    assert db.scalar(con, "select count(*) from history_changes") == 0


def test_an_id_in_another_form_is_the_same_id_on_both_engines(tmp_path):
    """DuckDB reads a UUID in capitals, in braces or with its dashes moved; Spark must read it as the
    same id, written back as DuckDB writes it (lowercase 8-4-4-4-12), or joins would differ."""
    def other_forms(rows):
        rows["orders"][0]["order_id"] = "raw:{" + uid("o1").upper() + "}"  # o1 in capitals and braces
        rows["order_items"][0]["order_id"] = "raw:" + uid("o1").replace("-", "")  # o1 without dashes

    built = Built(tmp_path, write_shop(tmp_path / "export", edit=other_forms)).build()
    con = _compare(built)
    for mart in ("fct_orders", "fct_order_items"):
        assert _differences(con, f"(select * from d.{mart})", f"(select * from s.{mart})") == 0, mart
    assert db.scalar(con, "select items_amount_usd from s.fct_orders where order_id = $o1", {"o1": uid("o1")}) == 20


def test_a_missing_column_is_named_as_on_duckdb(tmp_path, capsys):
    export = write_shop(tmp_path / "export")
    text = (export / "orders.csv").read_text().replace("order_total", "total", 1)
    (export / "orders.csv").write_text(text)
    code = cli.main(["build", "--engine", "spark", "--data-dir", str(export), "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == ExitCode.BAD_INPUT
    assert "orders.csv:1: column 'order_total': expected column is missing from the header" in capsys.readouterr().err


def test_an_offset_no_time_zone_has_is_refused_as_on_duckdb(tmp_path, capsys):
    """DuckDB refuses `+02:99` at its line (it would read +03:39); Spark must not convert it either."""
    export = write_shop(tmp_path / "export",
                        edit=lambda rows: rows["orders"][0].update(created_at="2021-02-10T11:00:00+02:99"))
    code = cli.main(["build", "--engine", "spark", "--data-dir", str(export),
                     "--warehouse", str(tmp_path / "w.duckdb"), "--marts-dir", str(tmp_path / "marts")])
    assert code == ExitCode.BAD_INPUT
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {export / 'orders.csv'}: column 'created_at': cannot read '2021-02-10T11:00:00+02:99'")
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "marts").exists()


def test_offset_timestamps_are_converted_to_utc_as_on_duckdb(tmp_path):
    def offset(rows):
        rows["orders"][0]["created_at"] = "2021-02-10T11:00:00+02:00"  # 09:00 UTC, as in the shop

    built = Built(tmp_path, write_shop(tmp_path / "export", edit=offset)).build()
    con = _compare(built)
    assert _differences(con, "(select * from d.fct_orders)", "(select * from s.fct_orders)") == 0
    assert str(db.scalar(con, "select created_at from s.fct_orders where order_id = $o1",
                                  {"o1": uid("o1")})) == "2021-02-10 09:00:00"


@pytest.mark.slow
def test_a_book_built_with_each_engine_has_the_same_figures(sample_built):
    """`greenery report --engine spark` publishes the same book as DuckDB: every page, byte for byte
    (the Spark warehouse above is reused: same export, same code)."""
    from greenery.publisher.run import publish

    books = {}
    for engine, warehouse in (("duckdb", sample_built.duckdb), ("spark", sample_built.spark)):
        out, log = sample_built.root / engine / "book", []
        spark = SparkOptions(marts_dir=str(sample_built.marts)) if engine == "spark" else None
        publish(data_dir=sample_built.export, out=out, warehouse=warehouse, engine=engine, spark=spark,
                built_at=BUILT_AT, log=lambda *parts, log=log: log.append(" ".join(map(str, parts))))
        assert any("reusing" in line for line in log), log  # the build above, not a second one
        books[engine] = {path.relative_to(out): path.read_bytes() for path in sorted(out.rglob("*.html"))}
    assert len(books["duckdb"]) >= 9
    assert books["spark"].keys() == books["duckdb"].keys()
    differing = [str(page) for page in books["duckdb"] if books["duckdb"][page] != books["spark"][page]]
    assert not differing


@pytest.mark.cluster
def test_a_spark_build_runs_one_job_per_mart_and_one_for_every_check_and_test(built):
    """No count per model, no job per test: each mart's Parquet written (a job each), then one job
    checks the raw tables, counts the other models and runs every data test. Recorded and printed."""
    timings = json.loads(config.run_results_path(built.spark).read_text())["build"]["timings"]
    assert timings["spark jobs"] == len(MARTS) + 1
    assert built.result.timings["spark jobs"] == len(MARTS) + 1


def test_a_file_spark_cannot_parse_is_named_as_on_duckdb(tmp_path, capsys):
    """A record with a field too many fails the first Spark job that reads it (a mart's): the tables
    are then checked one by one, so the file is named, not the model (exit 2, nothing written)."""
    export = write_shop(tmp_path / "export")
    lines = (export / "orders.csv").read_text().splitlines(keepends=True)
    lines[2] = lines[2].rstrip("\n") + ",surplus\n"
    (export / "orders.csv").write_text("".join(lines))
    code = cli.main(["build", "--engine", "spark", "--data-dir", str(export),
                     "--warehouse", str(tmp_path / "w.duckdb"), "--marts-dir", str(tmp_path / "marts")])
    assert code == ExitCode.BAD_INPUT
    assert capsys.readouterr().err.startswith(f"error: {export / 'orders.csv'}: cannot be read as CSV")
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "marts").exists()


def test_the_class_archive_is_named_for_what_makes_it_and_replaces_only_its_own(tmp_path, monkeypatch):
    """The JVMs' class archive: one per Java, pyspark and JVM options; a stale archive of ours is
    removed when a new one is to be written, one in use is kept, other files are never touched, and
    a path Spark would split at a space is not used at all."""
    from greenery.warehouse.engines import spark as engine

    folder = tmp_path / "spark-classes"
    monkeypatch.setattr(engine, "CLASS_ARCHIVE_DIR", folder)
    archive = engine.class_archive()
    assert archive is not None and archive.parent == folder and not archive.exists()
    assert archive.name.startswith("classes-") and archive.suffix == ".jsa"
    stale, notes = folder / "classes-0000000000000000.jsa", folder / "notes.txt"
    stale.write_bytes(b"stale")
    notes.write_text("not ours")
    assert engine.class_archive() == archive  # still to be written: the stale one goes
    assert not stale.exists() and notes.exists()
    archive.write_bytes(b"archive")
    stale.write_bytes(b"stale")
    assert engine.class_archive() == archive  # written: used as it is, nothing removed
    assert stale.exists() and archive.read_bytes() == b"archive"
    monkeypatch.setattr(engine, "JVM_OPTIONS", engine.JVM_OPTIONS + " -Xss4m")
    assert engine.class_archive() not in (None, archive)  # other JVM options: another archive
    monkeypatch.setattr(engine, "CLASS_ARCHIVE_DIR", tmp_path / "a folder")
    assert engine.class_archive() is None and not (tmp_path / "a folder").exists()


def test_a_class_archive_already_written_is_used_as_it_is(tmp_path, monkeypatch):
    """write_class_archive (the cluster's helper calls it before its daemons start) builds nothing
    when the archive is there, and nothing when no archive can be kept (a path with a space)."""
    import subprocess

    from greenery.warehouse.engines import spark as engine

    def no_build(*args, **kwargs):
        raise AssertionError("no Spark build was wanted")

    monkeypatch.setattr(subprocess, "Popen", no_build)
    monkeypatch.setattr(engine, "CLASS_ARCHIVE_DIR", tmp_path / "spark-classes")
    archive = engine.class_archive()
    archive.write_bytes(b"archive")
    assert engine.write_class_archive() == archive and archive.read_bytes() == b"archive"
    monkeypatch.setattr(engine, "CLASS_ARCHIVE_DIR", tmp_path / "a folder")
    assert engine.write_class_archive() is None


def test_what_a_query_reads_is_planned_as_kept_rows_never_as_its_lineage(shop_built, spark_master, tmp_path):
    """Every raw table and model a build makes is kept as rows: a query reading one plans a scan of
    those rows (a LogicalRDD), never the model's lineage down to a CSV's read and its typing
    expressions (which every mart's query and the checking job used to analyse and optimise again)."""
    from greenery.warehouse.engines.spark import build_models, duckdb_schemas, read_export, session
    from greenery.warehouse.manifest import spark_sql

    spark = session(SparkOptions(master=spark_master))
    manifest = load_manifest()
    read_export(spark, shop_built.export)
    build_models(spark, manifest, spark_sql(manifest), str(tmp_path / "marts"), duckdb_schemas(manifest))
    for name in ["raw_orders", *(model.name for model in manifest.build_order())]:
        leaves = spark.sql(f"select * from {name}")._jdf.queryExecution().analyzed().collectLeaves()
        assert {leaves.apply(i).nodeName() for i in range(leaves.size())} == {"LogicalRDD"}, name
