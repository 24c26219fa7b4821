"""Every path the project uses, in one place.

Paths default to folders of the project checkout; each can be overridden on the command line,
and the data directory and warehouse also through the environment (GREENERY_DATA_DIR,
GREENERY_WAREHOUSE), which is how the notebooks and the nbval baselines find them.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from greenery.errors import UsageError

PACKAGE_DIR = Path(__file__).resolve().parent
MODELS_DIR = PACKAGE_DIR / "warehouse" / "models"  # the SQL models and their YAML, one folder per layer
SNAPSHOTS_FILE = PACKAGE_DIR / "warehouse" / "snapshots" / "_snapshots.yml"  # tables with a type-2 history
ANALYSES_DIR = PACKAGE_DIR / "chapter_kit" / "analyses"  # the named queries the chapters run and show


def _find_root() -> Path:
    """The project checkout: the folder holding pyproject.toml above the package, else cwd."""
    for candidate in PACKAGE_DIR.parents:
        if (candidate / "pyproject.toml").is_file() and (candidate / "_toc.yml").is_file():
            return candidate
    return Path.cwd()


ROOT = _find_root()
DATA_DIR = ROOT / "data"
RAW_DIR = DATA_DIR / "raw"  # an export an analyst drops in; read, never written
SAMPLE_DIR = DATA_DIR / "sample"  # the generated sample, rebuilt when missing
WAREHOUSE_PATH = DATA_DIR / "warehouse" / "greenery.duckdb"
HISTORY_PATH = DATA_DIR / "history" / "history.duckdb"  # survives rebuilds; never replaced
BOOK_DIR = ROOT / "book"  # static pages and assets of the book
TOC_PATH = ROOT / "_toc.yml"
BOOK_CONFIG_PATH = ROOT / "_config.yml"
BUILD_DIR = ROOT / "_build"
HTML_DIR = BUILD_DIR / "html"  # the published book
BASELINES_DIR = ROOT / "tests" / "baselines"
BENCH_DIR = DATA_DIR / "bench"  # `make bench`: generated exports and bench.csv
SHARED_EXPORT = ROOT.parent / "shared" / "greenery"  # where the real export sits beside a checkout (CI)
DBT_BIN = ROOT / ".venv-dbt" / "bin" / "dbt"  # dbt-core and dbt-duckdb, a peer in its own venv (make dbt-test)
BOOK_STAMP = ".greenery-book.json"  # inside a published book: its fingerprints and the files it wrote
DBT_STAMP = ".greenery-dbt.json"  # inside a dbt project `greenery export-dbt` wrote: the files it wrote
# What dbt itself writes into a project it runs (`target/`, `logs/`, its database...): left alone by
# a new export into the same folder, never listed as ours, never written or removed by greenery.
DBT_OWN_FILES = ("target", "logs", "dbt_packages", "package-lock.yml", ".user.yml", "dbt.duckdb", "dbt.duckdb.wal",
                 "dbt.duckdb.wal.checkpoint")  # the database's logs: log_paths

# Digests of export files, keyed by what the file system says of each file (see fingerprint.export).
DIGEST_CACHE_PATH = DATA_DIR / "cache" / "export-digests.json"
# What PyYAML and DuckDB's parser made of the models' YAML and SQL, keyed by their text (see manifest.Parsed).
PARSE_CACHE_PATH = DATA_DIR / "cache" / "parsed.json"
SAMPLE_MARKER = "sample.json"  # written beside a generated sample's CSVs: its seed, scale and version
SAMPLE_SEED = 42
SAMPLE_SCALE = 1.0
SAMPLE_MAX_SCALE = 10_000  # about 10 GB of CSV: beyond it a sample is a typo, not a test

CHAPTER_TIMEOUT = 600  # seconds one chapter may run before it is stopped and reported (exit 4)
CHAPTER_TIMEOUT_MAX = 7 * 24 * 3600  # a week: a longer limit is a typo (and past the event loop's clock)
RENDER_TIMEOUT = 900  # seconds Sphinx may take to render the book (about 2 s today) before it is stopped (exit 4)


def env_path(name: str) -> Path | None:
    """A path from the environment; unset and empty are the same (nothing chosen)."""
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def absolute(path: str | os.PathLike) -> Path:
    """`path` as an absolute path, `~` expanded. Leading `..` of a relative path are applied to the current
    folder, which the system names without links (so this is exact); any other `..` is kept as written,
    for greenery.outputs.ownership to refuse (after a link, `x/..` is not the folder it seems to be)."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    base, parts = Path.cwd(), path.parts
    while parts and parts[0] == "..":
        base, parts = base.parent, parts[1:]
    return base.joinpath(*parts)


