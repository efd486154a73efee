"""A comparison group for a program cohort: non-participants matched on age band, sex, area and prior contacts.

For each participant, candidates are persons never enrolled in the program with the same sex, the same
age band at the participant's enrolment date, and the same area (whether most of their located events
fall in a priority area). Up to ``pool`` candidates per participant are drawn (seeded), those in the same
bucket of prior police contacts (0, 1, 2+ as victim or suspect in the window before the index date) are
kept, and up to ``ratio`` are taken, each control used once. Controls get the participant's enrolment
date as their index date, and their outcomes are counted in the same windows with the same definitions
as ``analytics.program_cohorts`` (school-year absence measures are not computed for controls).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from governance.defaults import OUTCOME_MEASURES, age_band_sql

__all__ = ["comparison_group", "EVENT_MEASURES"]

#: Outcome definitions: the program_cohorts mart's own (both read governance.defaults.OUTCOME_MEASURES).
EVENT_MEASURES = OUTCOME_MEASURES


def comparison_group(con: duckdb.DuckDBPyConnection, *, program: str, period_start: date, period_end: date,
                     window_days: int, ratio: int = 1, pool: int = 20, seed: int = 20261121,
                     schema: str = "analytics") -> pd.DataFrame:
    """Matched non-participants with their outcomes (person_key, index date, strata, outcome columns)."""
    prior = "(e.event_type = 'police_contact_victim' or e.event_type in ('police_contact_suspect', 'police_arrest'))"
    measures = ",\n".join(
        f"count(*) filter (where {c} and e.event_date between m.index_date - {window_days} and m.index_date) "
        f"as {n}_pre, count(*) filter (where {c} and e.event_date > m.index_date and "
        f"e.event_date <= m.index_date + {window_days}) as {n}_post" for n, c in EVENT_MEASURES.items())
    sql = f"""
    with part as (
        select person_key, enrollment_date as index_date, age_band_at_enrollment as age_band, sex
        from {schema}.program_cohorts
        where program = $program and window_days = $window and enrollment_date between $start and $end),
    enrolled as (select distinct person_key from {schema}.program_cohorts where program = $program),
    area as (select person_key, avg(case when is_priority_area then 1 else 0 end) >= 0.5 as priority
             from {schema}.events where is_priority_area is not null group by 1),
    part_area as (select p.*, coalesce(a.priority, false) priority from part p left join area a using (person_key)),
    cand as (select s.person_key, s.birth_year, s.sex, coalesce(a.priority, false) priority
             from {schema}.persons s left join area a using (person_key)
             where s.person_key not in (select person_key from enrolled)),
    drawn as (
        select p.person_key part_key, p.index_date, p.age_band, p.sex, p.priority, c.person_key
        from part_area p join cand c
          on c.sex is not distinct from p.sex and c.priority = p.priority
         and {age_band_sql('year(p.index_date) - c.birth_year')} = p.age_band
        qualify row_number() over (partition by p.person_key order by hash(c.person_key || p.person_key || $seed)) <= $pool),
    prior_part as (
        select p.person_key, least(count(e.event_date), 2) bucket from part p
        left join {schema}.events e on e.person_key = p.person_key and {prior}
             and e.event_date >= p.index_date - {window_days} and e.event_date < p.index_date
        group by 1),
    prior_drawn as (
        select d.part_key, d.person_key, least(count(e.event_date), 2) bucket from drawn d
        left join {schema}.events e on e.person_key = d.person_key and {prior}
             and e.event_date >= d.index_date - {window_days} and e.event_date < d.index_date
        group by 1, 2),
    same_bucket as (
        select d.*, hash(d.person_key || d.part_key || $seed) r from drawn d
        join prior_drawn pd using (part_key, person_key) join prior_part pp on pp.person_key = d.part_key
        where pd.bucket = pp.bucket
        qualify row_number() over (partition by d.person_key order by r) = 1),
    matched as (select * from same_bucket qualify row_number() over (partition by part_key order by r) <= $ratio)
    select m.person_key, m.index_date as enrollment_date, m.age_band as age_band_at_enrollment, m.sex,
           s.race_ethnicity, {measures}
    from matched m join {schema}.persons s using (person_key)
    left join {schema}.events e on e.person_key = m.person_key
         and e.event_date between m.index_date - {window_days} and m.index_date + {window_days}
    group by all
    """
    return con.execute(sql, {"program": program, "window": window_days, "start": period_start, "end": period_end,
                             "ratio": ratio, "pool": pool, "seed": str(seed)}).df()
