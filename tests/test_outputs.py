"""`greenery` writes over nothing it did not make: each refusal exits 2 with one line and touches nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tree_digest

from greenery import cli, config
from greenery.errors import ExitCode, UsageError
from greenery.outputs import ownership


def only_line(capsys) -> str:
    [line] = capsys.readouterr().err.strip().splitlines()
    return line


@pytest.mark.parametrize("command", ["report", "build"])
def test_a_folder_with_someone_elses_file_is_refused_and_kept(command, shop_dir, tmp_path, capsys):
    out = tmp_path / "x"
    out.mkdir()
    (out / "a").write_text("keep")
    args = ["--out", str(out)] if command == "report" else ["--warehouse", str(out)]
    code = cli.main([command, "--data-dir", str(shop_dir), *args])
    assert code == ExitCode.BAD_INPUT
    assert (out / "a").read_text() == "keep" and [p.name for p in out.iterdir()] == ["a"]
    line = only_line(capsys)
    assert str(out) in line and ("did not publish" in line or "not a regular file" in line)


def test_a_file_given_as_out_is_refused(shop_dir, tmp_path, capsys):
    target = tmp_path / "report.html"
    target.write_text("mine")
    assert cli.main(["report", "--data-dir", str(shop_dir), "--out", str(target)]) == ExitCode.BAD_INPUT
    assert target.read_text() == "mine"
    assert "is a file, not a folder" in only_line(capsys)


def test_the_current_folder_is_refused(shop_dir, tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "--data-dir", str(shop_dir), "--out", "."]) == ExitCode.BAD_INPUT
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("name,content", [("orders.csv", b"order_id\no1\n"), ("budget.xlsx", b"PK\x03\x04 sheet")])
def test_a_warehouse_path_naming_another_file_is_refused(name, content, shop_dir, tmp_path, capsys):
    target = tmp_path / name
    target.write_bytes(content)
    assert cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(target)]) == ExitCode.BAD_INPUT
    assert target.read_bytes() == content
    assert "is not a warehouse greenery built" in only_line(capsys)


def test_a_file_beside_the_warehouse_that_is_not_ours_is_refused(shop_dir, tmp_path, capsys):
    results = tmp_path / "w.run_results.json"
    results.write_text('{"my": "notes"}')
    assert cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb")]) == 2
    assert results.read_text() == '{"my": "notes"}' and not (tmp_path / "w.duckdb").exists()
    assert "is not greenery's data-test results" in only_line(capsys)


def test_our_own_warehouse_is_rebuilt_in_place(shop_dir, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    assert cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(warehouse)]) == 0
    assert cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(warehouse)]) == 0


def test_a_published_book_with_a_file_added_by_hand_is_refused(tmp_path):
    book = tmp_path / "html"
    book.mkdir()
    (book / "index.html").write_text("<p>book</p>")
    (book / config.BOOK_STAMP).write_text(json.dumps({"files": ["index.html"]}))
    ownership.check_book_target(book)  # ours: may be replaced
    (book / "minutes.docx").write_text("mine")
    with pytest.raises(UsageError, match=r"holds 1 file\(s\) this tool did not write \(first: minutes.docx\)"):
        ownership.check_book_target(book)


def test_missing_and_empty_folders_are_accepted(tmp_path):
    ownership.check_book_target(tmp_path / "new" / "html")
    (tmp_path / "empty").mkdir()
    ownership.check_book_target(tmp_path / "empty")


def test_a_mount_point_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ownership.os.path, "ismount", lambda path: True)
    (tmp_path / "mnt").mkdir()
    with pytest.raises(UsageError, match="is a mount point"):
        ownership.check_book_target(tmp_path / "mnt")


def test_a_leftover_staging_folder_is_removed_only_when_marked_ours(tmp_path):
    book = tmp_path / "html"
    ours = ownership.new_staging(book, "staging")
    theirs = tmp_path / ".html.staging-notes"
    theirs.mkdir()
    (theirs / "keep.txt").write_text("mine")
    ownership.remove_leftover_staging(book, "staging")
    assert not ours.exists() and (theirs / "keep.txt").read_text() == "mine"


def test_a_refused_report_leaves_a_published_book_byte_identical(sample_book, tmp_path, capsys):
    before = tree_digest(sample_book.out)
    (sample_book.out / "added.txt").write_text("mine")
    try:
        code = cli.main(["report", "--data-dir", str(sample_book.export), "--out", str(sample_book.out),
                         "--warehouse", str(sample_book.warehouse)])
        assert code == ExitCode.BAD_INPUT
        assert "first: added.txt" in only_line(capsys)
    finally:
        (sample_book.out / "added.txt").unlink()
    assert tree_digest(sample_book.out) == before


# --- every path passes the same check: foreign files, links, FIFOs, devices (issue 19)


class StillWaiting(BaseException):  # noqa: N818 - a signal: passes every `except Exception` it meets
    """Raised by SIGALRM in a run that waits on a FIFO (an open() for reading blocks until a writer comes)."""


def finishes(function, *args, seconds: int = 120):
    """`function(*args)`'s result; a failed test if it is still running after `seconds`."""
    import signal

    def stop(signum, frame):
        raise StillWaiting

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        return function(*args)
    except StillWaiting:
        pytest.fail(f"still running after {seconds} s: it waited on a FIFO")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def files_of(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def built(shop_dir, tmp_path, monkeypatch):
    """A warehouse and a history built once, with this test's own history and digest cache."""
    monkeypatch.setenv("GREENERY_HISTORY", str(tmp_path / "history" / "h.duckdb"))
    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(tmp_path / "cache" / "digests.json"))
    warehouse = tmp_path / "wh" / "w.duckdb"
    assert cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(warehouse)]) == 0
    return warehouse, tmp_path / "history" / "h.duckdb"


