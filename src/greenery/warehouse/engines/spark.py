"""`greenery build --engine spark`: the same models and data tests on Apache Spark, marts as Parquet.

The build, step by step (the DuckDB build's steps, on another engine). Each Spark job is a
scheduling round trip, so the build runs few: one per mart written and one that checks and tests
everything (15 on this project, whatever the data's size); the count is printed and recorded in
run_results.json's timings ("spark jobs"). What is left on a small export is the JVMs' fixed cost,
which the session's settings cut (SMALL_DATA, JVM_OPTIONS, the class archive: see `session`); the
JVM starts in a thread while Python transpiles and types the models.

1. **Load**: each raw CSV is read from a path or URI Spark understands (a local folder, or
   `s3a://`, `abfss://`, `hdfs://` configured through Spark) with every column as text, then cast to
   the raw contract's type (src/greenery/contract.py; no inference), as a view of rows that Spark reads
   once, in the first job that needs it, and keeps (`_kept`). A local file's records are counted by
   the DuckDB loader's own pass (one longer than the limit is refused at its line).
2. **Models**: every model's DuckDB SQL is transpiled to Spark SQL by sqlglot (greenery.engines.transpile)
   and registered as a temporary view, in the manifest's build order; models that only feed others
   are computed in the first job that reads them and kept. Each mart is cast to the column types
   DuckDB gives the same SQL (found by running the models on empty raw tables) and written as Parquet
   (a job), so both engines' marts have one schema; the rows written are kept for the models and
   tests that read the mart. What reads a model plans a scan of its kept rows, never the model's
   lineage again (`_kept`).
3. **Checks and data tests**, one job (`check_and_test`): a `union all` of each raw table's checks
   (one aggregate per table), the row count of every model that is not a mart, and every data test's
   failing rows named by the test (counted, and its first keys, in one window). Each part is a view
   analysed and planned while the models' jobs run, as soon as the models it reads are made
   (`prepare_checks`), its rows computed within the one job.
   A value that does not parse, or a number its type does not hold exactly (Spark's casts round
   too), is refused (exit 2) naming the file, the column and the value, as are rows read that are
   fewer than the file's records; timestamps with a UTC offset are converted to UTC with a warning,
   as on DuckDB. The tests keep DuckDB's severities, counts, keys
   and JSON. (When a job fails earlier, the tables are checked one by one first, to name the file.)
4. **Warehouse**: the DuckDB file the report reads is made from the Parquet marts (their row counts
   from the Parquet footers), plus the tables the chapters read besides (model_runs, build_info,
   raw_row_counts, data_test_results and the history's tables), exactly as the DuckDB build makes
   them. An error-level failure stops the build (exit 1) and keeps the previous warehouse and marts.

Nothing is published until all of it succeeded: marts are written into a staging folder swapped in
at the end (locally), the warehouse into a file renamed over the last one.

pyspark is optional (`requirements-spark.txt`, `make spark-test`): nothing here imports it until a
Spark build starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
from greenery.warehouse.engines.transpile import raw_view, tables_read
from greenery.warehouse.history import forget, mark_published, record_build
from greenery.warehouse.load import LoadReport, _check_header, count_file_records, read_header, shown_value
from greenery.warehouse.manifest import Manifest, ManifestError, load_manifest, spark_sql

DEFAULT_MASTER = "local[*]"
TIMESTAMP_PATTERN = "yyyy-MM-dd'T'HH:mm:ssXXX"  # Z or an offset such as +02:00; a zoneless time is refused
# The DuckDB build reads these staging views for the history and build_info; the Spark build's
# warehouse holds marts only, so each is read from the mart with the same grain and the columns used.
# Each Spark job is a scheduling round trip (tens of milliseconds locally, more on a cluster), and a
# build's queries are small and planned once: adaptive execution would run every shuffle stage of a
# query as a job of its own, and a broadcast join collects its small side in a job of its own; without
# either, one query is one job, however many stages it has. --spark-conf turns either back on.
ONE_JOB_PER_QUERY = {"spark.sql.adaptive.enabled": "false", "spark.sql.autoBroadcastJoinThreshold": "-1",
                     "spark.sql.optimizer.excludedRules": "org.apache.spark.sql.execution.planmerging.MergeSubplans"}
# A build's data is small and its queries many, so its time is the engine's fixed costs: planning on
# a JVM that has just started, and tasks that each run for milliseconds. Measured on the real export
# against the standalone cluster (docs/engines-and-scale.md), these halve a build's CPU:
# - no generated code: compiling Java for each of a query's operators (whole-stage codegen) and
#   expressions costs more than interpreting them over a few thousand rows;
# - no delay scheduling: a task waits up to spark.locality.wait (3 s) for a "better" executor, and
#   on one worker there is none;
# - the JVMs compile hot code with the quick C1 compiler only (C2's optimisations pay off on long
#   runs, not on a minute of many different methods), collect garbage with one thread (two cores,
#   shared with the Python driver), and keep a young generation large enough that planning's
#   short-lived garbage is collected a few times, not a hundred.
# --spark-conf overrides any of them (a JVM option setting replaces the whole option string).
SMALL_DATA = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
              "spark.locality.wait": "0s"}
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmn384m"
# A Spark JVM loads some 20,000 classes (Spark's, Scala's, their lambdas) before a build's first job,
# a quarter of the driver's CPU. Java's class data sharing keeps them parsed, verified and linked in
# an archive mapped at start: the first build writes it when its driver exits (data/cache, named for
# the Java and the pyspark it was made by; `write_class_archive` writes it beforehand, as the cluster's
# helper does before any build it serves is measured), later builds' drivers, and a cluster's
# executors on this machine, start from it. Java checks the archive against its own class path and ignores one that
# does not match (or is missing, or half-written), so a build never depends on it.
CLASS_ARCHIVE_DIR = config.DATA_DIR / "cache" / "spark-classes"
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
    """The Spark session: UTC, ANSI SQL, no web UI; few shuffle partitions; every query one job; the
    settings for small data (SMALL_DATA, JVM_OPTIONS).

    A session already running on another master is stopped first: a build asked to run on
    spark://host:7077 never runs on local[*] because a session happened to exist."""
    missing = available()
    if missing:
        raise SparkUnavailable(missing)
    with warnings.catch_warnings():  # pyspark warns that it does not support pandas 3; no pandas is used here
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession()
    if running is not None and running.sparkContext.master != options.master:
        running.stop()
    builder = (SparkSession.builder.master(options.master).appName("greenery")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.ansi.enabled", "true")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"))
    for key, value in {**ONE_JOB_PER_QUERY, **SMALL_DATA}.items():
        builder = builder.config(key, value)
    archive = class_archive()
    driver, executor = JVM_OPTIONS, JVM_OPTIONS
    if archive is not None:
        quiet = " -Xlog:cds*=off"  # Java's notes on classes it does not archive would go to the build's output
        driver += (f" -XX:SharedArchiveFile={archive}" if archive.is_file()
                   else f" -XX:ArchiveClassesAtExit={archive}") + quiet
        if archive.is_file() and options.master.startswith(LOOPBACK_MASTERS):  # executors on this machine
            executor += f" -XX:SharedArchiveFile={archive}" + quiet
    builder = (builder.config("spark.driver.extraJavaOptions", driver)
               .config("spark.executor.extraJavaOptions", executor))
    if options.master.startswith("local"):  # one machine: few shuffle partitions, and only the loopback address
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (builder.config("spark.sql.shuffle.partitions", str(max(2, 2 * (os.cpu_count() or 1))))
                   .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1"))
    for key, value in options.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if not options.master.startswith("local") and "spark.sql.shuffle.partitions" not in options.conf:
        # Without adaptive execution nothing coalesces Spark's default 200 shuffle partitions: two per
        # core the cluster offers (--spark-conf spark.sql.shuffle.partitions=N for more).
        spark.conf.set("spark.sql.shuffle.partitions", str(max(2, 2 * spark.sparkContext.defaultParallelism)))
    return spark


LOOPBACK_MASTERS = ("spark://127.0.0.1:", "spark://localhost:")


def class_archive() -> Path | None:
    """Where the Spark JVMs' class archive is (or is to be written), named for the Java and pyspark
    that make it; None when it cannot be kept (no space-free path, or the cache folder cannot be
    made). Archives another Java or pyspark made are removed when a new one is to be written."""
    import pyspark

    java = shutil.which("java", path=str(Path(os.environ["JAVA_HOME"]) / "bin")) if os.environ.get("JAVA_HOME") \
        else shutil.which("java")
    if java is None:
        return None
    java_file = Path(java).resolve()
    made_by = "|".join([str(java_file), str(java_file.stat().st_mtime_ns), pyspark.__version__,
                        str(Path(pyspark.__file__).resolve().parent), JVM_OPTIONS])
    archive = CLASS_ARCHIVE_DIR / f"classes-{fingerprint.combine(made_by)[:16]}.jsa"
    if any(c.isspace() for c in str(archive)):  # Spark splits the JVM options at spaces
        return None
    if archive.is_file():
        return archive
    try:
        CLASS_ARCHIVE_DIR.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    for old in CLASS_ARCHIVE_DIR.glob("classes-*.jsa"):  # ours, for another Java or pyspark
        with contextlib.suppress(OSError):
            old.unlink()
    return archive


ARCHIVE_SECONDS = 600.0  # the archive's build: a Spark build of the scale-1 sample, and the JVM's dump


def write_class_archive(log: Callable[..., None] = lambda *_: None) -> Path | None:
    """The JVMs' class archive, written now when it is missing, so that no measured build pays for it
    (the cluster's helper calls this before its daemons start): a Spark build of the generated scale-1
    sample on local[*], in a process of its own, in a temporary folder. Its driver writes the archive
    as its JVM exits, and local mode runs the executors' code in the driver, so a cluster's executors
    find their classes in it too. Returns the archive, or None when none could be written (a build
    still runs without it)."""
    import subprocess
    import sys
    import tempfile

    from greenery.sample import generate

    archive = class_archive()
    if archive is None or archive.is_file():
        return archive
    log(f"writing the Spark JVMs' class archive {archive} (once per Java and pyspark) ...")
    with tempfile.TemporaryDirectory(prefix="greenery-spark-classes-") as folder:
        generate(Path(folder) / "export", config.SAMPLE_SCALE, config.SAMPLE_SEED)
        command = [sys.executable, "-m", "greenery", "build", "--engine", "spark", "--spark-master", "local[*]",
                   "--data-dir", str(Path(folder) / "export"), "--warehouse", str(Path(folder) / "w.duckdb"),
                   "--marts-dir", str(Path(folder) / "marts")]
        env = {**os.environ, "GREENERY_HISTORY": str(Path(folder) / "history.duckdb")}
        env.pop("GREENERY_DATA_DIR", None)
        deadline = time.monotonic() + ARCHIVE_SECONDS
        # A session of its own: the JVM pyspark started outlives the Python process by the archive's
        # dump, and is waited for as the session's last member.
        build = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            code = build.wait(timeout=ARCHIVE_SECONDS)
        except subprocess.TimeoutExpired:
            build.kill()
            code = build.wait()
        while _session_members(build.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    if code != 0 or not archive.is_file():
        log(f"no class archive written (the build exited {code}): Spark builds start without one")
        return None
    return archive


def _session_members(session: int) -> list[int]:
    """The processes still in a session (Linux's /proc; elsewhere none are seen, and the archive's
    dump is not waited for: Java ignores an archive it finds half-written)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == session:  # state ppid pgrp session
                members.append(int(stat.parent.name))
    return members


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


@dataclass
class RawRead:
    """One raw table as read, not yet checked: Spark reads it in the first job that needs it."""

    table: RawTable
    path: str
    records: int | None  # the file's data records by our own pass (local files); None for a URI
    wide: object  # the typed columns beside the text of the typed ones (the checks compare them), kept


def _read_table(spark, table: RawTable, path: str, report: LoadReport) -> RawRead:
    """raw_<table> as a lazy, kept view typed by the contract; InputError for a file or header that
    cannot be used. Its values are checked by `_findings` (within the build's one checking job)."""
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

    records = None if is_uri(path) else count_file_records(Path(path)).count - 1
    typed, texts = [], []
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
    # text of the typed columns, which the checks compare them with; what reads them plans a scan of
    # the kept rows, not the file's read and its typing expressions (see `_kept`).
    wide = _kept(text.select(*typed, *texts))
    wide.select(*table.column_names).createOrReplaceTempView(raw_view(table.name))
    return RawRead(table, path, records, wide)


def _findings(read: RawRead):
    """One aggregate over the kept table, as rows: its row count, for each typed column the least
    text that does not read as its type, and for each timestamp column how many carry an offset."""
    from pyspark.sql import functions as F

    checks, items = [F.count(F.lit(1)).alias("rows")], [("rows", None, F.col("rows"), None)]
    for column in read.table.columns:
        if column.type == "VARCHAR":
            continue
        value, source = F.col(f"`{column.name}`"), F.col(f"`text {column.name}`")
        checks.append(F.min(F.when(source.isNotNull() & value.isNull(), source)).alias(f"bad {column.name}"))
        items.append(("bad", column.name, None, F.col(f"`bad {column.name}`")))
        if column.type == "TIMESTAMP":
            offset = value.isNotNull() & ~source.endswith("Z")
            checks.append(F.sum(offset.cast("int")).alias(f"offset {column.name}"))
            items.append(("offset", column.name, F.col(f"`offset {column.name}`"), None))
    rows = [F.struct(F.lit(kind).alias("kind"), F.lit(detail).cast("string").alias("detail"),
                     F.lit(n).cast("bigint").alias("n"), F.lit(k).cast("string").alias("k"))
            for kind, detail, n, k in items]
    return read.wide.agg(*checks).select(F.explode(F.array(*rows)).alias("f")).select("f.*")


def _judge(read: RawRead, found: list, report: LoadReport) -> None:
    """A table's findings: InputError for a value that does not read as its type or rows lost; else
    its row count and offset warnings into `report`."""
    table, path = read.table, read.path
    bad = {row.detail: row.k for row in found if row.kind == "bad" and row.k is not None}
    for column in table.columns:  # the first column in the contract's order, as DuckDB's loader names it
        if column.name in bad:
            shown = shown_value(bad[column.name], quote=not table.personal)
            what = "a timestamp like 2021-02-11T23:30:33Z (UTC, or with an offset)" if column.type == "TIMESTAMP" \
                else wanted(column.type) + number_problem(column.type, bad[column.name])
            raise InputError(path, None, column.name, f"cannot read {shown} as {what}")
    rows = next(int(row.n) for row in found if row.kind == "rows")
    if read.records is not None and rows != read.records:
        raise InputError(path, None, None, f"the file holds {read.records:,} records but {rows:,} were read")
    for row in found:
        if row.kind == "offset" and row.n:
            report.warnings.append(f"{path}: column '{row.detail}': {row.n:,} timestamp(s) "
                                   "carry a UTC offset instead of Z; converted to UTC")
    report.rows[table.name] = rows


def _spark_errors() -> tuple[type[Exception], ...]:
    """What a failed Spark job raises: a Spark error, or the JVM's exception as py4j passes it on (a
    write's failure, for one, arrives that way)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return PySparkException, Py4JJavaError


def _check_each(reads: list[RawRead], report: LoadReport) -> None:
    """The tables checked one at a time, in the contract's order (a job each): after a failed job,
    to name the file that caused it."""

    for read in reads:
        try:
            found = _findings(read).collect()
        except _spark_errors() as error:
            reason = str(error).strip().splitlines()[0][:200]
            raise InputError(read.path, None, None, f"cannot be read as CSV: {reason}") from None
        _judge(read, found, report)


BYTES_PER_PARTITION = 64 * 1024 * 1024  # adaptive execution's own target for a shuffle partition


def _size_shuffles(spark, options: SparkOptions, reads: list[RawRead]) -> None:
    """Adaptive execution being off, nothing merges small shuffle partitions: one per 64 MiB of the
    export's files (at least one), unless --spark-conf names a number. (From a URI, the session's.)"""
    if "spark.sql.shuffle.partitions" in options.conf or any(is_uri(read.path) for read in reads):
        return
    size = sum(Path(read.path).stat().st_size for read in reads)
    spark.conf.set("spark.sql.shuffle.partitions", str(max(1, -(-size // BYTES_PER_PARTITION))))


def read_export(spark, data_dir: str | os.PathLike) -> tuple[LoadReport, list[RawRead]]:
    """Every raw table as a lazy view; the report's row counts come when `_judge` has their findings."""
    if not is_uri(data_dir) and not Path(data_dir).is_dir():
        raise InputError(data_dir, None, None, "no such folder: expected the export's seven CSV files here")
    report = LoadReport(data_dir=data_dir)  # type: ignore[arg-type]  # a URI is kept as text
    reads = [_read_table(spark, table, _join(data_dir, table.file_name), report) for table in RAW_TABLES]
    return report, reads


# --- models


def build_models(spark, manifest: Manifest, translated: dict[str, str], marts: str,
                 schemas: dict[str, list[tuple[str, str]]], job_group: _JobGroup | None = None,
                 made: dict[str, Future] | None = None) -> None:
    """Every model as a Spark view, computed once, in the first job that reads it, and kept (`_kept`);
    each mart cast to DuckDB's types and written as Parquet under `marts` (a job each), the rows
    written kept for what reads it (a model is computed once, as a DuckDB table is). Nothing is
    counted here: see `check_and_test`.

    A model is made as soon as the models it reads are (a few at a time, in threads that join
    `job_group`): while the executors write one mart, the driver plans the next, so the driver's
    core and the executors' are busy at once rather than in turn. `made` (see `model_futures`) tells
    others, as each model is made, that its view is final (the checking job's parts are analysed
    meanwhile). The first failure in build order is raised once every model started has ended."""
    order = manifest.build_order()
    made = model_futures(manifest) if made is None else made

    def make(model) -> None:
        try:
            for upstream in model.depends_on:  # submitted earlier, so started or done: never a deadlock
                made[upstream].result()
            if job_group is not None:
                job_group.join()
            try:
                _build_model(spark, model, translated[model.name], marts, schemas[model.name])
            finally:
                if job_group is not None:
                    job_group.leave()
        except BaseException as error:  # the models it stops, and whoever waits for it, fail with it
            made[model.name].set_exception(error)
        else:
            made[model.name].set_result(model.name)

    with ThreadPoolExecutor(max_workers=MODEL_THREADS, thread_name_prefix="greenery-model") as pool:
        for model in order:  # in build order: a model's upstream models are always submitted before it
            pool.submit(make, model)
    for model in order:
        made[model.name].result()  # the first failure in build order (the models it stopped fail with it)


def model_futures(manifest: Manifest) -> dict[str, Future]:
    """One future per model, done when `build_models` has made its final view (or failed to)."""
    return {model.name: Future() for model in manifest.build_order()}


MODEL_THREADS = 3  # one mart written while the next is planned, and a view analysed meanwhile


def _build_model(spark, model, sql: str, marts: str, schema: list[tuple[str, str]]) -> None:
    from pyspark.sql import functions as F

    frame = spark.sql(sql)
    expected = [name for name, _ in schema]
    if [c.lower() for c in frame.columns] != [c.lower() for c in expected]:
        raise ManifestError(f"{model.path}: Spark gives columns {frame.columns}, DuckDB {expected}")
    if model.layer == "marts":
        frame = frame.select(*[F.col(f"`{got}`").cast(spark_type(kind)).alias(name)
                               for got, (name, kind) in zip(frame.columns, schema, strict=True)])
        path = _join(marts, model.name)
        frame = _kept(frame)  # the rows written are the rows the models and tests downstream read
        frame.write.mode("overwrite").parquet(path)
    else:  # a view too is computed once, where it is first read, and kept, as DuckDB keeps a table
        frame = _kept(frame)
    frame.createOrReplaceTempView(model.name)


def _kept(frame):
    """`frame` computed once, in the first job that reads it, and kept on the executors; what reads it
    plans a scan of the kept rows, not `frame`'s own plan.

    A build's time on a small export is mostly the driver analysing, optimising and planning queries,
    and a plan's cost grows with its size: without this, every mart's query, and the checking job,
    carried the whole lineage of the views it read, down to each CSV's read and typing expressions,
    and planned it again (the checking job's analysed plan: 3,559 nodes; with it, 404). The plan is
    made here (no job), the rows kept in memory, spilled to disk when they do not fit (a local
    checkpoint: an executor lost mid-build fails the build, it never changes a result)."""
    return frame.localCheckpoint(eager=False)


def _copy_marts(con: duckdb.DuckDBPyConnection, manifest: Manifest, marts: str,
                schemas: dict[str, list[tuple[str, str]]], counted: dict[str, int]) -> dict[str, int]:
    """The marts into the DuckDB warehouse from their Parquet files, typed as the DuckDB build types
    them; then `model_runs` as the DuckDB build writes it, each mart's row count read from its Parquet
    files' footers (the other models' are `counted` by Spark). Returns every model's row count."""
    rows = {}
    for model in manifest.build_order():
        if model.layer != "marts":
            rows[model.name] = counted[model.name]
            continue
        files = _join(_join(marts, model.name), "*.parquet")
        columns = ", ".join(f'"{name}"::{kind} as "{name}"' for name, kind in schemas[model.name])
        db.run(con, f"create table {model.name} as select {columns} from read_parquet($files)", {"files": files})
        rows[model.name] = int(db.scalar(con, "select coalesce(sum(num_rows), 0) from parquet_file_metadata($files)",
                                         {"files": files}))
    for staging, mart in SNAPSHOT_SOURCES.items():
        db.run(con, f"create temp view {staging} as select * from {mart}")
    db.run(con, "create or replace table model_runs (model varchar, folder varchar, materialized varchar, "
                "row_count bigint)")
    con.executemany("insert into model_runs values (?, ?, ?, ?)",
                    [(name, manifest.models[name].folder, manifest.models[name].materialized, n)
                     for name, n in rows.items()])
    return rows


# --- the checking job: the raw tables' checks, the models' counts and every data test, one query


COUNT, KEY = "'count'", "'key'"
ANALYSING_THREADS = max(2, min(4, os.cpu_count() or 1))


def _finding(part: int, kind: str, detail: str = "null", n: str = "null", k: str = "null", r: str = "null") -> str:
    """The select list of one row of the checking job (each argument an SQL expression)."""
    return (f"cast({part} as int) as part, cast({kind} as string) as kind, cast({detail} as string) as detail, "
            f"cast({n} as bigint) as n, cast({k} as string) as k, cast({r} as int) as r")


def check_parts(manifest: Manifest, reads: list[RawRead]) -> list[tuple[str, object]]:
    """What each part of the checking job is, in its order: ("raw", RawRead), ("model", name) for
    every model that is not a mart (a mart's count comes from its Parquet footers), ("test", DataTest)."""
    return [*(("raw", read) for read in reads),
            *(("model", model.name) for model in manifest.build_order() if model.layer != "marts"),
            *(("test", test) for test in manifest.tests)]


def _part_view(part: int, suffix: str = "") -> str:
    return f"greenery_check_{part}{suffix}"


def prepare_checks(spark, manifest: Manifest, translated: dict[str, str], reads: list[RawRead],
                   made: dict[str, Future]) -> list[tuple[str, object]]:
    """Every part of the checking job (`check_parts`) as a temporary view of its own, holding its rows
    of the job's result, analysed and planned as soon as the models it reads are made (`made`): while
    the executors write marts, the driver plans the tests, whose views are then final (kept rows,
    computed within the checking job: see `_kept`). Each test is
    analysed on its own: measured, one statement holding every test's SQL takes longer to analyse
    and optimise than the tests one by one. Returns the parts."""
    from pyspark.sql import functions as F

    parts = check_parts(manifest, reads)
    position = {model.name.lower(): i for i, model in enumerate(manifest.build_order())}
    names = {model.name.lower(): model.name for model in manifest.build_order()}

    def reads_models(part: tuple[str, object]) -> list[str]:
        kind, what = part
        if kind == "model":
            return [what]
        if kind == "test":
            read = tables_read(translated[what.name]) & names.keys()
            return [names[name] for name in sorted(read, key=position.__getitem__)]
        return []

    def prepare(numbered: tuple[int, tuple[str, object]]) -> None:
        part, (kind, what) = numbered
        for model in reads_models((kind, what)):
            made[model].result()  # its view is final (a mart's reads its Parquet); raises if it failed
        if kind == "raw":
            _findings(what).createOrReplaceTempView(_part_view(part, "_in"))
            select = f"select {_finding(part, 'kind', 'detail', 'n', 'k')} from {_part_view(part, '_in')}"
        elif kind == "model":
            select = f"select {_finding(part, COUNT, n='count(*)')} from {what}"
        else:
            select = _test_part(spark, part, what, translated[what.name], F)
        # Planned here, to the physical plan, while the marts are written: the checking job is left
        # with a union of the parts' kept rows to plan (each computed within that one job).
        _kept(spark.sql(select)).createOrReplaceTempView(_part_view(part))

    # Analysing is the driver's work alone, a few parts at a time; the parts that wait for a mart
    # last, so that a thread waiting for one never holds up a part that could be analysed now.
    def waits_for(numbered) -> int:
        return max((position[model.lower()] for model in reads_models(numbered[1])), default=-1)

    with ThreadPoolExecutor(max_workers=ANALYSING_THREADS, thread_name_prefix="greenery-analyse") as pool:
        for done in [pool.submit(prepare, numbered) for numbered in sorted(enumerate(parts), key=waits_for)]:
            done.result()
    return parts


def _test_part(spark, part: int, test, sql: str, F) -> str:
    """A test's rows of the checking job: its failing rows' first column as text, whatever its name,
    its first keys sorted as DuckDB sorts them (nulls last), each row carrying how many rows failed.
    One window over the failing rows gives both (one shuffle stage per test, where a count beside
    the keys took two); a test that passes gives no row at all."""
    args = {name: F.array(*[F.lit(v) for v in values]) for name, values in test.params.items()}
    frame = spark.sql(sql, args=args or None)
    columns = frame.columns  # from the plan analysed above: no job, no second analysis
    source = _part_view(part, "_in")
    if len({c.lower() for c in columns}) == len(columns):  # the first column can be named: no re-analysis
        frame.createOrReplaceTempView(source)
        first = "`" + columns[0].replace("`", "``") + "`"
    else:  # two columns share the first one's name: renamed by position (two analyses more)
        frame.toDF(*[f"c{i}" for i in range(len(columns))]).createOrReplaceTempView(source)
        first = "c0"
    return (f"select {_finding(part, KEY, n='n', k='k', r='r')} from "
            f"(select k, row_number() over (order by k asc nulls last) as r, count(*) over () as n "
            f"from (select cast({first} as string) as k from {source})) where r <= {MAX_FAILING_KEYS}")


def drop_check_views(spark, parts: int) -> None:
    for part in range(parts):
        spark.catalog.dropTempView(_part_view(part))
        spark.catalog.dropTempView(_part_view(part, "_in"))


def check_and_test(spark, parts: list[tuple[str, object]], reads: list[RawRead],
                   report: LoadReport) -> tuple[list[TestResult], dict[str, int]]:
    """One Spark job, the `union all` of the parts `prepare_checks` made: every raw table's checks
    (InputError for the first table, in the contract's order, holding a value that does not read or
    fewer rows than records), every model's count that is not a mart, and every data test. Returns
    the test results in declaration order, and the counts."""

    # One task gathers the parts' few rows: each part's own work runs in stages of its own before.
    # The parts are planned views of kept rows: the statement only names them, its plan a union of scans.
    query = spark.sql("\nunion all\n".join(f"select * from {_part_view(i)}" for i in range(len(parts))))
    try:
        found = query.coalesce(1).collect()
    except _spark_errors():
        _check_each(reads, report)  # names the file a failed read came from, if one did
        raise
    by_part: dict[int, list] = {}
    for row in found:
        by_part.setdefault(row.part, []).append(row)
    counted, results = {}, []
    for i, (kind, what) in enumerate(parts):
        rows = by_part.get(i, [])
        if kind == "raw":
            _judge(what, rows, report)
        elif kind == "model":
            counted[what] = int(rows[0].n)
        else:
            test = what
            count = int(rows[0].n) if rows else 0  # every row of a failing test carries the count
            keys = sorted((row.r, "(null)" if row.k is None else row.k) for row in rows)
            status = "pass" if count == 0 else ("fail" if test.severity == "error" else "warn")
            results.append(TestResult(test.name, test.kind, test.model, test.column, test.severity, test.rationale,
                                      status, count, [key for _, key in keys]))
    return results, counted


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
    marts = marts_location(options, warehouse)
    check_warehouse_target(warehouse)  # a wrong target is refused before any JVM starts
    _check_marts_target(marts)
    starting = _start_session(options)  # the JVM starts while Python transpiles and types the models
    translated = spark_sql(manifest)
    schemas = duckdb_schemas(manifest)
    with exclusive(history, "the history"):
        with _timed(timings, "spark start"):  # what is left of it once the Python work above is done
            spark = starting.result()
            # Anything cached in this session before; a previous build's kept rows are freed by
            # Spark's cleaner once its views, replaced by this build's, no longer reference them.
            spark.catalog.clearCache()
        log(f"Spark {spark.version} on {options.master}: marts to {marts}")
        if not is_uri(marts):
            ownership.remove_leftover_staging(Path(marts), "building")
        stage = _stage_for(marts)
        building = config.building_path(warehouse)
        ownership.discard_building(warehouse)  # we hold the warehouse's lock: a leftover is from a killed run
        con = db.connect(building)
        build_id = None
        findings = []
        group = _JobGroup(spark)
        preparing = None
        try:
            with _timed(timings, "load"):
                loaded, reads = read_export(spark, source.path)
                _size_shuffles(spark, options, reads)
            inputs = inputs or input_fingerprint(source, options, pinned)
            made = model_futures(manifest)
            # The checking job's parts are analysed (the driver's work) while the models' jobs run
            # (the executors'): each as soon as the models it reads are made.
            preparing = _in_thread(prepare_checks, spark, manifest, translated, reads, made)
            with _timed(timings, "models"):
                _build_models_or_name_the_file(spark, manifest, translated, stage, schemas, reads, loaded, group,
                                               made)
            with _timed(timings, "checks and data tests"):
                tests, counted = check_and_test(spark, preparing.result(), reads, loaded)
            with _timed(timings, "warehouse"):
                db.run(con, "begin transaction")
                model_rows = _copy_marts(con, manifest, stage, schemas, counted)
                db.run(con, "commit")
            with _timed(timings, "history"):
                build_id = record_build(con, history, warehouse, built_at, source.kind, source.label,
                                        loaded.total_rows, keep=lambda: not summarize(tests)["fail"],
                                        log=log, since=since, export=export_facts(source, loaded),
                                        measures=lambda: headline_measures(con, tests),
                                        settings=watch, findings=findings)
            # Read last: the tracker learns of a job from Spark's event queue, a moment after it ran.
            timings["spark jobs"] = group.jobs()
            log(f"Spark ran {group.jobs()} jobs; " + ", ".join(
                f"{step} {seconds:.1f} s" for step, seconds in timings.items() if step != "spark jobs"))
            db.run(con, "begin transaction")
            store_results(con, tests)
            info = _store_build_info(con, source, loaded, inputs, built_at, build_id)
            db.run(con, "commit")
            with _timed(timings, "write"):
                con.close()
            info = {**info, "engine": "spark", "spark_master": options.master, "marts_dir": marts}
            result = BuildResult(source, warehouse, loaded, model_rows, tests, 0.0, info, timings, findings)
            failed = bool(result.summary["fail"])  # nobody's database made there since: before the results
            ownership.check_rename_target(*((config.rejected_path(warehouse), warehouse, "rejected warehouse")
                                            if failed else (warehouse, warehouse, "warehouse")))
            write_json(config.run_results_path(warehouse), tests, {**info, "timings": timings})
            if failed:
                building.replace(config.rejected_path(warehouse))
                raise DataTestFailure(result)
            _publish_marts(stage, marts)
            building.replace(warehouse)  # the commit point: the history follows it
            build_id, published = None, build_id
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a database DuckDB invalidated (a full disk) closes with an error
                con.close()
            ownership.discard_building(warehouse)  # with its logs, left when DuckDB could not close it
            _discard(stage, marts)
            if build_id is not None:
                with contextlib.suppress(Exception):
                    forget(history, build_id)
            raise
        finally:
            group.close()
            if preparing is not None:  # ended (its waits end when the models have), its views dropped
                with contextlib.suppress(BaseException):
                    preparing.result()
                with contextlib.suppress(Exception):  # a session that died keeps nothing to drop
                    drop_check_views(spark, len(check_parts(manifest, reads)))
        mark_published(history, published)
    result.seconds = time.perf_counter() - started
    return result


def _start_session(options: SparkOptions) -> Future:
    """`session(options)` in a thread of its own: a JVM takes seconds to start, and the build has
    Python work to do meanwhile. The result (or SparkUnavailable) is waited for where it is needed."""
    return _in_thread(session, options)


def _in_thread(work: Callable, *args) -> Future:
    """`work(*args)` in a thread of its own, its result (or exception) in the future returned."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"greenery-{work.__name__}")
    try:
        return pool.submit(work, *args)
    finally:
        pool.shutdown(wait=False)  # the thread ends with the work; nothing else runs on it


def _build_models_or_name_the_file(spark, manifest: Manifest, translated: dict[str, str], stage: str,
                                   schemas: dict[str, list[tuple[str, str]]], reads: list[RawRead],
                                   report: LoadReport, job_group: _JobGroup, made: dict[str, Future]) -> None:
    """The models; when a job fails, the raw tables are checked first, so that a file Spark cannot
    read, or a value that does not read as its type, is named (exit 2) rather than the model."""

    try:
        build_models(spark, manifest, translated, stage, schemas, job_group, made)
    except _spark_errors():
        _check_each(reads, report)
        raise


class _JobGroup:
    """The build's Spark jobs, counted by the status tracker: every job this thread starts is in the group."""

    def __init__(self, spark):
        self.context = spark.sparkContext
        self.id = f"greenery-build-{uuid.uuid4().hex}"
        self.join()

    def join(self) -> None:
        """The calling thread's jobs join the group (a job group is a property of the thread)."""
        self.context.setJobGroup(self.id, "greenery build")

    def leave(self) -> None:
        self.close()

    def jobs(self) -> int:
        return len(self.context.statusTracker().getJobIdsForGroup(self.id))

    def close(self) -> None:
        self.context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]  # removes it
        self.context.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]
