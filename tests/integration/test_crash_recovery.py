# ruff: noqa: F811  (pytest fixtures imported from test_governance are redefined as arguments)
"""Kill -9 between every two steps of a release and of a retention sweep, then check what is left.

Each test runs the real CLI in a child process with ``VPDC_TEST_CRASH_AT`` naming one boundary
(:mod:`workspace.testhooks`): the child SIGKILLs itself there, with no cleanup. Afterwards the audit chain still
verifies, nothing was released without its audit entries, and the next run settles what the crash left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from governance.outputs.ledger import earlier
from tests.integration.test_governance import actions, approve, home, reg  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "from vpdc.cli import main; main()"]


def vpdc(home_root: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"VPDC_HOME": str(home_root)}
    env.pop("VPDC_TEST_CRASH_AT", None)
    if crash_at:
        env["VPDC_TEST_CRASH_AT"] = crash_at
    return subprocess.run([*CLI, *args, "--home", str(home_root)], env=env, capture_output=True, text=True,
                          timeout=300)


def outputs(home) -> set[str]:
    d = home.outputs / "atv-eval"
    return {p.name for p in d.iterdir()} if d.is_dir() else set()


def verify(home) -> dict:
    res = vpdc(home.root, "audit", "verify", "--as", "engineer_ids", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


EXPORTS = {
    "cohort": ("cohort", "export", "atv-eval", "--as", "evaluator_atv", "--json"),
    "summary": ("cohort", "summary", "atv-eval", "--as", "evaluator_atv", "--json"),
}


@pytest.mark.parametrize(("kind", "point"), [("cohort", "release.after_intent"), ("cohort", "release.after_file"),
                                             ("cohort", "release.after_manifest"), ("summary", "release.after_file")])
def test_a_release_killed_at_any_step_leaves_no_unaudited_file_and_the_next_run_settles_it(home, reg, kind, point):
    approve(reg)
    res = vpdc(home.root, *EXPORTS[kind], crash_at=point)
    assert res.returncode == -signal.SIGKILL, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert actions(reg)[-1].endswith(".releasing")  # the intent was committed before the first byte
    assert verify(home)["ok"]
    assert earlier(reg, study_id="atv-eval", kinds=(kind,)) == []  # nothing counts as released
    left = outputs(home)
    assert all(not n.endswith(".tmp") for n in left) or point == "release.after_intent"

    res = vpdc(home.root, *EXPORTS[kind])  # the next run settles the crash, then releases version 2
    assert res.returncode == 0, res.stdout + res.stderr
    done = json.loads(res.stdout)
    assert Path(done["files"][0]).name.endswith("_v2.csv")
    # the crashed version is gone (file and manifest), and its abandonment is audited with what was removed
    assert {n for n in outputs(home) if "_v1" in n} == set()
    with reg.read() as s:
        from governance.registry.audit import AuditEntry
        abandoned = [e.detail for e in s.query(AuditEntry).filter(AuditEntry.action == "release.abandoned")]
    assert len(abandoned) == 1 and abandoned[0]["version"] == 1
    assert set(abandoned[0]["removed"]) == {n for n in left if "_v1" in n and not n.endswith(".tmp")}
    assert [r.version for r in earlier(reg, study_id="atv-eval", kinds=(kind,))] == [2]
    assert verify(home)["ok"]
    # every file in the outputs folder is a completed release with its manifest
    released = {r.file for r in earlier(reg, study_id="atv-eval", kinds=(kind,))}
    assert {n for n in outputs(home) if n.endswith(".csv")} == released


SWEEP = ("retention", "sweep", "--as", "engineer_ids", "--today", "2027-10-01", "--confirm", "--json")


@pytest.mark.parametrize("point", ["retention.after_intent", "retention.after_files", "retention.after_key"])
def test_a_sweep_killed_at_any_step_is_visible_and_the_next_sweep_finishes_it(home, reg, point):
    approve(reg)
    assert vpdc(home.root, *EXPORTS["cohort"]).returncode == 0
    assert list((home.keys / "studies").glob("atv-eval*"))

    res = vpdc(home.root, *SWEEP, crash_at=point)
    assert res.returncode == -signal.SIGKILL, res.stdout + res.stderr
    assert actions(reg)[-1] == "study.destruction_started"
    assert verify(home)["ok"]
    plan = vpdc(home.root, "retention", "sweep", "--as", "engineer_ids", "--today", "2027-10-01", "--json")
    (row,) = json.loads(plan.stdout)["studies"]
    assert row["study_id"] == "atv-eval" and row["interrupted"] is True  # the dry run shows the unfinished sweep

    res = vpdc(home.root, *SWEEP)
    assert res.returncode == 0, res.stdout + res.stderr
    (done,) = json.loads(res.stdout)["studies"]
    assert done["interrupted"] is True
    if point == "retention.after_key":  # the key went with the crash; the record says so instead of "never"
        assert done["study_key"].startswith("not found: destroyed by the interrupted sweep")
    else:
        assert done["study_key"]["bytes_overwritten"] > 0
    assert not (home.outputs / "atv-eval").exists() and not list((home.keys / "studies").glob("atv-eval*"))
    assert actions(reg)[-3:] == ["study.destruction_started", "study.destroyed", "retention.swept"]
    assert verify(home)["ok"]
    again = vpdc(home.root, *SWEEP)  # nothing is left to destroy
    assert json.loads(again.stdout)["studies"] == []

