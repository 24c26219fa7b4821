"""Named points in a run where the crash tests stop the process (kill -9), to prove that a run
stopped anywhere leaves the last good warehouse, history and book, and that the next run needs
no manual step. Inert unless $GREENERY_CRASH_AT names the point (tests/test_crashes.py sets it).
"""

from __future__ import annotations

import os
import signal


def checkpoint(name: str) -> None:
    if os.environ.get("GREENERY_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
