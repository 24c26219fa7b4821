"""`greenery build`: choose the data, load it, build every model, run every data test.

The warehouse is written to a temporary file beside the target and moved over it only when
the build is complete and no error-level test failed, so the previous warehouse stays usable
until a better one exists. A build that fails its data tests is kept as `<name>.rejected.duckdb`
for inspection.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from greenery import __version__, config, db, fingerprint
from greenery.contract import RAW_TABLES
from greenery.datatests import TestResult, run_tests, store_results, summarize, write_json
from greenery.errors import DataTestFailure
from greenery.history import record_build
from greenery.load import LoadReport, load_export
from greenery.locking import exclusive
from greenery.manifest import Manifest, load_manifest


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
            return f"the generated sample (seed {self.sample['seed']}, scale {self.sample['scale']:g})"
        return "a Greenery export"


def _is_complete_export(folder: Path) -> bool:
    return all((folder / t.file_name).is_file() for t in RAW_TABLES)


def choose_data(data_dir: str | os.PathLike | None = None, log=print) -> DataSource:
    """--data-dir, else $GREENERY_DATA_DIR, else data/raw/ when complete, else the generated sample."""
    if data_dir:
        path, chosen_by = Path(data_dir).expanduser(), "--data-dir"
    elif config.env_path("GREENERY_DATA_DIR"):
        path, chosen_by = config.env_path("GREENERY_DATA_DIR"), "$GREENERY_DATA_DIR"
    elif _is_complete_export(config.RAW_DIR):
        path, chosen_by = config.RAW_DIR, "data/raw/"
    else:
        from greenery.sample import ensure_sample  # numpy and pandas: only when a sample is needed

        path, chosen_by = config.SAMPLE_DIR, "default: no export in --data-dir, $GREENERY_DATA_DIR or data/raw/"
        if ensure_sample(path):
            log(f"No export found: generated a sample into {path}")
    marker = path / config.SAMPLE_MARKER
    sample = json.loads(marker.read_text()) if marker.is_file() else None
    return DataSource(path.resolve(), chosen_by, sample)


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

    @property
    def summary(self) -> dict[str, int]:
        return summarize(self.tests)


def build_models(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> dict[str, int | None]:
    """Create every model in dependency order; record them with the row counts of tables in `model_runs`.

    A view is not counted: counting it would compute it, which is what making it a view avoids."""
    rows: dict[str, int | None] = {}
    for model in manifest.build_order():
        db.run(con, f"create or replace {model.materialized} {model.name} as {model.sql}")
        counted = model.materialized == "table"
        rows[model.name] = db.scalar(con, f"select count(*) from {model.name}") if counted else None
    db.run(con, "create or replace table model_runs (model varchar, folder varchar, materialized varchar, "
                "row_count bigint)")
    con.executemany("insert into model_runs values (?, ?, ?, ?)",
                    [(name, manifest.models[name].folder, manifest.models[name].materialized, n)
                     for name, n in rows.items()])
    return rows


def build_time() -> datetime:
    """Now, or $SOURCE_DATE_EPOCH when set (the reproducible-builds convention the baselines use)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return now.replace(microsecond=0)


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


def built_fingerprint(warehouse: Path) -> str | None:
    """The fingerprint of the export and code a warehouse was built from; None if it cannot be read."""
    if not warehouse.is_file():
        return None
    try:
        con = db.connect(warehouse, read_only=True)
    except duckdb.Error:
        return None
    try:
        return db.scalar(con, "select fingerprint from build_info")
    except duckdb.Error:
        return None
    finally:
        con.close()


