"""The figures of the dashboard as tables: exactly the cells each chart shows (its CSV download and its data table).

Every value here is a published cell of the mart or, for the program pages, a count passed through the governance
library's suppression (:func:`governance.disclosure.suppress_counts`). Ratios (the gap between areas) are computed
from published rates only. A suppressed cell keeps its row, with no count and no rate, so a reader sees that it
exists and that it is hidden, never its value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from dashboard.published import COUNTY, OUTSIDE, Published
from governance.disclosure import suppress_counts

__all__ = ["DIMENSIONS", "Figure", "IndicatorFigures", "ProgramFigures", "indicator_figures", "program_figures",
           "tile_layout"]

#: The breakdowns the dashboard shows, in order (the mart's demographic dimensions).
DIMENSIONS = ("age_band", "sex", "race_ethnicity")
TILEMAP = Path(__file__).resolve().parent / "tilemap.csv"


@dataclass
class Figure:
    """One chart's cells. ``kind`` picks the chart; ``table`` holds canonical (untranslated) columns."""

    id: str
    kind: str  # trend | compare | rates | gap | breakdown | map | enrolment
    table: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def shown(self) -> int:
        return int((~self.table["suppressed"]).sum()) if "suppressed" in self.table else len(self.table)

    @property
    def hidden(self) -> int:
        return int(self.table["suppressed"].sum()) if "suppressed" in self.table else 0


@dataclass
class IndicatorFigures:
    indicator: str
    figures: list[Figure]
    headline: dict


@dataclass
class ProgramFigures:
    program: str
    figures: list[Figure]


def _areas(pub: Published) -> list[str]:
    return [COUNTY, *pub.priority_areas, OUTSIDE]


def _select(pub: Published, **eq) -> pd.DataFrame:
    c = pub.cells
    mask = pd.Series(True, index=c.index)
    for k, v in eq.items():
        mask &= c[k].isin(v) if isinstance(v, (list, tuple, set)) else (c[k] == v)
    return c[mask]


