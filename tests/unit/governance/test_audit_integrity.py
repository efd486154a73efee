"""Attacks on the audit chain and on the registry rows the gate reads, by someone who can write the registry
database (but holds no key). Each attack is a test: first shown to succeed against the unkeyed chain and
unbound rows (issue 11, commit "Attack tests for issue 11"), then detected or refused (ADR 0007)."""

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from governance.registry import audit
from governance.registry.integrity import write_checkpoint
from governance.registry.models import OutputLevel
from governance.registry.policy import PolicyRefused, authorize
from governance.registry.workflow import revoke_request
from tests.unit.governance.test_registry import NOW, approve_all, review, submit


def sql(reg, *statements):
    with reg.engine.begin() as c:
        for stmt in statements:
            c.exec_driver_sql(stmt)


def _at(value):
    """A stored ``at`` as the chain hashes it (naive UTC): SQLite returns text, PostgreSQL an aware datetime."""
    from datetime import UTC

    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _detail(value):
    """A stored ``detail``: SQLite returns JSON text, PostgreSQL the parsed object."""
    return json.loads(value) if isinstance(value, str) else value


def run(c, statement, **params):
    """One raw statement with named parameters, in either database's dialect."""
    return c.execute(text(statement), params)


def verification(reg):
    with reg.read() as s:
        return audit.verify(s)


def gate(reg, actor="evaluator_atv", cols=(("program_cohorts", "sex"),), level=OutputLevel.COHORT):
    with reg.read() as s:
        return authorize(s, "atv-eval", at=NOW + timedelta(minutes=5), actor=actor, output_level=level,
                         columns=list(cols), action="export.cohort")


def checkpoint(reg, who="steward_police", at=NOW + timedelta(minutes=2)):
    """A steward signs the chain's head into the checkpoint folder beside the registry (their key beside it)."""
    return write_checkpoint(reg, actor=who, folder=reg.audit.checkpoints,
                            key_dir=reg.audit.checkpoints.parent / "stewards" / who, now=at)


def test_the_gate_releases_when_nothing_was_touched(reg):
    submit(reg)
    approve_all(reg)
    checkpoint(reg)
    assert gate(reg).active and verification(reg).ok and verification(reg).checkpoint.startswith("8 signed by steward_police")


# ------------------------------------------------------------------------------------------ the chain
def test_cutting_the_last_entries_and_moving_the_head_is_detected(reg):
    submit(reg)
    approve_all(reg)
    cp = checkpoint(reg)  # entries 1..8 signed (seeding, request, 6 reviews); entry 9 records the checkpoint
    sql(reg, "delete from audit_log where seq > (select max(seq) - 2 from audit_log)",
        "update audit_head set seq = (select max(seq) from audit_log), "
        "hash = (select hash from audit_log where seq = (select max(seq) from audit_log))")
    v = verification(reg)
    assert not v.ok and v.first_bad_seq == cp.seq == 8
    assert "entry 8 is missing: the chain ends at entry 7" in v.problem and "cut short" in v.problem
    with pytest.raises(PolicyRefused, match="audit chain does not verify"):
        gate(reg)  # the gate trusts nothing on a chain cut below a checkpoint


def test_a_cut_revocation_is_refused_at_the_gate(reg):
    submit(reg)
    with reg.read() as s:
        seq, digest = s.execute(text("select audit_seq, audit_digest from requests")).one()
    approve_all(reg)
    with reg.transaction() as s:
        revoke_request(s, actor="steward_police", study_id="atv-eval", now=NOW + timedelta(minutes=1),
                       reason="concern")
    checkpoint(reg, "community_board")
    # the revocation's entry and everything after it cut, the head moved back, the row cleared and re-bound to
    # the submission's entry: a registry that looks as if the revocation never happened
    sql(reg, "delete from audit_log where seq >= (select seq from audit_log where action = 'request.revoked')",
        "update audit_head set seq = (select max(seq) from audit_log), "
        "hash = (select hash from audit_log where seq = (select max(seq) from audit_log))",
        f"update requests set revoked_at = null, revoked_by = null, audit_seq = {seq}, audit_digest = '{digest}'")
    with pytest.raises(PolicyRefused, match="cut short"):
        gate(reg)


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
            body = json.dumps({"seq": new_seq, "at": _at(at).isoformat(), "actor": actor, "action": action,
                               "subject": subject, "detail": _detail(detail)}, sort_keys=True,
                              separators=(",", ":"), default=str).encode()
            h = hashlib.sha256(prev.encode() + b"\x1e" + body).hexdigest()
            run(c, "insert into audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) values "
                "(:seq, :at, :actor, :action, :subject, :detail, :prev, :h)", seq=new_seq, at=at, actor=actor,
                action=action, subject=subject, detail=detail if isinstance(detail, str) else json.dumps(detail),
                prev=prev, h=h)
            prev = h
        run(c, "update audit_head set seq = :seq, hash = :h", seq=len(rows), h=prev)
    assert len(entries) == len(rows) + 1
    v = verification(reg)
    assert not v.ok and v.first_bad_seq == 1 and "entry 1 was edited" in v.problem


