"""kill -9 at every step of a refusal, and at random during ingest, each followed by a plain re-run (helpers:
killing.py)."""

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
