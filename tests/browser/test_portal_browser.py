"""The whole path in real Chromium: an evaluator submits a request, each partner's steward approves in their own
session (one by single sign-on, one with the keyboard alone), the community reviewer signs in by an e-mailed
link and approves with a column removed, the evaluator exports the cohort, two output checkers approve it, the
evaluator downloads it. And the refusals: a
steward cannot see or decide another agency's request, a POST without its CSRF token, an idle session.
axe-core finds no WCAG 2.1 AA violation on any page, in English and Spanish."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest

from governance.outputs import DEFAULT_COLUMNS
from governance.registry.models import AuditEntry
from governance.registry.seed import PARTNERS
from tests.portal_helpers import PASSWORD

# in file order, in one process (make test distributes whole files): the accessibility pass visits the request
# the whole-path test created
pytestmark = pytest.mark.browser
STUDY = "atv-browser"
REMOVED = "school_absence_days_post"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def new_page(browser, portal, lang: str = "en"):
    context = browser.new_context(base_url=portal.url, locale="en-US", accept_downloads=True)
    page = context.new_page()
    if lang != "en":
        page.goto(f"/language/{lang}?next=/sign-in")
    return page


def sign_in(page, portal, user: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(portal.world.code(user))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_text(f"Signed in as {user}").is_visible()


def sign_in_with_keyboard(page, portal, user: str) -> None:
    """Tab from the top of the page to each field, type, Enter: no mouse."""
    page.goto("/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # the first stop skips to the content
    tab_to(page, "user_id")
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(portal.world.code(user))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/$"))


def tab_to(page, element_id: str, limit: int = 80) -> None:
    for _ in range(limit):
        if page.evaluate("document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} cannot be reached with the Tab key")


def axe(page) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    assert results.violations_count == 0, f"{page.url}:\n{results.generate_report()}"


def approve(page, study: str, remove: str | None = None) -> None:
    page.goto(f"/requests/{study}")
    page.get_by_label("Approve (with the conditions below, if any)").check()
    if remove:
        page.get_by_label(f"program_cohorts.{remove}", exact=True).check()
    page.get_by_label("Comment (kept in the registry)").fill("Approved for the evaluation as described.")
    page.get_by_role("button", name="Record my decision").click()
    page.wait_for_url(re.compile(r"done=decided"))


def submit_request(page, study: str, columns: list[str], level: str = "cohort") -> None:
    page.goto("/requests/new")
    today = date.today()
    for label, value in (("Study id", study), ("Title", f"Evaluation {study}"), ("Organisation", "Evaluation partner"),
                         ("Purpose", "Whether ATV enrolment is followed by fewer violent injuries."),
                         ("Research questions", "Do police contacts and injuries fall after enrolment?"),
                         ("IRB protocol", "IRB-2026-0417"),
                         ("Which communities are affected, and how?", "Residents of the four priority areas."),
                         ("How will findings return to them?", "Community briefings first."),
                         ("How will harm be avoided?", "Stratified reporting only where linkage error is even.")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("IRB approval expires on").fill((today + timedelta(days=365)).isoformat())
    page.get_by_label("Retention ends on").fill((today + timedelta(days=500)).isoformat())
    page.get_by_label("Output level").select_option(level)
    for c in columns:
        page.locator(f"#c-program_cohorts-{c}").check()
    page.get_by_role("button", name="Submit the request").click()
    page.wait_for_url(re.compile(rf"/requests/{study}\?done=submitted"))


def entries(portal):
    with portal.world.registry.read() as s:
        return list(s.query(AuditEntry).order_by(AuditEntry.seq))


def test_the_whole_path_from_request_to_download(browser, portal):
    evaluator = new_page(browser, portal)
    sign_in(evaluator, portal, "evaluator_one")
    submit_request(evaluator, STUDY, DEFAULT_COLUMNS)
    assert evaluator.get_by_text("awaiting approval of").is_visible()
    notified = portal.sink.wait(len(PARTNERS) + 1)  # every reviewer told, with a title and a link only
    assert {m["to"][0] for m in notified} == {portal.world.emails[f"steward_{p}"] for p in PARTNERS} | {
        "resident@example.org"}
    assert all(f"{portal.url}/requests/{STUDY}" in m["body"] and "Purpose" not in m["body"] for m in notified)

    for p in PARTNERS:  # each steward in their own browser session
        page = new_page(browser, portal)
        if p == "hospital_b":  # single sign-on through the identity provider
            page.goto("/sign-in")
            page.get_by_role("link", name="Sign in with Hospital B").click()
            page.wait_for_url(re.compile(r"localhost:\d+/oauth2/authorize"))
            page.locator("input[name=sub]").fill("hospital-b-steward")
            page.get_by_role("button", name="Authorize").click()
            page.wait_for_url(re.compile(r"127\.0\.0\.1:\d+/$"))
        elif p == "schools":
            sign_in_with_keyboard(page, portal, f"steward_{p}")
        else:
            sign_in(page, portal, f"steward_{p}")
        page.goto("/queue")
        page.get_by_role("link", name=STUDY).click()
        if p == "schools":  # decide with the keyboard alone
            tab_to(page, "d-approve")
            page.keyboard.press("Space")
            tab_to(page, "comment")
            page.keyboard.type("Approved.")
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.textContent") == "Record my decision"
            page.keyboard.press("Enter")
            page.wait_for_url(re.compile(r"done=decided"))
        else:
            approve(page, STUDY)
        page.context.close()
    methods = {e.actor: e.detail["auth"]["method"] for e in entries(portal) if e.action == "review.approve"}
    assert methods["steward_hospital_b"] == "oidc" and methods["steward_police"] == "password+totp"

    community = new_page(browser, portal)
    community.goto("/sign-in")
    before = len(portal.sink.messages)
    community.get_by_label("Your e-mail address").fill("resident@example.org")
    community.get_by_role("button", name="E-mail me a sign-in link").click()
    assert community.get_by_text("If this address belongs to an account").is_visible()
    links = [m for m in portal.sink.wait(before + 1)[before:] if "/auth/link/" in m["body"]]
    assert links and links[0]["to"] == ["resident@example.org"]
    link = re.search(r"(http://127\.0\.0\.1:\d+/auth/link/\S+)", links[0]["body"]).group(1)
    community.goto(link)
    community.get_by_role("button", name="Sign in").click()
    community.wait_for_url(re.compile(r"/$"))
    approve(community, STUDY, remove=REMOVED)
    review = [e for e in entries(portal) if e.action == "review.approve_with_conditions"][-1]
    assert review.actor == "resident_one" and review.detail["auth"]["method"] == "email-link"
    community.goto(link)  # the link is used up
    community.get_by_role("button", name="Sign in").click()
    assert community.get_by_text("this sign-in link cannot be used").is_visible()

    evaluator.goto(f"/requests/{STUDY}")
    assert evaluator.get_by_text("Active", exact=True).is_visible()
    evaluator.get_by_role("button", name="Export through the gate").click()
    evaluator.wait_for_url(re.compile(r"/outputs"))
    assert evaluator.get_by_text("awaiting its checkers (0 / 2)").is_visible()  # no download link yet
    assert evaluator.get_by_role("link", name=re.compile(r"Download cohort_atv")).count() == 0
    for checker in ("engineer_one", "steward_county"):  # two independent checkers, each in their own session
        page = new_page(browser, portal)
        sign_in(page, portal, checker)
        page.goto("/checks")
        page.get_by_role("link", name=re.compile(r"cohort_atv")).click()
        assert page.get_by_role("heading", name=re.compile("Disclosure report")).is_visible()
        page.get_by_label("Approve: it may leave").check()
        page.get_by_role("button", name="Record my check").click()
        page.wait_for_url(re.compile(r"done=1"))
        page.context.close()
    evaluator.goto("/outputs")
    with evaluator.expect_download() as got:
        evaluator.get_by_role("link", name=re.compile(r"Download cohort_atv")).click()
    rows = list(csv.DictReader(io.StringIO(open(got.value.path(), encoding="utf-8").read())))
    assert rows and "study_person_id" in rows[0] and REMOVED not in rows[0] and "person_key" not in rows[0]
    assert "output.downloaded" in [e.action for e in entries(portal)]

    # revoked: the next download is refused at the gate, with a page saying why
    police = new_page(browser, portal)
    sign_in(police, portal, "steward_police")
    police.goto(f"/requests/{STUDY}")
    police.get_by_label("Why (kept in the audit log)").fill("Agency counsel asked for a pause.")
    police.get_by_role("button", name="Revoke the approval").click()
    police.wait_for_url(re.compile(r"done=revoked"))
    evaluator.goto("/outputs")
    evaluator.get_by_role("link", name=re.compile(r"Download cohort_atv")).click()
    assert evaluator.get_by_role("heading", name="This was refused").is_visible()
    assert evaluator.get_by_text("revoked by steward_police").is_visible()
    with portal.world.registry.read() as s:
        from governance.registry import audit

        assert audit.verify(s).ok


def test_a_steward_cannot_see_or_decide_another_agencys_request(browser, portal):
    evaluator = new_page(browser, portal)
    sign_in(evaluator, portal, "evaluator_one")
    submit_request(evaluator, "county-aggregate", ["program", "enrollment_date"], level="aggregate")
    police = new_page(browser, portal)
    sign_in(police, portal, "steward_police")
    police.goto("/queue")
    assert police.get_by_role("link", name="county-aggregate").count() == 0
    res = police.goto("/requests/county-aggregate")
    assert res.status == 404 and police.get_by_role("heading", name="This was refused").is_visible()
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', police.goto("/queue").text()).group(1)
    res = police.request.post("/requests/county-aggregate/decide", form={"csrf": token, "decision": "approve"})
    assert res.status == 404
    assert [e.action for e in entries(portal)][-1] == "refused.request.view"


def test_a_post_without_its_csrf_token_is_refused(browser, portal):
    page = new_page(browser, portal)
    sign_in(page, portal, "steward_county")
    res = page.request.post(f"/requests/{STUDY}/revoke", form={"reason": "forged"})
    assert res.status == 403 and "security token (CSRF)" in res.text()
    assert [e.action for e in entries(portal)][-1] == "refused.portal.form"


def test_an_expired_session_is_sent_to_sign_in(browser, portal):
    page = new_page(browser, portal)
    sign_in(page, portal, "engineer_one")
    page.goto("/engineering")
    portal.world.clock.offset += timedelta(minutes=31)
    page.goto("/engineering")
    assert "/sign-in" in page.url and page.get_by_text("Your session has ended").is_visible()
    sign_in(page, portal, "engineer_one")


def test_a_stale_sign_in_cannot_decide(browser, portal):
    evaluator = new_page(browser, portal)
    sign_in(evaluator, portal, "evaluator_one")
    submit_request(evaluator, "stale-decision", ["program", "enrollment_date"], level="aggregate")
    county = new_page(browser, portal)
    sign_in(county, portal, "steward_county")
    portal.world.clock.offset += timedelta(minutes=20)  # still signed in (the page keeps it alive), but not recently
    county.goto("/queue")
    county.goto("/requests/stale-decision")
    county.get_by_label("Approve (with the conditions below, if any)").check()
    county.get_by_role("button", name="Record my decision").click()
    assert county.get_by_text("needs a sign-in within the last 15 minutes").is_visible()


PAGES = {
    "evaluator_one": ["/", "/requests", "/requests/new", "/outputs", "/cli", f"/requests/{STUDY}/summary", "/browse",
                      "/browse?view=events&column=sector&value=hospital"],
    "steward_county": ["/", "/queue", f"/requests/{STUDY}", "/audit", "/checks"],
    "engineer_one": ["/engineering", "/audit", "/checks", "/checks/1"],
    "admin_one": ["/admin/users", "/admin/agreements"],
}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_axe_finds_no_violation_on_any_page(browser, portal, lang):
    from tests.portal_helpers import write_browse_file

    write_browse_file(portal.world.home)
    page = new_page(browser, portal, lang)
    page.goto("/sign-in")
    assert page.locator("html").get_attribute("lang") == lang
    axe(page)
    for user, paths in PAGES.items():
        page.context.clear_cookies()
        page.context.add_cookies([{"name": "lang", "value": "en", "url": portal.url}])
        sign_in(page, portal, user)
        page.context.add_cookies([{"name": "lang", "value": lang, "url": portal.url}])
        for path in paths:
            res = page.goto(path)
            assert res.status == 200, path
            assert page.locator("html").get_attribute("lang") == lang
            axe(page)
    page.goto("/requests/does-not-exist")  # a refusal page too
    axe(page)
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "lang", "value": "en", "url": portal.url}])
    sign_in(page, portal, "evaluator_one")
    page.context.add_cookies([{"name": "lang", "value": lang, "url": portal.url}])
    res = page.goto("/browse?view=events&column=person_key&value=x")  # the browse page's refusal message
    assert res.status == 400 and page.get_by_role("alert").is_visible()
    axe(page)
