"""What readers get, and nothing else: executed chapters cleaned before the book is rendered.

papermill leaves three things in an executed notebook that are for the machine that ran it, not
for readers: the injected-parameters cell (local paths of the export and the warehouse), its own
metadata (`input_path`, `output_path`, timings) and per-cell execution metadata. `prepare_chapter`
(each chapter as it is staged, `prepare_stage` the rest) removes them, puts a readable "computed with"
note in their place; `prepare_frame`, before the chapters run, leaves a placeholder in the footer of every
page for the book's provenance (data, code version, build time), which `stamp_provenance` fills in once
Sphinx wrote the pages.
Nothing here holds a path: the data is named by its label and fingerprint.

The published HTML carries no notebook sources (`html_copy_source: false` in _config.yml, no
download button): a reader who wants to rerun a chapter follows the book's "How to rerun this
report" page, which works against their own warehouse.
"""

from __future__ import annotations

import html
import re
import subprocess
import zlib
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import yaml

from greenery import __version__, config
from greenery.chapter_kit import formats

PATH_PARAMETERS = ("data_dir", "warehouse")  # stand for the data itself: shown as its label, never as paths
NOTE_TAG = "greenery-computed-with"
@dataclass(frozen=True)
class Provenance:
    data_label: str  # "a Greenery export", "the generated sample (seed 42, scale 1)"
    data_fingerprint: str  # of the export's seven files, by content
    warehouse_built_at: str  # ISO timestamp of the warehouse build
    code_version: str  # package version, git commit when known, and the code fingerprint
    built_at: str  # when this book was rendered (ISO, UTC); pinned by $SOURCE_DATE_EPOCH

    def as_dict(self) -> dict:
        return asdict(self)


def _git_commit() -> str | None:
    """The checkout's commit (with "+changes" when files differ from it), or None outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(config.ROOT), "rev-parse", "--short=10", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(config.ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def build_time() -> datetime:
    """The book's build time: pinned by $SOURCE_DATE_EPOCH (config.pinned_build_time), else now."""
    return config.pinned_build_time() or datetime.now(UTC).replace(microsecond=0)


def provenance(source, warehouse: Path) -> Provenance:
    """What the book shows and how it was made, read from the export and the warehouse's build_info."""
    from greenery import db
    from greenery.outputs import fingerprint

    con = db.connect(warehouse, read_only=True)
    try:
        label, built_at = db.rows(con, "select data_label, built_at from build_info")[0]
    finally:
        con.close()
    commit = _git_commit()
    code = f"greenery {__version__}" + (f", commit {commit}" if commit else "") + f", code {fingerprint.code()[:12]}"
    return Provenance(label, fingerprint.export(source.path)[:12], built_at.astimezone(UTC).isoformat(), code,
                      build_time().isoformat())


def when(iso: str) -> str:
    """A time as readers read it, in the book's prose style: "Wed 10 Feb 2021 14:00 UTC"."""
    return formats.moment(datetime.fromisoformat(iso))


def footer_html(prov: Provenance) -> str:
    """The provenance line at the foot of every page (every value escaped)."""
    parts = [
        f"Data: {prov.data_label}; fingerprint {prov.data_fingerprint}; "
        f"warehouse built {when(prov.warehouse_built_at)}",
        f"Code: {prov.code_version}",
        f"Book built {when(prov.built_at)}",
    ]
    return '<p class="greenery-provenance">' + " · ".join(html.escape(p) for p in parts) + "</p>"


def computed_with(parameters: dict, prov: Provenance) -> str:
    """The readable note that replaces papermill's injected cell: the data by name, other parameters by value."""
    others = {k: v for k, v in parameters.items() if k not in PATH_PARAMETERS}
    # the admonition's title already says "Computed with": the text does not repeat it
    text = (f"Data: {prov.data_label}; fingerprint `{prov.data_fingerprint}`; "
            f"warehouse built {when(prov.warehouse_built_at)}")
    if others:
        text += "; parameters " + ", ".join(f"`{name} = {value!r}`" for name, value in sorted(others.items()))
    return f"```{{admonition}} Computed with\n:class: note greenery-computed-with\n{text}.\n```"


