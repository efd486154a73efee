"""E-mail notifications through a real SMTP server on loopback (aiosmtpd): who is told, that a message holds a
title and a link and nothing else, and that every message (and any failure) is audited by user id, never address."""

from __future__ import annotations

import pytest

from governance.identity import Identity
from governance.identity import signin as si
from governance.identity.mail import Mailer
from governance.identity.notify import notify, notify_release
from governance.outputs.checking import check_output
from governance.registry.models import AuditEntry, Release
from governance.registry.seed import DEMO_USERS
from tests.identity_helpers import Sink, free_port
from tests.unit.governance.test_registry import NOW, approve_all, review, submit

URL = "https://portal.example.org"


def email(uid: str) -> str:
    return f"{uid.replace('_', '.')}@example.org"


@pytest.fixture
def people(reg):
    """Every demo user with an e-mail address (set by the administrator)."""
    admin = reg.signed_in(Identity("admin_ids", "password+totp", "local:admin_ids", NOW))
    for uid, *_ in DEMO_USERS:
        si.set_credentials(admin, actor="admin_ids", user_id=uid, email=email(uid), now=NOW)
    return reg


@pytest.fixture
def sink():
    with Sink() as s:
        yield s


def notices(reg) -> list[AuditEntry]:
    with reg.read() as s:
        return [e for e in s.query(AuditEntry).order_by(AuditEntry.seq) if e.action.startswith("notify.")]


def test_a_submitted_request_is_announced_to_each_reviewer_with_its_title_and_link_only(people, sink):
    submit(people, purpose="A purpose that must never be mailed")
    n = notify(people, study_id="atv-eval", event="awaiting", mailer=Mailer("127.0.0.1", sink.port), base_url=URL,
               now=NOW)
    got = sink.wait(n)
    reviewers = {f"steward_{p}" for p in ("county", "police", "schools", "hospital_a", "hospital_b")}
    assert {m["to"][0] for m in got} == {email(u) for u in reviewers | {"community_board"}}
    for m in got:
        assert m["body"].splitlines() == ["ATV evaluation", f"{URL}/requests/atv-eval"]
        assert m["subject"].startswith("A request awaits your review")
    entry = notices(people)[-1]
    assert entry.action == "notify.sent" and set(entry.detail["to"]) == reviewers | {"community_board"}
    assert "@" not in str(entry.detail)


def test_a_decision_tells_everyone_taking_part_and_the_requester(people, sink):
    submit(people)
    review(people, "steward_police")
    n = notify(people, study_id="atv-eval", event="changed", mailer=Mailer("127.0.0.1", sink.port), base_url=URL,
               now=NOW)
    to = {m["to"][0] for m in sink.wait(n)}
    assert email("evaluator_atv") in to and email("steward_police") in to and email("analyst_isc") not in to
    awaiting = notify(people, study_id="atv-eval", event="awaiting", mailer=Mailer("127.0.0.1", sink.port),
                      base_url=URL, now=NOW)
    assert awaiting == n - 2  # those who decided (police) and the requester are not asked again


def test_an_unreachable_mail_server_is_audited_and_never_undoes_the_action(people):
    submit(people)
    assert notify(people, study_id="atv-eval", event="awaiting", mailer=Mailer("127.0.0.1", free_port(), timeout=5),
                  base_url=URL, now=NOW) == 0
    entry = notices(people)[-1]
    assert entry.action == "notify.failed" and entry.detail["to"] == [] and "steward_police" in entry.detail["failed"]


def test_without_a_mail_server_nothing_is_sent_or_recorded(people):
    submit(people)
    assert notify(people, study_id="atv-eval", event="awaiting", mailer=None, base_url=URL, now=NOW) == 0
    assert notices(people) == []


def test_output_checkers_are_told_of_a_release_and_the_requester_of_the_outcome(people, sink):
    submit(people)
    approve_all(people)
    with people.transaction() as s:
        rel = Release(study_id="atv-eval", version=1, kind="cohort", spec={}, file="cohort_atv_v1.csv", cells=[],
                      columns=[], persons=40, state="released", actor="evaluator_atv", created_at=NOW)
        s.add(rel)
        s.flush()
        rid = rel.id
    mailer = Mailer("127.0.0.1", sink.port)
    n = notify_release(people, release_id=rid, event="check", mailer=mailer, base_url=URL, now=NOW)
    got = sink.wait(n)
    stewards = {email(f"steward_{p}") for p in ("county", "police", "schools", "hospital_a", "hospital_b")}
    assert {m["to"][0] for m in got} == stewards | {email("engineer_ids")}  # who may check; never the requester
    assert all(m["body"].splitlines() == ["ATV evaluation", f"{URL}/checks/{rid}"] for m in got)
    for who in ("engineer_ids", "steward_police"):
        check_output(people, checker=who, release_id=rid, decision="approve", now=NOW)
    assert notify_release(people, release_id=rid, event="checked", mailer=mailer, base_url=URL, now=NOW) == 1
    last = sink.wait(n + 1)[-1]
    assert last["to"] == [email("evaluator_atv")] and last["body"].splitlines() == ["ATV evaluation", f"{URL}/outputs"]
    assert last["subject"].startswith("Your output was checked")
