"""Named crash points for the tests that kill a process between two steps (kill -9 at a chosen boundary).

``crash_point("release.after_intent")`` does nothing unless the environment variable ``VPDC_TEST_CRASH_AT`` names
that point; then the process kills itself with SIGKILL, exactly as an operator's ``kill -9`` or a power cut
would: no ``finally``, no atexit, no flush. Only tests set the variable.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_point"]


def crash_point(name: str) -> None:
    if os.environ.get("VPDC_TEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
