"""The incremental render (greenery.publisher.book_render): a book rendered after one page changed is
byte-identical, every file, to a full render of the same sources, and Sphinx wrote only what it had to.

The book here is small and written by hand: a root page, a page that pastes a value glued in another
page ({glue:text}, resolved when the pasting page is written: Sphinx does not know it depends on the
other page), two chapters, a glossary whose terms the pages use, a formula, the real _config.yml and
static files with the provenance placeholders."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zlib
from pathlib import Path

import nbformat
import pytest

from greenery import config
from greenery.errors import UsageError
from greenery.outputs import ownership
from greenery.publisher import book_stage, run

TOC = """format: jb-book
root: notebooks/intro
chapters:
  - file: notebooks/summary
  - file: notebooks/a
  - file: notebooks/b
  - file: book/glossary
"""

GLOSSARY = """# Glossary

```{glossary}
Mart
  A table the chapters read.

Repeat rate
  The share of buyers who ordered twice.
```
"""


def _notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = list(cells)
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
    return nb


def _glued(name: str, text: str) -> nbformat.NotebookNode:
    """A code cell as myst-nb's `glue(name, value, display=False)` leaves it once executed."""
    cell = nbformat.v4.new_code_cell("glue(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": text},
                                           metadata={"scrapbook": {"name": name,
                                                                   "mime_prefix": "application/papermill.record/"}})]
    return cell


def _pages(rate: str = "'42 %'", b_title: str = "Chapter B", glossary: str = GLOSSARY) -> dict[str, object]:
    md = nbformat.v4.new_markdown_cell
    return {
        "notebooks/intro.ipynb": _notebook(md("# Introduction\n\nWhat the book holds.")),
        "notebooks/summary.ipynb": _notebook(md("# Summary\n\nThe {term}`repeat rate` is "
                                                "{glue:text}`a.ipynb::rate:s`; see [the chapter](a.ipynb).\n\n"
                                                "$$\\frac{repeat}{buyers}$$")),
        "notebooks/a.ipynb": _notebook(md("# Chapter A\n\nEvery {term}`mart` counted."), _glued("rate", rate)),
        "notebooks/b.ipynb": _notebook(md(f"# {b_title}\n\n## A section\n\nWords about marts.")),
        "book/glossary.md": glossary,
    }


