"""What readers get: no local path, no papermill residue, nothing from another host, provenance on
every page, CSV for every table; and what stakeholders hear: status files and webhook messages."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import nbformat
import pytest
from bad_exports import CASES, make
from conftest import PATH_MARKER, tree_digest

from greenery import cli, config
from greenery.chapter_kit import analyses
from greenery.publisher import book_stage, chapter_process, notify, status
from greenery.sample import generate

# --- cleaning executed chapters


def executed_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={"papermill": {"input_path": "/home/me/x.md", "output_path": "/tmp/o"}})
    title = nbformat.v4.new_markdown_cell("# A question")
    parameters = nbformat.v4.new_code_cell("data_dir = None", metadata={"tags": ["parameters", "remove-cell"]})
    injected = nbformat.v4.new_code_cell('data_dir = "/home/me/export"',
                                         metadata={"tags": ["injected-parameters", "remove-cell"], "papermill": {}})
    body = nbformat.v4.new_code_cell("1 + 1", metadata={"papermill": {"duration": 1.0},
                                                        "execution": {"iopub.status.busy": "2026-01-01"}})
    nb.cells = [title, parameters, injected, body]
    return nb


PROVENANCE = book_stage.Provenance("a Greenery export", "0123456789ab", "2021-02-10T14:00:00+00:00",
                                   "greenery 0.1.0, code abcdef", "2021-02-11T09:30:00+00:00")


def test_clean_drops_papermill_residue_and_ends_the_page_with_the_note():
    note = book_stage.computed_with({"data_dir": "/home/me/export", "warehouse": "/w.duckdb", "top_band": 4}, PROVENANCE)
    nb = book_stage.clean(executed_notebook(), note)
    text = json.dumps(nb)
    assert "/home/me" not in text and "papermill" not in text and "iopub" not in text
    assert [c.source[:12] for c in nb.cells] == ["# A question", "data_dir = N", "1 + 1", note[:12]]
    assert "a Greenery export" in note and "0123456789ab" in note and "`top_band = 4`" in note
    assert "Wed 10 Feb 2021 14:00 UTC" in note
    again = book_stage.clean(nb, note)  # cleaning twice replaces the note, never adds a second
    assert [c.source[:12] for c in again.cells] == ["# A question", "data_dir = N", "1 + 1", note[:12]]


def test_the_note_goes_where_the_chapter_placed_it():
    """The summary keeps its answers on the first screen: it tags a cell below them for the note."""
    nb = executed_notebook()
    answers = nbformat.v4.new_markdown_cell("The answers")
    placeholder = nbformat.v4.new_markdown_cell("(the data this page was computed with)",
                                                metadata={"tags": [book_stage.NOTE_TAG]})
    nb.cells += [answers, placeholder, nbformat.v4.new_markdown_cell("## The data behind this book")]
    note = book_stage.computed_with({}, PROVENANCE)
    cleaned = book_stage.clean(nb, note)
    assert [c.source[:12] for c in cleaned.cells] == ["# A question", "data_dir = N", "1 + 1", "The answers",
                                                       note[:12], "## The data "]
    assert [c.source[:12] for c in book_stage.clean(cleaned, note).cells] == [c.source[:12] for c in cleaned.cells]


def test_the_provenance_footer_escapes_what_it_shows():
    footer = book_stage.footer_html(book_stage.Provenance("<b>x</b>", "ff", "2021-02-10T14:00:00+00:00", "c", "2021-02-10T14:00:00+00:00"))
    assert "<b>x</b>" not in footer and "&lt;b&gt;x&lt;/b&gt;" in footer


def test_lint_comments_are_dropped_from_sql_shown_to_readers():
    sql = "select\n    count(*) as users,  -- noqa: RF04\n    1 as x -- keep this one\nfrom t  --noqa\n"
    assert analyses.sql_for_readers(sql) == "select\n    count(*) as users,\n    1 as x -- keep this one\nfrom t\n"


# --- the published book


def published_files(book) -> list[Path]:
    return sorted(p for p in book.out.rglob("*") if p.is_file())


def test_no_local_path_in_any_published_file(sample_book):
    """The export and warehouse live in folders named with a marker: no output file may hold it."""
    assert PATH_MARKER in str(sample_book.export) and PATH_MARKER in str(sample_book.warehouse)
    needles = [PATH_MARKER.encode(), str(sample_book.warehouse).encode(), str(sample_book.export).encode(),
               str(config.ROOT).encode(), b"injected-parameters", b"papermill"]
    hits = [f"{p.relative_to(sample_book.out)}: {n.decode()}" for p in published_files(sample_book)
            for n in needles if n in p.read_bytes()]
    assert hits == []
    assert not list(sample_book.out.rglob("*.ipynb")) and not (sample_book.out / "_sources").exists()
    # the history may live anywhere ($GREENERY_HISTORY): the what-changed page names no file for it
    assert b"history.duckdb" not in (sample_book.out / "notebooks" / "what_changed.html").read_bytes()
    # what a chapter wrote to stderr (a warning names a file of the environment) is never a page's output
    stderr = [p.name for p in published_files(sample_book) if p.suffix == ".html" and b"stderr" in p.read_bytes()]
    assert stderr == []


def test_what_a_chapter_writes_to_stderr_goes_to_the_log_not_the_page(capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("plot()", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="/venv/lib/font.py:3: UserWarning: Glyph 127793 missing\n"
                                                            "  warnings.warn(\n"),
        nbformat.v4.new_output("stream", name="stdout", text="shown\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": "chart"}),
    ])])
    assert chapter_process.to_the_log(nb) == ["/venv/lib/font.py:3: UserWarning: Glyph 127793 missing", "  warnings.warn("]
    assert [o.get("name", o.output_type) for o in nb.cells[0].outputs] == ["stdout", "display_data"]


class Resources(HTMLParser):
    """Every URL a page loads by itself (scripts, styles, images, frames, media, CSS url())."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src", "audio": "src",
             "embed": "src", "object": "data", "track": "src", "input": "src"}

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.LOADS and attrs.get(self.LOADS[tag]):
            self.urls.append(attrs[self.LOADS[tag]])
        if tag == "link" and attrs.get("href") and not {"canonical", "search", "index", "next", "prev"} & set(
                (attrs.get("rel") or "").split()):
            self.urls.append(attrs["href"])
        self.urls += css_urls(attrs.get("style") or "")
        self.urls += (attrs.get("srcset") or "").split()[::2]

    def handle_data(self, data):
        if self.lasttag == "style":
            self.urls += css_urls(data)


