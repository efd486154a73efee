"""Output checking (two independent checkers, not the requester) on a real registry: what it allows, what it
refuses (audited), how many approvals each output level needs, and that concurrent checkers never give a release
two outcomes."""

import json
import threading

import pytest

from governance.defaults import OUTPUT_CHECKERS
from governance.outputs.checking import check_output, check_status, checks_awaiting, disclosure_report
from governance.outputs.download import open_release
from governance.registry import audit
from governance.registry.errors import GovernanceError, PermissionRefused
from governance.registry.models import AuditEntry, Release
from tests.unit.governance.test_registry import NOW, approve_all, submit

STUDY = "atv-eval"


@pytest.fixture
def released(reg, tmp_path):
    """An approved cohort request with one released file (and its manifest) in ``tmp_path/outputs``."""
    submit(reg)
    approve_all(reg)
    out = tmp_path / "outputs"
    (out / STUDY).mkdir(parents=True)
    (out / STUDY / "cohort_atv_v1.csv").write_text("program,enrollment_date\nATV,2024-01\n")
    (out / STUDY / "cohort_atv_v1.manifest.json").write_text(json.dumps({
        "rules": {"min_cell": 11, "k_anonymity": 11},
        "files": [{"name": "cohort_atv_v1.csv", "bytes": 30, "sha256": "ab" * 32,
                   "check": {"kind": "record", "passed": True, "failures": []}}]}))
    with reg.transaction() as s:
        rel = Release(study_id=STUDY, version=1, kind="cohort", spec={"program": "ATV"}, file="cohort_atv_v1.csv",
                      cells=[], columns=["program", "enrollment_date"], persons=40, state="released",
                      actor="evaluator_atv", created_at=NOW)
        s.add(rel)
        s.flush()
        return rel.id, out


def status(reg, rid):
    with reg.read() as s:
        return check_status(s, s.get(Release, rid))


def refusals(reg):
    with reg.read() as s:
        return [e for e in s.query(AuditEntry).order_by(AuditEntry.seq) if e.action == "refused.output.check"]


def test_a_release_leaves_only_after_two_checkers_approve(reg, released):
    rid, out = released
    with pytest.raises(GovernanceError, match="output checking is awaiting .0 of 2"):
        open_release(reg, release_id=rid, actor="evaluator_atv", outputs_dir=out, now=NOW)
    assert check_output(reg, checker="engineer_ids", release_id=rid, decision="approve", now=NOW)["state"] == "awaiting"
    with pytest.raises(GovernanceError, match="1 of 2"):
        open_release(reg, release_id=rid, actor="evaluator_atv", outputs_dir=out, now=NOW)
    assert check_output(reg, checker="steward_police", release_id=rid, decision="approve", now=NOW)["state"] == "approved"
    assert open_release(reg, release_id=rid, actor="evaluator_atv", outputs_dir=out, now=NOW).name == "cohort_atv_v1.csv"
    with reg.read() as s:
        actions = [e.action for e in s.query(AuditEntry).order_by(AuditEntry.seq)]
        assert actions.count("refused.output.download") == 2 and actions[-1] == "output.downloaded"
        assert audit.verify(s).ok


def test_the_count_per_output_level_is_configuration(reg, released, monkeypatch):
    rid, _ = released
    monkeypatch.setitem(OUTPUT_CHECKERS, "cohort", 3)
    for who in ("engineer_ids", "steward_police"):
        check_output(reg, checker=who, release_id=rid, decision="approve", now=NOW)
    assert status(reg, rid) | {"decisions": []} == {"state": "awaiting", "required": 3, "approvals": 2, "decisions": []}
    check_output(reg, checker="steward_schools", release_id=rid, decision="approve", now=NOW)
    assert status(reg, rid)["state"] == "approved"


@pytest.mark.parametrize(("checker", "decision", "comment", "refusal"), [
    ("evaluator_atv", "approve", "", PermissionRefused),          # the requester holds no checking permission
    ("analyst_isc", "approve", "", PermissionRefused),            # an analyst neither
    ("engineer_ids", "maybe", "", "not approve, changes or reject"),
    ("engineer_ids", "changes", "", "say what must change"),
    ("engineer_ids", "reject", "  ", "say what must change"),
])
def test_a_checker_without_the_right_or_a_reason_is_refused_and_audited(reg, released, checker, decision, comment,
                                                                          refusal):
    rid, _ = released
    raises = pytest.raises(refusal) if isinstance(refusal, type) else pytest.raises(GovernanceError, match=refusal)
    with raises:
        check_output(reg, checker=checker, release_id=rid, decision=decision, comment=comment, now=NOW)
    assert [e.actor for e in refusals(reg)] == [checker] and status(reg, rid)["decisions"] == []