def rebuild(shop_dir, warehouse) -> int:
    return cli.main(["build", "--data-dir", str(shop_dir), "--warehouse", str(warehouse)])


def outputs(warehouse, history) -> dict[str, bytes]:
    return {**files_of(warehouse.parent), **{f"history/{k}": v for k, v in files_of(history.parent).items()}}


def refused_in_one_line(built, shop_dir, capsys) -> str:
    """A rebuild refused (exit 2) with the warehouse's and the history's folders unchanged: its one line."""
    warehouse, history = built
    before = outputs(warehouse, history)
    capsys.readouterr()
    assert rebuild(shop_dir, warehouse) == ExitCode.BAD_INPUT
    assert outputs(warehouse, history) == before
    return only_line(capsys)


@pytest.mark.parametrize("link", [False, True])
def test_a_foreign_file_at_the_history_lock_is_refused_and_kept(link, built, shop_dir, tmp_path, capsys):
    warehouse, history = built
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes")
    lock = config.lock_path(history)
    lock.unlink()
    if link:
        lock.symlink_to(mine)
    else:
        lock.write_text("my notes")
    line = refused_in_one_line(built, shop_dir, capsys)
    assert mine.read_text() == "my notes"
    assert str(lock) in line and "not greenery's lock" in line


def test_a_history_that_is_the_warehouse_is_refused_in_one_line(built, shop_dir, monkeypatch, capsys):
    warehouse, history = built
    monkeypatch.setenv("GREENERY_HISTORY", str(warehouse))
    assert refused_in_one_line(built, shop_dir, capsys) == (
        f"error: $GREENERY_HISTORY {warehouse} is the warehouse ({warehouse}); the history must be a file of its own")


@pytest.mark.parametrize("foreign", ["someone's database", "another warehouse"])
def test_a_duckdb_file_that_is_not_a_history_is_refused_and_kept(foreign, built, shop_dir, tmp_path, monkeypatch,
                                                                  capsys):
    from greenery import db

    warehouse, history = built
    if foreign == "another warehouse":
        other = tmp_path / "other" / "o.duckdb"
        assert rebuild(shop_dir, other) == 0
    else:
        other = tmp_path / "mine.duckdb"
        con = db.connect(other)
        con.execute("create table budget (line varchar, amount integer)")
        con.execute("insert into budget values ('plants', 12)")
        con.close()
    theirs = other.read_bytes()
    monkeypatch.setenv("GREENERY_HISTORY", str(other))
    before = outputs(warehouse, history)
    capsys.readouterr()
    assert rebuild(shop_dir, warehouse) == ExitCode.REPORT_FAILED
    line = only_line(capsys)
    assert f"{other}: not a greenery history file (it holds table" in line and "move it aside" in line
    assert other.read_bytes() == theirs and outputs(warehouse, history) == before


