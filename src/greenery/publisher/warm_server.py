"""Warm start for the chapters: import the heavy libraries once, then fork a process per chapter.

Every chapter runs papermill in a process of its own (its cells run in that process:
greenery.publisher.shell_engine); each would import papermill, IPython, pandas, matplotlib, scipy
and DuckDB again (about two CPU seconds a chapter, most of a small chapter's cost). Instead `greenery report` starts one
server that imports them, then forks: a fork starts with everything imported and nothing else
shared (the server never opens a database or starts a thread of its own before forking).

Who asks for a fork is a small client (greenery/publisher/warm_client.py, standard library only):
the chapter runner's command runs it. It hands the server its
standard streams, relays signals to the fork, and exits with the fork's exit status, so to
whoever started it the client behaves as the process it stands for. A fork dies with the server,
and the server kills a fork whose client is gone (even killed with SIGKILL): stopping the
server's process tree (`Server.stop`, on any exit of `greenery report`) stops every fork.

The chapters' server imports in two stages, so that chapter work starts before its second of imports is
over: the base every chapter needs (`_preload_base`), then a fork of it, the second stage, imports scipy.stats,
statsmodels and the kit's statistics modules (`_preload_statistics`, STATISTICS). Meanwhile the base server
forks the light chapters (those importing no STATISTICS module: chapter_runs.light) at a socket of its own.

`python -m greenery.publisher.warm_server SOCKET [ROLE]` is the server (ROLE: chapters, the default, or render): it
prints `ready` once it accepts forks of every chapter (at SOCKET); the chapters' server prints `ready: base`
before it, once it accepts forks of light chapters (at `base_socket(SOCKET)`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

from greenery.publisher.warm_client import SOCKET_ENV

READY = "ready"  # every chapter can be forked (at Server.socket)
BASE_READY = "ready: base"  # a light chapter can be forked (at base_socket), the statistics still import
# What the base server says when its second stage ended (followed by its exit code, negative for a signal, as
# Popen's), before it closes its output: whoever waits for READY learns at once that it will never come.
STAGE_ENDED = "second stage ended:"
BASE_SOCKET = "b"
# The kit's modules that import scipy.stats or statsmodels when imported: the second stage imports them
# (`_preload_statistics`); a chapter importing none of them is forked as soon as the first stage is done.
STATISTICS = ("indicators", "survival", "trends")


def _how(code: int) -> str:
    """How a process ended, from its exit code as Popen has it (negative: the signal that killed it, which no
    process exits with)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


