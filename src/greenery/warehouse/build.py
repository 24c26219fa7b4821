"""`greenery build`: choose the data, load it, build every model, run every data test.

The warehouse is written to a temporary file beside the target and moved over it only when
the build is complete and no error-level test failed, so the previous warehouse stays usable
until a better one exists; the history follows that rename (greenery.warehouse.history). A build that
fails its data tests is kept as `<name>.rejected.duckdb` for inspection. Only a missing file or
a warehouse this tool built is ever written over (greenery.outputs).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from greenery import __version__, config, db
from greenery.contract import RAW_TABLES
from greenery.db import duckdb
from greenery.errors import DataTestFailure, InputError, one_line
from greenery.faults import checkpoint
from greenery.outputs import fingerprint
from greenery.outputs.locking import exclusive
from greenery.outputs.ownership import (
    check_digest_cache,
    check_history_target,
    check_rename_target,
    check_warehouse_target,
    discard_building,
)
from greenery.warehouse import metrics
from greenery.warehouse.datatests import TestResult, run_batch, run_tests, store_results, summarize, write_json
from greenery.warehouse.history import attach as attach_history
from greenery.warehouse.history import check as check_history
from greenery.warehouse.history import comparison_ids, forget, mark_published, record_build
from greenery.warehouse.load import LoadReport, check_export_files, load_export, read_header
from greenery.warehouse.manifest import DataTest, Manifest, Model, load_manifest
from greenery.warehouse.records import ExportScan
from greenery.warehouse.watch import ExportFacts, Finding, WatchSettings


@dataclass(frozen=True)
class DataSource:
    path: Path
    chosen_by: str  # how it was chosen: --data-dir, $GREENERY_DATA_DIR, data/raw or default sample
    sample: dict | None  # the generator's settings when the data is a generated sample

    @property
    def kind(self) -> str:
        return "sample" if self.sample else "export"

    @property
    def label(self) -> str:
        if self.sample:
            series = self.sample.get("series")
            day = f", day {series['day']} of {series['days']}" if isinstance(series, dict) else ""
            return f"the generated sample (seed {self.sample['seed']}, scale {self.sample['scale']:g}{day})"
        return "a Greenery export"


def choose_data(data_dir: str | os.PathLike | None = None, log=print) -> DataSource:
    """The export config.data_dir_choice names, else the generated sample (made when missing)."""
    choice = config.data_dir_choice(data_dir)
    if choice:
        path, chosen_by = choice
    else:
        from greenery.sample import ensure_sample  # numpy and pandas: only when a sample is needed

        path, chosen_by = config.SAMPLE_DIR, "default: no export in --data-dir, $GREENERY_DATA_DIR or data/raw/"
        if ensure_sample(path):
            log(one_line(f"No export found: generated a sample into {path}"))
    check_export_files(path)
    return DataSource(path.resolve(), chosen_by, sample_marker(path))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def sample_marker(folder: Path) -> dict | None:
    """The generator's settings from a generated sample's `sample.json`, or None for an export.

    The file sits in a folder anyone may hand us, and its settings are printed in the book, the status
    and messages: it is read only as `greenery sample` writes it (whole numbers and a scale, nothing
    else shown), and refused (exit 2) otherwise, never quoted."""
    marker = folder / config.SAMPLE_MARKER
    if not marker.exists() and not marker.is_symlink():
        return None
    refused = InputError(marker, None, None, "not a marker `greenery sample` wrote (a seed, a scale and a series as "
                         "whole numbers); remove it if this folder is an export")
    if marker.is_symlink() or not marker.is_file():
        raise refused
    try:
        with marker.open("rb") as handle:
            found = json.loads(handle.read(64 * 1024).decode("utf-8"))
    except (OSError, ValueError):
        raise refused from None
    series = found.get("series") if isinstance(found, dict) else None
    scale = found.get("scale") if isinstance(found, dict) else None
    if not (isinstance(found, dict) and _whole(found.get("seed"))
            and isinstance(scale, int | float) and not isinstance(scale, bool) and 0 < scale < 1e6
            and (series is None or (isinstance(series, dict) and _whole(series.get("day"))
                                    and _whole(series.get("days"))))):
        raise refused
    return {"seed": found["seed"], "scale": float(scale),
            **({"series": {"day": series["day"], "days": series["days"]}} if series else {})}


@dataclass
class BuildResult:
    source: DataSource
    warehouse: Path
    loaded: LoadReport
    model_rows: dict[str, int | None]  # None for a view
    tests: list[TestResult]
    seconds: float
    info: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, for `make bench`
    watch: list[Finding] = field(default_factory=list)  # the export watch's findings (greenery.warehouse.watch)
    # Exports whose headline metrics this build's `history_metrics` holds (None: not counted, as on Spark):
    # a metric can only have moved with two, so with fewer the warehouse is not opened again to look.
    measured_exports: int | None = None
    manifest: Manifest | None = None  # the models and tests built (summary_lines reads them, else again)

    @property
    def summary(self) -> dict[str, int]:
        return summarize(self.tests)


# Views that two tables of one build read (directly or through other views), whose result is computed
# once per build: int_session_product_events groups every product event by session and product, and both
# fct_sessions and fct_product_conversion (through fct_session_products) computed it (its grouping is
# 0.3-0.45 CPU s at scale 1000; the two tables 1.99 -> 1.77 CPU s, about 1 % of the build, measured in
# docs/engines-and-scale.md: the 1.2 s its operator timings show is summed over threads). The view is
# made as always, and its result is kept in a temporary table of the same name, which DuckDB finds before
# the view (the temporary catalog comes first in its search path), on the build's connection only, through
# the reading views too; it is dropped once the models are made. The warehouse holds the view and nothing
# more; the readers' rows are the same.
COMPUTED_ONCE = frozenset({"int_session_product_events"})


def make_models(con: duckdb.DuckDBPyConnection, models: list[Model],
                once: frozenset[str] = frozenset()) -> dict[str, int | None]:
    """Create `models` in the order given; the rows of each table (None for a view).

    A view is not counted: counting it would compute it, which is what making it a view avoids. A
    table's count is the one its `create table ... as` returns (the rows it inserted): no query of its own.
    A view named in `once` is also computed into a temporary table of its name, which the models after it
    read in its place, dropped before returning (COMPUTED_ONCE)."""
    rows: dict[str, int | None] = {}
    kept: list[str] = []
    for model in models:
        made = db.rows(con, f"create or replace {model.materialized} {model.name} as {model.sql}")
        rows[model.name] = made[0][0] if model.materialized == "table" else None
        if model.name in once and model.materialized == "view":
            db.run(con, f"create temporary table {model.name} as {model.sql}")
            kept.append(model.name)
    for name in kept:
        db.run(con, f"drop table temp.main.{name}")
    return rows


def _record_model_runs(con: duckdb.DuckDBPyConnection, manifest: Manifest, rows: dict[str, int | None]) -> None:
    db.run(con, "create or replace table model_runs (model varchar, folder varchar, materialized varchar, "
                "row_count bigint)")
    db.insert_rows(con, "model_runs", ("varchar", "varchar", "varchar", "bigint"),
                   [(name, manifest.models[name].folder, manifest.models[name].materialized, n)
                    for name, n in rows.items()])


def build_models(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> dict[str, int | None]:
    """Create every model in dependency order; record them with the row counts of tables in `model_runs`."""
    rows = make_models(con, manifest.build_order(), COMPUTED_ONCE)
    _record_model_runs(con, manifest, rows)
    return rows


def first_models(manifest: Manifest) -> list[Model]:
    """The models that read raw tables only (staging), first in the build order: `greenery build` creates
    them in the load's own transaction, so that the data tests reading nothing else (first_tests) can run
    beside the other models."""
    return [model for model in manifest.build_order() if not model.depends_on]


def first_tests(manifest: Manifest) -> list[DataTest]:
    """The data tests that read only raw tables and first_models (their SQL's every table known), in
    declaration order: 47 of the 63."""
    made = {model.name for model in first_models(manifest)}
    return [test for test in manifest.tests
            if test.reads is not None and all(name.startswith("raw.") or name in made for name in test.reads)]


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(time.perf_counter() - started, 4)


@contextmanager
def _cpu(seconds: dict[str, float], phase: str) -> Iterator[None]:
    """The process's CPU seconds (every thread's) in one phase: on a shared machine the wall time of
    a step says more about the neighbours than about the step; its CPU time does not."""
    started = time.process_time()
    try:
        yield
    finally:
        seconds[phase] = round(time.process_time() - started, 4)


def _timed_call(timings: dict[str, float], step: str, function, *args):
    with _timed(timings, step):
        return function(*args)


def built_identity(warehouse: Path) -> tuple[str, int | None] | None:
    """The fingerprint of the export and code a warehouse was built from, and its build id in the
    history (what its "what changed" tables compare with); None if it cannot be read."""
    return reuse_facts(warehouse)[0]


def reuse_facts(warehouse: Path) -> tuple[tuple[str, int | None] | None, set[int]]:
    """built_identity and the builds its "what changed" tables suit (history.compared_builds), from one
    opening of the warehouse: `greenery report` asks both before reusing it, and each opening costs a
    DuckDB instance."""
    if not warehouse.is_file():
        return None, set()
    try:
        con = db.connect(warehouse, read_only=True)
    except duckdb.Error:
        return None, set()
    try:
        try:
            identity = tuple(db.rows(con, "select fingerprint, build_id from build_info")[0])
        except (duckdb.Error, IndexError):
            return None, set()
        return identity, comparison_ids(con)
    finally:
        con.close()


def summary_lines(result: BuildResult) -> list[str]:
    """What a build read, made and found, in the words both `greenery build` and `greenery report` print."""
    loaded = result.loaded
    counts = ", ".join(f"{name} {rows:,}" for name, rows in loaded.rows.items())
    lines = [f"Read {loaded.total_rows:,} rows from {len(loaded.rows)} files: {counts}"]
    lines += [f"  warning: {warning}" for warning in loaded.warnings]
    lines += [f"  warning: {finding.message}" for finding in result.watch if finding.status != "ok"]
    manifest = result.manifest or load_manifest()  # read again only for a result that does not carry it
    models = manifest.models
    lines.append(f"Models ({len(result.model_rows)}), in build order:")
    for name, rows in result.model_rows.items():
        size = f"{rows:>10,} rows" if rows is not None else "      view"
        lines.append(f"  {models[name].folder + '/' + name:<48} {size}")
    lines.append(f"Data tests ({len(result.tests)}), passed first:")
    for test in sorted(result.tests, key=lambda t: (t.status != "pass", t.status == "fail")):
        if test.status == "pass":
            lines.append(f"  PASS {test.name} ({test.model})")
            continue
        keys = ", ".join(test.failing_keys)
        failing = manifest.failing(test.name, test.failing_rows)
        lines.append(f"  {test.status.upper():4} {test.name} ({test.model}): {failing}, e.g. {keys}")
        lines.append(f"       assumption: {test.rationale}")
    summary = result.summary
    lines.append(f"Data tests: {summary['pass']} passed, {summary['warn']} warned, {summary['fail']} failed")
    lines.append(f"Results: {config.run_results_path(result.warehouse)}")
    return [one_line(line) for line in lines]  # a path or a name from the data never breaks a line


def export_facts(source: DataSource, loaded: LoadReport) -> ExportFacts:
    """The export's fingerprint, rows and headers, for the history and the export watch."""
    path = Path(source.path)
    if not path.is_dir():  # a Spark URI: rows only, never recorded as the same export twice
        return ExportFacts(None, dict(loaded.rows), {})
    columns = {}
    for table in RAW_TABLES:
        with contextlib.suppress(OSError, InputError):  # read before: a file gone since is the loader's concern
            columns[table.name] = read_header(path / table.file_name)
    # the fingerprint the build's own read took, when it shared one (a file is not read again)
    return ExportFacts((loaded.scan.export if loaded.scan else fingerprint.export)(path), dict(loaded.rows), columns)