def test_a_rewrite_by_someone_holding_the_audit_key_is_caught_by_the_checkpoint(reg):
    """Even the audit key's holder cannot rewrite what a steward checkpointed (the checkpoint key is the steward's)."""
    from governance.registry.audit import _canonical, _mac

    submit(reg)
    approve_all(reg)
    checkpoint(reg)
    key = reg.audit.key(None)
    with reg.engine.begin() as c:  # entry 3 (a steward's approval) re-attributed, every hash recomputed
        c.exec_driver_sql("update audit_log set actor = 'steward_evil' where seq = 3")
        prev = "0" * 64
        for seq, at, actor, action, subject, detail in c.exec_driver_sql(
                "select seq, at, actor, action, subject, detail from audit_log order by seq").all():

            h = _mac(key, prev, _canonical(seq, _at(at), actor, action, subject, _detail(detail)))
            run(c, "update audit_log set prev_hash = :prev, hash = :h where seq = :seq", prev=prev, h=h, seq=seq)
            prev = h
        run(c, "update audit_head set hash = :h", h=prev)
    v = verification(reg)
    assert not v.ok and v.first_bad_seq == 1 and "differs from checkpoint 8 signed by steward_police" in v.problem


@pytest.mark.parametrize(("attack", "problem", "first_bad"), [
    ("update audit_log set detail = '{\"capacity\": \"community\", \"conditions\": {}}' where seq = 4",
     "entry 4 was edited", 4),
    ("delete from audit_log where seq = 5", "entry 5 is missing", 5),
    (("update audit_log set seq = 100 where seq = 3; update audit_log set seq = 3 where seq = 4; "
      "update audit_log set seq = 4 where seq = 100"), "entry 3 does not follow", 3),
])
def test_edited_deleted_or_reordered_entries_are_named(reg, attack, problem, first_bad):
    submit(reg)
    approve_all(reg)
    sql(reg, *attack.split("; "))
    v = verification(reg)
    assert not v.ok and problem in v.problem and v.first_bad_seq == first_bad


# ------------------------------------------------------------------------------------ the gate's rows
def test_a_forged_review_row_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg, partners=("county", "police", "schools", "hospital_a"))  # hospital_b has not approved
    sql(reg, "insert into reviews (request_id, reviewer_id, capacity, decision, conditions, comment, decided_at) "
             "select id, 'steward_hospital_b', 'partner:hospital_b', 'APPROVE', '{}', '', decided_at "
             "from requests join (select max(decided_at) as decided_at from reviews) as latest on 1 = 1")
    with pytest.raises(PolicyRefused, match=r"review \d+ has no audit entry: refused: the gate decides only"):
        gate(reg)
    assert verification(reg).ok  # the chain itself is intact: only the gate can catch this


def test_a_revocation_cleared_in_the_table_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    with reg.transaction() as s:
        revoke_request(s, actor="steward_police", study_id="atv-eval", now=NOW + timedelta(minutes=1),
                       reason="concern")
    sql(reg, "update requests set revoked_at = null, revoked_by = null")
    with pytest.raises(PolicyRefused, match=r"request \d+ differs from its audit entry"):
        gate(reg)


def test_a_request_rolled_back_to_an_earlier_audited_state_is_refused_at_the_gate(reg):
    """The row cleared *and* its binding restored to the submission's entry: every column matches an audited
    state, but not the latest one, and the chain itself records the revocation."""
    submit(reg)
    with reg.read() as s:
        seq, digest = s.execute(text("select audit_seq, audit_digest from requests")).one()
    approve_all(reg)
    with reg.transaction() as s:
        revoke_request(s, actor="steward_police", study_id="atv-eval", now=NOW + timedelta(minutes=1),
                       reason="concern")
    sql(reg, f"update requests set revoked_at = null, revoked_by = null, audit_seq = {seq}, "
             f"audit_digest = '{digest}'")
    with pytest.raises(PolicyRefused, match="not in the state its latest audit entry"):
        gate(reg)


def test_a_deleted_denial_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    review(reg, "steward_schools", "deny", at=NOW + timedelta(minutes=1))
    sql(reg, "delete from reviews where decision = 'DENY'")
    with pytest.raises(PolicyRefused, match=r"review \d+ is audited but missing from the registry"):
        gate(reg)


def test_a_requester_rewritten_in_place_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    sql(reg, "update requests set requester_id = 'analyst_isc'")
    with pytest.raises(PolicyRefused, match=r"request \d+ differs from its audit entry"):
        gate(reg, actor="analyst_isc")


