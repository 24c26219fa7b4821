"""What `greenery` may write over: only what it made itself.

Every output argument is checked before anything is written. A book folder may be replaced only
when it is missing, empty, or a book this tool published (its stamp lists every file it wrote,
and nothing else is in it); a warehouse file only when it is missing or a DuckDB warehouse this
tool built; the files beside a warehouse only when they are missing or recognisably ours.
Anything else is refused with one line (exit 2) and left exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from greenery import config
from greenery.errors import HistoryError, UsageError

STAGING_MARKER = ".greenery-staging"  # inside a staging folder: safe to remove once its run is gone


def _is_duckdb_file(path: Path) -> bool:
    """DuckDB's file header: a checksum, then the magic bytes DUCK at offset 8."""
    try:
        with path.open("rb") as handle:
            return handle.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


def _writable_parent(path: Path, what: str) -> None:
    parent = path.parent
    while not parent.exists():  # it will be created: the first existing ancestor must be writable
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot write into {parent} (read-only or not permitted)")


def read_stamp(book: Path) -> dict:
    """The stamp of a published book (fingerprints and the files it wrote), or {} if there is none."""
    try:
        stamp = json.loads((book / config.BOOK_STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def record_file(book: Path, name: str) -> None:
    """Add a file written into a published book after its stamp (the PDF's single page) to the stamp."""
    from greenery.outputs import atomic

    stamp = read_stamp(book)
    stamp["files"] = sorted({*stamp.get("files", []), name})
    atomic.write_text(book / config.BOOK_STAMP, json.dumps(stamp, indent=2) + "\n")


def book_files(folder: Path) -> list[str]:
    """Every file under `folder`, as sorted relative POSIX paths (what a book's stamp lists)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def check_book_target(book: Path) -> None:
    """Refuse a --out that is not a missing folder, an empty folder, or a book this tool published."""
    what = "--out"
    lock = config.lock_path(book)
    if (lock.exists() or lock.is_symlink()) and (lock.is_symlink() or not _is_our_lock(lock)):
        raise UsageError(f"{what} {book}: {lock} exists and is not greenery's lock; move it aside")
    if book.is_symlink():
        raise UsageError(f"{what} {book} is a symbolic link; name the folder itself")
    if book.exists() and not book.is_dir():
        raise UsageError(f"{what} {book} is a file, not a folder; name a missing or empty folder")
    if book.is_dir():
        if os.path.ismount(book):
            raise UsageError(f"{what} {book} is a mount point; name a folder inside it")
        if any(book.iterdir()):
            stamp = read_stamp(book)
            if "files" not in stamp:
                raise UsageError(f"{what} {book} holds files this tool did not publish; "
                                 "name a missing or empty folder, or a book greenery published")
            foreign = sorted(set(book_files(book)) - set(stamp["files"]) - {config.BOOK_STAMP})
            if foreign:
                raise UsageError(f"{what} {book} holds {len(foreign)} file(s) this tool did not write "
                                 f"(first: {foreign[0]}); move them out first")
        if not os.access(book.parent, os.W_OK | os.X_OK):
            raise UsageError(f"{what} {book}: cannot write into {book.parent} (read-only or not permitted)")
    else:
        _writable_parent(book, what)


def read_dbt_stamp(project: Path) -> dict:
    """The stamp of a dbt project `greenery export-dbt` wrote (the files it wrote), or {} if there is none."""
    try:
        stamp = json.loads((project / config.DBT_STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) and isinstance(stamp.get("files"), list) else {}


def check_dbt_target(project: Path) -> None:
    """Refuse a dbt project folder that is not missing, empty, or one `greenery export-dbt` wrote: in that
    one, besides the files its stamp lists, only what dbt itself writes when it runs the project
    (config.DBT_OWN_FILES: target/, logs/, its database) may be there, and is left alone."""
    what = "export-dbt"
    lock = config.lock_path(project)
    if (lock.exists() or lock.is_symlink()) and (lock.is_symlink() or not _is_our_lock(lock)):
        raise UsageError(f"{what} {project}: {lock} exists and is not greenery's lock; move it aside")
    if project.is_symlink():
        raise UsageError(f"{what} {project} is a symbolic link; name the folder itself")
    if project.exists() and not project.is_dir():
        raise UsageError(f"{what} {project} is a file, not a folder; name a missing or empty folder")
    if not project.is_dir():
        _writable_parent(project, what)
        return
    if os.path.ismount(project):
        raise UsageError(f"{what} {project} is a mount point; name a folder inside it")
    if any(project.iterdir()):
        stamp = read_dbt_stamp(project)
        if not stamp:
            raise UsageError(f"{what} {project} holds files this tool did not write; "
                             "name a missing or empty folder, or a dbt project greenery exported")
        dbt_own = set(config.DBT_OWN_FILES)
        entries = [p for top in project.iterdir() if top.name not in dbt_own
                   for p in ([top] if top.is_symlink() or not top.is_dir() else [top, *top.rglob("*")])]
        linked = sorted(p.relative_to(project).as_posix() for p in entries if p.is_symlink())
        if linked:
            raise UsageError(f"{what} {project} holds a symbolic link ({linked[0]}), which this tool never "
                             "writes; move it out first")
        found = {p.relative_to(project).as_posix() for p in entries if not p.is_dir()}
        foreign = sorted(found - set(stamp["files"]) - {config.DBT_STAMP})
        if foreign:
            raise UsageError(f"{what} {project} holds {len(foreign)} file(s) this tool did not write "
                             f"(first: {foreign[0]}); move them out first")
    if not os.access(project, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {project}: cannot write into it (read-only or not permitted)")


_OUR_WAREHOUSES: set[tuple] = set()  # identities of files found to be our warehouses, in this process


def _is_our_warehouse(path: Path) -> bool:
    """A DuckDB file holding build_info. Opening it costs tens of milliseconds, and `greenery build`
    checks its target twice (before and under the lock): a file already found to be ours is not
    opened again while its identity (device, inode, size, modification and change times) is unchanged."""
    try:
        stat = path.stat()
    except OSError:
        return False
    identity = (str(path.absolute()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if identity in _OUR_WAREHOUSES:
        return True
    if _opens_as_our_warehouse(path):
        _OUR_WAREHOUSES.add(identity)
        return True
    return False


def _opens_as_our_warehouse(path: Path) -> bool:
    if not _is_duckdb_file(path):
        return False
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        return bool(con.execute("select count(*) from information_schema.tables "
                                "where table_name = 'build_info'").fetchall()[0][0])
    finally:
        con.close()


def _is_our_results(path: Path) -> bool:
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(payload, dict) and {"build", "summary", "results"} <= payload.keys()


def _is_our_chapter_cache(path: Path) -> bool:
    return path.is_dir() and all(p.suffix == ".ipynb" and p.is_file() for p in path.iterdir())


def _is_our_lock(path: Path) -> bool:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    return text == "" or text.startswith("greenery (pid")


def check_warehouse_source(warehouse: Path) -> None:
    """A warehouse another tool will read (the dbt export's sources): missing (to be built), or one
    greenery built; never a symbolic link, a folder or a foreign file."""
    what = "--warehouse"
    if warehouse.is_symlink():
        raise UsageError(f"{what} {warehouse} is a symbolic link; name the file itself")
    if warehouse.exists() and not (warehouse.is_file() and _is_our_warehouse(warehouse)):
        raise UsageError(f"{what} {warehouse} exists and is not a warehouse greenery built; "
                         "name the file `greenery build --warehouse` writes")


def check_warehouse_target(warehouse: Path) -> None:
    """Refuse a --warehouse that is not missing or a warehouse this tool built, and any file beside it
    that the build would write over but did not make."""
    what = "--warehouse"
    if warehouse.is_symlink():
        raise UsageError(f"{what} {warehouse} is a symbolic link; name the file itself")
    if warehouse.exists() and not warehouse.is_file():
        raise UsageError(f"{what} {warehouse} is not a regular file (a folder?); name a .duckdb file")
    if warehouse.is_file() and not _is_our_warehouse(warehouse):
        raise UsageError(f"{what} {warehouse} exists and is not a warehouse greenery built; "
                         "name a new file or move it aside")
    beside = [
        (config.run_results_path(warehouse), _is_our_results, "data-test results"),
        (config.rejected_path(warehouse), _is_duckdb_file, "rejected warehouse"),
        (config.chapter_cache_path(warehouse), _is_our_chapter_cache, "chapter cache"),
        (config.lock_path(warehouse), _is_our_lock, "lock"),
    ]
    for path, ours, role in beside:
        if (path.exists() or path.is_symlink()) and (path.is_symlink() or not ours(path)):
            raise UsageError(f"{what} {warehouse}: {path} exists and is not greenery's {role}; "
                             "move it aside or name another warehouse")
    _writable_parent(warehouse, what)


def check_history(history: Path) -> None:
    """The history must be missing or a DuckDB file; anything else is not ours to write."""
    if history.exists() and (not history.is_file() or not _is_duckdb_file(history)):
        raise HistoryError(f"{history}: not a greenery history file (not a DuckDB database); "
                           "move it aside to start a new history")


def new_staging(beside: Path, what: str) -> Path:
    """A fresh staging folder beside an output, marked so that a later run may remove it if left behind."""
    stage = beside.with_name(f".{beside.name}.{what}-{os.getpid()}")
    if stage.exists():
        remove_staging(stage)
    stage.mkdir(parents=True)
    (stage / STAGING_MARKER).write_text("")
    return stage


def remove_staging(stage: Path) -> None:
    """Remove a staging folder, but only one this tool marked as its own."""
    if stage.is_dir() and not stage.is_symlink() and (stage / STAGING_MARKER).is_file():
        shutil.rmtree(stage, ignore_errors=True)


def remove_leftover_staging(beside: Path, what: str) -> None:
    """Staging folders of killed runs (we hold the output's lock, so none is in use)."""
    for leftover in beside.parent.glob(f".{beside.name}.{what}-*"):
        remove_staging(leftover)