def _alt_text_to_cell(cell) -> None:
    """A chart's alt text is the chapter's: the sentence it passed to the kit (`alt=`), else the cell's
    own (mystnb.image.alt in its metadata), else the kit's default from the axes' titles and labels.

    Charts are HTML outputs (a <picture>, greenery.chapter_kit.figures) whose metadata says whether
    the kit's alt text is the chapter's own; myst-nb reads the cell's metadata only for images."""
    own = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
    if not own:
        return
    for out in cell.get("outputs", []):
        chart = out.get("metadata", {}).get("greenery", {})
        if chart.get("chart") and not chart.get("alt_from_chapter") and "text/html" in out.get("data", {}):
            page = out["data"]["text/html"]
            page = "".join(page) if isinstance(page, list) else page
            out["data"]["text/html"] = re.sub(r'(<img [^>]*\balt=")[^"]*(")', lambda m: m.group(1) + html.escape(own)
                                              + m.group(2), page, count=1)


def clean(nb: nbformat.NotebookNode, note: str | None = None) -> nbformat.NotebookNode:
    """Drop papermill's injected cell and metadata and per-cell execution metadata; `note` takes the
    place of a cell the chapter tagged `greenery-computed-with` (the summary puts it below its answers),
    else it ends the page: provenance is for whoever checks the figures, after the answer and its
    evidence, never before them."""
    nb.metadata.pop("papermill", None)
    cells, placed = [], None
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if NOTE_TAG in tags:
            placed = len(cells) if placed is None else placed
            continue
        if "injected-parameters" in tags:
            continue
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        _alt_text_to_cell(cell)
        cells.append(cell)
    where = placed if placed is not None else len(cells)
    if note is not None:
        marker = nbformat.v4.new_markdown_cell(note, metadata={"tags": [NOTE_TAG]})
        marker.id = f"{NOTE_TAG}"
        cells.insert(where, marker)
    nb.cells = cells
    return nb


PRINT_CSS = "greenery-print.css"  # written into the staged book/_static, with this book's provenance


def css_string(text: str) -> str:
    """A CSS string literal holding `text` as text: quotes, backslashes and line breaks escaped."""
    text = " ".join(str(text).split()).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("<", "\\3C ").replace(">", "\\3E ") + '"'


def print_line(prov: Provenance) -> str:
    """The provenance line on every printed sheet: which data, which build."""
    return (f"Data: {prov.data_label}, fingerprint {prov.data_fingerprint} · "
            f"book built {when(prov.built_at)}")


def print_css(prov: Provenance) -> str:
    """Every printed sheet (the browser's Print and `make pdf`) carries the provenance line at its
    foot and its page number (CSS page margin boxes, which Chromium draws since version 131)."""
    box = "font-size: 7pt; color: #616161; font-family: sans-serif;"
    return ("/* Written by greenery.publisher.book_stage.print_css for this book: its provenance on paper. */\n"
            "@page {\n"
            f"  @bottom-left {{ content: {css_string(print_line(prov))}; {box} vertical-align: top; }}\n"
            f"  @bottom-right {{ content: \"Page \" counter(page) \" of \" counter(pages); {box} "
            "vertical-align: top; white-space: nowrap; }\n"
            "}\n")


# Sphinx's pages hold this comment where the provenance goes, and the print styles a constant stand-in:
# Sphinx's output then never depends on the build, so a render can reuse what an earlier one wrote
# (greenery.publisher.book_render); `stamp_provenance` fills both in the published copy.
FOOTER_PLACEHOLDER = "<!-- greenery: the provenance line goes here -->"
PRINT_CSS_PLACEHOLDER = "/* greenery: the provenance on paper goes here */\n"


