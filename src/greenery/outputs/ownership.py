"""What `greenery` may write over: only what it made itself.

Every output argument is checked before anything is written. A book folder may be replaced only
when it is missing, empty, or a book this tool published (its stamp lists every file it wrote,
and nothing else is in it); a warehouse file only when it is missing or a DuckDB warehouse this
tool built; the history only when it is missing or a history; the files beside a warehouse or a
book (locks, results, caches, status files) and the digest cache only when they are missing or
recognisably ours. Anything else is refused with one line (exit 2) and left exactly as it was.

One check serves every path (`refuse_unless_ours`): a symbolic link, a FIFO, a device or a socket
is never ours, and our files are opened without following a link and without blocking
(`open_regular`), so a FIFO or `/dev/zero` put where we read or write cannot hang a run or fill
its memory.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from greenery import config
from greenery.errors import HistoryError, UsageError

STAGING_MARKER = ".greenery-staging"  # inside a staging folder: safe to remove once its run is gone
# The largest file of ours that is read to recognise it (a stamp, test results, the digest cache):
# anything larger is not ours, and is never read into memory.
MAX_OWN_FILE = 64 * 1024 * 1024
_KINDS = ((stat.S_ISLNK, "symbolic link"), (stat.S_ISREG, "file"), (stat.S_ISDIR, "folder"),
          (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device"), (stat.S_ISSOCK, "socket"))


def kind(path: Path) -> str | None:
    """What is at `path`, the link itself rather than what it points to: None when nothing is."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    return next((name for test, name in _KINDS if test(mode)), "special file")


