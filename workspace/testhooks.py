"""The one test hook: stop a process at a named step boundary, the way ``kill -9`` or a power cut would.

Production code calls :func:`step` at the boundaries where a crash leaves a distinct state (after the linkage
zone is staged, after the warehouse commit, after an envelope is moved, after its audit entry, after a release's
intent, ...). It does nothing unless the environment says so, and nothing reads these variables anywhere else:

* ``VPDC_TEST_CRASH_AT``: a step name; at that step the process kills itself with SIGKILL (no ``finally``, no
  atexit, no flush), exactly as an operator's ``kill -9`` would.
* ``VPDC_TEST_PAUSE_AT``: comma-separated step names; at one of them the process appends ``"<step> <pid>"`` to the
  file ``VPDC_TEST_ANNOUNCE`` (if set) and sleeps ``VPDC_TEST_PAUSE_SECONDS`` (default one hour): the test reads
  the announcement and kills it (for steps inside a Dagster run, whose process the test does not start itself).

Steps: ``ingest.opened``, ``ingest.detected``, ``ingest.validated``, ``ingest.staged``, ``ingest.committed``,
``ingest.completed``, ``ingest.recorded`` (a refusal's event), ``ingest.reason_written``, ``ingest.moved``,
``ingest.audited``, ``run.started`` (an ingest, link or marts op has started), ``link.scored``, ``marts.started``,
``release.after_intent``, ``release.after_file``, ``release.after_manifest``, ``retention.after_intent``,
``retention.after_files``, ``retention.after_key``.
"""

from __future__ import annotations

import os
import signal
import time

__all__ = ["step"]


def step(name: str) -> None:
    """Crash or pause here if a test asked for it (see the module docstring); otherwise return at once."""
    if os.environ.get("VPDC_TEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    at = os.environ.get("VPDC_TEST_PAUSE_AT")
    if not at or name not in at.split(","):
        return
    announce = os.environ.get("VPDC_TEST_ANNOUNCE")
    if announce:
        with open(announce, "a", encoding="utf-8") as f:
            f.write(f"{name} {os.getpid()}\n")
            f.flush()
            os.fsync(f.fileno())
    time.sleep(float(os.environ.get("VPDC_TEST_PAUSE_SECONDS", "3600")))
