"""Registry workflow, policy and audit chain on a real SQLite registry (migrated with Alembic)."""

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from governance.registry import audit
from governance.registry.models import Agreement, OutputLevel, Request, Review
from governance.registry.policy import PolicyRefused, authorize, decide
from governance.registry.seed import PARTNERS
from governance.registry.workflow import (
    FIELD_LIMITS,
    GovernanceError,
    record_refusal,
    review_request,
    revoke_request,
    submit_request,
    withdraw_request,
)

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
COHORT_COLS = [{"dataset": "program_cohorts", "column": c} for c in
               ("program", "enrollment_date", "age_band_at_enrollment", "sex", "police_victim_contacts_post")]


def submit(reg, study="atv-eval", requester="evaluator_atv", cols=COHORT_COLS, level="cohort", **over):
    body = dict(study_id=study, title="ATV evaluation", organisation="Evaluation partner", purpose="Does ATV reduce violence?",
                research_questions="Police contacts and injuries before/after enrolment", columns=cols,
                output_level=level, irb_protocol="IRB-2026-001", irb_expires_on=date(2027, 6, 30),
                retention_end=date(2027, 9, 30), equity_communities="Residents of the four priority areas",
                equity_return_of_findings="Community briefings", equity_mitigation="Stratified reporting") | over
    with reg.transaction() as s:
        return submit_request(s, requester=requester, now=NOW, **body)


def review(reg, who, decision="approve", study="atv-eval", at=NOW, **kw):
    with reg.transaction() as s:
        return review_request(s, reviewer=who, study_id=study, decision=decision, now=at, **kw)


def approve_all(reg, study="atv-eval", partners=tuple(PARTNERS), community=True):
    for p in partners:
        review(reg, f"steward_{p}", study=study)
    if community:
        review(reg, "community_board", study=study)


def scope(reg, study="atv-eval", at=NOW):
    with reg.read() as s:
        return decide(s, study, at=at)


def test_unapproved_request_is_inactive_and_says_who_is_missing(reg):
    submit(reg)
    sc = scope(reg)
    assert not sc.active
    assert "steward of police" in sc.pending and "community reviewer" in sc.pending


def test_partly_approved_request_stays_inactive(reg):
    submit(reg)
    approve_all(reg, partners=("county", "police", "schools", "hospital_a"))
    sc = scope(reg)
    assert not sc.active and sc.pending == ("steward of hospital_b",)


def test_fully_approved_request_is_active_with_its_scope(reg):
    submit(reg)
    approve_all(reg)
    sc = scope(reg)
    assert sc.active and sc.output_level == OutputLevel.COHORT
    assert sc.sources == set(PARTNERS) and len(sc.columns) == len(COHORT_COLS)
    assert sc.expires_on == date(2027, 6, 30)  # the IRB ends first


def test_any_denial_stops_it(reg):
    submit(reg)
    approve_all(reg)
    review(reg, "steward_schools", "deny", at=NOW + timedelta(minutes=1))
    sc = scope(reg, at=NOW + timedelta(minutes=2))
    assert not sc.active and "denied by steward_schools" in sc.reasons


def test_aggregate_request_without_race_needs_no_community_review(reg):
    submit(reg, cols=[{"dataset": "events", "column": "is_homicide_victim"}], level="aggregate")
    review(reg, "steward_police")
    assert scope(reg).active


@pytest.mark.parametrize(("what", "at", "setup"), [
    ("IRB approval", datetime(2027, 7, 1, tzinfo=UTC), None),
    ("retention period", datetime(2027, 10, 1, tzinfo=UTC), {"irb_expires_on": date(2028, 1, 1)}),
    ("data-sharing agreement with police", datetime(2026, 12, 2, tzinfo=UTC), "dsa"),
])
def test_approval_ends_at_the_earliest_of_dsa_irb_retention(reg, what, at, setup):
    submit(reg, **(setup if isinstance(setup, dict) else {}))
    approve_all(reg)
    if setup == "dsa":
        with reg.transaction() as s:  # an amended agreement, audited (the gate trusts no unaudited row)
            dsa = s.query(Agreement).filter_by(partner_id="police").one()
            dsa.expires_on = date(2026, 12, 1)
            audit.append(s, actor="registry", action="agreement.amended", subject="police", at=NOW, rows=[dsa])
    sc = scope(reg, at=at)
    assert not sc.active and any(r.startswith(f"expired: {what}") for r in sc.reasons), sc.reasons


