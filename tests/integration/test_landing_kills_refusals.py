"""kill -9 at every step of a refusal, and at random during ingest, each followed by a plain re-run (helpers:
killing.py)."""

import os
import random

import pytest

from envelope.format import read_manifest
from orchestration.runner import run_landing_sensor_once
from tests.integration.killing import _two, assert_consistent, kill_after, kill_at, pool_is_free

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("step", ["ingest.recorded", "ingest.reason_written", "ingest.moved", "ingest.audited"])
def test_kill_at_each_step_of_a_refusal_then_a_plain_rerun_completes(home, step):
    keep, ids = _two(home)
    data = bytearray(keep[0].read_bytes())
    data[-100] ^= 0xFF
    keep[0].write_bytes(bytes(data))
    bad = read_manifest(keep[0]).envelope_id
    assert kill_at(home, step)
    run_landing_sensor_once(home)
    assert_consistent(home, ids - {bad}, {bad})
    from landing.quarantine import list_quarantine, return_to_landing

    [row] = list_quarantine(home)
    assert row["check"] in ("decrypt", "truncated", "checksum")
    return_to_landing(home, row["file"])  # the reason is there: retry works


@pytest.mark.parametrize("seed", [1, 2])
def test_random_kills_during_ingest_then_a_plain_rerun_completes(home, seed):
    _, ids = _two(home)
    rng = random.Random(seed)
    for _ in range(2):
        kill_after(home, rng.uniform(4, 20), ["ingest"])
    run_landing_sensor_once(home)
    assert_consistent(home, ids)
    assert pool_is_free(home)


@pytest.mark.parametrize("refused", [False, True])
def test_a_kill_after_the_last_envelope_left_landing_is_finished_by_the_next_run(home, refused):
    """The last envelope is archived (or quarantined) and its move marked, then the run dies before the audit
    entry: landing/ is empty, so no ingestion run would start; the sensor asks for a recovery run instead."""
    keep, ids = _two(home)
    os.replace(keep[1], home.root / "held" / keep[1].name)  # one envelope only
    ids = {read_manifest(keep[0]).envelope_id}
    if refused:
        data = bytearray(keep[0].read_bytes())
        data[-100] ^= 0xFF
        keep[0].write_bytes(bytes(data))
    assert kill_at(home, "ingest.moved")
    assert not list(home.landing().glob("*/*.vpdc"))
    [run] = run_landing_sensor_once(home)
    assert run.job == "recover_job" and run.success
    assert_consistent(home, set() if refused else ids, ids if refused else set())
    assert run_landing_sensor_once(home) == []  # nothing left to finish: no further run
    assert pool_is_free(home)