@pytest.mark.parametrize("what", ["a file of mine", "an empty file", "{}", "another JSON object", "a FIFO",
                                  "/dev/zero", "another user's cache"])
def test_a_digest_cache_that_is_not_ours_is_refused_never_read_or_written(what, built, shop_dir, tmp_path,
                                                                          monkeypatch):
    import os
    import resource
    import subprocess
    import sys

    warehouse, history = built
    target = tmp_path / "cache" / "mine"
    mine = {"a file of mine": "my list", "an empty file": "", "{}": "{}",
            "another JSON object": '{"/x": {"identity": [1], "hashed_ns": 0, "sha256": "mine"}}'}.get(what)
    if mine is not None:  # the attacker's review: an empty file and `{}` were taken as ours, and written over
        target.write_text(mine)
    elif what == "a FIFO":
        os.mkfifo(target)
    elif what == "another user's cache":  # the attacker's review: at a shared path, planted digests were trusted
        if os.getuid() != 0:
            pytest.skip("giving a file to another user needs root")
        monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(target))
        assert rebuild(shop_dir, tmp_path / "other.duckdb") == 0  # a cache as greenery writes it
        assert ownership.read_digest_cache(target)
        os.chown(target, 65534, 65534)
        mine = target.read_text()
    else:
        target = config.Path("/dev/zero")
    monkeypatch.setenv("GREENERY_DIGEST_CACHE", str(target))
    before = outputs(warehouse, history)
    # In a process of its own, with a deadline and a memory limit: the cache is read on a thread of
    # the build, where a wait on a FIFO or a read of /dev/zero could not be stopped from here.
    done = subprocess.run([sys.executable, "-m", "greenery", "build", "--data-dir", str(shop_dir),
                           "--warehouse", str(warehouse)], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_DATA, (4 << 30, 4 << 30)))
    assert done.returncode == ExitCode.BAD_INPUT
    [line] = done.stderr.splitlines()
    assert f"$GREENERY_DIGEST_CACHE: {target} exists and is not greenery's digest cache" in line
    assert outputs(warehouse, history) == before
    if mine is not None:
        assert target.read_text() == mine


def test_an_empty_digest_cache_is_never_written(tmp_path):
    """An empty cache is nobody's (read_digest_cache refuses it): the one that is there stays."""
    from greenery.outputs import fingerprint

    cache = tmp_path / "digests.json"
    fingerprint._write_cache(cache, {})
    assert not cache.exists()


@pytest.mark.parametrize("beside", ["lock", "run_results", "wal", "building wal", "history wal"])
def test_a_fifo_beside_the_warehouse_is_refused_without_waiting(beside, built, shop_dir, capsys):
    """A FIFO at a DuckDB log (`.wal`) hung the build: DuckDB opens whatever is at that path."""
    import os

    warehouse, history = built
    path = {"lock": config.lock_path(warehouse), "run_results": config.run_results_path(warehouse),
            "wal": config.wal_path(warehouse), "building wal": config.wal_path(config.building_path(warehouse)),
            "history wal": config.wal_path(history)}[beside]
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    capsys.readouterr()
    assert finishes(rebuild, shop_dir, warehouse) == ExitCode.BAD_INPUT
    line = only_line(capsys)
    assert str(path) in line and "(a FIFO)" in line


@pytest.mark.parametrize("content", [b"my notes\n", b""])
@pytest.mark.parametrize("beside", ["history wal", "wal", "building wal", "rejected wal",
                                    "history checkpoint log", "building checkpoint log"])
