"""A run killed (kill -9) at any stage leaves the last good warehouse, history and book, and the next
run needs no manual step: it settles the history and compares with the last published build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bad_exports import CsvFile
from conftest import tree_digest

from greenery import db
from greenery.sample import generate

BUILD_STAGES = ["load", "models", "tests", "history", "publish warehouse", "mark published"]


def greenery(args: list[str], state: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GREENERY_HISTORY": str(state / "history.duckdb")}
    env.pop("GREENERY_CRASH_AT", None)
    if crash_at:
        env["GREENERY_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "greenery", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def build_args(state: Path, export: str) -> list[str]:
    return ["build", "--data-dir", str(state / export), "--warehouse", str(state / "w.duckdb")]


def report_args(state: Path, export: str) -> list[str]:
    return ["report", "--data-dir", str(state / export), "--out", str(state / "book"),
            "--warehouse", str(state / "w.duckdb")]


def published_builds(state: Path) -> list[tuple]:
    con = db.connect(state / "history.duckdb", read_only=True)
    try:
        return db.rows(con, "select build_id, data_label, rows_read from history.builds "
                            "where state = 'published' order by build_id")
    finally:
        con.close()


def changes(state: Path) -> list[tuple]:
    con = db.connect(state / "w.duckdb", read_only=True)
    try:
        return db.rows(con, "select snapshot, change from history_changes order by all")
    finally:
        con.close()


@pytest.fixture(scope="module")
def good_state(tmp_path_factory) -> Path:
    """Export a, its published warehouse, history and book; export b: a with one product's stock changed."""
    state = tmp_path_factory.mktemp("crash") / "state"
    generate(state / "a", 0.2, 42)
    shutil.copytree(state / "a", state / "b")
    products = CsvFile.read(state / "b" / "products.csv")
    row = products.row(2)
    row["inventory"] = str(int(row["inventory"]) + 1)
    products.set_row(2, row)
    products.write()
    done = greenery(report_args(state, "a"), state)
    assert done.returncode == 0, done.stderr
    return state


@pytest.fixture
def state(good_state, tmp_path) -> Path:
    copy = tmp_path / "state"
    shutil.copytree(good_state, copy, symlinks=True)
    return copy


@pytest.mark.parametrize("stage", BUILD_STAGES)
def test_a_build_killed_at_any_stage_leaves_the_last_good_outputs(stage, state):
    warehouse_before = (state / "w.duckdb").read_bytes()
    builds_before = published_builds(state)
    crashed = greenery(build_args(state, "b"), state, crash_at=stage)
    assert crashed.returncode == -9, crashed.stderr
    if stage == "mark published":  # past the commit point: the new warehouse is the published one
        assert (state / "w.duckdb").read_bytes() != warehouse_before
    else:
        assert (state / "w.duckdb").read_bytes() == warehouse_before
        assert published_builds(state) == builds_before

    rerun = greenery(build_args(state, "b"), state)
    assert rerun.returncode == 0, rerun.stderr
    after = published_builds(state)
    if stage == "mark published":
        assert "recorded as published" in rerun.stdout
        assert len(after) == len(builds_before) + 2
        assert changes(state) == []  # b compared with b, the build the killed run published
    else:
        assert len(after) == len(builds_before) + 1
        assert changes(state) == [("products_snapshot", "changed")]  # b compared with a, nothing else


def test_a_report_killed_at_any_stage_keeps_the_book_and_the_next_run_finishes(state):
    book_before = tree_digest(state / "book")
    for stage in ["chapters", "render", "publish book"]:
        crashed = greenery(report_args(state, "b"), state, crash_at=stage)
        assert crashed.returncode == -9, (stage, crashed.stderr)
        assert tree_digest(state / "book") == book_before, stage
    done = greenery(report_args(state, "b"), state)
    assert done.returncode == 0, done.stderr
    assert tree_digest(state / "book") != book_before
    assert not [p.name for p in state.iterdir() if p.name.startswith(".book.staging-")]
