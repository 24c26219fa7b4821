"""The warm server: forks stand in for their clients, and none outlives its client or the server."""

from __future__ import annotations

import signal
import subprocess
import sys
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


def forks(server: warm.Server) -> list[psutil.Process]:
    def running(process: psutil.Process) -> bool:
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:  # ended between listing and asking
            return False

    return [p for p in psutil.Process(server.process.pid).children() if running(p)]


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
    assert _pidfds(server.process.pid) == 1
    chapter.kill()
    assert client.wait(30) == 128 + signal.SIGKILL
    deadline = time.monotonic() + 10
    while _pidfds(server.process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pidfds(server.process.pid) == 0


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
    import os
    import shutil
    import tempfile

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
warm_server._preload_frozen()
print(gc.isenabled(), gc.get_freeze_count() > 100_000, sum(gc.get_count()) < 1_000)
"""


def test_what_the_server_imported_is_frozen_for_the_collector():
    """The server's imports (hundreds of thousands of objects) are frozen: a chapter's collections never walk
    them; the collector is on again for what a chapter makes."""
    done = subprocess.run([sys.executable, "-c", FROZEN], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "True"]


def test_a_server_told_to_give_statsmodels_formulaic_s_formulas_imports_it():
    """$SM_FORMULA_ENGINE=formulaic: statsmodels refuses to load without formulaic (a RuntimeError on import),
    so the server, which imports statsmodels for the Cox model, leaves formulaic importable then."""
    import os

    done = subprocess.run([sys.executable, "-c", UNUSED_IMPORTS], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SM_FORMULA_ENGINE": "formulaic"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["['formulaic',", "'narwhals']", "True"]