class Server:
    """The warm server's process: started early (it imports while the warehouse is built), waited for
    when the first chapter needs it, stopped with every process it forked.

    `role` is what it imports before it forks: "chapters" (everything a chapter imports), or "render"
    (Sphinx and its extensions, for the render: a server of its own, started once the build has left a
    core idle, so that its second of imports is done by the time the chapters end and never competes
    with them or holds up a chapter's fork)."""

    START_SECONDS = 300  # importing takes seconds; a server still importing after this is stuck

    ROLES = ("chapters", "render")
    NAMES = {"chapters": "chapters'", "render": "render's"}  # as its errors name it

    def __init__(self, role: str = "chapters") -> None:
        if role not in self.ROLES:
            raise ValueError(f"no such warm server role: {role}")
        self.role = role
        self.process: subprocess.Popen | None = None
        self.folder: Path | None = None
        self.said: list[str] = []  # the lines the server printed, each the one expected (EXPECTED)
        self._unread = b""  # what it printed after its last end of line
        self._started = 0.0

    # What each server prints, in order: nothing else, and nothing after the last (but STAGE_ENDED).
    EXPECTED = {"chapters": (BASE_READY, READY), "render": (READY,)}

    @property
    def ready(self) -> bool:
        """Whether every chapter (or the render) can be forked: the server said READY."""
        return READY in self.said

    def start(self) -> None:
        from greenery.publisher.processes import die_with_parent

        if self.process is None:
            self.folder = self._new_folder()
            self._started, self.said, self._unread = time.monotonic(), [], b""
            with (self.folder / "server.err").open("w") as handle:
                self.process = subprocess.Popen([sys.executable, "-m", "greenery.publisher.warm_server",
                                                 str(self.socket), self.role],
                                                stdout=subprocess.PIPE, stderr=handle, stdin=subprocess.DEVNULL,
                                                preexec_fn=die_with_parent)

    SOCKET_BYTES = 107  # the longest path of a Unix socket (sun_path holds 108 bytes with the final NUL)

    def _new_folder(self) -> Path:
        """A new private folder (0700) for this server's socket, in $TMPDIR, else in /tmp when
        $TMPDIR's path is too long for a socket's path; a ReportError (one line) when neither is usable."""
        from greenery.errors import ReportError
        from greenery.outputs.leftovers import mark, remove_abandoned

        for parent in (None, "/tmp"):
            remove_abandoned(Path(parent or tempfile.gettempdir()), "greenery-warm-")  # of runs killed by SIGKILL
            try:
                folder = Path(tempfile.mkdtemp(prefix="greenery-warm-", dir=parent))
            except OSError:
                continue
            if len(os.fsencode(folder / "s")) <= self.SOCKET_BYTES:  # the base socket's name is as long
                mark(folder)  # whose it is, for the next run's remove_abandoned should this one be killed
                return folder
            folder.rmdir()
        raise ReportError(f"no temporary folder with a path short enough for the {self.NAMES[self.role]} warm server's "
                          f"socket ({self.SOCKET_BYTES} bytes at most): set TMPDIR to a shorter folder")

    @property
    def socket(self) -> Path:
        return self.folder / "s"

    def environment(self) -> dict[str, str]:
        """The environment of a client (`client_command`), once the server accepts forks of every chapter."""
        self._wait_for(READY)
        return {**os.environ, SOCKET_ENV: str(self.socket)}

    def base_environment(self) -> dict[str, str]:
        """The environment of a client of a light chapter (one that imports none of the kit's statistics), once
        the chapters' server accepts forks of one: at the base socket while the statistics still import, at
        the socket of every chapter once they are in (its forks have everything)."""
        if self.role != "chapters":
            return self.environment()
        self._wait_for(BASE_READY)
        # What was read of the server (the runner asks `complete` first when a chapter needs the second stage):
        # never a wait for it, nor its failure, when no chapter needs it
        return self.environment() if self.ready else {**os.environ, SOCKET_ENV: base_socket(self.socket)}

    def complete(self) -> bool:
        """Whether every chapter can be forked now (never waits: the runner asks between chapters); a
        ReportError as `environment` would raise it once the server has failed or its deadline has passed."""
        return self._wait_for(READY, block=False)

    def said_ready(self) -> bool:
        """Whether the server has said READY, reading what it printed since: never waits, never fails (for a run
        whose chapters are all light: the second stage's lateness or end is no failure of theirs). What else it
        said is left for `lost` to find: a STAGE_ENDED line is kept unread."""
        if self.ready or self.process is None:
            return self.ready
        fd = self.process.stdout.fileno()
        while not self.ready and b"\n" not in self._unread and select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 1 << 12)
            if not chunk:
                break
            self._unread += chunk
            while b"\n" in self._unread:
                text, rest = self._unread.split(b"\n", 1)
                said = text.decode(errors="replace").strip()
                expected = self.EXPECTED[self.role]
                if len(self.said) >= len(expected) or said != expected[len(self.said)]:
                    return False  # STAGE_ENDED, or something else: kept for `lost`
                self.said.append(said)
                self._unread = rest
        return self.ready

    def waking(self) -> list:
        """What to wait on beside the chapters until the server is complete: its output (empty once it is)."""
        return [] if self.process is None or self.ready else [self.process.stdout]

    def _wait_for(self, line: str, block: bool = True) -> bool:
        """Whether the server has said `line`, reading what it printed since; with `block`, waiting for it
        until START_SECONDS after the server's start (what it said before then counts, however late it is
        read). Read from the pipe itself, not with readline: output without an end of line makes the pipe
        readable, and readline would then wait for the rest with no deadline. A server that ended, said
        something it should not have (an import printing: EXPECTED), lost its second stage, or did not say
        `line` in time is a ReportError (one line), and is stopped."""
        self.start()
        fd = self.process.stdout.fileno()
        while line not in self.said:
            left = max(0.0, self._started + self.START_SECONDS - time.monotonic())
            if not select.select([fd], [], [], left if block else 0)[0]:
                if left > 0 and not block:
                    return False  # not said yet, and not waited for
                if left > 0:
                    continue
                self._fail(f"did not start within {self.START_SECONDS:g} s")
            chunk = os.read(fd, 1 << 12)
            if not chunk:  # its output closed: it ended
                self._fail(self._not_ready())
            *lines, self._unread = (self._unread + chunk).split(b"\n")
            for text in lines:
                said = text.decode(errors="replace").strip()
                if said.startswith(STAGE_ENDED):
                    self._fail(self._stage_ended(said.removeprefix(STAGE_ENDED)))
                expected = self.EXPECTED[self.role]
                if len(self.said) >= len(expected) or said != expected[len(self.said)]:
                    self._fail(self._not_ready())
                self.said.append(said)
        return True

    def _fail(self, what: str) -> None:
        """Stop the server and raise its one-line error: `what` happened, then the last line of its stderr.
        What it wrote on its output is not repeated: text of unknown origin."""
        from greenery.errors import ReportError

        details = (self.folder / "server.err").read_text(errors="replace").strip().splitlines()
        self.stop()
        raise ReportError(f"the {self.NAMES[self.role]} warm server (greenery.publisher.warm_server) {what}"
                          + (f": {details[-1]}" if details else ""))

    def _stage_ended(self, code: str) -> str:
        """Why a server whose second stage ended (the base server said so, with its exit code) is not ready."""
        try:
            how = _how(int(code))
        except ValueError:  # not what the base server writes
            return self._not_ready()
        return f"stopped before it was ready: its second stage (scipy.stats, statsmodels) ended, {how}"

    def _not_ready(self) -> str:
        """Why a server that answered did not say it was ready: it stopped (with its exit status, or the signal
        that killed it: Popen's negative status is no exit status), or, still running a moment later, it wrote
        something else first."""
        try:
            status = self.process.wait(1)  # its output closes as it ends: a moment at most
        except subprocess.TimeoutExpired:
            return "wrote something other than that it was ready"
        return f"stopped before it was ready, {_how(status)}"

    LOST_SECONDS = 2.0  # the base server says its second stage ended within a tenth of a second of it

    def lost(self) -> str | None:
        """Why the server can no longer fork a chapter, or None: asked when a chapter's process ended with no
        error of its own (its client exits 1, silent, when the fork it stands for died with the server). The
        base server ended (with how), or, once it said READY, the second stage did: its socket refuses, and
        the base server says how (STAGE_ENDED) within LOST_SECONDS. Never waits on a server that still forks.
        The text follows "which": the caller names the chapter and the server."""
        if self.process is None:
            return None
        if self.process.poll() is not None:  # its forks die with it (die_with_parent)
            return f"stopped, {_how(self.process.returncode)}"
        if not self.ready:  # a light chapter's server is the base server, running
            return None
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)  # a full backlog: taken as a server that forks
        try:
            probe.connect(str(self.socket))
            return None  # it accepts: the chapter's end is the chapter's own (the server reads an empty request)
        except TimeoutError:
            return None
        except OSError:
            pass  # nobody listens there any more
        finally:
            probe.close()
        fd, deadline = self.process.stdout.fileno(), time.monotonic() + self.LOST_SECONDS
        chunk = b""  # what said_ready left unread is read first
        while chunk is not None:
            *lines, self._unread = (self._unread + chunk).split(b"\n")
            for text in lines:
                said = text.decode(errors="replace").strip()
                with contextlib.suppress(ValueError):
                    if said.startswith(STAGE_ENDED):
                        return ("lost its second stage (scipy.stats, statsmodels), "
                                f"{_how(int(said.removeprefix(STAGE_ENDED)))}")
            chunk = (os.read(fd, 1 << 12) or None) if select.select(
                [fd], [], [], max(0.0, deadline - time.monotonic()))[0] else None
        return "lost its second stage (scipy.stats, statsmodels)"

    def accepting(self) -> bool:
        """Whether the server has said something or ended (its output is readable): never waits. For a
        one-stage server (the render's, the only caller) `environment` then returns at once; a chapters'
        server's first line is only that its base stage is ready (`complete` says when the second is)."""
        if self.ready or self.process is None:
            return self.ready
        return bool(select.select([self.process.stdout], [], [], 0)[0])

    def stop(self) -> None:
        from greenery.publisher.processes import GRACE_SECONDS, kill_tree

        if self.process is not None:
            kill_tree(self.process.pid)  # its second stage and every fork with it
            with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILLed by now: only a hung kernel waits
                self.process.wait(GRACE_SECONDS)
            self.process.stdout.close()
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_) -> None:
        self.stop()


