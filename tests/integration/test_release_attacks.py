"""Attacks on released aggregate tables, run by an independent attacker (scipy's milp, not the library's solver).

Each attack is first shown to work against the previous protection (the line rule and the linear-algebra
audit, sums without complementary protection), then shown to fail against what the gate releases now:
subtraction, an LP interval attack with non-negativity, whole numbers and the links between columns,
dominance sums, differencing two breakdowns of one cohort, and differencing two periods.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from itertools import product

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from governance.disclosure import DisclosureRules, dominance_shares, suppress_counts
from governance.outputs import SummarySpec, export_cohort_summary
from governance.registry.db import Registry
from governance.registry.policy import PolicyRefused
from governance.registry.seed import seed_demo
from governance.registry.workflow import review_request, submit_request
from partner_kit.profiles import partners
from tests.conftest import make_keys
from workspace import Home

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
RULES = DisclosureRules()
OUTCOMES = ("police_victim_contacts", "violent_injury_visits")
COLS = [f"{o}_{w}" for o in OUTCOMES for w in ("pre", "post")]
BANDS = ["10-14", "15-17", "18-24", "25-34"]


# ------------------------------------------------------------------------------------------ the cohort
@pytest.fixture
def cohort(tmp_path, monkeypatch):
    """A warehouse with an ATV cohort of 300 persons (one lone 10-14-year-old with many injury visits), and an
    aggregate-only approval of study atv-agg."""
    h = Home(tmp_path / "home").ensure()
    make_keys(h.root)
    monkeypatch.setenv("VPDC_HOME", str(h.root))
    monkeypatch.delenv("VPDC_REGISTRY_URL", raising=False)
    rng = random.Random(11)
    rows = []
    for i in range(300):
        band = "10-14" if i == 0 else rng.choice(BANDS[1:])
        sex = rng.choice(["Male", "Female"])
        outcomes = [rng.choice([0, 0, 0, 1, 2]) for _ in COLS]
        if i == 0:
            outcomes[COLS.index("violent_injury_visits_post")] = 8
        rows.append((f"pk_{i:04d}", "ATV", date(2023, 1, 1) + timedelta(days=rng.randrange(700)), 365, band, sex,
                     "Black or African American", *outcomes))
    with duckdb.connect(str(h.warehouse_db)) as con:
        con.execute("create schema analytics")
        con.execute("create table analytics.program_cohorts (person_key varchar, program varchar, enrollment_date date, "
                    "window_days integer, age_band_at_enrollment varchar, sex varchar, race_ethnicity varchar, "
                    + ", ".join(f"{c} integer" for c in COLS) + ")")
        con.executemany(f"insert into analytics.program_cohorts values ({', '.join('?' * (7 + len(COLS)))})", rows)
    reg = Registry.at(h.registry_db)
    with reg.transaction() as s:
        seed_demo(s)
        submit_request(s, requester="evaluator_atv", now=NOW, study_id="atv-agg", title="T", organisation="O",
                       purpose="p", research_questions="q", output_level="aggregate", irb_protocol="I",
                       columns=[{"dataset": "program_cohorts", "column": c} for c in
                                ["program", "age_band_at_enrollment", "sex", *COLS]],
                       irb_expires_on=date(2027, 6, 30), retention_end=date(2027, 12, 31), equity_communities="c",
                       equity_return_of_findings="r", equity_mitigation="m")
    for who in [f"steward_{p}" for p in partners()]:
        with reg.transaction() as s:
            review_request(s, reviewer=who, study_id="atv-agg", decision="approve", now=NOW)
    micro = pd.DataFrame(rows, columns=["person_key", "program", "enrollment_date", "window_days",
                                        "age_band_at_enrollment", "sex", "race_ethnicity", *COLS])
    return h, reg, micro


def summary(h, reg, by, start=date(2021, 1, 1), end=date(2026, 11, 1)):
    spec = SummarySpec("atv-agg", "evaluator_atv", "ATV", start, end, 365, by=by, outcomes=OUTCOMES)
    res = export_cohort_summary(spec, registry=reg, warehouse_db=h.warehouse_db, outputs_dir=h.outputs, now=NOW)
    return pd.read_csv(res.files[0], dtype={b: str for b in by})


def previous_protection(micro: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The summary as the gate published it before: line rule and exact-recovery audit on the counts, dominance
    on the sums, nothing more."""
    rows = []
    for key, sel in [*micro.groupby(by), (("All",) * len(by), micro)]:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key)) | {"persons": len(sel)}
        row |= {f"persons_with_{c}": int((sel[c] > 0).sum()) for c in COLS}
        row |= {f"{c}_total": int(sel[c].sum()) for c in COLS}
        rows.append(row)
    table = pd.DataFrame(rows)
    counts = ["persons", *[f"persons_with_{c}" for c in COLS]]
    table, _ = suppress_counts(table, counts, RULES, total_row={by[0]: "All"})
    frame = micro.assign(contributor=range(len(micro)))
    for c in COLS:
        shares = dominance_shares(frame, c, "contributor", by, RULES)
        for i, row in table.iterrows():
            if row[by[0]] != "All" and shares.get(row[by[0]] if len(by) == 1 else tuple(row[b] for b in by), 0) >= 0.9:
                table.loc[i, f"{c}_total"] = pd.NA
    return table


