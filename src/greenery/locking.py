"""One writer at a time per output: a second run on the same warehouse or book refuses (exit 3).

The lock is an advisory `flock` on a file beside the output, so it is released by the kernel
when its process ends, however it ends: a crashed run never leaves a stale lock behind.
Within one process the lock is re-entrant: `greenery report` holds the warehouse for the whole
run (build, then every chapter reading it) and the build inside it takes the same lock again.
"""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from greenery.errors import BusyError

_held: Counter[Path] = Counter()  # locks this process holds, and how many times


def lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


@contextmanager
def exclusive(target: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `target` (a file beside the output) or raise BusyError at once."""
    target = Path(os.path.abspath(target))
    if _held[target]:
        _held[target] += 1
        try:
            yield
        finally:
            _held[target] -= 1
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with lock_path(target).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BusyError(
                f"{what} {target} is being written by {holder}; wait for it to finish, or use another output path"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"greenery (pid {os.getpid()})")
        handle.flush()
        _held[target] += 1
        try:
            yield
        finally:
            _held[target] -= 1
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