# Imported by a library, used by no chapter, so never imported in a chapter's process: statsmodels (for its
# Cox model, greenery.chapter_kit.survival) imports formulaic, and with it narwhals, for formulas, a tenth of
# the server's imports (0.2 CPU s before the first chapter can start). Its import is optional (a None in
# sys.modules makes it fail as if it were not installed): statsmodels then offers patsy's formulas. Unless
# statsmodels is told to use it ($SM_FORMULA_ENGINE=formulaic): it then refuses to load without it.
UNUSED = ("formulaic",)


def _unused() -> tuple[str, ...]:
    return () if os.environ.get("SM_FORMULA_ENGINE") == "formulaic" else UNUSED


def _preload() -> None:
    """Everything a chapter imports (both stages), as a server that forks only when done would."""
    _preload_base()
    _preload_statistics()


def _preload_base() -> None:
    """What every chapter imports, imported once here (never used: no thread, no state): the first stage.
    The chapters that need nothing more (none of the kit's STATISTICS) are forked as soon as it is done,
    while the second stage imports the statistics' libraries (`_preload_statistics`)."""
    for name in _unused():
        sys.modules.setdefault(name, None)
    # As a kernel would set it before matplotlib is imported; chapters draw with the inline backend.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import bdb  # noqa: F401  (IPython's debugger, on a new shell's first cell)
    import encodings.utf_8_sig  # noqa: F401  (the CSV downloads)

    import ipykernel.ipkernel  # noqa: F401  (the language a notebook records: shell_engine)
    import IPython.core.application  # noqa: F401  (these seven: what a new shell imports on first use)
    import IPython.core.completerlib  # noqa: F401
    import IPython.core.crashhandler  # noqa: F401
    import IPython.core.logger  # noqa: F401
    import IPython.core.magics.ast_mod  # noqa: F401
    import IPython.core.magics.execution  # noqa: F401
    import IPython.core.oinspect  # noqa: F401
    import jupytext  # noqa: F401
    import matplotlib.backends.backend_svg  # noqa: F401  (charts are SVG)
    import matplotlib.pyplot  # noqa: F401
    import matplotlib_inline.backend_inline  # noqa: F401
    import myst_nb.ext.glue  # noqa: F401  (book.glue imports it on first use)
    import nbformat  # noqa: F401
    import pandas.core.methods.to_dict  # noqa: F401
    import pandas.io.formats.csvs  # noqa: F401
    import pandas.io.formats.style  # noqa: F401  (tables are styled: jinja2 and its templates)
    import papermill  # noqa: F401

    # The kit but its statistics (book: pandas, DuckDB, the analyses; the rest is small, but each fork
    # would import it again)
    import greenery.chapter_kit.book  # noqa: F401
    import greenery.chapter_kit.contents  # noqa: F401
    import greenery.chapter_kit.delivery  # noqa: F401
    import greenery.chapter_kit.headlines  # noqa: F401
    import greenery.chapter_kit.lineage  # noqa: F401
    import greenery.chapter_kit.models  # noqa: F401
    import greenery.chapter_kit.shared  # noqa: F401
    import greenery.chapter_kit.traffic  # noqa: F401
    import greenery.publisher.chapter_process  # noqa: F401
    import greenery.publisher.shell_engine  # noqa: F401

    _first_use()


