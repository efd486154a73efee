"""Demo registry content: the collaborative's partners, their stewards, a community reviewer, analysts,
an evaluator, an engineer, data-sharing agreements and the catalogue. Idempotent.

Every row it adds is bound to one ``registry.seeded`` audit entry (the gate reads partners, users,
agreements and catalogue columns, and trusts only audited rows). Rows it did not add are never bound here:
a row slipped into the tables by hand stays unaudited, and refused.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from governance.catalog import seed_catalogue
from governance.registry import audit
from governance.registry.models import Agreement, Audited, Partner, RegistrySetting, Role, User

PARTNERS = {"county": "Mecklenburg County", "police": "Police department", "schools": "School district",
            "hospital_a": "Hospital system A", "hospital_b": "Hospital system B"}
DEMO_USERS = [
    *[(f"steward_{p}", f"Data steward, {name}", name, Role.STEWARD, p) for p, name in PARTNERS.items()],
    ("community_board", "Community data review board", "Violence Prevention Community Council", Role.COMMUNITY_REVIEWER, None),
    ("analyst_isc", "ISC analyst", "Institute for Social Capital", Role.ANALYST, None),
    ("evaluator_atv", "ATV program evaluator", "Evaluation partner", Role.EVALUATOR, None),
    ("engineer_ids", "IDS data engineer", "Violence Prevention Data Collaborative", Role.ENGINEER, None),
    ("admin_ids", "Portal administrator", "Violence Prevention Data Collaborative", Role.ADMINISTRATOR, None),
]


def seed_demo(session: Session, *, dsa_start: date = date(2024, 1, 1), dsa_end: date = date(2027, 12, 31),
              now: datetime | None = None, people: bool = True) -> int:
    """Add what is missing; returns the number of rows added (and audited). A registry without a mode becomes a
    demo registry (where ``--as`` works, and says so); a production registry stays production. ``people=False``
    (a production registry) adds only the partners and the catalogue: administrators add people and agreements."""
    added: list[Audited] = []
    for pid, name in PARTNERS.items():
        if session.get(Partner, pid) is None:
            added.append(Partner(id=pid, name=name))
            session.add(added[-1])
    session.flush()
    for uid, display, org, role, partner in DEMO_USERS if people else ():
        if session.get(User, uid) is None:
            added.append(User(id=uid, display_name=display, organisation=org, role=role, partner_id=partner))
            session.add(added[-1])
    if people and session.query(Agreement).count() == 0:
        for pid in PARTNERS:
            added.append(Agreement(partner_id=pid, title=f"Data-sharing agreement with {PARTNERS[pid]}",
                                   starts_on=dsa_start, expires_on=dsa_end))
            session.add(added[-1])
    session.flush()
    with session.no_autoflush:  # the catalogue's new columns stay in session.new until collected
        seed_catalogue(session)
        added += [o for o in session.new if isinstance(o, Audited)]
    if people and session.get(RegistrySetting, "mode") is None:  # bound by the same registry.seeded entry
        added.append(RegistrySetting(key="mode", value="demo"))
        session.add(added[-1])
    if added:
        session.flush()
        added.sort(key=lambda o: (o.__tablename__, str(audit.row_key(o)[1])))
        audit.append(session, actor="registry", action="registry.seeded", subject="registry",
                     at=now or datetime.now(UTC), detail={"rows": len(added)}, rows=added)
    return len(added)