def test_a_file_of_someone_else_s_at_a_duckdb_log_is_refused_and_kept(beside, content, built, shop_dir, capsys):
    """The attacker's review: DuckDB replays, then deletes, whatever regular file is at a database's `.wal`
    (a user's notes at `<history>.wal` were gone after a build), and at its `.wal.checkpoint` (the log of
    commits made during a checkpoint: notes at `<history>.wal.checkpoint` were gone too). Only a log DuckDB
    wrote is ours."""
    warehouse, history = built
    path = {"history wal": config.wal_path(history), "wal": config.wal_path(warehouse),
            "building wal": config.wal_path(config.building_path(warehouse)),
            "rejected wal": config.wal_path(config.rejected_path(warehouse)),
            "history checkpoint log": history.with_name(f"{history.name}.wal.checkpoint"),
            "building checkpoint log": config.building_path(warehouse).with_name(
                f"{config.building_path(warehouse).name}.wal.checkpoint")}[beside]
    path.write_bytes(content)
    where = f"$GREENERY_HISTORY {history}" if beside.startswith("history") else f"--warehouse {warehouse}"
    assert refused_in_one_line(built, shop_dir, capsys) == (
        f"error: {where}: {path} exists and is not greenery's {ROLES[beside]}; move it aside or name another path")
    assert path.read_bytes() == content


ROLES = {"history wal": "history's DuckDB log", "wal": "warehouse's DuckDB log",
         "building wal": "DuckDB log of the warehouse being built", "rejected wal": "rejected warehouse's DuckDB log",
         "history checkpoint log": "history's DuckDB log",
         "building checkpoint log": "DuckDB log of the warehouse being built"}


def test_someone_else_s_duckdb_file_at_the_rejected_warehouse_is_refused_and_kept(built, shop_dir, capsys):
    """The attacker's review: any DuckDB file at `<warehouse>.rejected.duckdb` counted as ours, and the next
    build whose data tests failed moved its rejected warehouse over it. Ours holds build_info, as the
    warehouse does."""
    import duckdb

    warehouse, history = built
    rejected = config.rejected_path(warehouse)
    con = duckdb.connect(str(rejected))
    con.execute("create table my_data as select 42 as answer")
    con.close()
    assert refused_in_one_line(built, shop_dir, capsys) == (
        f"error: --warehouse {warehouse}: {rejected} exists and is not greenery's rejected warehouse; "
        "move it aside or name another path")


def test_a_rejected_warehouse_greenery_built_is_replaced_by_the_next_one(shop_dir, tmp_path, monkeypatch, capsys):
    """The rejected warehouse a failed build left is ours: the next failed build replaces it."""
    monkeypatch.setenv("GREENERY_HISTORY", str(tmp_path / "h.duckdb"))
    orders = shop_dir / "orders.csv"
    lines = orders.read_text().splitlines(keepends=True)
    orders.write_text("".join(lines + lines[1:2]))  # an order twice: unique_stg_orders_order_id fails
    warehouse = tmp_path / "w.duckdb"
    for _ in range(2):
        assert rebuild(shop_dir, warehouse) == ExitCode.DATA_TEST_FAILED
        assert config.rejected_path(warehouse).is_file() and not warehouse.exists()


