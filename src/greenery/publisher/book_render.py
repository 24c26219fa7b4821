"""Rendering the staged book with Sphinx (jupyter-book 1.x), re-reading and re-writing only what changed.

A render keeps Sphinx's environment, doctrees and written pages in a cache folder greenery owns
(config.render_cache_path, beside the warehouse, a folder per builder; its marker holds the key of
what it was rendered from, null while a render uses it), with a mirror of the staged sources whose files
are replaced only when their bytes change: Sphinx then sees unchanged chapters with unchanged
modification times and reads only the changed ones. What Sphinx does not track itself is added here,
so that the pages are byte-identical to a full render of the same inputs (tests/test_book_render.py):
- the chapters that changed are named to Sphinx (never left to modification times alone);
- a page that pastes another page's glued values (`{glue:text}`repeat_rate.ipynb::name``, resolved
  when the page is written) depends on that page's source, and is re-read when it changes;
- when a re-read page changes what other pages show of it (its title, its sections, its labels and
  glossary terms: the navigation and cross-references on every page), every page is written again.
Anything else that could change every page (the settings, the table of contents, the static files,
the set of pages, the code and the versions of Sphinx and its extensions) starts a fresh cache: a full
render. So does a cache a render left half done (its marker says so until the render succeeds), a
cache holding anything but folders and regular files, and a book whose pages have image or download
files (Sphinx would keep a changed page's old ones).

A render whose cache is fresh (every page is read: a cold report) is started while the chapters still run
and reads each chapter's page as soon as it is staged (`EarlyReads`, `sync_frame`, `mirrored`); after the
last chapter it only writes, with what writing needs that does not wait for every page made before: the
templates compiled (`compile_templates`), each read page's search stems and formulas (`write_ahead`). Its book
is the same full render's, byte for byte.

Sphinx's output never holds a per-build value: the provenance (greenery.publisher.book_stage) is a
placeholder there, filled in the published copy. Sphinx runs in a process of its own, warnings as
errors: forked from the render's warm server (greenery.publisher.warm_server started as `render`: `greenery
report` starts it once the build is done), with Sphinx and its extensions already imported there (about a
CPU second less), else `python -m greenery.publisher.book_render SOURCE BUILD BUILDER [CHANGED...]`.
"""

from __future__ import annotations

import filecmp
import gc
import hashlib
import json
import os
import shutil
import sys
from contextlib import suppress
from importlib import import_module, metadata
from pathlib import Path

from greenery.outputs import atomic
from greenery.outputs.ownership import RENDER_CACHE_MARKER as CACHE_MARKER
from greenery.outputs.ownership import digest_files, is_render_cache, kind, read_own_json

BUILDERS = ("html", "singlehtml", "dirhtml")  # Sphinx's builders whose output is a folder of pages
FORMAT = 1  # of the cache's contents: a change starts fresh caches
PACKAGES = ("jupyter-book", "sphinx", "myst-nb", "myst-parser", "sphinx-book-theme", "pydata-sphinx-theme",
            "docutils", "sphinx-external-toc", "sphinx-design", "sphinx-togglebutton", "sphinx-copybutton",
            "sphinx-comments", "matplotlib")
PAGE_SUFFIXES = (".ipynb", ".md")  # the pages Sphinx reads; any other staged file is part of the frame


def _staged_files(stage: Path) -> dict[str, Path]:
    """What Sphinx reads from the stage: every file outside hidden folders (the staging marker, logs) and
    the stage's own build output."""
    found = {}
    for path in sorted(stage.rglob("*")):
        relative = path.relative_to(stage)
        if any(part.startswith(".") or part in ("_build", "_render") for part in relative.parts) or not path.is_file():
            continue
        found[relative.as_posix()] = path
    return found


