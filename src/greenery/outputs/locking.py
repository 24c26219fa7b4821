"""One writer at a time per output: a second run on the same warehouse, history or book refuses (exit 3).

The lock is an advisory `flock` on a file beside the output, so it is released by the kernel
when its process ends, however it ends: a crashed run never leaves a stale lock behind. Each
lock is taken once, by the command that writes the output (greenery.cli, greenery.publisher.run) or,
for the history, by the build step that records it.

A lock file is ours only when it is empty or holds our "greenery (pid N)" line: it is opened
without following a link and without blocking (a FIFO there is refused, not waited on), and
emptied only once it is known to be ours; anything else is refused (exit 2) and left as it was.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from greenery.config import lock_path
from greenery.errors import BusyError, UsageError
from greenery.outputs.ownership import open_regular


@contextmanager
def exclusive(target: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `target` (a file beside the output) or raise BusyError at once."""
    target = Path(os.path.abspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(target)
    try:
        fd = open_regular(path, os.O_RDWR | os.O_CREAT)
    except OSError as error:
        raise UsageError(f"{what} {target}: {path} is not greenery's lock ({error.strerror}); move it aside") from None
    with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as handle:
        text = handle.read(200)
        if text and not text.startswith("greenery (pid"):
            raise UsageError(f"{what} {target}: {path} exists and is not greenery's lock; move it aside")
        handle.seek(0)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read(200).strip() or "another process"
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
