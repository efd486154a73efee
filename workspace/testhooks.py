"""One test hook: pause a process at a named step boundary so a test can ``kill -9`` it exactly there.

Production code calls :func:`step` at the boundaries where a crash leaves a distinct state (after the linkage
zone is staged, after the warehouse commit, after an envelope is moved, after its audit entry, ...). It does
nothing unless the environment says so, and nothing reads these variables anywhere else:

* ``VPDC_TEST_PAUSE_AT``: comma-separated step names; at one of them the process appends
  ``"<step> <pid>"`` to the file ``VPDC_TEST_ANNOUNCE`` (if set) and sleeps ``VPDC_TEST_PAUSE_SECONDS``
  (default one hour): the test reads the announcement and kills it.

Steps: ``ingest.opened``, ``ingest.detected``, ``ingest.validated``, ``ingest.staged``, ``ingest.committed``,
``ingest.completed``, ``ingest.recorded`` (a refusal's event), ``ingest.reason_written``, ``ingest.moved``,
``ingest.audited``, ``run.started`` (an ingest, link or marts op has started), ``link.scored``, ``marts.started``.
"""

from __future__ import annotations

import os
import time

__all__ = ["step"]


def step(name: str) -> None:
    """Pause here if a test asked for it (see the module docstring); otherwise return at once."""
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