def test_a_fifo_at_the_book_lock_is_refused_without_waiting(shop_dir, tmp_path, capsys):
    import os

    out = tmp_path / "site" / "html"
    out.parent.mkdir()
    os.mkfifo(config.lock_path(out))
    code = finishes(cli.main, ["report", "--data-dir", str(shop_dir), "--out", str(out),
                               "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == ExitCode.BAD_INPUT and "(a FIFO)" in only_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop", "site"]  # no warehouse, no lock


@pytest.mark.parametrize("out", ["/", "{tmp}/x/.."])
def test_the_root_or_a_path_through_dotdot_is_refused_before_anything_is_written(out, shop_dir, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    out = out.format(tmp=tmp_path)
    before = sorted(p.name for p in config.Path("/").iterdir())
    code = cli.main(["report", "--data-dir", str(shop_dir), "--out", out, "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == ExitCode.BAD_INPUT
    line = only_line(capsys)
    assert ("is the root folder" in line) if out == "/" else ("holds '..'" in line)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop", "x"] and not any((tmp_path / "x").iterdir())
    assert sorted(p.name for p in config.Path("/").iterdir()) == before


def test_a_leading_dotdot_is_the_folder_above(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert config.absolute("../site/html") == tmp_path / "site" / "html"
    ownership.check_book_target(config.absolute("../site/html"))  # accepted: the current folder has no links


@pytest.mark.parametrize("args", [["build", "--warehouse", "w\udcff.duckdb"], ["report", "--out", "b\udcffk"],
                                  ["report", "--data-dir", "d\udcff"]])
def test_a_path_that_is_not_utf8_is_refused_in_one_line(args, tmp_path, monkeypatch, capsys):
    """Python hands an argument's undecodable bytes over as lone surrogates (surrogateescape)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(args) == ExitCode.BAD_INPUT
    line = only_line(capsys)
    assert "\\xff" in line and "bytes that are not UTF-8" in line
    assert list(tmp_path.iterdir()) == []


def test_a_path_that_is_not_utf8_is_refused_by_the_command(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "greenery", "build", "--warehouse", b"w\xff.duckdb"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == ExitCode.BAD_INPUT
    assert done.stderr.splitlines() == ["error: --warehouse w\\xff.duckdb: the path holds bytes that are not "
                                        "UTF-8; rename it, or name another path"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", ["w.chapters", "w.render", "w.chapters/book"])
def test_a_book_in_the_warehouses_own_folders_is_refused_before_any_work(out, shop_dir, tmp_path, capsys):
    """--out <warehouse>.chapters was refused only after every chapter ran (its files "received during
    this run"): the caches beside the warehouse are never the book, nor hold it."""
    code = cli.main(["report", "--data-dir", str(shop_dir), "--warehouse", str(tmp_path / "w.duckdb"),
                     "--out", str(tmp_path / out)])
    assert code == ExitCode.BAD_INPUT
    line = only_line(capsys)
    assert f"--out {tmp_path / out} " in line and "name a folder of its own for the book" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop"]  # nothing built, nothing locked


def test_a_warehouse_inside_the_book_is_refused_and_leaves_nothing_there(sample_book, tmp_path, capsys):
    before = tree_digest(sample_book.out)
    names = ownership.book_files(sample_book.out)
    code = cli.main(["report", "--data-dir", str(sample_book.export), "--out", str(sample_book.out),
                     "--warehouse", str(sample_book.out / "w.duckdb")])
    assert code == ExitCode.BAD_INPUT
    assert "is inside the book folder" in only_line(capsys)
    assert ownership.book_files(sample_book.out) == names and tree_digest(sample_book.out) == before
    assert cli.main(["report", "--data-dir", str(sample_book.export), "--out", str(sample_book.out),
                     "--warehouse", str(sample_book.warehouse)]) == 0  # and the next report is not refused


def test_a_file_added_to_the_book_during_a_run_is_kept_and_the_run_refused(sample_book, monkeypatch, capsys):
    """A CNAME written into the published book while the new one renders: the old book is put back."""
    from greenery.outputs import fingerprint

    before = files_of(sample_book.out)

    def render_while_someone_adds_a_file(stage, builder="html", cache=None, server=None, early=None):
        html = stage / "_build" / builder
        html.mkdir(parents=True)
        (html / "index.html").write_text("<p>a new book</p>")
        (sample_book.out / "CNAME").write_text("report.example.com\n")
        return html

    monkeypatch.setattr(fingerprint, "book", lambda *args: "a book never published")
    monkeypatch.setattr("greenery.publisher.run.render", render_while_someone_adds_a_file)
    try:
        code = cli.main(["report", "--data-dir", str(sample_book.export), "--out", str(sample_book.out),
                         "--warehouse", str(sample_book.warehouse)])
        assert code == ExitCode.BAD_INPUT
        assert "received 1 file(s) during this run (first: CNAME)" in only_line(capsys)
        assert (sample_book.out / "CNAME").read_text() == "report.example.com\n"
    finally:
        (sample_book.out / "CNAME").unlink(missing_ok=True)
    assert files_of(sample_book.out) == before
    assert not list(sample_book.out.parent.glob(".html.staging-*"))


def test_a_fifo_at_the_status_file_is_a_warning_not_a_hang(tmp_path, capsys):
    import os

    from greenery.publisher import notify, status

    out = tmp_path / "site" / "html"
    out.parent.mkdir()
    os.mkfifo(status.paths(out)[0])
    code = finishes(notify.run_recorded, lambda: 0, str(out), str(tmp_path / "w.duckdb"))
    assert code == 0
    assert "is not a greenery status file: the status files were not written" in capsys.readouterr().err
    assert not status.paths(out)[1].exists()


def test_two_books_in_one_folder_have_a_status_each(tmp_path):
    from greenery.publisher import notify, status

    first, second = tmp_path / "site" / "a", tmp_path / "site" / "b"
    notify.run_recorded(lambda: 0, str(first), str(tmp_path / "w.duckdb"))
    notify.run_recorded(lambda: 1, str(second), str(tmp_path / "w.duckdb"))
    assert status.paths(first) == (tmp_path / "site" / "a.status.json", tmp_path / "site" / "a.status.html")
    assert json.loads(status.paths(first)[0].read_text())["book"]["folder"] == "a"
    assert json.loads(status.paths(second)[0].read_text())["attempt"]["exit_code"] == 1
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == [
        "a.status.html", "a.status.json", "b.status.html", "b.status.json"]


def test_status_files_hide_an_export_given_through_a_link_and_the_history(tmp_path, monkeypatch):
    from greenery.errors import InputError
    from greenery.publisher import notify, status

    real = tmp_path / "exports" / "march"
    real.mkdir(parents=True)
    link = tmp_path / "latest"
    link.symlink_to(real)
    history = tmp_path / "hist" / "h.duckdb"
    monkeypatch.setenv("GREENERY_HISTORY", str(history))

    def refused(error):
        def run():
            raise error
        return run

    out = tmp_path / "site" / "html"
    for error, shown in [(InputError(link / "orders.csv", 3, "order_id", "not a UUID"), "<export>/orders.csv:3"),
                         (InputError(real / "orders.csv", 3, "order_id", "not a UUID"), "<export>/orders.csv:3"),
                         (InputError(history, None, None, "cannot be read"), "<history>: cannot be read")]:
        with pytest.raises(InputError):
            notify.run_recorded(refused(error), str(out), str(tmp_path / "w.duckdb"), data_dir=str(link))
        text = status.paths(out)[0].read_text() + status.paths(out)[1].read_text()
        assert shown in text
        assert str(tmp_path) not in text


def test_an_unreadable_chapter_cache_entry_is_discarded(tmp_path):
    from greenery.publisher.chapter_runs import ChapterCache

    cache = ChapterCache(tmp_path / "w.chapters")
    executed = tmp_path / "run.ipynb"
    executed.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    cache.put("notebooks/a", "k" * 24, executed)
    assert cache.get("notebooks/a", "k" * 24) == cache.path("notebooks/a", "k" * 24)
    cut = cache.path("notebooks/a", "k" * 24)
    cut.write_bytes(cut.read_bytes()[:20])  # cut short, as a full disk or a crash leaves it
    assert cache.get("notebooks/a", "k" * 24) is None and not cut.exists()


def _marked_by_a_process_that_ended(folder: Path) -> None:
    """`folder`, made and marked by a process that has ended since (as a run killed with SIGKILL)."""
    folder.mkdir()
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from greenery.outputs import "
                    "leftovers; leftovers.mark(Path(sys.argv[1]))", str(folder)], check=True, timeout=60)


def test_only_folders_provably_ours_and_abandoned_are_removed(tmp_path):
    """The attacker's review: a report killed with SIGKILL left its /tmp/greenery-warm-* folder for ever.
    Removed by a later run only when its marker names a process that is gone; anything else is left."""
    from greenery.outputs import leftovers

    _marked_by_a_process_that_ended(dead := tmp_path / "x-dead")
    (dead / "server.err").write_text("")
    (dead / "linked").symlink_to(outside := tmp_path / "outside")  # removed as a link, never followed
    outside.mkdir()
    (outside / "keep").write_text("keep")
    (alive := tmp_path / "x-alive").mkdir()
    leftovers.mark(alive)  # this process: running
    (tmp_path / "x-unmarked").mkdir()  # someone's, or ours from before markers: cannot tell
    _marked_by_a_process_that_ended(elsewhere := tmp_path / "elsewhere")
    (tmp_path / "x-link").symlink_to(elsewhere)  # the folder of a link is not the link's
    _marked_by_a_process_that_ended(other_namespace := tmp_path / "x-other-namespace")
    marker = other_namespace / leftovers.MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "pidns": "pid:[1]"}))
    _marked_by_a_process_that_ended(linked_marker := tmp_path / "x-linked-marker")
    (linked_marker / leftovers.MARKER).rename(tmp_path / "a-marker")
    (linked_marker / leftovers.MARKER).symlink_to(tmp_path / "a-marker")
    (reused := tmp_path / "x-pid-reused").mkdir()  # this process's pid, another start time: another process
    (reused / leftovers.MARKER).write_text(json.dumps({**leftovers._owner(), "start": "1"}))
    _marked_by_a_process_that_ended(earlier_boot := tmp_path / "x-earlier-boot")
    marker = earlier_boot / leftovers.MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "boot": "another boot", "pid": os.getpid()}))

    assert sorted(p.name for p in leftovers.remove_abandoned(tmp_path, "x-")) == [
        "x-dead", "x-earlier-boot", "x-pid-reused"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a-marker", "elsewhere", "outside", "x-alive", "x-link", "x-linked-marker", "x-other-namespace", "x-unmarked"]
    assert (outside / "keep").read_text() == "keep" and (elsewhere / leftovers.MARKER).is_file()


def _dist(site, folder, metadata_text):
    (site / folder).mkdir(parents=True)
    (site / folder / "METADATA").write_text(metadata_text)


def test_installed_versions_are_read_as_importlib_metadata_reads_them(tmp_path, monkeypatch):
    """fingerprint.code() names the rendering libraries' versions without importing importlib.metadata
    (40 ms of every build): the same answer for every installed distribution, for one missing, and for
    hand-made ones: a name spelled otherwise, one shadowed by an earlier folder on sys.path, a folded
    Version field and two candidates in one folder (both asked of importlib.metadata itself)."""
    import importlib.machinery
    from importlib import metadata

    from greenery.outputs import fingerprint

    if not hasattr(importlib.machinery.PathFinder, "find_distributions"):
        # An earlier test imported a library that imported the importlib_metadata backport, which takes the
        # standard finder's place (installed_version then rightly asks importlib.metadata, as the end of this
        # test checks): the comparison is made in an interpreter of its own, as `greenery build` runs.
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               f"{__file__}::{test_installed_versions_are_read_as_importlib_metadata_reads_them.__name__}"],
                              capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
        assert done.returncode == 0, done.stdout[-3000:]
        return
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(first, "Foo_Bar-3.0.dist-info", "Metadata-Version: 2.1\nName: foo.bar\nVersion: 3.0\n\nVersion: 9\n")
    _dist(second, "foo_bar-1.2.dist-info", "Metadata-Version: 2.1\nName: Foo-Bar\nVersion: 1.2\n")
    _dist(second, "folded-1.0.dist-info", "Metadata-Version: 2.1\nName: folded\nVersion: 1.0\n  .post1\n")
    _dist(second, "twice-1.0.dist-info", "Name: twice\nVersion: 1.0\n")
    _dist(second, "Twice-2.0.dist-info", "Name: Twice\nVersion: 2.0\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    asked = []
    real = fingerprint._asked
    monkeypatch.setattr(fingerprint, "_asked", lambda name: asked.append(name) or real(name))

    assert fingerprint.installed_version("FOO-bar") == "3.0"  # the first folder on sys.path, its first Version
    assert fingerprint.installed_version("foo.bar") == metadata.version("foo.bar") == "3.0"
    assert asked == []
    assert fingerprint.installed_version("folded") == metadata.version("folded")
    assert fingerprint.installed_version("twice") == metadata.version("twice")
    assert asked == ["folded", "twice"]
    installed = sorted({d.metadata["Name"] for d in metadata.distributions()} | {"no-such-distribution"})
    assert len(installed) > 100
    for name in installed:
        try:
            expected = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected = None
        assert fingerprint.installed_version(name) == expected, name
    assert fingerprint.installed_version("no-such-distribution") is None

    class Finder:  # another finder of distributions: what it finds, importlib.metadata knows
        @staticmethod
        def find_spec(*args):
            return None

        @staticmethod
        def find_distributions(context=None):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [Finder, *sys.meta_path])
    asked.clear()
    assert fingerprint.installed_version("foo.bar") == "3.0" and asked == ["foo.bar"]


