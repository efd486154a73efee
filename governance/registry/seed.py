"""Demo registry content: the collaborative's partners, their stewards, a community reviewer, analysts,
an evaluator, an engineer, data-sharing agreements and the catalogue. Idempotent."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from governance.catalog import seed_catalogue
from governance.registry.models import Agreement, Partner, Role, User

PARTNERS = {"county": "Mecklenburg County", "police": "Police department", "schools": "School district",
            "hospital_a": "Hospital system A", "hospital_b": "Hospital system B"}
DEMO_USERS = [
    *[(f"steward_{p}", f"Data steward, {name}", name, Role.STEWARD, p) for p, name in PARTNERS.items()],
    ("community_board", "Community data review board", "Violence Prevention Community Council", Role.COMMUNITY_REVIEWER, None),
    ("analyst_isc", "ISC analyst", "Institute for Social Capital", Role.ANALYST, None),
    ("evaluator_atv", "ATV program evaluator", "Evaluation partner", Role.EVALUATOR, None),
    ("engineer_ids", "IDS data engineer", "Violence Prevention Data Collaborative", Role.ENGINEER, None),
]


def seed_demo(session: Session, *, dsa_start: date = date(2024, 1, 1), dsa_end: date = date(2027, 12, 31)) -> None:
    for pid, name in PARTNERS.items():
        if session.get(Partner, pid) is None:
            session.add(Partner(id=pid, name=name))
    session.flush()
    for uid, display, org, role, partner in DEMO_USERS:
        if session.get(User, uid) is None:
            session.add(User(id=uid, display_name=display, organisation=org, role=role, partner_id=partner))
    if session.query(Agreement).count() == 0:
        for pid in PARTNERS:
            session.add(Agreement(partner_id=pid, title=f"Data-sharing agreement with {PARTNERS[pid]}",
                                  starts_on=dsa_start, expires_on=dsa_end))
    seed_catalogue(session)
