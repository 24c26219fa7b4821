"""Signals and time limits: every child process stops, temporary files go, the last good outputs stay."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from greenery.sample import generate


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("signals") / "export"
    generate(folder, 0.2, 42)
    return folder


def _as_in_a_terminal() -> None:
    """SIGINT as a foreground process in a terminal has it. A job a shell starts in the background
    (`make test &`, CI runners started that way) inherits SIGINT ignored, as POSIX says it must, and
    Python then never turns SIGINT into KeyboardInterrupt: the report would rightly ignore Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_report(export: Path, root: Path, *extra: str) -> subprocess.Popen:
    """With a temporary folder of its own (short: socket paths), which `no_temporary_folders` checks."""
    temporary = Path(tempfile.mkdtemp(prefix="g-", dir="/tmp"))
    env = {**os.environ, "GREENERY_HISTORY": str(root / "history.duckdb"), "TMPDIR": str(temporary)}
    (root / "tmpdir").write_text(str(temporary))
    return subprocess.Popen([sys.executable, "-m", "greenery", "report", "--data-dir", str(export),
                             "--out", str(root / "book"), "--warehouse", str(root / "w.duckdb"), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_as_in_a_terminal)


def no_temporary_folders(root: Path) -> None:
    """The report's temporary folder is empty again (the warm server's socket and log included)."""
    temporary = Path((root / "tmpdir").read_text())
    try:
        assert sorted(p.name for p in temporary.iterdir()) == []
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def is_chapter(process: psutil.Process) -> bool:
    """A chapter's process: forked by the warm server, whose stand-in is `warm_client.py chapter`, or
    started on its own (`-m greenery.publisher.chapter_process`)."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:  # ended meanwhile, or a zombie waiting to be reaped
        return False
    return "greenery.publisher.chapter_process" in command or "warm_client.py chapter" in command


def wait_for_chapters(process: subprocess.Popen, timeout: float = 240) -> list[psutil.Process]:
    """The report's descendants once a chapter is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = psutil.Process(process.pid).children(recursive=True)
        if any(is_chapter(p) for p in tree):
            return tree
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("no chapter started")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_every_child_and_leaves_no_temporary_file(sig, code, export, tmp_path):
    report = start_report(export, tmp_path)
    children = wait_for_chapters(report)
    report.send_signal(sig)
    started = time.monotonic()
    _, stderr = report.communicate(timeout=60)
    assert time.monotonic() - started < 15
    assert report.returncode == code
    assert stderr.strip().splitlines()[-1].startswith(f"stopped by {signal.Signals(sig).name}")
    time.sleep(0.5)
    assert not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not (tmp_path / "book").exists()  # never published, nothing half-published
    assert not [p.name for p in tmp_path.iterdir() if ".staging-" in p.name or ".building" in p.name]
    no_temporary_folders(tmp_path)


def test_a_chapter_over_its_time_limit_is_named_and_stopped(export, tmp_path):
    report = start_report(export, tmp_path, "--chapter-timeout", "0.5")
    _, stderr = report.communicate(timeout=300)
    assert report.returncode == 4
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: notebooks/") and "still running after 0.5 s" in line
    assert not (tmp_path / "book").exists()
    assert not [p for p in psutil.Process().children(recursive=True) if is_chapter(p)]
    no_temporary_folders(tmp_path)


# A build whose last step waits for a query that ends by itself in a few seconds (1e9 rows counted):
# the signal lands during it, or, if it does not, once it has ended; the test ends either way.
SLOW_BUILD = """
import signal
import sys
from greenery import cli
from greenery.warehouse import build

store = build._store_build_info

def slow_then_store(con, *args, **kwargs):
    print("querying", flush=True)
    con.execute("set threads = 1")  # the query runs on this thread, which looks for signals between its tasks
    con.execute("select count(*) from range(1000000000) t(x) where x % 7 = 3").fetchall()
    return store(con, *args, **kwargs)

build._store_build_info = slow_then_store
code = cli.main(sys.argv[1:])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the test's next signal, if one comes after the first landed
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.exit(code)
"""


def signal_until_it_exits(process: subprocess.Popen, sig: int, deadline_s: float = 60) -> tuple[str, str]:
    """Wait for the child's `querying` line, then send `sig` until it exits: again only after ten seconds (a
    second signal would stop the first one's clean-up); past `deadline_s` in all it is killed and the test
    fails. Whatever happens, the test ends."""
    import select

    deadline = time.monotonic() + deadline_s
    try:
        seen = ""
        while "querying" not in seen:
            assert process.poll() is None, process.communicate()
            if select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))[0]:
                seen += process.stdout.readline()
            assert time.monotonic() < deadline, "the build never reached its query"
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # into the query
            process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, min(10.0, deadline - time.monotonic())))
        assert process.poll() is not None, "still running after the deadline"
        stdout, stderr = process.communicate(timeout=5)
        return seen + stdout, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_duckdb_query_exits_with_the_signal_s_code(sig, code, shop_dir, tmp_path, monkeypatch):
    """The attacker's review: DuckDB turns a signal that arrives while it runs a query into its own
    RuntimeError ("Query interrupted"), which exited 5 as an unexpected error instead of 130/143."""
    from greenery import cli

    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in warehouse.parent.iterdir()}

    warehouse, history = tmp_path / "out" / "w.duckdb", tmp_path / "history.duckdb"
    monkeypatch.setenv("GREENERY_HISTORY", str(history))
    command = ["build", "--data-dir", str(shop_dir), "--warehouse", str(warehouse)]
    assert cli.main(command) == 0  # the last good warehouse (and its results and lock)
    before = files()
    process = subprocess.Popen([sys.executable, "-c", SLOW_BUILD, *command], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=_as_in_a_terminal)
    _, stderr = signal_until_it_exits(process, sig)
    assert (process.returncode, stderr) == (code, f"stopped by {signal.Signals(sig).name}: child processes and "
                                                  "temporary files removed; the last good outputs are kept\n")
    after = files()
    assert sorted(after) == sorted(before)  # nothing half built is left beside it
    assert [name for name in after if after[name] != before[name]] == []