def _one_year_earlier(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def _clean(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = df[cols].reset_index(drop=True).copy()
    out["suppressed"] = out["suppressed"].astype(bool)
    if "events" in out:
        out["events"] = out["events"].astype("Int64")
    return out


def indicator_figures(pub: Published, indicator: str) -> IndicatorFigures:
    """Trend, year to date against last year, rates, the gap, breakdowns and the map of one indicator."""
    end = pub.latest_month_end
    areas = _areas(pub)
    order = {a: i for i, a in enumerate(areas)}
    figs: list[Figure] = []

    trend = _select(pub, indicator=indicator, period_type="month", demographic_dimension="all",
                    geography=areas).rename(columns={"geography": "area", "event_count": "events",
                                                     "period_start": "month"})
    trend = trend.assign(o=trend["area"].map(order)).sort_values(["o", "month"])
    figs.append(Figure(f"{indicator}-trend", "trend", _clean(trend, ["month", "area", "events", "suppressed"])))

    last_year_end = _one_year_earlier(end)
    ytd = _select(pub, indicator=indicator, period_type="year_to_date", demographic_dimension="all", geography=areas)
    ytd = ytd[ytd["period_end"].isin([end, last_year_end])].rename(
        columns={"geography": "area", "event_count": "events"})
    ytd = ytd.assign(o=ytd["area"].map(order), year=ytd["period_end"].map(lambda d: d.year)).sort_values(["o", "year"])
    figs.append(Figure(f"{indicator}-year-to-date", "compare",
                       _clean(ytd, ["area", "year", "period_start", "period_end", "events", "suppressed"]),
                       {"period_end": end, "last_year_end": last_year_end}))

    r12 = _select(pub, indicator=indicator, period_type="rolling_12", period_end=end, demographic_dimension="all",
                  geography=areas).rename(columns={"geography": "area", "event_count": "events",
                                                   "rate_per_100k": "rate"})
    r12 = r12.assign(o=r12["area"].map(order)).sort_values("o")
    rates = _clean(r12, ["area", "events", "population", "rate", "suppressed"])
    figs.append(Figure(f"{indicator}-rates", "rates", rates, {"period_end": end}))

    outside = rates[rates["area"] == OUTSIDE]
    outside_hidden = bool(outside["suppressed"].iloc[0]) if len(outside) else True
    outside_rate = float(outside["rate"].iloc[0]) if len(outside) and pd.notna(outside["rate"].iloc[0]) else None
    gap = rates[rates["area"].isin(pub.priority_areas)][["area", "rate", "suppressed"]].copy()
    gap["outside_rate"] = outside_rate
    # a ratio of two published rates; none where either is hidden, or where the rest of the county's rate is 0
    gap["ratio"] = [round(r / outside_rate, 2) if pd.notna(r) and outside_rate else None for r in gap["rate"]]
    gap["suppressed"] = gap["suppressed"].astype(bool) | outside_hidden
    figs.append(Figure(f"{indicator}-gap", "gap", gap.reset_index(drop=True), {"period_end": end,
                                                                               "outside_rate": outside_rate}))

    for dim in DIMENSIONS:
        b = _select(pub, indicator=indicator, period_type="rolling_12", period_end=end, geography=COUNTY,
                    demographic_dimension=dim).rename(columns={"demographic_group": "group", "event_count": "events",
                                                               "rate_per_100k": "rate"})
        b = b.assign(o=b["group"].map(_group_order(dim))).sort_values(["o", "group"])
        figs.append(Figure(f"{indicator}-by-{dim.replace('_', '-')}", "breakdown",
                           _clean(b, ["group", "events", "population", "rate", "suppressed"]),
                           {"dimension": dim, "period_end": end}))

    tiles = tile_layout(pub)
    m = _select(pub, indicator=indicator, period_type="rolling_12", period_end=end, geography_level="neighbourhood",
                demographic_dimension="all").rename(columns={"geography": "neighbourhood", "event_count": "events",
                                                             "rate_per_100k": "rate"})
    m = tiles.merge(m[["neighbourhood", "events", "population", "rate", "suppressed"]], on="neighbourhood", how="left")
    m["suppressed"] = m["suppressed"].fillna(True).astype(bool)
    figs.append(Figure(f"{indicator}-map", "map",
                       _clean(m, ["neighbourhood", "priority_area", "events", "population", "rate", "suppressed",
                                  "col", "row"]), {"period_end": end}))

    county = rates[rates["area"] == COUNTY].iloc[0] if (rates["area"] == COUNTY).any() else None
    this_ytd = ytd[(ytd["area"] == COUNTY) & (ytd["period_end"] == end)]["events"]
    last_ytd = ytd[(ytd["area"] == COUNTY) & (ytd["period_end"] == last_year_end)]["events"]
    headline = {"events_12m": None if county is None or pd.isna(county["events"]) else int(county["events"]),
                "rate_12m": None if county is None or pd.isna(county["rate"]) else float(county["rate"]),
                "ytd": int(this_ytd.iloc[0]) if len(this_ytd) and pd.notna(this_ytd.iloc[0]) else None,
                "ytd_last": int(last_ytd.iloc[0]) if len(last_ytd) and pd.notna(last_ytd.iloc[0]) else None,
                "period_end": end, "last_year_end": last_year_end}
    return IndicatorFigures(indicator, figs, headline)


def _group_order(dim: str) -> dict[str, int]:
    """Categories in their natural order (age bands by age; SPD 15 race/ethnicity as the standard lists them);
    'Unknown' last."""
    from governance.defaults import AGE_BANDS

    order = {"age_band": [label for label, _ in AGE_BANDS],
             "sex": ["Female", "Male", "X"],
             "race_ethnicity": ["American Indian or Alaska Native", "Asian", "Black or African American",
                                "Hispanic or Latino", "Middle Eastern or North African",
                                "Native Hawaiian or Pacific Islander", "White", "Multiracial", "Some other race"]}
    known = {g: i for i, g in enumerate(order.get(dim, []))}
    return _Ordered(known)


class _Ordered(dict):
    def __missing__(self, key: str) -> int:
        return len(self) + (1 if key == "Unknown" else 0)


def tile_layout(pub: Published) -> pd.DataFrame:
    """Neighbourhood -> tile (col, row) of the schematic map, and whether a priority area lies in it.

    ``tilemap.csv`` places each neighbourhood of the synthetic geography roughly where its namesake lies; a
    neighbourhood it does not know goes to an extra row below the map, so a replaced geography still draws.
    """
    tiles = pd.read_csv(TILEMAP, dtype={"neighbourhood": str, "col": int, "row": int})
    geo = pub.geography.groupby("neighbourhood", as_index=False)["priority_area"].agg(
        lambda s: "; ".join(sorted({a for a in s if a})))
    out = geo.merge(tiles, on="neighbourhood", how="left")
    unplaced = out["col"].isna()
    if unplaced.any():
        start = int(tiles["row"].max()) + 2
        names = sorted(out.loc[unplaced, "neighbourhood"])
        pos = {n: (i % 9, start + i // 9) for i, n in enumerate(names)}
        out.loc[unplaced, "col"] = out.loc[unplaced, "neighbourhood"].map(lambda n: pos[n][0])
        out.loc[unplaced, "row"] = out.loc[unplaced, "neighbourhood"].map(lambda n: pos[n][1])
    out[["col", "row"]] = out[["col", "row"]].astype(int)
    return out.sort_values(["row", "col"]).reset_index(drop=True)


def program_figures(warehouse_db: Path, pub: Published, program: str) -> ProgramFigures:
    """Enrolments per year (with the all-years total), suppressed by the governance library's rule."""
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        rows = con.execute("select cast(year(enrollment_date) as varchar) as year, count(*) as n "
                           "from analytics.program_cohorts where program = ? group by 1 order by 1",
                           [program]).df()
    if rows.empty:
        table = pd.DataFrame({"year": pd.Series(dtype=str), "enrolled": pd.Series(dtype="Int64"),
                              "suppressed": pd.Series(dtype=bool)})
    else:
        rows = pd.concat([rows, pd.DataFrame({"year": ["All"], "n": [int(rows["n"].sum())]})], ignore_index=True)
        out, _ = suppress_counts(rows, ["n"], pub.rules, total_row={"year": "All"})
        table = pd.DataFrame({"year": out["year"], "enrolled": out["n"].astype("Int64")})
        table["suppressed"] = table["enrolled"].isna()
    return ProgramFigures(program, [Figure(f"{program.lower()}-enrolment", "enrolment", table)])
