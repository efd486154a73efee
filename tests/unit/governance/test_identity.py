"""Identity on a real registry: local accounts (argon2id + TOTP, lockout), e-mailed single-use links through a
real SMTP server (aiosmtpd on loopback), OpenID Connect against a real provider on loopback (oidc-provider-mock),
sessions, the registry's mode, and every audit entry naming who authenticated and how."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from sqlalchemy import text

from governance.identity import Identity, registry_mode
from governance.identity import signin as si
from governance.identity.policy import LOCKOUT, MAX_FAILURES, RECENT_SIGN_IN
from governance.registry.db import Registry
from governance.registry.errors import GovernanceError, PermissionRefused
from governance.registry.models import AuditEntry
from governance.registry.workflow import review_request, submit_request
from tests.identity_helpers import Sink, free_port

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
COLS = [{"dataset": "program_cohorts", "column": c} for c in ("program", "enrollment_date", "sex")]


def entries(reg):
    with reg.read() as s:
        return list(s.query(AuditEntry).order_by(AuditEntry.seq))


def add(reg, user_id="steward_new", role="steward", partner="police", **kw):
    admin = reg.signed_in(Identity("admin_ids", "password+totp", "local:admin_ids", NOW))
    return si.add_user(admin, actor="admin_ids", user_id=user_id, display_name="New steward", organisation="Police",
                       role=role, partner_id=partner if role == "steward" else None, now=NOW, **kw)


def code(secret, at=NOW):
    return pyotp.TOTP(secret).at(at.timestamp())


def submit(reg, requester="evaluator_atv", at=NOW):
    with reg.transaction() as s:
        submit_request(s, requester=requester, now=at, study_id="atv-eval", title="ATV", organisation="Eval",
                       purpose="p", research_questions="q", columns=COLS, output_level="cohort", irb_protocol="IRB-1",
                       irb_expires_on=date(2027, 6, 30), retention_end=date(2027, 9, 30), equity_communities="c",
                       equity_return_of_findings="r", equity_mitigation="m")


# ------------------------------------------------------------------------------------ local accounts
def test_password_and_totp_sign_in_opens_a_session_and_the_audit_names_the_method(reg):
    made = add(reg, password=PASSWORD, totp=True)
    assert made["methods"] == ["password+totp"] and made["totp_uri"].startswith("otpauth://totp/")
    ident, token = si.password_sign_in(reg, user_id="steward_new", password=PASSWORD, code=code(made["totp_secret"]),
                                       now=NOW)
    assert ident.user_id == "steward_new" and ident.method == "password+totp"
    again, why = si.session_identity(reg, token=token, now=NOW + timedelta(minutes=5))
    assert again is not None and again.user_id == "steward_new" and why == ""
    last = entries(reg)[-1]
    assert last.action == "auth.signed_in" and last.detail["auth"]["method"] == "password+totp"
    assert last.detail["auth"]["subject"] == "local:steward_new"
    # nothing secret in any entry
    flat = str([e.detail for e in entries(reg)])
    assert PASSWORD not in flat and made["totp_secret"] not in flat and token not in flat and "argon2" not in flat


def test_the_password_is_stored_as_argon2id_and_the_totp_secret_encrypted(reg):
    made = add(reg, password=PASSWORD, totp=True)
    with reg.engine.connect() as c:
        pw, totp = c.execute(text("select password_hash, totp_secret from accounts where user_id = 'steward_new'")).one()
    assert pw.startswith("$argon2id$") and made["totp_secret"] not in totp and PASSWORD not in pw


@pytest.mark.parametrize("wrong", ["password", "code", "user"])
def test_a_wrong_password_code_or_user_gets_the_same_refusal_and_is_audited(reg, wrong):
    made = add(reg, password=PASSWORD, totp=True)
    kw = {"user_id": "steward_new", "password": PASSWORD, "code": code(made["totp_secret"])}
    if wrong == "user":
        kw["user_id"] = "nobody_here"
    elif wrong == "password":
        kw["password"] = "not the password at all"
    elif wrong == "code":
        kw["code"] = f"{(int(kw['code']) + 1) % 1000000:06d}"
    with pytest.raises(si.SignInRefused) as exc:
        si.password_sign_in(reg, now=NOW, **kw)
    assert str(exc.value) == si.WRONG
    last = entries(reg)[-1]
    assert last.action == "refused.sign_in"
    assert last.detail["reason"] == {"password": "wrong password", "code": "wrong second-factor code",
                                     "user": "no such account"}[wrong]


def test_repeated_failures_lock_the_account_then_it_opens_again(reg):
    made = add(reg, password=PASSWORD, totp=True)
    for _ in range(MAX_FAILURES):
        with pytest.raises(si.SignInRefused):
            si.password_sign_in(reg, user_id="steward_new", password="wrong password!!", code="123456", now=NOW)
    assert "auth.locked" in [e.action for e in entries(reg)]
    with pytest.raises(si.SignInRefused):  # even the right password and code, while locked
        si.password_sign_in(reg, user_id="steward_new", password=PASSWORD, code=code(made["totp_secret"]), now=NOW)
    assert entries(reg)[-1].detail["reason"] == "account locked"
    later = NOW + LOCKOUT + timedelta(seconds=1)
    ident, _ = si.password_sign_in(reg, user_id="steward_new", password=PASSWORD,
                                   code=code(made["totp_secret"], later), now=later)
    assert ident.user_id == "steward_new"


def test_a_totp_code_is_accepted_once(reg):
    made = add(reg, password=PASSWORD, totp=True)
    c = code(made["totp_secret"])
    si.password_sign_in(reg, user_id="steward_new", password=PASSWORD, code=c, now=NOW)
    with pytest.raises(si.SignInRefused):
        si.password_sign_in(reg, user_id="steward_new", password=PASSWORD, code=c, now=NOW + timedelta(seconds=5))
    assert entries(reg)[-1].detail["reason"] == "second-factor code already used"


def test_a_password_hash_swapped_in_the_table_signs_nobody_in(reg):
    made = add(reg, password=PASSWORD, totp=True)
    add(reg, user_id="steward_other", password="another long password", totp=False)
    with reg.engine.begin() as c:  # someone with database access copies a hash they know the password of
        c.execute(text("update accounts set password_hash = (select password_hash from accounts where "
                       "user_id = 'steward_other') where user_id = 'steward_new'"))
    with pytest.raises(si.SignInRefused):
        si.password_sign_in(reg, user_id="steward_new", password="another long password",
                            code=code(made["totp_secret"]), now=NOW)
    assert "not as audited" in entries(reg)[-1].detail["reason"]


def test_a_session_row_inserted_without_the_key_opens_nothing(reg):
    add(reg, password=PASSWORD, totp=True)
    import hashlib

    token = "forged-token-forged-token-forged-token"
    with reg.engine.begin() as c:
        c.execute(text("insert into auth_sessions values (:d, 'steward_new', 'web', 'password+totp', 'x', :t, :t, :t, "
                       ":e, null)"), {"d": hashlib.sha256(token.encode()).hexdigest(), "t": NOW,
                                      "e": NOW + timedelta(hours=1)})
    assert si.session_identity(reg, token=token, now=NOW)[0] is None


def test_sessions_end_when_idle_at_their_absolute_limit_and_at_sign_out(reg):
    made = add(reg, password=PASSWORD, totp=True)
    _, token = si.password_sign_in(reg, user_id="steward_new", password=PASSWORD, code=code(made["totp_secret"]),
                                   now=NOW)
    assert si.session_identity(reg, token=token, now=NOW + timedelta(minutes=31))[1] == "session expired (idle)"
    t = NOW + timedelta(minutes=1)
    _, token = si.password_sign_in(reg, user_id="steward_new", password=PASSWORD,
                                   code=code(made["totp_secret"], t + timedelta(seconds=30)), now=t)
    step = t
    while step < t + timedelta(hours=12):  # kept alive, still ends at the absolute limit
        step += timedelta(minutes=20)
        ident, why = si.session_identity(reg, token=token, now=step)
        assert (ident is not None) == (step < t + timedelta(hours=12)), (step, why)
    assert why == "session expired"
    _, token = si.password_sign_in(reg, user_id="steward_new", password=PASSWORD,
                                   code=code(made["totp_secret"], step), now=step)
    assert si.end_session(reg, token=token, now=step)
    assert si.session_identity(reg, token=token, now=step)[1] == "signed out"


def test_a_removed_user_cannot_sign_in_or_act(reg):
    made = add(reg, password=PASSWORD, totp=True)
    _, token = si.password_sign_in(reg, user_id="steward_new", password=PASSWORD, code=code(made["totp_secret"]),
                                   now=NOW)
    admin = reg.signed_in(Identity("admin_ids", "password+totp", "local:admin_ids", NOW))
    si.remove_user(admin, actor="admin_ids", user_id="steward_new", now=NOW)
    assert si.session_identity(reg, token=token, now=NOW)[0] is None
    with pytest.raises(si.SignInRefused):
        si.password_sign_in(reg, user_id="steward_new", password=PASSWORD,
                            code=code(made["totp_secret"], NOW + timedelta(seconds=60)), now=NOW + timedelta(seconds=60))
    submit(reg)
    gone = reg.signed_in(Identity("steward_new", "password+totp", "local:steward_new", NOW))
    with pytest.raises(PermissionRefused, match="account was removed"), gone.transaction() as s:
        review_request(s, reviewer="steward_new", study_id="atv-eval", decision="approve", now=NOW)


@pytest.mark.parametrize("field,value,rule", [
    ("user_id", "Bad User!", "user_id: 3-64 lower-case"), ("role", "overlord", "role: one of"),
    ("password", "short", "password: 12 to 128 characters"), ("email", "not-an-address", "email: expected one address"),
    ("oidc_subject", "", "oidc_issuer: expected"),
])
def test_a_bad_field_when_adding_a_user_is_named_with_its_rule_and_audited(reg, field, value, rule):
    kw = {"user_id": "new_person", "role": "analyst"} | {field: value}
    if field == "oidc_subject":
        kw["oidc_issuer"] = "ftp://nope"
    with pytest.raises(GovernanceError, match=re.escape(rule)):
        add(reg, **kw)
    assert entries(reg)[-1].action == "refused.user.add"


def test_only_an_administrator_adds_users(reg):
    steward = reg.signed_in(Identity("steward_police", "password+totp", "local:steward_police", NOW))
    with pytest.raises(PermissionRefused, match="steward_police is a steward: user.add needs the permission"):
        si.add_user(steward, actor="steward_police", user_id="x_user", display_name="X", organisation="O",
                    role="analyst", now=NOW)


# --------------------------------------------------------------------------------- identity and mode
def test_on_a_production_registry_nobody_acts_without_signing_in(tmp_path):
    from governance.identity import set_registry_mode
    from governance.registry.seed import seed_demo

    reg = Registry.at(tmp_path / "registry.db")
    with reg.transaction() as s:
        set_registry_mode(s, "production", actor="registry", now=NOW)
        seed_demo(s, now=NOW)
    with reg.read() as s:
        assert registry_mode(s) == "production"
    with pytest.raises(PermissionRefused, match="nobody is signed in"):
        submit(reg)
    assert entries(reg)[-1].action == "refused.request.submit"
    claimed = reg.signed_in(Identity.demo("evaluator_atv", NOW))
    with pytest.raises(PermissionRefused, match="--as works only on a registry created in demo mode"):
        submit(claimed)
    submit(reg.signed_in(Identity("evaluator_atv", "oidc", "https://idp sub-1", NOW)))
    with reg.transaction() as s, pytest.raises(GovernanceError, match="never becomes a demo registry"):
        set_registry_mode(s, "demo", actor="registry", now=NOW)


def test_a_mode_row_edited_in_the_table_counts_as_production(tmp_path):
    reg = Registry.at(tmp_path / "registry.db")
    from governance.identity import set_registry_mode

    with reg.transaction() as s:
        set_registry_mode(s, "production", actor="registry", now=NOW)
    with reg.engine.begin() as c:
        c.execute(text("update registry_settings set value = 'demo' where key = 'mode'"))
    with reg.read() as s:
        assert registry_mode(s) == "production"


def test_the_signed_in_person_cannot_act_as_someone_else(reg):
    submit(reg)
    me = reg.signed_in(Identity("steward_county", "password+totp", "local:steward_county", NOW))
    with pytest.raises(PermissionRefused, match="signed in as steward_county: cannot act as 'steward_police'"), \
            me.transaction() as s:
        review_request(s, reviewer="steward_police", study_id="atv-eval", decision="approve", now=NOW)
    last = entries(reg)[-1]
    assert last.action == "refused.review" and last.detail["auth"]["subject"] == "local:steward_county"


def test_decisions_need_a_recent_sign_in(reg):
    submit(reg)
    old = NOW - RECENT_SIGN_IN - timedelta(minutes=1)
    stale = reg.signed_in(Identity("steward_police", "oidc", "https://idp s1", old))
    with pytest.raises(GovernanceError, match="needs a sign-in within the last 15 minutes"), stale.transaction() as s:
        review_request(s, reviewer="steward_police", study_id="atv-eval", decision="approve", now=NOW)
    fresh = reg.signed_in(Identity("steward_police", "oidc", "https://idp s1", NOW - timedelta(minutes=2)))
    with fresh.transaction() as s:
        review_request(s, reviewer="steward_police", study_id="atv-eval", decision="approve", now=NOW)
    last = entries(reg)[-1]
    assert last.action == "review.approve" and last.detail["auth"]["method"] == "oidc"


def test_a_demo_registry_accepts_a_claim_and_records_it_as_one(reg):
    submit(reg.signed_in(Identity.demo("evaluator_atv", NOW)))
    assert entries(reg)[-1].detail["auth"]["method"] == "demo-as"


# ------------------------------------------------------------------------------------- e-mail links
def test_an_emailed_link_signs_in_once_and_the_mail_holds_only_the_link(reg):
    from governance.identity.mail import Mailer

    add(reg, user_id="resident_one", role="community_reviewer", email="resident@example.org")
    with Sink() as sink:
        mailer = Mailer("127.0.0.1", sink.port)
        sent = si.request_sign_in_link(reg, email="Resident@Example.org", now=NOW,
                                       send=lambda uid, to, tok: mailer.sign_in_link(to, f"http://portal/l/{tok}"))
        assert sent
        assert not si.request_sign_in_link(reg, email="nobody@example.org", now=NOW, send=lambda *a: None)
        msg = sink.wait(1)[0]
    token = re.search(r"http://portal/l/(\S+)", msg["body"]).group(1)
    assert msg["to"] == ["resident@example.org"]
    ident, _ = si.link_sign_in(reg, token=token, now=NOW + timedelta(minutes=1))
    assert ident.user_id == "resident_one" and ident.method == "email-link"
    with pytest.raises(si.SignInRefused, match="used already"):
        si.link_sign_in(reg, token=token, now=NOW + timedelta(minutes=2))


def test_an_emailed_link_expires(reg):
    add(reg, user_id="resident_one", role="community_reviewer", email="resident@example.org")
    got = []
    si.request_sign_in_link(reg, email="resident@example.org", now=NOW, send=lambda u, a, t: got.append(t))
    with pytest.raises(si.SignInRefused):
        si.link_sign_in(reg, token=got[0], now=NOW + timedelta(minutes=16))


def test_a_flood_of_link_requests_sends_no_flood_of_mail(reg):
    add(reg, user_id="resident_one", role="community_reviewer", email="resident@example.org")
    got = []
    for _ in range(10):
        si.request_sign_in_link(reg, email="resident@example.org", now=NOW, send=lambda u, a, t: got.append(t))
    assert len(got) == 3


# ------------------------------------------------------------------------------------------- OIDC
def _oidc_round_trip(config, sub):
    """What a browser does at the provider: open the authorization URL, submit the subject, follow the
    redirect back (returned instead of followed)."""
    import requests

    from governance.identity import oidc

    started = oidc.begin(config)
    assert requests.get(started["url"], timeout=10).status_code == 200  # the provider's sign-in page
    resp = requests.post(started["url"], data={"sub": sub}, allow_redirects=False, timeout=10)
    assert resp.status_code in (302, 303), resp.text[:300]
    back = parse_qs(urlparse(resp.headers["Location"]).query)
    return started, back


@pytest.fixture(scope="module")
def provider():
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(port=free_port(), require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


def test_oidc_sign_in_against_a_real_provider(reg, provider):
    from governance.identity import oidc

    add(reg, user_id="steward_sso", oidc_issuer=provider, oidc_subject="alice-sub")
    config = oidc.OIDCConfig(provider, "vpdc-portal", "client-secret", "http://127.0.0.1:9/auth/oidc/callback")
    started, back = _oidc_round_trip(config, "alice-sub")
    claims = oidc.finish(config, code=back["code"][0], state=back["state"][0], started=started)
    assert claims["sub"] == "alice-sub" and claims["iss"] == provider
    ident, _ = si.oidc_sign_in(reg, issuer=claims["iss"], subject=claims["sub"], now=NOW)
    assert ident.user_id == "steward_sso" and ident.method == "oidc"
    assert entries(reg)[-1].detail["auth"]["subject"] == f"{provider} alice-sub"


def test_oidc_refuses_a_forged_state_and_an_unlinked_subject(reg, provider):
    from governance.identity import oidc

    config = oidc.OIDCConfig(provider, "vpdc-portal", "client-secret", "http://127.0.0.1:9/auth/oidc/callback")
    started, back = _oidc_round_trip(config, "mallory-sub")
    with pytest.raises(oidc.OIDCError, match="state"):
        oidc.finish(config, code=back["code"][0], state="forged", started=started)
    started, back = _oidc_round_trip(config, "mallory-sub")
    claims = oidc.finish(config, code=back["code"][0], state=back["state"][0], started=started)
    with pytest.raises(si.SignInRefused, match="no active account here is linked"):
        si.oidc_sign_in(reg, issuer=claims["iss"], subject=claims["sub"], now=NOW)
    assert entries(reg)[-1].action == "refused.sign_in"


def test_oidc_refuses_a_token_whose_nonce_is_not_ours(reg, provider):
    from governance.identity import oidc

    config = oidc.OIDCConfig(provider, "vpdc-portal", "client-secret", "http://127.0.0.1:9/auth/oidc/callback")
    started, back = _oidc_round_trip(config, "alice-sub")
    with pytest.raises(oidc.OIDCError, match="does not verify"):
        oidc.finish(config, code=back["code"][0], state=back["state"][0], started=started | {"nonce": "other"})


# ------------------------------------------------------------------------------------------ CLI codes
def test_a_cli_code_is_single_use_and_carries_the_portal_sign_in(reg):
    made = add(reg, password=PASSWORD, totp=True)
    _, web = si.password_sign_in(reg, user_id="steward_new", password=PASSWORD, code=code(made["totp_secret"]),
                                 now=NOW)
    c = si.cli_code(reg, token=web, now=NOW + timedelta(minutes=1))
    ident, token, ends = si.exchange_cli_code(reg, code=c, now=NOW + timedelta(minutes=2))
    assert ident.method == "password+totp" and ident.authenticated_at == NOW and ident.kind == "cli"
    assert si.session_identity(reg, token=token, now=NOW + timedelta(hours=1), kind="cli")[0] is not None
    assert si.session_identity(reg, token=token, now=NOW + timedelta(hours=1))[0] is None  # not a web session
    with pytest.raises(si.SignInRefused):
        si.exchange_cli_code(reg, code=c, now=NOW + timedelta(minutes=3))
    assert ends == NOW + timedelta(minutes=2) + timedelta(hours=8)
