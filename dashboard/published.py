"""The published indicators as the dashboard reads them, and the checks that make the build fail closed.

The dashboard reads only the published mart (``analytics.community_violence_indicators``: suppressed cells are
null there) and the reference geography. Before anything is drawn, :func:`check_published` re-checks the mart's
suppression from the published cells alone, independently of the dbt tests that ran when it was built:

- no published count lies between 1 and the minimum cell, and a cell is suppressed exactly when its count is null;
- no month x indicator line (the groups of a dimension and their 'All' total; the geographies of a level and the
  county row) has exactly one suppressed cell, which subtraction would reveal;
- a quarter, year, rolling 12 months or year to date is published only where every month in it is.

Any failure raises :class:`DashboardRefused` naming the cell and the rule: no page is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from governance.disclosure import DisclosureRules

__all__ = ["MART", "DashboardRefused", "Published", "check_published", "load_published"]

MART = "analytics.community_violence_indicators"
KEY = ["period_type", "period_start", "period_end", "indicator", "geography_level", "geography",
       "demographic_dimension", "demographic_group"]
COLUMNS = [*KEY, "event_count", "suppressed", "population", "rate_per_100k"]
COUNTY = "Mecklenburg County"
OUTSIDE = "Outside priority areas"
UNKNOWN = "Unknown location"


class DashboardRefused(Exception):
    """The published indicators failed a check: the dashboard is not built (nothing is written)."""


@dataclass(frozen=True)
class Published:
    """The published cells, the reference geography and the dates they describe."""

    cells: pd.DataFrame  # one row per mart cell (COLUMNS); event_count and rate null where suppressed
    geography: pd.DataFrame  # tract, neighbourhood, priority_area ('' outside)
    latest_month_end: date
    first_month_start: date
    rules: DisclosureRules

    @property
    def indicators(self) -> list[str]:
        return sorted(self.cells["indicator"].unique())

    @property
    def priority_areas(self) -> list[str]:
        return sorted(a for a in self.geography["priority_area"].unique() if a)


def load_published(warehouse_db: Path, rules: DisclosureRules | None = None) -> Published:
    """Check the published mart in the warehouse (read-only, in DuckDB: :func:`check_published`), then read the cells
    the figures use (every month of the 'All' column; the last 12 months and the year to date; not the whole mart)
    and the geography."""
    rules = rules or DisclosureRules()
    if not Path(warehouse_db).is_file():
        raise DashboardRefused(f"{warehouse_db}: no warehouse here; build the marts first (vpdc marts)")
    try:
        with duckdb.connect(str(warehouse_db), read_only=True) as con:
            _check(con, MART, rules)
            cells = con.execute(
                f"select {', '.join(COLUMNS)} from {MART} where (period_type = 'month' and demographic_dimension = "
                "'all') or period_type in ('rolling_12', 'year_to_date')").df()
            geography = con.execute(
                "select tract, neighborhood as neighbourhood, coalesce(priority_area, '') as priority_area "
                "from reference.geography").df()
            first, last = con.execute(f"select min(period_start), max(period_end) from {MART} "
                                      "where period_type = 'month'").fetchone()
    except duckdb.Error as e:
        raise DashboardRefused(f"{warehouse_db}: cannot read {MART} and reference.geography "
                               f"({type(e).__name__}: {str(e).splitlines()[0]}); build the marts first") from None
    if cells.empty or first is None:
        raise DashboardRefused(f"{MART} is empty: nothing to publish")
    for col in ("period_start", "period_end"):
        cells[col] = pd.to_datetime(cells[col]).dt.date
    return Published(cells=cells, geography=geography, latest_month_end=pd.Timestamp(last).date(),
                     first_month_start=pd.Timestamp(first).date(), rules=rules)


def check_published(cells: pd.DataFrame, rules: DisclosureRules) -> None:
    """Fail closed unless the published cells keep the suppression promises (module docstring). The same checks
    :func:`load_published` runs on the warehouse, here on cells in hand."""
    missing = [c for c in COLUMNS if c not in cells.columns]
    if missing:
        raise DashboardRefused(f"{MART} lacks the column(s) {', '.join(missing)}")
    con = duckdb.connect()
    try:
        con.register("cells_in_hand", cells[COLUMNS])
        _check(con, "cells_in_hand", rules)
    finally:
        con.close()


def _name(row: tuple) -> str:
    ptype, start, end, ind, lvl, geo, dim, grp = row[:8]
    return f"{ind} {ptype} {start}..{end} {lvl}={geo} {dim}={grp}"


def _check(con: duckdb.DuckDBPyConnection, table: str, rules: DisclosureRules) -> None:
    """Every check in SQL over ``table`` (the mart's columns), so the warehouse's 1.5 million cells never leave
    DuckDB."""
    key = ", ".join(KEY)
    cols = {r[0] for r in con.execute(f"describe select * from {table}").fetchall()}
    missing = [c for c in COLUMNS if c not in cols]
    if missing:
        raise DashboardRefused(f"{MART} lacks the column(s) {', '.join(missing)}")

    def first(sql: str, params: list | None = None) -> tuple[int, tuple | None]:
        n, = con.execute(f"select count(*) from ({sql})", params or []).fetchone()
        row = con.execute(f"{sql} order by all limit 1", params or []).fetchone() if n else None
        return n, row

    n, row = first(f"select {key} from {table} where event_count >= 1 and event_count < ?", [rules.min_cell])
    if n:
        raise DashboardRefused(f"{MART}: {n} published count(s) below the minimum cell of {rules.min_cell}, first "
                               f"{_name(row)} (rule: counts 1..{rules.min_cell - 1} are never published)")
    n, row = first(f"select {key} from {table} where suppressed is distinct from (event_count is null)")
    if n:
        raise DashboardRefused(f"{MART}: {n} cell(s) whose 'suppressed' flag disagrees with their count, first "
                               f"{_name(row)}")
    n, row = first(f"select {key} from {table} where suppressed and rate_per_100k is not null")
    if n:
        raise DashboardRefused(f"{MART}: a suppressed cell has a rate, first {_name(row)} (a rate and its population "
                               "give the count back)")
    months = f"(select *, suppressed::int as h from {table} where period_type = 'month')"
    # a line is the cells across one column (a dimension's groups; a level's geographies) plus its total cell
    # (the 'All' group of that geography; the county row of that group)
    for by, across, total, what in (
            ("period_start, indicator, geography_level, geography", "demographic_dimension", "'all'",
             "the groups of a dimension and their 'All' total"),
            ("period_start, indicator, demographic_dimension, demographic_group", "geography_level", "'county'",
             "the geographies of a level and the county row")):
        n, row = first(f"""
            select l.*exclude (h)
            from (select {by}, {across}, sum(h) h from {months} where {across} <> {total} group by all) l
            left join (select {by}, h from {months} where {across} = {total}) t using ({by})
            where l.h + coalesce(t.h, 0) = 1""")
        if n:
            raise DashboardRefused(f"{MART}: {n} month line(s) with exactly one suppressed cell ({what}), first {row}: "
                                   "subtraction from the line's total would reveal it")
    series = "indicator, geography_level, geography, demographic_dimension, demographic_group"
    n, row = first(f"""
        select d.{key.replace(', ', ', d.')}, m.period_start as hidden_month
        from (select * from {table} where period_type <> 'month' and not suppressed) d
        join (select {series}, period_start from {table} where period_type = 'month' and suppressed) m
          using ({series})
        where m.period_start between d.period_start and d.period_end""")
    if n:
        raise DashboardRefused(f"{MART}: {n} longer-period figure(s) published over a suppressed month, first "
                               f"{_name(row)} (month {row[8]}): the sum minus the published months would reveal it")