# -------------------------------------------------------------------------------------------- attacker
def attack(tables: list[tuple[pd.DataFrame, list[str], pd.Series]], breakdowns: list[str], micro: pd.DataFrame):
    """Everything a reader can infer from published tables of one population (members per table): for each hidden
    cell, its feasible interval, by integer programming over (breakdown combination x membership) atoms.

    Returns a list of (table index, row, column, true value, lo, hi)."""
    levels = {b: sorted(micro[b].unique()) for b in breakdowns}
    memberships = sorted({tuple(bool(m[i]) for _, _, m in tables) for i in range(len(micro))})
    atoms = [dict(zip(breakdowns, combo)) | {"_m": mem} for combo in product(*levels.values()) for mem in memberships]
    measures = ["persons", *[f"with:{c}" for c in COLS], *[f"sum:{c}" for c in COLS]]
    n = len(atoms) * len(measures)

    def var(a, m):
        return a * len(measures) + measures.index(m)

    a_rows, lo_rhs, hi_rhs = [], [], []

    def add(coefs: dict[int, float], lo: float, hi: float):
        row = np.zeros(n)
        for k, v in coefs.items():
            row[k] += v
        a_rows.append(row)
        lo_rhs.append(lo)
        hi_rhs.append(hi)

    ceiling = {c: int(micro[c].max()) for c in COLS}
    for a in range(len(atoms)):
        for c in COLS:
            add({var(a, f"with:{c}"): 1, var(a, "persons"): -1}, -np.inf, 0)
            add({var(a, f"with:{c}"): 1, var(a, f"sum:{c}"): -1}, -np.inf, 0)
            add({var(a, f"sum:{c}"): 1, var(a, f"with:{c}"): -ceiling[c]}, -np.inf, 0)
    targets = []
    for t, (table, by, _) in enumerate(tables):
        for i, row in table.iterrows():
            group = {} if row[by[0]] == "All" else {b: row[b] for b in by}
            ids = [a for a, atom in enumerate(atoms) if atom["_m"][t] and all(atom[b] == v for b, v in group.items())]
            for col in table.columns:
                if col in by:
                    continue
                measure = "persons" if col == "persons" else (f"with:{col[13:]}" if col.startswith("persons_with_")
                                                              else f"sum:{col[:-6]}")
                cell = {var(a, measure): 1 for a in ids}
                if pd.isna(row[col]):
                    targets.append((t, i, col, cell))
                else:
                    add(cell, float(row[col]), float(row[col]))
    cons = LinearConstraint(np.vstack(a_rows), lo_rhs, hi_rhs)
    truth_of = _truth(micro, tables)
    out = []
    for t, i, col, cell in targets:
        c = np.zeros(n)
        for k in cell:
            c[k] = 1
        lo = milp(c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1e7))
        hi = milp(-c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1e7))
        assert lo.status == 0 and hi.status == 0, "the attacker's model must be feasible (the tables are true)"
        out.append((t, i, col, truth_of[(t, i, col)], round(lo.fun), round(-hi.fun)))
    return out