def frame_key(files: dict[str, Path], builder: str) -> str:
    """Everything that may change every page: the settings, the table of contents and static files
    (by content), which pages there are (by name), the builder, the code and the packages' versions."""
    from greenery.outputs import fingerprint

    digest = hashlib.sha256(json.dumps([FORMAT, builder, fingerprint.code(), sys.version,
                                        [_version(p) for p in PACKAGES]]).encode())
    for name, path in files.items():
        digest.update(name.encode() + b"\0")
        if not name.endswith(PAGE_SUFFIXES):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _fresh(cache: Path) -> None:
    """Empty the cache for a full render: only a cache of ours is ever emptied. Its marker, saying it is in
    use, stays while the rest goes: a run stopped on the way (Ctrl-C, SIGKILL) leaves a cache still known as
    ours, which the next render starts afresh (without the marker it would be refused as someone's folder)."""
    if kind(cache) is None:
        cache.mkdir(parents=True)
        return
    if not is_render_cache(cache):
        from greenery.errors import UsageError

        raise UsageError(f"{cache} exists and is not greenery's render cache; move it aside")
    _mark(cache, None)
    for entry in [entry for entry in os.scandir(cache) if entry.name != CACHE_MARKER]:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:  # a file, or a link someone put there (removed, never followed)
            os.unlink(entry.path)


def _plain(folder: Path) -> bool:
    """Only folders and regular files below `folder`: a link someone put into the cache is never followed
    (Sphinx would write through it, the copy into the book would read through it); the cache starts again."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            if not _plain(Path(entry.path)):
                return False
        elif not entry.is_file(follow_symlinks=False):
            return False
    return True


def _mark(cache: Path, frame: str | None, files: dict[str, str] | None = None) -> None:
    atomic.write_text(cache / CACHE_MARKER, json.dumps({"frame": frame, **({"files": files} if files else {})}))


def _listing(cache: Path) -> dict[str, str]:
    """Every file of the cache (a `_plain` one) but its marker, with its sha256. Sphinx unpickles its
    environment from here and the book is copied from here: a cache is used only as the last render left
    it, byte for byte (a file planted or edited since, a page or a pickle, means a full render)."""
    names = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file() and p.name != CACHE_MARKER)
    return digest_files(cache, names)


def _usable(cache: Path, frame: str, builder: str) -> bool:
    """The cache holds a finished render of this frame, as that render left it."""
    marker = read_own_json(cache / CACHE_MARKER) if kind(cache) == "folder" else None
    # Pages with image or download files (none today: charts and tables are inside the pages) would leave
    # a changed page's old files behind, where a full render has none: such a book is always rendered in full.
    copied = any(kind(cache / "build" / builder / name) is not None for name in ("_images", "_downloads"))
    return (isinstance(marker, dict) and marker.get("frame") == frame and kind(cache / "source") == "folder"
            and not copied and _plain(cache) and marker.get("files") == _listing(cache))


def sync_frame(stage: Path, cache: Path, builder: str, pages: list[str]) -> tuple[Path, str] | None:
    """For a render that reads each page as soon as it is staged (`build`'s `follow`): when the stage, once
    `pages` are in it, will need a full render (a fresh cache), start the cache afresh (marked in use until
    `finished`) with the staged files there are so far, and return the mirror and the frame key; else None
    (the cache serves an incremental render, once every page is staged: `sync_sources`)."""
    files = _staged_files(stage)
    frame = frame_key(dict(sorted({**files, **{name: stage / name for name in pages}}.items())), builder)
    if _usable(cache, frame, builder):
        return None
    _fresh(cache)
    _mark(cache, None)
    for name, path in files.items():
        add_page(path, cache / "source" / name)
    return cache / "source", frame


def add_page(staged: Path, target: Path) -> None:
    """A staged file into the cache's mirror of the sources (its folders made as needed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic.copy_file(staged, target)


def mirrored(stage: Path, cache: Path, builder: str, frame: str) -> bool:
    """The mirror `sync_frame` started holds the staged files, every one, byte for byte, and nothing else,
    and they are the frame it was started for: what the render that followed it read is the book."""
    files = _staged_files(stage)
    source = cache / "source"
    there = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if not p.is_dir())
    return (frame_key(files, builder) == frame and there == sorted(files)
            and all(kind(source / name) == "file" and filecmp.cmp(path, source / name, shallow=False)
                    for name, path in files.items()))


