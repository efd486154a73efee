"""kill -9 at random during link and marts, each followed by a plain re-run (helpers: killing.py)."""

import pytest

from orchestration.runner import run_landing_sensor_once
from tests.integration.killing import kill_after, pool_is_free, wh

pytestmark = pytest.mark.integration


def test_kill_during_link_and_marts_then_plain_reruns_complete(home):
    from orchestration.runner import run_job

    run_landing_sensor_once(home)
    for job, command, waits in (("link_job", ["link"], (20,)), ("marts_job", ["marts"], (15, 40))):
        for wait in waits:
            kill_after(home, wait, command)
        summary = run_job(home, job)
        assert summary.success, summary.error
        assert pool_is_free(home)
    [(n, d)] = wh(home, "select count(*), count(distinct (source, source_record_id)) from raw.person_map")
    assert n == d > 0
