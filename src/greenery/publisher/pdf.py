"""`make pdf`: the published book as one PDF, `_build/pdf/greenery-report.pdf`.

It prints the book that was published (`_build/html`), or refuses with one line saying why: the
same executed chapters (reused from the chapter cache: same data, same code, same parameters) are
rendered by jupyter-book's `singlehtml` builder into one page, whose chapter fingerprints must
equal the published book's stamp, and whose provenance carries the published book's build time.
Headless Chromium prints it (driven by Playwright, requirements-browser.txt) with the book's print
styles (book/_static/greenery.css): every table keeps every column, charts are vector graphics
never split between sheets, every sheet has the provenance line and its number (CSS page margin
boxes, book_stage.print_css), and the PDF has an outline of the chapters and their sections.

Chromium is Debian's `chromium` package (`apt-get install chromium`); `make pdf` installs it when
it runs as root and it is missing, and otherwise names it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from datetime import datetime
from pathlib import Path

from greenery import config
from greenery.errors import ExitCode, GreeneryError, ReportError, one_line
from greenery.outputs import ownership

PDF_PATH = config.BUILD_DIR / "pdf" / "greenery-report.pdf"
SINGLE_HTML_DIR = config.BUILD_DIR / "singlehtml"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, and nothing fetched from the network: no updates, no sync, no first-run pages.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ReportError("make pdf needs Chromium to print the book: install it with `apt-get install chromium` "
                      "(Debian/Ubuntu) or `brew install --cask chromium` (macOS)")


def print_page(chromium, page: Path, pdf: Path, timeout: float = 180) -> None:
    """Print one HTML page in a launched Chromium (a Playwright Browser), A4 by the print styles."""
    tab = chromium.new_page()
    try:
        tab.set_default_timeout(timeout * 1000)
        tab.goto(page.resolve().as_uri(), wait_until="load")
        tab.evaluate("document.fonts.ready.then(() => true)")
        # folded sections ("How this was computed") are printed open: paper has no toggles
        tab.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        tab.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True, outline=True, tagged=True)
    finally:
        tab.close()


def print_to_pdf(page: Path, pdf: Path, timeout: float = 180) -> Path:
    """Print one HTML page with Chromium, as its Print would (A4, print styles), with an outline."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as missing:
        raise ReportError("make pdf needs Playwright to drive Chromium: `make pdf` installs it from "
                          "requirements-browser.txt") from missing
    pdf.parent.mkdir(parents=True, exist_ok=True)
    partial = pdf.with_name(f".{pdf.name}.partial")
    def run() -> None:
        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=browser(), args=CHROMIUM_ARGS, timeout=timeout * 1000)
            try:
                print_page(chromium, page, partial, timeout)
            finally:
                chromium.close()

    # In a thread of its own: Playwright's sync API refuses a thread where an asyncio loop runs (a
    # notebook's, or another Playwright session's in the same process).
    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(max_workers=1) as printer:
            printer.submit(run).result()  # Playwright's own timeouts bound every step
    except Error as error:
        partial.unlink(missing_ok=True)
        raise ReportError(f"Chromium could not print {page.name}: {str(error).strip().splitlines()[0]}") from error
    if not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        raise ReportError(f"Chromium could not print {page.name}: it wrote no PDF")
    partial.replace(pdf)
    return pdf


def single_page(folder: Path) -> Path:
    """The one page of a singlehtml build, at the folder's top.

    Sphinx writes it where the root document lives (notebooks/summary.html) but with links relative
    to the top of the folder (`_static/`, `_images/`), so it is copied up to where those links hold."""
    redirect = (folder / "index.html").read_text(encoding="utf-8")
    target = re.search(r'url=([^"]+)"', redirect)
    page = folder / target.group(1) if target else folder / "index.html"
    single = folder / "greenery-report.html"
    shutil.copyfile(page, single)
    ownership.record_file(folder, single.name)  # ours: the next `make pdf` may replace the folder
    return single


def read_stamp(folder: Path) -> dict:
    try:
        return json.loads((folder / config.BOOK_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def published_book(folder: Path = config.HTML_DIR) -> dict:
    """The published book's stamp: what it was made from. Refuses when there is none to print."""
    stamp = read_stamp(folder)
    if not stamp.get("chapters") or not stamp.get("provenance"):
        raise ReportError(f"make pdf prints the published book, and there is none at {folder}: run `make report` first")
    return stamp


def same_data(published: dict, data_dir=None) -> None:
    """Refuse before any work when the data this run would read is not the published book's."""
    from greenery.outputs import fingerprint
    from greenery.warehouse.engines import choose_source_for

    source = choose_source_for("duckdb", data_dir, log=lambda *_: None)
    shown = published["provenance"]
    here = fingerprint.export(Path(source.path))[:12]
    if here != shown.get("data_fingerprint"):
        raise ReportError(f"the published book shows {shown.get('data_label')} ({shown.get('data_fingerprint')}) but "
                          f"this run reads {source.label} ({here}): rerun with the GREENERY_DATA_DIR of `make report`, "
                          f"or run `make report` first")


def same_chapters(published: dict, printed: dict) -> None:
    """The chapters rendered for paper are the published ones: same data, code and parameters."""
    if printed.get("chapters") != published.get("chapters"):
        changed = sorted(k for k in set(printed.get("chapters", {})) | set(published["chapters"])
                         if printed.get("chapters", {}).get(k) != published["chapters"].get(k))
        raise ReportError(f"the code or parameters of {', '.join(changed)} changed since the book was published: "
                          f"run `make report` first, then `make pdf`")


def main(argv: list[str] | None = None) -> int:
    from greenery.publisher.run import publish

    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    del args
    try:
        browser()  # before any work: say what is missing
        published = published_book()
        same_data(published)
        pinned = config.pinned_build_time()  # as `greenery report` read it: part of the warehouse's fingerprint
        # the provenance printed on every sheet names the published book's build time, not this run's
        built = datetime.fromisoformat(published["provenance"]["built_at"])
        os.environ["SOURCE_DATE_EPOCH"] = str(int(built.timestamp()))
        publish(out=SINGLE_HTML_DIR, builder="singlehtml", built_at=pinned, log=lambda *_: None)
        same_chapters(published, read_stamp(SINGLE_HTML_DIR))
        pdf = print_to_pdf(single_page(SINGLE_HTML_DIR), PDF_PATH)
    except GreeneryError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)
    print(one_line(f"PDF: {pdf} ({pdf.stat().st_size / 1e6:.1f} MB) of the book published "
                   f"{published['provenance']['built_at']}"))
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
