"""The portal over HTTP (Starlette's test client, a real registry): sign-in, CSRF on every form, headers,
refusal pages (audited), hostile form fields named with their rule, both languages. The browser tests
(tests/browser) walk the whole path in Chromium."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from governance.registry.models import AuditEntry
from tests.conftest import postgres_url
from tests.portal_helpers import PASSWORD, build_world
from vpdc.portal import PortalConfig, create_app

URL = os.environ.get("VPDC_TEST_PORTAL_REGISTRY_URL")  # PostgreSQL (.ci/run), else SQLite


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("portal"), registry_url=postgres_url("VPDC_TEST_PORTAL_REGISTRY_URL"))


@pytest.fixture
def app(world):
    return create_app(PortalConfig(world.home.root, registry_url=URL, clock=world.clock))


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def sign_in(app, world, user: str) -> TestClient:
    c = client(app)
    page = c.get("/sign-in")
    res = c.post("/sign-in", data={"csrf": csrf(page.text), "user_id": user, "password": PASSWORD,
                                   "code": world.code(user), "next": "/"})
    assert res.status_code == 303, res.text[:500]
    return c


def last_entry(world) -> AuditEntry:
    with world.registry.read() as s:
        return s.query(AuditEntry).order_by(AuditEntry.seq.desc()).first()


def test_every_page_but_sign_in_needs_a_session(app):
    c = client(app)
    for path in ("/", "/queue", "/requests/new", "/audit", "/admin/users", "/outputs", "/cli", "/checks", "/checks/1"):
        res = c.get(path)
        assert res.status_code == 303 and res.headers["location"].startswith("/sign-in?next="), path


def test_every_post_without_its_csrf_token_is_refused_and_audited(app, world):
    c = sign_in(app, world, "admin_one")
    posts = [r.path.replace("{study_id}", "x-study").replace("{user_id}", "analyst_one").replace("{release_id}", "1")
             for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())]
    assert len(posts) == 14  # a new form must be added here too
    for path in posts:
        res = c.post(path, data={"csrf": "0" * 64, "study_id": "x", "decision": "approve"})
        assert res.status_code == 403 and "security token (CSRF)" in res.text, path
        assert last_entry(world).action == "refused.portal.form"


def test_pages_carry_a_strict_csp_and_session_cookies_are_httponly_and_samesite(app, world):
    c = client(app)
    page = c.get("/sign-in")
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    res = c.post("/sign-in", data={"csrf": csrf(page.text), "user_id": "analyst_one", "password": PASSWORD,
                                   "code": world.code("analyst_one")})
    cookie = res.headers["set-cookie"]
    assert "vpdc_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    secure_app = create_app(PortalConfig(world.home.root, base_url="https://portal.example.org", registry_url=URL,
                                         clock=world.clock))
    assert "strict-transport-security" in client(secure_app).get("/sign-in").headers


def test_a_wrong_password_gets_one_message_and_no_session(app, world):
    c = client(app)
    page = c.get("/sign-in")
    res = c.post("/sign-in", data={"csrf": csrf(page.text), "user_id": "analyst_one", "password": "wrong password!!",
                                   "code": "123456"})
    assert res.status_code == 401 and "the user name, password or code is wrong" in res.text
    assert "vpdc_session" not in res.headers.get("set-cookie", "")


def test_a_page_for_another_role_is_a_refusal_page_and_audited(app, world):
    c = sign_in(app, world, "engineer_one")
    res = c.get("/admin/users")
    assert res.status_code == 403 and "this page is for administrator" in res.text
    assert last_entry(world).action == "refused.portal.page"


@pytest.mark.parametrize("field,value,rule", [
    ("study_id", "../../etc", "study_id: 3-64 letters"),
    ("irb_expires_on", "next tuesday", "irb_expires_on must be a date"),
    ("title", "x" * 301, "title: 301 characters, limit 300"),
    ("purpose", "", "purpose: is required"),
])
def test_a_hostile_form_field_is_named_with_its_rule(app, world, field, value, rule):
    c = sign_in(app, world, "evaluator_one")
    page = c.get("/requests/new")
    body = {"csrf": csrf(page.text), "study_id": "hostile-1", "title": "T", "organisation": "O", "purpose": "P",
            "research_questions": "Q", "output_level": "cohort", "irb_protocol": "I", "irb_expires_on": "2030-01-01",
            "retention_end": "2030-06-01", "equity_communities": "c", "equity_return_of_findings": "r",
            "equity_mitigation": "m", "column": ["program_cohorts.program"]} | {field: value}
    res = c.post("/requests/new", data=body)
    assert res.status_code == 400 and "Traceback" not in res.text
    assert rule in res.text.replace("&#39;", "'"), res.text[-3000:]
    assert f'id="{field}" ' in res.text and 'aria-invalid="true"' in res.text


def test_a_request_submitted_on_the_form_is_seen_by_its_stewards_only(app, world):
    c = sign_in(app, world, "evaluator_one")
    page = c.get("/requests/new")
    res = c.post("/requests/new", data={
        "csrf": csrf(page.text), "study_id": "county-only", "title": "<script>alert(1)</script>", "organisation": "O",
        "purpose": "P", "research_questions": "Q", "output_level": "aggregate", "irb_protocol": "I",
        "irb_expires_on": "2030-01-01", "retention_end": "2030-06-01", "equity_communities": "c",
        "equity_return_of_findings": "r", "equity_mitigation": "m",
        "column": ["program_cohorts.program", "program_cohorts.enrollment_date"]})
    assert res.status_code == 303 and res.headers["location"] == "/requests/county-only?done=submitted"
    page = c.get("/requests/county-only")
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    county = sign_in(app, world, "steward_county")
    assert "county-only" in county.get("/queue").text
    police = sign_in(app, world, "steward_police")
    assert "county-only" not in police.get("/queue").text
    res = police.get("/requests/county-only")
    assert res.status_code == 404 and "county-only" in res.text
    assert last_entry(world).action == "refused.request.view"
    page = county.get("/requests/county-only")
    res = police.post("/requests/county-only/decide", data={"csrf": csrf(police.get("/queue").text),
                                                            "decision": "approve"})
    assert res.status_code in (403, 404) and last_entry(world).action == "refused.request.view"
    assert "Record my decision" in page.text


def test_an_idle_session_is_sent_to_sign_in(app, world):
    c = sign_in(app, world, "analyst_one")
    assert c.get("/").status_code == 200
    world.clock.offset += timedelta(minutes=31)
    try:
        res = c.get("/requests")
        assert res.status_code == 303 and "why=session%20expired" in res.headers["location"]
    finally:
        world.clock.offset -= timedelta(minutes=31)


def test_every_page_is_in_english_and_spanish(app, world):
    c = sign_in(app, world, "admin_one")
    for lang, words in (("es", ("Usuarios", 'lang="es"', "Cerrar sesión")), ("en", ("Users", 'lang="en"', "Sign out"))):
        res = c.get(f"/language/{lang}?next=/admin/users")
        assert res.status_code == 303 and res.headers["location"] == "/admin/users"
        c.cookies.set("lang", lang)
        page = c.get("/admin/users")
        assert all(w in page.text for w in words), lang


def test_every_message_in_the_templates_has_a_spanish_translation():
    from babel.messages.extract import extract_from_dir

    from vpdc.portal.i18n import LOCALE_DIR, translations

    ids = {m[2] for m in extract_from_dir(str(LOCALE_DIR.parent), method_map=[
        ("templates/**.html", "jinja2"), ("**.py", "python")], keywords={"_": None, "N_": None})}
    es = translations("es")
    untranslated = sorted(i for i in ids if isinstance(i, str) and es.gettext(i) == i and i not in ("%(user)s",))
    assert len(ids) > 150 and untranslated == []


def test_an_unexpected_error_is_a_page_not_a_traceback(world, monkeypatch):
    import governance.registry.queue as q

    app = create_app(PortalConfig(world.home.root, registry_url=URL, clock=world.clock))
    c = sign_in(app, world, "steward_police")
    monkeypatch.setattr(q, "review_queue", lambda *a, **k: 1 / 0)
    res = TestClient(app, raise_server_exceptions=False, cookies=c.cookies).get("/queue")
    assert res.status_code == 500 and "Traceback" not in res.text and "ZeroDivision" not in res.text


def approved_request(world, study: str) -> None:
    """A cohort request, submitted and approved by everyone it needs, through the library as signed-in people."""
    from datetime import date

    from governance.identity import Identity
    from governance.registry.models import Request
    from governance.registry.policy import required_reviews
    from governance.registry.workflow import review_request, submit_request

    def as_(user):
        return world.registry.signed_in(Identity(user, "password+totp", f"local:{user}", world.clock()))

    with as_("evaluator_one").transaction() as s:
        submit_request(s, requester="evaluator_one", now=world.clock(), study_id=study, title="Checked cohort",
                       organisation="Evaluation partner", purpose="P", research_questions="Q",
                       columns=[{"dataset": "program_cohorts", "column": c} for c in
                                ("program", "enrollment_date", "age_band_at_enrollment", "sex")],
                       output_level="cohort", irb_protocol="IRB-1", irb_expires_on=date(2030, 1, 1),
                       retention_end=date(2030, 6, 1), equity_communities="c", equity_return_of_findings="r",
                       equity_mitigation="m")
    with world.registry.read() as s:
        partners, community = required_reviews(s, s.query(Request).filter_by(study_id=study).one())
    for who in [f"steward_{p}" for p in sorted(partners)] + (["resident_one"] if community else []):
        with as_(who).transaction() as s:
            review_request(s, reviewer=who, study_id=study, decision="approve", now=world.clock())


def test_a_release_is_downloaded_only_after_two_checkers_approve_it_in_the_portal(app, world):
    approved_request(world, "checked-1")
    evaluator = sign_in(app, world, "evaluator_one")
    res = evaluator.post("/requests/checked-1/export", data={"csrf": csrf(evaluator.get("/outputs").text),
                                                             "program": "ATV"})
    assert res.status_code == 303, res.text[-2000:]
    page = evaluator.get("/outputs").text
    rid = int(re.search(r'href="/checks/(\d+)"', sign_in(app, world, "engineer_one").get("/checks").text).group(1))
    assert "awaiting its checkers (0 / 2)" in page and f'href="/outputs/{rid}/download"' not in page
    from governance.outputs.checking import release_of_file

    with world.registry.read() as s:  # what the export's notification and the demo find the release by
        file = re.search(r"(cohort_[\w-]+_v\d+\.csv)", page).group(1)
        assert release_of_file(s, study_id="checked-1", file=file) == rid
    res = evaluator.get(f"/outputs/{rid}/download")
    assert res.status_code == 403 and "output checking is awaiting" in res.text
    assert last_entry(world).action == "refused.output.download"
    assert evaluator.get(f"/checks/{rid}").status_code == 403  # a requester never checks

    engineer = sign_in(app, world, "engineer_one")
    report = engineer.get(f"/checks/{rid}").text
    assert "Disclosure report" in report and "min_cell" in report and "Record my check" in report
    res = engineer.post(f"/checks/{rid}", data={"csrf": csrf(report), "decision": "reject", "comment": ""})
    assert res.status_code == 403 and "say what must change" in res.text.replace("&#39;", "'")
    assert last_entry(world).action == "refused.output.check"
    res = engineer.post(f"/checks/{rid}", data={"csrf": csrf(report), "decision": "approve"})
    assert res.status_code == 303 and "Record my check" not in engineer.get(f"/checks/{rid}").text
    assert f"/checks/{rid}" not in engineer.get("/checks").text
    police = sign_in(app, world, "steward_police")
    police.post(f"/checks/{rid}", data={"csrf": csrf(police.get(f"/checks/{rid}").text), "decision": "approve"})
    assert "approved by its checkers (2 / 2)" in evaluator.get("/outputs").text
    res = evaluator.get(f"/outputs/{rid}/download")
    assert res.status_code == 200 and "program" in res.text.splitlines()[0]
    assert [e.actor for e in audit_actions(world, "output.check.approve")] == ["engineer_one", "steward_police"]


def audit_actions(world, action: str) -> list[AuditEntry]:
    with world.registry.read() as s:
        return list(s.query(AuditEntry).filter(AuditEntry.action == action).order_by(AuditEntry.seq))


def test_a_nul_in_an_address_is_no_such_page(app, world):
    c = sign_in(app, world, "steward_police")
    res = c.get("/requests/a%00b")
    assert res.status_code == 404 and "There is no such page" in res.text


def test_analysts_browse_the_views_filter_them_and_every_read_is_audited(app, world):
    from tests.portal_helpers import write_browse_file

    write_browse_file(world.home)
    c = sign_in(app, world, "analyst_one")
    page = c.get("/browse")
    assert page.status_code == 200 and "the first 15 of 15 rows" in page.text and "police_contact_victim" in page.text
    assert last_entry(world).action == "browse.read" and last_entry(world).actor == "analyst_one"
    page = c.get("/browse?view=events&column=sector&value=hospital")
    assert page.status_code == 200 and "the first 3 of 3 rows" in page.text and "police_contact_victim" not in page.text
    # hostile or wrong input: a message naming the rule, audited, never a traceback
    page = c.get("/browse?view=events&column=person_key&value=x")
    assert page.status_code == 400 and "not a column of events" in page.text and "Traceback" not in page.text
    assert last_entry(world).action == "refused.browse"
    page = c.get("/browse?view=analytics.events")
    assert page.status_code == 400 and "no view named" in page.text
    c.cookies.set("lang", "es")
    assert "Explorar los datos" in c.get("/browse").text


def test_other_roles_may_not_browse(app, world):
    c = sign_in(app, world, "steward_police")
    res = c.get("/browse")
    assert res.status_code == 403 and "this page is for analyst, evaluator" in res.text
    assert last_entry(world).action == "refused.portal.page"