def test_columns_rewritten_in_place_are_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    sql(reg, "update requests set columns = '[{\"dataset\": \"program_cohorts\", \"column\": \"sex\"}, "
             "{\"dataset\": \"program_cohorts\", \"column\": \"race_ethnicity\"}]'")
    with pytest.raises(PolicyRefused, match=r"request \d+ differs from its audit entry"):
        gate(reg, cols=[("program_cohorts", "race_ethnicity")])


def test_a_review_rewritten_in_place_is_refused_at_the_gate(reg):
    submit(reg)
    approve_all(reg)
    review(reg, "steward_schools", "deny", at=NOW + timedelta(minutes=1))
    sql(reg, "update reviews set decision = 'APPROVE' where decision = 'DENY'")
    with pytest.raises(PolicyRefused, match=r"review \d+ differs from its audit entry"):
        gate(reg)


@pytest.mark.parametrize(("attack", "kind"), [
    ("update dataset_columns set sources = '[]' where name = 'police_victim_contacts_post'", "dataset_column"),
    ("update agreements set expires_on = '2099-12-31' where partner_id = 'police'", "agreement"),
    (("insert into agreements (partner_id, title, starts_on, expires_on) "
      "values ('police', 'forged', '2024-01-01', '2099-12-31')"), "agreement"),
    ("update users set role = 'EVALUATOR' where id = 'analyst_isc'", "user"),
])
def test_catalogue_agreement_and_user_rows_rewritten_in_place_are_refused_at_the_gate(reg, attack, kind):
    submit(reg)
    approve_all(reg)
    sql(reg, attack)
    actor = "analyst_isc" if kind == "user" else "evaluator_atv"
    with pytest.raises(PolicyRefused, match=rf"{kind} \S+ (differs from|has no) (its )?audit entry"):
        gate(reg, actor=actor)


def test_refusals_name_the_row_never_its_content(reg):
    submit(reg, title="Secret title of a study")
    approve_all(reg)
    sql(reg, "update requests set title = 'Rewritten secret'")
    with pytest.raises(PolicyRefused) as err:
        gate(reg)
    assert "secret" not in str(err.value).lower() and "request 1 differs" in str(err.value)


# ---------------------------------------------------------------------------------------------- the key
def _unkey(reg):
    """Make the registry look as it did before migration 0003: unkeyed SHA-256 chain, no bindings, no key."""
    import hashlib
    import json

    with reg.engine.begin() as c:
        prev = "0" * 64
        for seq, at, actor, action, subject, detail in c.exec_driver_sql(
                "select seq, at, actor, action, subject, detail from audit_log order by seq").all():
            body = json.dumps({"seq": seq, "at": _at(at).isoformat(), "actor": actor,
                               "action": action, "subject": subject, "detail": _detail(detail)},
                              sort_keys=True, separators=(",", ":"), default=str).encode()
            h = hashlib.sha256(prev.encode() + b"\x1e" + body).hexdigest()
            run(c, "update audit_log set prev_hash = :prev, hash = :h where seq = :seq", prev=prev, h=h, seq=seq)
            prev = h
        run(c, "update audit_head set hash = :h", h=prev)
        for table in ("partners", "users", "agreements", "dataset_columns", "requests", "reviews", "registry_settings",
                      "accounts"):
            c.exec_driver_sql(f"update {table} set audit_seq = null, audit_digest = null")
    (reg.audit.keys_dir / "audit.key").unlink()
    reg.audit._key = None


def test_a_chain_from_before_the_key_is_sealed_once_when_the_key_is_made(reg):
    submit(reg)
    approve_all(reg)
    _unkey(reg)
    with pytest.raises(audit.AuditError, match="the audit key is missing"), reg.transaction() as s:
        audit.append(s, actor="x", action="y", subject="z", at=NOW)  # a non-empty chain never makes a new key
    assert audit.init_audit_key(reg, now=NOW) == {"created": True, "sealed": 8}
    assert verification(reg).ok and gate(reg).active
    assert audit.init_audit_key(reg, now=NOW) == {"created": False, "sealed": 0}  # once


def test_a_tampered_chain_from_before_the_key_is_not_sealed(reg):
    submit(reg)
    approve_all(reg)
    _unkey(reg)
    sql(reg, "update audit_log set actor = 'someone_else' where seq = 3")
    with pytest.raises(audit.AuditError, match="broken at entry 3"):
        audit.init_audit_key(reg, now=NOW)
    assert not (reg.audit.keys_dir / "audit.key").exists()


def test_entries_are_counted_by_action_and_subject(reg):
    submit(reg)
    approve_all(reg)
    with reg.transaction() as s:
        for subject in ("atv-eval", "atv-eval", "other-study"):
            audit.append(s, actor="evaluator_atv", action="study.repinned", subject=subject, at=NOW)
    with reg.read() as s:
        assert audit.entry_count(s, action="study.repinned", subject="atv-eval") == 2
        assert audit.entry_count(s, action="study.repinned", subject="other-study") == 1
        assert audit.entry_count(s, action="study.repinned", subject="nobody") == 0
    assert verification(reg).ok
