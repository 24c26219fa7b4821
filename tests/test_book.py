"""The book: chapters share one skeleton, baselines match their sources, publishing is atomic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat
import pytest
from shop import write_shop

from greenery import config
from greenery.errors import ExitCode
from greenery.report import notebook_entries, publish, read_notebook


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


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_report_publishes_then_keeps_the_last_good_book(tmp_path, monkeypatch):
    monkeypatch.delenv("GREENERY_WAREHOUSE", raising=False)
    out, warehouse = tmp_path / "site with space", tmp_path / "w.duckdb"
    logs: list[str] = []
    assert publish(data_dir=write_shop(tmp_path / "shop"), out=out, warehouse=warehouse,
                   log=lambda *a, **k: logs.append(" ".join(map(str, a)))) == ExitCode.OK
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    assert {f"{e}.html" for e in notebook_entries()} <= pages
    assert "99.84" not in (out / "notebooks" / "summary.html").read_text()
    before = tree_digest(out)

    def break_totals(rows):
        rows["orders"][0]["order_total"] = "1.0"

    bad = write_shop(tmp_path / "bad", break_totals)
    assert publish(data_dir=bad, out=out, warehouse=warehouse, log=logs.append) == ExitCode.DATA_TEST_FAILED
    assert tree_digest(out) == before
    assert any("Not published" in line for line in logs)
