"""The quality gate's error estimate tracks the truth (issue 13 item 4, ADR 0012).

A 4,000-person population encoded by the partner kit (the attack suite's zone, with its loads registered) is linked
by the real run; the report's estimate (the SSN held out) must be within one point of the true pairwise precision
and recall, where the model's own figure was two points off on the demo, and its 95 % range must hold the truth. The same run must show a trained m and u
for every comparison level and hold twins apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from linkage.model import SSN_WORDS_LABEL

pytestmark = pytest.mark.integration

PERSONS, SEED = 4_000, 7


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    """One population (a fresh linkage key, as every real deployment has), its loads registered; each variant
    below links its own copy of the linkage zone, so the full and the sampled estimates describe the same records."""
    from bench.attacks.zone import build_population, register_loads

    pop = build_population(tmp_path_factory.mktemp("estimate") / "home", persons=PERSONS, seed=SEED)
    register_loads(pop.linkage_db)
    return pop


def _link_copy(pop, name: str, params=None, *, before=None):
    """Link a copy of the population's linkage zone (``before(con)`` may alter its encodings first); return the
    report with the synthetic truth beside the estimate."""
    import shutil

    from bench.attacks.zone import linkage_secret
    from linkage.pipeline import latest_run
    from linkage.quality import build_report
    from linkage.run import run_linkage
    from scoring.linkage import add_truth, load_truth

    db = pop.linkage_db.with_name(f"{name}.duckdb")
    shutil.copy(pop.linkage_db, db)
    if before is not None:
        with duckdb.connect(str(db)) as con:
            before(con)
    kwargs = {"params": params} if params is not None else {}
    result = run_linkage(db, now=datetime(2026, 2, 28, 12, 0, tzinfo=UTC), mode="full", **kwargs)
    with duckdb.connect(str(db)) as con:
        load_truth(con, pop.truth, linkage_secret(pop), boundary=None)
    run = latest_run(db)
    report = add_truth(build_report(db, run, cluster_threshold=run["params"]["cluster_threshold"]), db, as_of_year=2026)
    return result, report


@pytest.fixture(scope="module")
def linked(population):
    return _link_copy(population, "full")


@pytest.fixture(scope="module")
def linked_with_ssn_errors(population):
    """The same population, with one person's SSNs disagreeing far more often than keying typos do: 4 % of the
    SSN-bearing records get another, unrelated SSN (token, last four, filter, SSN-salted names), as FEBRL's
    duplicates and records keyed from the wrong family member do."""
    def replace_ssns(con):
        con.execute("select setseed(0.31)")
        fresh = "substr(md5(random()::varchar), 1, 16)"
        con.execute(f"""update encodings set enc_ssn_full = {fresh}, enc_ssn_last4 = {fresh}, enc_fn_ssn = {fresh},
            enc_ln_ssn = {fresh}, enc_ssnp_bf = unhex(md5(random()::varchar) || md5(random()::varchar)
                                                      || md5(random()::varchar) || md5(random()::varchar))
            where enc_ssn_full is not null and random() < 0.04""")

    return _link_copy(population, "ssn-errors", before=replace_ssns)[1]


@pytest.fixture(scope="module")
def linked_with_a_sample(population):
    """The same population linked with a held-out run capped below its size: all records without an SSN and those
    of a seeded sample of SSN values take part (``LinkageParams.holdout_records``, as at a million persons)."""
    from linkage.model import LinkageParams

    with duckdb.connect(str(population.linkage_db), read_only=True) as con:
        total, without = con.execute("select count(*), count(*) - count(enc_ssn_full) from encodings").fetchall()[0]
    _, report = _link_copy(population, "sample",
                           LinkageParams(holdout_records=without + (total - without) * 6 // 10))
    return total, without, report


def test_the_held_out_run_links_records_without_an_ssn_too(linked):
    # a link through a record without an SSN (a school's record) joins two records that carry one: leaving those
    # records out made the held-out recall a point lower than the run's own
    rates = linked[1]["estimated"]["held_out"]["rates"]
    assert rates["records_linked"] > rates["records"] > 0, rates
    assert rates["ssn_values_sampled_per_mille"] == 1000


def test_a_sample_of_ssn_values_keeps_the_estimate_within_its_range(linked_with_a_sample, linked):
    """Sampling SSN values (above a million records) is an unbiased sample of the labelled pairs: the estimate moves
    only by sampling error, which its 95 % range carries. At 4,000 persons a 60 % sample keeps about 870 labelled
    pairs, and over 14 fresh keys the sampled recall estimate sat 0.33-1.13 points below the truth (the full one
    0.56-0.79): within a point is a claim for the sizes where sampling applies (1,000,000 persons: -0.34, bench/),
    not for this one. Here: the full estimate of the same records, and the truth, lie within the sampled range."""
    total, without, report = linked_with_a_sample
    rates = report["estimated"]["held_out"]["rates"]
    assert rates["ssn_values_sampled_per_mille"] == 600, rates
    # every record without an SSN, and about 60 % of the others (whole SSN values: each true pair kept or not)
    assert without + 0.5 * (total - without) < rates["records_linked"] < without + 0.7 * (total - without), rates
    est, true, full = report["estimated"], report["truth"]["pairwise"], linked[1]["estimated"]
    for figure in ("precision", "recall"):
        lo, hi = est[f"{figure}_95"]
        assert lo <= full[figure] <= hi, (figure, est, full)
        assert lo <= true[figure] <= hi, (figure, est, true)
    assert abs(est["precision"] - true["precision"]) <= 0.01, (est, true)


def test_the_estimate_is_within_one_point_of_the_true_precision_and_recall(linked):
    _, report = linked
    est, true = report["estimated"], report["truth"]["pairwise"]
    assert est["method"] == "held-out SSN", est
    assert abs(est["precision"] - true["precision"]) <= 0.01, (est, true)
    assert abs(est["recall"] - true["recall"]) <= 0.01, (est, true)
    # its 95 % range is a range that holds the truth, and the model's own figure is kept beside it
    for figure in ("precision", "recall"):
        lo, hi = est[f"{figure}_95"]
        assert lo <= est[figure] <= hi and lo < hi, (figure, est)
        assert lo <= true[figure] <= hi, (figure, est, true)
    assert est["model"]["precision"] is not None


def test_links_no_ssn_can_judge_are_counted_and_widen_the_range(linked):
    """The school district records no SSN: no held-out label reaches its links. Their rates are the held-out ones
    in the point estimate (which is why the recall estimate errs low here: those records are the cleanest), and
    the range's upper end lets them be error-free; without that the range excluded the true recall."""
    _, report = linked
    held = report["estimated"]["held_out"]
    assert held["sources_without_ssn"] == 1, held
    unreached = held["linked_pairs_with_a_source_without_ssn"]
    assert 0 < unreached < held["linked_pairs_at_held_out_rate"], held
    # the upper end with those links error-free, the others at the held-out upper bounds: above the point
    # estimate by more than the sampling error of the held-out rates alone would allow
    rates = held["rates"]
    assert report["estimated"]["recall_95"][1] - report["estimated"]["recall"] > \
        rates["recall_95"][1] - rates["recall"], (report["estimated"], rates)