def test_a_checker_decides_once_and_a_rejection_ends_the_checking(reg, released):
    rid, out = released
    check_output(reg, checker="engineer_ids", release_id=rid, decision="approve", now=NOW)
    with pytest.raises(GovernanceError, match="already checked"):
        check_output(reg, checker="engineer_ids", release_id=rid, decision="approve", now=NOW)
    done = check_output(reg, checker="steward_police", release_id=rid, decision="reject", comment="Small cells.",
                        now=NOW)
    assert done["state"] == "rejected" and done["decisions"][-1]["comment"] == "Small cells."
    with pytest.raises(GovernanceError, match="no longer awaiting checking .rejected"):
        check_output(reg, checker="steward_schools", release_id=rid, decision="approve", now=NOW)
    with pytest.raises(GovernanceError, match="output checking is rejected"):
        open_release(reg, release_id=rid, actor="evaluator_atv", outputs_dir=out, now=NOW)


def test_asking_for_changes_keeps_the_release_in_and_the_queue_forgets_it(reg, released):
    rid, _ = released
    with reg.read() as s:
        assert [r["id"] for r in checks_awaiting(s, actor="engineer_ids")] == [rid]
        assert checks_awaiting(s, actor="evaluator_atv") == []  # never one's own
    check_output(reg, checker="engineer_ids", release_id=rid, decision="changes", comment="Band the ages.", now=NOW)
    assert status(reg, rid)["state"] == "changes"
    with reg.read() as s:
        assert checks_awaiting(s, actor="steward_police") == []


def test_the_requester_of_the_request_cannot_check_a_release_someone_else_made(reg, released):
    rid, _ = released
    with reg.transaction() as s:
        s.get(Release, rid).actor = "steward_hospital_a"  # not possible through the gate; the rule holds anyway
    with pytest.raises(GovernanceError, match="checkers must be other people"):
        check_output(reg, checker="steward_hospital_a", release_id=rid, decision="approve", now=NOW)


def test_the_disclosure_report_shows_rules_and_verdicts_never_records(reg, released):
    rid, out = released
    with reg.read() as s:
        rep = disclosure_report(s, release_id=rid, outputs_dir=out)
    assert rep["rules"] == {"min_cell": 11, "k_anonymity": 11} and rep["files"][0]["passed"] is True
    assert rep["persons"] == 40 and rep["checking"]["state"] == "awaiting" and "ATV,2024-01" not in json.dumps(rep)
    with reg.read() as s, pytest.raises(GovernanceError, match="no released output"):
        disclosure_report(s, release_id=rid + 1, outputs_dir=out)


def test_concurrent_checkers_never_give_a_release_more_approvals_or_two_outcomes(reg, released):
    rid, _ = released
    checkers = ["engineer_ids", "community_board", *[f"steward_{p}" for p in
                                                     ("police", "schools", "hospital_a", "hospital_b", "county")]]
    decisions = ["approve"] * len(checkers)
    decisions[3] = "reject"
    barrier, results = threading.Barrier(len(checkers)), {}

    def run(who, decision):
        barrier.wait()
        try:
            results[who] = check_output(reg, checker=who, release_id=rid, decision=decision, comment="no", now=NOW)
        except GovernanceError as exc:
            results[who] = exc

    threads = [threading.Thread(target=run, args=a) for a in zip(checkers, decisions, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = status(reg, rid)
    recorded = [d["decision"] for d in final["decisions"]]
    # the first decisive outcome ends it: either two approvals, or a rejection after at most one approval
    assert recorded in (["approve", "approve"], ["reject"], ["approve", "reject"])
    assert final["state"] == ("approved" if recorded == ["approve", "approve"] else "rejected")
    assert sum(isinstance(r, dict) for r in results.values()) == len(recorded)
    with reg.read() as s:
        assert audit.verify(s).ok
