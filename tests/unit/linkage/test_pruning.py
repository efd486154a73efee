"""The bound that lets linkage skip blocked pairs before scoring (``linkage.model.pruning``): computed from the
trained model, never applied when it does not fall under the prediction threshold."""

from __future__ import annotations

import math

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.model import LinkageParams, _dice_of, pruned_rules, pruning


def _comparison(name: str, levels: list[tuple[str, float | None, float | None]], tf: str | None = None) -> dict:
    out = []
    for sql, m, u in levels:
        lv = {"sql_condition": sql, "label_for_charts": sql}
        if m is None:
            lv["is_null_level"] = True
        else:
            lv |= {"m_probability": m, "u_probability": u}
        if tf and sql.startswith(f'"{tf}_l" ='):
            lv |= {"tf_adjustment_column": tf, "tf_adjustment_weight": 1.0}
        out.append(lv)
    return {"output_column_name": name, "comparison_levels": out}


def _model(lam: float) -> dict:
    strong = [_comparison(n, [(f'"{c}_l" IS NULL OR "{c}_r" IS NULL', None, None), (f'"{c}_l" = "{c}_r"', 0.9, 0.001),
                              ("ELSE", 0.1, 0.999)])
              for n, c in (("first_name", "fn"), ("last_name", "ln"), ("ssn", "ssn"), ("address", "addr"),
                           ("zip", "zip"))]
    weak = [_comparison("dob", [('"dob_l" IS NULL OR "dob_r" IS NULL', None, None), ('"dob_l" = "dob_r"', 0.97, 1e-4),
                                ("ELSE", 0.03, 0.9999)], tf="dob"),
            _comparison("sex", [('"sex_l" = "sex_r"', 0.99, 0.5), ("ELSE", 0.01, 0.5)])]
    return {"probability_two_random_records_match": lam, "comparisons": strong + weak}


def test_the_bound_is_the_prior_plus_disagreements_plus_the_best_of_the_rest():
    lam, records = 1e-6, 50_000
    got = pruning(_model(lam), records, LinkageParams())
    # names disagree; SSN, address and ZIP disagree or are missing (a factor of 1); the best date of birth with the
    # rarest value's term frequency, and agreeing sex
    weight = (math.log2(lam / (1 - lam)) + 2 * math.log2(0.1 / 0.999) + math.log2(0.97 / 1e-4)
              + math.log2(1e-4 * records * 2) + math.log2(0.99 / 0.5))
    assert got["max_match_probability"] == pytest.approx(1 / (1 + 2 ** -weight))
    assert got["comparisons"] == ["first_name", "last_name", "ssn", "address", "zip"] and got["condition"]
    assert got["missing_allowed"] == ["ssn", "address", "zip"]


def test_missing_values_stand_in_for_disagreement_only_while_the_bound_holds():
    # a prior at which a missing SSN, address and ZIP would let a pair reach the threshold: only the SSN may be
    # missing (then nothing: the names alone are not enough)
    for lam, allowed in ((1e-6, ["ssn", "address", "zip"]), (0.05, ["ssn"]), (0.5, [])):
        got = pruning(_model(lam), 1000, LinkageParams())
        assert got["condition"] and got["missing_allowed"] == allowed and got["max_match_probability"] < 0.5, (lam, got)


def test_no_pruning_when_the_bound_reaches_the_threshold_or_a_level_is_untrained():
    assert pruning(_model(0.9), 1000, LinkageParams())["condition"] is None  # a large prior: nothing is safe to skip
    model = _model(1e-6)
    model["comparisons"][0]["comparison_levels"][1]["m_probability"] = None
    assert pruning(model, 1000, LinkageParams())["condition"] is None


def test_the_condition_keeps_exactly_the_pairs_where_something_identifying_does_not_disagree():
    prune = pruning(_model(1e-6), 1000, LinkageParams())
    con = duckdb.connect()
    cols = ("fn", "ln", "ssn", "addr", "zip", "dob", "sex")
    con.execute("create table t (id int, " + ", ".join(f"{c} varchar" for c in cols) + ")")
    base = ["f", "l", "s", "a", "z", "d", "m"]
    rows = [(0, *base), (1, "F", "L", "S", "A", "Z", "d", "m"),  # everything identifying differs: skipped
            (2, "F", "L", None, "A", None, "d", "m"),  # SSN and ZIP missing, the rest differs: skipped
            (3, "F", "l", "S", "A", "Z", "d", "m"),  # the surname agrees: kept
            (4, None, "L", "S", "A", "Z", "d", "m")]  # the first name missing: kept (names must be there to differ)
    con.executemany(f"insert into t values ({', '.join('?' * 8)})", rows)
    rule = pruned_rules(["l.dob = r.dob"], prune)[0]
    kept = {r[0] for r in con.execute(f"select r.id from t l join t r on {rule} and l.id = 0 and r.id > 0").fetchall()}
    assert kept == {3, 4}


