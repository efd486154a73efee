"""The analysis frames, built inside the warehouse (analytics zone) from the events and persons marts.

Nothing here leaves the warehouse: the frames hold person keys and are used only in memory by the estimators;
what is released is the disclosure-checked aggregate report (:mod:`evaluation.report`).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from evaluation.designs import AREA_OUTCOME, PRIOR_CAP, PRIOR_DAYS, PRIOR_EVENTS, Design

__all__ = ["area_panel", "observation_window", "person_frame"]


def observation_window(con: duckdb.DuckDBPyConnection, schema: str = "analytics") -> tuple[date, date]:
    """First and last day the events mart covers (outcome windows are truncated to it)."""
    lo, hi = con.execute(f"select min(event_date), max(event_date) from {schema}.events").fetchone()
    if lo is None:
        raise ValueError(f"{schema}.events is empty: there is nothing to evaluate")
    return lo, hi


def person_frame(con: duckdb.DuckDBPyConnection, design: Design, *, period_start: date, period_end: date,
                 schema: str = "analytics") -> pd.DataFrame:
    """One row per participant (``treated`` 1) and eligible non-participant (``treated`` 0).

    Each person's index event is their first event meeting ``design.index_event``. A participant is kept when
    their first enrollment in the program (between ``period_start`` and ``period_end``) follows it by
    ``design.lag_days``; a non-participant (never enrolled in this program, nor in another one by then) gets a pseudo-enrollment date at
    the participants' median lag after their own index event, inside the same period. Columns: strata
    (``prior_events``, ``age_band``, ``sex``, ``area``, ``index_year``), the index and enrollment dates,
    exposure days of the pre window [index - window, index] (the index event in it, for both groups alike) and the post window (enrollment, + window],
    each outcome's pre and post counts and its counts per quarter (``<o>_q-4`` .. ``<o>_q4``), the naive
    windows of the cohort mart (pre = [enrollment - window, enrollment]), and the time to the survival outcome.
    """
    lo, hi = observation_window(con, schema)
    w = design.window_days
    outcomes = design.outcomes
    counts = []
    for name, (_, cond) in outcomes.items():
        counts.append(f"count(*) filter (where ({cond}) and e.event_date >= c.index_date - {w} "
                      f"and e.event_date <= c.index_date) as \"{name}_pre\"")
        counts.append(f"count(*) filter (where ({cond}) and e.event_date > c.enroll_date "
                      f"and e.event_date <= c.enroll_date + {w}) as \"{name}_post\"")
        counts.append(f"count(*) filter (where ({cond}) and e.event_date >= c.enroll_date - {w} "
                      f"and e.event_date <= c.enroll_date) as \"{name}_naive_pre\"")
        for q in range(1, 5):
            counts.append(f"count(*) filter (where ({cond}) and e.event_date > c.index_date - {q * w // 4} "
                          f"and e.event_date <= c.index_date - {(q - 1) * w // 4}) as \"{name}_q-{q}\"")
            counts.append(f"count(*) filter (where ({cond}) and e.event_date > c.enroll_date + {(q - 1) * w // 4} "
                          f"and e.event_date <= c.enroll_date + {q * w // 4}) as \"{name}_q{q}\"")
    surv = ""
    if design.survival is not None:
        surv = f", min(e.event_date) filter (where ({design.survival[1]}) and e.event_date > c.enroll_date) " \
               "as next_event_date"
    sql = f"""
    with
    enrolled as (
        select person_key, program, min(event_date) as enroll_date
        from {schema}.events where is_program_enrollment and person_key is not null group by 1, 2),
    in_program as (select person_key from enrolled where program = $program),
    first_index as (
        select e.person_key, min(e.event_date) as index_date,
               arg_min(coalesce(e.age_band_at_event, 'Unknown'), e.event_date) as age_band
        from {schema}.events e where e.person_key is not null and ({design.index_event})
        group by 1),
    part as (
        select f.*, n.enroll_date, 1 as treated
        from first_index f join enrolled n on n.person_key = f.person_key and n.program = $program
        where n.enroll_date - f.index_date between {design.lag_days[0]} and {design.lag_days[1]}
          and n.enroll_date between $start and $end),
    lag as (select coalesce(cast(median(enroll_date - index_date) as integer), {design.lag_days[0]}) as d from part),
    ctrl as (
        select f.*, cast(f.index_date + (select d from lag) as date) as enroll_date, 0 as treated
        from first_index f
        where f.person_key not in (select person_key from in_program)
          and f.index_date + (select d from lag) between $start and $end
          -- enrolled in another program by then: excluded; enrolled later: kept (a later enrollment follows a later
          -- event, and leaving those persons out would select the comparison group on its outcomes)
          and not exists (select 1 from enrolled n where n.person_key = f.person_key
                          and n.enroll_date <= f.index_date + (select d from lag))),
    cohort as (select * from part union all select * from ctrl),
    located as (
        select c.person_key, arg_max(coalesce(e.priority_area, 'none'), e.event_date) as area
        from cohort c join {schema}.events e on e.person_key = c.person_key
        where e.is_priority_area is not null and e.event_date <= c.index_date
        group by 1),
    prior as (
        select c.person_key, least(count(e.event_date), {PRIOR_CAP}) as prior_events
        from cohort c left join {schema}.events e on e.person_key = c.person_key and ({PRIOR_EVENTS})
             and e.event_date >= c.index_date - {PRIOR_DAYS} and e.event_date < c.index_date
        group by 1),
    outcomes as (
        select c.person_key, {', '.join(counts)} {surv}
        from cohort c left join {schema}.events e on e.person_key = c.person_key
             and e.event_date >= least(c.index_date, c.enroll_date) - {w}
        group by 1)
    select c.person_key, c.treated, c.index_date, c.enroll_date, c.age_band,
           coalesce(p.sex, 'Unknown') as sex, coalesce(l.area, 'none') as area,
           cast(year(c.index_date) as integer) as index_year, pr.prior_events,
           datediff('day', greatest(c.index_date - {w}, $lo), c.index_date) + 1 as pre_days,
           datediff('day', c.enroll_date, least(c.enroll_date + {w}, $hi)) as post_days,
           datediff('day', greatest(c.enroll_date - {w}, $lo), c.enroll_date) + 1 as naive_pre_days,
           o.* exclude (person_key)
    from cohort c
    left join {schema}.persons p using (person_key)
    left join located l using (person_key)
    join prior pr using (person_key)
    join outcomes o using (person_key)
    where c.enroll_date < $hi
    order by c.treated desc, c.person_key
    """
    df = con.execute(sql, {"program": design.program, "start": period_start, "end": period_end, "lo": lo,
                           "hi": hi}).df()
    if design.survival is not None:
        nxt = pd.to_datetime(df["next_event_date"])
        enr = pd.to_datetime(df["enroll_date"])
        df["event"] = nxt.notna().astype(int)
        df["time"] = ((nxt.fillna(pd.Timestamp(hi)) - enr).dt.days).clip(lower=1)
    return df


def area_panel(con: duckdb.DuckDBPyConnection, *, area: str, start: date, schema: str = "analytics") -> pd.DataFrame:
    """Monthly counts of violent incidents per census tract (tract, month, count, treated, post).

    ``treated`` marks the tracts of ``area``; ``post`` the months from ``start`` on. Tracts of other priority
    areas are kept as candidate comparisons (they share the person-level programs); every tract that ever
    had a located event is in the panel, with zeros for months without one.
    """
    lo, hi = observation_window(con, schema)
    sql = f"""
    with tracts as (
        select census_tract as tract, max(coalesce(priority_area, '')) as priority_area
        from {schema}.events where census_tract is not null and geography_basis = 'incident location'
        group by 1),
    months as (select cast(unnest(generate_series(date_trunc('month', $lo::date), date_trunc('month', $hi::date),
                                                  interval 1 month)) as date) as month),
    counts as (
        select census_tract as tract, cast(date_trunc('month', event_date) as date) as month, count(*) as n
        from {schema}.events e where ({AREA_OUTCOME}) and census_tract is not null
        group by 1, 2)
    select t.tract, t.priority_area, m.month, coalesce(c.n, 0) as n
    from tracts t cross join months m left join counts c on c.tract = t.tract and c.month = m.month
    order by t.tract, m.month
    """
    df = con.execute(sql, {"lo": lo, "hi": hi}).df()
    # a month the data end inside is not complete: leave it out
    last_full = pd.Timestamp(hi) + pd.Timedelta(days=1)
    df["month"] = pd.to_datetime(df["month"])
    df = df[df["month"] + pd.offsets.MonthBegin(1) <= last_full].copy()
    df["treated"] = (df["priority_area"] == area).astype(int)
    df["post"] = (df["month"] >= pd.Timestamp(start)).astype(int)
    return df.reset_index(drop=True)
