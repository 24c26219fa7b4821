"""`greenery report`: build the warehouse, execute the chapters, publish the book.

The story of one run, each step in a module of its own:
1. check the outputs are ours to write (greenery.outputs) and take their locks (greenery.outputs.locking);
2. build the warehouse, or reuse it when the export and the code are unchanged (greenery.warehouse);
3. execute the chapters that changed into a staging folder, reusing the rest (greenery.publisher.chapter_runs);
4. render the staged book with jupyter-book, Sphinx warnings as errors, re-rendering only the pages that
   changed since the last render (greenery.publisher.book_render); a full render starts with the first
   chapter staged and reads each chapter's page while the others run (EarlyRender);
5. stamp it with what it was made from and the files it holds, and exchange it with the published
   book in one atomic rename (greenery.outputs.atomic).
Any failure, timeout or signal leaves the previous book exactly as it was.
"""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from greenery import config
from greenery.chapter_kit import contents
from greenery.errors import ReportError, UsageError, one_line
from greenery.faults import checkpoint
from greenery.outputs import atomic, fingerprint, ownership
from greenery.outputs.locking import exclusive
from greenery.publisher import chapter_runs as chapters
from greenery.publisher import processes, warm_server
from greenery.publisher.status import moved_lines
from greenery.publisher.warm_client import client_command


@dataclass
class ReportResult:
    published: Path
    reused: bool  # True when nothing changed and the published book was kept
    build: object | None = None  # the BuildResult, when the warehouse was rebuilt
    timings: dict[str, float] = field(default_factory=dict)


def book_sources() -> list[Path]:
    """The book's own files besides the chapters: settings, toc, static assets."""
    static = [p for p in config.BOOK_DIR.rglob("*") if p.is_file()] if config.BOOK_DIR.is_dir() else []
    return [config.BOOK_CONFIG_PATH, config.TOC_PATH, *static]


def _stage_sources(stage: Path) -> None:
    for name in (config.BOOK_CONFIG_PATH, config.TOC_PATH):
        shutil.copy2(name, stage / name.name)
    if config.BOOK_DIR.is_dir():
        shutil.copytree(config.BOOK_DIR, stage / config.BOOK_DIR.name)


def _sphinx_command(args: list[str], server: warm_server.Server | None) -> tuple[list[str], dict | None]:
    """Sphinx in a fork of `server` when it is running (it imported Sphinx for this), else in a process of its own."""
    if server is not None and server.process is not None:
        return client_command("render", *args), server.environment()
    return [sys.executable, "-m", "greenery.publisher.book_render", *args], None


def _late() -> ReportError:
    return ReportError(f"jupyter-book did not finish rendering the book within {config.RENDER_TIMEOUT:g} s "
                       "and was stopped; the last published book is kept as it was")


