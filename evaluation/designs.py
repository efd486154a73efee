"""What each evaluation asks and how: the index events, outcomes, windows and matching variables, written once.

An evaluation compares participants with non-participants who had the same kind of *index event* (the event
that makes a person eligible: a violent police contact in a priority area for ATV, an assault-injury visit for
HVIP). Both groups are counted in the same windows around that event, so the selection on a recent event that
biases a naive before/after (regression to the mean) is the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AREA_OUTCOME", "DESIGNS", "MATCH_ON", "PRIOR_DAYS", "PRIOR_EVENTS", "Design", "PROGRAMS"]

#: Prior risk, the first matching variable: police contacts (any role) and assault-injury visits in the
#: PRIOR_DAYS before the index event (the index day excluded), in buckets 0, 1, 2, 3+.
PRIOR_DAYS = 365
PRIOR_EVENTS = ("(e.sector = 'police' and e.event_type in ('police_contact_victim', 'police_contact_suspect', "
                "'police_arrest')) or (e.sector = 'hospital' and e.is_assault_injury)")
PRIOR_CAP = 3
#: The strata of coarsened exact matching: prior events, age band and sex, area (the priority area of the
#: index event, or none) and the calendar year of the index event (the same calendar time, so a place-based
#: program or a trend moves both groups alike).
MATCH_ON: tuple[str, ...] = ("prior_events", "age_band", "sex", "area", "index_year")

#: Violent incidents located in a place (the area-level outcome).
AREA_OUTCOME = "e.sector = 'police' and (e.is_violent_offense_victim or e.is_violent_offense_suspect)"


@dataclass(frozen=True)
class Design:
    """One program's evaluation design."""

    program: str
    question: str
    #: SQL condition on an events row ``e`` that makes it an index event
    index_event: str
    index_label: str
    #: days from index event to enrollment that tie a participant to their index event
    lag_days: tuple[int, int]
    #: outcome name -> (label, SQL condition on ``e``) for the difference-in-differences
    outcomes: dict[str, tuple[str, str]]
    #: the time-to-event outcome (label, SQL condition), or None
    survival: tuple[str, str] | None
    window_days: int = 365


PROGRAMS = ("ATV", "HVIP")

_VIOLENT_POLICE = "e.sector = 'police' and (e.is_violent_offense_victim or e.is_violent_offense_suspect)"
_ASSAULT_VISIT = "e.sector = 'hospital' and e.is_assault_injury"

DESIGNS: dict[str, Design] = {
    "ATV": Design(
        program="ATV",
        question="Do Alternatives to Violence participants have fewer violent police contacts (as victim or "
                 "suspect) in the year after enrollment than comparable young people who did not enroll?",
        index_event="e.sector = 'police' and (e.is_violent_offense_victim or e.is_violent_offense_suspect) "
                    "and e.age_at_event between 14 and 30 and e.is_priority_area",
        index_label="a first violent police contact (victim or suspect) at age 14-30 located in a priority area",
        lag_days=(1, 120),
        outcomes={
            "violent_police_contacts": ("violent police contacts (victim or suspect)", _VIOLENT_POLICE),
            "violent_victimisations": ("violent victimisations", "e.sector = 'police' and e.is_violent_offense_victim"),
            "violent_suspect_contacts": ("violent suspect contacts",
                                         "e.sector = 'police' and e.is_violent_offense_suspect"),
        },
        survival=None,
    ),
    "HVIP": Design(
        program="HVIP",
        question="Do hospital-based violence intervention participants return with a violent injury later, or "
                 "less often, than comparable assault-injury patients who did not enroll?",
        index_event=_ASSAULT_VISIT,
        index_label="a first assault-injury hospital visit",
        lag_days=(0, 30),
        outcomes={"violent_injury_visits": ("assault-injury visits", _ASSAULT_VISIT)},
        survival=("violent re-injury (an assault-injury visit)", _ASSAULT_VISIT),
    ),
}
