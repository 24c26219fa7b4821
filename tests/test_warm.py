"""The warm server: forks stand in for their clients, and none outlives its client or the server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from greenery.errors import ReportError
from greenery.publisher import warm_server as warm
from greenery.publisher.warm_client import SOCKET_ENV, client_command


@pytest.fixture
def server():
    with warm.Server() as running:
        yield running


def full_server(server: warm.Server) -> psutil.Process:
    """The process that forks every chapter: the chapters' server's first fork (it imports the statistics
    while the server itself forks light chapters), or the render's server itself."""
    process = psutil.Process(server.process.pid)
    return process if server.role == "render" else min(process.children(), key=lambda p: p.create_time())


def running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # ended between listing and asking
        return False


def forks(server: warm.Server) -> list[psutil.Process]:
    """The forks of chapters the server has running (once it is complete: the full server's)."""
    return [p for p in full_server(server).children() if running(p)]


def start_chapter(server: warm.Server, tmp_path) -> tuple[subprocess.Popen, psutil.Process]:
    """A chapter forked by the server (its one cell waits a minute), with the client that stands for it."""
    source = tmp_path / "waits.md"
    source.write_text("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
                      "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
                      "```{code-cell} ipython3\nimport time\n\ntime.sleep(60)\n```\n")
    client = subprocess.Popen(client_command("chapter", str(source), str(tmp_path / "waits.ipynb"), "{}", "600"),
                              env=server.environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not forks(server):
        assert time.monotonic() < deadline and client.poll() is None, "no chapter forked"
        time.sleep(0.05)
    [chapter] = forks(server)
    return client, chapter


def gone(process: psutil.Process, within: float = 10) -> bool:
    try:
        process.wait(within)
    except psutil.TimeoutExpired:
        return process.status() == psutil.STATUS_ZOMBIE
    return True


def test_a_signal_to_the_client_reaches_the_fork_and_its_status_comes_back(server, tmp_path):
    client, chapter = start_chapter(server, tmp_path)
    time.sleep(1)  # the fork has set up its own handlers
    client.send_signal(signal.SIGTERM)
    assert client.wait(30) == 128 + signal.SIGTERM
    assert gone(chapter)


def test_a_fork_whose_client_is_killed_is_killed_too(server, tmp_path):
    client, chapter = start_chapter(server, tmp_path)
    client.kill()  # SIGKILL: nothing to relay, the server sees the connection close
    client.wait()
    assert gone(chapter)


def test_stopping_the_server_stops_every_fork_and_removes_its_socket(tmp_path):
    server = warm.Server()
    client, chapter = start_chapter(server, tmp_path)
    folder = server.folder
    server.stop()
    assert gone(chapter)
    assert client.wait(10) != 0  # the fork is gone: the client says so
    assert not folder.exists()


def test_a_server_that_cannot_start_is_one_error_line(monkeypatch):
    monkeypatch.setattr(warm.Server, "START_SECONDS", 0.001)
    with warm.Server() as server, pytest.raises(ReportError, match="did not start within"):
        server.environment()


def _failing_greenery(tmp_path: Path, monkeypatch, code: str) -> None:
    """A greenery first on the server's path whose import runs `code`."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    (tmp_path / "greenery").mkdir()
    (tmp_path / "greenery" / "__init__.py").write_text(code)


def _start_failure(tmp_path: Path, monkeypatch, code: str) -> tuple[str, warm.Server]:
    """The one-line error of a render server started with `_failing_greenery(code)`, and the server after it."""
    _failing_greenery(tmp_path, monkeypatch, code)
    with warm.Server("render") as server, pytest.raises(ReportError) as failure:
        server.environment()
    return str(failure.value), server


def test_a_server_that_dies_while_importing_says_so_not_that_it_timed_out(monkeypatch, tmp_path):
    """A server that ends before it is ready (here: its role's imports fail at once) is not reported as
    one that took too long: the error says it stopped, with its exit status and the last line it wrote."""
    message, _ = _start_failure(tmp_path, monkeypatch, "raise SystemExit('greenery cannot be imported here')\n")
    assert "render's warm server" in message and "stopped before it was ready, exit status 1" in message
    assert "did not start within" not in message and message.endswith(": greenery cannot be imported here")
    assert "\n" not in message


def test_a_server_killed_while_importing_names_the_signal_not_a_negative_exit_status(monkeypatch, tmp_path):
    """A server killed by a signal before it is ready (the kernel's OOM killer, a crashing extension: here it
    kills itself with SIGKILL) is reported with that signal, not as "exit status -9", which no process exits
    with."""
    message, _ = _start_failure(tmp_path, monkeypatch, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert message.endswith("render's warm server (greenery.publisher.warm_server) stopped before it was ready, "
                            "killed by SIGKILL"), message
    assert "-9" not in message and "\n" not in message


def test_a_server_that_writes_something_else_is_not_said_to_have_stopped(monkeypatch, tmp_path):
    """A server whose output's first line is not `ready` (here an import prints a line, then the server would
    carry on importing) has not stopped: the error says it wrote something else first, without repeating
    what (text of unknown origin), and the server is stopped all the same."""
    message, server = _start_failure(tmp_path, monkeypatch, "import time\nprint('hello from an import', flush=True)\n"
                                                            "time.sleep(60)\n")
    assert message.endswith("render's warm server (greenery.publisher.warm_server) wrote something other than "
                            "that it was ready"), message
    assert "stopped" not in message and "hello" not in message
    assert server.process is None


def test_a_server_that_writes_half_a_line_is_still_waited_for_only_until_the_deadline(monkeypatch, tmp_path):
    """Output with no end of line (an import printing a progress mark, then carrying on) makes the server's
    output readable without a line to read: waiting for the line is bounded by START_SECONDS all the same,
    not by the server's next line or its end (here a minute away)."""
    monkeypatch.setattr(warm.Server, "START_SECONDS", 2)
    _failing_greenery(tmp_path, monkeypatch, "import sys, time\nsys.stdout.write('50 %'); sys.stdout.flush()\n"
                                             "time.sleep(60)\n")
    started = time.monotonic()
    with warm.Server("render") as server, pytest.raises(ReportError, match="did not start within 2 s$"):
        server.environment()
    assert time.monotonic() - started < 30


def test_no_folder_for_the_render_servers_socket_names_the_render_server(monkeypatch):
    """Neither $TMPDIR nor /tmp gives a folder: the error names the server that needed one."""
    def refused(*args, **kwargs):
        raise PermissionError("no")

    monkeypatch.setattr(warm.tempfile, "mkdtemp", refused)
    with warm.Server("render") as server, pytest.raises(ReportError) as failure:
        server.start()
    assert str(failure.value).startswith("no temporary folder with a path short enough for the render's warm server's")


def test_a_long_temporary_folder_path_is_not_a_socket_path(tmp_path, monkeypatch):
    """A $TMPDIR whose path leaves no room for a socket's name (108 bytes at most): the server's folder
    goes to /tmp instead, and forks still run (the attacker's 104-character TMPDIR exited 4)."""
    deep = tmp_path / ("d" * (110 - len(str(tmp_path))))
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(warm.tempfile, "tempdir", None)  # tempfile caches $TMPDIR on first use
    with warm.Server() as server:
        assert len(str(server.environment()[SOCKET_ENV])) <= warm.Server.SOCKET_BYTES
        assert server.folder.parent == Path("/tmp") and oct(server.folder.stat().st_mode)[-3:] == "700"
        client, chapter = start_chapter(server, tmp_path)
        client.kill()
        client.wait()
        assert gone(chapter)
    assert not list(deep.iterdir())  # the folder it could not use was removed


def _pidfds(pid: int) -> int:
    return sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if "pidfd" in fd.readlink().as_posix())


