"""`greenery report`: build the warehouse, execute the chapters with papermill, publish the book.

Chapters run in _toc.yml's order, each a jupytext notebook executed into a staging folder; the
staged book is rendered by jupyter-book (Sphinx warnings are errors) and only then exchanged
with the published one in a single rename. Any failure leaves the previous book exactly as it was.

Work whose inputs did not change is reused (see greenery.fingerprint): the warehouse when the
export and the code are the same, an executed chapter when its text, the warehouse and the code
are, and the whole published book when every chapter and the book's settings are.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from greenery import config, fingerprint
from greenery.errors import DataTestFailure, ExitCode, ReportError
from greenery.locking import exclusive

BOOK_STAMP = ".greenery-book.json"  # inside a published book: the fingerprints it was made from


def toc_entries(toc_path: Path = config.TOC_PATH) -> list[str]:
    """Every page of the book, in reading order, as written in _toc.yml (no extension)."""
    toc = yaml.safe_load(toc_path.read_text())
    entries = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))
            walk(item.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return entries


def notebook_entries() -> list[str]:
    return [e for e in toc_entries() if (config.ROOT / f"{e}.md").is_file() and e.startswith("notebooks/")]


def notebook_path(entry: str) -> Path:
    return config.ROOT / f"{entry}.md"


def read_notebook(entry: str):
    import jupytext

    return jupytext.read(notebook_path(entry))


def _shown(path: Path) -> str:
    return str(path.relative_to(config.ROOT)) if path.is_relative_to(config.ROOT) else str(path)


# What kernels print to our stderr on every run, errors or not: the start-up notice about TCP, and
# the log line of the SIGINT jupyter_client always sends a kernel before shutting it down.
KERNEL_NOISE = ("Kernel is running over TCP without encryption", "KeyboardInterrupt caught in kernel")


@contextlib.contextmanager
def quiet_kernel_notices():
    """The kernels inherit our stderr; drop their routine notices (KERNEL_NOISE), keep the rest."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if not any(noise in line for noise in KERNEL_NOISE):
                    print(line, file=sys.stderr)


def execute(source: Path, output: Path, parameters: dict, cwd: Path = config.ROOT):
    """Run one chapter (a jupytext file) with papermill; a failure names the notebook and the cell."""
    import nbformat

    output.parent.mkdir(parents=True, exist_ok=True)
    nb = _run_papermill(source, output, parameters, cwd)
    for cell in nb.cells:  # papermill's injected parameters hold local paths: never shown
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
    nbformat.write(nb, output)
    return nb


def _run_papermill(source: Path, output: Path, parameters: dict, cwd: Path):
    import jupytext
    import papermill

    try:
        return papermill.execute_notebook(
            jupytext.read(source), str(output), parameters=parameters, kernel_name="python3",
            progress_bar=False, cwd=str(cwd),
        )
    except papermill.PapermillExecutionError as error:
        first_line = next((line for line in error.source.splitlines() if line.strip()), "")
        raise ReportError(
            f"{_shown(source)}: cell In [{error.exec_count}] ({first_line.strip()[:60]}...) raised "
            f"{error.ename}: {error.evalue}"
        ) from None


def render(stage: Path) -> Path:
    """jupyter-book build of the staged book, warnings as errors; returns the HTML folder."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")  # the venv's own, never another
    command = [str(jupyter_book), "build", str(stage), "--builder", "html",
               "--warningiserror", "--keep-going", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        details = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                            if "WARNING" in line or "ERROR" in line or "Error" in line)
        raise ReportError(f"jupyter-book could not render the book:\n{details or done.stderr[-2000:]}")
    return stage / "_build" / "html"


def book_sources() -> list[Path]:
    """The book's own files besides the chapters: settings, toc, static assets."""
    static = [p for p in config.BOOK_DIR.rglob("*") if p.is_file()] if config.BOOK_DIR.is_dir() else []
    return [config.BOOK_CONFIG_PATH, config.TOC_PATH, *static]


def _stage_sources(stage: Path) -> None:
    for name in (config.BOOK_CONFIG_PATH, config.TOC_PATH):
        shutil.copy2(name, stage / name.name)
    if config.BOOK_DIR.is_dir():
        shutil.copytree(config.BOOK_DIR, stage / config.BOOK_DIR.name)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def swap_into_place(new: Path, published: Path) -> None:
    """Put `new` where `published` is: readers see the old book or the new one, never a mix or nothing.

    Both sit on one filesystem; the two folders are exchanged in one atomic rename where the
    system allows it, else by two renames that put the old book back if the second fails."""
    published.parent.mkdir(parents=True, exist_ok=True)
    previous = published.with_name(f".{published.name}.previous-{os.getpid()}")
    if published.exists() and _exchange(new, published):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old book
        return
    if published.exists():
        published.rename(previous)
    try:
        new.rename(published)
    except BaseException:
        if previous.exists():
            previous.rename(published)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def read_stamp(published: Path) -> dict:
    try:
        return json.loads((published / BOOK_STAMP).read_text())
    except (OSError, ValueError):
        return {}