class EarlyRender:
    """A full render started while the chapters run, which reads each chapter's page as soon as it is staged
    (greenery.publisher.book_render.EarlyReads): after the last chapter, what is left is Sphinx writing the
    pages. Only where the render reads every page anyway (its cache is fresh: a cold report); an incremental
    render needs to know which pages changed, and starts after the last chapter.

    Sphinx starts with the first page staged once the render's server is ready (never waiting for it, which
    would hold up the chapters), else with the last. Every wait has a deadline: the pages' (the chapters'
    time limits, then the render's), and the render's after the last page; `stop` ends it on any failure."""

    def __init__(self, stage: Path, builder: str, cache: Path, server: warm_server.Server | None,
                 pages: list[str], seconds: float):
        from greenery.publisher import book_render

        self.stage, self.builder, self.cache, self.server = stage, builder, cache, server
        self.pages, self.seconds = pages, seconds + config.RENDER_TIMEOUT
        self.process: subprocess.Popen | None = None
        self.queued: list[str] = []
        synced = book_render.sync_frame(stage, cache, builder, pages) if builder in book_render.BUILDERS else None
        self.mirror, self.frame = synced if synced else (None, None)

    def staged(self, page: str) -> None:
        """`page` (its path in the stage) is final: into the mirror, and named to Sphinx."""
        from greenery.publisher import book_render

        if self.mirror is None:
            return
        book_render.add_page(self.stage / page, self.mirror / page)
        self.queued.append(page)
        if self.process is None and (self.server is None or self.server.process is None or self.server.accepting()):
            self._start()
        self._send()

    def _start(self) -> None:
        from greenery.publisher import book_render

        args = [str(self.mirror), str(self.cache / "build"), self.builder, book_render.FOLLOW, f"{self.seconds:g}",
                *self.pages]
        command, env = _sphinx_command(args, self.server)
        # files, not pipes: a pipe nobody reads while the chapters run could fill and hold Sphinx up (closed by
        # `finish` or `stop`)
        self.output, self.errors = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=self.output, stderr=self.errors,
                                        text=True, env=env, preexec_fn=processes.die_with_parent)

    def _send(self, *more: str) -> None:
        if self.process is None:
            return
        with suppress(BrokenPipeError):  # Sphinx ended already: how, its exit status says when it is waited for
            self.process.stdin.write("".join(f"{line}\n" for line in (*self.queued, *more)))
            self.process.stdin.flush()
        self.queued.clear()

    def finish(self) -> subprocess.CompletedProcess | None:
        """Once every page is staged: the render's end, or None when the mirror is not the staged book (a file
        the frame did not foresee): that render is stopped, and the book rendered as without it."""
        from greenery.publisher import book_render

        if self.mirror is None or not book_render.mirrored(self.stage, self.cache, self.builder, self.frame):
            self.stop()
            return None
        if self.process is None:
            self._start()
        self._send("end")
        with suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=config.RENDER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()
            raise _late() from None
        streams = []
        for stream in (self.output, self.errors):
            stream.seek(0)
            streams.append(stream.read())
            stream.close()
        done = subprocess.CompletedProcess(self.process.args, self.process.returncode, *streams)
        self.process = None
        return done

    def stop(self) -> None:
        if self.process is not None:
            processes.kill_tree(self.process.pid)
            self.process.wait()
            with suppress(OSError):
                self.process.stdin.close()
            self.output.close()
            self.errors.close()
            self.process = None


def render(stage: Path, builder: str = "html", cache: Path | None = None,
           server: warm_server.Server | None = None, early: EarlyRender | None = None) -> Path:
    """Sphinx (jupyter-book) render of the staged book, warnings as errors, nitpicky; returns the output
    folder (in the stage). With `cache` (a folder greenery owns, config.render_cache_path) Sphinx reads
    and writes only the pages that changed since the render that left it (greenery.publisher.book_render);
    without it, or when more than pages changed, every page. Sphinx runs in a fork of `server` when it is
    running (it imported Sphinx for this), else in a process of its own. `early`: the render started while
    the chapters ran, in `cache`, finished here."""
    from greenery.publisher import book_render

    if builder not in book_render.BUILDERS:
        raise UsageError(f"no such book builder: {builder} (one of {', '.join(book_render.BUILDERS)})")
    folder = cache if cache is not None else stage / "_render"
    done = early.finish() if early is not None else None
    if done is None:
        source, changed = book_render.sync_sources(stage, folder, builder)
        if changed == []:  # the very sources of the cached render: its pages are what Sphinx would write
            book_render.finished(folder, stage, builder)
            return _copy_rendered(folder, stage, builder)
        command, env = _sphinx_command([str(source), str(folder / "build"), builder, *(changed or [])], server)
        try:  # a stuck Sphinx (an extension waiting on the network, say) is stopped, its whole tree with it
            done = processes.run(command, timeout=config.RENDER_TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            raise _late() from None
    if done.returncode != 0:
        output = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", done.stdout + done.stderr)  # Sphinx colours its lines
        if "No space left on device" in output or "Disk quota exceeded" in output:  # not the book's fault
            raise OSError(errno.ENOSPC, "No space left on device", str(stage.parent))
        details = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line or "Error" in line]
        first = details[0] if details else (output.strip().splitlines() or [""])[-1]
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        raise ReportError(f"jupyter-book could not render the book: {first.strip()[:300]}{more}")
    book_render.finished(folder, stage, builder)
    return _copy_rendered(folder, stage, builder)