def _truth(micro, tables):
    truth = {}
    for t, (table, by, members) in enumerate(tables):
        pop = micro[np.asarray(members, dtype=bool)]
        for i, row in table.iterrows():
            sel = pop
            if row[by[0]] != "All":
                for b in by:
                    sel = sel[sel[b] == row[b]]
            for col in table.columns:
                if col in by:
                    continue
                if col == "persons":
                    truth[(t, i, col)] = len(sel)
                elif col.startswith("persons_with_"):
                    truth[(t, i, col)] = int((sel[col[13:]] > 0).sum())
                else:
                    truth[(t, i, col)] = int(sel[col[:-6]].sum())
    return truth


def dominated(tables, micro, t, i, col) -> bool:
    """Whether a sum cell fails the dominance rule (its two largest contributors hold 90 % or more)."""
    table, by, members = tables[t]
    sel = micro[np.asarray(members, dtype=bool)]
    row = table.loc[i]
    if row[by[0]] != "All":
        for b in by:
            sel = sel[sel[b] == row[b]]
    values = sorted(sel[col[:-6]].tolist(), reverse=True)
    return sum(values) > 0 and sum(values[:2]) >= 0.9 * sum(values)


def exposures(found, tables=None, micro=None):
    """Hidden cells the attacker narrows below their protection: small counts that cannot be 0 or reach the
    minimum cell, dominated sums pinned closer than max(min_cell, half of them)."""
    bad = []
    for t, i, col, true, lo, hi in found:
        if col.endswith("_total"):
            if tables is not None and not dominated(tables, micro, t, i, col):
                continue  # hidden only to protect another cell: owed nothing itself
            q = max(RULES.min_cell, -(-true // 2))
            if lo > max(0, true - q) or hi < true + q:
                bad.append((t, i, col, true, lo, hi))
        elif 1 <= true < RULES.min_cell and (lo > 0 or hi < RULES.min_cell):
            bad.append((t, i, col, true, lo, hi))
    return bad


# --------------------------------------------------------------------------------------------- attacks
def test_subtraction_and_interval_attacks_break_the_previous_protection_not_the_gate(cohort):
    h, reg, micro = cohort
    everyone = np.ones(len(micro), dtype=bool)
    before = previous_protection(micro, ["age_band_at_enrollment"])
    tables = [(before, ["age_band_at_enrollment"], everyone)]
    broken = exposures(attack(tables, ["age_band_at_enrollment"], micro), tables, micro)
    # the lone 10-14-year-old's 8 injury visits: the column total minus the published groups
    assert any(col == "violent_injury_visits_post_total" and true == 8 and lo == hi == 8 for _, _, col, true, lo, hi
               in broken), broken
    now = summary(h, reg, ("age_band_at_enrollment",))
    tables = [(now, ["age_band_at_enrollment"], everyone)]
    assert exposures(attack(tables, ["age_band_at_enrollment"], micro), tables, micro) == []


def test_differencing_two_breakdowns_of_one_cohort_fails(cohort):
    h, reg, micro = cohort
    everyone = np.ones(len(micro), dtype=bool)
    by_age_before = previous_protection(micro, ["age_band_at_enrollment"])
    by_sex_before = previous_protection(micro, ["sex"])
    both = [(by_age_before, ["age_band_at_enrollment"], everyone), (by_sex_before, ["sex"], everyone)]
    assert exposures(attack(both, ["age_band_at_enrollment", "sex"], micro), both, micro)  # works on the old tables
    by_age = summary(h, reg, ("age_band_at_enrollment",))
    by_sex = summary(h, reg, ("sex",))  # checked against the first
    tables = [(by_age, ["age_band_at_enrollment"], everyone), (by_sex, ["sex"], everyone)]
    assert exposures(attack(tables, ["age_band_at_enrollment", "sex"], micro), tables, micro) == []
    assert len(list((h.outputs / "atv-agg").glob("summary_*_v*.csv"))) == 2  # versions: nothing overwritten


def test_a_second_period_that_differs_by_a_few_persons_is_refused(cohort):
    h, reg, micro = cohort
    summary(h, reg, ("sex",))
    enrolled = pd.to_datetime(micro["enrollment_date"]).dt.date.sort_values()
    end = enrolled.iloc[-3] - timedelta(days=1)  # a period that leaves out the last few enrollees
    few = int((enrolled > end).sum())
    assert 0 < few < RULES.min_cell
    with pytest.raises(PolicyRefused, match=f"differs from summary v1's by {few} persons"):
        summary(h, reg, ("sex",), end=end)
    assert len(list((h.outputs / "atv-agg").glob("summary_*.csv"))) == 1  # nothing written


@pytest.mark.parametrize(("option", "value", "named"), [
    ("program", "XYZ", "--program"), ("program", "../../etc", "--program"), ("window_days", -5, "--window-days"),
    ("by", ("shoe_size",), "--by"), ("outcomes", ("favourite_colour",), "--outcome"),
    ("study_id", "atv-agg\n", "study id"),
])
def test_bad_options_are_refused_naming_the_option_and_nothing_is_written(cohort, option, value, named):
    h, reg, _ = cohort
    kwargs = {"study_id": "atv-agg", "actor": "evaluator_atv", "program": "ATV", "period_start": date(2021, 1, 1),
              "period_end": date(2026, 11, 1), "window_days": 365, "by": ("sex",), "outcomes": OUTCOMES}
    kwargs[option] = value
    from governance.outputs.gate import ReleaseRequestError

    with pytest.raises(ReleaseRequestError, match=named):
        export_cohort_summary(SummarySpec(**kwargs), registry=reg, warehouse_db=h.warehouse_db, outputs_dir=h.outputs,
                              now=NOW)
    assert not h.outputs.exists() or not list(h.outputs.rglob("*.csv"))


# ------------------------------------------------------------------------------- record-level releases
@pytest.fixture
def cohort_studies(cohort):
    """Two studies of the same cohort, each approved for record-level cohort exports by every reviewer."""
    h, reg, micro = cohort
    for study in ("atv-a", "atv-b"):
        with reg.transaction() as s:
            submit_request(s, requester="evaluator_atv", now=NOW, study_id=study, title="T", organisation="O",
                           purpose="p", research_questions="q", output_level="cohort", irb_protocol="I",
                           columns=[{"dataset": "program_cohorts", "column": c} for c in
                                    ["program", "enrollment_date", "age_band_at_enrollment", "sex", *COLS]],
                           irb_expires_on=date(2027, 6, 30), retention_end=date(2027, 12, 31), equity_communities="c",
                           equity_return_of_findings="r", equity_mitigation="m")
        for who in [f"steward_{p}" for p in partners()] + ["community_board"]:
            with reg.transaction() as s:
                review_request(s, reviewer=who, study_id=study, decision="approve", now=NOW)
    return h, reg, micro


def cohort_file(h, reg, study, columns):
    from governance.outputs import CohortSpec, export_cohort

    res = export_cohort(CohortSpec(study, "evaluator_atv", "ATV", date(2021, 1, 1), date(2026, 11, 1), 365,
                                   columns=tuple(columns)), registry=reg, warehouse_db=h.warehouse_db,
                        outputs_dir=h.outputs, keys_dir=h.keys, now=NOW)
    return pd.read_csv(res.files[0], dtype=str)


def previous_cohort_file(micro, columns):
    """A cohort file as the gate released it before: k-anonymity on the demographic quasi-identifiers only,
    the outcome counts as they are."""
    from governance.disclosure import enforce_k_anonymity

    df = micro[list(columns)].astype(str)
    df["person"] = range(len(df))
    qis = [c for c in ("enrollment_date", "age_band_at_enrollment", "sex") if c in columns]
    out, _ = enforce_k_anonymity(df, qis, RULES, {q: [lambda s: pd.Series(["All"] * len(s), index=s.index)]
                                                  for q in qis}, entity="person")
    return out.drop(columns="person")


def one_to_one(a: pd.DataFrame, b: pd.DataFrame) -> int:
    """Rows of ``a`` whose values on the columns both files carry are unique in both: a certain join."""
    common = sorted((set(a.columns) & set(b.columns)) - {"study_person_id"})
    ka, kb = a[common].astype(str).agg("|".join, axis=1), b[common].astype(str).agg("|".join, axis=1)
    ca, cb = ka.value_counts(), kb.value_counts()
    return int(len(ca[ca == 1].index.intersection(cb[cb == 1].index)))


def test_two_studies_files_cannot_be_joined_on_their_outcome_columns(cohort_studies):
    h, reg, micro = cohort_studies
    cols = ["program", "age_band_at_enrollment", "sex", *COLS]
    before_a, before_b = previous_cohort_file(micro, cols), previous_cohort_file(micro, cols)
    assert one_to_one(before_a, before_b) > 0.1 * len(micro)  # the attack works on the previous releases
    a, b = cohort_file(h, reg, "atv-a", cols), cohort_file(h, reg, "atv-b", cols)
    assert len(a) > 0.5 * len(micro)  # most persons are released, coarsened
    assert one_to_one(a, b) == 0
    assert set(a["study_person_id"]).isdisjoint(b["study_person_id"])  # no pseudonym in common


def test_an_agency_cannot_find_its_own_clients_by_its_own_columns(cohort_studies):
    h, reg, micro = cohort_studies
    cols = ["program", "age_band_at_enrollment", "sex", *COLS]
    police = [c for c in COLS if c.startswith("police_")]
    before = previous_cohort_file(micro, cols)
    keys = before[["age_band_at_enrollment", "sex", *police]].astype(str).agg("|".join, axis=1)
    assert (keys.value_counts() == 1).sum() > 0  # before: police could single out some of its clients
    released = cohort_file(h, reg, "atv-a", cols)
    keys = released[["age_band_at_enrollment", "sex", *police]].astype(str).agg("|".join, axis=1)
    assert keys.groupby(keys).transform("size").min() >= RULES.k_anonymity


def test_joining_two_files_of_one_study_on_its_pseudonym_keeps_k(cohort_studies):
    h, reg, micro = cohort_studies
    one, two = ["program", "age_band_at_enrollment", *COLS[:2]], ["program", "sex", *COLS[2:]]
    before = previous_cohort_file(micro, one).join(previous_cohort_file(micro, two), lsuffix="_1", rsuffix="_2",
                                                   how="inner")  # the same person's rows (one pseudonym)
    assert before.groupby(list(before.columns), dropna=False).size().min() < RULES.k_anonymity  # k broken before
    first = cohort_file(h, reg, "atv-a", ["program", "age_band_at_enrollment", *COLS[:2]])
    second = cohort_file(h, reg, "atv-a", ["program", "sex", *COLS[2:]])
    joined = first.merge(second, on="study_person_id", suffixes=("_1", "_2"))
    quasi = [c for c in joined.columns if c != "study_person_id"]
    classes = joined.groupby(quasi, dropna=False)["study_person_id"].nunique()
    assert classes.min() >= RULES.k_anonymity
    assert sorted(p.name for p in (h.outputs / "atv-a").glob("cohort_*.csv"))[-1].endswith("_v2.csv")