def _preload_statistics() -> None:
    """The second stage: scipy (its special functions, stats) and statsmodels, with the kit's modules that
    import them, for the chapters that test or fit something."""
    import scipy.special  # noqa: F401  (stats.wilson: every rate's interval)
    import scipy.stats  # noqa: F401

    import greenery.chapter_kit.indicators  # noqa: F401
    import greenery.chapter_kit.survival  # noqa: F401  (statsmodels)
    import greenery.chapter_kit.trends  # noqa: F401


def _frozen(preload) -> None:
    """`preload` with the cycle collector off (it would walk the modules again and again while they load: a
    tenth of the imports' CPU), then everything frozen: no collection, in the server or in a fork, walks
    it again, as each chapter's first full collection did, copying every page that holds one of its objects
    (0.1-0.2 CPU s a chapter). What little garbage the imports left is kept with it."""
    gc.disable()
    try:
        preload()
    finally:
        gc.freeze()
        gc.enable()


def _first_use() -> None:
    """What every chapter's process paid on its first use of a library, paid once here. Each is a cache of
    compiled code that no chapter's output depends on: nbformat's compiled JSON schema (every cell made
    or notebook written is validated against it: 30 ms to compile) and pandas' compiled table templates."""
    import nbformat
    import pandas as pd
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

    nbformat.validate(new_notebook(cells=[new_code_cell("1"), new_markdown_cell("a"), new_raw_cell("b")]))
    pd.DataFrame({"a": [1]}).style.to_html()


