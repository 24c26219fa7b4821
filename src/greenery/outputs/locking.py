"""One writer at a time per output: a second run on the same warehouse, history or book refuses (exit 3).

The lock is an advisory `flock` on a file beside the output, so it is released by the kernel
when its process ends, however it ends: a crashed run never leaves a stale lock behind. Each
lock is taken once, by the command that writes the output (greenery.cli, greenery.publisher.run) or,
for the history, by the build step that records it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from greenery.config import lock_path
from greenery.errors import BusyError


@contextmanager
def exclusive(target: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `target` (a file beside the output) or raise BusyError at once."""
    target = Path(os.path.abspath(target))
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
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