def _stage(folder: Path, pages: dict[str, object]) -> Path:
    """A staged book as `greenery report` leaves it for the render (run._stage_sources, book_stage)."""
    folder.mkdir(parents=True)
    shutil.copy2(config.BOOK_CONFIG_PATH, folder / "_config.yml")
    (folder / "_toc.yml").write_text(TOC)
    shutil.copytree(config.BOOK_DIR / "_static", folder / "book" / "_static")
    book_stage.prepare_frame(folder)
    for name, page in pages.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(page, str):
            path.write_text(page)
        else:
            nbformat.write(page, path)
    return folder


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _written(cache: Path) -> dict[str, int]:
    """When each page in the cache was last written by Sphinx."""
    return {p.relative_to(cache).as_posix(): p.stat().st_mtime_ns for p in (cache / "build" / "html").rglob("*.html")
            if "_static" not in p.parts}  # the theme's templates are copied with their own times


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The first render of the original pages: (folder, its output, the cache it left)."""
    folder = tmp_path_factory.mktemp("render")
    cache = folder / "wh.render" / "html"
    return folder, _tree(run.render(_stage(folder / "first", _pages()), "html", cache)), cache


def _again(tmp_path: Path, pages: dict[str, object]) -> tuple[dict, dict, dict, dict]:
    """Render the original pages, then `pages` incrementally in the same cache, then `pages` fully in a
    fresh one; returns both outputs, and when each page was written before and after the incremental
    render. (A cache is used where it was made: Sphinx reads every page again when its folder moved.)"""
    cache = tmp_path / "wh.render" / "html"
    run.render(_stage(tmp_path / "first", _pages()), "html", cache)
    before = _written(cache)
    incremental = _tree(run.render(_stage(tmp_path / "stage", pages), "html", cache))
    full = _tree(run.render(_stage(tmp_path / "full-stage", pages), "html", tmp_path / "full" / "html"))
    return incremental, full, before, _written(cache)


def _same(incremental: dict, full: dict) -> None:
    different = sorted(name for name in incremental.keys() | full.keys() if incremental.get(name) != full.get(name))
    assert not different, f"the incremental render differs from the full render in {different}"


def test_a_changed_glued_value_reaches_the_page_that_pastes_it(tmp_path):
    incremental, full, before, after = _again(tmp_path, _pages(rate="'57 %'"))
    _same(incremental, full)
    summary = (tmp_path / "stage" / "_build" / "html" / "notebooks" / "summary.html").read_text()
    assert "57 %" in summary and "42 %" not in summary
    # incremental: the chapter that did not change, and its neighbours' pages, were not written again
    assert before["build/html/notebooks/b.html"] == after["build/html/notebooks/b.html"]
    assert before["build/html/book/glossary.html"] == after["build/html/book/glossary.html"]
    assert before["build/html/notebooks/summary.html"] != after["build/html/notebooks/summary.html"]


def test_a_changed_title_is_written_into_every_page_s_navigation(tmp_path):
    incremental, full, before, after = _again(tmp_path, _pages(b_title="Chapter Bee"))
    _same(incremental, full)
    glossary = (tmp_path / "stage" / "_build" / "html" / "book" / "glossary.html").read_text()
    assert "Chapter Bee" in glossary and before["build/html/book/glossary.html"] != after["build/html/book/glossary.html"]


def test_a_changed_glossary_reaches_the_search_index_and_the_pages_using_its_terms(tmp_path):
    glossary = GLOSSARY.replace("A table", "A summary table").replace("twice.\n```", "twice.\n\nFunnel\n  Visits to orders.\n```")
    assert glossary.count("Funnel") == 1 and "summary table" in glossary
    incremental, full, *_ = _again(tmp_path, _pages(glossary=glossary))
    _same(incremental, full)


def test_a_chapter_changed_in_words_only_leaves_the_search_index_whole(tmp_path):
    page = _pages()
    page["notebooks/b.ipynb"].cells[0].source += "\n\nMore words about kumquats."
    incremental, full, before, after = _again(tmp_path, page)
    _same(incremental, full)
    assert before["build/html/notebooks/a.html"] == after["build/html/notebooks/a.html"]
    index = (tmp_path / "stage" / "_build" / "html" / "searchindex.js").read_text()
    assert "kumquat" in index and "mart" in index  # the glossary's terms, from a page not written again


def test_nothing_changed_reuses_the_cached_pages_without_sphinx(rendered, monkeypatch):
    monkeypatch.setattr("greenery.publisher.processes.run", lambda *a, **k: pytest.fail("Sphinx ran"))
    folder, first, cache = rendered
    mine = folder / "same" / "wh.render" / "html"
    shutil.copytree(cache, mine)
    assert _tree(run.render(_stage(folder / "same" / "stage", _pages()), "html", mine)) == first


def test_other_settings_start_a_full_render_and_a_half_done_cache_is_never_reused(rendered):
    folder, first, cache = rendered
    mine = folder / "settings" / "wh.render" / "html"
    shutil.copytree(cache, mine)
    (mine / "build" / "html" / "stale.html").write_text("left from another book")
    stage = _stage(folder / "settings" / "stage", _pages())
    (stage / "_config.yml").write_text((stage / "_config.yml").read_text().replace("Greenery: what", "Greenery, what"))
    output = run.render(stage, "html", mine)
    assert not (output / "stale.html").exists() and "Greenery, what" in (output / "notebooks" / "a.html").read_text()
    (mine / ownership.RENDER_CACHE_MARKER).write_text(json.dumps({"frame": None}))  # as a killed render leaves it
    (mine / "build" / "html" / "stale.html").write_text("left by a killed render")
    assert not (run.render(_stage(folder / "settings" / "again", _pages()), "html", mine) / "stale.html").exists()


def test_a_folder_that_is_not_a_render_cache_is_never_emptied(tmp_path):
    mine = tmp_path / "wh.render" / "html"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("someone's")
    with pytest.raises(UsageError, match="not greenery's render cache"):
        run.render(_stage(tmp_path / "stage", _pages()), "html", mine)
    assert (mine / "notes.txt").read_text() == "someone's"
    assert not ownership._is_our_render_cache(tmp_path / "wh.render")


def test_the_provenance_fills_every_page_and_the_print_styles(rendered, tmp_path):
    folder, first, cache = rendered
    output = tmp_path / "html"
    shutil.copytree(cache / "build" / "html", output)
    prov = book_stage.Provenance("a <sample>", "abc123", "2026-01-02T03:04:00+00:00", "greenery 0.1.0",
                                 "2026-01-02T05:06:00+00:00")
    book_stage.stamp_provenance(output, prov.as_dict())
    css = (output / "_static" / book_stage.PRINT_CSS).read_bytes()
    assert css == book_stage.print_css(prov).encode()
    pages = sorted(p for p in output.rglob("*.html") if "_static" not in p.parts)  # the theme's templates
    assert len(pages) >= 6
    for page in pages:
        text = page.read_text()
        if "url=" in text and "<body" not in text:
            continue  # the bare redirect Sphinx writes at the top (book_stage.landing_page replaces it)
        assert book_stage.FOOTER_PLACEHOLDER not in text
        assert text.count(book_stage.footer_html(prov)) == 1, page
        assert "a &lt;sample&gt;" in text
        linked = re.findall(r"greenery-print\.css\?v=([0-9a-f]+)", text)
        assert linked == [f"{zlib.crc32(css):08x}"], page


@pytest.mark.parametrize("role", ["render", "chapters"])
def test_a_render_forked_from_the_warm_server_is_the_same_book(rendered, tmp_path, role):
    """The render's warm server (`greenery report` starts one of its own) imported Sphinx and matplotlib
    before forking the render; the chapters' server, the chapters' libraries: either way the pages (formulas
    drawn by matplotlib included) are those a render in a process of its own writes."""
    from greenery.publisher import warm_server

    folder, first, cache = rendered
    with warm_server.Server(role) as server:
        server.start()
        forked = _tree(run.render(_stage(tmp_path / "stage", _pages()), "html", tmp_path / "cache" / "html", server))
    _same(forked, first)


def test_a_warning_fails_the_render_in_one_line_and_the_next_render_is_full(rendered, tmp_path):
    from greenery.errors import ReportError

    cache = tmp_path / "wh.render" / "html"
    run.render(_stage(tmp_path / "first", _pages()), "html", cache)
    broken = _pages()
    broken["notebooks/b.ipynb"].cells[0].source += "\n\nSee {ref}`no-such-label`."
    with pytest.raises(ReportError, match=r"^jupyter-book could not render the book: .*no-such-label") as failed:
        run.render(_stage(tmp_path / "broken", broken), "html", cache)
    assert "\n" not in str(failed.value)
    assert json.loads((cache / ownership.RENDER_CACHE_MARKER).read_text()) == {"frame": None}  # never reused
    _same(_tree(run.render(_stage(tmp_path / "again", _pages()), "html", cache)), rendered[1])


def test_a_render_past_its_deadline_is_stopped_in_one_line(tmp_path, monkeypatch):
    import psutil

    from greenery.errors import ReportError

    monkeypatch.setattr(config, "RENDER_TIMEOUT", 0.05)  # Python alone takes longer to start
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ReportError, match=r"^jupyter-book did not finish rendering the book within 0.05 s") as failed:
        run.render(_stage(tmp_path / "stage", _pages()), "html", tmp_path / "wh.render" / "html")
    assert "\n" not in str(failed.value)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before  # Sphinx stopped with its tree


def test_a_render_cache_holding_someone_s_files_is_refused_before_any_work(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    (tmp_path / "wh.render").mkdir()
    ownership.check_warehouse_target(warehouse)  # an empty folder: ours to use
    (tmp_path / "wh.render" / "notes.txt").write_text("someone's")
    with pytest.raises(UsageError, match="is not greenery's render cache"):
        ownership.check_warehouse_target(warehouse)


def test_a_book_with_image_files_is_always_rendered_in_full(tmp_path):
    """Sphinx keeps a changed page's old image files: where pages have image files, no render is incremental."""
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    cache = tmp_path / "wh.render" / "html"

    def with_image(text: str) -> dict[str, object]:
        pages = _pages()
        cell = nbformat.v4.new_code_cell("plot()")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": text})]
        pages["notebooks/b.ipynb"].cells.append(cell)
        pages["notebooks/b.ipynb"].cells[-1].id = "image"
        return pages

    run.render(_stage(tmp_path / "first", with_image("one")), "html", cache)
    assert list((cache / "build" / "html" / "_images").iterdir())
    written = _written(cache)
    run.render(_stage(tmp_path / "second", _pages()), "html", cache)  # the image is gone
    assert not (cache / "build" / "html" / "_images").exists()
    assert all(_written(cache)[page] != when for page, when in written.items())  # every page written again


