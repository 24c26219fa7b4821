"""Names, emails, phone numbers and street addresses never reach the book, its chapters or the marts.

The values searched for are read straight from the export's CSV files (not through the loader),
and every byte of every output file is searched: pages, search index, sources, charts, executed
chapters and the committed baselines.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import pytest
from conftest import publish_book
from shop import PERSONAL_VALUES

from greenery import config, contract, db


def personal_values(export: Path) -> set[str]:
    """Every full name, email, phone number and street address in an export (the contract's flags)."""
    def rows(table):
        with (export / table.file_name).open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))

    return contract.personal_values({t.name: rows(t) for t in contract.RAW_TABLES})


def spellings(value: str) -> set[bytes]:
    """The ways a value can be written into an output file: as is, HTML-escaped, JSON-escaped."""
    forms = {value, html.escape(value), html.escape(value, quote=False), json.dumps(value)[1:-1]}
    return {form.encode() for form in forms}


def hits(folders: list[Path], values: set[str]) -> list[str]:
    found = []
    needles = {form: value for value in values for form in spellings(value)}
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            content = path.read_bytes()
            found += [f"{path}: {value!r}" for form, value in needles.items() if form in content]
    return found


def test_the_search_finds_what_it_looks_for(tmp_path):
    """The search itself works: a value planted in a page, escaped as HTML, is found."""
    (tmp_path / "page.html").write_text("<p>O&#x27;Brien Fern</p>")
    assert hits([tmp_path], {"O'Brien Fern"}) == [f"{tmp_path / 'page.html'}: \"O'Brien Fern\""]


def test_no_personal_data_in_the_book_built_from_the_sample(sample_book):
    values = personal_values(sample_book.export)
    assert len(values) > 400  # 130 users' names, emails and phones, and every street address
    assert sample_book.render_cache.is_dir()
    assert hits([sample_book.out, sample_book.chapters, sample_book.render_cache, config.BASELINES_DIR], values) == []


@pytest.mark.real_export
def test_no_personal_data_in_the_book_built_from_the_real_export(real_export, tmp_path):
    book = publish_book(real_export, tmp_path)
    assert book.exit_code == 0, book.log
    values = personal_values(real_export)
    assert len(values) > 400
    assert hits([book.out, book.chapters, book.render_cache], values) == []


def test_no_mart_carries_personal_data(shop_db):
    """Every table and view outside staging and raw, searched value by value for the shop's personal data."""
    relations = db.rows(shop_db, """
        select table_name from information_schema.tables
        where table_schema = 'main' and table_name not like 'stg\\_%' escape '\\'""")
    assert len(relations) > 10
    for (name,) in relations:
        text = db.scalar(shop_db, f'select coalesce(string_agg(to_json(t)::varchar, \'\\n\'), \'\') from "{name}" as t')
        assert not [v for v in PERSONAL_VALUES if v in text], name
