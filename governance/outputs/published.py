"""Published figures read from the marts: headline counts and the indicators as the public sees them.

A suppressed cell stays suppressed here: it is never summed back. Sums over a family with suppressed
cells are reported as lower bounds with the number of suppressed cells beside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from governance.defaults import OUTCOME_WINDOW_DAYS

__all__ = ["headline_figures", "indicator_summary"]


def headline_figures(warehouse_db: Path) -> dict[str, Any]:
    """Persons, persons seen by more than one agency, a few event counts and program cohort sizes."""
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        persons, multi = con.execute(
            "select count(*), count(*) filter (where len(sources) > 1) from analytics.persons").fetchall()[0]
        programs = con.execute("select program, count(*) from analytics.program_cohorts where window_days = ? "
                               "group by 1 order by 1", [OUTCOME_WINDOW_DAYS]).fetchall()
        victims, firearm, assault = con.execute(
            "select count(*) filter (where is_violent_offense_victim), count(*) filter (where is_firearm_injury), "
            "count(*) filter (where is_assault_ed_visit) from analytics.events").fetchall()[0]
    return {"persons": persons, "persons_in_several_sources": multi, "violent_offense_victimisations": victims,
            "firearm_injury_visits": firearm, "assault_ed_visits": assault,
            "program_cohorts": {p: n for p, n in programs}, "window_days": OUTCOME_WINDOW_DAYS}


def indicator_summary(warehouse_db: Path) -> dict[str, Any]:
    """The latest complete calendar year of the published indicators, county-wide and per priority area.

    Returns ``year``, ``rows`` (indicator, geography, suppressed months, published sum of months, the year's
    published total and its rate per 100,000, None where suppressed) and ``cells``
    (published cells, of which suppressed, of which added by the audit).
    """
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        year = con.execute("select max(year(period_start)) from analytics.community_violence_indicators "
                           "where period_type = 'year'").fetchall()[0][0]
        rows = con.execute(
            "select indicator, geography, count(*) filter (where suppressed and period_type = 'month'), "
            "sum(event_count) filter (where period_type = 'month'), "
            "max(event_count) filter (where period_type = 'year'), max(rate_per_100k) filter (where period_type = 'year') "
            "from analytics.community_violence_indicators where year(period_start) = ? and demographic_dimension = 'all' "
            "and period_type in ('month', 'year') and geography_level in ('county', 'priority_area') "
            "group by 1, 2 order by 1, 2", [year]).fetchall()
        cells = con.execute("select count(*), count(*) filter (where suppressed) "
                            "from analytics.community_violence_indicators").fetchall()[0]
    return {"year": year, "rows": [{"indicator": i, "geography": g, "suppressed_months": s, "published_sum": n,
                                    "year_total": y, "rate_per_100k": r}
                                   for i, g, s, n, y, r in rows],
            "cells": {"published": cells[0], "suppressed": cells[1]}}