def _preload_render() -> None:
    """Sphinx and its extensions, for the render: what the render server imports. Then every object made so
    far is left out of the garbage collector's passes (gc.freeze): none of it is ever garbage, and a render
    forked from here, which makes hundreds of thousands of objects (the pages' trees), would otherwise walk
    them all at each full collection (0.2 CPU s of its 1.6)."""
    from greenery.publisher import book_render

    try:
        book_render.preload()
    finally:
        gc.freeze()


def _run_role(role: str, args: list[str]) -> int:
    """In the fork: become the process the client stands for."""
    if role == "chapter":
        from greenery.publisher import chapter_process

        return chapter_process.child(args)
    if role == "render":  # what `python -m greenery.publisher.book_render ARGS` does
        from greenery.publisher import book_render

        return book_render.main(args)
    print(f"greenery.publisher.warm_server: unknown role {role!r}", file=sys.stderr)
    return 2


def _say_why() -> None:
    """What ended a fork of the server unexpectedly, on its stderr (the server's log): the traceback."""
    import traceback

    traceback.print_exc()


def _end_fork(code: int) -> NoReturn:
    """End a fork of the server: its streams flushed, then gone at once (os._exit), never back into the code
    it was forked from and never through the server's own clean-up."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _fork(connection: socket.socket, listener: socket.socket, others: list[socket.socket],
          descriptors: list[int] = ()) -> int | None:
    """Read one request (role, arguments, working folder, environment and three streams) and fork it."""
    try:
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        request = json.loads(message)
    except (OSError, ValueError):
        return None
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return None
    pid = os.fork()
    if pid == 0:  # the fork: nothing of the server's but its imports
        code = 1
        try:
            from greenery.publisher.processes import die_with_parent

            die_with_parent()
            for sock in (listener, connection, *others):
                sock.close()
            for fd in descriptors:  # the other forks' pidfds
                os.close(fd)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.environ.clear()
            os.environ.update(request["env"])
            os.chdir(request["cwd"])
            code = _run_role(request["role"], request["args"])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:  # noqa: BLE001 - a fork must never return into the server's loop
            _say_why()
        finally:
            _end_fork(code)
    for fd in fds:
        os.close(fd)
    connection.sendall(f"{pid}\n".encode())
    return pid


def _status(wait_status: int) -> int:
    """A fork's exit status as a shell reports it: its exit code, or 128 + the signal that killed it."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def _listen(path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    return listener


def base_socket(path: str | os.PathLike) -> str:
    """Where the chapters' server forks light chapters before it has imported the statistics: beside `path`."""
    return str(Path(path).with_name(BASE_SOCKET))


def serve(path: str, role: str = "chapters") -> None:
    """The render's server imports, then forks at `path`. The chapters' server imports in two stages: once
    every chapter's base is in (`_preload_base`) it forks light chapters at the base socket (`base_socket`)
    and says BASE_READY, while a fork of it, the second stage, imports the statistics
    (`_preload_statistics`), then forks any chapter at `path` and says READY. A chapter forked at the base
    socket that uses a statistics module after all imports it itself: the same code, within the chapter's
    own time limit."""
    if role == "render":
        with contextlib.suppress(Exception):  # the render then imports what it needs itself, and says so
            _preload_render()
        listener = _listen(path)
        print(READY, flush=True)
        _loop(listener)
        return
    _frozen(_preload_base)
    base = _listen(base_socket(path))
    print(BASE_READY, flush=True)
    stage, server = [0], os.getpid()  # the second stage's pid, once forked; the base server's

    def end(received, _frame):  # stopped (Server.stop's SIGTERM, or ^C): the second stage reaped here, not by init
        if stage[0] and os.getpid() == server:  # not in a fork that has not put back its own handlers yet
            with contextlib.suppress(OSError):
                os.kill(stage[0], signal.SIGKILL)
            _reap(stage[0])
        os._exit(128 + received)

    # Held from before the fork until the base server knows its second stage's pid (and the second stage has
    # put back its own handlers): no signal finds either half-way.
    stopping = {signal.SIGTERM, signal.SIGINT}
    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGINT, end)
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    pid = os.fork()
    if pid == 0:  # the second stage: the server of every chapter, the base server's imports and the statistics'
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)
            from greenery.publisher.processes import die_with_parent

            die_with_parent()
            if os.getppid() != server:  # the base server ended before the line above: nobody would stop this one
                return
            base.close()
            _frozen(_preload_statistics)
            listener = _listen(path)
            print(READY, flush=True)
            _loop(listener)
        except BaseException:  # noqa: BLE001 - never return into the base server's code
            _say_why()
        finally:
            _end_fork(code)
    stage[0] = pid
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)
    _loop(base, stage=stage)