def test_revocation_takes_effect_at_once(reg):
    submit(reg)
    approve_all(reg)
    with reg.transaction() as s:
        revoke_request(s, actor="steward_hospital_a", study_id="atv-eval", now=NOW, reason="community concern")
    sc = scope(reg, at=NOW)
    assert not sc.active and "revoked by steward_hospital_a" in sc.reasons


def test_withdrawn_request_is_inactive(reg):
    submit(reg)
    approve_all(reg)
    with reg.transaction() as s:
        withdraw_request(s, actor="evaluator_atv", study_id="atv-eval", now=NOW)
    assert not scope(reg).active


def test_conditions_narrow_the_scope(reg):
    submit(reg)
    approve_all(reg, partners=("county", "police", "schools", "hospital_a"))
    review(reg, "steward_hospital_b", "approve_with_conditions",
           conditions={"remove_columns": [{"dataset": "program_cohorts", "column": "sex"}], "aggregate_only": True})
    sc = scope(reg)
    assert sc.active and sc.output_level == OutputLevel.AGGREGATE
    assert ("program_cohorts", "sex") not in sc.columns


def test_gate_refuses_columns_and_levels_outside_the_approval(reg):
    submit(reg)
    approve_all(reg)
    with reg.read() as s:
        with pytest.raises(PolicyRefused, match="outside the approval: program_cohorts.race_ethnicity"):
            authorize(s, "atv-eval", at=NOW, actor="evaluator_atv", output_level=OutputLevel.COHORT, action="export.cohort",
                      columns=[("program_cohorts", "race_ethnicity")])
        with pytest.raises(PolicyRefused, match="exceeds the approved cohort"):
            authorize(s, "atv-eval", at=NOW, actor="evaluator_atv", output_level=OutputLevel.LINKED_EXTRACT, action="export.cohort",
                      columns=[("program_cohorts", "sex")])
        with pytest.raises(PolicyRefused, match="not the requester"):
            authorize(s, "atv-eval", at=NOW, actor="analyst_isc", output_level=OutputLevel.COHORT, action="export.cohort",
                      columns=[("program_cohorts", "sex")])
        assert authorize(s, "atv-eval", at=NOW, actor="evaluator_atv", output_level=OutputLevel.AGGREGATE, action="export.cohort",
                         columns=[("program_cohorts", "sex")]).active


def test_gate_fails_closed_for_unknown_or_unapproved_requests(reg):
    with reg.read() as s:
        with pytest.raises(PolicyRefused, match="no request"):
            authorize(s, "nope", at=NOW, actor="evaluator_atv", output_level=OutputLevel.AGGREGATE, action="export.cohort", columns=[])
    submit(reg)
    with reg.read() as s, pytest.raises(PolicyRefused, match="awaiting approval"):
        authorize(s, "atv-eval", at=NOW, actor="evaluator_atv", output_level=OutputLevel.AGGREGATE, action="export.cohort", columns=[])


def set_role(reg, user_id, role, partner=None):
    """An administrator's audited change of a user (the gate and every permission check trust only audited users)."""
    from governance.registry.models import User

    with reg.transaction() as s:
        user = s.get(User, user_id) or User(id=user_id, display_name="x", organisation="x", role=role)
        user.role, user.partner_id = role, partner
        s.add(user)
        s.flush()
        audit.append(s, actor="registry", action="user.changed", subject=user_id, at=NOW, rows=[user])


def test_reviewer_cannot_approve_their_own_request_and_refusal_is_audited(reg):
    set_role(reg, "steward_analyst", "analyst")
    submit(reg, requester="steward_analyst")
    set_role(reg, "steward_analyst", "steward", "police")
    with pytest.raises(GovernanceError, match="cannot review their own request"):
        review(reg, "steward_analyst")
    record_refusal(reg, actor="steward_analyst", action="review.approve", subject="atv-eval", reason="own request", now=NOW)
    with reg.read() as s:
        actions = [e.action for e in s.query(audit.AuditEntry).order_by(audit.AuditEntry.seq)]
    assert actions[-1] == "refused.review.approve"


def test_steward_of_an_untouched_partner_cannot_review(reg):
    submit(reg, cols=[{"dataset": "events", "column": "is_homicide_victim"}], level="aggregate")
    with pytest.raises(GovernanceError, match="stewards schools"):
        review(reg, "steward_schools")