def test_the_estimate_allows_for_one_persons_ssns_disagreeing(linked_with_ssn_errors):
    """Counted as false links, such SSNs put the precision estimate points off; measured on the pairs with equal name
    and birth-date tokens, they are allowed for and it stays within a point."""
    report = linked_with_ssn_errors
    est, true = report["estimated"], report["truth"]["pairwise"]
    rate = est["held_out"]["rates"]["ssn_disagreement"]
    assert rate["applied"] and rate["rate"] > 0.03, rate  # the 4 % of records show: about 8 % of their pairs
    assert abs(est["precision"] - true["precision"]) <= 0.01, (est, true)
    # recall rests on the held-out run's recall, which the noisy SSNs move through training (measured: 1.4 points
    # low here, -0.08 on FEBRL4): held to two points, not one
    assert abs(est["recall"] - true["recall"]) <= 0.02, (est, true)
    # without the allowance the judged links alone would put precision below the truth by more than a point
    judged = est["held_out"]
    naive = 1 - (judged["linked_pairs_ssn_disagree"] / judged["linked_pairs"])
    assert true["precision"] - naive > 0.01, (naive, true)


def test_every_comparison_level_has_trained_parameters(linked):
    result, report = linked
    params = report["model"]["parameters"]
    assert {p["comparison"] for p in params} == {"first_name", "last_name", "dob", "sex", "ssn", "address", "zip",
                                                 "mi", "sfx"}
    for p in params:
        assert p["m"] is not None and p["u"] is not None and 0 < p["m"] <= 1 and 0 < p["u"] <= 1, p
    # a level no training pair reached (a rare pattern at 4,000 persons) is listed by name with what it was given,
    # never silently left at Splink's default; the names, which EM once left untrained, are all trained
    listed = {lv.split(" (")[0] for lv in result.untrained_levels}
    # scheme 5's SSN-salted level needs a DOB error, one SSN and both name fields changed: rare at 4,000 persons
    listed -= {f"{c}: {SSN_WORDS_LABEL}" for c in ("first_name", "last_name")}
    assert all(lv.startswith(("dob:", "ssn:", "sfx:", "mi:", "sex:", "zip:")) for lv in listed), listed
    assert report["run"]["untrained_levels"] == result.untrained_levels


def test_twins_are_held_apart_and_links_stay_precise(linked):
    result, report = linked
    assert result.held_apart_as_siblings > 0
    assert report["truth"]["pairwise"]["precision"] >= 0.985, report["truth"]["pairwise"]
