"""The CLI signs in and acts as the signed-in person; --as works only on a registry created in demo mode."""

import json
import re
import stat

import pyotp
import pytest
from typer.testing import CliRunner

from governance.registry.db import registry_for
from governance.registry.models import AuditEntry
from vpdc.cli import app

PASSWORD = "a long admin pass phrase"


def vpdc(*args, input=None, env=None):
    res = CliRunner().invoke(app, list(args), input=input, env=env)
    assert "Traceback" not in res.output
    res.text = " ".join(res.output.split())  # rich wraps at the terminal's width
    return res


def last_entries(home, n=1):
    with registry_for(home).read() as s:
        return list(s.query(AuditEntry).order_by(AuditEntry.seq.desc()).limit(n))[::-1]


@pytest.fixture
def creds(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "credentials.json"
    monkeypatch.setenv("VPDC_CREDENTIALS", str(path))
    monkeypatch.delenv("VPDC_USER", raising=False)
    monkeypatch.delenv("VPDC_REGISTRY_URL", raising=False)
    return path


@pytest.fixture
def production(tmp_path, creds):
    home = tmp_path / "home"
    res = vpdc("registry", "init", "--home", str(home), "--no-demo", "--admin", "admin_one",
               input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    secret = re.search(r"authenticator secret \(shown once\) ([A-Z2-7]+)", res.text).group(1)
    return home, secret


def test_without_a_sign_in_a_production_registry_refuses_every_command_and_audits_it(production):
    home, _ = production
    res = vpdc("review", "queue", "--home", str(home))
    assert res.exit_code == 2 and "nobody is signed in: run `vpdc login` first" in res.text
    last = last_entries(home)[0]
    assert (last.action, last.subject) == ("refused.cli", "review queue")


def test_as_is_refused_on_a_production_registry(production):
    home, _ = production
    res = vpdc("audit", "verify", "--home", str(home), "--as", "admin_one")
    assert res.exit_code == 2 and "--as works only on a registry created in demo mode" in res.text
    assert last_entries(home)[0].action == "refused.cli"


def test_login_stores_a_private_token_and_the_cli_acts_as_that_person(production, creds):
    home, secret = production
    res = vpdc("login", "--home", str(home), "--user", "admin_one", input=f"{PASSWORD}\n{pyotp.TOTP(secret).now()}\n")
    assert res.exit_code == 0 and "signed in as admin_one (password+totp)" in res.text, res.output
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600 and stat.S_IMODE(creds.parent.stat().st_mode) == 0o700
    assert PASSWORD not in creds.read_text()
    res = vpdc("users", "add", "evaluator_two", "--home", str(home), "--role", "evaluator", "--name", "Eval Two",
               "--organisation", "Eval", "--email", "eval2@example.org", "--json")
    assert res.exit_code == 0, res.output
    entry = last_entries(home)[0]
    assert entry.action == "user.added" and entry.actor == "admin_one"
    assert entry.detail["auth"]["method"] == "password+totp" and entry.detail["auth"]["via"] == "cli"
    res = vpdc("whoami", "--home", str(home), "--json")
    assert json.loads(res.stdout)["user"] == "admin_one" and json.loads(res.stdout)["mode"] == "production"
    res = vpdc("logout", "--home", str(home))
    assert res.exit_code == 0 and "signed out" in res.text
    assert vpdc("users", "remove", "evaluator_two", "--home", str(home)).exit_code == 2


def test_a_wrong_code_at_login_is_refused_without_saying_which_part(production, creds):
    home, _ = production
    res = vpdc("login", "--home", str(home), "--user", "admin_one", input=f"{PASSWORD}\n000000\n")
    assert res.exit_code == 2 and "the user name, password or code is wrong" in res.text
    assert not creds.exists()


def test_on_a_demo_registry_as_works_and_says_so(tmp_path, creds):
    home = tmp_path / "demo"
    assert vpdc("registry", "init", "--home", str(home)).exit_code == 0
    res = vpdc("review", "queue", "--home", str(home), "--as", "steward_police")
    assert res.exit_code == 0 and "demo registry" in res.text and "without signing in" in res.text
    res = vpdc("audit", "verify", "--home", str(home), "--as", "steward_police")
    assert res.exit_code == 0
    assert last_entries(home)[0].detail["auth"] == {"subject": "claimed:steward_police", "method": "demo-as",
                                                   "signed_in_at": last_entries(home)[0].detail["auth"]["signed_in_at"],
                                                   "session": "", "via": "cli"}


def test_the_demo_keeps_its_users_sign_in_details_private_in_its_home(tmp_path, creds):
    from datetime import UTC, datetime

    from governance.identity.signin import password_sign_in
    from vpdc.demo import DEMO_USERS_FILE, demo_accounts
    from workspace import Home

    home = tmp_path / "demo"
    assert vpdc("registry", "init", "--home", str(home)).exit_code == 0
    users = demo_accounts(Home(home), now=datetime.now(UTC))
    path = home / DEMO_USERS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and set(users) >= {"steward_police", "admin_ids"}
    res = vpdc("demo-users", "--home", str(home), "--json")
    rows = {r["user"]: r for r in json.loads(res.stdout)}
    ident, _ = password_sign_in(registry_for(home), user_id="steward_police", password=rows["steward_police"]["password"],
                                code=rows["steward_police"]["code"], now=datetime.now(UTC))
    assert ident.method == "password+totp"
    with registry_for(home).read() as s:  # the secrets are in the file, never in the audit
        flat = str([e.detail for e in s.query(AuditEntry)])
    assert users["steward_police"]["password"] not in flat and users["steward_police"]["totp_secret"] not in flat


def test_output_checkers_use_the_cli_as_a_thin_shell_over_the_same_rules(tmp_path, creds):
    from datetime import UTC, datetime

    from governance.registry.models import Release

    home = tmp_path / "demo"
    assert vpdc("registry", "init", "--home", str(home)).exit_code == 0
    with registry_for(home).transaction() as s:
        s.add(Release(study_id="atv-eval", version=1, kind="cohort", spec={}, file="cohort_atv_v1.csv", cells=[],
                      columns=[], persons=40, state="released", actor="evaluator_atv", created_at=datetime.now(UTC)))
    res = vpdc("outputs", "checks", "--home", str(home), "--as", "engineer_ids", "--json")
    assert res.exit_code == 0 and [r["id"] for r in json.loads(res.stdout)] == [1]
    res = vpdc("outputs", "check", "1", "--decision", "approve", "--home", str(home), "--as", "engineer_ids")
    assert res.exit_code == 0 and "release 1: awaiting (1 of 2 checkers approved)" in res.text
    res = vpdc("outputs", "check", "1", "--decision", "reject", "--home", str(home), "--as", "steward_police")
    assert res.exit_code == 2 and "say what must change" in res.text
    res = vpdc("outputs", "check", "1", "--decision", "approve", "--home", str(home), "--as", "evaluator_atv")
    assert res.exit_code == 2 and "needs the permission to check a released output" in res.text
    res = vpdc("outputs", "report", "1", "--home", str(home), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["checking"]["approvals"] == 1