def _store_build_info(con: duckdb.DuckDBPyConnection, source: DataSource, loaded: LoadReport,
                      inputs: str, built_at: datetime) -> dict:
    span = db.rows(con, "select min(created_at), max(created_at) from stg_events")[0]
    orders = db.rows(con, "select min(created_at), max(created_at) from stg_orders")[0]
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
               $rows_read::bigint as rows_read, $fingerprint as fingerprint
        """,
        info,
    )
    db.run(con, "create or replace table raw_row_counts (table_name varchar, row_count bigint)")
    con.executemany("insert into raw_row_counts values (?, ?)", list(loaded.rows.items()))
    return info


def _load_and_model(con: duckdb.DuckDBPyConnection, source: DataSource, manifest: Manifest,
                    timings: dict[str, float], inputs: str | None) -> tuple[LoadReport, dict[str, int | None], str]:
    """Load the export and build every model in one transaction (a file database pays for each
    commit, and a build is all or nothing anyway), hashing the export meanwhile (unless the caller
    already did) so that `greenery report` can reuse this build. Returns what was loaded, the
    models' rows, the fingerprint."""
    with ThreadPoolExecutor(max_workers=1) as hasher:
        hashed = hasher.submit(
            lambda: inputs or _timed_call(timings, "fingerprint", fingerprint.warehouse, source.path))
        db.run(con, "begin transaction")
        with _timed(timings, "load"):
            loaded = load_export(con, source.path)
        with _timed(timings, "models"):
            model_rows = build_models(con, manifest)
        with _timed(timings, "commit"):
            db.run(con, "commit")
        return loaded, model_rows, hashed.result()


def _test_and_record(con: duckdb.DuckDBPyConnection, manifest: Manifest, history: Path, source: DataSource,
                     loaded: LoadReport, built_at: datetime, timings: dict[str, float]) -> list[TestResult]:
    """Run the data tests on cursors of their own while the history is prepared on `con`; the history
    keeps this build only if no error-level test failed."""
    cursors = [con.cursor() for _ in range(os.cpu_count() or 1)]  # opened here: `con` stays on one thread
    try:
        with ThreadPoolExecutor(max_workers=1) as tester:
            tested = tester.submit(_timed_call, timings, "data tests", run_tests, cursors, manifest.tests)
            with _timed(timings, "history"):
                record_build(con, history, built_at, source.kind, source.label, loaded.total_rows,
                             keep=lambda: not summarize(tested.result())["fail"])
            return tested.result()
    finally:
        for cursor in cursors:
            cursor.close()


def build(source: DataSource, warehouse: Path, manifest: Manifest | None = None,
          history: Path | None = None, inputs: str | None = None) -> BuildResult:
    """Build the warehouse at `warehouse` from `source`; raise InputError or DataTestFailure.

    `inputs` is the export's fingerprint when the caller has computed it (`greenery report` has).
    A build that passes its error-level tests is recorded in the history (`history`, default
    $GREENERY_HISTORY or data/history/history.duckdb) before the new warehouse is moved in place.
    """
    manifest = manifest or load_manifest()
    history = history or config.history_path()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds per phase, for `make bench`
    with exclusive(warehouse, "the warehouse"):
        building = warehouse.with_name(f".{warehouse.name}.building")
        building.unlink(missing_ok=True)
        con = db.connect(building)
        try:
            with _cpu(cpu, "fingerprint, load, models, commit"):
                loaded, model_rows, inputs = _load_and_model(con, source, manifest, timings, inputs)
            built_at = build_time()
            with _cpu(cpu, "data tests and history"):
                tests = _test_and_record(con, manifest, history, source, loaded, built_at, timings)
            db.run(con, "begin transaction")
            store_results(con, tests)
            info = _store_build_info(con, source, loaded, inputs, built_at)
            db.run(con, "commit")
            with _timed(timings, "write"), _cpu(cpu, "write"):
                con.close()
        except BaseException:
            con.close()
            building.unlink(missing_ok=True)
            raise
        result = BuildResult(source, warehouse, loaded, model_rows, tests, 0.0, info, timings)
        write_json(config.run_results_path(warehouse), tests, {**info, "timings": timings, "cpu_seconds": cpu})
        if result.summary["fail"]:
            building.replace(warehouse.with_name(f"{warehouse.stem}.rejected{warehouse.suffix}"))
            raise DataTestFailure(result)
        building.replace(warehouse)
    result.seconds = time.perf_counter() - started
    return result
