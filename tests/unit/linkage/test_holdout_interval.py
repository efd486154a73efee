"""The held-out estimate's 95 % range counts units, not pairs (linkage.holdout._ratio_interval).

One merge of two persons in the held-out run makes several false pairs, one missed person several missed pairs: the
range must be as wide as the number of such events allows, not as narrow as the number of pairs suggests.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from linkage.holdout import _ratio_interval


def _units(rows: list[tuple[float, float]]) -> list[float]:
    """[units, sum y, sum x, sum y², sum x², sum xy] of (y, x) unit totals, as holdout_rates computes them in SQL."""
    return [len(rows), sum(y for y, _ in rows), sum(x for _, x in rows), sum(y * y for y, _ in rows),
            sum(x * x for _, x in rows), sum(x * y for y, x in rows)]


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return round(max(0.0, c - h), 5), round(min(1.0, c + h), 5)


units = st.lists(st.tuples(st.integers(1, 12), st.integers(0, 12)).map(lambda t: (float(min(t)), float(max(t)))),
                 min_size=2, max_size=60).filter(lambda rows: sum(x for _, x in rows) > 0)


@given(units)
def test_the_share_lies_within_its_range_and_the_range_within_zero_and_one(rows):
    pairs = int(sum(x for _, x in rows))
    share, (lo, hi) = _ratio_interval(_units(rows), pairs)
    assert share == round(sum(y for y, _ in rows) / pairs, 5)
    assert 0.0 <= lo <= share <= hi <= 1.0


@given(units, st.floats(1.0, 1.5))
def test_a_scaled_share_is_capped_at_one(rows, scale):
    share, (lo, hi) = _ratio_interval(_units(rows), int(sum(x for _, x in rows)), scale)
    assert share <= 1.0 and hi <= 1.0 and lo <= share


@given(st.integers(200, 2_000), st.integers(0, 40))
def test_one_pair_per_unit_is_wilsons_interval_on_pairs(n, misses):
    """Independent pairs (every unit a single pair): the design effect is about one, the range Wilson's."""
    rows = [(0.0, 1.0)] * misses + [(1.0, 1.0)] * (n - misses)
    share, (lo, hi) = _ratio_interval(_units(rows), n)
    wlo, whi = _wilson(n - misses, n)
    assert abs(lo - wlo) < 0.002 and abs(hi - whi) < 0.002, ((lo, hi), (wlo, whi))


@given(st.integers(2, 6), st.integers(300, 1_500))
def test_false_pairs_that_come_in_few_merges_widen_the_range(merges, clean_clusters):
    """The same pairs, counted once as ``merges`` clusters of six false pairs each and once as independent pairs:
    the clustered range is wider (a handful of merge events is what the precision rests on)."""
    clustered = [(4.0, 10.0)] * merges + [(1.0, 1.0)] * clean_clusters
    flat = [(0.0, 1.0)] * (6 * merges) + [(1.0, 1.0)] * (4 * merges + clean_clusters)
    pairs = int(sum(x for _, x in clustered))
    share_c, (lo_c, hi_c) = _ratio_interval(_units(clustered), pairs)
    share_f, (lo_f, hi_f) = _ratio_interval(_units(flat), pairs)
    assert share_c == share_f
    assert lo_c < lo_f and hi_c - lo_c > hi_f - lo_f


def test_without_a_varying_unit_the_range_counts_units():
    """Every link correct: no variance to estimate, so the range is Wilson's over the clusters, not the pairs."""
    rows = [(3.0, 3.0)] * 100
    share, (lo, hi) = _ratio_interval(_units(rows), 300)
    assert share == 1.0 and hi == 1.0
    assert lo == _wilson(100, 100)[0] < _wilson(300, 300)[0]


def test_no_pairs_give_no_range():
    assert _ratio_interval([0, 0, 0, 0, 0, 0], 0) == (0.0, None)


def test_with_no_false_link_in_a_sample_the_range_allows_for_those_the_sample_could_not_see():
    """A sample of 60 % of SSN values sees a false link (two values) with 0.36, a cluster with 0.6: seeing none in
    100 clusters bounds the false links less tightly than seeing none in 100 clusters of the whole population."""
    rows = [(3.0, 3.0)] * 100
    _, (lo_all, _) = _ratio_interval(_units(rows), 300)
    _, (lo_sample, _) = _ratio_interval(_units(rows), 300, failure_weight=0.6)
    assert lo_sample == _wilson(60, 60)[0] < lo_all


@given(units, st.floats(1.0, 1.2))
def test_a_scaled_range_is_the_unscaled_one_scaled(rows, scale):
    """Scaling (one person's disagreeing SSNs counted correct) moves the range with the share, never narrows it."""
    pairs = int(sum(x for _, x in rows))
    _, (lo, hi) = _ratio_interval(_units(rows), pairs)
    _, (lo_s, hi_s) = _ratio_interval(_units(rows), pairs, scale)
    assert abs(lo_s - min(1.0, lo * scale)) < 1e-4 and abs(hi_s - min(1.0, hi * scale)) < 1e-4