def _footer_config(stage: Path) -> None:
    """Add the provenance footer's placeholder, and the print styles' stand-in, to the staged _config.yml
    and book/_static (the checkout's files are never changed)."""
    path = stage / config.BOOK_CONFIG_PATH.name
    settings = yaml.safe_load(path.read_text())
    settings.setdefault("html", {})["extra_footer"] = FOOTER_PLACEHOLDER
    sphinx = settings.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_css_files"] = [*sphinx.get("html_css_files", []), PRINT_CSS]
    static = stage / config.BOOK_DIR.name / "_static"
    static.mkdir(parents=True, exist_ok=True)
    (static / PRINT_CSS).write_text(PRINT_CSS_PLACEHOLDER, encoding="utf-8")
    path.write_text(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))


def _checksum(data: bytes) -> str:
    """A static file's `?v=` in Sphinx's links (sphinx.builders.html._assets._file_checksum)."""
    crc = zlib.crc32(data.translate(None, b"\r"))
    return f"{crc:08x}"


def stamp_provenance(built: Path, provenance: dict) -> None:
    """Fill the rendered book's placeholders: the provenance line in the footer of every page (escaped,
    footer_html) and the print styles carrying it, whose links' `?v=` follows their new content."""
    prov = Provenance(**provenance)
    footer = footer_html(prov)
    css = print_css(prov).encode("utf-8")
    old = f"{PRINT_CSS}?v={_checksum(PRINT_CSS_PLACEHOLDER.encode())}"
    new = f"{PRINT_CSS}?v={_checksum(css)}"
    for page in sorted(built.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        stamped = text.replace(FOOTER_PLACEHOLDER, footer).replace(old, new)
        if stamped != text:
            page.write_text(stamped, encoding="utf-8")
    styles = built / "_static" / PRINT_CSS
    if styles.is_file():
        styles.write_bytes(css)


def landing_page(built: Path, title: str) -> None:
    """The book's top page (Sphinx writes a bare redirect): a title, the redirect, and a visible link
    for a reader whose browser does not follow it. The target stays in the `url=` form `make pdf` reads."""
    index = built / "index.html"
    if not index.is_file():
        return
    found = re.search(r'url=([^"]+)"', index.read_text(encoding="utf-8"))
    if not found:
        return
    target, name = html.escape(found.group(1)), html.escape(title)
    index.write_text(
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{name}</title>\n"
        f'<meta http-equiv="Refresh" content="0; url={target}" />\n</head>\n'
        f'<body style="font-family: sans-serif; margin: 2em;">\n<h1>{name}</h1>\n'
        f'<p><a href="{target}">Open the report</a></p>\n</body>\n</html>\n', encoding="utf-8")


def prepare_chapter(stage: Path, entry: str, parameters: dict, prov: Provenance) -> None:
    """Clean one staged chapter and add its "computed with" note (which does not show the book's build time)."""
    path = stage / f"{entry}.ipynb"
    nbformat.write(clean(nbformat.read(path, as_version=4), computed_with(parameters, prov)), path)


def prepare_frame(stage: Path) -> None:
    """The provenance's placeholders in the staged settings and static files: what every page is rendered
    with, done before the chapters run (`greenery report` starts reading pages while they run)."""
    _footer_config(stage)


def prepare_stage(stage: Path, entries: list[str], parameters: dict, source, warehouse: Path,
                  prov: Provenance | None = None, prepared: Collection[str] = ()) -> dict:
    """Clean every staged chapter but those `prepared` already (`prepare_chapter` with `prov`, as each chapter
    finished: `greenery report` cleans a chapter while the others run); returns the provenance for the book's
    stamp, built now (`build_time`). The provenance's placeholders were put in before the chapters ran
    (`prepare_frame`).

    `parameters` is the run's parameters, or a dict of them per entry."""
    prov = prov or provenance(source, warehouse)
    for entry in entries:
        if entry not in prepared:
            prepare_chapter(stage, entry, parameters[entry] if isinstance(parameters.get(entry), dict) else parameters,
                            prov)
    return replace(prov, built_at=build_time().isoformat()).as_dict()
