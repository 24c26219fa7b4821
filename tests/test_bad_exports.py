"""Every case of the bad-export corpus gives its documented outcome, and a failure publishes nothing.

Failing cases run `greenery report` against the book published from the sample (tests/conftest.py):
after each, the book and the warehouse it was built from are byte-identical to before.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bad_exports import CASES, LAST_LINE, CsvFile, make
from conftest import tree_digest

from greenery import cli, config, db
from greenery.sample import generate

OPERATING = config.ROOT / "docs" / "operating.md"  # its "Bad input" table


@pytest.fixture(scope="module")
def good_export(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good") / "export"
    generate(folder, 0.2, 42)
    return folder


@pytest.fixture(scope="module")
def personal_values(good_export) -> set[str]:
    """Every personal value of the good export, and each part of a full name on its own."""
    from test_personal_data import personal_values as of_export

    values = of_export(good_export)
    return values | {part for value in values for part in value.split(" ") if len(value.split(" ")) == 2}


def expected_error_line(case, export: Path) -> str:
    path = export / case.file
    line = len(CsvFile.read(path).lines) if case.line == LAST_LINE else case.line
    where = f"{path}:{line}:" if line else f"{path}:"
    return f"error: {where}" + (f" column '{case.column}':" if case.column else "")


@pytest.mark.parametrize("case", [c for c in CASES if c.exit_code], ids=lambda c: c.name)
def test_a_failing_case_exits_with_its_code_and_publishes_nothing(case, good_export, sample_book, tmp_path, capsys,
                                                                  personal_values, monkeypatch):
    assert sample_book.exit_code == 0
    export = make(case, good_export, tmp_path)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    book_before, warehouse_before = tree_digest(sample_book.out), sample_book.warehouse.read_bytes()
    code = cli.main(["report", "--data-dir", str(export), "--out", str(sample_book.out),
                     "--warehouse", str(sample_book.warehouse)])
    captured = capsys.readouterr()
    assert code == case.exit_code
    if case.exit_code == 2:
        [line] = captured.err.strip().splitlines()  # one line, naming file, line and column
        assert line.startswith(expected_error_line(case, export)), line
        assert case.says in line
    else:
        assert re.search(rf"^\s*FAIL {case.says} \(", captured.out, re.MULTILINE), captured.out
        assert "Not published" in captured.out
    assert tree_digest(sample_book.out) == book_before
    assert sample_book.warehouse.read_bytes() == warehouse_before
    printed = captured.out + captured.err
    leaked = [value for value in personal_values if re.search(rf"(?<!\w){re.escape(value)}(?!\w)", printed)]
    assert not leaked, "a personal value was printed"


@pytest.mark.parametrize("case", [c for c in CASES if not c.exit_code], ids=lambda c: c.name)
def test_a_tolerated_case_builds_and_says_what_it_noticed(case, good_export, tmp_path, capsys, monkeypatch):
    export = make(case, good_export, tmp_path)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    warehouse = tmp_path / "w.duckdb"
    assert cli.main(["build", "--data-dir", str(export), "--warehouse", str(warehouse)]) == 0
    assert case.says in capsys.readouterr().out


def test_tolerated_damage_keeps_every_value(good_export, tmp_path):
    """Reordered columns, offsets, a BOM and quoted separators load to the same values as the good export."""
    cases = {c.name: c for c in CASES}

    def table(export: Path, sql: str) -> list[tuple]:
        warehouse = tmp_path / f"{export.name}.duckdb"
        assert cli.main(["build", "--data-dir", str(export), "--warehouse", str(warehouse)]) == 0
        con = db.connect(warehouse, read_only=True)
        try:
            return db.rows(con, sql)
        finally:
            con.close()

    orders = "select order_id, created_at from raw.orders order by order_id"
    products = "select product_id, name, price, inventory from raw.products order by product_id"
    users = "select * exclude (created_at, updated_at) from raw.users order by user_id"
    assert table(make(cases["timestamps_with_offset"], good_export, tmp_path), orders) == table(good_export, orders)
    assert table(make(cases["columns_in_another_order"], good_export, tmp_path), products) == table(good_export, products)
    assert table(make(cases["byte_order_mark"], good_export, tmp_path), users) == table(good_export, users)
    quoted = make(cases["quoted_commas_and_newlines"], good_export, tmp_path)
    names = {name for (name,) in table(quoted, "select name from raw.products")}
    assert 'Pothos, "Golden"' in names
    assert ("12 Fern Street, Apt 4\nBuilding B",) in table(quoted, "select address from raw.addresses")


def test_operating_guide_documents_every_case_with_its_outcome():
    """docs/operating.md's table of bad input is the corpus: same cases, same exit codes."""
    rows = re.findall(r"^\| `(\w+)` \| (\d) \|", OPERATING.read_text(), re.MULTILINE)
    assert dict(rows) == {c.name: str(c.exit_code) for c in CASES}