class ChapterCache:
    """Executed chapters kept by fingerprint, so an unchanged chapter is never run twice."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, entry: str, key: str) -> Path:
        return self.folder / f"{Path(entry).name}-{key[:24]}.ipynb"

    def get(self, entry: str, key: str) -> Path | None:
        found = self.path(entry, key)
        return found if found.is_file() else None

    def put(self, entry: str, key: str, executed: Path) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob(f"{Path(entry).name}-*.ipynb"):  # one version per chapter is enough
            old.unlink(missing_ok=True)
        temporary = self.path(entry, key).with_suffix(".tmp")
        shutil.copyfile(executed, temporary)
        temporary.replace(self.path(entry, key))


def _execute_chapters(entries: list[str], stage: Path, parameters: dict, keys: dict[str, str],
                      cache: ChapterCache, log: Callable[..., None]) -> dict[str, float]:
    """Execute the chapters that changed, as many at once as there are cores; reuse the rest.

    Chapters only read the warehouse, so they are independent; the first failure stops the run
    (chapters not yet started are cancelled) and is reported with its notebook and cell. Each
    worker is a fresh process: papermill's kernel clients are not meant to share one."""
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    timings: dict[str, float] = {}
    todo = []
    for entry in entries:
        target = stage / f"{entry}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        cached = cache.get(entry, keys[entry])
        if cached:
            shutil.copyfile(cached, target)
        else:
            todo.append(entry)
    reused = len(entries) - len(todo)
    if reused:
        log(f"{reused} of {len(entries)} chapters unchanged: reused")

    workers = max(1, min(len(todo), os.cpu_count() or 1))
    context = multiprocessing.get_context("spawn")
    with quiet_kernel_notices(), ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(_execute_timed, entry, stage / f"{entry}.ipynb", parameters) for entry in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception():
                    for other in pending:
                        other.cancel()
                    raise future.exception()
                entry, seconds = future.result()
                cache.put(entry, keys[entry], stage / f"{entry}.ipynb")
                timings[entry] = seconds
                log(f"[{len(timings)}/{len(todo)}] {entry}.md executed in {seconds:.1f} s")
    return timings


def _execute_timed(entry: str, output: Path, parameters: dict) -> tuple[str, float]:
    started = time.perf_counter()
    execute(notebook_path(entry), output, parameters)
    return entry, round(time.perf_counter() - started, 2)


def _warehouse_for(source, warehouse_path: Path, log: Callable[..., None], engine: str = "duckdb",
                   spark=None) -> str:
    """Reuse the warehouse if it was built from this export and this code; else build it. Returns its fingerprint."""
    from greenery.engines import builder, input_fingerprint  # hook (issue 14): the engine builds, and is hashed
    from greenery.warehouse import built_fingerprint

    build = builder(engine, spark, log)
    wanted = input_fingerprint(engine, source, spark)
    if built_fingerprint(warehouse_path) == wanted:
        log(f"Warehouse up to date (same export, same code): reusing {warehouse_path}")
        return wanted
    result = build(source, warehouse_path, inputs=wanted)  # the export is hashed once per run
    summary = result.summary
    log(f"Warehouse built in {result.seconds:.2f} s: {result.loaded.total_rows:,} rows read, "
        f"{len(result.model_rows)} models, tests {summary['pass']} passed / {summary['warn']} warned / "
        f"{summary['fail']} failed")
    for test in result.tests:
        if test.status == "warn":
            log(f"  WARN {test.name} ({test.model}): {test.failing_rows:,} row(s); listed on the data-tests page")
    return result.info["fingerprint"]


def publish(data_dir=None, out=None, warehouse=None, log=print, engine="duckdb", spark=None) -> int:
    """`greenery report`: returns the exit code of a run that decided (0, or 1 when a data test
    failed); raises InputError, BusyError or ReportError for the others (see greenery.errors)."""
    from greenery.cli import print_build

    published = Path(out).expanduser().resolve() if out else config.HTML_DIR
    warehouse_path = config.warehouse_path(warehouse).resolve()
    # The warehouse is held for the whole run: no other build may replace it while chapters read it.
    with exclusive(published, "the book"), exclusive(warehouse_path, "the warehouse"):
        from greenery.engines import choose_source_for

        source = choose_source_for(engine, data_dir, log)  # hook (issue 14): a Spark build may read a URI
        log(f"Data: {source.path} ({source.label}; chosen by {source.chosen_by})")
        try:
            warehouse_key = _warehouse_for(source, warehouse_path, log, engine, spark)
        except DataTestFailure as failure:
            print_build(failure.result, log)
            log(f"Not published: error-level data tests failed; the book at {published} is unchanged.")
            return ExitCode.DATA_TEST_FAILED

        entries = notebook_entries()
        parameters = {"data_dir": str(source.path), "warehouse": str(warehouse_path)}
        keys = {entry: fingerprint.chapter(warehouse_key, notebook_path(entry), parameters) for entry in entries}
        book_key = fingerprint.book(keys, book_sources())
        if read_stamp(published).get("book") == book_key:
            log(f"Book up to date (same chapters, same data): {published / 'index.html'}")
            return ExitCode.OK

        # We hold the book's lock: any staging folder left beside it is from a run that was killed.
        for leftover in published.parent.glob(f".{published.name}.staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        stage = published.with_name(f".{published.name}.staging-{os.getpid()}")
        stage.mkdir(parents=True)
        cache = ChapterCache(config.chapter_cache_path(warehouse_path))
        try:
            _stage_sources(stage)
            timings = _execute_chapters(entries, stage, parameters, keys, cache, log)
            log("Rendering the book with jupyter-book ...")
            started = time.perf_counter()
            html = render(stage)
            timings["render"] = round(time.perf_counter() - started, 2)
            stamp = {"book": book_key, "warehouse": warehouse_key, "chapters": keys, "seconds": timings}
            (html / BOOK_STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
            swap_into_place(html, published)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        log(f"Published: {published / 'index.html'}")
        return ExitCode.OK
