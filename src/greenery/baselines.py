"""`make baselines`: execute every chapter on the generated sample into tests/baselines/.

These executed notebooks are what nbval re-runs and compares on `make test`, so a changed
answer shows up as a diff in review. Papermill's timing metadata is dropped to keep diffs to
what a reader would see.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat

from greenery import config
from greenery.report import execute, notebook_entries
from greenery.sample import generate
from greenery.warehouse import DataSource, build


def build_sample_warehouse(folder: Path) -> Path:
    """The nbval reference data: the default sample (seed 42, scale 1), whatever export is configured."""
    export = folder / "sample"
    generate(export, config.SAMPLE_SCALE, config.SAMPLE_SEED)
    warehouse = folder / "baseline.duckdb"
    build(DataSource(export, "baseline", {"seed": config.SAMPLE_SEED, "scale": config.SAMPLE_SCALE}), warehouse)
    return warehouse


def strip_run_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    return nb


def main() -> None:
    config.BASELINES_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GREENERY_WAREHOUSE"] = str(build_sample_warehouse(Path(tmp)))
        for entry in notebook_entries():
            target = config.BASELINES_DIR / f"{Path(entry).name}.ipynb"
            nb = execute(entry, target, parameters={})
            nbformat.write(strip_run_metadata(nb), target)
            print(f"wrote {target.relative_to(config.ROOT)}")
    expected = {f"{Path(e).name}.ipynb" for e in notebook_entries()}
    stale = {p.name for p in config.BASELINES_DIR.glob("*.ipynb")} - expected
    for name in sorted(stale):
        (config.BASELINES_DIR / name).unlink()
        print(f"removed {name} (no longer in _toc.yml)")


if __name__ == "__main__":
    main()