def sync_sources(stage: Path, cache: Path, builder: str) -> tuple[Path, list[str] | None]:
    """Mirror the staged sources into the cache; returns the mirror and the pages whose bytes changed
    (None: a full render, in a fresh cache). The cache is marked in use until `finished`."""
    files = _staged_files(stage)
    frame = frame_key(files, builder)
    source = cache / "source"
    changed: list[str] | None = []
    if not _usable(cache, frame, builder):
        _fresh(cache)
        changed = None
    _mark(cache, None)
    for name, path in files.items():
        target = source / name
        found = kind(target)
        if found == "file" and filecmp.cmp(path, target, shallow=False):
            continue  # unchanged: Sphinx keeps what it read and wrote from it
        if found not in (None, "file"):  # not what a render leaves: start again
            _mark(cache, "")
            return sync_sources(stage, cache, builder)
        add_page(path, target)
        if changed is not None and name.endswith(PAGE_SUFFIXES):
            changed.append(name)
    if changed and kind(cache / "build" / builder / "_static") == "folder":
        # A page links a static file with its checksum (`?v=`) only if the file is there when the page is
        # written: as in a full render, only what Sphinx copies before writing pages is.
        shutil.rmtree(cache / "build" / builder / "_static")
    return source, changed


def finished(cache: Path, stage: Path, builder: str) -> None:
    """The render succeeded: the cache may serve the next one, as it is now (its files' digests)."""
    _mark(cache, frame_key(_staged_files(stage), builder), _listing(cache))


# ---------------------------------------------------------------- in the Sphinx process


def _canonical(value) -> str:
    """A value of Sphinx's environment as text, independent of insertion order (a re-read page's entries
    move to the end of their dicts: that alone changes nothing a page shows)."""
    from docutils import nodes

    if isinstance(value, dict):
        return "{" + ",".join(sorted(f"{_canonical(k)}:{_canonical(v)}" for k, v in value.items())) + "}"
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, nodes.Node):
        return value.pformat()
    return repr(value)


def _shown_elsewhere(env) -> str:
    """What pages show of other pages: titles, tables of contents and section numbers (the navigation,
    previous/next links), the table of contents' structure, and every domain's data (labels, glossary
    terms, equations: what cross-references resolve to)."""
    # a page's metadata (`tocdepth`, `orphan`) can change others' navigation, but not myst's word count:
    # that is the page's own (its {sub-ref}`wordcount`), and the page is written again anyway
    metadata = {name: {k: v for k, v in data.items() if k != "wordcount"} for name, data in env.metadata.items()}
    parts = [env.titles, env.longtitles, env.tocs, env.toc_num_entries, env.toc_secnumbers, env.toc_fignumbers,
             env.toctree_includes, env.numbered_toctrees, metadata, env.domaindata]
    return _canonical(parts)


class Incremental:
    """The hooks that make Sphinx's incremental build complete (module docstring)."""

    def __init__(self, app, changed: list[str]):
        self.changed = set(changed)
        self.before: str | None = None
        app.connect("env-get-outdated", self.outdated)
        app.connect("doctree-read", self.note_glue)
        app.connect("env-updated", self.updated)
        app.connect("html-collect-pages", self.index_entries)

    def outdated(self, app, env, added, changed, removed):
        self.before = _shown_elsewhere(env) if env.all_docs else None
        named = {docname for docname in env.found_docs if Path(env.doc2path(docname, False)).as_posix() in self.changed}
        # a page pasting glued values from a changed page is read again (its dependency on that page's source)
        sources = {str(env.doc2path(d)) for d in named | set(changed) | set(added)}
        pasting = {d for d in env.found_docs if env.dependencies.get(d, set()) & sources}
        return sorted((named | pasting) - set(added) - set(changed))

    def note_glue(self, app, doctree):
        from myst_nb.ext.glue.utils import PendingGlueReference

        env = app.env
        for node in doctree.findall(PendingGlueReference):
            if node.refdoc != env.docname and node.refdoc in env.found_docs:
                env.note_dependency(str(env.doc2path(node.refdoc)))

    def updated(self, app, env):
        if self.before is not None and self.before != _shown_elsewhere(env):
            return sorted(env.found_docs)  # written again, every one
        return []


    def index_entries(self, app):
        """Sphinx's search index keeps the words of the pages it did not write, but not their index entries
        (glossary terms): they are read back from the index it loaded, and ordered as a full render feeds
        them (by page name); and it keeps words no page has any more, with no page. Both mended here, the
        index is the full render's."""
        indexer = getattr(app.builder, "indexer", None)
        if indexer is None:
            return []
        kept = set(indexer._titles) - set(indexer._index_entries)
        if kept:
            old = Path(app.builder.outdir) / app.builder.searchindex_filename
            form = app.builder.indexer_format
            form = indexer.formats[form] if isinstance(form, str) else form
            frozen = form.loads(old.read_text(encoding="utf-8"))
            for entry, places in frozen.get("indexentries", {}).items():
                for number, entry_id, main in places:
                    docname = frozen["docnames"][number]
                    if docname in kept:
                        indexer._index_entries.setdefault(docname, []).append((entry, entry_id, "main" if main else ""))
        indexer._index_entries = dict(sorted(indexer._index_entries.items()))
        for mapping in (indexer._mapping, indexer._title_mapping):  # words only the re-written pages had
            for word in [word for word, pages in mapping.items() if not pages]:
                del mapping[word]
        return []


