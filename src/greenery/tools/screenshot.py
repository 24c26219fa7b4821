"""`make screenshot`: docs/images/first-page.png, the book's first page as the README shows it.

The book is always built on the generated sample (the default seed and scale), never on an
export: the picture is committed, and a committed file holds nothing of a real export, while the
sample is the same on every machine. The build runs in a temporary folder with a warehouse, history
and digest cache of its own (no $GREENERY_* setting of the caller is passed on), at the baselines'
fixed build time, so the page's footer does not change with the day. Headless Chromium (Debian's
`chromium`, as `make pdf` uses) then draws the first page of the book at 1366x900.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from greenery import config
from greenery.chapter_kit.contents import toc_entries
from greenery.errors import GreeneryError
from greenery.publisher.pdf import browser
from greenery.sample import generate
from greenery.tools.baselines import BASELINE_BUILD_TIME

IMAGE = config.ROOT / "docs" / "images" / "first-page.png"
WIDTH, HEIGHT = 1366, 900
REPORT_TIMEOUT = 1800  # seconds: a cold report takes about half a minute, much more on a busy machine
BROWSER_TIMEOUT = 180


def build_sample_book(folder: Path) -> Path:
    """Publish the book of the default sample into `folder`/book; returns the book's folder."""
    export = folder / "sample"
    generate(export, config.SAMPLE_SCALE, config.SAMPLE_SEED)
    env = {name: value for name, value in os.environ.items() if not name.startswith("GREENERY_")}
    env |= {"GREENERY_HISTORY": str(folder / "history.duckdb"),
            "GREENERY_DIGEST_CACHE": str(folder / "export-digests.json"),
            "GREENERY_DUCKDB_TEMP": str(folder / "duckdb_tmp"),
            "SOURCE_DATE_EPOCH": str(int(BASELINE_BUILD_TIME.timestamp()))}
    book = folder / "book"
    command = [sys.executable, "-m", "greenery", "report", "--data-dir", str(export), "--out", str(book),
               "--warehouse", str(folder / "warehouse.duckdb")]
    done = subprocess.run(command, env=env, timeout=REPORT_TIMEOUT)
    if done.returncode != 0:
        raise SystemExit(f"greenery report on the sample exited {done.returncode}: no screenshot taken")
    return book


def first_page(book: Path) -> Path:
    """The book's first page (the root of _toc.yml), opened directly: index.html only redirects to it."""
    return book / f"{toc_entries()[0]}.html"


def screenshot(page: Path, image: Path, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Draw `page` at width x height with headless Chromium into `image`, which is replaced only when
    Chromium wrote a picture."""
    image.parent.mkdir(parents=True, exist_ok=True)
    partial = image.with_name(f".{image.stem}.partial-{os.getpid()}{image.suffix}")  # Chromium reads the suffix
    with tempfile.TemporaryDirectory(prefix="greenery-chromium-") as profile:
        command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   f"--user-data-dir={profile}", f"--window-size={width},{height}",
                   "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000",
                   f"--screenshot={partial}", page.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)
    try:
        if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
            raise SystemExit(f"Chromium could not draw {page.name}: {done.stderr.strip()[-500:]}")
        partial.replace(image)
    finally:
        partial.unlink(missing_ok=True)
    return image


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m greenery.tools.screenshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=IMAGE,
                        help=f"the picture (default {IMAGE.relative_to(config.ROOT)})")
    args = parser.parse_args(argv)
    try:
        browser()  # before building anything: say when Chromium is missing
    except GreeneryError as error:
        raise SystemExit(f"error: {error}") from None
    with tempfile.TemporaryDirectory(prefix="greenery-screenshot-") as tmp:
        image = screenshot(first_page(build_sample_book(Path(tmp))), args.out)
    print(f"written: {image} ({WIDTH}x{HEIGHT})")


if __name__ == "__main__":
    main()
