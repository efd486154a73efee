"""kill -9 at every step boundary of ingestion (and at random during ingest, link and marts), each followed by a
plain re-run: it completes with nothing lost, nothing counted twice, every load and refusal audited, no
decrypted payload left behind, and no Dagster pool slot held by the dead run.

The process is paused at a step by the one test hook (``workspace.testhooks``: ``VPDC_TEST_PAUSE_AT``), then
killed with SIGKILL; random kills sleep a random time instead.
"""

import pytest

from orchestration.runner import run_landing_sensor_once
from tests.integration.killing import _two, assert_consistent, kill_at, pool_is_free

pytestmark = pytest.mark.integration


STEPS = ["run.started", "ingest.opened", "ingest.detected", "ingest.validated", "ingest.archived", "ingest.staged",
         "ingest.committed", "ingest.completed", "ingest.moved", "ingest.audited"]


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step_of_a_load_then_a_plain_rerun_completes(home, step):
    _, ids = _two(home)
    assert kill_at(home, step)
    runs = run_landing_sensor_once(home)
    assert all(r.success for r in runs), [r.error for r in runs]
    assert_consistent(home, ids)
    assert pool_is_free(home)