def css_urls(css: str) -> list[str]:
    return [m.strip("'\" ") for m in re.findall(r"url\(([^)]*)\)", css)] + re.findall(r"@import\s+['\"]([^'\"]+)", css)


def external(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url.strip(), re.IGNORECASE))


def test_the_resource_finder_finds_what_it_looks_for():
    page = Resources()
    page.feed('<script src="https://cdn.example/x.js"></script><link rel="stylesheet" href="//fonts.example/f.css">'
              '<div style="background: url(http://img.example/a.png)"></div><img src="_static/a.png">'
              '<style>@import "https://x.example/y.css";</style><a href="https://example.org">a link</a>')
    assert [u for u in page.urls if external(u)] == ["https://cdn.example/x.js", "//fonts.example/f.css",
                                                      "http://img.example/a.png", "https://x.example/y.css"]


def test_no_page_loads_anything_from_another_host(sample_book):
    found = []
    for path in published_files(sample_book):
        if path.suffix == ".html":
            page = Resources()
            page.feed(path.read_text(encoding="utf-8"))
            found += [f"{path.name}: {u}" for u in page.urls if external(u)]
        elif path.suffix == ".css":
            found += [f"{path.name}: {u}" for u in css_urls(path.read_text(encoding="utf-8")) if external(u)]
    assert found == []
    text = "\n".join(p.read_text(encoding="utf-8") for p in published_files(sample_book) if p.suffix == ".html")
    assert "mathjax" not in text.lower().replace("mathjax_ignore", "") and "thebe" not in text


def test_the_formula_is_drawn_into_the_page(sample_book):
    page = (sample_book.out / "notebooks" / "repeat_rate.html").read_text()
    [image] = re.findall(r'<img class="greenery-math"[^>]*>', page)
    # read aloud in words, never as LaTeX
    assert ('alt="repeat rate equals users with two or more orders divided by users with at least one order"' in image
            and 'src="data:image/svg+xml;base64,' in image)
    assert "\\[" not in page and "$$" not in page