def test_a_comparison_blank_on_every_record_is_left_out():
    """The held-out run blanks the SSN: its null level would keep every pair, so it is left out of the condition
    (it contributes exactly nothing to any score there)."""
    with_ssn = pruning(_model(1e-6), 1000, LinkageParams())
    without = pruning(_model(1e-6), 1000, LinkageParams(), always_null=("ssn",))
    assert "ssn" not in without["comparisons"] and "ssn_l" not in without["condition"].replace("l.ssn", "")
    assert "l.ssn" in with_ssn["condition"] and "l.ssn" not in without["condition"]
    assert without["max_match_probability"] == pytest.approx(with_ssn["max_match_probability"])


def test_level_conditions_become_blocking_sql_in_either_dialect():
    """Splink quotes a model's columns as DuckDB does ("fn_l") or as Spark does (`fn_l`): both become l./r."""
    from linkage.model import _blocking_sql

    assert _blocking_sql('"fn_bf_l" IS NULL OR "fn_bf_r" IS NULL') == "l.fn_bf IS NULL OR r.fn_bf IS NULL"
    assert _blocking_sql("`fn_bf_l` IS NULL OR `fn_bf_r` IS NULL") == "l.fn_bf IS NULL OR r.fn_bf IS NULL"
    assert _blocking_sql("fn_bf_n_l + fn_bf_n_r > 0 and l.x_l = 1") == "l.fn_bf_n + r.fn_bf_n > 0 and l.x_l = 1"


def test_an_agreement_level_em_never_reached_weighs_nothing_but_a_disagreement_level_keeps_its_evidence():
    """EM leaves m at Splink's clamp floor (1e-300) for a level no training pair reached; for a counted agreement
    level (scheme 5's SSN-salted names) that would weigh about -900 bits against the pairs reaching it in prediction.
    It is listed and weighs nothing; an "else" level at the floor stays strong evidence of a non-match."""
    from splink.internals.comparison_level import M_U_CLAMP_MIN

    from linkage.model import M_U_CLAMP_MIN as OURS
    from linkage.model import SSN_WORDS_LABEL, fill_unobserved

    assert OURS == M_U_CLAMP_MIN  # the floor Splink's EM clamps to, copied

    model = {"comparisons": [{"output_column_name": "first_name", "comparison_levels": [
        {"label_for_charts": SSN_WORDS_LABEL, "m_probability": 1e-300, "u_probability": 6e-8},
        {"label_for_charts": "All other comparisons", "m_probability": 1e-300, "u_probability": 0.9}]}]}
    filled = fill_unobserved(model)
    words, other = model["comparisons"][0]["comparison_levels"]
    assert words["m_probability"] == words["u_probability"] == 6e-8
    assert other["m_probability"] == 1e-300
    assert filled == [f"first_name: {SSN_WORDS_LABEL} (not observed in training: weight 0)"]


_ATOMS = [
    "l.a = r.a", "l.b = r.b", "l.a <> r.a", "l.a is null or r.a is null", "l.b = r.a and l.a = r.b",
    "(l.a = r.a or l.b = r.b) and l.a <> r.b",
    *(f"{_dice_of('l.f', 'r.f', 'l.f_n', 'r.f_n', 'duckdb')} >= {t}" for t in (0.89, 0.92, 0.95)),
    *(f"{_dice_of('l.g', 'r.g', 'l.g_n', 'r.g_n', 'duckdb')} >= {t}" for t in (0.5, 0.9)),
]


@settings(max_examples=60, deadline=None)
@given(chosen=st.lists(st.sampled_from(range(len(_ATOMS) + 2)), min_size=1, max_size=8),
       seed=st.integers(0, 2**31 - 1))
def test_the_cheaper_condition_keeps_exactly_the_pairs_the_condition_keeps(chosen, seed):
    """The pruning condition's rewrite (ADR 0021: a repeated disjunct once, a filter's higher Dice bands dropped where
    its lowest is a disjunct, Dice tests last) keeps the same pairs as the plain disjunction, nulls included."""
    from linkage.model import _cheap_first, filter_columns_sql

    conds = [(_ATOMS[i] if i < len(_ATOMS) else f"{_ATOMS[i - len(_ATOMS)]} and {_ATOMS[-1]}") for i in chosen]
    con = duckdb.connect()
    con.execute("select setseed(?)", [seed / 2**31])
    # 300 records: small domains so that equalities happen; filters of 64 random bytes, near-copies and nulls
    con.execute("""create table raw as select i,
        case when random() < 0.2 then null else (random() * 3)::int end a,
        case when random() < 0.2 then null else (random() * 3)::int end b,
        case when random() < 0.15 then null else
             from_hex(lpad(to_hex((random() * 4)::int), 128, 'f')) end f,
        case when random() < 0.15 then null else
             from_hex(lpad(to_hex((random() * 65536)::int), 128, '0')) end g
        from range(300) t(i)""")
    con.execute(f"create table t as select i, a, b, {filter_columns_sql('f', 'f')}, {filter_columns_sql('g', 'g')} "
                "from raw")
    plain = " or ".join(f"coalesce({c}, false)" for c in conds)
    cheap = " or ".join(f"coalesce({c}, false)" for c in _cheap_first(conds))
    q = "select count(*) filter (where {}) from t l join t r on l.i < r.i"
    assert con.execute(q.format(plain)).fetchall() == con.execute(q.format(cheap)).fetchall()
    assert con.execute(f"select count(*) from t l join t r on l.i < r.i where ({plain}) <> ({cheap})").fetchall() == [(0,)]