def headline_measures(con: duckdb.DuckDBPyConnection, tests: list[TestResult]) -> dict[str, metrics.Measure]:
    """The headline metrics of the warehouse being built, delivery figures only where the tests say the
    dates look recorded (the chapters decide the same way from the stored results)."""
    return metrics.measure(con, metrics.dates_recorded({t.name: t.status for t in tests}))


def _store_build_info(con: duckdb.DuckDBPyConnection, source: DataSource, loaded: LoadReport,
                      inputs: str, built_at: datetime, build_id: int | None) -> dict:
    found = db.rows(con, "select min(created_at), max(created_at), (select min(created_at) from stg_orders), "
                         "(select max(created_at) from stg_orders) from stg_events")[0]  # one statement, not two
    span, orders = found[:2], found[2:]
    info = {
        "data_kind": source.kind,
        "data_label": source.label,
        "data_dir": str(source.path),
        "chosen_by": source.chosen_by,
        "built_at": built_at.isoformat(),
        "greenery_version": __version__,
        "first_event_at": span[0],
        "last_event_at": span[1],
        "first_order_at": orders[0],
        "last_order_at": orders[1],
        "rows_read": loaded.total_rows,
        "fingerprint": inputs,
        "build_id": build_id,
    }
    db.run(
        con,
        """
        create or replace table build_info as
        select $data_kind as data_kind, $data_label as data_label, $data_dir as data_dir,
               $chosen_by as chosen_by, $built_at::timestamptz as built_at,
               $greenery_version as greenery_version,
               $first_event_at::timestamp as first_event_at, $last_event_at::timestamp as last_event_at,
               $first_order_at::timestamp as first_order_at, $last_order_at::timestamp as last_order_at,
               $rows_read::bigint as rows_read, $fingerprint as fingerprint, $build_id::integer as build_id
        """,
        info,
    )
    db.run(con, "create or replace table raw_row_counts (table_name varchar, row_count bigint)")
    db.insert_rows(con, "raw_row_counts", ("varchar", "bigint"), list(loaded.rows.items()))
    return info