def test_a_parse_cache_inside_the_book_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """$GREENERY_PARSE_CACHE=<book>/parsed.json: the build wrote the cache into the published book, whose swap
    then found a file it did not write (exit 2), and every later report refused the book: refused up front."""
    book = tmp_path / "book"
    monkeypatch.setenv("GREENERY_PARSE_CACHE", str(book / "parsed.json"))
    with pytest.raises(UsageError, match=r"\$GREENERY_PARSE_CACHE .* is inside the book folder"):
        ownership.check_outputs(tmp_path / "w.duckdb", tmp_path / "h.duckdb", tmp_path / "d.json", book)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_checkpoint_log_duckdb_wrote_is_ours():
    """A run killed while a checkpoint ran leaves `<database>.wal.checkpoint`, which DuckDB replays on the next
    open: it begins with DuckDB's log version entry, as `.wal` does (the head of one DuckDB 2.0.1 left when
    killed mid-checkpoint, its first 12 bytes), so the next run is not refused."""
    assert config.log_paths(Path("/x/h.duckdb")) == (Path("/x/h.duckdb.wal"), Path("/x/h.duckdb.wal.checkpoint"))
    assert b"d\x00be\x00\x02f\x00\x10\xe2\x01\x82".startswith(ownership.DUCKDB_LOG_HEAD)


