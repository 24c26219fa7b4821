"""Every path the project uses, in one place.

Paths default to folders of the project checkout; each can be overridden on the command line,
and the data directory and warehouse also through the environment (GREENERY_DATA_DIR,
GREENERY_WAREHOUSE), which is how the notebooks and the nbval baselines find them.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
MODELS_DIR = PACKAGE_DIR / "models"


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
NOTEBOOKS_DIR = ROOT / "notebooks"
BOOK_DIR = ROOT / "book"  # static pages and assets of the book
TOC_PATH = ROOT / "_toc.yml"
BOOK_CONFIG_PATH = ROOT / "_config.yml"
BUILD_DIR = ROOT / "_build"
HTML_DIR = BUILD_DIR / "html"  # the published book
BASELINES_DIR = ROOT / "tests" / "baselines"

SAMPLE_MARKER = "sample.json"  # written beside a generated sample's CSVs: its seed, scale and version
SAMPLE_SEED = 42
SAMPLE_SCALE = 1.0


def env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def warehouse_path(explicit: str | os.PathLike | None = None) -> Path:
    """--warehouse, else $GREENERY_WAREHOUSE, else data/warehouse/greenery.duckdb."""
    if explicit:
        return Path(explicit).expanduser()
    return env_path("GREENERY_WAREHOUSE") or WAREHOUSE_PATH


def run_results_path(warehouse: Path) -> Path:
    """The JSON result of the data tests, written beside its warehouse."""
    return warehouse.with_name(f"{warehouse.stem}.run_results.json")


def chapter_cache_path(warehouse: Path) -> Path:
    """Executed chapters kept by fingerprint beside the warehouse they read, reused when nothing changed."""
    return warehouse.with_name(f"{warehouse.stem}.chapters")


def history_path(explicit: str | os.PathLike | None = None) -> Path:
    """--history, else $GREENERY_HISTORY, else data/history/history.duckdb."""
    if explicit:
        return Path(explicit).expanduser()
    return env_path("GREENERY_HISTORY") or HISTORY_PATH


def marts_path(explicit: str | os.PathLike | None = None, warehouse: Path | None = None) -> Path:
    """Where `greenery build --engine spark` lands the marts as Parquet: --marts-dir, else
    $GREENERY_MARTS_DIR, else beside the warehouse (data/warehouse/greenery.marts/ by default)."""
    if explicit:
        return Path(explicit).expanduser()
    warehouse = warehouse or warehouse_path()
    return env_path("GREENERY_MARTS_DIR") or warehouse.with_name(f"{warehouse.stem}.marts")