class EarlyReads:
    """A full render that reads each page as soon as it is in the mirror, while the chapters still run, then
    writes the book once they all are: `build`'s `follow`.

    Its standard input names the pages (their paths in the mirror) as they become final, then `end`. The pages
    are read, in the order they come, by one process forked for it (as a process of Sphinx's own parallel read,
    `-j`, reads its share of the pages: sphinx.builders.Builder._read_parallel), which hands back its
    environment pickled. Sphinx would refuse `-j` for this book because two of jupyter-book's extensions do not
    declare themselves safe for it, but neither keeps anything of a page read: sphinx_multitoc_numbering
    numbers sections after reading (env-updated, here in the render's process), sphinx_jupyterbook_latex sets
    two flags when the builder starts (before the fork); the others declare it. Sphinx's read then takes the pages
    in its own order (by name) and merges each read page's environment (BuildEnvironment.merge_info_from)
    where it would have read it, reading any other itself: the environment, and every page written from it,
    are those of Sphinx's reads. Reading a page early needs the set of pages (Sphinx finds the files, and
    these are not all there yet): the pages named when the render started stand in for them, and what was
    read early is used only when Sphinx's own search finds exactly that set."""

    def __init__(self, app, pages: list[str], seconds: float):
        import time

        self.app = app
        self.deadline = time.monotonic() + seconds
        self.folder = Path(app.doctreedir) / "early"  # in the cache, emptied with it: a fresh render
        self.folder.mkdir(parents=True, exist_ok=True)
        self.reader: int | None = None  # the reading process
        self.pipe = None  # the page names, to it
        self.sent: set[str] = set()
        env = app.env
        env.find_files(app.config, app.builder)
        project = env.project
        for path in pages:  # the pages still to come (Sphinx 7.4's Project: docnames and both mappings)
            docname = project.path2doc(path)
            if docname is not None and docname not in project.docnames:
                project.docnames.add(docname)
                project._path_to_docname[path] = docname
                project._docname_to_path[docname] = path
        self.found = set(env.found_docs)
        self.docnames = {project.path2doc(path) for path in pages}
        app.builder._read_serial = self.read_serial
        # what writing the pages can have done before the last page comes (`ahead`)
        self.compiled = False
        self.stems: dict[str, str] = {}
        self._prepare_writing = app.builder.prepare_writing
        app.builder.prepare_writing = self.prepare_writing

    def follow(self, stream) -> None:
        """Have the pages named on `stream` read until `end`; raises TimeoutError past the deadline, EOFError
        when the stream ends before `end` (whoever started the render is gone)."""
        import select
        import time

        received = ""
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no end of the pages before the render's deadline")
            if "\n" not in received:
                if not select.select([stream], [], [], left)[0]:
                    continue
                chunk = os.read(stream.fileno(), 1 << 16)  # not readline: lines it buffered, select would not see
                if not chunk:
                    raise EOFError("the pages' stream ended before its end")
                received += chunk.decode()
                continue
            line, received = received.split("\n", 1)
            if line.strip() == "end":
                if self.pipe is not None:
                    with suppress(BrokenPipeError):
                        self.pipe.close()  # the reader ends once it read what it was sent
                    self.pipe = None
                return
            docname = self.app.env.project.path2doc(line.strip())
            if docname in self.docnames and docname not in self.sent:
                self._send(docname)
                if not self.compiled:  # once the reader has its first page: the two run side by side
                    self.compiled = True
                    with suppress(Exception):  # only ever a head start: writing compiles what is not compiled
                        compile_templates(self.app)

    def _send(self, docname: str) -> None:
        if self.reader is None:
            from greenery.publisher.processes import die_with_parent

            receive, send = os.pipe()
            # What the render made so far lives as long as it: frozen, the reader (collector off: it only reads
            # the book's pages and ends) never copies its pages of memory
            gc.freeze()
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:
                gc.disable()
                code = 1
                try:
                    die_with_parent()
                    if os.getppid() == parent:  # else the render ended before the line above: so does its reader
                        os.close(send)
                        code = self._read_all(os.fdopen(receive))
                finally:
                    os._exit(code)
            os.close(receive)
            self.reader, self.pipe = pid, os.fdopen(send, "w")
        try:
            self.pipe.write(docname + "\n")
            self.pipe.flush()
            self.sent.add(docname)
        except BrokenPipeError:  # the reader ended (a page it could not read): Sphinx reads the rest
            pass

    def _read_all(self, stream) -> int:
        """In the reader's process: read each page named on `stream` until it ends (or a page fails), then
        pickle the environment, the pages read and each one's log records, for `read_serial`."""
        import pickle

        from sphinx.environment import CONFIG_OK
        from sphinx.util import logging as sphinx_logging
        from sphinx.util.build_phase import BuildPhase

        app, env = self.app, self.app.env
        # what Sphinx's read does before it reads the pages (Builder.read): the environment then as in a process
        # of Sphinx's parallel read (sphinx_external_toc moves its site map there, say)
        app.phase = BuildPhase.READING
        env.app = app
        added, changed, removed = env.get_outdated_files(env.config_status != CONFIG_OK)
        for docs in app.events.emit("env-get-outdated", env, added, changed, removed):
            changed.update(set(docs) & env.found_docs)
        app.events.emit("env-before-read-docs", env, sorted(added | changed))
        logs: dict[str, list] = {}
        ahead = {"stems": {}, "formulas": {}}
        for line in stream:
            docname = line.strip()
            collector = sphinx_logging.LogCollector()
            try:
                with collector.collect():
                    app.events.emit("env-purge-doc", env, docname)
                    env.clear_doc(docname)
                    app.builder.read_doc(docname)  # its doctree is pickled, and kept for `write_ahead` below
            except BaseException:  # noqa: BLE001 - the page is read again by Sphinx, which says why
                break  # the environment may be half changed for it: it and the pages after it are Sphinx's
            sphinx_logging.convert_serializable(collector.logs)
            logs[docname] = collector.logs
            with suppress(Exception):  # only ever a head start: what is not done here is done when writing
                # (Sphinx 7.4 keeps the doctree it pickled in memory for its own writing: taken, not unpickled)
                for part, done in write_ahead(app, env._write_doc_doctree_cache.pop(docname), ahead["stems"]).items():
                    ahead[part].update(done)
        atomic.write_bytes(self.folder / "read.pickle", pickle.dumps({"logs": logs, "env": env, **ahead},
                                                                      pickle.HIGHEST_PROTOCOL))
        return 0

    def _read(self) -> dict:
        """What the reader read, once it ended (the names of the pages to read were all sent): {"logs": the log
        records of each page it read, "env": its environment}; nothing when it ended without saying."""
        import pickle
        import time

        if self.pipe is not None:
            with suppress(BrokenPipeError):
                self.pipe.close()
            self.pipe = None
        while self.reader is not None:
            if os.waitpid(self.reader, os.WNOHANG)[0]:
                self.reader = None
            elif time.monotonic() > self.deadline:
                raise TimeoutError("the early reads did not end before the render's deadline")
            else:
                time.sleep(0.002)
        path = self.folder / "read.pickle"
        return pickle.loads(path.read_bytes()) if path.is_file() else {"logs": {}, "env": None}

    def read_serial(self, docnames: list[str]) -> None:
        """Sphinx's serial read (Builder._read_serial), taking what the reader read where it can."""
        from sphinx.util import logging as sphinx_logging
        from sphinx.util.display import status_iterator

        from greenery.publisher import mathsvg

        builder, env = self.app.builder, self.app.env
        read = self._read() if self.sent and set(env.found_docs) == self.found else {"logs": {}, "env": None}
        if read["env"] is not None:
            self.stems = read["stems"]
            mathsvg.DRAWN.update(read["formulas"])
        logger = sphinx_logging.getLogger(__name__)
        for docname in status_iterator(docnames, "reading sources... ", "purple", len(docnames),
                                       self.app.verbosity):
            builder.events.emit("env-purge-doc", env, docname)
            env.clear_doc(docname)
            if docname in read["logs"]:
                for record in read["logs"][docname]:
                    logger.handle(record)
                env.merge_info_from([docname], read["env"], self.app)
                continue
            builder.read_doc(docname)
        self.stop()

    def prepare_writing(self, docnames) -> None:
        """Sphinx's (StandaloneHTMLBuilder.prepare_writing), then the search index's language told the stems
        the reader found: each the stemmer's own answer for that word, so the index is the same."""
        self._prepare_writing(docnames)
        indexer = getattr(self.app.builder, "indexer", None)
        if indexer is not None and self.stems:
            known, stem = self.stems, indexer.lang.stem
            indexer.lang.stem = lambda word: known[word] if word in known else stem(word)

    def stop(self) -> None:
        import signal

        if self.pipe is not None:
            with suppress(BrokenPipeError):
                self.pipe.close()
            self.pipe = None
        if self.reader is not None:
            with suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.reader, signal.SIGKILL)
                os.waitpid(self.reader, 0)
            self.reader = None
        shutil.rmtree(self.folder, ignore_errors=True)