# The catalog the file being built is attached as (_open): every connection of the build reads it by
# default (`use`), so that the models' and the tests' SQL names its tables unqualified.
BUILDING = "building"


def _open(building: Path, instance: Future | None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """The connection a build writes `building` through: the in-memory connection `instance` opens
    (db.connect_beside, begun by `greenery build` before its imports and checks), else a new one, with
    `building` attached and made its default catalog. One DuckDB instance serves the whole build: once
    the file is written (_write), the same connection marks the build published in the history, where a
    second instance cost ~20 ms of CPU.

    Until the history is attached (_test_and_record), DuckDB does not sync what it writes (`fsync_mode`):
    the file is ours, read by nobody before it is renamed, and _write syncs it whole before that (the syncs
    are on while the history is written, and off again for the file's last commit and checkpoint). The
    syncs of its creation and of the load's and the models' commits were 10 to 25 ms of a build's wall time
    on a busy disk.

    `threads`: DuckDB's threads for this build (config.build_threads), set unless `instance` was opened
    with them (greenery.cli opens it with a small export's); None keeps the connection's."""
    con = instance.result(timeout=db.OPEN_DEADLINE_S) if instance is not None else db.connect(threads=threads)
    try:
        if threads is not None and threads != db.scalar(con, "select current_setting('threads')"):
            db.run(con, "set threads = $threads", {"threads": threads})
        db.run(con, "set fsync_mode = 'none'")
        db.run(con, f"attach $path as {BUILDING} (row_group_size {db.ROW_GROUP_ROWS})", {"path": str(building)})
        db.run(con, f"use {BUILDING}")
        # Commits only log; the one checkpoint runs beside the data tests (_test_and_record).
        db.run(con, "set checkpoint_threshold = '1TB'")
    except BaseException:
        con.close()
        raise
    return con


def export_bytes(folder: Path) -> int:
    """The bytes of the export's seven CSVs together (choose_data checked that each is a regular file). A file
    gone since counts nothing: the load refuses it (an InputError naming it); this only picks the threads."""
    total = 0
    for table in RAW_TABLES:
        with contextlib.suppress(OSError):
            total += (folder / table.file_name).stat().st_size
    return total


def _cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of `con` (a connection of its own, in the same instance) whose default catalog is `con`'s."""
    catalog = db.scalar(con, "select current_database()")
    cursor = con.cursor()
    db.run(cursor, "use " + '"' + catalog.replace('"', '""') + '"')
    return cursor


def _write(con: duckdb.DuckDBPyConnection, building: Path) -> None:
    """Write the file being built whole and close it, `con` left open on its in-memory catalog, and sync
    it. DuckDB checkpoints a database it detaches, unless a connection still reads it: a log left beside
    the file means the file does not hold everything, and the build stops there, before any rename.

    The caller turned DuckDB's own syncs off (`fsync_mode`) for the last commit and this checkpoint, which
    synced the log, the blocks and the header one after the other (three syncs, 10 to 20 ms on a busy
    disk): the file is ours and nobody reads it before the rename, so one sync of the whole file before
    the rename is as safe. They are on again when this returns (the history, attached, is written next)."""
    db.run(con, "use memory")
    db.run(con, f"detach {BUILDING}")
    db.run(con, "set fsync_mode = 'standard'")
    left = [log for log in config.log_paths(building) if log.exists()]
    if left:
        raise RuntimeError(f"{left[0]}: DuckDB left its log beside the warehouse it wrote")
    written = os.open(building, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(written)
    finally:
        os.close(written)


# The longest a query run beside the main thread is waited for once the build has failed (it was
# interrupted first: DuckDB stops it at its next vector, well within this).
BESIDE_DEADLINE_S = 60.0


@contextmanager
def _beside(con: duckdb.DuckDBPyConnection) -> Iterator[Callable[..., Future]]:
    """A cursor of `con` and a thread of its own, for queries run beside the main thread's: yields
    submit(function), which runs function(cursor) there. On the way out, after an error,
    the cursor's query is interrupted; what was submitted is waited for (BESIDE_DEADLINE_S at most)
    before the cursor is closed, so no query outlives the build's connection."""
    cursor = _cursor(con)  # opened here: `con` stays on one thread
    pool = ThreadPoolExecutor(max_workers=1)
    submitted: list[Future] = []

    def submit(function: Callable[[duckdb.DuckDBPyConnection], object]) -> Future:
        submitted.append(pool.submit(function, cursor))
        return submitted[-1]

    try:
        yield submit
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            cursor.interrupt()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if not wait(submitted, timeout=BESIDE_DEADLINE_S).not_done:
            cursor.close()


def _load_and_model(con: duckdb.DuckDBPyConnection, source: DataSource, read: Future, hashed: Future,
                    timings: dict[str, float], beside: Callable[..., Future],
                    scan: ExportScan) -> tuple[LoadReport, dict[str, int | None], str, Manifest, Future]:
    """Load the export and create the models that read raw tables only (first_models) in one transaction,
    committed; then build the other models and commit, while the data tests that read nothing else
    (first_tests) run on a cursor `beside`. Meanwhile (futures begun before the connection was opened:
    build) the export is hashed, so that `greenery report` can reuse this build (`hashed`), and the
    manifest read (`read`). Returns what was loaded, the models' rows, the fingerprint, the manifest
    and the first tests' results (a future).

    Two transactions, not one: models that read tables still uncommitted in their own transaction
    read them more slowly (fct_orders took 2.7 s instead of 1.2 s at scale 1000), and the first tests
    read only what is committed. All or nothing still holds: the file being built is only published
    when the whole build succeeded."""
    first: dict[str, int | None] = {}

    def make_first() -> None:  # in the load's transaction, once the raw tables are there
        first.clear()  # the checking path's load may run it a second time
        first.update(make_models(con, first_models(read.result())))

    with _timed(timings, "load"):
        loaded = load_export(con, source.path, before_commit=make_first, scan=scan)
    manifest = read.result()
    enough = threading.Event()
    tested = beside(lambda cursor: _timed_call(timings, "data tests beside the models", _tests_until, cursor,
                                               first_tests(manifest), enough))
    try:
        checkpoint("models")
        db.run(con, "begin transaction")
        with _timed(timings, "models"):
            model_rows = {**first, **make_models(con, [m for m in manifest.build_order() if m.name not in first],
                                                      COMPUTED_ONCE)}
            _record_model_runs(con, manifest, model_rows)
        with _timed(timings, "commit"):
            db.run(con, "commit")
    finally:
        enough.set()  # the tests not begun beside the models run with the others (_test_and_record)
    return loaded, model_rows, hashed.result(), manifest, tested


# The data tests beside the models are run a few at a time, so that those not begun when the models are
# made join the other tests, on every core, rather than keep them waiting.
BESIDE_BATCH = 8


def _tests_until(cursor: duckdb.DuckDBPyConnection, tests: list[DataTest], enough: threading.Event) -> list[TestResult]:
    """`tests` on `cursor`, BESIDE_BATCH at a time, until `enough` is set: the results of those run."""
    results: list[TestResult] = []
    for start in range(0, len(tests), BESIDE_BATCH):
        if enough.is_set():
            break
        results += run_batch(cursor, tests[start:start + BESIDE_BATCH])
    return results


def _not_run(manifest: Manifest, run: list[TestResult]) -> list[DataTest]:
    done = {result.name for result in run}
    return [test for test in manifest.tests if test.name not in done]


def _in_declaration_order(manifest: Manifest, *found: list[TestResult]) -> list[TestResult]:
    by_name = {result.name: result for results in found for result in results}
    return [by_name[test.name] for test in manifest.tests]


def _test_and_record(con: duckdb.DuckDBPyConnection, manifest: Manifest, history: Path, warehouse: Path,
                     source: DataSource, loaded: LoadReport, built_at: datetime,
                     timings: dict[str, float], log, first: Future, since: int | None = None,
                     settings: WatchSettings | None = None,
                     findings: list[Finding] | None = None) -> tuple[list[TestResult], int | None]:
    """Run the other data tests (those `first` is not running) on cursors of their own while the history
    is prepared on `con`; the history keeps this build (pending until its warehouse is published) only if
    no error-level test failed.

    Meanwhile a checkpoint writes the models into the file: it compresses on one thread (3 s at scale
    1000), and would otherwise be paid when the connection closes, with nothing else to do. The history is
    attached before the checkpoint begins: attaching its file while the checkpoint wrote the models waited
    for the checkpoint (50 ms on the real export, of which 1.5 ms of CPU). It was checked when the build
    began (build), under the lock held since."""
    db.run(con, "set fsync_mode = 'standard'")  # the history's every commit is synced, as is the checkpoint
    attach_history(con, history, checked=True)
    cursors = [_cursor(con) for _ in range(os.cpu_count() or 1)]  # opened here: `con` stays on one thread
    writer = _cursor(con)
    try:
        with ThreadPoolExecutor(max_workers=2) as background:
            written = background.submit(_timed_call, timings, "checkpoint", _checkpoint_after, writer, first)
            tested = background.submit(lambda: _timed_call(timings, "data tests", run_tests, cursors,
                                                           _not_run(manifest, first.result())))
            every = functools.cache(lambda: _in_declaration_order(manifest, first.result(), tested.result()))
            with _timed(timings, "history"):
                build_id = record_build(con, history, warehouse, built_at, source.kind, source.label,
                                        loaded.total_rows, keep=lambda: not summarize(every())["fail"],
                                        log=log, since=since, export=export_facts(source, loaded),
                                        measures=lambda: headline_measures(con, every()),
                                        settings=settings, findings=findings, attached=True)
            written.result()
            return every(), build_id
    finally:
        for cursor in (*cursors, writer):
            cursor.close()


def _checkpoint_after(con: duckdb.DuckDBPyConnection, first: Future) -> None:
    """_checkpoint once the data tests beside the models are done (BESIDE_DEADLINE_S at most): begun while
    their transaction, older than the models' commit, was open, it left part of its writing to the close
    (scale 100: the close 0.04 -> 0.09 s)."""
    wait([first], timeout=BESIDE_DEADLINE_S)
    _checkpoint(con)


def _checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """Write what is committed into the database file now; if DuckDB declines (another transaction
    is writing), closing the connection writes it as it always does."""
    with contextlib.suppress(duckdb.TransactionException):
        db.run(con, "checkpoint")


def build(source: DataSource, warehouse: Path, manifest: Manifest | None = None,
          history: Path | None = None, inputs: str | None = None, built_at: datetime | None = None,
          log=print, since: int | None = None, watch: WatchSettings | None = None,
          instance: Future | None = None) -> BuildResult:
    """Build the warehouse at `warehouse` from `source`; raise InputError, UsageError or DataTestFailure.

    The caller holds the warehouse's lock (greenery.cli, greenery.publisher.run). `inputs` is the export's
    fingerprint when the caller has computed it; `built_at` pins the build time (reproducible builds),
    else now. The build is recorded in the history (`history`, default $GREENERY_HISTORY or
    data/history/history.duckdb) as pending, and marked published once the new warehouse is in place;
    its "what changed" tables compare with build `since` (greenery.warehouse.history.record_build).
    The export is watched with `watch` (default thresholds: greenery.warehouse.watch). `instance`: an
    in-memory connection being opened (db.connect_beside), which the build takes and closes (_open).
    """
    history = config.absolute(history or config.history_path())
    pinned, built_at = built_at, (built_at or datetime.now(UTC)).replace(microsecond=0)
    check_warehouse_target(warehouse)
    check_history_target(history, warehouse)
    check_digest_cache(config.digest_cache_path())
    started = time.perf_counter()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds per phase, for `make bench`
    building = config.building_path(warehouse)
    discard_building(warehouse)  # we hold the warehouse's lock: a leftover is from a killed run
    with exclusive(history, "the history"), ThreadPoolExecutor(max_workers=2) as background:
        check_history(history)  # a foreign file is refused before any work, not after the models
        # Begun before the connection, which leaves Python's lock while DuckDB opens the file (~20 ms):
        # the fingerprint (unless the caller computed it) and the manifest (unless given), both in Python.
        # The fingerprint's read of each file counts its records for the load too (records.ExportScan).
        scan = ExportScan(config.max_record_bytes, fingerprinted=not inputs)
        hashed = background.submit(
            lambda: inputs or _timed_call(timings, "fingerprint", fingerprint.warehouse, source.path, pinned,
                                          scan.export))
        read = background.submit(lambda: manifest or load_manifest())
        con = _open(building, instance, config.build_threads(export_bytes(source.path)))
        build_id = None
        findings: list[Finding] = []
        try:
            checkpoint("load")
            with _beside(con) as beside:
                with _cpu(cpu, "fingerprint, load, models, commit"):
                    loaded, model_rows, inputs, manifest, first = _load_and_model(con, source, read, hashed,
                                                                                  timings, beside, scan)
                checkpoint("tests")
                with _cpu(cpu, "data tests and history"):
                    tests, build_id = _test_and_record(con, manifest, history, warehouse, source, loaded, built_at,
                                                       timings, log, first, since, watch, findings)
            checkpoint("history")
            # The history's part is committed (and synced): until the file is written and synced whole
            # (_write), only the file being built is written.
            db.run(con, "set fsync_mode = 'none'")
            db.run(con, "begin transaction")
            store_results(con, tests)
            info = _store_build_info(con, source, loaded, inputs, built_at, build_id)
            db.run(con, "commit")
            measured = db.scalar(con, "select count(distinct build_id) from history_metrics") if build_id else None
            with _timed(timings, "write"), _cpu(cpu, "write"):
                _write(con, building)
            result = BuildResult(source, warehouse, loaded, model_rows, tests, 0.0, info, timings, findings, measured,
                                 manifest)
            # Nobody's database made where the build renames to meanwhile: checked before the results are
            # written, so that a refusal leaves the last build's results with the last build's warehouse.
            failed = bool(result.summary["fail"])
            check_rename_target(*((config.rejected_path(warehouse), warehouse, "rejected warehouse") if failed
                                  else (warehouse, warehouse, "warehouse")))
            write_json(config.run_results_path(warehouse), tests, {**info, "timings": timings, "cpu_seconds": cpu})
            if failed:
                building.replace(config.rejected_path(warehouse))
                raise DataTestFailure(result)
            checkpoint("publish warehouse")
            building.replace(warehouse)  # the commit point: the history follows it
            build_id, published = None, build_id
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                db.run(con, "set fsync_mode = 'standard'")  # closing writes the history, if attached: synced
            with contextlib.suppress(duckdb.Error):  # a database DuckDB invalidated (a full disk) closes with an error
                con.close()
            discard_building(warehouse)  # with its logs, left when DuckDB could not close it
            if build_id is not None:
                with contextlib.suppress(Exception):
                    forget(history, build_id)
            raise
        checkpoint("mark published")
        if published is None:
            con.close()
        else:  # recorded above, under the same lock; the build's connection, the history still attached
            mark_published(history, published, checked=True, con=con, attached=True)
    result.seconds = time.perf_counter() - started
    return result