def data_dir_choice(explicit: str | os.PathLike | None = None) -> tuple[Path, str] | None:
    """Which export to read and why: --data-dir, else $GREENERY_DATA_DIR, else data/raw/ when it holds
    the seven files; None means none was given (the caller falls back to the generated sample)."""
    from greenery.contract import RAW_TABLES

    if explicit is not None:
        if not str(explicit).strip():
            from greenery.errors import UsageError

            raise UsageError("--data-dir is empty: name the export's folder, or leave the option out")
        return Path(explicit).expanduser(), "--data-dir"
    if env_path("GREENERY_DATA_DIR"):
        return env_path("GREENERY_DATA_DIR"), "$GREENERY_DATA_DIR"
    if all((RAW_DIR / t.file_name).is_file() for t in RAW_TABLES):
        return RAW_DIR, "data/raw/"
    return None


def real_export_dir() -> Path | None:
    """The real export for tests and benchmarks: $GREENERY_DATA_DIR, else ../shared/greenery; None if absent."""
    candidate = env_path("GREENERY_DATA_DIR") or SHARED_EXPORT
    return candidate if (candidate / "orders.csv").is_file() else None


def pinned_build_time() -> datetime | None:
    """$SOURCE_DATE_EPOCH (the reproducible-builds convention), read once by the command line."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return None
    refused = _setting_error("SOURCE_DATE_EPOCH", epoch, "whole seconds since 1970-01-01 UTC, e.g. 1612915200")
    if not epoch.strip().isdigit():  # the convention's form: a decimal count of seconds, nothing else
        raise refused
    try:
        return datetime.fromtimestamp(int(epoch), UTC)
    except (ValueError, OverflowError, OSError):  # beyond the year 9999
        raise refused from None


def warehouse_path(explicit: str | os.PathLike | None = None) -> Path:
    """--warehouse, else $GREENERY_WAREHOUSE, else data/warehouse/greenery.duckdb."""
    if explicit:
        return Path(explicit).expanduser()
    return env_path("GREENERY_WAREHOUSE") or WAREHOUSE_PATH


def digest_cache_path() -> Path:
    """$GREENERY_DIGEST_CACHE, else data/cache/export-digests.json."""
    return env_path("GREENERY_DIGEST_CACHE") or DIGEST_CACHE_PATH


def parse_cache_path() -> Path:
    """$GREENERY_PARSE_CACHE, else data/cache/parsed.json."""
    return env_path("GREENERY_PARSE_CACHE") or PARSE_CACHE_PATH


def run_results_path(warehouse: Path) -> Path:
    """The JSON result of the data tests, written beside its warehouse."""
    return warehouse.with_name(f"{warehouse.stem}.run_results.json")


def rejected_path(warehouse: Path) -> Path:
    """A build that failed an error-level data test, kept for inspection."""
    return warehouse.with_name(f"{warehouse.stem}.rejected{warehouse.suffix}")


def building_path(warehouse: Path) -> Path:
    """Where a warehouse is built before it is moved over the published one."""
    return warehouse.with_name(f".{warehouse.name}.building")


def wal_path(database: Path) -> Path:
    """DuckDB's write-ahead log beside a database file it writes (DuckDB names it; it replays and
    removes it when it opens the database)."""
    return database.with_name(f"{database.name}.wal")


def log_paths(database: Path) -> tuple[Path, Path]:
    """Every log DuckDB keeps beside a database file it writes, each replayed and then deleted whatever it
    holds when DuckDB opens (or closes) the database: its write-ahead log, and the log of the commits made
    while a checkpoint ran (`.wal.checkpoint`, DuckDB 1.4 on: a user's file there was gone after a build)."""
    return wal_path(database), database.with_name(f"{database.name}.wal.checkpoint")


def lock_path(target: Path) -> Path:
    """The lock file beside an output (greenery.outputs.locking)."""
    return target.with_name(target.name + ".lock")


def chapter_cache_path(warehouse: Path) -> Path:
    """Executed chapters kept by fingerprint beside the warehouse they read, reused when nothing changed."""
    return warehouse.with_name(f"{warehouse.stem}.chapters")


def render_cache_path(warehouse: Path) -> Path:
    """Sphinx's environment and pages from the last render of the book of this warehouse's chapters, so
    that the next render reads and writes only the pages that changed (greenery.publisher.book_render)."""
    return warehouse.with_name(f"{warehouse.stem}.render")


def history_path(explicit: str | os.PathLike | None = None) -> Path:
    """--history, else $GREENERY_HISTORY, else data/history/history.duckdb."""
    if explicit:
        return Path(explicit).expanduser()
    return env_path("GREENERY_HISTORY") or HISTORY_PATH


# DuckDB's resources, set on purpose rather than left to its defaults (all of the machine's memory,
# temporary files beside the database). Every connection applies them (db.connect):
# - threads: one per core, so a query uses the whole machine; $GREENERY_DUCKDB_THREADS lowers it on
#   a shared machine. A build of a small export asks for one (build_threads).
# - memory_limit: what DuckDB's buffer manager may hold before it spills hash tables, sorts and
#   pages to disk. 1 GB keeps `greenery report` at 1000x the real export under 2 GB for all its
#   processes; a larger export spills instead of failing. $GREENERY_DUCKDB_MEMORY (e.g. "4GB")
#   raises it where memory is plentiful.
# - temp_directory: where it spills, inside the data folder (never /tmp, which may be a small RAM
#   disk); $GREENERY_DUCKDB_TEMP moves it.
# - preserve_insertion_order off: a model is a set, not a sequence (every reader that shows rows
#   orders them); DuckDB can then write tables in parallel without buffering to keep row order.
DUCKDB_TEMP_DIR = DATA_DIR / "duckdb_tmp"


MEMORY_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B|%)\s*", re.IGNORECASE)  # what DuckDB reads