def test_a_link_put_into_the_cache_is_never_followed(rendered, tmp_path):
    folder, first, cache = rendered
    mine = tmp_path / "wh.render" / "html"
    shutil.copytree(cache, mine)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the book")
    (mine / "build" / "html" / "notebooks" / "a.html").unlink()
    (mine / "build" / "html" / "notebooks" / "a.html").symlink_to(secret)
    output = run.render(_stage(tmp_path / "stage", _pages()), "html", mine)  # nothing changed: yet a full render
    assert "not for the book" not in (output / "notebooks" / "a.html").read_text()
    assert secret.read_text() == "not for the book"
    _same(_tree(output), first)


@pytest.mark.parametrize("planted", ["environment pickle", "page edited", "file added"])
def test_a_cache_changed_since_the_last_render_is_never_used(planted, rendered, tmp_path):
    """The attacker's review: Sphinx unpickles its environment from the cache (a planted pickle ran code)
    and the book is copied from it (a planted page, with a name and an email, was published). The cache
    is used only as the last render left it, byte for byte: else a full render in a fresh cache."""
    import pickle

    cache = rendered[2]
    mine = tmp_path / "wh.render" / "html"
    shutil.copytree(cache, mine)
    mark = tmp_path / "pwned"

    class Planted:  # what an attacker's pickle does when loaded: here, leave a mark
        def __reduce__(self):
            return (Path.touch, (mark,))

    if planted == "environment pickle":
        (mine / "build" / ".doctrees" / "environment.pickle").write_bytes(pickle.dumps(Planted()))
    elif planted == "page edited":
        page = mine / "build" / "html" / "notebooks" / "b.html"  # a page the change does not make Sphinx write
        page.write_text(page.read_text().replace("Words about marts.", "Words. <p>Jane Doe jane@example.com</p>"))
    else:
        (mine / "build" / "html" / "planted.txt").write_text("not greenery's")
    # A page changed: Sphinx runs and would unpickle the cached environment. None changed: the cached pages
    # would be copied into the book as they are (the edited one included).
    changed = _pages() if planted == "page edited" else _pages(rate="'43 %'")
    output = _tree(run.render(_stage(tmp_path / "stage", changed), "html", mine))
    assert not mark.exists()
    _same(output, _tree(run.render(_stage(tmp_path / "full-stage", changed), "html", tmp_path / "full" / "html")))


