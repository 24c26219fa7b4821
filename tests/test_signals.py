"""Signals and time limits: every child process stops, temporary files go, the last good outputs stay."""

from __future__ import annotations

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