def open_regular(path: Path, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """A file descriptor on the regular file at `path`: never through a symbolic link (O_NOFOLLOW), never
    blocking on a FIFO (O_NONBLOCK while opening); a FIFO, device or socket raises OSError. Never pass
    O_TRUNC: a file is emptied only once it is known to be ours."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_own(path: Path, limit: int = MAX_OWN_FILE, whole: bool = True, mine: bool = False) -> bytes | None:
    """The bytes of the regular file at `path` (at most `limit`), or None if there is no such file,
    it is something else, (when `whole`) it is larger than `limit`, or (when `mine`) another user owns it
    (a file another user put at a path in a shared folder such as /tmp is never this user's cache)."""
    try:
        fd = open_regular(path)
    except OSError:
        return None
    if mine and os.fstat(fd).st_uid != os.getuid():  # the file opened, not whatever the path names later
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + whole)
    return None if whole and len(data) > limit else data


def read_own_json(path: Path, mine: bool = False) -> object | None:
    """A JSON document of ours at `path`, or None (missing, unreadable, not a regular file, too large,
    or when `mine` another user's: read_own)."""
    data = read_own(path, mine=mine)
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


def refuse_unless_ours(path: Path, ours: Callable[[Path], bool], role: str, where: str) -> None:
    """The one ownership check: `path` must be missing, or a file or folder `ours` recognises. A symbolic
    link, FIFO, device or socket is never ours. Raises UsageError (exit 2) naming `where` it came from."""
    found = kind(path)
    if found is None or (found in ("file", "folder") and ours(path)):
        return
    what = "" if found in ("file", "folder") else f" (a {found})"
    raise UsageError(f"{where}: {path} exists and is not greenery's {role}{what}; move it aside or name another path")


# The first bytes of every log DuckDB writes: its version entry (field 100, the entry's type: 98, WAL_VERSION;
# then field 101, the version).
DUCKDB_LOG_HEAD = b"d\x00be\x00"


def _is_duckdb_log(path: Path) -> bool:
    """A DuckDB log (`.wal`) that DuckDB wrote (a run killed before its checkpoint leaves one, to be replayed):
    DuckDB replays and then deletes whatever regular file is at its path, so a file of someone else's there
    (an empty one included) would be lost; a FIFO would hang the run, a link send its writes elsewhere
    (refuse_unless_ours refuses both)."""
    return read_own(path, len(DUCKDB_LOG_HEAD), whole=False) == DUCKDB_LOG_HEAD


def _is_duckdb_file(path: Path) -> bool:
    """DuckDB's file header: a checksum, then the magic bytes DUCK at offset 8."""
    head = read_own(path, 12, whole=False)
    return head is not None and head[8:12] == b"DUCK"


def _writable_parent(path: Path, what: str) -> None:
    parent = path.parent
    while not parent.exists():  # it will be created: the first existing ancestor must be writable
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot write into {parent} (read-only or not permitted)")


def check_plain_path(path: Path, what: str) -> None:
    """A path an option names must be one place, said once: never the root, never through `..` (which
    names a folder other than the one it seems to, once links are involved)."""
    if ".." in path.parts:
        raise UsageError(f"{what} {path}: holds '..'; name the folder without it")
    if path.parent == path:
        raise UsageError(f"{what} {path} is the root folder; name a folder inside it")


def check_outside(book: Path, paths: dict[str, Path]) -> None:
    """Nothing of ours is ever written inside a published book (a warehouse there would leave its lock,
    results and cache in the book, and the next report would refuse it): each named path is refused."""
    root = book.resolve()
    for what, path in paths.items():
        resolved = path.resolve()
        if root.is_relative_to(resolved):  # the book as the chapter cache, say: refused now, not after the run
            where = "is" if root == resolved else "is inside"
            raise UsageError(f"--out {book} {where} {what}: {path}; name a folder of its own for the book")
        if resolved.is_relative_to(root):
            raise UsageError(f"{what} {path} is inside the book folder {book}; name a path outside it")


def read_stamp(book: Path) -> dict:
    """The stamp of a published book (fingerprints and the files it wrote), or {} if there is none."""
    stamp = read_own_json(book / config.BOOK_STAMP)
    return stamp if isinstance(stamp, dict) else {}


def _sha256(path: Path) -> str | None:
    try:
        fd = open_regular(path)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def digest_files(folder: Path, names: list[str]) -> dict[str, str | None]:
    """The sha256 of each named file of a book, for its stamp: reuse is verified, never assumed."""
    return {name: _sha256(folder / name) for name in names}


def stamp_text(stamp: dict) -> str:
    return json.dumps(stamp, indent=2) + "\n"


def record_file(book: Path, name: str) -> None:
    """Add a file written into a published book after its stamp (the PDF's single page) to the stamp."""
    from greenery.outputs import atomic

    stamp = read_stamp(book)
    stamp["files"] = sorted({*stamp.get("files", []), name})
    stamp["sha256"] = {**stamp.get("sha256", {}), **digest_files(book, [name])}
    atomic.write_text(book / config.BOOK_STAMP, stamp_text(stamp))


def book_files(folder: Path) -> list[str]:
    """Everything under `folder` but its folders, as sorted relative POSIX paths (what a book's stamp lists):
    files, and links, FIFOs or devices someone put there, which are never ours."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if kind(p) != "folder")


def foreign_files(book: Path) -> list[str]:
    """What is in a book folder that its stamp does not list (everything, when it has no stamp)."""
    stamp = read_stamp(book)
    return sorted(set(book_files(book)) - set(stamp.get("files", [])) - {config.BOOK_STAMP})


def book_intact(book: Path, stamp: dict) -> bool:
    """True when the book's files are exactly those its stamp lists, each with the content it was written
    with: a page deleted or edited since is noticed, and the book is rendered again."""
    listed = stamp.get("files")
    digests = stamp.get("sha256")
    if not isinstance(listed, list) or not isinstance(digests, dict) or set(digests) != set(listed):
        return False
    if set(book_files(book)) - {config.BOOK_STAMP} != set(listed):
        return False
    return all(_sha256(book / name) == digest for name, digest in digests.items())


def refuse_foreign_files(book: Path, what: str = "--out") -> None:
    """Raise UsageError when a book folder holds anything its stamp does not list."""
    foreign = foreign_files(book)
    if foreign:
        raise UsageError(f"{what} {book} holds {len(foreign)} file(s) this tool did not write "
                         f"(first: {foreign[0]}); move them out first")


def check_book_target(book: Path) -> None:
    """Refuse a --out that is not a missing folder, an empty folder, or a book this tool published."""
    what = "--out"
    check_plain_path(book, what)
    refuse_unless_ours(config.lock_path(book), _is_our_lock, "lock", f"{what} {book}")
    found = kind(book)
    if found == "symbolic link":
        raise UsageError(f"{what} {book} is a symbolic link; name the folder itself")
    if found not in (None, "folder"):
        raise UsageError(f"{what} {book} is a {found}, not a folder; name a missing or empty folder")
    if found == "folder":
        if os.path.ismount(book):
            raise UsageError(f"{what} {book} is a mount point; name a folder inside it")
        if any(book.iterdir()):
            if "files" not in read_stamp(book):
                raise UsageError(f"{what} {book} holds files this tool did not publish; "
                                 "name a missing or empty folder, or a book greenery published")
            refuse_foreign_files(book, what)
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
    check_plain_path(project, what)  # `x/..` names another folder than it seems to; `/` is no project
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
    from greenery.db import duckdb  # the engine only: 70 ms less than the package

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
    payload = read_own_json(path)
    return isinstance(payload, dict) and {"build", "summary", "results"} <= payload.keys()


def _is_our_chapter_cache(path: Path) -> bool:
    return kind(path) == "folder" and all(p.suffix == ".ipynb" and kind(p) == "file" for p in path.iterdir())


RENDER_CACHE_MARKER = ".greenery-render-cache"  # in each builder's render cache: JSON {"frame": key or null}


def is_render_cache(path: Path) -> bool:
    """One builder's render cache (greenery.publisher.book_render): a folder holding our marker."""
    marker = read_own_json(path / RENDER_CACHE_MARKER) if kind(path) == "folder" else None
    return isinstance(marker, dict) and "frame" in marker


def _is_our_render_cache(path: Path) -> bool:
    """config.render_cache_path: a folder of render caches, one per builder."""
    return kind(path) == "folder" and all(is_render_cache(p) for p in path.iterdir())


def _is_our_lock(path: Path) -> bool:
    text = read_own(path, 200)
    return text is not None and (text == b"" or text.startswith(b"greenery (pid"))


def _is_our_building(path: Path) -> bool:
    """A warehouse a killed run left half built: empty, or a DuckDB file."""
    return read_own(path, 0, whole=False) is not None and (path.stat().st_size == 0 or _is_duckdb_file(path))


def _is_digest_entry(key: str, entry: object) -> bool:
    """One entry as fingerprint.file_digests writes it: an absolute path -> exactly its three fields."""
    return (key.startswith("/") and isinstance(entry, dict) and entry.keys() == {"identity", "hashed_ns", "sha256"}
            and isinstance(entry["identity"], list) and len(entry["identity"]) == 5
            and all(type(n) is int for n in entry["identity"]) and type(entry["hashed_ns"]) is int
            and isinstance(entry["sha256"], str) and len(entry["sha256"]) == 64
            and all(c in "0123456789abcdef" for c in entry["sha256"]))


def read_digest_cache(path: Path) -> dict | None:
    """fingerprint.file_digests' cache: {} when missing, its entries when it is a JSON object of entries as
    it writes them (at least one: it never writes an empty cache), and None when anything else is there,
    an empty file or `{}` included, or another user's file (never ours to write, nor to trust: its digests
    decide whether an export changed, so a planted one would have a new export taken for an old one)."""
    if kind(path) is None:
        return {}
    data = read_own(path, mine=True)
    try:
        cache = json.loads(data) if data else None
    except ValueError:
        return None
    ours = isinstance(cache, dict) and cache and all(_is_digest_entry(key, entry) for key, entry in cache.items())
    return cache if ours else None


def check_digest_cache(path: Path) -> None:
    """The cache of export digests ($GREENERY_DIGEST_CACHE) is written only when it is missing or ours."""
    refuse_unless_ours(path, lambda p: read_digest_cache(p) is not None, "digest cache", "$GREENERY_DIGEST_CACHE")


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
    check_plain_path(warehouse, what)
    found = kind(warehouse)
    if found == "symbolic link":
        raise UsageError(f"{what} {warehouse} is a symbolic link; name the file itself")
    if found not in (None, "file"):
        raise UsageError(f"{what} {warehouse} is not a regular file (a {found}); name a .duckdb file")
    logs = [(log, _is_duckdb_log, role) for database, role in (
                (warehouse, "warehouse's DuckDB log"),
                (config.building_path(warehouse), "DuckDB log of the warehouse being built"),
                (config.rejected_path(warehouse), "rejected warehouse's DuckDB log"))
            for log in config.log_paths(database)]
    for path, ours, role in logs:  # first: opening the warehouse to recognise it opens its log too
        refuse_unless_ours(path, ours, role, f"{what} {warehouse}")
    if found == "file" and not _is_our_warehouse(warehouse):
        raise UsageError(f"{what} {warehouse} exists and is not a warehouse greenery built; "
                         "name a new file or move it aside")
    beside = [
        (config.run_results_path(warehouse), _is_our_results, "data-test results"),
        (config.rejected_path(warehouse), _is_our_warehouse, "rejected warehouse"),  # a build's: build_info too
        (config.chapter_cache_path(warehouse), _is_our_chapter_cache, "chapter cache"),
        (config.render_cache_path(warehouse), _is_our_render_cache, "render cache"),
        (config.lock_path(warehouse), _is_our_lock, "lock"),
        (config.building_path(warehouse), _is_our_building, "warehouse being built"),
    ]
    for path, ours, role in beside:
        refuse_unless_ours(path, ours, role, f"{what} {warehouse}")
    _writable_parent(warehouse, what)


def discard_building(warehouse: Path) -> None:
    """Remove the warehouse being built and its DuckDB logs: a killed run's before a build begins, this run's
    when it fails. Called under the warehouse's lock, after check_warehouse_target refused any file there
    this tool did not make. One home for both engines (the Spark build left a killed run's logs behind)."""
    building = config.building_path(warehouse)
    for path in (building, *config.log_paths(building)):
        path.unlink(missing_ok=True)


def check_rename_target(target: Path, warehouse: Path, role: str) -> None:
    """Just before a build renames its new warehouse onto `target` (the warehouse, or the rejected one): it was
    checked when the build began, but a build takes seconds to minutes, and a database someone made there
    since would be replaced. A file found ours before is not opened again (_is_our_warehouse)."""
    refuse_unless_ours(target, _is_our_warehouse, role, f"--warehouse {warehouse}")


def warehouse_family(warehouse: Path) -> list[Path]:
    """The warehouse and every path written beside it."""
    return [warehouse, config.run_results_path(warehouse), config.rejected_path(warehouse),
            config.chapter_cache_path(warehouse), config.render_cache_path(warehouse), config.lock_path(warehouse),
            config.building_path(warehouse)]


def check_history_target(history: Path, warehouse: Path | None = None) -> None:
    """The history's path before any work: never the warehouse or a file beside it (its lock would be
    the warehouse's, which this very run holds), never a link, FIFO or device, never its lock foreign."""
    where = "$GREENERY_HISTORY"
    check_plain_path(history, where)
    if warehouse is not None:
        same = [p for p in warehouse_family(warehouse) if p.absolute() == history.absolute()
                or (kind(p) and kind(history) and os.path.samefile(p, history))]
        if same:
            which = "the warehouse" if same[0] == warehouse else "a file beside the warehouse"
            raise UsageError(f"{where} {history} is {which} ({warehouse}); the history must be a file of its own")
    found = kind(history)
    if found not in (None, "file"):
        raise UsageError(f"{where} {history} is a {found}, not a history file; name the file itself")
    refuse_unless_ours(config.lock_path(history), _is_our_lock, "lock", f"{where} {history}")
    for log in config.log_paths(history):
        refuse_unless_ours(log, _is_duckdb_log, "history's DuckDB log", f"{where} {history}")
    if found == "file" and not _is_duckdb_file(history):  # before any lock is made beside someone's file
        raise HistoryError(f"{history}: not a greenery history file (not a DuckDB database); {HISTORY_ADVICE}")


def check_outputs(warehouse: Path, history: Path, digest_cache: Path, book: Path | None = None) -> None:
    """Every path a `build` (or, with `book`, a `report`) writes, checked before anything is written."""
    if book is not None:
        check_book_target(book)
    check_warehouse_target(warehouse)
    check_history_target(history, warehouse)
    check_digest_cache(digest_cache)
    if book is not None:
        beside = {f"a file beside --warehouse ({path.name})": path for path in warehouse_family(warehouse)[1:]}
        check_outside(book, {"--warehouse": warehouse, "$GREENERY_HISTORY": history,
                             "$GREENERY_DIGEST_CACHE": digest_cache,
                             # the build writes it too (manifest.Parsed): in the book, the swap would refuse it
                             "$GREENERY_PARSE_CACHE": config.absolute(config.parse_cache_path()), **beside})


# What every refusal of an unusable history file says (exit 4), whichever check found it.
HISTORY_ADVICE = "move it aside to start a new history, or set $GREENERY_HISTORY to another file"


def check_history(history: Path, ours: set[str]) -> None:
    """The history must be missing or a history this tool wrote: a DuckDB file holding only tables named
    in `ours` (`builds` and the snapshots; none yet after a first run was stopped). A file of another
    kind, a warehouse or someone's database is refused (exit 4) and never attached for writing. The
    caller holds the history's lock."""
    found = kind(history)
    if found is None:
        return
    advice = HISTORY_ADVICE
    if found != "file" or not _is_duckdb_file(history):
        raise HistoryError(f"{history}: not a greenery history file (not a DuckDB database); {advice}")
    from greenery.db import duckdb  # the engine only: 70 ms less than the package

    try:
        con = duckdb.connect(str(history), read_only=True)
        try:
            tables = {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}
        finally:
            con.close()
    except duckdb.Error as error:
        raise HistoryError(f"{history}: cannot be opened as a history file ({str(error).splitlines()[0]}); "
                           f"{advice}") from None
    if not tables <= ours:
        other = sorted(tables - ours)
        raise HistoryError(f"{history}: not a greenery history file (it holds table {other[0]}"
                           f"{' and others' if len(other) > 1 else ''}); {advice}")


def new_staging(beside: Path, what: str) -> Path:
    """A fresh staging folder beside an output, marked so that a later run may remove it if left behind."""
    stage = beside.with_name(f".{beside.name}.{what}-{os.getpid()}")
    if kind(stage):
        remove_staging(stage)
    stage.mkdir(parents=True)
    (stage / STAGING_MARKER).write_text("")
    return stage


def remove_staging(stage: Path) -> None:
    """Remove a staging folder, but only one this tool marked as its own."""
    if kind(stage) == "folder" and kind(stage / STAGING_MARKER) == "file":
        shutil.rmtree(stage, ignore_errors=True)


def remove_leftover_staging(beside: Path, what: str) -> None:
    """Staging folders of killed runs (we hold the output's lock, so none is in use)."""
    for leftover in beside.parent.glob(f".{beside.name}.{what}-*"):
        remove_staging(leftover)
