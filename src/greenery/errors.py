"""Exit codes of the `greenery` command and the errors that map to them (documented in README)."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0  # success; warn-level data test failures are listed
    DATA_TEST_FAILED = 1  # an error-level data test failed: nothing is published
    BAD_INPUT = 2  # the export is unusable: one line names file, line and column
    BUSY = 3  # another greenery run holds the same warehouse or book output
    REPORT_FAILED = 4  # a notebook, the book render or the history failed: the last good book is kept


class GreeneryError(Exception):
    exit_code: ExitCode = ExitCode.REPORT_FAILED


class InputError(GreeneryError):
    """The export cannot be used as delivered. Rendered as one line: file:line: column: reason."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, file: Path | str, line: int | None, column: str | None, reason: str):
        self.file, self.line, self.column, self.reason = Path(file), line, column, reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        column = f" column '{self.column}':" if self.column else ""
        return f"{where}:{column} {self.reason}"


class DataTestFailure(GreeneryError):
    """An error-level data test failed; carries the build result so callers can list the failures."""

    exit_code = ExitCode.DATA_TEST_FAILED

    def __init__(self, result):
        self.result = result
        failed = [t.name for t in result.tests if t.status == "fail"]
        super().__init__(f"error-level data test(s) failed: {', '.join(failed)}")


class BusyError(GreeneryError):
    exit_code = ExitCode.BUSY


class ReportError(GreeneryError):
    exit_code = ExitCode.REPORT_FAILED


class HistoryError(GreeneryError):
    """The history file does not match the snapshots' definition; nothing was written to it."""

    exit_code = ExitCode.REPORT_FAILED