def write_ahead(app, doctree, stemmed=()) -> dict[str, dict]:
    """What writing a page computes from its words and formulas alone, computed from the page as read (the
    written page's doctree has the same words and formulas, plus the few its references resolve to): each
    word's stem for the search index ({"stems": {word: stem}}, by the index's own language; but the words in
    `stemmed`, done for another page) and each formula drawn ({"formulas": greenery.publisher.mathsvg.DRAWN's
    entries}). Each is a function of the word or the formula alone, so a page written with them is the page
    written without."""
    from sphinx.search import IndexBuilder

    from greenery.publisher import mathsvg

    config = app.config
    indexer = IndexBuilder(app.env, config.html_search_language or config.language, config.html_search_options,
                           config.html_search_scorer)  # as StandaloneHTMLBuilder.prepare_writing makes it
    # the words the index takes (IndexBuilder.feed's own collector: Sphinx 7.4, pinned), not every text of the
    # page: a chart's SVG or a table's HTML is text too, and would be 2 CPU s of stems nobody looks up
    found = indexer._word_collector(doctree)
    words = {*found.words, *found.title_words}.difference(stemmed)
    return {"stems": {word: indexer.lang.stem(word) for word in words}, "formulas": mathsvg.draw_ahead(doctree)}


def page_templates(app) -> list[str]:
    """The templates writing the pages renders, as far as they can be named before: the page's, the index's
    and the search page's, and every template the theme's options and the sidebars name (pydata-sphinx-theme
    renders its sections' templates by name, ".html" added where it is missing)."""
    from sphinx.util.logging import suppress_logging

    builder = app.builder
    with suppress_logging():  # an option the theme does not have: prepare_writing warns of it, once
        options = builder.theme.get_options(builder.theme_options) if builder.theme else {}
    named = [*options.values(), *(builder.theme.sidebar_templates if builder.theme else []),
             *app.config.html_sidebars.values()]
    names = ["page.html", "genindex.html", "search.html"]
    while named:
        value = named.pop(0)
        if isinstance(value, dict):
            named.extend(value.values())
        elif isinstance(value, list | tuple):
            named.extend(value)
        elif isinstance(value, str):
            names += [name if os.path.splitext(name)[1] else f"{name}.html"
                      for name in (part.strip() for part in value.split(",")) if name]
    return [name for name in dict.fromkeys(names) if name.endswith(".html")]


