"""The data catalogue that requests are written against: mart datasets, their columns, and which
partners' data each column derives from (whose stewards must approve its use).

Kept in code next to the marts it describes; ``seed_catalogue`` loads it into the registry.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from governance.registry.models import Dataset, DatasetColumn
from partner_kit.profiles import partners

ALL = list(tuple(partners()))
HOSPITALS = ["hospital_a", "hospital_b"]

#: dataset -> column -> (sources, race_ethnicity, quasi_identifier)
CATALOGUE: dict[str, dict[str, tuple[list[str], bool, bool]]] = {
    "program_cohorts": {
        "program": (["county"], False, False),
        "enrollment_date": (["county"], False, True),
        "window_days": (["county"], False, False),
        "post_window_complete": (["county"], False, False),
        "age_band_at_enrollment": (ALL, False, True),
        "sex": (ALL, False, True),
        "race_ethnicity": (ALL, True, True),
        "police_victim_contacts_pre": (["police"], False, False),
        "police_victim_contacts_post": (["police"], False, False),
        "police_suspect_contacts_pre": (["police"], False, False),
        "police_suspect_contacts_post": (["police"], False, False),
        "violent_offense_victimisations_pre": (["police"], False, False),
        "violent_offense_victimisations_post": (["police"], False, False),
        "violent_injury_visits_pre": (HOSPITALS, False, False),
        "violent_injury_visits_post": (HOSPITALS, False, False),
        "firearm_injury_visits_pre": (HOSPITALS, False, False),
        "firearm_injury_visits_post": (HOSPITALS, False, False),
        "school_suspensions_pre": (["schools"], False, False),
        "school_suspensions_post": (["schools"], False, False),
        "school_fighting_suspensions_pre": (["schools"], False, False),
        "school_fighting_suspensions_post": (["schools"], False, False),
        "school_absence_days_pre": (["schools"], False, False),
        "school_absence_days_post": (["schools"], False, False),
        "school_days_enrolled_pre": (["schools"], False, False),
        "school_days_enrolled_post": (["schools"], False, False),
    },
    "events": {
        "event_date": (ALL, False, True),
        "sector": (ALL, False, False),
        "source": (ALL, False, False),
        "event_type": (ALL, False, False),
        "age_band_at_event": (ALL, False, True),
        "is_violent_offense_victim": (["police"], False, False),
        "is_violent_offense_suspect": (["police"], False, False),
        "is_firearm_injury": (HOSPITALS, False, False),
        "is_assault_ed_visit": (HOSPITALS, False, False),
        "is_school_suspension_fighting": (["schools"], False, False),
        "is_program_enrollment": (["county"], False, False),
        "program": (["county"], False, False),
        "neighbourhood": (ALL, False, True),
        "is_priority_area": (ALL, False, False),
    },
    "community_violence_indicators": {
        "month": (ALL, False, False),
        "neighbourhood": (ALL, False, False),
        "homicides": (["police"], False, False),
        "violent_crimes": (["police"], False, False),
        "firearm_injuries": (HOSPITALS, False, False),
        "violence_related_ed_visits": (HOSPITALS, False, False),
        "race_ethnicity": (ALL, True, False),
    },
}


def seed_catalogue(session: Session) -> int:
    n = 0
    for ds, cols in CATALOGUE.items():
        dataset = session.get(Dataset, ds) or Dataset(id=ds, description=f"mart {ds}")
        session.add(dataset)
        existing = {c.name for c in dataset.columns}
        for name, (sources, race, qi) in cols.items():
            if name not in existing:
                dataset.columns.append(DatasetColumn(name=name, sources=sources, race_ethnicity=race,
                                                     quasi_identifier=qi))
                n += 1
    return n


def quasi_identifiers(dataset: str) -> list[str]:
    return [c for c, (_, _, qi) in CATALOGUE.get(dataset, {}).items() if qi]