def _setting_error(name: str, value: str, expected: str):
    from greenery.errors import UsageError

    return UsageError(f"${name}={value!r}: expected {expected}")


MIN_DUCKDB_MEMORY = 64 * 10**6  # below it DuckDB cannot pin the blocks a build of even the real export needs
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # as DuckDB reads them


def _memory_bytes(size: re.Match) -> float:
    """A memory size as DuckDB reads it (a MEMORY_SIZE match), in bytes; `N%` is a share of the machine's memory."""
    number, unit = size.groups()
    if unit == "%":
        return float(number) / 100 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return float(number) * _UNITS[unit.lower()]


def duckdb_settings() -> dict[str, object]:
    """The settings db.connect applies to every DuckDB connection, read from the environment each time.
    A value DuckDB would refuse is a UsageError (exit 2) naming the variable."""
    threads = os.environ.get("GREENERY_DUCKDB_THREADS")
    memory = os.environ.get("GREENERY_DUCKDB_MEMORY")
    # ASCII digits only: str.isdigit takes '²', which int() cannot read (an unexpected ValueError, exit 5)
    if threads and not (re.fullmatch(r"\s*[0-9]+\s*", threads) and 1 <= int(threads) <= 4096):
        raise _setting_error("GREENERY_DUCKDB_THREADS", threads, "a whole number of threads from 1 to 4096")
    size = MEMORY_SIZE.fullmatch(memory or "")
    if memory and not (size and _memory_bytes(size) >= MIN_DUCKDB_MEMORY):
        raise _setting_error("GREENERY_DUCKDB_MEMORY", memory, "a size of at least 64MB such as 4GB, 512MiB or 50%")
    return {
        "threads": int(threads or os.cpu_count() or 1),
        "memory_limit": memory or "1GB",
        "temp_directory": str(env_path("GREENERY_DUCKDB_TEMP") or DUCKDB_TEMP_DIR),
        "preserve_insertion_order": False,
    }


