"""`greenery report`: build the warehouse, execute the chapters with papermill, publish the book.

Chapters run in _toc.yml's order, each a jupytext notebook executed into a staging folder; the
staged book is rendered by jupyter-book (Sphinx warnings are errors) and only then moved over
the published one. Any failure leaves the previous book exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

from greenery import config
from greenery.errors import ExitCode, ReportError
from greenery.locking import exclusive


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


def read_notebook(entry: str) -> nbformat.NotebookNode:
    return jupytext.read(config.ROOT / f"{entry}.md")


@contextlib.contextmanager
def _kernel_stderr_filtered():
    """The kernel inherits our stderr; drop its start-up notice about TCP transport, keep the rest."""
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
                if "Kernel is running over TCP without encryption" not in line:
                    print(line, file=sys.stderr)


def execute(entry: str, output: Path, parameters: dict, cwd: Path = config.ROOT) -> nbformat.NotebookNode:
    """Run one chapter with papermill; a failure names the notebook and the cell."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with _kernel_stderr_filtered():
        nb = _run_papermill(entry, output, parameters, cwd)
    for cell in nb.cells:  # papermill's injected parameters hold local paths: never shown
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
    nbformat.write(nb, output)
    return nb


def _run_papermill(entry: str, output: Path, parameters: dict, cwd: Path) -> nbformat.NotebookNode:
    try:
        return papermill.execute_notebook(
            read_notebook(entry), str(output), parameters=parameters, kernel_name="python3",
            progress_bar=False, cwd=str(cwd),
        )
    except papermill.PapermillExecutionError as error:
        first_line = next((line for line in error.source.splitlines() if line.strip()), "")
        raise ReportError(
            f"{entry}.md: cell In [{error.exec_count}] ({first_line.strip()[:60]}...) raised "
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


def _stage_sources(stage: Path) -> None:
    for name in (config.BOOK_CONFIG_PATH, config.TOC_PATH):
        shutil.copy2(name, stage / name.name)
    if config.BOOK_DIR.is_dir():
        shutil.copytree(config.BOOK_DIR, stage / config.BOOK_DIR.name)


def swap_into_place(new: Path, published: Path) -> None:
    """Replace `published` by `new` with renames on one filesystem: never a half-written book."""
    published.parent.mkdir(parents=True, exist_ok=True)
    previous = published.with_name(f".{published.name}.previous-{os.getpid()}")
    if published.exists():
        published.rename(previous)
    try:
        new.rename(published)
    except BaseException:
        if previous.exists():
            previous.rename(published)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def publish(data_dir=None, out=None, warehouse=None, log=print) -> int:
    from greenery.cli import _print_build
    from greenery.errors import DataTestFailure
    from greenery.warehouse import build, choose_data

    published = Path(out).expanduser().resolve() if out else config.HTML_DIR
    warehouse_path = config.warehouse_path(warehouse).resolve()
    with exclusive(published, "the book"):
        source = choose_data(data_dir, log)
        log(f"Data: {source.path} ({source.label}; chosen by {source.chosen_by})")
        try:
            result = build(source, warehouse_path)
        except DataTestFailure as failure:
            _print_build(failure.result, log)
            log(f"Not published: error-level data tests failed; the book at {published} is unchanged.")
            return ExitCode.DATA_TEST_FAILED
        summary = result.summary
        log(f"Warehouse built in {result.seconds:.2f} s: {result.loaded.total_rows:,} rows read, "
            f"{len(result.model_rows)} models, tests {summary['pass']} passed / {summary['warn']} warned / "
            f"{summary['fail']} failed")

        stage = published.with_name(f".{published.name}.staging-{os.getpid()}")
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        try:
            _stage_sources(stage)
            entries = notebook_entries()
            parameters = {"data_dir": str(source.path), "warehouse": str(warehouse_path)}
            for number, entry in enumerate(entries, start=1):
                started = time.perf_counter()
                execute(entry, stage / f"{entry}.ipynb", parameters)
                log(f"[{number}/{len(entries)}] {entry}.md executed in {time.perf_counter() - started:.1f} s")
            log("Rendering the book with jupyter-book ...")
            html = render(stage)
            swap_into_place(html, published)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        log(f"Published: {published / 'index.html'}")
        return ExitCode.OK