def compile_templates(app) -> list[str]:
    """Compile, into the Jinja environment that will write the pages, the templates they will render
    (`page_templates`, and every template those name in their text: extends, include, import), while the
    chapters still run: Jinja keeps each compiled template (its cache, checked against the file's time when
    used), so writing the pages compiles none of them (the book's 35, 0.13 CPU s; 38 compiled here, 0.16 CPU s,
    while the chapters run). Compiling is all it does: a template that is not there or does not compile is
    left to the render, which says why if it uses it. Returns the names compiled."""
    from jinja2 import meta

    environment = app.builder.templates.environment
    names, compiled, parsed = page_templates(app), [], []
    parse = environment._parse  # each template's syntax tree, kept as Jinja compiles it (not parsed twice)

    def keep(*args):
        parsed.append(parse(*args))
        return parsed[-1]

    environment._parse = keep
    try:
        while names:
            name = names.pop(0)
            if name in compiled:
                continue
            parsed.clear()
            try:
                environment.get_template(name)
            except Exception:  # noqa: BLE001, S112 - a name that is no template (an option's other text), or a broken one
                continue
            compiled.append(name)
            names += [found for tree in parsed for found in meta.find_referenced_templates(tree) if found]
    finally:
        del environment._parse
    return compiled


def build(source: Path, build_folder: Path, builder: str, changed: list[str],
          follow: tuple[list[str], float] | None = None) -> int:
    """What `jupyter-book build SOURCE --builder BUILDER --warningiserror --nitpick --keep-going --quiet`
    does (jupyter_book.cli.main.build, jupyter_book.sphinx.build_sphinx), into `build_folder`, with the hooks.

    `follow` (the book's pages, the seconds they may take): a full render that reads the pages named on
    standard input as they come (EarlyReads), and writes the book after `end`."""
    import yaml
    from jupyter_book.config import get_final_config
    from sphinx.application import Sphinx
    from sphinx.cmd.build import handle_exception
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    overrides = {"external_toc_path": (source / "_toc.yml").as_posix(), "latex_individualpages": False,
                 "nitpicky": True}
    sphinx_config, _ = get_final_config(user_yaml=source / "_config.yml", cli_config=overrides,
                                        sourcedir=source, use_external_toc=True)
    output = build_folder / builder
    app = None
    try:
        with patch_docutils(source), docutils_namespace():
            app = Sphinx(srcdir=source, confdir=None, outdir=output, doctreedir=build_folder / ".doctrees",
                         buildername=builder, confoverrides=sphinx_config, status=None, warning=sys.stderr,
                         freshenv=False, warningiserror=True, tags=None, verbosity=0, parallel=1, keep_going=True)
            if app.config["use_multitoc_numbering"] and "numbered: true" in yaml.dump(
                    app.config.external_site_map.as_json()):  # as jupyter-book does
                app.setup_extension("sphinx_multitoc_numbering")
            Incremental(app, changed)
            if follow is not None:
                early = EarlyReads(app, *follow)
                try:
                    early.follow(sys.stdin)
                    app.build(False, [])
                finally:
                    early.stop()
            else:
                app.build(False, [])
            return app.statuscode
    except (Exception, KeyboardInterrupt) as exc:
        class Args:
            pdb = verbosity = traceback = False

        handle_exception(app, Args, exc, sys.stderr)
        return 1


