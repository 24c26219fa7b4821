"""Content fingerprints: what a warehouse, an executed chapter and a rendered book were made from.

`greenery report` compares them with the ones stored beside its outputs and redoes only the work
whose inputs changed: an unchanged export and unchanged code reuse the warehouse, the executed
chapters and the published book. Fingerprints hash file contents (never timestamps), so a touched
but identical file costs nothing and an edited one is always noticed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from importlib import metadata
from pathlib import Path

from greenery import config
from greenery.warehouse.contract import RAW_TABLES

# Libraries whose version can change a figure, a chart or a page.
RENDERING_LIBRARIES = ("duckdb", "numpy", "pandas", "matplotlib", "papermill", "jupytext", "myst-nb",
                       "jupyter-book", "sphinx-book-theme", "Sphinx")


def _digest(parts: Iterable[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "little"))  # length-prefixed: no two part lists collide
        hasher.update(part)
    return hasher.hexdigest()


def _file_parts(files: Iterable[Path], root: Path) -> Iterable[bytes]:
    for path in files:
        yield path.relative_to(root).as_posix().encode()
        try:
            with path.open("rb") as handle:
                yield hashlib.file_digest(handle, "sha256").digest()
        except FileNotFoundError:  # the loader reports a missing file properly; here it is just different
            yield b"missing"


def combine(*values: str) -> str:
    return _digest(value.encode() for value in values)


@cache
def code() -> str:
    """The package's own code, models and queries, and the versions of the libraries that draw the book."""
    files = sorted(p for p in config.PACKAGE_DIR.rglob("*")
                   if p.suffix in {".py", ".sql", ".yml"} and "__pycache__" not in p.parts)
    versions = []
    for name in RENDERING_LIBRARIES:
        try:
            versions.append(f"{name}=={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            versions.append(f"{name} missing".encode())
    return _digest([*_file_parts(files, config.PACKAGE_DIR), *versions])


def export(data_dir: Path) -> str:
    """The seven files of an export, by content."""
    return _digest(_file_parts((data_dir / t.file_name for t in RAW_TABLES), data_dir))


def warehouse(data_dir: Path, pinned_build_time: datetime | None = None) -> str:
    """What a build's result depends on: the export, the code, and a pinned build time if any."""
    pinned = pinned_build_time.isoformat() if pinned_build_time else ""
    return combine("warehouse", export(data_dir), code(), pinned)


def chapter(warehouse_fingerprint: str, notebook: Path, parameters: dict) -> str:
    """An executed chapter depends on its text, the warehouse it reads and its parameters."""
    return combine("chapter", warehouse_fingerprint, hashlib.sha256(notebook.read_bytes()).hexdigest(), code(),
                   json.dumps(parameters, sort_keys=True))


def book(chapters: dict[str, str], sources: Iterable[Path]) -> str:
    """A rendered book depends on its executed chapters, the book's settings, its static files."""
    files = sorted(sources)
    return _digest([*(f"{name}={key}".encode() for name, key in chapters.items()),
                    *_file_parts(files, config.ROOT), code().encode()])
