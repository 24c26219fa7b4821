"""Content fingerprints: what a warehouse, an executed chapter and a rendered book were made from.

`greenery report` compares them with the ones stored beside its outputs and redoes only the work
whose inputs changed: an unchanged export and unchanged code reuse the warehouse, the executed
chapters and the published book. Fingerprints hash file contents (never timestamps), so a touched
but identical file costs nothing and an edited one is always noticed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Protocol

from greenery import config
from greenery.contract import RAW_TABLES
from greenery.outputs import atomic, ownership

# Libraries whose version can change a figure, a chart or a page.
RENDERING_LIBRARIES = ("duckdb", "numpy", "pandas", "matplotlib", "papermill", "jupytext", "myst-nb",
                       "jupyter-book", "sphinx-book-theme", "Sphinx")


def _digest(parts: Iterable[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "little"))  # length-prefixed: no two part lists collide
        hasher.update(part)
    return hasher.hexdigest()


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


# A file's reader: feeds the hasher every byte of the file (hash_file; `greenery build` gives one that
# counts the file's records in the same read, greenery.warehouse.records.ExportScan).
Reader = Callable[[Path, Hasher], None]


def hash_file(path: Path, hasher: Hasher) -> None:
    """The plain reader: `path`'s bytes into `hasher`, streamed."""
    with path.open("rb") as handle:
        hashlib.file_digest(handle, lambda: hasher)  # type: ignore[arg-type]


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


def _asked(name: str) -> str | None:
    from importlib import metadata  # 40 ms of imports (the email parser among them)

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# A header line as the email parser reads METADATA (email.feedparser.headerRE): a field, or a folded line.
_HEADER = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")


def installed_version(name: str) -> str | None:
    """importlib.metadata.version(name), None when not installed, read as importlib.metadata reads it (the
    first `<name>-<version>.dist-info` folder along sys.path, the Version field of its METADATA) without
    importing it and the email parser it reads METADATA with: ~40 ms of CPU of every build. What this does
    not read exactly as importlib.metadata would (another finder, an egg, a zip, two candidates in one
    folder, a folded or odd header) is asked of importlib.metadata itself (tests/test_outputs.py compares
    both on every installed distribution)."""
    if any(hasattr(finder, "find_distributions") and finder is not PathFinder for finder in sys.meta_path):
        return _asked(name)
    wanted = _normalized(name)
    for entry in sys.path:
        root = entry or "."
        if os.path.basename(root).lower().endswith(".egg"):
            return _asked(name)
        try:
            children = os.listdir(root)
        except NotADirectoryError:  # a zip file
            return _asked(name)
        except OSError:
            continue
        found = [child for child in children if child.lower().endswith((".dist-info", ".egg-info"))
                 and _normalized(child.lower().rpartition(".")[0].partition("-")[0]) == wanted]
        if not found:
            continue
        if len(found) > 1 or not found[0].lower().endswith(".dist-info"):
            return _asked(name)
        try:
            text = Path(root, found[0], "METADATA").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return _asked(name)
        lines = text.split("\n\n", 1)[0].split("\n")
        for at, line in enumerate(lines):
            if "\r" in line or line.startswith("From ") or not _HEADER.match(line):
                return _asked(name)
            field, _, value = line.partition(":")
            if field.lower() == "version" and not line[:1].isspace():
                folded = at + 1 < len(lines) and lines[at + 1][:1] in (" ", "\t")
                return _asked(name) if folded else value.lstrip(" \t")
        return _asked(name)
    return _asked(name)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")  # importlib.metadata's Prepared.normalize


@cache
def code() -> str:
    """The package's own code, models and queries, and the versions of the libraries that draw the book."""
    files = sorted(p for p in config.PACKAGE_DIR.rglob("*")
                   if p.suffix in {".py", ".sql", ".yml"} and "__pycache__" not in p.parts)
    versions = []
    for name in RENDERING_LIBRARIES:
        version = installed_version(name)
        versions.append(f"{name}=={version}".encode() if version is not None else f"{name} missing".encode())
    return _digest([*_file_parts(files, config.PACKAGE_DIR), *versions])


# A digest is reused only for a file whose status last changed this long before the digest was taken:
# a file written in the same instant as it was hashed could change again without a visible difference
# in its times (git's "racily clean" rule).
SETTLED_NS = 2_000_000_000


