"""The dashboard's fail-closed check of the published indicators, on small hand-made and hypothesis-made marts in a
real DuckDB file: a small published count, a line with one hidden cell, a longer period over a hidden month, a
suppressed cell with a rate each refuse the build, name the cell, and write nothing."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard import DashboardRefused, build_dashboard
from dashboard.published import COUNTY, OUTSIDE, check_published
from governance.disclosure import DisclosureRules

RULES = DisclosureRules()
AREAS = ["Area A", "Area B", OUTSIDE]
SEXES = ["Female", "Male"]


def month_table(values: dict[tuple[str, str], int], hidden: set[tuple[str, str]], month: date = date(2025, 1, 1),
                indicator: str = "violent_crimes") -> pd.DataFrame:
    """One month x indicator table: priority areas (+ the county row) x sex (+ the 'All' column), with margins."""
    end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    rows = []
    geos = [("priority_area", a) for a in AREAS] + [("county", COUNTY)]
    groups = [("sex", s) for s in SEXES] + [("all", "All")]
    for (lvl, geo), (dim, grp) in itertools.product(geos, groups):
        if geo == COUNTY and grp == "All":
            n = sum(values.values())
        elif geo == COUNTY:
            n = sum(v for (a, s), v in values.items() if s == grp)
        elif grp == "All":
            n = sum(v for (a, s), v in values.items() if a == geo)
        else:
            n = values[(geo, grp)]
        h = (geo, grp) in hidden
        rows.append({"period_type": "month", "period_start": month, "period_end": end, "indicator": indicator,
                     "geography_level": lvl, "geography": geo, "demographic_dimension": dim, "demographic_group": grp,
                     "event_count": None if h else n, "suppressed": h, "population": 1000,
                     "rate_per_100k": None if h else n * 100.0})
    df = pd.DataFrame(rows)
    df["event_count"] = df["event_count"].astype("Int64")
    return df


GOOD_VALUES = {("Area A", "Female"): 3, ("Area A", "Male"): 20, ("Area B", "Female"): 14, ("Area B", "Male"): 25,
               (OUTSIDE, "Female"): 40, (OUTSIDE, "Male"): 52}
#: the small cell, its row and column partners, and the cell that closes the rectangle
GOOD_HIDDEN = {("Area A", "Female"), ("Area A", "Male"), ("Area B", "Female"), ("Area B", "Male")}


def test_a_well_suppressed_table_passes():
    check_published(month_table(GOOD_VALUES, GOOD_HIDDEN), RULES)


def test_a_published_small_count_is_refused_naming_the_cell():
    with pytest.raises(DashboardRefused, match=r"below the minimum cell of 11, first violent_crimes month "
                                               r"2025-01-01\.\.2025-01-31 priority_area=Area A sex=Female"):
        check_published(month_table(GOOD_VALUES, GOOD_HIDDEN - {("Area A", "Female"), ("Area A", "Male"),
                                                                  ("Area B", "Female"), ("Area B", "Male")}), RULES)


def test_a_line_with_one_hidden_cell_is_refused():
    # only the small cell and its row partner hidden: the Female column has one hidden cell
    with pytest.raises(DashboardRefused, match="exactly one suppressed cell"):
        check_published(month_table(GOOD_VALUES, {("Area A", "Female"), ("Area A", "Male")}), RULES)


def test_a_longer_period_over_a_hidden_month_is_refused():
    jan = month_table(GOOD_VALUES, GOOD_HIDDEN)
    feb = month_table({k: v + 20 for k, v in GOOD_VALUES.items()}, set(), month=date(2025, 2, 1))
    both = pd.concat([jan, feb])
    sums = both.groupby([c for c in both.columns if c in ("indicator", "geography_level", "geography",
                                                             "demographic_dimension", "demographic_group")],
                        as_index=False).agg(event_count=("event_count", lambda s: s.sum(min_count=len(s))))
    ytd = sums.assign(period_type="year_to_date", period_start=date(2025, 1, 1), period_end=date(2025, 2, 28),
                      population=1000)
    ytd["suppressed"] = ytd["event_count"].isna()
    ytd["rate_per_100k"] = ytd["event_count"].astype(float) * 100.0
    check_published(pd.concat([both, ytd]), RULES)  # the mart's rule: withheld where a month is hidden
    leaky = ytd.copy()
    leaky.loc[leaky["geography"] == "Area A", "event_count"] = 99
    leaky.loc[leaky["geography"] == "Area A", "suppressed"] = False
    with pytest.raises(DashboardRefused, match=r"longer-period figure\(s\) published over a suppressed month"):
        check_published(pd.concat([both, leaky]), RULES)


def test_a_suppressed_cell_with_a_rate_or_a_wrong_flag_is_refused():
    t = month_table(GOOD_VALUES, GOOD_HIDDEN)
    r = t.copy()
    r.loc[r["suppressed"], "rate_per_100k"] = 300.0
    with pytest.raises(DashboardRefused, match="a suppressed cell has a rate"):
        check_published(r, RULES)
    f = t.copy()
    f.loc[0, "suppressed"] = not f.loc[0, "suppressed"]
    with pytest.raises(DashboardRefused, match="'suppressed' flag disagrees"):
        check_published(f, RULES)


def _single_hidden_line(hidden: set[tuple[str, str]]) -> bool:
    """The oracle, by brute force: every line of the table (rows with their 'All', columns with the county row)."""
    rows = [[(a, s) for s in [*SEXES, "All"]] for a in [*AREAS, COUNTY]]
    cols = [[(a, s) for a in [*AREAS, COUNTY]] for s in [*SEXES, "All"]]
    return any(sum(c in hidden for c in line) == 1 for line in rows + cols)


cells = [(a, s) for a in [*AREAS, COUNTY] for s in [*SEXES, "All"]]


@given(values=st.lists(st.integers(0, 60), min_size=6, max_size=6),
       hidden=st.sets(st.sampled_from(cells), max_size=8))
def test_the_check_refuses_exactly_the_unsafe_tables(values, hidden):
    vals = dict(zip([(a, s) for a in AREAS for s in SEXES], values, strict=True))
    table = month_table(vals, hidden)
    published = table[~table["suppressed"]]["event_count"]
    small = ((published >= 1) & (published < RULES.min_cell)).any()
    unsafe = small or _single_hidden_line(hidden)
    if unsafe:
        with pytest.raises(DashboardRefused):
            check_published(table, RULES)
    else:
        check_published(table, RULES)


def _warehouse(path, cells: pd.DataFrame) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema analytics; create schema reference")
        con.register("cells", cells)
        con.execute("create table analytics.community_violence_indicators as select * from cells")
        con.execute("create table reference.geography as select * from (values ('1', 'Nb 1', 'Area A'), "
                    "('2', 'Nb 2', 'Area B'), ('3', 'Nb 3', '')) t(tract, neighborhood, priority_area)")
        con.execute("create table analytics.program_cohorts (person_key varchar, program varchar, "
                    "enrollment_date date)")


def test_a_refused_build_writes_nothing_and_keeps_the_previous_site(tmp_path):
    good, bad = tmp_path / "good.duckdb", tmp_path / "bad.duckdb"
    _warehouse(good, month_table(GOOD_VALUES, GOOD_HIDDEN))
    _warehouse(bad, month_table(GOOD_VALUES, {("Area A", "Female"), ("Area A", "Male")}))
    out = tmp_path / "site"
    built = build_dashboard(good, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert (out / "index.html").is_file() and (out / "es" / "index.html").is_file() and built.pages
    with pytest.raises(DashboardRefused, match="exactly one suppressed cell"):
        build_dashboard(bad, out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.duckdb", "good.duckdb", "site"]  # no stage left
    with pytest.raises(DashboardRefused, match="no warehouse here"):
        build_dashboard(tmp_path / "missing.duckdb", tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_hostile_names_in_the_geography_are_escaped_on_every_page_and_defused_in_every_csv(tmp_path):
    """Names come from the reference geography: a name that is markup or a spreadsheet formula stays text."""
    hostile = '<img src=x onerror=alert(1)>'
    formula = '=HYPERLINK("http://x","y")'
    values = {(hostile if a == "Area A" else formula if a == "Area B" else a, s): v
              for (a, s), v in GOOD_VALUES.items()}
    global AREAS
    saved = AREAS
    try:
        AREAS = [hostile, formula, OUTSIDE]
        hidden = {(hostile if a == "Area A" else formula, s) for a, s in GOOD_HIDDEN}
        table = month_table(values, hidden)
    finally:
        AREAS = saved
    db = tmp_path / "w.duckdb"
    _warehouse(db, table)
    with duckdb.connect(str(db)) as con:
        con.execute("update reference.geography set priority_area = ? where priority_area = 'Area A'", [hostile])
        con.execute("update reference.geography set priority_area = ? where priority_area = 'Area B'", [formula])
    out = tmp_path / "site"
    build_dashboard(db, out)
    for page in out.rglob("*.html"):
        text = page.read_text()
        assert "<img src=x" not in text, page
    rows = [line for p in out.rglob("*.csv") for line in p.read_text().splitlines()]
    assert not [r for r in rows if r.startswith("=") or ',=' in r]
    assert any("'=HYPERLINK" in r for r in rows)