def test_the_server_watches_each_fork_for_its_end_and_lets_go_of_it(server, tmp_path):
    """A fork's end wakes the server at once (its pidfd is in the server's select), so the chapter runner
    learns of it without waiting for the loop's next round; the pidfd is closed once the fork is reaped."""
    client, chapter = start_chapter(server, tmp_path)
    full = full_server(server).pid
    assert _pidfds(full) == 1
    chapter.kill()
    assert client.wait(30) == 128 + signal.SIGKILL
    deadline = time.monotonic() + 10
    while _pidfds(full) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pidfds(full) == 0


def test_the_runner_wakes_when_a_chapter_ends():
    from greenery.publisher.chapter_runs import _wait_for_one

    process = subprocess.Popen(["sleep", "0.3"])
    _wait_for_one({"notebooks/x": (process, time.monotonic(), Path("x"))}, timeout=600)
    assert process.poll() == 0  # it returned because the process ended, not after a fixed nap
    stuck = subprocess.Popen(["sleep", "60"])
    try:
        _wait_for_one({"notebooks/x": (stuck, time.monotonic() - 600, Path("x"))}, timeout=600.2)
        assert stuck.poll() is None  # its time limit came first: the runner stops it
    finally:
        stuck.kill()
        stuck.wait()


FORK_IMPORTS = """
import os, sys
from pathlib import Path
from greenery.publisher import warm_server
warm_server._preload()
from greenery.publisher import chapter_process
source = Path(sys.argv[1])
pid = os.fork()
if pid == 0:
    before = set(sys.modules)
    chapter_process.execute(source, source.with_suffix(".ipynb"), {})
    print(" ".join(sorted(set(sys.modules) - before)))
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_fork_imports_nothing_a_chapter_needs(tmp_path):
    """What a chapter uses (the kit, glue, a styled table with its CSV, an SVG chart, a new shell) is imported
    by the server before it forks: no fork imports it again."""
    source = tmp_path / "chapter.md"
    source.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\nkernelspec:\n"
        "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n# A chapter\n\n"
        "```{code-cell} ipython3\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
        "from greenery.chapter_kit import book\n\nbook.setup()\n"
        "book.glue('answer', '42')\nbook.table(pd.DataFrame({'a': [1, 2]}), caption='A table', csv=pd.DataFrame({'a': [1]}))\n"
        "plt.plot([1, 2], [3, 4])\nplt.show()\n```\n")
    done = subprocess.run([sys.executable, "-c", FORK_IMPORTS, str(source)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == []


def test_the_folder_of_a_report_killed_with_sigkill_is_removed_by_the_next_server(tmp_path, monkeypatch):
    """The attacker's review: `kill -9` of a report left its greenery-warm-* folder in the temporary folder
    for ever (no clean-up runs then). Its marker names a process that is gone: the next server removes it."""
    temporary = Path(tempfile.mkdtemp(prefix="g-", dir="/tmp"))  # short: socket paths
    try:
        killed = subprocess.run([sys.executable, "-c", "import os, signal\nfrom greenery.publisher.warm_server import "
                                 "Server\nServer().start()\nos.kill(os.getpid(), signal.SIGKILL)"],
                                env={**os.environ, "TMPDIR": str(temporary)}, timeout=60)
        assert killed.returncode == -signal.SIGKILL
        [left] = temporary.iterdir()
        assert left.name.startswith("greenery-warm-")
        monkeypatch.setattr(warm.tempfile, "tempdir", str(temporary))
        folder = warm.Server()._new_folder()
        assert list(temporary.iterdir()) == [folder]  # the killed run's is gone
        another = warm.Server()._new_folder()  # while this process, which made `folder`, runs: `folder` is kept
        assert sorted(temporary.iterdir()) == sorted([folder, another])
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


UNUSED_IMPORTS = """
import sys
from greenery.publisher import warm_server
warm_server._preload()
from greenery.chapter_kit import survival
ratio = survival.hazard_ratio([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 0, 1, 1, 0, 1, 1], [1, 0, 1, 0, 1, 0, 1, 0])
print(sorted(name for name in ("formulaic", "narwhals") if sys.modules.get(name) is not None), ratio[0] > 0)
"""


def test_the_server_imports_no_formula_library_and_the_cox_model_still_fits():
    """statsmodels imports formulaic (and narwhals) for formulas no chapter writes: the server never
    imports them (a tenth of its imports), and the Cox model the chapters fit works without them."""
    done = subprocess.run([sys.executable, "-c", UNUSED_IMPORTS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]", "True"]


FROZEN = """
import gc
from greenery.publisher import warm_server
warm_server._frozen(warm_server._preload_base)
base = gc.get_freeze_count()
warm_server._frozen(warm_server._preload_statistics)  # as the second stage does, after the fork
print(gc.isenabled(), base > 100_000, gc.get_freeze_count() > base, sum(gc.get_count()) < 1_000)
"""


def test_what_the_server_imported_is_frozen_for_the_collector():
    """The server's imports (hundreds of thousands of objects), both stages', are frozen: a chapter's
    collections never walk them; the collector is on again for what a chapter makes."""
    done = subprocess.run([sys.executable, "-c", FROZEN], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "True", "True"]


def test_a_server_told_to_give_statsmodels_formulaic_s_formulas_imports_it():
    """$SM_FORMULA_ENGINE=formulaic: statsmodels refuses to load without formulaic (a RuntimeError on import),
    so the server, which imports statsmodels for the Cox model, leaves formulaic importable then."""
    done = subprocess.run([sys.executable, "-c", UNUSED_IMPORTS], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SM_FORMULA_ENGINE": "formulaic"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["['formulaic',", "'narwhals']", "True"]


def chapter_source(path: Path, *cells: str) -> Path:
    """A chapter (jupytext MyST) of the given code cells."""
    path.write_text("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
                    "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n# A chapter\n\n"
                    + "".join(f"```{{code-cell}} ipython3\n{cell}\n```\n\n" for cell in cells))
    return path


# Whether the server had imported scipy.stats when it forked the chapter, then a test the kit's stats runs
# (scipy.stats imported on first use in a fork that lacked it): the same p-value either way.
TESTS = ("import sys\nprint('scipy.stats' in sys.modules, 'statsmodels' in sys.modules)",
         "from greenery.chapter_kit import stats\nprint(stats.independence([3, 9, 1], [10, 12, 11]), "
         "stats.wilson(3, 10), stats.detectable_difference(50, 60, 0.3))")


def outputs(notebook: Path) -> list[str]:
    import nbformat

    return [output.get("text", "") for cell in nbformat.read(notebook, as_version=4).cells
            for output in cell.get("outputs", [])]


def test_a_light_chapter_is_forked_before_the_statistics_are_imported_and_shows_the_same(server, tmp_path):
    """At the base socket (the server's first stage) a chapter starts without scipy.stats or statsmodels; one
    that uses them after all imports them itself, and shows what a fork of the complete server shows."""
    source = chapter_source(tmp_path / "tests.md", *TESTS)
    shown = {}
    for name, env in (("base", server.base_environment()), ("complete", server.environment())):
        assert env[SOCKET_ENV].endswith("/b" if name == "base" else "/s")
        done = subprocess.run(client_command("chapter", str(source), str(tmp_path / f"{name}.ipynb"), "{}", "600"),
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        shown[name] = outputs(tmp_path / f"{name}.ipynb")
    assert shown["base"][0] == "False False\n"  # forked before the statistics' stage
    assert shown["complete"][0] == "True True\n"
    assert shown["base"][1] == shown["complete"][1]
    assert "permutation" in shown["base"][1]  # the test that needs scipy.stats' permutation test did run
    assert server.base_environment()[SOCKET_ENV].endswith("/s")  # once complete, every chapter forks there


def test_the_server_s_first_stage_imports_no_statistics():
    done = subprocess.run([sys.executable, "-c", "import sys\nfrom greenery.publisher import warm_server\n"
                           "warm_server._preload_base()\nprint(sorted(m for m in sys.modules if m.startswith("
                           "('scipy.stats', 'statsmodels', 'greenery.chapter_kit.indicators', "
                           "'greenery.chapter_kit.survival', 'greenery.chapter_kit.trends'))))"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def _failing_statsmodels(tmp_path: Path, monkeypatch, code: str) -> None:
    """A statsmodels first on the servers' path whose import runs `code`: only the second stage imports it."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    (tmp_path / "statsmodels").mkdir(parents=True)
    (tmp_path / "statsmodels" / "__init__.py").write_text(code)


def _second_stage_failure(tmp_path: Path, monkeypatch, code: str) -> tuple[str, float, warm.Server]:
    """The chapters' server with `_failing_statsmodels(code)`: light chapters can be forked (its base stage is
    ready), then its one-line error once every chapter is waited for, how long that wait took, the server."""
    _failing_statsmodels(tmp_path, monkeypatch, code)
    with warm.Server() as server:
        assert server.base_environment()[warm.SOCKET_ENV].endswith("/b")
        started = time.monotonic()
        with pytest.raises(ReportError) as failure:
            server.environment()
    return str(failure.value), time.monotonic() - started, server


def test_a_second_stage_that_fails_is_one_error_line_at_once(tmp_path, monkeypatch):
    """The statistics' import fails: the base server says its second stage ended (with the exit status) and
    closes its output, so the wait for the complete server ends there, with the failure's last line, not
    at START_SECONDS; both stages are stopped."""
    monkeypatch.setattr(warm.Server, "START_SECONDS", 600)
    message, waited, server = _second_stage_failure(tmp_path, monkeypatch, "raise ImportError('no statistics here')\n")
    assert message == ("the chapters' warm server (greenery.publisher.warm_server) stopped before it was ready: its "
                       "second stage (scipy.stats, statsmodels) ended, exit status 1: ImportError: no statistics here")
    assert waited < 60 and server.process is None and server.folder is None


def test_a_second_stage_killed_names_the_signal(tmp_path, monkeypatch):
    message, _, _ = _second_stage_failure(tmp_path, monkeypatch, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert message.endswith("its second stage (scipy.stats, statsmodels) ended, killed by SIGKILL"), message


def test_the_runner_stops_at_a_failed_second_stage_with_its_error(tmp_path, monkeypatch):
    """A light chapter runs from the base stage while the second stage fails: the runner reports the
    server's error (not a chapter's), and the heavy chapter never starts."""
    from greenery.publisher import chapter_runs

    _failing_statsmodels(tmp_path / "path", monkeypatch, "raise ImportError('no statistics here')\n")
    heavy = chapter_source(tmp_path / "heavy.md", "from greenery.chapter_kit import survival")
    light = chapter_source(tmp_path / "light.md", "import time\ntime.sleep(2)")
    stage = tmp_path / "stage"
    stage.mkdir()
    entries = [str(heavy.with_suffix("")), str(light.with_suffix(""))]
    logged = []
    with warm.Server() as server, pytest.raises(ReportError, match="second stage .* ended, exit status 1: "
                                                                  "ImportError: no statistics here$"):
        chapter_runs.run_all(entries, stage, {e: {} for e in entries}, {e: e[-5:] for e in entries},
                             chapter_runs.ChapterCache(tmp_path / "cache"), logged.append, workers=2, server=server)
    assert not (stage / f"{entries[0]}.ipynb").exists()
    assert server.process is None


def test_what_the_server_said_before_its_deadline_counts_when_read_after_it(monkeypatch):
    """START_SECONDS bounds the server's start, not how late the runner reads what it said: a chapters'
    server that said both its lines in time is ready when first asked after the deadline (the warehouse's
    build took longer), and one that said only the first fails then, without waiting, when a chapter needs it
    (`complete`: a light chapter is still forked from the base server)."""
    for printed, complete in ((f"{warm.BASE_READY}\n{warm.READY}\n", True), (f"{warm.BASE_READY}\n", False)):
        with warm.Server() as server:
            server.start()
            server.process.stdout.close()  # in its place, a server's output with these lines, still open
            read, write = os.pipe()
            os.write(write, printed.encode())
            server.process.stdout = os.fdopen(read, "rb")
            server._started -= warm.Server.START_SECONDS + 1
            started = time.monotonic()
            try:
                if complete:
                    assert server.complete() and server.environment()[SOCKET_ENV].endswith("/s")
                else:  # a light chapter is still forked from the base server (no chapter of the run may need more)
                    assert server.base_environment()[SOCKET_ENV].endswith("/b")
                    with pytest.raises(ReportError, match="did not start within 300 s$"):
                        server.complete()  # said, but READY is overdue: the whole server failed
            finally:
                os.close(write)
            assert time.monotonic() - started < 5


def test_stopping_the_server_reaps_its_second_stage(tmp_path):
    """The statistics' server is the base server's child: on SIGTERM (Server.stop), the base server kills and
    reaps it before it ends itself (else it is left a zombie of the system's init, which may reap it seconds
    later: stopping the servers waited for it)."""
    server = warm.Server()
    try:
        server.environment()
        full = full_server(server)
        server.process.terminate()  # the base server alone, as the first of Server.stop's signals
        server.process.wait(60)
        assert not psutil.pid_exists(full.pid)  # gone, not a zombie, by the time the base server has ended
    finally:
        server.stop()


def test_an_interrupt_reaps_the_second_stage_too(tmp_path):
    """^C reaches every process of the report (one process group): the base server reaps its second stage
    then too, while it still imports."""
    server = warm.Server()
    try:
        server.base_environment()
        deadline = time.monotonic() + 60
        while not psutil.Process(server.process.pid).children():  # forked just after it said BASE_READY
            assert time.monotonic() < deadline
            time.sleep(0.01)
        full = full_server(server)
        assert not server.complete()  # still importing the statistics
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(60) == 128 + signal.SIGINT
        assert not psutil.pid_exists(full.pid)
    finally:
        server.stop()


def test_light_chapters_are_those_importing_no_statistics_module(tmp_path):
    from greenery.publisher.chapter_runs import light

    cases = {"plain": "from greenery.chapter_kit import analyses, book  # the tiles",
             "stats": "from greenery.chapter_kit import book, stats",  # scipy only on first use: light
             "listed": "from greenery.chapter_kit import (\n    book,\n    survival,\n)",
             "dotted": "from greenery.chapter_kit.trends import fit",
             "module": "import greenery.chapter_kit.indicators as ind"}
    found = {name: light(str(chapter_source(tmp_path / f"{name}.md", cell)).removesuffix(".md"))
             for name, cell in cases.items()}
    assert found == {"plain": True, "stats": True, "listed": False, "dotted": False, "module": False}
    assert light("notebooks/summary") and not light("notebooks/repeat_indicators")


def test_the_runner_forks_a_light_chapter_while_the_statistics_import(tmp_path, monkeypatch):
    """The server is held in its first stage until the light chapter has ended: the runner starts the light
    chapter first (from the base server: no scipy.stats in it), though the heavy one is listed first and is
    the longer, and the heavy one once the server is complete; both show what they would have."""
    from greenery.publisher import chapter_runs

    monkeypatch.setattr(chapter_runs, "expected_seconds", lambda entry, last: 10 if "heavy" in entry else 1)
    heavy = chapter_source(tmp_path / "heavy.md", "from greenery.chapter_kit import survival", *TESTS)
    light = chapter_source(tmp_path / "light.md", "from greenery.chapter_kit import book", *TESTS)
    stage = tmp_path / "stage"
    stage.mkdir()
    entries = [str(heavy.with_suffix("")), str(light.with_suffix(""))]

    class Held(warm.Server):
        def complete(self) -> bool:  # held until the light chapter has been staged
            return (stage / f"{entries[1]}.ipynb").is_file() and super().complete()

        def waking(self) -> list:
            return []

    logged = []
    with Held() as server:
        chapter_runs.run_all(entries, stage, {e: {} for e in entries}, {e: e[-5:] for e in entries},
                             chapter_runs.ChapterCache(tmp_path / "cache"), logged.append, workers=2, server=server)
    assert [line.split("]")[1].split()[0] for line in logged] == ["light.md", "heavy.md"]
    light_shows, heavy_shows = (outputs(stage / f"{e}.ipynb") for e in (entries[1], entries[0]))
    assert light_shows[0] == "False False\n" and heavy_shows[0] == "True True\n"
    assert light_shows[1] == heavy_shows[1]


def test_a_stop_signal_during_the_second_stage_s_reaping_finds_its_pid_forgotten(monkeypatch):
    """warm_server._reap_one holds SIGTERM from the wait until the second stage's pid, reaped, is forgotten: a
    SIGTERM arriving as the pid is reaped is handled after, and finds 0 (the base server's handler kills the
    pid it finds: once reaped, the system may have given it to another process). Without the hold, the handler
    ran at once and found the reaped pid. The signal mask is put back as it was."""
    child = os.fork()
    if child == 0:
        os._exit(3)
    os.waitpid(child, 0)  # reaped here: _reap_one's wait below is made to report it, and a SIGTERM with it
    stage, seen = [child], []

    def wait_and_signal(pid, options):  # to this thread: the base server has no other, pytest may
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        return child, 3 << 8

    monkeypatch.setattr(warm.os, "waitpid", wait_and_signal)
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append(stage[0]))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    try:
        assert warm._reap_one(stage) == (child, 3 << 8, True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [0] and stage == [0]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == mask


@pytest.mark.parametrize("killed,reason", [
    ("os.getppid()", "lost its second stage (scipy.stats, statsmodels), killed by SIGKILL"),
    ("psutil.Process(os.getppid()).ppid()", "stopped, killed by SIGKILL")])
def test_a_chapter_whose_server_is_killed_is_reported_as_the_server_s_end_not_the_chapter_s(
        tmp_path, killed, reason):
    """A chapter of the complete server (a fork of its second stage) whose server is killed under it (the
    second stage, or the base server and the second stage with it) dies with it, and its client exits 1 with
    nothing on stderr: the runner names the server's end and how, not the chapter as if it had failed."""
    from greenery.publisher import chapter_runs

    heavy = chapter_source(tmp_path / "heavy.md", "from greenery.chapter_kit import survival",
                           f"import os, signal, time\nimport psutil\nos.kill({killed}, signal.SIGKILL)\ntime.sleep(60)")
    stage = tmp_path / "stage"
    stage.mkdir()
    entries = [str(heavy.with_suffix(""))]
    with warm.Server() as server, pytest.raises(ReportError) as failure:
        chapter_runs.run_all(entries, stage, {e: {} for e in entries}, {e: e[-5:] for e in entries},
                             chapter_runs.ChapterCache(tmp_path / "cache"), lambda _: None, workers=1, server=server)
    assert str(failure.value) == (f"{heavy}: stopped with the chapters' warm server "
                                  f"(greenery.publisher.warm_server), which {reason}")
    assert server.process is None


def test_a_chapter_started_after_the_second_stage_died_is_one_line_naming_the_server(tmp_path, capsys):
    """The second stage died between two chapters (before the base server said so): the next chapter's client
    finds nobody at the socket. No traceback of the client's is relayed; the error names the server's end."""
    from greenery.publisher import chapter_runs

    heavy = chapter_source(tmp_path / "heavy.md", "from greenery.chapter_kit import survival")
    stage = tmp_path / "stage"
    stage.mkdir()
    entries = [str(heavy.with_suffix(""))]
    with warm.Server() as server:
        server.environment()
        full = full_server(server)
        full.kill()
        assert gone(full)
        with pytest.raises(ReportError) as failure:
            chapter_runs.run_all(entries, stage, {e: {} for e in entries}, {e: e[-5:] for e in entries},
                                 chapter_runs.ChapterCache(tmp_path / "cache"), lambda _: None, workers=1,
                                 server=server)
    assert str(failure.value) == (f"{heavy}: stopped with the chapters' warm server (greenery.publisher.warm_server), "
                                  "which lost its second stage (scipy.stats, statsmodels), killed by SIGKILL")
    assert capsys.readouterr().err == ""


def test_light_reads_import_statements_as_python_does(tmp_path):
    """Import statements the line patterns misread: a comment with a parenthesis inside a parenthesised list,
    a continued line, two statements on a line, each importing survival (heavy); an import only in a string
    or a comment (light); a source that is not UTF-8 is no crash here (its run reports it)."""
    from greenery.publisher.chapter_runs import light

    cases = {"comment_paren": "from greenery.chapter_kit import (  # the tiles (and the curve)\n    survival,\n)",
             "continued": "from greenery.chapter_kit import book, \\\n    survival",
             "semicolon": "import os; from greenery.chapter_kit import survival",
             "magic": "%time from greenery.chapter_kit import trends",  # not Python: every name counts
             "string": "text = '''\nfrom greenery.chapter_kit import survival\n'''",
             "commented": "# from greenery.chapter_kit import survival\nfrom greenery.chapter_kit import book"}
    found = {name: light(str(chapter_source(tmp_path / f"{name}.md", cell)).removesuffix(".md"))
             for name, cell in cases.items()}
    assert found == {"comment_paren": False, "continued": False, "semicolon": False, "magic": False,
                     "string": True, "commented": True}
    (tmp_path / "latin.md").write_bytes(chapter_source(tmp_path / "latin.md", "x = 1").read_bytes() + b"caf\xe9\n")
    assert light(str(tmp_path / "latin"))


@pytest.mark.parametrize("reads", [False, True])  # closed unread: the client's read is reset; read: it ends
def test_a_client_whose_server_goes_before_it_forked_says_so_in_one_line(tmp_path, reads):
    """The server dies between taking a client's request and answering with the fork's pid (its second stage
    killed then): the client exits 1 with its one NO_SERVER line (the runner drops it and names the server's
    end), not a traceback relayed to the terminal."""
    import socket
    import threading

    from greenery.publisher.warm_client import NO_SERVER

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "s"))
    listener.listen(1)

    def answer_nothing():
        connection = listener.accept()[0]
        if reads:
            for fd in socket.recv_fds(connection, 1 << 20, 3)[1]:  # its streams: the client's output ends with it
                os.close(fd)
        connection.close()

    thread = threading.Thread(target=answer_nothing)
    thread.start()
    done = subprocess.run(client_command("chapter", "x.md"), env={**os.environ, SOCKET_ENV: str(tmp_path / "s")},
                          capture_output=True, text=True, timeout=60)
    thread.join(10)
    listener.close()
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(NO_SERVER), line


@pytest.mark.parametrize("statsmodels", ["import time\ntime.sleep(120)\n", "raise ImportError('none here')\n"])
def test_a_run_of_light_chapters_only_does_not_wait_for_or_fail_on_the_second_stage(tmp_path, monkeypatch,
                                                                                     statsmodels):
    """Every chapter to run is light (the heavy ones cached): none needs the second stage, so its import
    hanging past START_SECONDS, or failing, is no failure of the run; the light chapters run from the base
    server."""
    from greenery.publisher import chapter_runs

    monkeypatch.setattr(warm.Server, "START_SECONDS", 3)
    _failing_statsmodels(tmp_path / "path", monkeypatch, statsmodels)
    light = chapter_source(tmp_path / "light.md", "import time\ntime.sleep(5)")
    stage = tmp_path / "stage"
    stage.mkdir()
    entries = [str(light.with_suffix(""))]
    with warm.Server() as server:
        chapter_runs.run_all(entries, stage, {e: {} for e in entries}, {e: e[-5:] for e in entries},
                             chapter_runs.ChapterCache(tmp_path / "cache"), lambda _: None, workers=2, server=server)
        assert not server.ready
    assert (stage / f"{entries[0]}.ipynb").is_file()