def _copy_rendered(cache: Path, stage: Path, builder: str) -> Path:
    output = stage / "_build" / builder
    shutil.copytree(cache / "build" / builder, output)  # a copy: the cache's pages stay as Sphinx wrote them
    return output


def shown_build(stamp: dict) -> int | None:
    """The build a published book shows, from its stamp's warehouse key ("fingerprint:build id")."""
    build_id = str(stamp.get("warehouse", "")).rpartition(":")[2]
    return int(build_id) if build_id.isdigit() else None


def _warehouse(source, warehouse_path: Path, built_at: datetime | None, log: Callable[..., None],
               engine: str = "duckdb", spark=None, before_build: Callable[[], None] = lambda: None,
               shown: int | None = None, watch=None):
    """Reuse the warehouse if it was built from this export and this code, and its "what changed" tables
    compare with `shown` (the build the published book shows), else build it, compared with `shown`.

    Returns the key the chapters depend on (the export and code's fingerprint and the build's id in
    the history, so that a "what changed" page is never reused against another history) and the
    BuildResult when a build ran."""
    from greenery.warehouse.build import reuse_facts, summary_lines
    from greenery.warehouse.engines import builder, input_fingerprint

    build = builder(engine, spark, log, watch)  # DuckDB's build, or Spark's; the engine is part of the fingerprint
    wanted = input_fingerprint(engine, source, spark, built_at)
    identity, suited = reuse_facts(warehouse_path)  # one opening of the warehouse
    if identity and identity[0] == wanted:
        if shown is None or shown in suited:
            log(f"Warehouse up to date (same export, same code): reusing {warehouse_path}")
            return f"{wanted}:{identity[1]}", None
        # `build` ran since the book was published: its "what changed" compares with the last of those
        log(f"Warehouse up to date, but the book shows build {shown}: rebuilding to compare with it")
    before_build()
    result = build(source, warehouse_path, inputs=wanted, built_at=built_at, since=shown)  # hashed once per run
    for line in summary_lines(result):
        log(line)
    for line in moved_lines(warehouse_path):
        log(line)
    log(f"Warehouse built in {result.seconds:.2f} s")
    return f"{wanted}:{result.info['build_id']}", result


def _nothing_added(old: Path, published: Path) -> None:
    """The replaced book holds only what its stamp lists: a file someone put into it while this run
    worked (a CNAME) is never deleted; the old book is put back as it was and the run refused."""
    foreign = ownership.foreign_files(old)
    if foreign:
        raise UsageError(f"--out {published} received {len(foreign)} file(s) during this run (first: {foreign[0]}); "
                         "the book was kept as it is: move them out and run again")


def _one_line_each(log: Callable[..., None]) -> Callable[[str], None]:
    """Every line logged is one line, whatever a path in it holds (errors.one_line)."""
    return lambda text: log(one_line(text))


