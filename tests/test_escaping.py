"""Values from the export are shown as text: never as HTML, Markdown, MyST, math or control characters."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from conftest import publish_book

from greenery.chapter_kit import escape
from greenery.sample import generate

HOSTILE_PRODUCTS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "[a link](http://evil.example/)",
    "{sub}`role` plant",
    "$x^2$ fern",
    "nul\x00cactus",
    "rtl\u202eplant\u200f",
    "**bold** | pipe",
]
HOSTILE_PROMOS = ["<b>SAVE</b>", "$10 off", "`tick`"]


def test_plain_replaces_controls_and_shows_invisible_formatting():
    assert escape.plain("a\x00b\tc\u202ed") == "a\ufffdb c<U+202E>d"
    assert escape.plain("Monstera") == "Monstera"


def test_markdown_escapes_every_punctuation_character():
    assert escape.markdown("[x](y) $1 {r}`c` <b>") == r"\[x\]\(y\) \$1 \{r\}\`c\` \<b\>"


def test_html_escapes_markup():
    assert escape.html('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"


def rewrite(path: Path, edit) -> None:
    raw = path.read_bytes()
    eol = "\r\n" if b"\r\n" in raw else "\n"
    rows = list(csv.DictReader(raw.decode().splitlines(keepends=True)))
    for row in rows:
        edit(row)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator=eol)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def hostile_book(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    export = root / "export"
    generate(export, 0.3, 42)
    names = iter(HOSTILE_PRODUCTS)
    rewrite(export / "products.csv", lambda row: row.update(name=next(names, row["name"])))
    promos = {}

    def rename_promo(row):
        promos.setdefault(row["promo_id"], HOSTILE_PROMOS[len(promos)] if len(promos) < len(HOSTILE_PROMOS)
                          else row["promo_id"])
        row["promo_id"] = promos[row["promo_id"]]

    rewrite(export / "promos.csv", rename_promo)
    rewrite(export / "orders.csv", lambda row: row.update(promo_id=promos.get(row["promo_id"], row["promo_id"])))
    book = publish_book(export, root)
    assert book.exit_code == 0, book.log
    return book


def pages(book) -> dict[str, str]:
    return {p.name: p.read_text(errors="strict") for p in book.out.rglob("*.html")}


def test_no_value_from_the_data_becomes_markup(hostile_book):
    html = "\n".join(pages(hostile_book).values())
    assert "<script>alert(1)</script>" not in html
    assert "onerror=alert(2)" not in html.replace("&lt;img src=x onerror=alert(2)&gt;", "")
    assert 'href="http://evil.example/"' not in html
    assert "<b>SAVE</b>" not in html
    assert "<sub>role</sub>" not in html  # a MyST role in a name is not run
    assert r"\(x^2\)" not in html  # `$x^2$` in a name is not mathematics
    assert "<strong>bold</strong>" not in html
    assert "\x00" not in html and "\u202e" not in html


def test_each_value_appears_as_literal_text(hostile_book):
    text = "\n".join(pages(hostile_book).values())
    shown = {name for name in [*HOSTILE_PRODUCTS, *HOSTILE_PROMOS] if escape.html(name) in text}
    assert {"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;SAVE&lt;/b&gt;"} <= {escape.html(n) for n in shown}
    assert escape.html("nul\x00cactus") in text or "nul\ufffdcactus" in text


def test_no_chart_holds_a_control_character(hostile_book):
    """Charts are SVG inline, in data: URIs (greenery.chapter_kit.figures: a laptop and a phone version), or files."""
    import base64

    charts = 0
    for name, page in pages(hostile_book).items():
        inline = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
        embedded = [base64.b64decode(d).decode() for d in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page)]
        for svg in inline + embedded:
            charts += 1
            assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", svg), name
    assert charts > 10