FOLLOW = "--follow"


def main(args: list[str]) -> int:
    """`SOURCE BUILD BUILDER [CHANGED...]`, or `SOURCE BUILD BUILDER --follow SECONDS PAGE...` (a full render
    reading the pages as standard input names them): the render's process, alone or forked from the warm server."""
    if args[3:4] == [FOLLOW]:
        return build(Path(args[0]), Path(args[1]), args[2], [], (args[5:], float(args[4])))
    return build(Path(args[0]), Path(args[1]), args[2], args[3:])


# Imported by a render itself (0.1 CPU s, on its critical path: it starts when the last chapter ends) unless
# preloaded: the extensions every Sphinx application sets up (its builtin ones: domains, builders, transforms),
# the book's (_config.yml's and those jupyter-book adds), the theme's Pygments styles and the sandboxed
# templates. Found by comparing sys.modules before and after a render of the book.
BOOK_IMPORTS = ("a11y_pygments", "alabaster", "email.policy", "encodings.unicode_escape", "encodings.utf_8_sig",
                "importlib_metadata", "jinja2.ext", "jinja2.sandbox",
                "sphinx.cmd.build", "sphinx.jinja2glue", "sphinx_comments", "sphinx_copybutton",
                "sphinx_design.extension", "sphinx_external_toc.collectors", "sphinx_external_toc.events",
                "sphinx_jupyterbook_latex.events", "sphinx_jupyterbook_latex.theme",
                "sphinx_jupyterbook_latex.transforms", "sphinx_multitoc_numbering", "sphinx_togglebutton")