def test_one_failing_unit_never_bounds_tighter_than_none():
    none = [(3.0, 3.0)] * 100
    one = [(3.0, 3.0)] * 99 + [(0.0, 3.0)]
    _, (lo_none, _) = _ratio_interval(_units(none), 300)
    _, (lo_one, _) = _ratio_interval(_units(one), 300)
    assert lo_one <= lo_none


def test_the_held_out_run_hides_every_encoding_derived_from_the_ssn():
    """A column salted by the SSN says "same SSN" as surely as the SSN token does (two filters under one salt are
    close, under two salts noise): the held-out run must blank every one, or the SSN it holds out leaks back in
    and the estimate grades the run against labels it saw."""
    from linkage.holdout import HELD_OUT_COLUMNS
    from linkage.model import BLOOMS, COLUMNS, filter_words
    from partner_kit.encode import FILTERS, PLAIN_TOKENS, SALTED_TOKENS

    short = {**COLUMNS, **BLOOMS}
    from_ssn = {col for col, (_, salt, *_rest) in {**SALTED_TOKENS, **FILTERS}.items() if salt == "ssn"}
    from_ssn |= {col for col, (field, _value) in PLAIN_TOKENS.items() if field.startswith("ssn")}
    from_ssn |= {col for col, (field, *_rest) in FILTERS.items() if field.startswith("ssn")}
    assert {"enc_nws_bf", "enc_fn_ssn", "enc_ssn_full", "enc_ssnp_bf"} <= from_ssn
    # a filter is input as its words and its bit count (linkage.model.filter_columns_sql): every one is blanked
    held = {c: [c] for c in COLUMNS.values()} | {b: [*filter_words(b), f"{b}_n"] for b in BLOOMS.values()}
    missing = sorted(short[c] for c in from_ssn if c in short and not set(held[short[c]]) <= set(HELD_OUT_COLUMNS))
    assert not missing, f"derived from the SSN but not held out: {missing}"


def _disagreement(groups: list[list[str]]) -> dict:
    """ssn_disagreement on a table of records: each group one person (one name and birthday), its SSN tokens."""
    import duckdb

    from linkage.holdout import ssn_disagreement
    from linkage.model import LinkageParams, filter_columns_sql

    rows = [(f"s{g % 3}", f"r{g}-{i}", f"fn{g}", f"ln{g}", f"dob{g}", ssn)
            for g, ssns in enumerate(groups) for i, ssn in enumerate(ssns)]
    con = duckdb.connect()
    con.execute("create table t (source_dataset varchar, unique_id varchar, fn varchar, ln varchar, dob varchar, "
                "ssn varchar)")
    con.executemany("insert into t values (?, ?, ?, ?, ?, ?)", rows)
    con.execute(f"create table link_input as select *, {filter_columns_sql('null::BLOB', 'ssn_bf')} from t")
    return ssn_disagreement(con, LinkageParams())


def test_the_ssn_disagreement_range_counts_persons_not_pairs():
    """Ten disagreeing pairs from one person with a wrong SSN on one of eleven records, or from ten persons with
    two records each: the same pairs and the same rate, but one event against ten: the first range is wider."""
    agreeing = [[f"a{g}", f"a{g}"] for g in range(400)]
    one = _disagreement(agreeing + [["x"] * 10 + ["y"]] + [[f"b{g}", f"b{g}"] for g in range(45)])
    ten = _disagreement(agreeing + [[f"x{g}", f"y{g}"] for g in range(10)] + [[f"c{g}", f"c{g}"] for g in range(90)])
    assert one["pairs"] == ten["pairs"] == 500
    assert one["disagree"] == ten["disagree"] == 10 and one["rate"] == ten["rate"]
    (lo1, hi1), (lo10, hi10) = one["rate_95"], ten["rate_95"]
    assert lo1 <= one["rate"] <= hi1 and lo10 <= ten["rate"] <= hi10
    assert hi1 - lo1 > 1.5 * (hi10 - lo10), (one["rate_95"], ten["rate_95"])
    assert one["persons"] == 446 and ten["persons"] == 500


@given(st.integers(1, 400), st.integers(0, 40), st.floats(0.0, 0.05), st.floats(0.0, 0.05), st.floats(0.0, 0.05))
def test_the_held_out_precision_range_covers_the_range_of_the_ssn_disagreement_rate(units, failing, a, b, c):
    """The share is scaled by 1 / (1 - rate); the range must hold the scaled shares at both ends of the rate's own
    range, and the point (at the rate itself) inside it."""
    from linkage.holdout import _held_out_precision

    lo_rate, rate, hi_rate = sorted((a, b, c))
    failing = min(failing, units)
    rows = [(3.0, 3.0)] * (units - failing) + [(1.0, 3.0)] * failing  # clusters: (agreeing, linked) pairs
    u = _units(rows)
    p, (lo, hi) = _held_out_precision(u, int(u[2]), 1.0, rate, (lo_rate, hi_rate))
    _, (lo_at_low, _) = _held_out_precision(u, int(u[2]), 1.0, lo_rate, None)
    _, (_, hi_at_high) = _held_out_precision(u, int(u[2]), 1.0, hi_rate, None)
    assert lo <= lo_at_low and hi >= hi_at_high and lo <= p <= hi
