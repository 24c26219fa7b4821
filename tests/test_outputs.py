"""`greenery` writes over nothing it did not make: each refusal exits 2 with one line and touches nothing."""

from __future__ import annotations

import json

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