HIGHLIGHTED = ("python", "ipython3", "sql", "mysql")  # the languages of the book's code blocks


def preload() -> None:
    """What a render imports (a second's worth) and builds on first use, for the render's warm server to do
    once before it forks one."""
    import jupyter_book.config  # noqa: F401
    import matplotlib.mathtext  # noqa: F401  (greenery.publisher.mathsvg draws the formulas)
    import myst_nb.sphinx_ext  # noqa: F401
    import pydata_sphinx_theme  # noqa: F401
    import sphinx.application  # noqa: F401
    import sphinx.builders.html  # noqa: F401
    import sphinx_book_theme  # noqa: F401
    import sphinx_design  # noqa: F401
    import sphinx_external_toc  # noqa: F401
    from sphinx.application import _first_party_extensions, builtin_extensions

    from greenery.publisher import mathsvg

    for module in (*builtin_extensions, *_first_party_extensions, *BOOK_IMPORTS):
        with suppress(ImportError):  # a package left out of an install: the render then says what is missing
            import_module(module)
    # A formula's first drawing builds mathtext's parser and loads its fonts (0.25 s): both kept by matplotlib
    # for the process (caches; what a formula looks like depends only on its text). Not through `svg`'s own
    # cache, which keeps only the book's formulas.
    mathsvg.svg.__wrapped__("x", mathsvg.INLINE_SIZE)
    _first_use()


def _first_use() -> None:
    """What a render pays on the first use of a library and keeps for the process: module-level caches
    that no page depends on, filled here once instead of on the render's critical path (0.15 CPU s)."""
    from bs4 import BeautifulSoup
    from jinja2.sandbox import SandboxedEnvironment
    from myst_nb.core.lexers import AnsiColorLexer
    from pygments.lexers import get_lexer_by_name

    # the sidebar's and the page's contents (pydata_sphinx_theme.toctree): soupsieve compiles its CSS parser's
    # patterns on first use, then each selector once (an lru_cache)
    soup = BeautifulSoup('<ul><li class="toctree-l0"><details><a class="reference">a</a><p class="caption">b</p>'
                         '</details></li></ul>', "html.parser")
    for selector in ("li", "li.toctree-l0 > details", "li.toctree-l1 > details", ".toc-h1", ".toc-h2",
                     "details > a.reference", "details > p.caption"):
        soup.select(selector)
    # code cells' and outputs' highlighting: a Pygments lexer compiles its token patterns once per class, the
    # outputs' (ANSI colours) one more when it first meets a colour
    list(AnsiColorLexer().get_tokens("\x1b[1m1\x1b[0m\n"))
    for name in HIGHLIGHTED:
        list(get_lexer_by_name(name).get_tokens("x\n"))
    SandboxedEnvironment().lexer  # noqa: B018  (Jinja's lexer for the default syntax: cached by its settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
