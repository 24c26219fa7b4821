"""Replace outputs in one step, so readers see the old version or the new one, never a mix or nothing.

Files are written to a temporary name beside their target and renamed over it; a published
folder is exchanged with its new version in one atomic rename (Linux renameat2) where the
system allows it, else by two renames that put the old folder back if the second fails.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path


def temporary_name(target: Path, what: str = "tmp") -> Path:
    """A hidden name beside `target`, unique to this process: `.name.what-pid`."""
    return target.with_name(f".{target.name}.{what}-{os.getpid()}")


def write_text(target: Path, text: str) -> None:
    """Write `text` to `target` through a temporary file and one rename."""
    temporary = temporary_name(target)
    try:
        temporary.write_text(text)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def copy_file(source: Path, target: Path) -> None:
    """Copy `source` to `target` through a temporary file and one rename."""
    temporary = temporary_name(target)
    try:
        shutil.copyfile(source, temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def swap_folder(new: Path, published: Path) -> None:
    """Put folder `new` where `published` is; the old one is removed afterwards.

    Callers check first that `published` is theirs to replace (greenery.outputs)."""
    published.parent.mkdir(parents=True, exist_ok=True)
    if published.exists() and _exchange(new, published):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old folder
        return
    previous = temporary_name(published, "previous")
    if published.exists():
        published.rename(previous)
    try:
        new.rename(published)
    except BaseException:
        if previous.exists():
            previous.rename(published)
        raise
    shutil.rmtree(previous, ignore_errors=True)
