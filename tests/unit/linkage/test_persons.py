from datetime import UTC, date, datetime

import duckdb
import pytest

from linkage.persons import assign_person_keys, confidence_bands, ensure_tables

NOW = datetime(2026, 11, 21, tzinfo=UTC)


@pytest.fixture
def con():
    c = duckdb.connect()
    ensure_tables(c)
    return c


def run(con, run_id: str, clusters: dict[str, list[str]], edges: list[tuple[str, str, float]] = ()):
    """clusters: cluster_id -> record ids (all source 'a')."""
    rows = [(f"a:{r}", "a", r, cid) for cid, recs in clusters.items() for r in recs]
    con.execute("create or replace table cl (node_id varchar, source varchar, source_record_id varchar, cluster_id varchar)")
    con.executemany("insert into cl values (?, ?, ?, ?)", rows)
    con.execute("create or replace table ed (node_id_l varchar, node_id_r varchar, match_probability double)")
    if edges:
        con.executemany("insert into ed values (?, ?, ?)", [(f"a:{x}", f"a:{y}", p) for x, y, p in edges])
    confidence_bands(con, "cl", "ed")
    return assign_person_keys(con, "cl", run_id=run_id, now=NOW)


def keys(con) -> dict[str, str]:
    return dict(con.execute("select source_record_id, person_key from person_keys").fetchall())


def test_first_run_creates_one_key_per_cluster(con):
    assert run(con, "r1", {"c1": ["1", "2"], "c2": ["3"]}) == {"created": 2, "merged": 0, "split": 0}
    k = keys(con)
    assert k["1"] == k["2"] != k["3"]


def test_keys_survive_a_rerun_with_new_records_and_renumbered_clusters(con):
    run(con, "r1", {"c1": ["1", "2"], "c2": ["3"]})
    before = keys(con)
    events = run(con, "r2", {"x9": ["1", "2", "4"], "x1": ["3"], "x5": ["5"]})
    after = keys(con)
    assert after["1"] == before["1"] and after["4"] == before["1"] and after["3"] == before["3"]
    assert events == {"created": 1, "merged": 0, "split": 0}


def test_merge_keeps_the_larger_persons_key_and_records_the_other(con):
    run(con, "r1", {"c1": ["1", "2", "3"], "c2": ["4"]})
    before = keys(con)
    assert run(con, "r2", {"m": ["1", "2", "3", "4"]}) == {"created": 0, "merged": 1, "split": 0}
    assert set(keys(con).values()) == {before["1"]}
    hist = con.execute("select event, person_key, other_key, records from person_key_history where run_id='r2'").fetchall()
    assert hist == [("merged", before["1"], before["4"], 1)]


def test_split_keeps_the_key_on_the_larger_part_and_records_the_new_one(con):
    run(con, "r1", {"c1": ["1", "2", "3"]})
    old = keys(con)["1"]
    assert run(con, "r2", {"a": ["1", "2"], "b": ["3"]}) == {"created": 0, "merged": 0, "split": 1}
    k = keys(con)
    assert k["1"] == k["2"] == old != k["3"]
    assert con.execute("select event, person_key, other_key from person_key_history where run_id='r2'").fetchall() == [
        ("split", k["3"], old)]


def test_every_run_is_kept_so_a_study_can_pin_one(con):
    from linkage.persons import person_keys_as_of

    run(con, "r1", {"c1": ["1", "2"]})
    con.execute("insert into linkage_runs (run_id, finished_at) values ('r1', timestamptz '2026-01-01 00:00+00')")
    run(con, "r2", {"a": ["1"], "b": ["2"], "c": ["3"]})
    con.execute("insert into linkage_runs (run_id, finished_at) values ('r2', timestamptz '2026-02-01 00:00+00')")
    r1 = dict(person_keys_as_of(con, "r1").select("source_record_id, person_key").fetchall())
    r2 = dict(person_keys_as_of(con, "r2").select("source_record_id, person_key").fetchall())
    assert set(r1) == {"1", "2"} and r1["1"] == r1["2"]
    assert set(r2) == {"1", "2", "3"} and len(set(r2.values())) == 3 and r2["1"] == r1["1"]
    # the change log holds only what changed in r2: record 2 (split off) and record 3 (new)
    assert sorted(r[0] for r in con.execute("select source_record_id from person_key_versions where run_id='r2'").fetchall()) == ["2", "3"]


def test_confidence_band_is_the_strongest_link_inside_the_cluster(con):
    run(con, "r1", {"c1": ["1", "2", "3"], "c2": ["4"]}, edges=[("1", "2", 0.995), ("2", "3", 0.96), ("3", "4", 0.999)])
    bands = dict(con.execute("select source_record_id, match_confidence from person_keys").fetchall())
    # the 3-4 edge crosses clusters, so it does not count for either
    assert bands == {"1": "high", "2": "high", "3": "medium", "4": "singleton"}


def test_dice_on_bloom_filters_in_duckdb_sql_matches_python():
    from envelope.keys import LinkageSecret
    from partner_kit import Encoder, dice

    enc = Encoder(LinkageSecret.from_master("v1", b"x" * 32))
    pairs = [("JONATHAN", "JOHNATHAN"), ("MARIA", "MARIA"), ("MARIA", "MOHAMMED"), ("GARCIALOPEZ", "GARCIA")]
    from linkage.model import _dice, filter_columns_sql, filter_words

    con = duckdb.connect()
    for a, b in pairs:
        # one date of birth: names are compared by Dice only where they share the salt
        ba, bb = (enc.encode_record({"first": n, "dob": date(1990, 3, 7)}, "A" * 20)["enc_fn_bf"]
                  for n in (a, b))
        # the model's own Dice expression, over the input's words and bit counts (as prepare_inputs makes them), as
        # Splink runs it
        con.execute("create or replace table p as select ?::BLOB a, ?::BLOB b", [ba, bb])
        cols = [*filter_words("fn_bf"), "fn_bf_n"]
        con.execute(f"create or replace table w as select {filter_columns_sql('a', 'fn_bf')} from p")
        con.execute(f"create or replace table v as select {filter_columns_sql('b', 'fn_bf')} from p")
        sql = con.execute(f"select {_dice('fn_bf')} from (select "
                          + ", ".join(f"w.{c} as {c}_l, v.{c} as {c}_r" for c in cols) + " from w, v)").fetchall()[0][0]
        assert sql == pytest.approx(dice(ba, bb))


def test_a_key_table_of_an_older_layout_loses_its_index_and_keeps_its_rows():
    from linkage.persons import ensure_tables

    con = duckdb.connect()
    con.execute("create table person_keys (source varchar, source_record_id varchar, person_key varchar, "
                "match_confidence varchar, run_id varchar, primary key (source, source_record_id))")
    con.execute("insert into person_keys values ('police', 'r1', 'pk_1', 'high', 'run1')")
    ensure_tables(con)
    assert con.execute("select * from person_keys").fetchall() == [("police", "r1", "pk_1", "high", "run1")]
    assert con.execute("select count(*) from duckdb_constraints() where table_name = 'person_keys' "
                       "and constraint_type = 'PRIMARY KEY'").fetchall()[0][0] == 0