def _reap(pid: int, seconds: float = 3.0) -> None:
    """Reap `pid`, a child sent SIGKILL: at once, unless a hung kernel call holds it (then no longer than
    `seconds`, left to init)."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(ChildProcessError):
        while not os.waitpid(pid, os.WNOHANG)[0] and time.monotonic() < deadline:
            time.sleep(0.01)


def _reap_one(stage: list[int] | None) -> tuple[int | None, int, bool]:
    """An ended fork reaped: its pid (None when none has ended), its wait status, and whether it was the second
    stage (`stage`). With a second stage, SIGTERM and SIGINT are held from the wait until its pid, if reaped, is
    forgotten (`stage[0] = 0`, done here): the base server's handler, which kills and reaps the second stage,
    never signals a pid reaped already (the system may have given it to another process)."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT}) if stage else None
    try:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return None, 0, False
        if pid == 0:
            return None, 0, False
        was_stage = bool(stage) and pid == stage[0]
        if was_stage:
            stage[0] = 0
        return pid, wait_status, was_stage
    finally:
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _loop(listener: socket.socket, stage: list[int] | None = None) -> None:
    """Fork each request at `listener` for ever. `stage`: the base server's second stage (its pid in a list,
    set to 0 once it is reaped: its pid may then be another process's); should it end, this server says so
    (STAGE_ENDED, with its exit code) and closes its output, so that whoever waits for its READY learns at
    once that it will never come (and reads why in the server's stderr)."""
    forks: dict[socket.socket, int] = {}  # a client's connection -> the fork it stands for
    waiting: list[socket.socket] = []  # connected, request not read yet
    ended: dict[int, int] = {}  # a fork's pidfd (readable once it has ended) -> its pid
    while True:
        # A fork's end wakes the loop at once (its pidfd), not at the next tenth of a second: its client, and
        # the chapter runner behind it, learn it as soon as it happened.
        readable, _, _ = select.select([listener, *waiting, *forks, *ended], [], [], 0.1)
        for sock in readable:
            if sock is listener:
                waiting.append(listener.accept()[0])
            elif sock in waiting:
                waiting.remove(sock)
                pid = _fork(sock, listener, [*waiting, *forks], list(ended))
                if pid is None:
                    sock.close()
                else:
                    forks[sock] = pid
                    with contextlib.suppress(AttributeError, OSError):  # no pidfd (Linux < 5.3): the tenth
                        ended[os.pidfd_open(pid)] = pid
            elif sock in ended:
                pass  # reaped below
            else:  # a client with a fork running only ever closes its end: it died
                pid = forks.pop(sock)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                sock.close()
        while True:  # reap ended forks and tell their clients how they ended
            pid, wait_status, was_stage = _reap_one(stage)
            if pid is None:
                break
            if was_stage:
                with contextlib.suppress(OSError):
                    os.write(1, f"{STAGE_ENDED} {os.waitstatus_to_exitcode(wait_status)}\n".encode())
                    os.close(1)
                continue
            for fd in [fd for fd, fork in ended.items() if fork == pid]:
                os.close(fd)
                del ended[fd]
            for sock, fork in list(forks.items()):
                if fork == pid:
                    with contextlib.suppress(OSError):
                        sock.sendall(f"{_status(wait_status)}\n".encode())
                    sock.close()
                    del forks[sock]


if __name__ == "__main__":
    serve(sys.argv[1], *sys.argv[2:3])
