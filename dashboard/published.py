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


def _cell_name(row: pd.Series) -> str:
    return (f"{row['indicator']} {row['period_type']} {row['period_start']}..{row['period_end']} "
            f"{row['geography_level']}={row['geography']} {row['demographic_dimension']}={row['demographic_group']}")


def load_published(warehouse_db: Path, rules: DisclosureRules | None = None) -> Published:
    """Read the published mart and the geography (read-only), then :func:`check_published` them."""
    rules = rules or DisclosureRules()
    if not Path(warehouse_db).is_file():
        raise DashboardRefused(f"{warehouse_db}: no warehouse here; build the marts first (vpdc marts)")
    try:
        with duckdb.connect(str(warehouse_db), read_only=True) as con:
            cells = con.execute(f"select {', '.join(COLUMNS)} from {MART}").df()
            geography = con.execute(
                "select tract, neighborhood as neighbourhood, coalesce(priority_area, '') as priority_area "
                "from reference.geography").df()
    except duckdb.Error as e:
        raise DashboardRefused(f"{warehouse_db}: cannot read {MART} and reference.geography "
                               f"({type(e).__name__}: {str(e).splitlines()[0]}); build the marts first") from None
    if cells.empty:
        raise DashboardRefused(f"{MART} is empty: nothing to publish")
    for col in ("period_start", "period_end"):
        cells[col] = pd.to_datetime(cells[col]).dt.date
    check_published(cells, rules)
    months = cells[cells["period_type"] == "month"]
    return Published(cells=cells, geography=geography, latest_month_end=max(months["period_end"]),
                     first_month_start=min(months["period_start"]), rules=rules)


def check_published(cells: pd.DataFrame, rules: DisclosureRules) -> None:
    """Fail closed unless the published cells keep the suppression promises (module docstring)."""
    missing = [c for c in COLUMNS if c not in cells.columns]
    if missing:
        raise DashboardRefused(f"{MART} lacks the column(s) {', '.join(missing)}")
    counts = cells["event_count"]
    bad = cells[counts.notna() & (counts >= 1) & (counts < rules.min_cell)]
    if len(bad):
        raise DashboardRefused(f"{MART}: {len(bad)} published count(s) below the minimum cell of {rules.min_cell}, "
                               f"first {_cell_name(bad.iloc[0])} (rule: counts 1..{rules.min_cell - 1} are never "
                               "published)")
    flag = cells["suppressed"].astype(bool)
    bad = cells[flag != counts.isna()]
    if len(bad):
        raise DashboardRefused(f"{MART}: {len(bad)} cell(s) whose 'suppressed' flag disagrees with their count, "
                               f"first {_cell_name(bad.iloc[0])}")
    bad = cells[flag & cells["rate_per_100k"].notna()]
    if len(bad):
        raise DashboardRefused(f"{MART}: a suppressed cell has a rate, first {_cell_name(bad.iloc[0])} (a rate and "
                               "its population give the count back)")
    months = cells[cells["period_type"] == "month"]
    _check_lines(months)
    _check_derived(cells, months)


def _check_lines(months: pd.DataFrame) -> None:
    hidden = months.assign(h=months["suppressed"].astype(int))
    # across the groups of a dimension, with the 'All' cell of the same geography as the line's total
    groups = hidden[hidden["demographic_dimension"] != "all"]
    totals = hidden[hidden["demographic_dimension"] == "all"]
    by_geo = ["period_start", "indicator", "geography_level", "geography"]
    lines = (groups.groupby([*by_geo, "demographic_dimension"], as_index=False)["h"].sum()
             .merge(totals[[*by_geo, "h"]].rename(columns={"h": "total_h"}), on=by_geo, how="left"))
    lines["hidden"] = lines["h"] + lines["total_h"].fillna(0).astype(int)
    _refuse_single(lines, "the groups of a dimension and their 'All' total")
    # across the geographies of a level, with the county row as the line's total
    by_group = ["period_start", "indicator", "demographic_dimension", "demographic_group"]
    county = hidden[hidden["geography_level"] == "county"]
    levels = hidden[hidden["geography_level"] != "county"]
    lines = (levels.groupby([*by_group, "geography_level"], as_index=False)["h"].sum()
             .merge(county[[*by_group, "h"]].rename(columns={"h": "total_h"}), on=by_group, how="left"))
    lines["hidden"] = lines["h"] + lines["total_h"].fillna(0).astype(int)
    _refuse_single(lines, "the geographies of a level and the county row")


def _refuse_single(lines: pd.DataFrame, what: str) -> None:
    single = lines[lines["hidden"] == 1]
    if len(single):
        first = single.iloc[0].to_dict()
        name = ", ".join(f"{k}={v}" for k, v in first.items() if k not in ("h", "total_h", "hidden"))
        raise DashboardRefused(f"{MART}: {len(single)} month line(s) with exactly one suppressed cell ({what}), "
                               f"first {name}: subtraction from the line's total would reveal it")


def _check_derived(cells: pd.DataFrame, months: pd.DataFrame) -> None:
    derived = cells[(cells["period_type"] != "month") & ~cells["suppressed"].astype(bool)]
    if derived.empty:
        return
    series = ["indicator", "geography_level", "geography", "demographic_dimension", "demographic_group"]
    hidden = months[months["suppressed"].astype(bool)][[*series, "period_start"]]
    if hidden.empty:
        return
    joined = derived.merge(hidden.rename(columns={"period_start": "hidden_month"}), on=series)
    bad = joined[(joined["hidden_month"] >= joined["period_start"]) & (joined["hidden_month"] <= joined["period_end"])]
    if len(bad):
        raise DashboardRefused(f"{MART}: {len(bad)} longer-period figure(s) published over a suppressed month, first "
                               f"{_cell_name(bad.iloc[0])} (month {bad.iloc[0]['hidden_month']}): the sum minus the "
                               "published months would reveal it")
