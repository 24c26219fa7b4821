"""The book as its readers see it: every page in a real browser at a laptop's and a phone's width, and printed.

Debian's Chromium, driven by Playwright (requirements-browser.txt; `make browser-test` installs it)
through `executable_path`: Playwright's own browser download is never used. Without Chromium or
Playwright these tests skip, saying which is missing. The books are built once per session: the
sample's (conftest.sample_book) and, when the real export is beside the checkout, the real one's.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import unicodedata
import urllib.parse
from pathlib import Path

import pandas as pd
import pytest
from conftest import PATH_MARKER, publish_book

from greenery.chapter_kit import figures
from greenery.publisher import pdf


def _missing(what: str) -> None:
    """Skip, saying what is missing; where the browser tests must run ($GREENERY_REQUIRE_BROWSER: .ci/run,
    `make browser-test`), fail instead."""
    if os.environ.get("GREENERY_REQUIRE_BROWSER"):
        pytest.fail(f"the browser tests cannot run: {what}", pytrace=False)
    pytest.skip(f"browser tests skipped: {what}", allow_module_level=True)


try:
    import pypdf
    from playwright import sync_api as playwright_api
except ImportError:
    _missing("Playwright or pypdf is not installed (`make browser-test` installs requirements-browser.txt)")
CHROMIUM = next((shutil.which(n) for n in pdf.BROWSERS if shutil.which(n)), None)
if CHROMIUM is None:
    _missing("Chromium is not installed (apt-get install chromium; `make chromium` installs it as root)")

LAPTOP, PHONE = 1366, 390
MIN_PHONE_TEXT_PX = 11
FIRST_SCREEN_PX = 900
SKIPPED_PAGES = ("genindex.html", "search.html", "index.html")  # the top page redirects: checked on its own


@pytest.fixture(scope="session")
def real_book(tmp_path_factory):
    from greenery import config

    export = config.real_export_dir()
    if export is None:
        pytest.skip("the real export is absent: neither $GREENERY_DATA_DIR nor ../shared/greenery holds it")
    return publish_book(export, tmp_path_factory.mktemp(f"real-book-{PATH_MARKER}"))


@pytest.fixture(scope="session", params=["sample", "real"])
def book(request) -> Path:
    """Each book's folder; $GREENERY_BROWSER_BOOK checks a book already built instead (its "sample" run)."""
    given = os.environ.get("GREENERY_BROWSER_BOOK")
    if given:
        if request.param != "sample":
            pytest.skip("$GREENERY_BROWSER_BOOK names the one book to check")
        return Path(given).absolute()
    built = request.getfixturevalue("sample_book" if request.param == "sample" else "real_book")
    assert built.exit_code == 0
    return built.out


@pytest.fixture(scope="session")
def chromium():
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=pdf.CHROMIUM_ARGS, timeout=60_000)
        yield launched
        launched.close()


def pages(book: Path) -> list[Path]:
    found = sorted(p for p in book.rglob("*.html") if "_static" not in p.parts and p.name not in SKIPPED_PAGES)
    assert len(found) >= 10, f"only {len(found)} pages in {book}"
    return found


def name(book: Path, page: Path) -> str:
    return page.relative_to(book).as_posix()


@pytest.fixture(scope="session")
def tab(chromium):
    """One tab per session; `show` sizes it and loads a page (file:// URLs, nothing from the network)."""
    context = chromium.new_context(viewport={"width": LAPTOP, "height": FIRST_SCREEN_PX})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def show(tab, page: Path, width: int):
    tab.set_viewport_size({"width": width, "height": FIRST_SCREEN_PX})
    tab.goto(page.as_uri(), wait_until="load")
    tab.evaluate("document.fonts.ready.then(() => true)")
    return tab


# Visible elements past the viewport's right edge, unless a scrolling box holds them (it shows a
# shadow and a line saying so: greenery.css) or they are off-canvas on purpose (the phone's drawer).
TOO_WIDE = """() => {
  const width = document.documentElement.clientWidth, found = [];
  const scrolls = (e) => { for (let a = e.parentElement; a; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    if (r.width === 0 || r.height === 0 || s.visibility === 'hidden' || e.closest('dialog:not([open])')) continue;
    if (r.right > width + 1 && r.left < width && !scrolls(e))
      found.push(`${e.tagName.toLowerCase()}.${[...e.classList].join('.')} ends at ${Math.round(r.right)} px`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, found: found.slice(0, 5)};
}"""

