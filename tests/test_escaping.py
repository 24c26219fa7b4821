"""Values from the export are shown as text: never as HTML, Markdown, MyST, math or control characters;
never longer than the book allows; nothing the machine says while a chapter runs reaches a page."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import pytest
from conftest import publish_book

from greenery import cli
from greenery.chapter_kit import escape
from greenery.sample import generate

HUGE_NAME = "Monstera " + "x" * 1_000_000  # one 1 MB name once made two chapters take 97 s and 86 MB charts

HOSTILE_PRODUCTS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "[a link](http://evil.example/)",
    "{sub}`role` plant",
    "$x^2$ fern",
    "nul\x00cactus",
    "rtl\u202eplant\u200f",
    "**bold** | pipe",
    "esc\x1b[2Jclear",  # an ESC sequence: clears a terminal; once failed the render (exit 4)
    "bell\x07del\x7fc1\x85\x9bcsi",  # C0, DEL and C1 controls
    "Pothos \U0001F331",  # an emoji DejaVu Sans cannot draw: once a "Glyph missing" warning with a local path
    HUGE_NAME,
]
HOSTILE_PROMOS = ["<b>SAVE</b>", "$10 off", "`tick`", "\x1b[31mred\x1b[0m", "c1\x9b2J\x00"]
# Other text columns that reach a page (the carrier in charts and tables, the promo's status in tables)
# or at least the warehouse: each gets an escape sequence.
HOSTILE_CARRIER = "\x1b]0;title\x07ups"
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def test_plain_shows_controls_and_invisible_formatting_as_escapes():
    assert escape.plain("a\x00b\tc\u202ed") == "a<U+0000>b c<U+202E>d"
    assert escape.plain("\x1b[2J\x7f\x85\x9b") == "<U+001B>[2J<U+007F><U+0085><U+009B>"
    assert escape.plain("Monstera") == "Monstera"


def test_plain_cuts_long_values_with_an_ellipsis():
    assert escape.plain("x" * 80) == "x" * 80
    assert escape.plain("x" * 81) == "x" * 79 + "…"
    assert escape.plain(HUGE_NAME) == "Monstera " + "x" * 70 + "…"
    assert len(escape.plain("y" * 5000, escape.MAX_CELL)) == escape.MAX_CELL
    assert escape.plain("y" * 5000, None) == "y" * 5000  # prose the chapter composed is not cut


def test_chart_labels_escape_what_the_font_cannot_draw():
    assert escape.chart("Pothos \U0001F331") == "Pothos <U+1F331>"
    assert escape.chart("Café Ωmega – 50 %") == "Café Ωmega – 50 %"


def test_the_terminal_never_receives_a_control_character():
    assert escape.terminal("a\x1b[2J\r\x9b\u202eb\n\tc") == "a<U+001B>[2J<U+000D><U+009B><U+202E>b\n\tc"


def test_the_command_prints_control_characters_as_escapes(tmp_path, capsys):
    folder = tmp_path / "export\x1b[2J"  # a value the command echoes in its error line
    assert cli.main(["build", "--data-dir", str(folder), "--warehouse", str(tmp_path / "w.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "<U+001B>[2J" in err


@pytest.mark.parametrize("made", [False, True])
def test_a_line_break_in_a_path_never_splits_the_error_line(made, tmp_path, capsys):
    """The attacker's review: `--data-dir` with a newline in its name printed its error over two lines."""
    folder = tmp_path / "export\nfolder\tnamed"
    if made:
        folder.mkdir()  # the error names a file inside it (users.csv is missing)
    assert cli.main(["build", "--data-dir", str(folder), "--warehouse", str(tmp_path / "w.duckdb")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    shown = str(tmp_path / "export<U+000A>folder<U+0009>named")
    assert line == (f"error: {shown}/users.csv: the file is missing from the export" if made else
                    f"error: {shown}: no such folder: expected the export's seven CSV files here")


def test_a_unicode_line_separator_in_a_path_never_splits_the_error_line(tmp_path, capsys):
    """The attacker's review: U+2028 and U+2029 are line breaks to str.splitlines (and to log readers built
    on it): a --data-dir holding one printed an error of two lines."""
    folder = tmp_path / "export\u2028folder\u2029named"
    assert cli.main(["build", "--data-dir", str(folder), "--warehouse", str(tmp_path / "w.duckdb")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == (f"error: {tmp_path / 'export<U+2028>folder<U+2029>named'}: no such folder: expected the "
                    "export's seven CSV files here")


def test_an_unexpected_error_naming_a_path_is_one_line():
    from greenery.errors import unexpected_reason

    error = FileNotFoundError(2, "No such file or directory", "/tmp/a\nb\r")
    assert unexpected_reason(error) == "FileNotFoundError (/tmp/a<U+000A>b<U+000D>): No such file or directory"


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
    rewrite(export / "promos.csv", lambda row: row.update(status="active\x1b[2J") if row["promo_id"] == "$10 off"
            else None)
    carriers = iter([HOSTILE_CARRIER] * 3)

    def edit_order(row):
        row["promo_id"] = promos.get(row["promo_id"], row["promo_id"])
        if row["shipping_service"]:
            row["shipping_service"] = next(carriers, row["shipping_service"])
            row["tracking_id"] = row["tracking_id"] and row["tracking_id"] + "\x1b[2J"

    rewrite(export / "orders.csv", edit_order)
    rewrite(export / "addresses.csv", lambda row: row.update(state=row["state"] + "\x9b", country="US\x1b[K"))
    rewrite(export / "events.csv", lambda row: row.update(page_url=row["page_url"] + "\x1b[2J\x85"))
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
    assert not CONTROLS.search(html)  # ESC, BEL, DEL, C1: none reaches a page raw


def test_each_value_appears_as_literal_text(hostile_book):
    text = "\n".join(pages(hostile_book).values())
    shown = {name for name in [*HOSTILE_PRODUCTS, *HOSTILE_PROMOS] if escape.html(name) in text}
    assert {"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;SAVE&lt;/b&gt;"} <= {escape.html(n) for n in shown}
    assert escape.html("nul\x00cactus") in text and "nul&lt;U+0000&gt;cactus" in text
    assert "esc&lt;U+001B&gt;[2Jclear" in text  # shown as a visible escape
    assert "Pothos" in text


def test_no_chapter_output_comes_from_the_machine(hostile_book):
    """A warning raised while a chapter runs (matplotlib's missing glyph names a file in the virtual
    environment) goes to the log, never into a page."""
    for name, page in pages(hostile_book).items():
        assert "stderr" not in page and "UserWarning" not in page and "Glyph" not in page, name
        assert sys.prefix not in page and str(hostile_book.export) not in page, name


def test_a_megabyte_name_costs_no_more_than_any_other(hostile_book):
    """The name is cut where it is shown (escape.MAX_SHOWN in charts and prose, MAX_CELL in tables):
    pages stay small and the chapters that show it run in seconds, not in a minute and a half."""
    sizes = {p.name: p.stat().st_size for p in hostile_book.out.rglob("*") if p.is_file()}
    assert max(size for name, size in sizes.items() if name.endswith(".html")) < 3_000_000, sizes
    assert sum(sizes.values()) < 30_000_000
    assert "x" * (escape.MAX_CELL + 1) not in "\n".join(pages(hostile_book).values())
    seconds = {line.split()[1]: float(line.split()[-2]) for line in hostile_book.log if " executed in " in line}
    assert {"funnel.md", "promos.md"} <= set(seconds)
    assert max(seconds.values()) < 40, seconds  # 96-98 s before; about 3-10 s on a busy machine


def test_no_chart_holds_a_control_character(hostile_book):
    """Charts are SVG inline, in data: URIs (greenery.chapter_kit.figures: a laptop and a phone version), or files."""
    import base64

    charts = 0
    for name, page in pages(hostile_book).items():
        inline = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
        embedded = [base64.b64decode(d).decode() for d in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page)]
        for svg in inline + embedded:
            charts += 1
            assert not CONTROLS.search(svg), name
    assert charts > 10


def test_a_line_break_in_a_path_never_splits_a_line_the_command_prints(tmp_path, capsys):
    """Not only errors: `Data: <path>`, `Results: <path>`, `Warehouse: <path>` and the sample's line name
    folders too, and a line break in one printed each of them over two lines (the attacker's review)."""
    folder = tmp_path / "export\nfolder\u2028named"
    assert cli.main(["sample", "--out", str(folder), "--scale", "1", "--seed", "7"]) == 0
    warehouse = tmp_path / "w\nh.duckdb"
    assert cli.main(["build", "--data-dir", str(folder), "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    shown = str(tmp_path / "export<U+000A>folder<U+2028>named")
    lines = out.splitlines()
    assert f"Wrote a sample export (seed 7, scale 1) to {shown}" in lines[0]
    assert lines[1].startswith(f"Data: {shown} (")
    assert any(line == f"Results: {tmp_path / 'w<U+000A>h.run_results.json'}" for line in lines)
    assert lines[-1].startswith(f"Warehouse: {tmp_path / 'w<U+000A>h.duckdb'} (built in ")
    assert all(not line.startswith(("folder", "named", "h.duckdb")) for line in lines)


def test_the_terminal_is_never_sent_a_line_or_paragraph_separator():
    assert escape.terminal("a\u2028b\u2029c\nd") == "a<U+2028>b<U+2029>c\nd"


def test_every_line_the_report_logs_is_one_line():
    from greenery.publisher.run import _one_line_each

    said = []
    _one_line_each(said.append)("Published: /tmp/a\nb/index.html")
    assert said == ["Published: /tmp/a<U+000A>b/index.html"]
