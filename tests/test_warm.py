"""The warm server: forks stand in for their clients, and none outlives its client or the server."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import psutil
import pytest

from greenery.errors import ReportError
from greenery.publisher import warm_server as warm
from greenery.publisher.warm_client import client_command


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


def start_kernel(server: warm.Server, tmp_path) -> tuple[subprocess.Popen, psutil.Process]:
    """A kernel forked by the server, with the client that stands for it."""
    connection = tmp_path / "kernel.json"
    connection.write_text(json.dumps({"transport": "tcp", "ip": "127.0.0.1", "key": "k", "signature_scheme":
                                      "hmac-sha256"}))
    client = subprocess.Popen(client_command("kernel", "-f", str(connection)), env=server.environment(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not forks(server):
        assert time.monotonic() < deadline and client.poll() is None, "no kernel forked"
        time.sleep(0.05)
    [kernel] = forks(server)
    return client, kernel


def gone(process: psutil.Process, within: float = 10) -> bool:
    try:
        process.wait(within)
    except psutil.TimeoutExpired:
        return process.status() == psutil.STATUS_ZOMBIE
    return True


def test_a_signal_to_the_client_reaches_the_fork_and_its_status_comes_back(server, tmp_path):
    client, kernel = start_kernel(server, tmp_path)
    time.sleep(1)  # the kernel has set up its own handlers
    client.send_signal(signal.SIGTERM)
    assert client.wait(30) == 128 + signal.SIGTERM
    assert gone(kernel)


def test_a_fork_whose_client_is_killed_is_killed_too(server, tmp_path):
    client, kernel = start_kernel(server, tmp_path)
    client.kill()  # SIGKILL: nothing to relay, the server sees the connection close
    client.wait()
    assert gone(kernel)


def test_stopping_the_server_stops_every_fork_and_removes_its_socket(tmp_path):
    server = warm.Server()
    client, kernel = start_kernel(server, tmp_path)
    folder = server.folder
    server.stop()
    assert gone(kernel)
    assert client.wait(10) != 0  # the fork is gone: the client says so
    assert not folder.exists()


def test_a_server_that_cannot_start_is_one_error_line(monkeypatch):
    monkeypatch.setattr(warm.Server, "START_SECONDS", 0.001)
    with warm.Server() as server, pytest.raises(ReportError, match="did not start within"):
        server.environment()