HOSTILE = ["'; drop table requests; --", "<script>alert(1)</script>", "[bold red]x[/]", "Robert'); DELETE FROM reviews;--",
           "\u202e\u0000nul"]


@pytest.mark.parametrize("field", ["title", "organisation", "purpose", "research_questions", "irb_protocol",
                                   "equity_communities", "equity_return_of_findings", "equity_mitigation"])
@pytest.mark.parametrize("value", HOSTILE[:4])
def test_hostile_text_is_stored_verbatim_and_harmless(reg, field, value):
    submit(reg, study="hostile-1", **{field: value})
    with reg.read() as s:
        assert getattr(s.query(Request).filter_by(study_id="hostile-1").one(), field) == value
        assert s.execute(text("select count(*) from reviews")).scalar() == 0  # tables intact


@pytest.mark.parametrize("field", list(FIELD_LIMITS)[:8])
def test_one_megabyte_strings_are_refused_naming_the_field(reg, field):
    if field == "comment":
        return
    with pytest.raises(GovernanceError, match=rf"^{field}: 1,048,576 characters, limit"):
        submit(reg, study="huge", **{field: "x" * (1 << 20)})


def test_nul_characters_and_bad_study_ids_are_refused(reg):
    with pytest.raises(GovernanceError, match="NUL"):
        submit(reg, title=HOSTILE[4])
    for bad in ["../etc", "a b", "x" * 80, "<b>"]:
        with pytest.raises(GovernanceError, match="study_id"):
            submit(reg, study=bad)


@pytest.mark.parametrize("value", [*HOSTILE, "x" * (1 << 20), 12, None, ["cohort"]])
def test_hostile_study_id_output_level_and_columns_are_refused_with_short_messages(reg, value):
    for field in ("study", "level"):
        with pytest.raises(GovernanceError) as err:
            submit(reg, **{field: value})
        assert len(str(err.value)) < 300  # a 1 MB value is never echoed back
    for cols in (value, [value], [{"dataset": value, "column": "sex"}], [{"dataset": "program_cohorts", "column": value}]):
        with pytest.raises(GovernanceError, match="columns") as err:
            submit(reg, study="cols-1", cols=cols)
        assert len(str(err.value)) < 300
    with reg.read() as s:
        assert s.query(Request).count() == 0 and audit.verify(s).ok


@pytest.mark.parametrize("value", HOSTILE[:4] + ["x" * (1 << 20)])
def test_hostile_review_comments_and_revocation_reasons_are_kept_verbatim_or_refused(reg, value):
    submit(reg)
    if len(value) > FIELD_LIMITS["comment"]:
        with pytest.raises(GovernanceError, match="^comment: 1,048,576 characters"):
            review(reg, "steward_police", comment=value)
    else:
        review(reg, "steward_police", comment=value)
        with reg.read() as s:
            assert s.query(Review).one().comment == value
    if len(value) > FIELD_LIMITS["comment"]:
        with pytest.raises(GovernanceError, match="^comment: 1,048,576 characters"), reg.transaction() as s:
            revoke_request(s, actor="steward_police", study_id="atv-eval", now=NOW, reason=value)
    else:
        with reg.transaction() as s:
            revoke_request(s, actor="steward_police", study_id="atv-eval", now=NOW, reason=value)
    with reg.read() as s:
        assert audit.verify(s).ok and s.execute(text("select count(*) from requests")).scalar() == 1
        stored = [e.detail.get("reason") for e in s.query(audit.AuditEntry) if e.action == "request.revoked"]
        assert stored == ([] if len(value) > FIELD_LIMITS["comment"] else [value])