def test_what_the_render_server_imports_before_forking_is_there_and_is_what_a_render_imports(rendered, tmp_path):
    """Every module book_render.preload imports for the render exists (a wrong name would only be skipped,
    silently), and a render of the test book after preload imports none of Sphinx's extensions, the book's
    extensions or the theme again: it starts with them (0.1 CPU s less after the last chapter)."""
    import subprocess
    import sys
    from importlib import import_module

    from greenery.publisher import book_render

    for module in book_render.BOOK_IMPORTS:
        import_module(module)
    stage = _stage(tmp_path / "stage", _pages())
    source, _ = book_render.sync_sources(stage, tmp_path / "cache", "html")
    code = ("import sys\nfrom pathlib import Path\nfrom greenery.publisher import book_render\nbook_render.preload()\n"
            "before = set(sys.modules)\n"
            f"assert book_render.build(Path({str(source)!r}), Path({str(tmp_path / 'build')!r}), 'html', []) == 0\n"
            "print(' '.join(sorted(set(sys.modules) - before)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    again = [m for m in done.stdout.split() if m.split(".")[0].startswith(("sphinx_", "sphinxcontrib", "jinja2",
                                                                          "alabaster", "pydata_sphinx_theme"))]
    assert again == []


def test_after_the_render_server_s_preload_a_render_compiles_no_pattern_and_collects_no_import(tmp_path):
    """The render server fills the caches a render would fill on first use (soupsieve's CSS patterns for the
    sidebar, the Pygments lexers of the book's code and outputs, Jinja's lexer) and freezes what it made
    (gc.freeze): a render forked from it compiles none of those patterns on its critical path, and its
    garbage collections never walk the imported libraries."""
    import subprocess
    import sys

    from greenery.publisher import book_render

    pages = _pages()
    run_cell = nbformat.v4.new_code_cell("print(...)")
    run_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="\x1b[1m12\x1b[0m orders\n")]
    sql = nbformat.v4.new_markdown_cell("```sql\nselect count(*) from orders\n```")
    pages["notebooks/b.ipynb"].cells += [run_cell, sql]
    for number, cell in enumerate(pages["notebooks/b.ipynb"].cells):
        cell.id = f"cell-{number}"
    source, _ = book_render.sync_sources(_stage(tmp_path / "stage", pages), tmp_path / "cache", "html")
    code = ("import gc, re._compiler as compiler, traceback\nfrom pathlib import Path\n"
            "from greenery.publisher import book_render, warm_server\nwarm_server._preload_render()\n"
            "frozen = gc.get_freeze_count()\ncompiled = []\noriginal = compiler.compile\n"
            "def compile(pattern, flags=0):\n"
            "    stack = [f'{f.filename}:{f.lineno}' for f in traceback.extract_stack()[:-1]]\n"
            "    compiled.extend((s, str(pattern)[:40]) for s in stack[-6:] if 'pygments' in s or 'soupsieve' in s)\n"
            "    return original(pattern, flags)\n"
            "compiler.compile = compile\n"
            f"assert book_render.build(Path({str(source)!r}), Path({str(tmp_path / 'build')!r}), 'html', []) == 0\n"
            "print(frozen, sorted(set(compiled)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    frozen, compiled = done.stdout.split(" ", 1)
    assert int(frozen) > 100_000  # Sphinx, docutils, the theme, matplotlib: hundreds of thousands of objects
    assert compiled.strip() == "[]"
    page = (tmp_path / "build" / "html" / "notebooks" / "b.html").read_text()
    assert 'class="highlight-sql' in page and 'highlight-myst-ansi' in page  # both were highlighted


CHAPTERS = ["notebooks/summary.ipynb", "notebooks/b.ipynb", "notebooks/intro.ipynb", "notebooks/a.ipynb"]


def _frame(folder: Path, pages: dict[str, object]) -> Path:
    """A stage before any chapter ran: settings, table of contents, static files (with the provenance's
    placeholders: book_stage.prepare_frame) and the glossary."""
    return _stage(folder, {name: page for name, page in pages.items() if name not in CHAPTERS})


def _stage_page(stage: Path, name: str, page) -> None:
    path = stage / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(page, path)


def _until(condition, seconds: float = 120) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "still waiting after the test's deadline"
        time.sleep(0.05)


@pytest.mark.parametrize("role", [None, "render"])
def test_a_cold_render_reads_each_page_as_it_is_staged_and_is_the_full_render(rendered, tmp_path, role):
    """`greenery report` with a fresh render cache starts Sphinx with the first chapter staged; Sphinx reads
    each chapter's page as it comes, in the order the chapters end (here not the pages' order), and after the
    last writes the book: byte for byte the full render's, every page read once, before the last page came."""
    from greenery.publisher import warm_server

    pages = _pages()
    stage = _frame(tmp_path / "stage", pages)
    cache = tmp_path / "wh.render" / "html"
    with warm_server.Server(role or "render") as server:
        if role:
            server.start()
            server.environment()  # ready: the render is forked from it with the first page
        early = run.EarlyRender(stage, "html", cache, server if role else None, CHAPTERS, 60)
        assert early.mirror is not None  # a fresh cache: every page will be read
        for name in CHAPTERS:
            _stage_page(stage, name, pages[name])
            early.staged(name)
        doctrees = [cache / "build" / ".doctrees" / name.replace(".ipynb", ".doctree") for name in CHAPTERS]
        _until(lambda: all(path.is_file() for path in doctrees))  # each read by a reader of its own
        read = [path.stat().st_mtime_ns for path in doctrees]
        output = _tree(run.render(stage, "html", cache, server if role else None, early))
    _same(output, rendered[1])
    assert [path.stat().st_mtime_ns for path in doctrees] == read  # never read again after the last page
    assert not (cache / "build" / ".doctrees" / "early").exists()
    # the cache it leaves serves an incremental render as a full render's does
    changed = _pages(rate="'43 %'")
    incremental = _tree(run.render(_stage(tmp_path / "next", changed), "html", cache))
    _same(incremental, _tree(run.render(_stage(tmp_path / "full-stage", changed), "html", tmp_path / "full" / "html")))


def test_a_cold_render_whose_stage_got_a_file_it_did_not_foresee_is_rendered_again_in_full(rendered, tmp_path):
    """The early render read pages of a frame that turned out different (a file appeared in the stage): it is
    stopped, and the book rendered from the stage as it is, as a full render renders it."""
    pages = _pages()
    stage = _frame(tmp_path / "stage", pages)
    cache = tmp_path / "wh.render" / "html"
    early = run.EarlyRender(stage, "html", cache, None, CHAPTERS, 60)
    for name in CHAPTERS:
        _stage_page(stage, name, pages[name])
        early.staged(name)
    (stage / "book" / "_static" / "extra.css").write_text("p { color: black; }\n")
    output = _tree(run.render(stage, "html", cache, None, early))
    assert early.process is None
    _same(output, _full_with_extra(tmp_path, pages))


def _full_with_extra(tmp_path: Path, pages) -> dict:
    stage = _stage(tmp_path / "full-stage", pages)
    (stage / "book" / "_static" / "extra.css").write_text("p { color: black; }\n")
    return _tree(run.render(stage, "html", tmp_path / "full" / "html"))


def test_a_cold_render_stopped_midway_leaves_no_process_and_a_cache_never_reused(rendered, tmp_path):
    """A chapter failed while the early render read the others: `stop` ends Sphinx and its readers, and the
    cache, still marked in use, is started afresh by the next render, which is the full render."""
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    pages = _pages()
    stage = _frame(tmp_path / "stage", pages)
    cache = tmp_path / "wh.render" / "html"
    early = run.EarlyRender(stage, "html", cache, None, CHAPTERS, 60)
    for name in CHAPTERS[:2]:
        _stage_page(stage, name, pages[name])
        early.staged(name)
    early.stop()
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    assert json.loads((cache / ownership.RENDER_CACHE_MARKER).read_text()) == {"frame": None}
    _same(_tree(run.render(_stage(tmp_path / "again", pages), "html", cache)), rendered[1])


def test_an_incremental_render_does_not_start_early(rendered, tmp_path):
    """A cache that serves this book's frame: which pages changed is known only once every chapter ran, so the
    render starts then (and reads only those)."""
    cache = tmp_path / "wh.render" / "html"
    run.render(_stage(tmp_path / "first", _pages()), "html", cache)
    early = run.EarlyRender(_frame(tmp_path / "stage", _pages()), "html", cache, None, CHAPTERS, 60)
    assert early.mirror is None
    early.staged(CHAPTERS[0])
    assert early.process is None


def test_a_cold_render_s_page_warning_read_early_fails_the_render_as_a_full_render_does(tmp_path):
    """A page whose reading warns (here a directive nobody defines), read while the other chapters ran: its
    warning is Sphinx's as in a full render, and the render fails, with the same first line."""
    from greenery.errors import ReportError

    pages = _pages()
    pages["notebooks/b.ipynb"].cells.append(nbformat.v4.new_markdown_cell("```{nosuchdirective}\nx\n```"))
    pages["notebooks/b.ipynb"].cells[-1].id = "bad"
    with pytest.raises(ReportError) as full:
        run.render(_stage(tmp_path / "full-stage", pages), "html", tmp_path / "full" / "html")
    stage = _frame(tmp_path / "stage", pages)
    cache = tmp_path / "wh.render" / "html"
    early = run.EarlyRender(stage, "html", cache, None, CHAPTERS, 60)
    for name in ["notebooks/b.ipynb", *[n for n in CHAPTERS if n != "notebooks/b.ipynb"]]:
        _stage_page(stage, name, pages[name])
        early.staged(name)
    _until(lambda: (cache / "build" / ".doctrees" / "notebooks" / "b.doctree").is_file())
    with pytest.raises(ReportError) as failed:
        run.render(stage, "html", cache, None, early)
    assert str(failed.value).split("/source/")[1] == str(full.value).split("/source/")[1]  # past the cache's path
    assert "nosuchdirective" in str(failed.value)


def test_a_cold_single_page_render_read_early_is_the_full_render(tmp_path):
    """`make pdf` renders the single page (singlehtml), which gathers every page's tree from the doctrees the
    early reads pickled: the same book, byte for byte, as a full render's."""
    builder = "singlehtml"
    pages = _pages()
    full = _tree(run.render(_stage(tmp_path / "full-stage", pages), builder, tmp_path / "full" / builder))
    stage = _frame(tmp_path / "stage", pages)
    cache = tmp_path / "wh.render" / builder
    early = run.EarlyRender(stage, builder, cache, None, CHAPTERS, 60)
    assert early.mirror is not None
    for name in CHAPTERS:
        _stage_page(stage, name, pages[name])
        early.staged(name)
    doctrees = [cache / "build" / ".doctrees" / name.replace(".ipynb", ".doctree") for name in CHAPTERS]
    _until(lambda: all(path.is_file() for path in doctrees))
    read = [path.stat().st_mtime_ns for path in doctrees]
    _same(_tree(run.render(stage, builder, cache, None, early)), full)
    assert [path.stat().st_mtime_ns for path in doctrees] == read  # the early reads were used


def test_a_cold_render_whose_reader_was_killed_reads_the_pages_itself(rendered, tmp_path):
    """The process reading the pages early dies (killed here, with what it read): Sphinx reads every page
    itself, and the book is the full render's; nothing of the reader is left."""
    import os
    import signal

    import psutil

    pages = _pages()
    stage = _frame(tmp_path / "stage", pages)
    cache = tmp_path / "wh.render" / "html"
    early = run.EarlyRender(stage, "html", cache, None, CHAPTERS, 60)
    for name in CHAPTERS[:2]:
        _stage_page(stage, name, pages[name])
        early.staged(name)
    sphinx = psutil.Process(early.process.pid)
    _until(lambda: sphinx.children())  # the reader, forked with the first page
    reader = sphinx.children()[0]
    os.kill(reader.pid, signal.SIGKILL)
    for name in CHAPTERS[2:]:
        _stage_page(stage, name, pages[name])
        early.staged(name)
    _same(_tree(run.render(stage, "html", cache, None, early)), rendered[1])
    assert not psutil.pid_exists(reader.pid) or reader.status() == psutil.STATUS_ZOMBIE
    assert not (cache / "build" / ".doctrees" / "early").exists()


def test_a_cold_render_forked_from_the_render_server_stopped_midway_leaves_no_process(tmp_path):
    """Stopped while it reads (a chapter failed): the render forked from the render server, and its reader,
    end with the process that stands for it; the server, still running, is left with no fork."""
    import psutil

    from greenery.publisher import warm_server

    pages = _pages()
    stage = _frame(tmp_path / "stage", pages)
    cache = tmp_path / "wh.render" / "html"
    with warm_server.Server("render") as server:
        server.start()
        server.environment()
        early = run.EarlyRender(stage, "html", cache, server, CHAPTERS, 60)
        for name in CHAPTERS[:2]:
            _stage_page(stage, name, pages[name])
            early.staged(name)
        served = psutil.Process(server.process.pid)
        _until(lambda: any(child.children() for child in served.children()))  # the fork, and its reader
        forked = served.children(recursive=True)
        early.stop()
        _until(lambda: not served.children(), 10)
        # the reader is killed as its parent ends (PR_SET_PDEATHSIG), a moment after it; one that was still
        # starting then ends of itself (its parent is not the render any more)
        def running(process) -> bool:
            try:
                return process.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False

        _until(lambda: not [p for p in forked if running(p)], 10)


def test_a_render_cache_whose_emptying_was_stopped_is_still_ours_and_rendered_afresh(rendered, tmp_path, monkeypatch):
    """A run stopped (Ctrl-C, SIGKILL) while it empties the render cache for a full render (a cold report does
    that as its chapters begin) leaves a cache greenery still knows as its own, marked in use: the next
    render starts it afresh and is the full render, where it was refused as a foreign folder when the marker
    went first."""
    import os

    from greenery.publisher import book_render

    cache = tmp_path / "wh.render" / "html"
    run.render(_stage(tmp_path / "first", _pages()), "html", cache)
    real = shutil.rmtree

    def stopped(path, *args, **kwargs):  # removes the folder's entries in name order; stopped after the first
        first = sorted(os.scandir(path), key=lambda entry: entry.name)[0]
        real(first.path) if first.is_dir(follow_symlinks=False) else os.unlink(first.path)
        raise KeyboardInterrupt

    monkeypatch.setattr(book_render.shutil, "rmtree", stopped)
    with pytest.raises(KeyboardInterrupt):
        book_render.sync_frame(_frame(tmp_path / "stage", _pages()), cache, "html", [*CHAPTERS, "notebooks/c.ipynb"])
    monkeypatch.undo()
    assert ownership.is_render_cache(cache)
    assert json.loads((cache / ownership.RENDER_CACHE_MARKER).read_text()) == {"frame": None}
    _same(_tree(run.render(_stage(tmp_path / "again", _pages()), "html", cache)), rendered[1])


def test_a_cold_render_writes_with_the_templates_stems_and_formulas_made_before_the_last_page(tmp_path):
    """While the chapters run, the render compiles the templates the pages will use and its reader computes
    each read page's search stems and draws its formulas: writing the pages after the last one then compiles
    no template, stems no word the chapters' pages held when read and draws no formula (and the book is the full
    render's: test_a_cold_render_reads_each_page_as_it_is_staged_and_is_the_full_render)."""
    import subprocess
    import sys

    from greenery.publisher import book_render

    source, _ = book_render.sync_sources(_stage(tmp_path / "stage", _pages()), tmp_path / "cache", "html")
    build = tmp_path / "build"
    code = ("import json, os, pickle, sys, jinja2\nfrom pathlib import Path\nfrom docutils import nodes\n"
            "from sphinx.builders import Builder\nfrom sphinx.search.en import SearchEnglish\n"
            "from greenery.publisher import book_render, mathsvg\n"
            "writing, seen = [False], {'templates': [], 'stems': [], 'formulas': []}\n"
            "def during(kind, original, name):\n"
            "    def hooked(*args, **kwargs):\n"
            "        if writing[0]:\n"
            "            seen[kind].append(name(args, kwargs))\n"
            "        return original(*args, **kwargs)\n"
            "    return hooked\n"
            "jinja2.Environment.compile = during('templates', jinja2.Environment.compile,\n"
            "                                    lambda a, k: a[2] if len(a) > 2 else k.get('name'))\n"
            "SearchEnglish.stem = during('stems', SearchEnglish.stem, lambda a, k: a[1])\n"
            "mathsvg.svg = during('formulas', mathsvg.svg, lambda a, k: a[0])\n"
            "write = Builder.write\n"
            "def writes(*args, **kwargs):\n"
            "    writing[0] = True\n"
            "    return write(*args, **kwargs)\n"
            "Builder.write = writes\n"
            f"pages = {CHAPTERS!r}\n"
            "receive, send = os.pipe()\n"
            "os.write(send, ''.join(f'{page}\\n' for page in pages).encode() + b'end\\n')\n"
            "os.close(send)\n"
            "sys.stdin = os.fdopen(receive)\n"
            f"assert book_render.build(Path({str(source)!r}), Path({str(build)!r}), 'html', [], (pages, 120)) == 0\n"
            "language, read = SearchEnglish({}), set()\n"
            f"for path in Path({str(build)!r}, '.doctrees', 'notebooks').glob('*.doctree'):  # the pages read early\n"
            "    read |= {w for n in pickle.loads(path.read_bytes()).findall(nodes.Text) for w in language.split(n.astext())}\n"
            "print(json.dumps({**seen, 'read': sorted(read)}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    # only the templates Sphinx and the theme make from strings of their own (no name) are compiled while writing
    assert [name for name in seen["templates"] if name is not None] == []
    assert "Summary" in seen["read"] and "marts" in seen["read"]  # what the chapters' pages held, as read
    assert not set(seen["stems"]) & set(seen["read"])
    assert seen["formulas"] == []
    assert "greenery-math" in (build / "html" / "notebooks" / "summary.html").read_text()  # the formula was drawn


def test_naming_the_templates_ahead_warns_of_nothing_sphinx_warns_of_when_writing(tmp_path):
    """The templates compiled while the chapters run are named from the theme's options; an option the theme
    does not have is warned of by Sphinx once, as it prepares the writing, not a second time by the head start
    (which only compiles)."""
    import io

    from sphinx.application import Sphinx

    from greenery.publisher import book_render

    (tmp_path / "conf.py").write_text("html_theme_options = {'no_such_option': 1}\n")
    (tmp_path / "index.rst").write_text("Title\n=====\n")
    warnings = io.StringIO()
    app = Sphinx(str(tmp_path), str(tmp_path), str(tmp_path / "out"), str(tmp_path / "doctrees"), "html",
                 status=None, warning=warnings)
    assert "page.html" in book_render.compile_templates(app)
    assert warnings.getvalue() == ""