# An export whose CSVs together hold at most this many bytes is built with DuckDB running each query on the
# thread that asks for it (threads 1): its tables fill a row group or two, too little for a query to share
# out, and handing a query's few tasks to DuckDB's other thread cost more than it ran (the real export,
# 1.1 MB: `greenery build` 0.36 s -> 0.32 s median wall, 0.455 -> 0.42 CPU s). The build still uses every
# core: its data tests and checkpoint run on threads of their own beside the models and the history
# (greenery.warehouse.build). The sample at scale 10 (11 MB): 0.55 -> 0.525 s; at scale 30 (31 MB) the
# medians were equal and two threads' best run the faster (0.78 against 0.93 s): there a query's row groups
# start to be worth sharing out (docs/engines-and-scale.md, "DuckDB's resources").
SMALL_EXPORT_BYTES = 16 * 10**6


def build_threads(export_bytes: int) -> int:
    """The DuckDB threads `greenery build` runs with on an export of `export_bytes` bytes: 1 for a small one
    (SMALL_EXPORT_BYTES), else duckdb_settings()'s. $GREENERY_DUCKDB_THREADS, when set, always wins."""
    settings = duckdb_settings()["threads"]
    if os.environ.get("GREENERY_DUCKDB_THREADS") or export_bytes > SMALL_EXPORT_BYTES:
        return settings
    return 1


def check_duckdb_settings() -> None:
    """Before a command's work: the settings above, and that DuckDB can spill into its temp folder
    (else it fails mid-load and the error names the CSV it was reading). A folder that is missing is
    created as DuckDB would, probed, and removed again."""
    import tempfile

    folder = Path(duckdb_settings()["temp_directory"])
    made = False
    try:
        if not folder.is_dir():
            folder.mkdir()  # not its parents: DuckDB does not make them either
            made = True
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as failure:
        if os.environ.get("GREENERY_DUCKDB_TEMP"):
            why = failure.strerror or str(failure)
            raise _setting_error("GREENERY_DUCKDB_TEMP", os.environ["GREENERY_DUCKDB_TEMP"],
                                 f"a folder DuckDB can write its spill files in ({why})") from None
        if folder.parent.is_dir():  # the default, data/duckdb_tmp/, in a checkout that cannot be written
            raise
    finally:
        if made:
            folder.rmdir()
# The longest CSV record the loader reads, in bytes without its line ending. DuckDB's CSV reader
# drops a record longer than its buffer without a word, so the loader counts and measures every
# record itself (warehouse/records.py), refuses one longer than this, and gives DuckDB this limit
# (max_line_size) with a buffer 16 times larger, its own default ratio. 2,000,000 is DuckDB's
# default limit: far above any real record. $GREENERY_MAX_RECORD_BYTES changes it (tests lower it).
MAX_RECORD_BYTES = 2_000_000


def max_record_bytes() -> int:
    value = os.environ.get("GREENERY_MAX_RECORD_BYTES") or str(MAX_RECORD_BYTES)
    if not value.isdigit() or not 0 < int(value) <= 1 << 30:
        raise UsageError(f"GREENERY_MAX_RECORD_BYTES={value!r}: expected a number of bytes from 1 to {1 << 30:,}")
    return int(value)


def marts_path(explicit: str | os.PathLike | None = None, warehouse: Path | None = None) -> Path:
    """Where `greenery build --engine spark` lands the marts as Parquet: --marts-dir, else
    $GREENERY_MARTS_DIR, else beside the warehouse (data/warehouse/greenery.marts/ by default)."""
    if explicit:
        return Path(explicit).expanduser()
    warehouse = warehouse or warehouse_path()
    return env_path("GREENERY_MARTS_DIR") or warehouse.with_name(f"{warehouse.stem}.marts")
