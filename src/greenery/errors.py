"""Exit codes of the `greenery` command and the typed errors behind them (documented in docs/operating.md).

Library code raises these; only `greenery.cli.main` turns them into exit codes and one line on stderr.
"""

from __future__ import annotations

import errno
import os
import unicodedata
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0  # success; warn-level data test failures are listed
    DATA_TEST_FAILED = 1  # an error-level data test failed: nothing is published
    BAD_INPUT = 2  # the export or an argument is unusable: one line says which and why; nothing is touched
    BUSY = 3  # another greenery run holds the same warehouse, history or book
    REPORT_FAILED = 4  # a chapter failed or timed out, the render failed, or the history file is unusable
    UNEXPECTED = 5  # anything else (a full disk, a bug): one line, `--debug` shows the traceback
    INTERRUPTED = 130  # SIGINT (Ctrl-C): children stopped, temporary files removed, last good outputs kept
    TERMINATED = 143  # SIGTERM: the same


def one_line(text: str) -> str:
    """A message on one line, whatever a path or a value in it holds: every control character (a line
    break in a folder's name, say) and the line and paragraph separators U+2028 and U+2029 (a line break to
    str.splitlines and many log readers) shown as its `<U+XXXX>` escape, as the command shows the others."""
    return "".join(f"<U+{ord(c):04X}>" if unicodedata.category(c) in _BREAKING else c for c in text)


_BREAKING = ("Cc", "Zl", "Zp")  # control characters, U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR


class GreeneryError(Exception):
    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __str__(self) -> str:  # every message is one line (greenery.cli prints it after `error: `)
        return one_line(super().__str__())


class InputError(GreeneryError):
    """The export cannot be used as delivered. Rendered as one line: file:line: column: reason."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, file: Path | str, line: int | None, column: str | None, reason: str):
        self.file, self.line, self.column, self.reason = Path(file), line, column, reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        column = f" column '{self.column}':" if self.column else ""
        return one_line(f"{where}:{column} {self.reason}")


class UsageError(GreeneryError):
    """An argument names something the tool must not or cannot use (a folder it did not make, a bad value)."""

    exit_code = ExitCode.BAD_INPUT


class ParameterError(UsageError):
    """A chapter parameter the data cannot support (a window longer than the export, say), found by
    the chapter that knows the data; raised in its kernel, reported by the runner as exit 2."""


class DataTestFailure(GreeneryError):
    """An error-level data test failed; carries the build result so callers can list the failures."""

    exit_code = ExitCode.DATA_TEST_FAILED

    def __init__(self, result):
        self.result = result
        failed = [t.name for t in result.tests if t.status == "fail"]
        super().__init__(f"error-level data test(s) failed: {', '.join(failed)}")


class WatchRefusal(GreeneryError):
    """A threshold the user set (--refuse-stale-after, --refuse-shrink, --refuse-schema-change) turned an
    export-watch warning into a refusal: nothing is recorded or published (greenery.warehouse.watch)."""

    exit_code = ExitCode.BAD_INPUT


class BusyError(GreeneryError):
    exit_code = ExitCode.BUSY


class ReportError(GreeneryError):
    exit_code = ExitCode.REPORT_FAILED


class HistoryError(GreeneryError):
    """The history file cannot be used (another layout, or not a history at all); nothing was written to it."""

    exit_code = ExitCode.REPORT_FAILED


class Interrupted(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt, not an error
    """SIGINT or SIGTERM arrived: unwind (finally blocks clean up), then exit 130 or 143."""

    def __init__(self, signal_name: str, exit_code: ExitCode):
        self.signal_name, self.exit_code = signal_name, exit_code
        super().__init__(signal_name)


_RECEIVED: list[Interrupted] = []  # the signals this command received (greenery.cli records them)


def record_signal(stop: Interrupted | None) -> None:
    """Remember a signal that arrived (None: forget them, a new command begins). DuckDB turns a signal that
    arrives during a query into its own RuntimeError ('Query interrupted'): the run was still stopped."""
    if stop is None:
        _RECEIVED.clear()
    else:
        _RECEIVED.append(stop)


def received_signal() -> Interrupted | None:
    """The first signal this command received, if any: an error after it is its consequence, not a failure."""
    return _RECEIVED[0] if _RECEIVED else None


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
FULL_DISK_WORDS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))  # "No space left on device", ...


def unexpected_reason(error: BaseException, with_file: bool = True) -> str:
    """One line for an error nobody planned for: its type, the file it concerns, and why; a full
    disk (or quota) says so in words. Without `with_file` (for status files and messages) no path."""
    if isinstance(error, OSError):
        where = f" ({error.filename})" if with_file and error.filename else ""
        reason = error.strerror or (str(error).splitlines()[0] if str(error) else "")
        if error.errno in FULL_DISK:
            reason += ": the disk is full; free some space and run again"
    else:
        where, reason = "", str(error).splitlines()[0] if str(error).strip() else ""
        if any(words in str(error) for words in FULL_DISK_WORDS):  # DuckDB's own errors carry it in words
            reason = "the disk is full; free some space and run again"
        elif type(error).__name__ == "OutOfMemoryException":  # DuckDB's, at its memory limit
            reason = ("DuckDB ran out of the memory it may use ($GREENERY_DUCKDB_MEMORY, 1GB unless set): "
                      "raise it, or free memory, and run again")
    return one_line(f"{type(error).__name__}{where}: {reason}" if reason else f"{type(error).__name__}{where}")
