"""Temporary folders a run killed with SIGKILL leaves behind (no clean-up runs then), removed by a later run.

Each such folder gets a marker naming the process that made it: its pid, its start time (field 22 of
/proc/PID/stat, in clock ticks since boot), the boot it ran in and its pid namespace. A later run removes
a folder only when it can prove it is ours and abandoned: a real folder (never a symbolic link) of
this user, whose marker is a regular file of ours (read without following a link), made in this pid
namespace by a process that is gone (no such pid, or a pid since reused by another process, or a
previous boot). A folder without a marker, a marker we cannot read, another namespace's process: left
alone. The removal never follows a link (shutil.rmtree on a file descriptor, Linux).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from pathlib import Path

from greenery.outputs.ownership import read_own_json

MARKER = ".greenery-owner"


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), or None when there is no such process."""
    stat_line = _read(f"/proc/{pid}/stat")
    if not stat_line or ")" not in stat_line:
        return None
    fields = stat_line[stat_line.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None  # field 22 of the line: field 3 is fields[0]


def _namespace() -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink("/proc/self/ns/pid")
    return None


def _owner() -> dict:
    return {"pid": os.getpid(), "start": _start_time(os.getpid()), "boot": _read("/proc/sys/kernel/random/boot_id"),
            "pidns": _namespace()}


def mark(folder: Path) -> None:
    """Mark a folder this process has just made (mkdtemp) as its own, for `remove_abandoned`."""
    fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(_owner()))


def abandoned(folder: Path) -> bool:
    """True only when `folder` is provably ours and its maker is gone (see the module's docstring)."""
    try:
        found = os.lstat(folder)
    except OSError:
        return False
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        return False
    owner, now = read_own_json(folder / MARKER), _owner()
    if not isinstance(owner, dict) or set(owner) != set(now) or not isinstance(owner["pid"], int):
        return False
    if None in now.values() or None in owner.values() or owner["pidns"] != now["pidns"]:
        return False  # no /proc to ask, or a process of another namespace (another container): cannot tell
    if owner["boot"] != now["boot"]:
        return True  # every process of an earlier boot is gone
    return _start_time(owner["pid"]) != owner["start"]  # gone, or its pid now another process's


def remove_abandoned(parent: Path, prefix: str) -> list[Path]:
    """Remove the folders named `prefix`* in `parent` that are provably ours and abandoned; the ones removed."""
    try:
        names = [entry.name for entry in os.scandir(parent) if entry.name.startswith(prefix)]
    except OSError:
        return []
    removed = []
    for name in names:
        folder = parent / name
        if abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)  # a link put in its place since is refused, not followed
            removed.append(folder)
    return removed
