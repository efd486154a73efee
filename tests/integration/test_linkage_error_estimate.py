"""The quality gate's error estimate tracks the truth (issue 13 item 4, ADR 0012).

A 4,000-person population encoded by the partner kit (the attack suite's zone, with its loads registered) is linked
by the real run; the report's estimate (the SSN held out) must be within one point of the true pairwise precision
and recall, where the model's own figure was two points off on the demo. The same run must show a trained m and u
for every comparison level and hold twins apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

pytestmark = pytest.mark.integration

PERSONS, SEED = 4_000, 7


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    from bench.attacks.zone import build_population, linkage_secret, register_loads
    from linkage.pipeline import latest_run
    from linkage.quality import build_report
    from linkage.run import run_linkage
    from scoring.linkage import add_truth, load_truth

    pop = build_population(tmp_path_factory.mktemp("estimate") / "home", persons=PERSONS, seed=SEED)
    register_loads(pop.linkage_db)
    result = run_linkage(pop.linkage_db, now=datetime(2026, 2, 28, 12, 0, tzinfo=UTC), mode="full")
    with duckdb.connect(str(pop.linkage_db)) as con:
        load_truth(con, pop.truth, linkage_secret(pop), boundary=None)
    run = latest_run(pop.linkage_db)
    report = add_truth(build_report(pop.linkage_db, run, cluster_threshold=run["params"]["cluster_threshold"]),
                       pop.linkage_db, as_of_year=2026)
    return result, report


@pytest.fixture(scope="module")
def linked_with_ssn_errors(tmp_path_factory):
    """The same kind of population, with one person's SSNs disagreeing far more often than keying typos do: 4 % of
    the SSN-bearing records get another, unrelated SSN (token, last four, filter, SSN-salted names), as FEBRL's
    duplicates and records keyed from the wrong family member do."""
    from bench.attacks.zone import build_population, linkage_secret, register_loads
    from linkage.pipeline import latest_run
    from linkage.quality import build_report
    from linkage.run import run_linkage
    from scoring.linkage import add_truth, load_truth

    pop = build_population(tmp_path_factory.mktemp("estimate-ssn") / "home", persons=PERSONS, seed=SEED)
    register_loads(pop.linkage_db)
    with duckdb.connect(str(pop.linkage_db)) as con:
        con.execute("select setseed(0.31)")
        fresh = "substr(md5(random()::varchar), 1, 16)"
        con.execute(f"""update encodings set enc_ssn_full = {fresh}, enc_ssn_last4 = {fresh}, enc_fn_ssn = {fresh},
            enc_ln_ssn = {fresh}, enc_ssnp_bf = unhex(md5(random()::varchar) || md5(random()::varchar)
                                                      || md5(random()::varchar) || md5(random()::varchar))
            where enc_ssn_full is not null and random() < 0.04""")
    run_linkage(pop.linkage_db, now=datetime(2026, 2, 28, 12, 0, tzinfo=UTC), mode="full")
    with duckdb.connect(str(pop.linkage_db)) as con:
        load_truth(con, pop.truth, linkage_secret(pop), boundary=None)
    run = latest_run(pop.linkage_db)
    return add_truth(build_report(pop.linkage_db, run, cluster_threshold=run["params"]["cluster_threshold"]),
                     pop.linkage_db, as_of_year=2026)


@pytest.fixture(scope="module")
def linked_with_a_sample(tmp_path_factory):
    """The same population linked with a held-out run capped below its size: all records without an SSN and those
    of a seeded sample of SSN values take part (``LinkageParams.holdout_records``, as at a million persons)."""
    from bench.attacks.zone import build_population, linkage_secret, register_loads
    from linkage.model import LinkageParams
    from linkage.pipeline import latest_run
    from linkage.quality import build_report
    from linkage.run import run_linkage
    from scoring.linkage import add_truth, load_truth

    pop = build_population(tmp_path_factory.mktemp("estimate-sample") / "home", persons=PERSONS, seed=SEED)
    register_loads(pop.linkage_db)
    with duckdb.connect(str(pop.linkage_db)) as con:
        total, without = con.execute("select count(*), count(*) - count(enc_ssn_full) from encodings").fetchall()[0]
    run_linkage(pop.linkage_db, now=datetime(2026, 2, 28, 12, 0, tzinfo=UTC), mode="full",
                params=LinkageParams(holdout_records=without + (total - without) * 6 // 10))
    with duckdb.connect(str(pop.linkage_db)) as con:
        load_truth(con, pop.truth, linkage_secret(pop), boundary=None)
    run = latest_run(pop.linkage_db)
    report = add_truth(build_report(pop.linkage_db, run, cluster_threshold=run["params"]["cluster_threshold"]),
                       pop.linkage_db, as_of_year=2026)
    return total, without, report


def test_the_held_out_run_links_records_without_an_ssn_too(linked):
    # a link through a record without an SSN (a school's record) joins two records that carry one: leaving those
    # records out made the held-out recall a point lower than the run's own
    rates = linked[1]["estimated"]["held_out"]["rates"]
    assert rates["records_linked"] > rates["records"] > 0, rates
    assert rates["ssn_values_sampled_per_mille"] == 1000


def test_a_sample_of_ssn_values_keeps_the_estimate_within_one_point(linked_with_a_sample):
    total, without, report = linked_with_a_sample
    rates = report["estimated"]["held_out"]["rates"]
    assert rates["ssn_values_sampled_per_mille"] == 600, rates
    # every record without an SSN, and about 60 % of the others (whole SSN values: each true pair kept or not)
    assert without + 0.5 * (total - without) < rates["records_linked"] < without + 0.7 * (total - without), rates
    est, true = report["estimated"], report["truth"]["pairwise"]
    assert abs(est["precision"] - true["precision"]) <= 0.01, (est, true)
    assert abs(est["recall"] - true["recall"]) <= 0.01, (est, true)


def test_the_estimate_is_within_one_point_of_the_true_precision_and_recall(linked):
    _, report = linked
    est, true = report["estimated"], report["truth"]["pairwise"]
    assert est["method"] == "held-out SSN", est
    assert abs(est["precision"] - true["precision"]) <= 0.01, (est, true)
    assert abs(est["recall"] - true["recall"]) <= 0.01, (est, true)
    # its 95 % range is a range, and the model's own figure is kept beside it
    lo, hi = est["precision_95"]
    assert lo <= est["precision"] <= hi and lo < hi
    assert est["model"]["precision"] is not None


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
    assert all(lv.startswith(("dob:", "ssn:", "sfx:", "mi:", "sex:", "zip:")) for lv in listed), listed
    assert report["run"]["untrained_levels"] == result.untrained_levels


def test_twins_are_held_apart_and_links_stay_precise(linked):
    result, report = linked
    assert result.held_apart_as_siblings > 0
    assert report["truth"]["pairwise"]["precision"] >= 0.985, report["truth"]["pairwise"]
