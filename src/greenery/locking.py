"""One writer at a time per output: a second run on the same warehouse or book refuses (exit 3)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from greenery.errors import BusyError


@contextmanager
def exclusive(target: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `target` (a file beside the output) or raise BusyError at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.with_name(target.name + ".lock")
    with lock_path.open("a+") as handle:
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
