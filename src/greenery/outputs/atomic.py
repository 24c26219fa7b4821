"""Replace outputs in one step, so readers see the old version or the new one, never a mix or nothing.

Files are written to a temporary name beside their target and renamed over it; a published
folder is exchanged with its new version in one atomic rename (Linux renameat2) where the
system allows it, else by two renames that put the old folder back if the second fails.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path


def temporary_name(target: Path, what: str = "tmp") -> Path:
    """A hidden name beside `target`, unique to this process: `.name.what-pid`."""
    return target.with_name(f".{target.name}.{what}-{os.getpid()}")


def _new_file(target: Path) -> tuple[Path, int]:
    """A new hidden file beside `target`, made by this call (O_EXCL: never a file or link already there)."""
    while True:
        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            return temporary, os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            continue


def write_bytes(target: Path, data: bytes) -> None:
    """Write `data` to `target` through a temporary file of our own and one rename (which replaces a
    link at `target` rather than writing through it)."""
    temporary, fd = _new_file(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> None:
    """Write `text` (UTF-8) to `target` through a temporary file and one rename."""
    write_bytes(target, text.encode("utf-8"))


def copy_file(source: Path, target: Path) -> None:
    """Copy `source` to `target` through a temporary file and one rename."""
    temporary, fd = _new_file(target)
    try:
        with os.fdopen(fd, "wb") as handle, source.open("rb") as original:
            shutil.copyfileobj(original, handle)
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


def swap_folder(new: Path, published: Path, check_old: Callable[[Path], None] = lambda old: None) -> None:
    """Put folder `new` where `published` is; the old one is removed afterwards.

    Callers check first that `published` is theirs to replace (greenery.outputs). The old folder,
    once out of the way, is given to `check_old`: if it raises (someone added a file while the new
    folder was being made), the old folder is put back as it was and the error goes on."""
    published.parent.mkdir(parents=True, exist_ok=True)
    if published.exists() and _exchange(new, published):
        try:
            check_old(new)  # `new` now holds the old folder
        except BaseException:
            _exchange(new, published)
            raise
        shutil.rmtree(new, ignore_errors=True)
        return
    previous = temporary_name(published, "previous")
    if published.exists():
        published.rename(previous)
    try:
        if previous.exists():
            check_old(previous)
        new.rename(published)
    except BaseException:
        if previous.exists():
            previous.rename(published)
        raise
    shutil.rmtree(previous, ignore_errors=True)
