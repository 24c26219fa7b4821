"""The warm server: forks stand in for their clients, and none outlives its client or the server."""

from __future__ import annotations

import signal
import subprocess
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