def test_every_page_says_what_data_and_code_it_shows(sample_book):
    stamp = json.loads((sample_book.out / ".greenery-book.json").read_text())["provenance"]
    assert stamp["data_label"] == "the generated sample (seed 42, scale 1)" and len(stamp["data_fingerprint"]) == 12
    for path in published_files(sample_book):
        if path.suffix == ".html" and path.parent.name == "notebooks":
            page = path.read_text()
            footer = re.search(r'<p class="greenery-provenance">(.*?)</p>', page).group(1)
            assert stamp["data_fingerprint"] in footer and "greenery 0.1.0" in footer and "Book built" in footer
            assert "Computed with" in page, path.name


def test_one_search_box_home_in_the_navbar_and_a_favicon(sample_book):
    page = (sample_book.out / "notebooks" / "marts.html").read_text()
    assert page.count('class="bd-search') == 1  # the sidebar's; none in the header
    assert 'rel="icon" href="../_static/favicon.svg"' in page
    assert re.search(r'<a class="reference internal" href="summary.html">\s*Greenery: what the data says', page)
    assert "download-buttons" not in page  # no link to notebook sources


def test_every_table_of_figures_offers_its_numbers_as_csv(sample_book):
    page = (sample_book.out / "notebooks" / "repeat_rate.html").read_text()
    tables = len(re.findall(r'<table[^>]* class="greenery-table[ "]', page))
    links = re.findall(r'<a download="([^"]+\.csv)" href="data:text/csv;charset=utf-8;base64,([^"]+)"', page)
    assert tables >= 1 and len(links) == tables  # this page's tables are all of figures
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(links[0][1]).decode("utf-8-sig"))))
    assert rows[0]["Buyers (1+ orders)"] == "124" and rows[0]["Repeat buyers (2+ orders)"] == "92"
    # the number, not its formatted text
    assert float(rows[0]["Repeat rate (share of buyers with 2+ orders)"]) == pytest.approx(92 / 124)
    assert links[0][0] == "greenery-repeat-rate-of-the-export-s-buyers.csv"  # named from its caption


@pytest.mark.parametrize("chapter", ["repeat_rate", "repeat_indicators", "promos", "operations", "funnel"])
def test_the_downloads_hold_values_that_parse_as_numbers(sample_book, chapter):
    """Every table on these pages is of figures: each offers a CSV named from its caption, in which a
    figure is a number (a share a fraction, an interval two columns, an amount without US$), never text."""
    import pandas as pd

    from greenery.chapter_kit import tables as tables_

    page = (sample_book.out / "notebooks" / f"{chapter}.html").read_text()
    shown = re.findall(r'<table[^>]* class="greenery-table[ "].*?</table>', page, re.S)
    links = re.findall(r'<a download="([^"]+\.csv)" href="data:text/csv;charset=utf-8;base64,([^"]+)"', page)
    assert shown and len(links) == len(shown)
    assert all("<caption>" in t for t in shown) and len({name for name, _ in links}) == len(links)
    for name, data in links:
        frame = pd.read_csv(io.BytesIO(base64.b64decode(data)), encoding="utf-8-sig")
        assert len(frame), name
        for column in frame.columns:
            # segment names ("00–05 h", "US$100–249") are labels: the row's name, or which segment
            label = column == frame.columns[0] or "segment" in column.lower()
            if not pd.api.types.is_numeric_dtype(frame[column]) and not label:  # words only: nothing a reader would have to parse back
                values = frame[column].dropna().astype(str)
                assert not tables_.looks_numeric(values), (name, column)
                assert not values.str.contains(r"\d\s?%|US\$|\d\s?(?:–|to)\s?[+−-]?\d|^[<>] ?0", regex=True).any(), (
                    name, column)
            values = frame[column].dropna()
            if re.search(r"share|interval|\bp\b|rate", column, re.I) and len(values) and values.dtype.kind != "b":
                assert values.dtype.kind == "f", (name, column)  # a fraction or p-value, as a number
                if not re.search(r"ratio|difference", column, re.I):  # shares and p-values: within 0 and 1
                    assert values.between(0, 1).all(), (name, column)
        froms = [c for c in frame.columns if c.endswith("interval from")]
        for low in froms:  # an interval's bounds in columns of their own, the lower first
            high = low.removesuffix("from") + "to"
            both = frame[[low, high]].dropna()
            assert (both[low] <= both[high]).all(), (name, low)


