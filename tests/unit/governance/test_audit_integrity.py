"""Attacks on the audit chain and on the registry rows the gate reads, by someone who can write the registry
database (but holds no key). Each attack is a test: first shown to succeed against the unkeyed chain
(issue 11), then refused."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from governance.registry import audit
from governance.registry.models import OutputLevel
from governance.registry.policy import PolicyRefused, authorize
from governance.registry.workflow import revoke_request
from tests.unit.governance.test_registry import COHORT_COLS, NOW, approve_all, reg, review, submit  # noqa: F401


def sql(reg, *statements):
    with reg.engine.begin() as c:
        for stmt in statements:
            c.exec_driver_sql(stmt)


def verification(reg):
    with reg.read() as s:
        return audit.verify(s)


def gate(reg, actor="evaluator_atv", cols=(("program_cohorts", "sex"),), level=OutputLevel.COHORT):
    with reg.read() as s:
        return authorize(s, "atv-eval", at=NOW + timedelta(minutes=5), actor=actor, output_level=level,
                         columns=list(cols))


# ------------------------------------------------------------------------------------------ the chain
def test_cutting_the_last_entries_and_moving_the_head_is_detected(reg):
    submit(reg)
    approve_all(reg)
    sql(reg, "delete from audit_log where seq > (select max(seq) - 2 from audit_log)",
        "update audit_head set seq = (select max(seq) from audit_log), "
        "hash = (select hash from audit_log where seq = (select max(seq) from audit_log))")
    v = verification(reg)
    assert not v.ok


def test_rewriting_the_whole_chain_with_recomputed_hashes_is_detected(reg):
    import hashlib
    import json

    submit(reg)
    approve_all(reg)
    with reg.read() as s:
        entries = list(s.scalars(text("select seq from audit_log order by seq")))
    # drop entry 3 and re-chain everything after it with freshly computed (unkeyed) hashes
    sql(reg, "delete from audit_log where seq = 3")
    with reg.engine.begin() as c:
        rows = c.exec_driver_sql("select seq, at, actor, action, subject, detail from audit_log order by seq").all()
        c.exec_driver_sql("delete from audit_log")
        prev = "0" * 64
        for new_seq, (_, at, actor, action, subject, detail) in enumerate(rows, 1):
            body = json.dumps({"seq": new_seq, "at": datetime.fromisoformat(at).isoformat(), "actor": actor, "action": action,
                               "subject": subject, "detail": json.loads(detail)}, sort_keys=True,
                              separators=(",", ":"), default=str).encode()
            h = hashlib.sha256(prev.encode() + b"\x1e" + body).hexdigest()
            c.exec_driver_sql("insert into audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) "
                              "values (?, ?, ?, ?, ?, ?, ?, ?)", (new_seq, at, actor, action, subject, detail, prev, h))
            prev = h
        c.exec_driver_sql("update audit_head set seq = ?, hash = ?", (len(rows), prev))
    assert len(entries) == len(rows) + 1
    v = verification(reg)
    assert not v.ok


# ------------------------------------------------------------------------------------ the gate's rows
def test_a_forged_review_row_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg, partners=("county", "police", "schools", "hospital_a"))  # hospital_b has not approved
    sql(reg, "insert into reviews (request_id, reviewer_id, capacity, decision, conditions, comment, decided_at) "
             "select id, 'steward_hospital_b', 'partner:hospital_b', 'APPROVE', '{}', '', decided_at "
             "from requests join (select max(decided_at) as decided_at from reviews) on 1 = 1")
    with pytest.raises(PolicyRefused):
        gate(reg)
    assert verification(reg).ok  # the chain itself is intact: only the gate can catch this


def test_a_revocation_cleared_in_the_table_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    with reg.transaction() as s:
        revoke_request(s, actor="steward_police", study_id="atv-eval", now=NOW + timedelta(minutes=1),
                       reason="concern")
    sql(reg, "update requests set revoked_at = null, revoked_by = null")
    with pytest.raises(PolicyRefused):
        gate(reg)


def test_a_deleted_denial_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    review(reg, "steward_schools", "deny", at=NOW + timedelta(minutes=1))
    sql(reg, "delete from reviews where decision = 'DENY'")
    with pytest.raises(PolicyRefused):
        gate(reg)


def test_a_requester_rewritten_in_place_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    sql(reg, "update requests set requester_id = 'analyst_isc'")
    with pytest.raises(PolicyRefused):
        gate(reg, actor="analyst_isc")


def test_columns_rewritten_in_place_are_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    sql(reg, "update requests set columns = '[{\"dataset\": \"program_cohorts\", \"column\": \"sex\"}, "
             "{\"dataset\": \"program_cohorts\", \"column\": \"race_ethnicity\"}]'")
    with pytest.raises(PolicyRefused):
        gate(reg, cols=[("program_cohorts", "race_ethnicity")])
