"""The collaborative's governance defaults (DESIGN.md, "Governance defaults"), each written once.

Every part of the system that applies one of these values reads it from here: the disclosure rules
(:class:`governance.disclosure.DisclosureRules`), the registry's per-partner defaults, the CLI's and
Dagster's options, and dbt, which receives them as vars (:func:`dbt_vars`; ``dbt_project.yml`` holds no
copy). A partner may ask for a stricter rule in the registry; the strictest partner of a release wins.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AGE_BANDS", "AGE_BANDS_WIDER", "DOMINANCE_K", "DOMINANCE_N", "K_ANONYMITY", "MIN_CELL", "OUTCOME_MEASURES",
           "OUTCOME_WINDOW_DAYS", "OUTPUT_CHECKERS", "SUMMARY_BREAKDOWNS", "age_band_sql", "dbt_vars"]

#: Smallest publishable non-zero count: counts 1..MIN_CELL-1 are never published (0 is: it discloses no one).
MIN_CELL = 11
#: Dominance rule for sums: a cell fails when its DOMINANCE_N largest contributors hold DOMINANCE_K of it.
DOMINANCE_N = 2
DOMINANCE_K = 0.90
#: Every combination of quasi-identifiers in a record-level file is shared by at least this many persons.
K_ANONYMITY = 11
#: Output checking (as OpenSAFELY's Airlock): how many independent checkers, none of them the requester, must
#: approve a release of each output level before it can be downloaded. A level missing here needs two.
OUTPUT_CHECKERS: dict[str, int] = {"aggregate": 2, "cohort": 2, "linked_extract": 2}
#: Program cohorts count outcomes in this many days before and after enrollment.
OUTCOME_WINDOW_DAYS = 365


#: What an aggregate summary of a cohort may break down by (its quasi-identifiers, published as groups only).
SUMMARY_BREAKDOWNS: tuple[str, ...] = ("age_band_at_enrollment", "sex", "race_ethnicity")
#: Age bands of the marts, as (label, first age of the next band). They follow CDC WISQARS youth-violence
#: reporting (10-24 split at 14/17) and ten-year adult bands; a null or negative age is "Unknown".
AGE_BANDS: tuple[tuple[str, int | None], ...] = (
    ("0-9", 10), ("10-14", 15), ("15-17", 18), ("18-24", 25), ("25-34", 35), ("35-44", 45), ("45-54", 55),
    ("55-64", 65), ("65+", None))
#: One generalisation step over those bands (record-level releases): youth, young adult, adult, older.
AGE_BANDS_WIDER: dict[str, str] = {"0-9": "0-17", "10-14": "0-17", "15-17": "0-17", "18-24": "18-34",
                                   "25-34": "18-34", "35-44": "35-54", "45-54": "35-54", "55-64": "55+", "65+": "55+",
                                   "Unknown": "Unknown"}
#: Outcomes of program cohorts and their comparison groups: name -> condition on an event row ``e`` of the
#: events mart. Counted in the pre and post windows of each enrollment (``<name>_pre``, ``<name>_post``).
OUTCOME_MEASURES: dict[str, str] = {
    "police_victim_contacts": "e.event_type = 'police_contact_victim'",
    "police_suspect_contacts": "e.event_type in ('police_contact_suspect', 'police_arrest')",
    "violent_offense_victimisations": "e.is_violent_offense_victim",
    "violent_injury_visits": "e.sector = 'hospital' and e.is_assault_injury",
    "firearm_injury_visits": "e.sector = 'hospital' and e.is_firearm_injury",
    "school_suspensions": "e.sector = 'schools'",
    "school_fighting_suspensions": "e.is_school_suspension_fighting",
}


def age_band_sql(age: str) -> str:
    """The SQL of an age band from an age expression: the same CASE as the dbt macro ``age_band``."""
    whens = " ".join(f"when {age} < {upper} then '{label}'" for label, upper in AGE_BANDS if upper is not None)
    return f"case when {age} is null or {age} < 0 then 'Unknown' {whens} else '{AGE_BANDS[-1][0]}' end"


def dbt_vars() -> dict[str, Any]:
    """The vars every dbt invocation receives (``dbt ... --vars``): the same values, never a second copy."""
    return {"min_cell_size": MIN_CELL, "outcome_window_days": OUTCOME_WINDOW_DAYS,
            "age_bands": [[label, upper] for label, upper in AGE_BANDS], "outcome_measures": OUTCOME_MEASURES}