def test_no_lint_comment_reaches_a_page(sample_book):
    assert [p.name for p in published_files(sample_book) if p.suffix == ".html" and b"noqa" in p.read_bytes()] == []


# --- status files and notifications


@pytest.fixture
def webhook():
    """A local HTTP server on 127.0.0.1 that records the JSON bodies posted to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # the name http.server calls
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def report(book, export, url=None, out=None) -> int:
    return cli.main(["report", "--data-dir", str(export), "--out", str(out or book.out),
                     "--warehouse", str(book.warehouse), *(["--notify", url] if url else [])])


def read_status(out: Path) -> dict:
    json_path, html_path = status.paths(out)
    assert html_path.is_file() and not (out / json_path.name).exists()  # beside the book, never in it
    return json.loads(json_path.read_text())


def no_paths_or_personal_data(text: str, book) -> None:
    from test_personal_data import personal_values

    assert PATH_MARKER not in text and str(config.ROOT) not in text
    assert not [v for v in personal_values(book.export) if v in text]


def test_an_unchanged_rerun_records_its_status_and_tells_no_one(sample_book, webhook, capsys):
    url, received = webhook
    before = tree_digest(sample_book.out)
    assert report(sample_book, sample_book.export, url) == 0
    state = read_status(sample_book.out)
    assert state["attempt"]["outcome"] == "unchanged" and state["attempt"]["exit_code"] == 0
    assert state["book"]["shows"]["data_label"] == "the generated sample (seed 42, scale 1)"
    # the sample's four deliberate warnings (tests/test_sample.py's DELIBERATE_WARNINGS)
    assert state["tests"]["summary"]["warn"] == 4
    assert received == [] and tree_digest(sample_book.out) == before
    no_paths_or_personal_data(json.dumps(state) + status.paths(sample_book.out)[1].read_text(), sample_book)


def test_a_refused_export_is_announced_and_the_book_stays_as_it_was(sample_book, webhook, tmp_path, capsys):
    url, received = webhook
    case = next(c for c in CASES if c.name == "duplicate_primary_key")
    good = tmp_path / "good"
    generate(good, 0.2, 42)
    before = tree_digest(sample_book.out)
    shows = json.loads((sample_book.out / ".greenery-book.json").read_text())["provenance"]
    assert report(sample_book, make(case, good, tmp_path), url) == 1
    assert tree_digest(sample_book.out) == before
    state = read_status(sample_book.out)
    assert state["attempt"]["outcome"] == "refused" and state["book"]["shows"] == shows
    assert not state["book"]["changed"]
    [message] = received
    assert message["type"] == "application/json"
    text = message["body"]["text"]
    assert text.startswith("Greenery report: the new export was refused (exit 1: error-level data tests failed).")
    assert "FAIL unique_stg_orders_order_id (stg_orders): 1 row" in text
    assert re.search(r"Data tests: \d+ passed, \d+ warned, \d+ failed\.", text)
    assert "Readers still see the last good book (the generated sample (seed 42, scale 1)" in text
    assert message["body"]["tests"]["fail"] >= 1 and message["body"]["outcome"] == "refused"
    no_paths_or_personal_data(json.dumps(message) + json.dumps(state), sample_book)
    assert "failing_keys" not in json.dumps(message)


def test_an_unreadable_export_is_announced_without_its_values_or_paths(sample_book, webhook, tmp_path, capsys):
    url, received = webhook
    case = next(c for c in CASES if c.name == "text_in_price")
    good = tmp_path / "good"
    generate(good, 0.2, 42)
    assert report(sample_book, make(case, good, tmp_path), url) == 2
    [message] = received
    text = message["body"]["text"]
    assert "exit 2: the export could not be read" in text
    assert "<export>/products.csv:" in text and "'twelve'" not in text and str(tmp_path) not in text
    assert read_status(sample_book.out)["attempt"]["outcome"] == "refused"


def test_a_failed_render_is_announced(sample_book, webhook, monkeypatch, capsys):
    from greenery.errors import ReportError
    from greenery.outputs import fingerprint

    url, received = webhook

    def fail(stage, builder="html", cache=None, server=None, early=None):
        raise ReportError("jupyter-book could not render the book:\nWARNING: a broken cross-reference")

    monkeypatch.setattr(fingerprint, "book", lambda *args: "a book never published")
    monkeypatch.setattr("greenery.publisher.run.render", fail)
    assert report(sample_book, sample_book.export, url) == 4
    [message] = received
    assert message["body"]["outcome"] == "failed"
    assert "Error: jupyter-book could not render the book:" in message["body"]["text"]
    assert read_status(sample_book.out)["attempt"]["outcome"] == "failed"


def test_a_book_published_with_warnings_is_announced(sample_book, webhook, monkeypatch, tmp_path, capsys):
    """The sample warns (shipped orders without an estimate): a newly published book says so."""

    url, received = webhook

    def quick_render(stage, builder="html", cache=None, server=None, early=None):  # the chapters are reused; Sphinx itself is tested elsewhere
        html = stage / "_build" / builder
        html.mkdir(parents=True)
        (html / "index.html").write_text("<p>book</p>")
        return html

    monkeypatch.setattr("greenery.publisher.run.render", quick_render)
    out = tmp_path / "site" / "html"
    assert report(sample_book, sample_book.export, url, out=out) == 0
    [message] = received
    assert message["body"]["outcome"] == "published"
    assert "WARN assert_shipped_orders_have_estimate (stg_orders): 23 rows" in message["body"]["text"]
    state = read_status(out)
    assert state["attempt"]["outcome"] == "published" and state["book"]["changed"]


def test_an_unreachable_webhook_changes_nothing_but_a_warning(tmp_path, capsys):
    out = tmp_path / "site" / "html"
    code = notify.run_recorded(lambda: 1, out=out, warehouse=tmp_path / "w.duckdb", notify_url="http://127.0.0.1:9/hook")
    assert code == 1
    err = capsys.readouterr().err
    assert "warning: could not notify http://127.0.0.1:9: " in err and "/hook" not in err  # the path is the secret
    assert read_status(out)["attempt"]["outcome"] == "refused"


def test_error_lines_lose_quoted_values_and_paths():
    assert status.redact("a 'secret@example.com' value at /x/y\nmore", {"/x/y": "<export>"}) == "a '…' value at <export>"


# --- the whole-book PDF


def test_the_single_page_is_printed_from_the_top_of_its_folder(tmp_path):
    """singlehtml writes the root document under notebooks/ with links relative to the folder's top."""
    from greenery.publisher import pdf

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=notebooks/summary.html" />')
    (tmp_path / "notebooks" / "summary.html").write_text('<link href="_static/x.css"><p>the book</p>')
    single = pdf.single_page(tmp_path)
    assert single.parent == tmp_path and "the book" in single.read_text()


