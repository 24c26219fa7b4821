"""Child processes that always end: a whole process tree is stopped on failure, timeout or signal.

A chapter runs in a process of its own that starts a kernel of its own; jupyter-book starts
Sphinx. When `greenery` stops early, every descendant is stopped with it (SIGTERM, then SIGKILL
after a short grace), found through psutil whatever session or process group it runs in.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
from collections.abc import Sequence

import psutil

GRACE_SECONDS = 3.0
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For `preexec_fn`: the child is killed when its parent dies, even by SIGKILL (Linux; elsewhere a no-op)."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def kill_tree(pid: int, grace: float = GRACE_SECONDS) -> None:
    """Stop `pid` and every process below it: SIGTERM, then SIGKILL for those still running after `grace`."""
    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=grace)


def run(command: Sequence[str], timeout: float | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    """`subprocess.run` with output captured, whose whole tree is stopped if we are interrupted or time out."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          preexec_fn=die_with_parent) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException:
            kill_tree(process.pid)
            process.communicate()
            raise
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
