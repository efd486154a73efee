"""Training on pairs born on one day (or at one address) samples birth days (addresses) once those pairs outgrow
the budget (38 million pairs at 1,000,000 persons made a 19.6 GiB temp table): below it every pair is used, above it a seeded share of days whose
pairs come near the budget."""

from __future__ import annotations

import duckdb

from linkage.model import LinkageParams, dob_day_sample


def _table(con, days: int, per_day: int) -> None:
    con.execute(f"create or replace table link_input as select 'd' || (i % {days}) as dob, i as unique_id "
                f"from range({days * per_day}) t(i)")


def test_every_pair_is_used_below_the_budget_and_a_share_of_days_above_it():
    con = duckdb.connect()
    _table(con, days=200, per_day=10)  # 200 * 45 = 9,000 pairs
    assert dob_day_sample(con, "link_input", LinkageParams(dob_training_pairs=10_000)) is None
    _table(con, days=4000, per_day=40)  # 4000 * 780 = 3,120,000 pairs
    params = LinkageParams(dob_training_pairs=300_000)
    cond = dob_day_sample(con, "link_input", params)
    assert cond is not None and cond == dob_day_sample(con, "link_input", params)  # seeded: the same days
    kept = con.execute(f"select sum(n * (n - 1) / 2) from (select count(*) n from link_input where {cond} "
                       "group by dob)").fetchall()[0][0]
    assert 200_000 <= kept <= 400_000
    other = dob_day_sample(con, "link_input", LinkageParams(dob_training_pairs=300_000, seed=7))
    assert other != cond


def test_the_address_session_samples_addresses_the_same_way():
    """The EM session blocked on one address (3 million pairs at 1,000,000 persons) samples addresses like birth
    days: every pair of a kept address is kept, so the sample is unbiased, and it comes near the budget."""
    from linkage.model import key_sample

    con = duckdb.connect()
    con.execute("create table link_input as select 'a' || (i % 3000) as addr, i as unique_id from range(120000) t(i)")
    assert key_sample(con, "link_input", "addr", 5e6, 1) is None  # 3000 * 780 = 2,340,000 pairs: all used
    cond = key_sample(con, "link_input", "addr", 500_000, 1)
    assert cond is not None and cond.startswith("hash(addr, 1) % 1000 < ")
    kept = con.execute(f"select sum(n * (n - 1) / 2) from (select count(*) n from link_input where {cond} "
                       "group by addr)").fetchall()[0][0]
    assert 350_000 <= kept <= 650_000


def test_the_held_out_run_samples_ssn_values_only_above_its_budget():
    from linkage.holdout import holdout_sample

    params = LinkageParams(holdout_records=1_000_000)
    assert holdout_sample(900_000, 600_000, params) is None  # every record takes part
    # 1.4 million records, 950,000 with an SSN: all 450,000 without one and 579 per mille of the SSN values
    assert holdout_sample(1_400_000, 950_000, params) == 579
    # records without an SSN alone over the budget: a tenth of the SSN values still labels pairs
    assert holdout_sample(3_000_000, 1_000_000, params) == 100
    assert holdout_sample(2_000_000, 0, params) is None  # nothing to label: the caller reports it