def test_chromium_prints_a_page_to_pdf(tmp_path):
    import shutil

    from greenery.publisher import pdf

    if not any(shutil.which(name) for name in pdf.BROWSERS):
        pytest.skip("Chromium is not installed (make pdf installs it or names it)")
    pytest.importorskip("playwright", reason="Playwright is not installed (make pdf installs requirements-browser.txt)")
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>")
    out = pdf.print_to_pdf(page, tmp_path / "out" / "book.pdf")
    assert out.read_bytes().startswith(b"%PDF") and not list(out.parent.glob(".*.partial"))


def test_make_pdf_refuses_when_nothing_is_published(tmp_path):
    from greenery.errors import ReportError
    from greenery.publisher import pdf

    with pytest.raises(ReportError, match="there is none at .*: run `make report` first"):
        pdf.published_book(tmp_path)


def test_make_pdf_refuses_other_data_than_the_published_books(shop_dir):
    from greenery.errors import ReportError
    from greenery.outputs import fingerprint
    from greenery.publisher import pdf

    published = {"chapters": {"summary": "k"}, "provenance": {"data_label": "a Greenery export",
                                                              "data_fingerprint": "0123456789ab"}}
    with pytest.raises(ReportError, match=r"shows a Greenery export \(0123456789ab\) but this run reads"):
        pdf.same_data(published, shop_dir)
    published["provenance"]["data_fingerprint"] = fingerprint.export(shop_dir)[:12]
    pdf.same_data(published, shop_dir)  # the same export: no refusal