def file_identity(stat: os.stat_result) -> list[int]:
    """What the file system records of a file's content: any write changes the size or the times, and
    ctime cannot be set back by any program (a copy with preserved mtime still gets a new ctime and inode)."""
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _write_cache(path: Path, cache: dict) -> None:
    if not cache:  # an empty cache would be nobody's (ownership.read_digest_cache): the old one stays
        return
    if ownership.read_digest_cache(path) is None:  # someone put a file there since it was read: theirs now
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # atomic: a reader sees the old cache or the new one; a lost update is only a re-hash
        atomic.write_text(path, json.dumps(cache, indent=0, sort_keys=True))
    except OSError:
        pass  # a read-only data folder: the digests are computed each time, nothing else changes


def file_digests(files: Iterable[Path], read: Reader = hash_file,
                 reading: Callable[[list[Path]], None] | None = None) -> dict[Path, bytes]:
    """The sha256 of each file, streamed (`read`); a digest taken earlier is reused while the file's identity
    (device, inode, size, modification and change times) is the one it had, so an unchanged export of
    a gigabyte is recognised without reading it again. `reading` is told the files that will be read,
    before the first is."""
    cache_path = config.digest_cache_path()
    found = ownership.read_digest_cache(cache_path)  # the command refused a foreign one (ownership.check_digest_cache)
    cache, changed, digests = found or {}, False, {}
    unread = []
    for path in files:
        key = str(path.resolve())
        try:
            stat = path.stat()
        except FileNotFoundError:  # the loader reports a missing file properly; here it is just different
            continue
        entry = cache.get(key)
        if (entry and entry["identity"] == file_identity(stat)
                and entry["hashed_ns"] - max(stat.st_mtime_ns, stat.st_ctime_ns) > SETTLED_NS):
            digests[path] = bytes.fromhex(entry["sha256"])
        else:
            unread.append((path, key, stat))
    if reading is not None:
        reading([path for path, _, _ in unread])
    for path, key, stat in unread:
        hashed_ns = time.time_ns()
        hasher = hashlib.sha256()
        read(path, hasher)
        digests[path] = hasher.digest()
        if path.stat().st_ctime_ns == stat.st_ctime_ns:  # not written since its identity was taken
            cache[key] = {"identity": file_identity(stat), "hashed_ns": hashed_ns, "sha256": digests[path].hex()}
            changed = True
    # entries of files that are gone (an export replaced, a test's folder) are dropped
    if changed and found is not None:
        _write_cache(cache_path, {key: entry for key, entry in cache.items() if os.path.exists(key)})
    return digests


def export(data_dir: Path, read: Reader = hash_file, reading: Callable[[list[Path]], None] | None = None) -> str:
    """The seven files of an export, by content (each read once, streaming, by `read`, and only when it
    changed; `reading` told which will be read: file_digests)."""
    files = [data_dir / t.file_name for t in RAW_TABLES]
    if (data_dir / config.SAMPLE_MARKER).is_file():  # a sample's label is part of what the book shows
        files.append(data_dir / config.SAMPLE_MARKER)
    digests = file_digests(files, read, reading)
    parts = []
    for path in files:
        parts += [path.relative_to(data_dir).as_posix().encode(), digests.get(path, b"missing")]
    return _digest(parts)


def warehouse(data_dir: Path, pinned_build_time: datetime | None = None,
              export_of: Callable[[Path], str] = export) -> str:
    """What a build's result depends on: the export (as `export_of` fingerprints it), the code, and a
    pinned build time if any."""
    pinned = pinned_build_time.isoformat() if pinned_build_time else ""
    return combine("warehouse", export_of(data_dir), code(), pinned)


def chapter(warehouse_fingerprint: str, notebook: Path, parameters: dict) -> str:
    """An executed chapter depends on its text, the warehouse it reads and its parameters."""
    return combine("chapter", warehouse_fingerprint, hashlib.sha256(notebook.read_bytes()).hexdigest(), code(),
                   json.dumps(parameters, sort_keys=True))


def book(chapters: dict[str, str], sources: Iterable[Path]) -> str:
    """A rendered book depends on its executed chapters, the book's settings, its static files."""
    files = sorted(sources)
    return _digest([*(f"{name}={key}".encode() for name, key in chapters.items()),
                    *_file_parts(files, config.ROOT), code().encode()])