# Every column's cell of a table's first row (its header, or on a phone's cards the first row's
# cells), and whether a box that clips (overflow other than visible) or the viewport hides part of it.
HIDDEN_COLUMNS = """() => {
  const width = document.documentElement.clientWidth, hidden = [];
  for (const table of document.querySelectorAll('.bd-article table')) {
    const head = [...table.querySelectorAll('thead tr:last-child th')];
    // a phone's cards hide the header row (their cells carry its labels): the first row's cells stand for it
    const headShown = head.length && getComputedStyle(table.tHead).position !== 'absolute';
    const cells = headShown ? head : [...(table.querySelector('tbody tr') || {children: []}).children];
    for (const cell of cells) {
      if (cell.classList.contains('greenery-phone-hidden') && getComputedStyle(cell).display === 'none') continue;  // by design: book.table(phone_columns=)
      const r = cell.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) { hidden.push(`${cell.textContent.trim()}: not shown`); continue; }
      if (r.right > width + 1) hidden.push(`${cell.textContent.trim()}: past the screen's edge`);
      for (let a = cell.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX === 'visible') continue;
        const b = a.getBoundingClientRect();
        if (r.right > b.right + 1 || r.left < b.left - 1) {
          hidden.push(`${cell.textContent.trim()}: cut by ${a.tagName.toLowerCase()}.${[...a.classList].join('.')}`);
          break;
        }
      }
    }
  }
  return hidden;
}"""

CHARTS = """() => [...document.querySelectorAll('picture.greenery-chart img')].map(img => ({
  src: img.currentSrc, width: img.getBoundingClientRect().width, alt: img.alt}))"""


@pytest.mark.parametrize("width", [LAPTOP, PHONE])
def test_no_element_is_wider_than_the_screen(book, tab, width):
    wide = {}
    for page in pages(book):
        seen = show(tab, page, width).evaluate(TOO_WIDE)
        if seen["found"] or seen["scrollWidth"] > seen["width"] + 1:
            wide[name(book, page)] = seen
    assert not wide, f"at {width} px: {wide}"


@pytest.mark.parametrize("width", [LAPTOP, PHONE])
def test_no_table_column_is_hidden_by_overflow(book, tab, width):
    hidden = {name(book, p): cut for p in pages(book) if (cut := show(tab, p, width).evaluate(HIDDEN_COLUMNS))}
    assert not hidden, f"at {width} px: {hidden}"


def svg_of(src: str) -> str:
    assert src.startswith("data:image/svg+xml;base64,"), src[:60]
    return base64.b64decode(src.split(",", 1)[1]).decode()


def test_chart_text_is_at_least_11_px_on_a_phone(book, tab):
    """The rendered size of a chart's smallest text: its size in the SVG (points) times the SVG's
    scale on the page (drawn width over natural width)."""
    small, charts = {}, 0
    for page in pages(book):
        for chart in show(tab, page, PHONE).evaluate(CHARTS):
            charts += 1
            drawn = svg_of(chart["src"])
            smallest = min(figures.text_sizes_pt(drawn)) * figures.PX_PER_PT * chart["width"] / figures.natural_width_px(drawn)
            if smallest < MIN_PHONE_TEXT_PX:
                small.setdefault(name(book, page), []).append(f"{chart['alt'][:60]}: {smallest:.1f} px")
    assert charts >= 5, f"only {charts} charts found"
    assert not small, small


def test_charts_have_alt_text_that_is_not_the_bare_default(book, tab):
    for page in pages(book):
        for chart in show(tab, page, LAPTOP).evaluate(CHARTS):
            assert chart["alt"].strip() and chart["alt"] != "Chart: untitled", name(book, page)


def test_the_headline_tiles_are_on_the_first_screen(book, tab):
    summary = next(p for p in pages(book) if p.name == "summary.html")
    tiles = show(tab, summary, LAPTOP).evaluate(
        "() => [...document.querySelectorAll('.greenery-tiles')].map(e => e.getBoundingClientRect().bottom"
        " + window.scrollY)")
    if not tiles:
        pytest.skip("the summary has no headline tiles (class greenery-tiles) yet")
    assert max(tiles) <= FIRST_SCREEN_PX, f"the tiles end at {max(tiles):.0f} px, below the first screen"