def test_concurrent_approvals_lose_no_update(reg):
    submit(reg)
    errors = []
    start = threading.Barrier(len(PARTNERS) + 1)

    def go(who):
        try:
            start.wait(timeout=30)  # every reviewer submits at the same moment
            review(reg, who)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(f"steward_{p}",)) for p in PARTNERS] + \
              [threading.Thread(target=go, args=("community_board",))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert scope(reg).active
    with reg.read() as s:
        # the seeding, the request, one review per steward and the community's
        assert audit.verify(s).ok and audit.verify(s).entries == 1 + 1 + len(PARTNERS) + 1


def _tamper(reg, sql):
    with reg.engine.begin() as c:
        c.exec_driver_sql(sql)
    with reg.read() as s:
        return audit.verify(s)


def test_audit_chain_verifies_when_untouched(reg):
    submit(reg)
    approve_all(reg)
    with reg.read() as s:
        assert audit.verify(s).ok


@pytest.mark.parametrize(("sql", "problem"), [
    ("update audit_log set actor = 'someone_else' where seq = 2", "entry 2 was edited"),
    ("delete from audit_log where seq = 3", "entry 3 is missing"),
    ("update audit_log set seq = 100 where seq = 2; update audit_log set seq = 2 where seq = 3; "
     "update audit_log set seq = 3 where seq = 100", "entry 2 does not follow"),
    ("delete from audit_log where seq = (select max(seq) from audit_log)", "cut from the end"),
])
def test_tampered_deleted_or_reordered_audit_entries_are_detected(reg, sql, problem):
    submit(reg)
    approve_all(reg)
    for stmt in sql.split("; "):
        v = _tamper(reg, stmt)
    assert not v.ok and problem in v.problem


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_any_request_title_round_trips(reg, title):
    if "\x00" in title or not title.strip():
        return
    sid = f"p-{abs(hash(title)) % 10**9}"
    with reg.transaction() as s:
        if s.query(Request).filter_by(study_id=sid).count():
            return
    submit(reg, study=sid, title=title)
    with reg.read() as s:
        assert s.query(Request).filter_by(study_id=sid).one().title == title


def test_a_request_is_revoked_once_and_the_first_revocation_stands(reg):
    submit(reg)
    approve_all(reg)
    with reg.transaction() as s:
        revoke_request(s, actor="steward_police", study_id="atv-eval", now=NOW, reason="Counsel asked for a pause.")
    with pytest.raises(GovernanceError, match=r"atv-eval is already revoked \(by steward_police\)"):
        with reg.transaction() as s:
            revoke_request(s, actor="community_board", study_id="atv-eval", now=NOW + timedelta(minutes=1),
                           reason="Again.")
    with reg.read() as s:
        req = s.query(Request).filter_by(study_id="atv-eval").one()
        assert req.revoked_by == "steward_police"
        assert [e.actor for e in s.query(audit.AuditEntry) if e.action == "request.revoked"] == ["steward_police"]


def test_a_migration_that_dies_half_way_leaves_no_half_schema(tmp_path, monkeypatch):
    """The migrations create many tables; a process killed between two of them must not leave some tables and no
    version stamp (every later start then failed with "table ... already exists", found by a kill test). All the
    migrations run in one SQLite transaction: a failure at the last CREATE TABLE of the last migration that makes
    one rolls back every earlier one too (two processes starting on a new file cannot interleave), and the next
    start migrates a clean file."""
    import sqlite3

    from alembic.operations import Operations

    from governance.registry.db import Registry, sqlite_url, upgrade

    real, made = Operations.create_table, []

    def counting(self, name, *cols, **kw):
        made.append(name)
        return real(self, name, *cols, **kw)

    monkeypatch.setattr(Operations, "create_table", counting)
    upgrade(sqlite_url(tmp_path / "count.db"))
    total, made[:] = len(made), []

    def dies_at_the_last(self, name, *cols, **kw):
        if len(made) == total - 1:
            raise KeyboardInterrupt("killed before the last CREATE TABLE")
        made.append(name)
        return real(self, name, *cols, **kw)

    path = tmp_path / "registry.db"
    monkeypatch.setattr(Operations, "create_table", dies_at_the_last)
    with pytest.raises(KeyboardInterrupt):
        upgrade(sqlite_url(path))
    assert total > 3 and len(made) == total - 1
    with sqlite3.connect(path) as con:
        assert con.execute("select name from sqlite_master where type = 'table'").fetchall() == []
    monkeypatch.setattr(Operations, "create_table", real)
    reg = Registry(sqlite_url(path))  # the next start: the whole schema, stamped
    with reg.read() as s:
        assert s.execute(text("select count(*) from audit_head")).scalar_one() >= 0


def test_an_up_to_date_registry_opens_while_a_writer_holds_the_lock(tmp_path):
    """Every start runs the migrations; at the newest one they must not wait for the write lock (a reviewer's
    long transaction would otherwise stop every other start)."""
    import sqlite3
    import time

    from governance.registry.db import Registry, sqlite_url

    path = tmp_path / "registry.db"
    Registry(sqlite_url(path))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("begin immediate")
    try:
        t0 = time.monotonic()
        Registry(sqlite_url(path))
        assert time.monotonic() - t0 < 3
    finally:
        writer.execute("rollback")
        writer.close()
