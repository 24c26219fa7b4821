"""The book: chapters share one skeleton, baselines match their sources, publishing is atomic."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import tree_digest

from greenery import config
from greenery.chapter_kit.contents import notebook_entries, read_notebook
from greenery.errors import ExitCode, ReportError
from greenery.publisher.chapter_process import execute
from greenery.publisher.run import publish


def code_sources(nb) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"
            and "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("entry", notebook_entries())
def test_baseline_runs_the_notebooks_current_code(entry):
    """nbval re-runs the baseline's code: a stale baseline would hide a changed notebook."""
    baseline = nbformat.read(config.BASELINES_DIR / f"{Path(entry).name}.ipynb", as_version=4)
    assert code_sources(baseline) == code_sources(read_notebook(entry)), "run `make baselines`"


@pytest.mark.parametrize("entry", notebook_entries())
def test_chapter_skeleton(entry):
    nb = read_notebook(entry)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    assert "data_dir = None" in parameters[0].source and "warehouse = None" in parameters[0].source
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()]
    assert "## Caveats" in headings or entry.endswith("summary"), "every chapter closes with its caveats"


def test_every_toc_notebook_has_a_baseline_and_no_orphans():
    expected = {f"{Path(e).name}.ipynb" for e in notebook_entries()}
    assert {p.name for p in config.BASELINES_DIR.glob("*.ipynb")} == expected


def test_report_publishes_every_chapter_and_says_which_data(sample_book):
    assert sample_book.exit_code == ExitCode.OK, sample_book.log
    pages = {p.relative_to(sample_book.out).as_posix() for p in sample_book.out.rglob("*.html")}
    assert {f"{e}.html" for e in notebook_entries()} <= pages
    summary = (sample_book.out / "notebooks" / "summary.html").read_text()
    assert "the generated sample (seed 42, scale 1)" in summary and "not from Greenery" in summary
    assert any(line.startswith("Published:") for line in sample_book.log)


def test_an_unchanged_rerun_reuses_everything(sample_book):
    before = tree_digest(sample_book.out)
    logs: list[str] = []
    assert publish(data_dir=sample_book.export, out=sample_book.out, warehouse=sample_book.warehouse,
                   log=logs.append).reused
    assert any("Warehouse up to date" in line for line in logs)
    assert any("Book up to date" in line for line in logs)
    assert tree_digest(sample_book.out) == before


def test_a_failed_render_exits_4_and_keeps_the_last_good_book(sample_book, monkeypatch, capsys):
    """Chapters reused from the cache, then Sphinx fails: nothing of the new book is published."""
    from greenery import cli
    from greenery.outputs import fingerprint

    def fail(stage, builder="html", cache=None, server=None, early=None):
        raise ReportError("jupyter-book could not render the book:\nWARNING: a broken cross-reference")

    monkeypatch.setattr(fingerprint, "book", lambda *args: "a book never published")
    monkeypatch.setattr("greenery.publisher.run.render", fail)
    before = tree_digest(sample_book.out)
    code = cli.main(["report", "--data-dir", str(sample_book.export), "--out", str(sample_book.out),
                     "--warehouse", str(sample_book.warehouse)])
    assert code == ExitCode.REPORT_FAILED == 4
    assert "error: jupyter-book could not render the book" in capsys.readouterr().err
    assert tree_digest(sample_book.out) == before
    assert not list(sample_book.out.parent.glob(".html.staging-*"))


def test_a_failing_cell_is_named_with_its_notebook(tmp_path):
    broken = tmp_path / "broken.md"
    broken.write_text(read_notebook_text("notebooks/repeat_rate").replace(
        "book.setup()", "book.setup()\n1 / 0", 1))
    with pytest.raises(ReportError, match=r"broken.md: cell In \[\d+\] \(from greenery.chapter_kit import analyses, book.*"
                                          r"raised ZeroDivisionError: division by zero"):
        execute(broken, tmp_path / "out.ipynb", {"warehouse": "unused.duckdb"})


def read_notebook_text(entry: str) -> str:
    return (config.ROOT / f"{entry}.md").read_text()


def test_fingerprints_change_with_what_a_chapter_depends_on(tmp_path):
    from greenery.outputs import fingerprint

    notebook = tmp_path / "chapter.md"
    notebook.write_text("# A chapter")
    key = fingerprint.chapter("warehouse-1", notebook, {"warehouse": "w.duckdb"})
    assert fingerprint.chapter("warehouse-1", notebook, {"warehouse": "w.duckdb"}) == key
    assert fingerprint.chapter("warehouse-2", notebook, {"warehouse": "w.duckdb"}) != key
    assert fingerprint.chapter("warehouse-1", notebook, {"warehouse": "other.duckdb"}) != key
    notebook.write_text("# A chapter, edited")
    assert fingerprint.chapter("warehouse-1", notebook, {"warehouse": "w.duckdb"}) != key


def test_the_warehouse_fingerprint_follows_the_data(shop_dir):
    from greenery.outputs import fingerprint

    key = fingerprint.warehouse(shop_dir)
    (shop_dir / "orders.csv").touch()  # a new timestamp, the same bytes: nothing to redo
    assert fingerprint.warehouse(shop_dir) == key
    (shop_dir / "orders.csv").write_bytes((shop_dir / "orders.csv").read_bytes().replace(b"preparing", b"shipped", 1))
    assert fingerprint.warehouse(shop_dir) != key


def test_an_unchanged_export_is_not_read_again_and_a_changed_one_always_is(shop_dir, tmp_path, monkeypatch):
    import hashlib
    import os
    import time

    from greenery.outputs import fingerprint

    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "digests.json"))
    monkeypatch.setattr(fingerprint, "SETTLED_NS", -10**10)  # the files were just written: trust them anyway
    reads = []
    file_digest = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda handle, name: reads.append(handle.name) or file_digest(handle, name))
    key = fingerprint.export(shop_dir)
    assert len(reads) == 7
    assert fingerprint.export(shop_dir) == key and len(reads) == 7  # nothing read the second time

    time.sleep(0.05)  # past the file system's clock tick
    orders = shop_dir / "orders.csv"
    before = orders.stat()
    orders.write_bytes(orders.read_bytes().replace(b"preparing", b"prepqring", 1))  # same size
    os.utime(orders, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old modification time
    assert fingerprint.export(shop_dir) != key  # the change time still moved: read again
    assert reads[-1] == str(orders)


def test_an_unchanged_report_reuses_the_book_without_reading_the_chapters(sample_book):
    """Same export, same code, no --param: the book is reused as it is, and no chapter's parameters cell is
    read (jupytext, a third of an unchanged report's time, is never imported)."""
    import os
    import subprocess
    import sys

    before = tree_digest(sample_book.out)
    script = ("import sys\nfrom greenery import cli\n"
              "code = cli.main(['report', '--data-dir', sys.argv[1], '--out', sys.argv[2], '--warehouse', sys.argv[3]])\n"
              "print('imported:', sorted({'jupytext', 'pandas', 'matplotlib'} & set(sys.modules)), 'exit', code)\n")
    done = subprocess.run([sys.executable, "-c", script, str(sample_book.export), str(sample_book.out),
                           str(sample_book.warehouse)], capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert "Book up to date" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "imported: [] exit 0", done.stdout + done.stderr
    assert tree_digest(sample_book.out) == before
