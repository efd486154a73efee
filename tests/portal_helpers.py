"""A production collaborative for the portal's tests: a registry where everyone signs in (no --as), its people
(stewards of every partner, a community reviewer by e-mail link, an evaluator, an analyst, an engineer, an
administrator, one steward by single sign-on), and a small synthetic cohort mart to export from."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyotp

from governance.identity import Identity, set_registry_mode
from governance.identity import signin as si
from governance.registry.db import Registry, registry_for
from governance.registry.seed import PARTNERS, seed_demo
from tests.conftest import make_keys
from workspace import Home

PASSWORD = "portal test pass phrase"
COHORT_OUTCOMES = ("police_victim_contacts_pre", "police_victim_contacts_post", "police_suspect_contacts_pre",
                   "police_suspect_contacts_post", "violent_injury_visits_pre", "violent_injury_visits_post",
                   "school_suspensions_pre", "school_suspensions_post", "school_absence_days_pre",
                   "school_absence_days_post")


@dataclass
class Clock:
    """The portal's clock: real time plus an offset a test moves (an idle session, a stale sign-in)."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class World:
    home: Home
    registry: Registry
    secrets: dict[str, str] = field(default_factory=dict)  # user -> TOTP secret
    emails: dict[str, str] = field(default_factory=dict)
    clock: Clock = field(default_factory=Clock)

    def code(self, user: str) -> str:
        """The user's current code, after moving the clock to the next 30-second step: a code is accepted once,
        so two sign-ins of one person need two steps."""
        self.clock.offset += timedelta(seconds=30)
        return pyotp.TOTP(self.secrets[user]).at(self.clock().timestamp())


def cohort_mart(h: Home, persons: int = 400) -> None:
    import duckdb

    rng = random.Random(7)
    rows = [(f"pk_{i:06d}", f"cm{i}", "ATV", date(2023, 1, 1) + timedelta(days=rng.randrange(700)), 365,
             rng.choice(["15-17", "18-24", "25-34"]), rng.choice(["M", "F"]),
             rng.choice(["Black or African American", "Hispanic or Latino", "White"]),
             *[rng.randrange(4) for _ in COHORT_OUTCOMES]) for i in range(persons)]
    with duckdb.connect(str(h.warehouse_db)) as con:
        con.execute("create schema analytics")
        con.execute("create table analytics.program_cohorts (person_key varchar, cohort_member_id varchar, "
                    "program varchar, enrollment_date date, window_days integer, age_band_at_enrollment varchar, "
                    "sex varchar, race_ethnicity varchar, " + ", ".join(f"{c} integer" for c in COHORT_OUTCOMES) + ")")
        con.executemany(f"insert into analytics.program_cohorts values ({', '.join('?' * (8 + len(COHORT_OUTCOMES)))})",
                        rows)


def build_world(root: Path, *, oidc_issuer: str | None = None, registry_url: str | None = None) -> World:
    """Keys, a production registry with its people, a cohort mart. ``registry_url``: PostgreSQL instead of SQLite
    (emptied first: :func:`tests.conftest.postgres_url`)."""
    h = Home(root).ensure()
    make_keys(h.root)
    reg = registry_for(h.root, registry_url)
    now = datetime.now(UTC)
    with reg.transaction() as s:
        set_registry_mode(s, "production", actor="registry", now=now)
        seed_demo(s, now=now, people=False)
    w = World(h, reg)
    made = si.bootstrap_administrator(reg, user_id="admin_one", display_name="Administrator", organisation="VPDC",
                                      password=PASSWORD, now=now)
    w.secrets["admin_one"] = made["totp_secret"]
    admin = reg.signed_in(Identity("admin_one", "password+totp", "local:admin_one", now))
    for p in PARTNERS:
        si.add_agreement(admin, actor="admin_one", partner_id=p, title=f"DSA {p}", starts_on=date(2024, 1, 1),
                         expires_on=date(2030, 12, 31), now=now)
    people = [(f"steward_{p}", "steward", p) for p in PARTNERS] + [
        ("evaluator_one", "evaluator", None), ("analyst_one", "analyst", None), ("engineer_one", "engineer", None)]
    for uid, role, partner in people:
        w.emails[uid] = f"{uid.replace('_', '.')}@example.org"
        kw = {"password": PASSWORD, "totp": True}
        if oidc_issuer and uid == "steward_hospital_b":  # this steward signs in through the identity provider
            kw = {"oidc_issuer": oidc_issuer, "oidc_subject": "hospital-b-steward"}
        made = si.add_user(admin, actor="admin_one", user_id=uid, display_name=uid.replace("_", " ").title(),
                           organisation=partner or "VPDC", role=role, partner_id=partner, email=w.emails[uid],
                           now=now, **kw)
        if "totp_secret" in made:
            w.secrets[uid] = made["totp_secret"]
    w.emails["resident_one"] = "resident@example.org"
    si.add_user(admin, actor="admin_one", user_id="resident_one", display_name="Community reviewer",
                organisation="Community council", role="community_reviewer", email="resident@example.org", now=now)
    cohort_mart(h)
    return w


def write_browse_file(home) -> None:
    """A small analysts' browse file as the marts job writes it (the views themselves are tested in test_marts)."""
    import duckdb

    from governance.outputs.browse import BROWSE_VIEWS

    path = home.analyst_browse_db
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = BROWSE_VIEWS["events"].columns
    with duckdb.connect(str(path)) as con:
        con.execute("create or replace table events (" + ", ".join(f'"{c}" varchar' for c in cols) + ")")
        rows = [[{"event_month": "2024", "sector": s, "event_type": t, "age_band_at_event": "18-24"}.get(c, "All")
                 for c in cols] for s, t in [("police", "police_contact_victim")] * 12 + [("hospital", "ed_visit")] * 3]
        con.executemany(f"insert into events values ({', '.join('?' * len(cols))})", rows)
        con.execute("create or replace table about as select 'events' as view, 11 as k, '[]' as quasi_identifiers, "
                    "'{}' as levels, 0 as records_suppressed, 12 as smallest_class, '2026-11-22T00:00' as built_at")
