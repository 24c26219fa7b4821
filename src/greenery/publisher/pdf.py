"""`make pdf`: the whole book as one PDF, `_build/pdf/greenery-report.pdf`.

The same executed chapters as the HTML book (reused from the chapter cache when nothing changed)
are rendered by jupyter-book's `singlehtml` builder into one page, which headless Chromium prints
with the book's print styles (book/_static/greenery.css): every table keeps every column (smaller
type, wrapping, rows may continue on the next page), charts are vector graphics, formulas are
the same SVG images as on screen, and each chapter ends with its provenance.

Chromium is Debian's `chromium` package (`apt-get install chromium`); `make pdf` installs it when
it runs as root and it is missing, and otherwise names it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from greenery import config
from greenery.errors import ExitCode, GreeneryError, ReportError
from greenery.outputs import ownership

PDF_PATH = config.BUILD_DIR / "pdf" / "greenery-report.pdf"
SINGLE_HTML_DIR = config.BUILD_DIR / "singlehtml"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ReportError("make pdf needs Chromium to print the book: install it with `apt-get install chromium` "
                      "(Debian/Ubuntu) or `brew install --cask chromium` (macOS)")


def print_to_pdf(page: Path, pdf: Path, timeout: float = 180) -> Path:
    """Print one HTML page with headless Chromium (print media, no header or footer lines)."""
    pdf.parent.mkdir(parents=True, exist_ok=True)
    partial = pdf.with_name(f".{pdf.name}.partial")
    with tempfile.TemporaryDirectory(prefix="greenery-chromium-") as profile:
        command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                   f"--user-data-dir={profile}", "--run-all-compositor-stages-before-draw",
                   "--virtual-time-budget=20000", f"--print-to-pdf={partial}", page.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        raise ReportError(f"Chromium could not print {page.name}: {done.stderr.strip()[-500:]}")
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


def main(argv: list[str] | None = None) -> int:
    from greenery.publisher.run import publish

    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    del args
    try:
        browser()  # before any work: say what is missing
        publish(out=SINGLE_HTML_DIR, builder="singlehtml")
        pdf = print_to_pdf(single_page(SINGLE_HTML_DIR), PDF_PATH)
    except GreeneryError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.exit_code)
    print(f"PDF: {pdf} ({pdf.stat().st_size / 1e6:.1f} MB)")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
