"""`greenery build --engine spark`: the same models and data tests on Apache Spark, marts as Parquet.

The build, step by step (the DuckDB build's steps, on another engine):

1. **Load**: each raw CSV is read from a path or URI Spark understands (a local folder, or
   `s3a://`, `abfss://`, `hdfs://` configured through Spark) with every column as text, then cast to
   the raw contract's type (src/greenery/contract.py; no inference). A value that does not parse, or
   a number its type does not hold exactly (Spark's casts round too), is refused (exit 2) naming the
   file, the column and the value; timestamps with a UTC offset are converted to UTC with a warning,
   as on DuckDB. A local file's records are counted by the DuckDB loader's own pass: one longer than
   the limit is refused at its line, and the rows read must be all the file's records.
2. **Models**: every model's DuckDB SQL is transpiled to Spark SQL by sqlglot (greenery.engines.transpile)
   and registered as a temporary view, in the manifest's build order. Each mart is cast to the
   column types DuckDB gives the same SQL (found by running the models on empty raw tables) and
   written as Parquet, so both engines' marts have one schema.
3. **Warehouse**: the DuckDB file the report reads is made from the Parquet marts, plus the tables
   the chapters read besides (model_runs, build_info, raw_row_counts, data_test_results and the
   history's tables), exactly as the DuckDB build makes them.
4. **Data tests** run on Spark (same SQL, same severities, same JSON) while the history is recorded;
   an error-level failure stops the build (exit 1) and keeps the previous warehouse and marts.

pyspark is optional (`requirements-spark.txt`, `make spark-test`): nothing here imports it until a
Spark build starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from greenery import config, db
from greenery.contract import ID, RAW_TABLES, RawTable, number_problem, plain_number, wanted
from greenery.errors import DataTestFailure, ExitCode, GreeneryError, InputError, UsageError
from greenery.outputs import atomic, fingerprint, ownership
from greenery.outputs.locking import exclusive
from greenery.outputs.ownership import check_warehouse_target
from greenery.warehouse.build import BuildResult, DataSource, _store_build_info, _timed, export_facts, headline_measures
from greenery.warehouse.datatests import MAX_FAILING_KEYS, TestResult, store_results, summarize, write_json
from greenery.warehouse.engines.transpile import raw_view
from greenery.warehouse.history import forget, mark_published, record_build
from greenery.warehouse.load import LoadReport, _check_header, count_file_records, read_header, shown_value
from greenery.warehouse.manifest import DataTest, Manifest, ManifestError, load_manifest, spark_sql

DEFAULT_MASTER = "local[*]"
TIMESTAMP_PATTERN = "yyyy-MM-dd'T'HH:mm:ssXXX"  # Z or an offset such as +02:00; a zoneless time is refused
# The DuckDB build reads these staging views for the history and build_info; the Spark build's
# warehouse holds marts only, so each is read from the mart with the same grain and the columns used.
SNAPSHOT_SOURCES = {"stg_orders": "fct_orders", "stg_products": "dim_products", "stg_users": "dim_users",
                    "stg_events": "fct_events"}


class SparkUnavailable(GreeneryError):
    """pyspark or Java is missing: `--engine spark` cannot be used here (exit 2); the message says what to install."""

    exit_code = ExitCode.BAD_INPUT


@dataclass(frozen=True)
class SparkOptions:
    master: str = DEFAULT_MASTER
    marts_dir: str | None = None  # default: beside the warehouse (config.marts_path)
    conf: dict[str, str] = field(default_factory=dict)  # extra Spark settings, e.g. for s3a:// credentials


def is_uri(location: str | os.PathLike) -> bool:
    return "://" in str(location)


def _join(folder: str | os.PathLike, name: str) -> str:
    return f"{str(folder).rstrip('/')}/{name}" if is_uri(folder) else str(Path(folder) / name)


def uri_source(uri: str) -> DataSource:
    """An export that lives where only Spark reads it (s3a://, abfss://, hdfs://): taken as given."""
    return DataSource(uri, "--data-dir", None)  # type: ignore[arg-type]  # a URI, not a local Path


def available() -> str | None:
    """None when a Spark build can start here, else what to install (for skips and messages)."""
    try:
        with warnings.catch_warnings():  # pyspark warns that it does not support pandas 3; no pandas is used here
            warnings.simplefilter("ignore", FutureWarning)
            import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: `make spark-test` installs requirements-spark.txt into .venv"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "Java is missing: install a JRE 17 (Debian: `apt-get install openjdk-17-jre-headless`)"
    return None


def session(options: SparkOptions):
    """The Spark session: UTC, ANSI SQL, no web UI; small shuffles when local."""
    missing = available()
    if missing:
        raise SparkUnavailable(missing)
    with warnings.catch_warnings():  # pyspark warns that it does not support pandas 3; no pandas is used here
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql import SparkSession

    builder = (SparkSession.builder.master(options.master).appName("greenery")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "true")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"))
    if options.master.startswith("local"):  # one machine: few shuffle partitions, and only the loopback address
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (builder.config("spark.sql.shuffle.partitions", str(max(2, 2 * (os.cpu_count() or 1))))
                   .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1"))
    for key, value in options.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# --- types: DuckDB's names and Spark's


def spark_type(duckdb_type: str) -> str:
    """The Spark type whose Parquet DuckDB reads back as `duckdb_type` (or casts losslessly to it)."""
    upper = duckdb_type.upper()
    if upper.startswith("DECIMAL"):
        return upper.lower()
    # Spark has no UUID type: an id travels as its canonical text (see _uuid_text) and is cast back.
    simple = {"VARCHAR": "string", "UUID": "string", "BIGINT": "bigint", "HUGEINT": "bigint", "INTEGER": "int",
              "SMALLINT": "smallint", "DOUBLE": "double", "FLOAT": "float", "BOOLEAN": "boolean",
              "TIMESTAMP": "timestamp_ntz", "DATE": "date"}
    if upper not in simple:
        raise ManifestError(f"no Spark type for DuckDB's {duckdb_type}")
    return simple[upper]


def _uuid_text(source):
    """A UUID as DuckDB reads one (hex digits, dashes anywhere, optionally in braces), written as
    DuckDB writes it back: lowercase 8-4-4-4-12. Null when the text is not a UUID."""
    from pyspark.sql import functions as F

    # \A and \z, not ^ and $: Java's $ also matches before a final line break, which DuckDB refuses.
    digits = F.regexp_replace(F.regexp_replace(source, r"\A\{(.*)\}\z", "$1"), "-", "")
    groups = [F.substring(digits, start, length) for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    return F.when(digits.rlike(r"\A[0-9a-fA-F]{32}\z"), F.lower(F.concat_ws("-", *groups)))


def duckdb_schemas(manifest: Manifest) -> dict[str, list[tuple[str, str]]]:
    """Each model's columns and DuckDB types, from DuckDB itself: the models as views over empty raw tables."""
    con = db.connect()
    try:
        db.run(con, "create schema raw")
        for table in RAW_TABLES:
            columns = ", ".join(f'"{c.name}" {c.type}' for c in table.columns)
            db.run(con, f"create table raw.{table.name} ({columns})")
        for model in manifest.build_order():
            db.run(con, f"create view {model.name} as {model.sql}")
        return {model.name: [tuple(row) for row in db.rows(
                    con, "select column_name, data_type from information_schema.columns "
                         "where table_name = $name order by ordinal_position", {"name": model.name})]
                for model in manifest.build_order()}
    finally:
        con.close()


# --- load


def _read_table(spark, table: RawTable, path: str, report: LoadReport):
    """raw_<table> as a persisted DataFrame typed by the contract; InputError for what cannot be used."""
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    reader = (spark.read.option("header", True).option("multiLine", True).option("quote", '"')
              .option("escape", '"').option("encoding", "UTF-8").option("mode", "FAILFAST"))
    if is_uri(path):  # the header is read by Spark: every column as text, named as the header names it
        text = reader.option("inferSchema", False).csv(path)
        header = [name.removeprefix("\ufeff").strip() for name in text.columns]
        text = text.toDF(*header)
        if not header:
            raise InputError(path, 1, None, "the file is empty: expected a header row")
    else:  # the header is checked as the DuckDB loader checks it; Spark is told every column is text
        from pyspark.sql.types import StringType, StructField, StructType

        if not Path(path).is_file():
            raise InputError(path, None, None, "the file is missing from the export")
        header = read_header(Path(path))
        text = reader.schema(StructType([StructField(name, StringType()) for name in header])).csv(path)
    _check_header(table, Path(path), header, report)

    records = None if is_uri(path) else count_file_records(Path(path))
    typed, texts, checks = [], [], []
    for column in table.columns:
        source = F.col(f"`{column.name}`")
        if column.type == "VARCHAR":
            typed.append(source.alias(column.name))
            continue
        if column.type == "TIMESTAMP":
            value = F.try_to_timestamp(source, F.lit(TIMESTAMP_PATTERN)).cast("timestamp_ntz")
        elif column.type == ID:
            value = _uuid_text(source)
        elif plain_number(column.type):  # the cast would round 56.6 and read 4e1: only plain numbers it holds
            value = F.when(source.rlike(rf"\A(?:{plain_number(column.type)})\z"),
                           source.try_cast(spark_type(column.type)))
        else:
            value = source.try_cast(spark_type(column.type))
        typed.append(value.alias(column.name))
        texts.append(source.alias(f"text {column.name}"))
    # One pass over the file: the typed rows are kept (models read them several times) beside the
    # text of the typed columns, which the checks compare them with.
    wide = text.select(*typed, *texts).persist()
    for column in table.columns:
        if column.type == "VARCHAR":
            continue
        value, source = F.col(f"`{column.name}`"), F.col(f"`text {column.name}`")
        checks.append(F.min(F.when(source.isNotNull() & value.isNull(), source)).alias(f"bad {column.name}"))
        if column.type == "TIMESTAMP":
            offset = value.isNotNull() & ~source.endswith("Z")
            checks.append(F.sum(offset.cast("int")).alias(f"offset {column.name}"))
    try:
        found = wide.agg(F.count(F.lit(1)).alias("rows"), *checks).collect()[0].asDict()
    except PySparkException as error:
        wide.unpersist()
        reason = str(error).strip().splitlines()[0][:200]
        raise InputError(path, None, None, f"cannot be read as CSV: {reason}") from None
    for column in table.columns:
        bad = found.get(f"bad {column.name}")
        if bad is not None:
            shown = shown_value(bad, quote=not table.personal)
            what = "a timestamp like 2021-02-11T23:30:33Z (UTC, or with an offset)" if column.type == "TIMESTAMP" \
                else wanted(column.type) + number_problem(column.type, bad)
            wide.unpersist()
            raise InputError(path, None, column.name, f"cannot read {shown} as {what}")
        if found.get(f"offset {column.name}"):
            report.warnings.append(f"{path}: column '{column.name}': {found[f'offset {column.name}']:,} timestamp(s) "
                                   "carry a UTC offset instead of Z; converted to UTC")
    if records is not None and int(found["rows"]) != records.count - 1:
        wide.unpersist()
        raise InputError(path, None, None, f"the file holds {records.count - 1:,} records but {found['rows']:,} "
                                           "were read")
    report.rows[table.name] = int(found["rows"])
    raw = wide.select(*table.column_names)
    raw.createOrReplaceTempView(raw_view(table.name))
    return raw


def load_export(spark, data_dir: str | os.PathLike) -> LoadReport:
    if not is_uri(data_dir) and not Path(data_dir).is_dir():
        raise InputError(data_dir, None, None, "no such folder: expected the export's seven CSV files here")
    report = LoadReport(data_dir=data_dir)  # type: ignore[arg-type]  # a URI is kept as text
    for table in RAW_TABLES:
        _read_table(spark, table, _join(data_dir, table.file_name), report)
    return report


# --- models


def build_models(spark, manifest: Manifest, translated: dict[str, str], marts: str,
                 schemas: dict[str, list[tuple[str, str]]]) -> dict[str, int | None]:
    """Every model as a Spark view in build order; each mart cast to DuckDB's types and written as
    Parquet under `marts`, then read back from there (a mart is computed once, as a DuckDB table is).
    Returns every model's row count."""
    from pyspark.sql import functions as F

    rows: dict[str, int | None] = {}
    for model in manifest.build_order():
        frame = spark.sql(translated[model.name])
        expected = [name for name, _ in schemas[model.name]]
        if [c.lower() for c in frame.columns] != [c.lower() for c in expected]:
            raise ManifestError(f"{model.path}: Spark gives columns {frame.columns}, DuckDB {expected}")
        if model.layer == "marts":
            frame = frame.select(*[F.col(f"`{got}`").cast(spark_type(kind)).alias(name)
                                   for got, (name, kind) in zip(frame.columns, schemas[model.name], strict=True)])
            path = _join(marts, model.name)
            frame.write.mode("overwrite").parquet(path)
            frame = spark.read.parquet(path)
        elif model.materialized == "table":
            frame = frame.persist()
        frame.createOrReplaceTempView(model.name)
        # Every model is counted, views too: the warehouse holds only the marts, so the chapters, which
        # count a view themselves when model_runs has no count for it, could not count these.
        rows[model.name] = frame.count()
    return rows


def _copy_marts(con: duckdb.DuckDBPyConnection, manifest: Manifest, marts: str,
                schemas: dict[str, list[tuple[str, str]]], rows: dict[str, int | None]) -> None:
    """The marts into the DuckDB warehouse from their Parquet files, typed as the DuckDB build types
    them; then `model_runs` as the DuckDB build writes it."""
    for model in manifest.build_order():
        if model.layer != "marts":
            continue
        columns = ", ".join(f'"{name}"::{kind} as "{name}"' for name, kind in schemas[model.name])
        db.run(con, f"create table {model.name} as select {columns} from read_parquet($files)",
               {"files": _join(_join(marts, model.name), "*.parquet")})
    for staging, mart in SNAPSHOT_SOURCES.items():
        db.run(con, f"create temp view {staging} as select * from {mart}")
    db.run(con, "create or replace table model_runs (model varchar, folder varchar, materialized varchar, "
                "row_count bigint)")
    con.executemany("insert into model_runs values (?, ?, ?, ?)",
                    [(name, manifest.models[name].folder, manifest.models[name].materialized, n)
                     for name, n in rows.items()])


# --- data tests


def run_test(spark, test: DataTest, sql: str) -> TestResult:
    """One data test on Spark: the failing rows' count and the first keys, as DuckDB reports them
    (keys as text, sorted, nulls last)."""
    from pyspark.sql import functions as F

    args = {name: F.array(*[F.lit(v) for v in values]) for name, values in test.params.items()}
    failing = spark.sql(sql, args=args or None)
    keys = failing.toDF(*[f"c{i}" for i in range(len(failing.columns))]).select(F.col("c0").cast("string").alias("k"))
    count = keys.count()
    first = [row.k for row in keys.orderBy(F.col("k").asc_nulls_last()).limit(MAX_FAILING_KEYS).collect()] \
        if count else []
    status = "pass" if count == 0 else ("fail" if test.severity == "error" else "warn")
    return TestResult(test.name, test.kind, test.model, test.column, test.severity, test.rationale,
                      status, int(count), first)


def run_tests(spark, tests: list[DataTest], translated: dict[str, str], workers: int = 4) -> list[TestResult]:
    """Every test in declaration order; Spark runs jobs from several threads side by side."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda t: run_test(spark, t, translated[t.name]), tests))


# --- the build


def marts_location(options: SparkOptions, warehouse: Path) -> str:
    return options.marts_dir if options.marts_dir and is_uri(options.marts_dir) \
        else str(config.marts_path(options.marts_dir, warehouse))


MARTS_MARKER = ".greenery-marts"  # inside a marts folder this tool wrote: it may replace it


def _check_marts_target(marts: str) -> None:
    """A local marts folder must be missing, empty, or one this tool wrote (never someone's folder)."""
    if is_uri(marts):
        return
    folder = Path(marts)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UsageError(f"--marts-dir {folder} is not a folder; name a missing or empty folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARTS_MARKER).is_file():
        raise UsageError(f"--marts-dir {folder} holds files this tool did not write; "
                         "name a missing or empty folder, or marts greenery wrote")


def _stage_for(marts: str) -> str:
    """Where this build writes its marts: a marked staging folder beside the published one (swapped in
    on success) when local; in place when a URI (object stores have no atomic folder rename)."""
    if is_uri(marts):
        return marts
    stage = ownership.new_staging(Path(marts), "building")
    return str(stage)


def _discard(stage: str, marts: str) -> None:
    if stage != marts:
        ownership.remove_staging(Path(stage))


def _publish_marts(stage: str, marts: str) -> None:
    if stage == marts:
        return
    (Path(stage) / ownership.STAGING_MARKER).rename(Path(stage) / MARTS_MARKER)
    atomic.swap_folder(Path(stage), Path(marts))


def input_fingerprint(source: DataSource, options: SparkOptions, pinned_build_time=None) -> str:
    """What a Spark build depends on: as the DuckDB build, plus the engine. A URI's contents cannot be
    hashed here, so a build from one is never reused."""
    if is_uri(source.path):
        return fingerprint.combine("spark", str(source.path), str(time.time_ns()))
    return fingerprint.combine("spark", fingerprint.warehouse(Path(source.path), pinned_build_time))


def build(source: DataSource, warehouse: Path, options: SparkOptions | None = None,
          manifest: Manifest | None = None, history: Path | None = None, inputs: str | None = None,
          built_at: datetime | None = None, log: Callable[..., None] = lambda *_: None,
          since: int | None = None, watch=None) -> BuildResult:
    """Build on Spark, land the marts as Parquet, and make the DuckDB warehouse from them.

    Same contract as greenery.warehouse.build: the caller holds the warehouse's lock; InputError for an
    unusable export, DataTestFailure (after writing the JSON results and keeping
    `<warehouse>.rejected.duckdb`) for an error-level test failure; the previous warehouse, marts and
    history untouched unless the build succeeds, the history following the warehouse's rename."""
    options = options or SparkOptions()
    manifest = manifest or load_manifest()
    history = history or config.history_path()
    pinned, built_at = built_at, (built_at or datetime.now(UTC)).replace(microsecond=0)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    translated = spark_sql(manifest)
    schemas = duckdb_schemas(manifest)
    marts = marts_location(options, warehouse)
    check_warehouse_target(warehouse)
    _check_marts_target(marts)
    with exclusive(history, "the history"):
        with _timed(timings, "spark start"):
            spark = session(options)
            spark.catalog.clearCache()  # raw tables a previous build in this session kept in memory
        log(f"Spark {spark.version} on {options.master}: marts to {marts}")
        if not is_uri(marts):
            ownership.remove_leftover_staging(Path(marts), "building")
        stage = _stage_for(marts)
        building = config.building_path(warehouse)
        building.unlink(missing_ok=True)  # we hold the warehouse's lock: a leftover is from a killed run
        con = db.connect(building)
        build_id = None
        findings = []
        try:
            with _timed(timings, "load"):
                loaded = load_export(spark, source.path)
            inputs = inputs or input_fingerprint(source, options, pinned)
            with _timed(timings, "models"):
                model_rows = build_models(spark, manifest, translated, stage, schemas)
            with _timed(timings, "warehouse"):
                db.run(con, "begin transaction")
                _copy_marts(con, manifest, stage, schemas, model_rows)
                db.run(con, "commit")
            with ThreadPoolExecutor(max_workers=1) as tester:
                tested = tester.submit(lambda: _timed_tests(spark, manifest, translated, timings))
                with _timed(timings, "history"):
                    build_id = record_build(con, history, warehouse, built_at, source.kind, source.label,
                                            loaded.total_rows, keep=lambda: not summarize(tested.result())["fail"],
                                            log=log, since=since, export=export_facts(source, loaded),
                                            measures=lambda: headline_measures(con, tested.result()),
                                            settings=watch, findings=findings)
                tests = tested.result()
            db.run(con, "begin transaction")
            store_results(con, tests)
            info = _store_build_info(con, source, loaded, inputs, built_at, build_id)
            db.run(con, "commit")
            with _timed(timings, "write"):
                con.close()
            info = {**info, "engine": "spark", "spark_master": options.master, "marts_dir": marts}
            result = BuildResult(source, warehouse, loaded, model_rows, tests, 0.0, info, timings, findings)
            write_json(config.run_results_path(warehouse), tests, {**info, "timings": timings})
            if result.summary["fail"]:
                building.replace(config.rejected_path(warehouse))
                raise DataTestFailure(result)
            _publish_marts(stage, marts)
            building.replace(warehouse)  # the commit point: the history follows it
            build_id, published = None, build_id
        except BaseException:
            con.close()
            building.unlink(missing_ok=True)
            _discard(stage, marts)
            if build_id is not None:
                with contextlib.suppress(Exception):
                    forget(history, build_id)
            raise
        mark_published(history, published)
    result.seconds = time.perf_counter() - started
    return result


def _timed_tests(spark, manifest: Manifest, translated: dict[str, str], timings: dict[str, float]):
    with _timed(timings, "data tests"):
        return run_tests(spark, manifest.tests, translated)