def publish(data_dir=None, out=None, warehouse=None, analysis: Sequence[str] = (),
            timeout: float = config.CHAPTER_TIMEOUT, built_at: datetime | None = None,
            log: Callable[..., None] = print, builder: str = "html", engine: str = "duckdb",
            spark=None, watch=None) -> ReportResult:
    """Publish the book; raise a GreeneryError (greenery.errors) when it cannot be.

    `analysis` holds `NAME=VALUE` settings for the chapters' parameters cells; `watch` the export watch's
    thresholds (greenery.warehouse.watch.WatchSettings; they apply when the warehouse is built, a reused
    warehouse keeps the findings of its build)."""
    from greenery.warehouse.engines import choose_source_for

    log = _one_line_each(log)
    published = config.absolute(out) if out else config.HTML_DIR
    warehouse_path = config.absolute(config.warehouse_path(warehouse))
    entries = contents.notebook_entries()
    # A bad --param stops before any work. Without one, every chapter gets the common parameters alone,
    # and no parameters cell is read: reading them (jupytext) cost an unchanged report a third of its time.
    values = chapters.analysis_parameters(list(analysis), entries) if analysis else {}
    ownership.check_outputs(warehouse_path, config.absolute(config.history_path()),
                            config.absolute(config.digest_cache_path()), book=published)
    source = choose_source_for(engine, data_dir, log)  # before the locks: a refused export leaves nothing
    log(f"Data: {source.path} ({source.label}; chosen by {source.chosen_by})")
    with (exclusive(published, "the book"), exclusive(warehouse_path, "the warehouse"), warm_server.Server() as server,
          warm_server.Server("render") as render_server):
        ownership.check_book_target(published)  # again, now that no other run can change it
        # A new warehouse means every chapter runs: the server imports their libraries during the build.
        warehouse_key, built = _warehouse(source, warehouse_path, built_at, log, engine, spark, server.start,
                                          shown_build(ownership.read_stamp(published)), watch)

        common = {"data_dir": str(source.path), "warehouse": str(warehouse_path)}
        parameters = {e: chapters.chapter_parameters(e, common, values) if values else dict(common) for e in entries}
        keys = {e: fingerprint.chapter(warehouse_key, contents.notebook_path(e), parameters[e]) for e in entries}
        book_key = fingerprint.book(keys, book_sources())
        if builder != "html":  # another kind of output from the same chapters (`make pdf`: singlehtml)
            book_key = fingerprint.combine(book_key, builder)
        stamp = ownership.read_stamp(published)
        if stamp.get("book") == book_key:
            if ownership.book_intact(published, stamp):
                log(f"Book up to date (same chapters, same data): {published / 'index.html'}")
                return ReportResult(published, reused=True, build=built)
            log("The published book differs from its stamp (a page deleted or edited): rendering it again")

        from greenery.publisher import book_stage  # here: a reused book needs none of the book's libraries

        render_server.start()  # Sphinx imported on the core the build leaves idle, while the chapters' server imports
        ownership.remove_leftover_staging(published, "staging")  # we hold the book's lock: none is in use
        stage = ownership.new_staging(published, "staging")
        cache = chapters.ChapterCache(config.chapter_cache_path(warehouse_path))
        early = None
        try:
            _stage_sources(stage)
            book_stage.prepare_frame(stage)
            # A cold render reads each chapter's page while the others run (EarlyRender)
            early = EarlyRender(stage, builder, config.render_cache_path(warehouse_path) / builder, render_server,
                                [f"{entry}.ipynb" for entry in entries], timeout * len(entries))
            last = stamp.get("seconds")  # what each chapter took last time: the longest start first
            # Each chapter is cleaned for the render as soon as it is staged, while the others run, not all
            # after the last one: the render starts that much sooner.
            made_from = book_stage.provenance(source, warehouse_path)
            prepared: list[str] = []

            def staged(entry: str) -> None:
                book_stage.prepare_chapter(stage, entry, parameters[entry], made_from)
                prepared.append(entry)
                early.staged(f"{entry}.ipynb")

            timings = chapters.run_all(entries, stage, parameters, keys, cache, log, timeout, server=server,
                                       last_seconds=last if isinstance(last, dict) else None, staged=staged)
            provenance = book_stage.prepare_stage(stage, entries, parameters, source, warehouse_path, made_from,
                                                  prepared)
            checkpoint("render")
            log("Rendering the book with jupyter-book ...")
            started = time.perf_counter()
            html = render(stage, builder, config.render_cache_path(warehouse_path) / builder, render_server, early)
            book_stage.stamp_provenance(html, provenance)
            book_stage.landing_page(html, yaml.safe_load(config.BOOK_CONFIG_PATH.read_text()).get("title", "The book"))
            timings["render"] = round(time.perf_counter() - started, 2)
            files = ownership.book_files(html)
            stamp = {"book": book_key, "warehouse": warehouse_key, "chapters": keys, "seconds": timings,
                     "provenance": provenance, "files": files, "sha256": ownership.digest_files(html, files)}
            atomic.write_text(html / config.BOOK_STAMP, ownership.stamp_text(stamp))
            checkpoint("publish book")
            atomic.swap_folder(html, published, check_old=lambda old: _nothing_added(old, published))
        finally:
            if early is not None:
                early.stop()  # a failed run's (its cache stays marked in use: the next render is a full one)
            ownership.remove_staging(stage)
        log(f"Published: {published / 'index.html'}")
        return ReportResult(published, reused=False, build=built, timings=timings)