def test_the_log_the_installed_duckdb_writes_is_ours(tmp_path):
    """DUCKDB_LOG_HEAD is read from DuckDB's own log format: the log the installed DuckDB writes (commits not
    yet checkpointed) must pass the check, so an upgrade that changes its first bytes fails here, not by
    refusing a killed run's log."""
    import duckdb

    database = tmp_path / "x.duckdb"
    con = duckdb.connect(str(database))
    try:
        con.execute("set checkpoint_threshold = '1GB'")  # the commits stay in the log
        con.execute("create table t as select 1 as a")
        con.execute("insert into t values (2)")
        log = config.wal_path(database)
        assert log.stat().st_size > len(ownership.DUCKDB_LOG_HEAD)
        assert ownership._is_duckdb_log(log)
    finally:
        con.close()


@pytest.mark.parametrize("at", ["warehouse", "rejected"])
def test_someone_else_s_duckdb_file_put_at_an_output_during_the_build_is_kept(at, shop_dir, tmp_path, monkeypatch,
                                                                             capsys):
    """The attacker's review: the paths a build renames onto were checked only when it began; a database of
    someone's made there while the build ran (seconds at scale 1, minutes at 1000) was replaced by the
    rename. Each is checked again just before it: refused with one line (exit 2), kept, nothing published."""
    import duckdb

    from greenery.warehouse import build as build_module

    monkeypatch.setenv("GREENERY_HISTORY", str(tmp_path / "h.duckdb"))
    warehouse = tmp_path / "w.duckdb"
    if at == "rejected":
        orders = shop_dir / "orders.csv"
        lines = orders.read_text().splitlines(keepends=True)
        orders.write_text("".join(lines + lines[1:2]))  # an order twice: unique_stg_orders_order_id fails
    target = warehouse if at == "warehouse" else config.rejected_path(warehouse)
    real = build_module.checkpoint

    def someone_writes(name):
        if name == "history":
            con = duckdb.connect(str(target))
            con.execute("create table my_data as select 42 as answer")
            con.close()
        real(name)

    monkeypatch.setattr(build_module, "checkpoint", someone_writes)
    capsys.readouterr()
    assert rebuild(shop_dir, warehouse) == ExitCode.BAD_INPUT
    role = "warehouse" if at == "warehouse" else "rejected warehouse"
    assert only_line(capsys) == (f"error: --warehouse {warehouse}: {target} exists and is not greenery's {role}; "
                                 "move it aside or name another path")
    con = duckdb.connect(str(target), read_only=True)
    assert con.execute("select answer from my_data").fetchall() == [(42,)]
    con.close()
    assert not config.building_path(warehouse).exists()
    assert not config.run_results_path(warehouse).exists()  # no results of a build that was not published


def test_discard_building_removes_the_building_file_and_both_its_logs(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    building = config.building_path(warehouse)
    made = [building, *config.log_paths(building)]
    for path in made:
        path.write_bytes(b"x")
    ownership.discard_building(warehouse)
    assert not any(p.exists() for p in made)
    ownership.discard_building(warehouse)  # nothing there: nothing to do
