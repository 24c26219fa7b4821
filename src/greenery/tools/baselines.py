"""`make baselines`: execute every chapter on the generated sample into tests/baselines/.

These executed notebooks are what nbval re-runs and compares on `make test`, so a changed
answer shows up as a diff in review. Papermill's timing metadata is dropped to keep diffs to
what a reader would see.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import nbformat

from greenery import config
from greenery.chapter_kit.contents import name_of, notebook_entries, notebook_path
from greenery.sample import generate
from greenery.warehouse.build import DataSource, build

BASELINE_BUILD_TIME = datetime(2021, 2, 13, tzinfo=UTC)  # the baselines' fixed build time


def build_sample_warehouse(folder: Path) -> Path:
    """The nbval reference data: the default sample (seed 42, scale 1), whatever export is configured,
    built at a fixed time so that re-executed chapters match their baselines to the byte."""
    export = folder / "sample"
    generate(export, config.SAMPLE_SCALE, config.SAMPLE_SEED)
    warehouse = folder / "baseline.duckdb"
    source = DataSource(export, "baseline", {"seed": config.SAMPLE_SEED, "scale": config.SAMPLE_SCALE})
    build(source, warehouse, history=folder / "history.duckdb", built_at=BASELINE_BUILD_TIME,
          log=lambda *_: None)  # a first build: nothing to compare yet
    return warehouse


def strip_run_metadata(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Drop timings and give cells stable ids, so a baseline's diff shows only what readers see."""
    nb.metadata.pop("papermill", None)
    for number, cell in enumerate(nb.cells):
        cell.id = f"{name}-{number}"
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    return nb


def main() -> None:
    config.BASELINES_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # The kernels find the warehouse as nbval's will: through $GREENERY_WAREHOUSE, so that the
        # baselines hold no injected cell with a path of this run.
        os.environ["GREENERY_WAREHOUSE"] = str(build_sample_warehouse(Path(tmp)))
        for entry in notebook_entries():
            target = config.BASELINES_DIR / f"{name_of(entry)}.ipynb"
            # Each in a process of its own, as nbval runs each in a kernel of its own: nothing one
            # chapter sets (a pandas option, a chart style) reaches the next one's baseline.
            done = subprocess.run([sys.executable, "-m", "greenery.publisher.chapter_process",
                                   str(notebook_path(entry)), str(target), "{}", str(config.CHAPTER_TIMEOUT)],
                                  stdin=subprocess.DEVNULL, timeout=config.CHAPTER_TIMEOUT + 60)
            if done.returncode != 0:
                raise SystemExit(f"{name_of(entry)}: the chapter failed (exit {done.returncode}); see above")
            nb = nbformat.read(target, as_version=4)
            nbformat.write(strip_run_metadata(nb, name_of(entry)), target)
            print(f"wrote {target.relative_to(config.ROOT)}")
    expected = {f"{name_of(e)}.ipynb" for e in notebook_entries()}
    stale = {p.name for p in config.BASELINES_DIR.glob("*.ipynb")} - expected
    for name in sorted(stale):
        (config.BASELINES_DIR / name).unlink()
        print(f"removed {name} (no longer in _toc.yml)")


if __name__ == "__main__":
    main()