def squeeze(text: str) -> str:
    """Text without spaces, line breaks or soft hyphens, ligatures spelled out (a PDF's "ﬂ" is "fl"):
    a header wrapped over two lines still matches."""
    return re.sub(r"[\s\u00ad]+", "", unicodedata.normalize("NFKC", text))


def test_every_table_header_is_on_paper(book, tab, tmp_path):
    missing, tables = {}, 0
    for page in pages(book):
        shown = show(tab, page, LAPTOP)
        headers = shown.evaluate("() => [...document.querySelectorAll('.bd-article table thead th')]"
                                 ".map(th => th.textContent.trim()).filter(t => t)")
        if not headers:
            continue
        tables += 1
        shown.emulate_media(media="print")
        printed = tmp_path / "page.pdf"
        shown.pdf(path=str(printed), prefer_css_page_size=True)
        shown.emulate_media(media="screen")
        text = squeeze(" ".join(p.extract_text() or "" for p in pypdf.PdfReader(printed).pages))
        lost = [h for h in headers if squeeze(h) not in text]
        if lost:
            missing[name(book, page)] = lost
    assert tables >= 5
    assert not missing, missing


def test_every_csv_download_parses(book, tab):
    links = 0
    for page in pages(book):
        for href in show(tab, page, LAPTOP).evaluate(
                "() => [...document.querySelectorAll('a[download]')].map(a => a.href)"):
            links += 1
            head, data = href.split(",", 1)
            raw = base64.b64decode(data) if head.endswith(";base64") else urllib.parse.unquote_to_bytes(data)
            frame = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig")
            assert len(frame.columns) and len(frame), f"{name(book, page)}: an empty CSV"
    assert links >= 5


def test_the_top_page_has_a_title_and_a_link(book, tab):
    text = (book / "index.html").read_text(encoding="utf-8")
    assert re.search(r"<title>[^<]+</title>", text)
    assert re.search(r'<a href="notebooks/summary.html">[^<]+</a>', text)
    tab.set_viewport_size({"width": LAPTOP, "height": FIRST_SCREEN_PX})
    tab.goto((book / "index.html").as_uri())
    tab.wait_for_url("**/notebooks/summary.html")  # and it still takes the reader to the summary


def test_a_long_table_shows_its_first_rows_on_a_phone_and_the_rest_on_demand(book, tab):
    for page in pages(book):
        shown = show(tab, page, PHONE)
        visible = shown.locator("label.greenery-more:visible")
        if not visible.count():  # none, or only in closed folds
            continue
        box = visible.first.get_attribute("for")
        table = f"document.querySelector('#{box} ~ table')"
        count = f"() => [...{table}.querySelectorAll('tbody tr')].filter(r => r.getBoundingClientRect().height > 0).length"
        total = shown.evaluate(f"() => {table}.querySelectorAll('tbody tr').length")
        assert shown.evaluate(count) == 10 < total
        visible.first.click()
        assert shown.evaluate(count) == total
        return
    pytest.skip("no table of this book is longer than ten rows")


def test_the_pdf_has_an_outline_page_numbers_and_the_provenance_on_every_sheet(book, chromium, tmp_path):
    """As `make pdf` prints (greenery.publisher.pdf.print_page), here one chapter of the book."""
    page = next(p for p in pages(book) if p.name == "operations.html")
    printed = tmp_path / "operations.pdf"
    pdf.print_page(chromium, page, printed)
    reader = pypdf.PdfReader(printed)
    assert reader.outline, "no bookmarks"
    sheets = len(reader.pages)
    for number, sheet in enumerate(reader.pages, 1):
        text = " ".join((sheet.extract_text() or "").split())
        assert f"Page {number} of {sheets}" in text
        assert "fingerprint" in text and "book built" in text, f"sheet {number} has no provenance line"