def test_make_pdf_refuses_chapters_that_changed_since_publishing():
    from greenery.errors import ReportError
    from greenery.publisher import pdf

    published = {"chapters": {"summary": "a", "funnel": "b"}}
    pdf.same_chapters(published, {"chapters": {"summary": "a", "funnel": "b"}})
    with pytest.raises(ReportError, match="the code or parameters of funnel changed"):
        pdf.same_chapters(published, {"chapters": {"summary": "a", "funnel": "c"}})


def test_every_printed_sheet_carries_the_provenance_as_css_text():
    prov = book_stage.Provenance('the "sample" <b>x</b>\\', "0123456789ab", "2026-12-01T10:00:00+00:00", "code",
                                 "2026-12-01T11:00:00+00:00")
    css = book_stage.print_css(prov)
    assert ('@bottom-left { content: "Data: the \\"sample\\" \\3C b\\3E x\\3C /b\\3E \\\\, fingerprint 0123456789ab · '
            'book built Tue 1 Dec 2026 11:00 UTC";') in css
    assert 'content: "Page " counter(page) " of " counter(pages);' in css


def test_the_top_page_has_a_title_and_a_visible_link(tmp_path):
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=notebooks/summary.html" />')
    book_stage.landing_page(tmp_path, "Greenery: <what> the data says")
    page = (tmp_path / "index.html").read_text()
    assert "<title>Greenery: &lt;what&gt; the data says</title>" in page
    assert '<a href="notebooks/summary.html">Open the report</a>' in page
    assert '<meta http-equiv="Refresh" content="0; url=notebooks/summary.html" />' in page  # make pdf reads it


def test_a_chart_keeps_the_alt_text_its_cell_gives_unless_the_chapter_passed_one():
    def cell(from_chapter):
        return nbformat.v4.new_code_cell(metadata={"mystnb": {"image": {"alt": "Nine in ten buyers ordered again."}}},
                                         outputs=[nbformat.v4.new_output("display_data", data={
                                             "text/html": '<picture><img src="x" alt="Chart: default"></picture>'},
                                             metadata={"greenery": {"chart": True, "alt_from_chapter": from_chapter}})])

    default, own = cell(False), cell(True)
    book_stage._alt_text_to_cell(default)
    book_stage._alt_text_to_cell(own)
    assert 'alt="Nine in ten buyers ordered again."' in default.outputs[0]["data"]["text/html"]
    assert 'alt="Chart: default"' in own.outputs[0]["data"]["text/html"]


# --- reuse is verified, not assumed (issue 19)


def test_a_damaged_book_and_a_cut_cache_entry_are_noticed_and_made_again(sample_book, capsys):
    """A page deleted, a page edited and a chapter's cached notebook cut short: the next report does not
    say "Book up to date"; it runs that chapter again and renders the book, which matches its stamp."""
    from greenery.outputs import ownership

    stamp = ownership.read_stamp(sample_book.out)
    deleted, edited = "genindex.html", "notebooks/summary.html"
    assert {deleted, edited} <= set(stamp["files"]) and ownership.book_intact(sample_book.out, stamp)
    (sample_book.out / deleted).unlink()
    (sample_book.out / edited).write_text("<p>defaced</p>")
    [cut] = sample_book.chapters.glob("summary-*.ipynb")
    cut.write_bytes(cut.read_bytes()[:100])
    capsys.readouterr()
    assert report(sample_book, sample_book.export) == 0
    out = capsys.readouterr().out
    assert "Book up to date" not in out and "differs from its stamp" in out
    assert "summary.md executed" in out and "chapters unchanged: reused" in out
    assert (sample_book.out / deleted).is_file() and "defaced" not in (sample_book.out / edited).read_text()
    assert ownership.book_intact(sample_book.out, ownership.read_stamp(sample_book.out))
    assert report(sample_book, sample_book.export) == 0
    assert "Book up to date" in capsys.readouterr().out