def test_folded_sections_open_for_the_browsers_print_and_close_after(book, tab):
    """book/_static/open-for-print.js: paper has no toggles, so a closed "How this was computed" printed
    as a bare title; the reader's closed sections are closed again after printing."""
    checked = 0
    for page in pages(book):
        shown = show(tab, page, LAPTOP)
        closed = shown.evaluate("() => document.querySelectorAll('details:not([open])').length")
        if not closed:
            continue
        checked += 1
        shown.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
        assert shown.evaluate("() => document.querySelectorAll('details:not([open])').length") == 0, name(book, page)
        shown.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
        assert shown.evaluate("() => document.querySelectorAll('details:not([open])').length") == closed
    assert checked >= 5, f"only {checked} pages with a folded section"


PRINT_WIDTH_PX = round(figures.PRINT_WIDTH_MM / 25.4 * 96)  # an A4 sheet's text width, in CSS px

# The charts paper shows (the print version where there is one) and their drawn width; a diagram (the
# lineage) cannot be redrawn: it prints as wide as the sheet.
PRINTED_CHARTS = """() => [...document.querySelectorAll('picture.greenery-chart:not(.greenery-diagram) img, img.greenery-print-chart')]
  .filter(img => img.getBoundingClientRect().width > 0)
  .map(img => ({src: img.currentSrc, width: img.getBoundingClientRect().width, alt: img.alt}))"""


def test_chart_text_on_paper_is_at_least_7_pt(book, tab):
    """Thirty products' bars, shrunk to half a sheet, printed their names at about 5 pt."""
    small, charts = {}, 0
    for page in pages(book):
        shown = show(tab, page, PRINT_WIDTH_PX)
        shown.emulate_media(media="print")
        try:
            for chart in shown.evaluate(PRINTED_CHARTS):
                charts += 1
                drawn = svg_of(chart["src"])
                printed = min(figures.text_sizes_pt(drawn)) * chart["width"] / figures.natural_width_px(drawn)
                if printed < figures.MIN_PRINT_TEXT_PT - 0.1:
                    small.setdefault(name(book, page), []).append(f"{chart['alt'][:60]}: {printed:.1f} pt")
        finally:
            shown.emulate_media(media="screen")
    assert charts >= 5, f"only {charts} charts found"
    assert not small, small


def printed_sheets(tab, page: Path, folder: Path) -> list[str]:
    """The page printed as the browser's Print does (A4, print styles), as the text of each sheet."""
    shown = show(tab, page, LAPTOP)
    shown.emulate_media(media="print")
    printed = folder / "page.pdf"
    shown.pdf(path=str(printed), prefer_css_page_size=True)
    shown.emulate_media(media="screen")
    return [squeeze(p.extract_text() or "") for p in pypdf.PdfReader(printed).pages]


# Each captioned table's caption, its first column's header, and the first cell of each of its rows (the
# row's name), in order.
CAPTIONED_TABLES = """() => [...document.querySelectorAll('.bd-article table')].filter(t => t.caption && t.tHead).map(t => ({
  caption: t.caption.textContent.trim(), short: t.classList.contains('greenery-short'),
  first: t.tHead.rows[t.tHead.rows.length - 1].cells[0].textContent.trim(),
  rows: [...t.tBodies[0].rows].map(r => r.cells[0].textContent.trim())}))"""


def test_a_table_on_paper_keeps_its_caption_with_its_first_rows_and_a_short_one_is_not_split(book, tab, tmp_path):
    """A caption and header stranded at a sheet's foot, three-row tables split across two sheets."""
    split, tables = {}, 0
    for page in pages(book):
        found = show(tab, page, LAPTOP).evaluate(CAPTIONED_TABLES)
        if not found:
            continue
        sheets = printed_sheets(tab, page, tmp_path)
        for table in found:
            caption = squeeze(table["caption"]) + squeeze(table["first"])  # not a heading of the same words
            where = [i for i, text in enumerate(sheets) if caption in text]
            if not where or not table["rows"]:
                continue
            tables += 1
            sheet = sheets[where[0]]
            # the first row's name follows the caption on its sheet (all the rows, for a short table)
            wanted = table["rows"] if table["short"] else table["rows"][:1]
            after = sheet[sheet.index(caption) + len(caption):]
            lost = [r for r in wanted if squeeze(r) not in after]
            if lost:
                split.setdefault(name(book, page), []).append(f"{table['caption']}: {lost[:3]} on a later sheet")
    assert tables >= 5
    assert not split, split
