"""Linkage on the encodings of a tiny synthetic collaborative: quality, stable keys, refusals, Dagster."""

import json
import shutil
from datetime import UTC, datetime

import duckdb
import pytest

from envelope.format import read_manifest
from envelope.keys import Custodian, WarehouseKeyRing
from landing.ingest import ingest_envelope
from linkage.model import EncodingSchemeError, KeyVersionError, LinkageParams, prepare_inputs
from linkage.run import LinkageMemoryError, export_person_map, run_linkage
from partner_kit.profiles import partners
from scoring.linkage import cluster_metrics, load_truth, pairwise_metrics
from tests.integration.conftest import boundary
from workspace import Home

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def ingest_period(home: Home, period: str, skip: tuple[str, ...] = ()) -> None:
    ring = WarehouseKeyRing(home.keys)
    for f in sorted(home.landing().glob("*/*.vpdc")):
        m = read_manifest(f)
        if m.period == period and m.partner not in skip:
            out = ingest_envelope(f, home, ring, now=NOW)
            assert out.status == "loaded", (out.file, out.check, out.detail)


@pytest.fixture(scope="session")
def baseline_home(sent_home, tmp_path_factory) -> Home:
    home = Home(tmp_path_factory.mktemp("baseline") / "home")
    shutil.copytree(sent_home.root, home.root)
    ingest_period(home, "2025-11")
    return home


@pytest.fixture
def home(baseline_home, tmp_path, monkeypatch) -> Home:
    h = Home(tmp_path / "home")
    shutil.copytree(baseline_home.root, h.root)
    monkeypatch.setenv("VPDC_HOME", str(h.root))
    monkeypatch.setenv("VPDC_KEYS_DIR", str(h.keys))
    monkeypatch.setenv("DAGSTER_HOME", str(h.dagster))
    return h


def truth_scores(home: Home) -> tuple[dict, dict]:
    with duckdb.connect(str(home.linkage_db)) as con:
        load_truth(con, home.truth / "truth.parquet", Custodian(home.custodian).linkage_secret(), boundary=boundary(home))
        con.execute("create temp table cl as select source, source_record_id, person_key cluster_id from person_keys")
        return pairwise_metrics(con, "cl"), cluster_metrics(con, "cl")


def person_keys(home: Home) -> dict[tuple[str, str], str]:
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        return {(s, r): k for s, r, k in con.execute("select source, source_record_id, person_key from person_keys").fetchall()}


def partition(home: Home) -> set[frozenset]:
    persons: dict[str, set] = {}
    for record, key in person_keys(home).items():
        persons.setdefault(key, set()).add(record)
    return {frozenset(v) for v in persons.values()}


def test_full_run_links_people_on_encodings_alone(home):
    r = run_linkage(home.linkage_db, now=NOW, mode="full", expected_sources=tuple(boundary(home).source_names(partners())))
    assert r.mode == "full" and r.zero_record_sources == []
    assert r.persons < sum(r.records.values())  # people repeat across sources
    pairwise, cluster = truth_scores(home)
    assert pairwise["f1"] >= 0.9 and cluster["f1"] >= 0.9, (pairwise, cluster)
    # blocking chosen from the data: the kept rules keep comparisons near-linear in records, and a recall
    # ceiling is estimated; every comparison level is trained (or reported as unobserved, weight 0)
    kept = [c for c in r.blocking["candidates"] if c.get("kept")]
    assert kept and sum(c["comparisons_per_record"] for c in kept) < 40
    assert 0.8 <= r.blocking["recall_ceiling_estimate"] <= 1.0


def test_person_keys_stay_stable_when_a_new_extract_arrives(home):
    first = run_linkage(home.linkage_db, now=NOW, mode="full")
    before = person_keys(home)
    ingest_period(home, "2025-12")
    second = run_linkage(home.linkage_db, now=NOW, mode="auto")
    after = person_keys(home)
    assert second.mode == "incremental" and second.model_run_id == first.run_id
    assert second.new_records == len(after) - len(before) > 0
    assert all(after[k] == v for k, v in before.items())  # every earlier record keeps its person key
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:  # one key per record, never two
        assert con.execute("select count(*) - count(distinct (source, source_record_id)) from person_keys"
                           ).fetchall()[0][0] == 0
    # a third run with nothing new changes nothing
    third = run_linkage(home.linkage_db, now=NOW, mode="auto")
    assert third.new_records == 0 and person_keys(home) == after


def test_full_rerun_with_fixed_seeds_trains_the_same_model_and_changes_no_key(home):
    first = run_linkage(home.linkage_db, now=NOW, mode="full")
    before = person_keys(home)
    second = run_linkage(home.linkage_db, now=NOW, mode="full")
    after = person_keys(home)
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        models = {r: json.loads(m) for r, m in con.execute("select run_id, model_json from linkage_models").fetchall()}
        events = con.execute("select event, count(*) from person_key_history where run_id = ? group by 1",
                             [second.run_id]).fetchall()

    def params(model):
        return [(c["output_column_name"], lv.get("label_for_charts"), round(lv.get("m_probability") or 0, 9),
                 round(lv.get("u_probability") or 0, 9))
                for c in model["splink"]["comparisons"] for lv in c["comparison_levels"]]

    a, b = models[first.run_id], models[second.run_id]
    assert a["training_fingerprint"] == b["training_fingerprint"]
    assert params(a) == params(b) and len(params(a)) > 20  # same seeds, same data: the same m and u
    assert after == before and events == []  # the same model makes the same persons: no merge, no split


def test_mixed_key_versions_are_refused(home):
    police = boundary(home).source_label("police")
    with duckdb.connect(str(home.linkage_db)) as con:
        con.execute("update encodings set linkage_key_version = 'v2' where source = ?", [police])
        with pytest.raises(KeyVersionError, match=f"{police} .* under v2"):
            prepare_inputs(con)
    with pytest.raises(KeyVersionError):
        run_linkage(home.linkage_db, now=NOW)


def test_model_of_another_key_version_is_not_applied_incrementally(home):
    run_linkage(home.linkage_db, now=NOW, mode="full")
    with duckdb.connect(str(home.linkage_db)) as con:
        con.execute("update encodings set linkage_key_version = 'v2'")
    with pytest.raises(KeyVersionError, match="full linkage"):
        run_linkage(home.linkage_db, now=NOW, mode="incremental")
    assert run_linkage(home.linkage_db, now=NOW, mode="auto").mode == "full"  # auto retrains instead


def test_encodings_of_an_older_scheme_are_refused_naming_the_source(home):
    """A partner still on an older kit: its rows cannot be compared with scheme 3's (other columns, other levels)."""
    police = boundary(home).source_label("police")
    with duckdb.connect(str(home.linkage_db)) as con:
        con.execute("update encodings set enc_scheme = 'vpdc-encoding-v2', enc_nw_bf = null where source = ?", [police])
        periods = ", ".join(r[0] for r in con.execute(
            "select distinct period from loads where source = ? order by 1", [police]).fetchall())
        assert periods
        with pytest.raises(EncodingSchemeError,
                           match=f"{police} [0-9,]+ rows under vpdc-encoding-v2 \\(periods {periods}\\).*re-send"):
            prepare_inputs(con)


def test_link_job_names_the_partners_on_an_older_scheme(home):
    """Through Dagster (what `vpdc link` and the demo run), the refusal names the partner, not only its opaque label."""
    from orchestration.runner import run_job

    police = boundary(home).source_label("police")
    with duckdb.connect(str(home.linkage_db)) as con:
        con.execute("update encodings set enc_scheme = 'vpdc-encoding-v2', enc_nw_bf = null where source = ?", [police])
    res = run_job(home, "link_job")
    assert not res.success
    assert f"{police} (police)" in res.error and "vpdc-encoding-v2" in res.error and "re-send" in res.error, res.error


def test_model_of_an_older_release_is_not_applied_incrementally(home):
    """A saved model of other comparisons (an older release) never scores new records: auto relinks everything."""
    run_linkage(home.linkage_db, now=NOW, mode="full")
    with duckdb.connect(str(home.linkage_db)) as con:
        con.execute("update linkage_runs set model_version = 'vpdc-linkage/2'")
    with pytest.raises(KeyVersionError, match="vpdc-linkage/2.*full linkage"):
        run_linkage(home.linkage_db, now=NOW, mode="incremental")
    again = run_linkage(home.linkage_db, now=NOW, mode="auto")
    assert again.mode == "full" and again.new_records == sum(again.records.values())


def test_source_with_zero_linkable_records_is_reported_not_a_crash(sent_home, tmp_path):
    h = Home(tmp_path / "home")
    shutil.copytree(sent_home.root, h.root)
    ingest_period(h, "2025-11", skip=("schools",))
    names = boundary(h).source_names(partners())  # the linkage zone knows sources by label only
    r = run_linkage(h.linkage_db, now=NOW, expected_sources=tuple(names))
    assert [names[s] for s in r.zero_record_sources] == ["schools"] and r.persons > 0
    empty = Home(tmp_path / "empty")
    empty.root.mkdir()
    assert run_linkage(empty.linkage_db, now=NOW, expected_sources=tuple(partners())).zero_record_sources == sorted(tuple(partners()))


def test_database_api_is_a_parameter(home):
    from splink import DuckDBAPI

    calls = []

    def factory(con):
        calls.append(con)
        return DuckDBAPI(connection=con)

    run_linkage(home.linkage_db, now=NOW, db_api_factory=factory, blocking_analysis=False)
    assert len(calls) == 1


def test_only_person_keys_cross_into_the_analytics_zone(home):
    r = run_linkage(home.linkage_db, now=NOW)
    n = export_person_map(home.linkage_db, home.warehouse_db, run_id=r.run_id, boundary=boundary(home))
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        cols = {c[0] for c in con.execute("select column_name from information_schema.columns "
                                          "where table_name = 'person_map'").fetchall()}
        assert cols == {"source", "source_record_id", "person_key", "match_confidence", "linkage_run_id"}
        assert not con.execute("select count(*) from information_schema.columns where column_name like 'enc_%' "
                               "or column_name like '%match_probability%' or column_name like 'gamma_%'").fetchall()[0][0]
        assert con.execute("select count(*) from raw.person_map").fetchall()[0][0] == n


def test_the_zones_share_no_person_key_record_id_or_partner_name(home):
    r = run_linkage(home.linkage_db, now=NOW, mode="full")
    export_person_map(home.linkage_db, home.warehouse_db, run_id=r.run_id, boundary=boundary(home))

    def values(db, sql):
        with duckdb.connect(str(db), read_only=True) as con:
            return {v for row in con.execute(sql).fetchall() for v in row if v is not None}

    def every_text(db):
        with duckdb.connect(str(db), read_only=True) as con:
            cols = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                               "where data_type = 'VARCHAR' and table_catalog = current_database()").fetchall()
            return {v for s, t, c in cols for (v,) in con.execute(f'select distinct "{c}" from {s}."{t}"').fetchall()}

    lz_keys = values(home.linkage_db, "select person_key from person_keys union select person_key from "
                     "person_key_versions union select person_key from person_key_history union "
                     "select other_key from person_key_history")
    lz_ids = values(home.linkage_db, "select source_record_id from encodings")
    wh_text = every_text(home.warehouse_db)
    wh_keys = values(home.warehouse_db, "select person_key from raw.person_map")
    assert lz_keys and wh_keys and not lz_keys & wh_text and not wh_keys & every_text(home.linkage_db)
    assert lz_ids and not lz_ids & wh_text  # no linkage-zone row joins a warehouse row by its record id
    # sources and extracts are labels there: no partner's name in any value, run record or model
    lz_text = every_text(home.linkage_db)
    assert not [v[:60] for p in partners() for v in lz_text if v is not None and p in v]
    # the analytics keys are stable: another run (incremental, nothing new) exports the same map
    before = values(home.warehouse_db, "select source || '/' || source_record_id || '/' || person_key from raw.person_map")
    again = run_linkage(home.linkage_db, now=NOW)
    export_person_map(home.linkage_db, home.warehouse_db, run_id=again.run_id, boundary=boundary(home))
    assert values(home.warehouse_db, "select source || '/' || source_record_id || '/' || person_key "
                  "from raw.person_map") == before


def test_link_job_through_dagster_writes_a_value_free_report(home):
    from orchestration.runner import run_job

    res = run_job(home, "link_job")
    assert res.success, res.error
    reports = list((home.reports / "linkage").glob("*.json"))
    html = list((home.reports / "linkage").glob("*.html"))
    assert reports and html
    text = "".join(p.read_text() for p in reports + html)
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        sample = con.execute("select source_record_id, enc_fn_full, enc_ln_full from encodings limit 50").fetchall()
    for rid, fn, ln in sample:  # no record id and no token in any report or chart
        assert rid not in text and (fn is None or fn not in text) and (ln is None or ln not in text)
    report = json.loads(reports[0].read_text())
    assert report["estimated"]["precision"] is not None and report["threshold_sensitivity"]
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        assert con.execute("select count(*) from raw.person_map").fetchall()[0][0] > 0


def test_a_quality_floor_that_fails_stops_the_person_map(home):
    from orchestration.runner import run_job

    strict = {"ops": {"reports__linkage_quality": {"config": {"min_estimated_precision": 0.5,
                                                               "min_estimated_recall": 1.01}}}}
    res = run_job(home, "link_job", run_config=strict)
    assert not res.success and "estimated_recall" in res.error
    assert not home.warehouse_db.exists() or not duckdb.connect(str(home.warehouse_db), read_only=True).execute(
        "select count(*) from information_schema.tables where table_name = 'person_map'").fetchone()[0]
    # the same run with floors it meets exports the map
    res = run_job(home, "link_job", run_config={"ops": {"reports__linkage_quality": {"config": {
        "min_estimated_precision": 0.5, "min_estimated_recall": 0.5}}}})
    assert res.success, res.error
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        assert con.execute("select count(*) from raw.person_map").fetchall()[0][0] > 0


def test_floors_fail_closed_when_an_estimate_is_missing():
    from linkage.quality import QualityFloors, check_floors

    checks = check_floors({"estimated": {"precision": None, "recall": 0.99}, "run": {"mode": "full"}}, QualityFloors())
    assert [(n, ok) for n, ok, _ in checks] == [("estimated_precision", False), ("estimated_recall", True)]
    # an increment whose new records link to no one made no link: nothing to judge, the map may refresh
    checks = check_floors({"estimated": {"precision": None, "recall": None},
                           "run": {"mode": "incremental", "new_records": 0}}, QualityFloors())
    assert all(ok for _, ok, _ in checks)


def test_a_record_in_two_current_loads_is_linked_once_from_the_newest(home):
    with duckdb.connect(str(home.linkage_db)) as con:
        old, n = con.execute("select l.load_id, count(*) from loads l join encodings e using (load_id) "
                             "where l.source = ? and l.is_current group by 1 order by 1 limit 1", [boundary(home).source_label("county")]).fetchall()[0]
        # the next period's extract carries the same clients again (another period: both loads stay current)
        con.execute("insert into loads select 'next-period', 'next-period', source, extract_type, '2099-01', "
                    "schema_version, linkage_key_version, row_count, created_at + interval 1 day, loaded_at, true, "
                    "null, 'complete' from loads where load_id = ?", [old])
        con.execute("insert into encodings select * replace ('next-period' as load_id) from encodings where load_id = ?",
                    [old])
        prepare_inputs(con)
        rows = con.execute("select count(*), count(distinct (source_dataset, unique_id)) from link_input").fetchall()[0]
        from_old = con.execute("select count(*) from link_input where load_id = ?", [old]).fetchall()[0][0]
        from_new = con.execute("select count(*) from link_input where load_id = 'next-period'").fetchall()[0][0]
    assert rows[0] == rows[1] and from_old == 0 and from_new == n


def test_incremental_input_refresh_equals_a_full_rebuild_after_a_resent_period(home):
    run_linkage(home.linkage_db, now=NOW, mode="full")
    with duckdb.connect(str(home.linkage_db)) as con:
        old = con.execute("select load_id from loads where source = ? and is_current",
                          [boundary(home).source_label("county")]).fetchall()[0][0]
        # the county re-sends its period: a newer load with the same records supersedes the old one
        con.execute("insert into loads select 'resent', 'resent', source, extract_type, period, schema_version, "
                    "linkage_key_version, row_count, created_at + interval 1 day, loaded_at, true, null, 'complete' "
                    "from loads where load_id = ?", [old])
        con.execute("update loads set is_current = false, superseded_by = 'resent' where load_id = ?", [old])
        con.execute("insert into encodings select * replace ('resent' as load_id) from encodings where load_id = ?", [old])
        prepare_inputs(con, incremental=True)
        inc = con.execute("select * exclude (load_created_at) from link_input order by all").fetchall()
        prepare_inputs(con, table="link_full")
        full = con.execute("select * exclude (load_created_at) from link_full order by all").fetchall()
        assert inc == full
        assert con.execute("select count(*) from link_input where load_id = ?", [old]).fetchall()[0][0] == 0


def test_pairs_skipped_before_scoring_change_nothing(home, tmp_path, monkeypatch):
    """Blocked pairs that the trained model bounds under the prediction threshold (names, SSN, address and ZIP all
    present and all different) are skipped, not scored: the run's scored pairs, persons and held-out estimate must
    be exactly those of a run that scores every blocked pair."""
    import linkage.holdout
    import linkage.model

    other = Home(tmp_path / "other")
    shutil.copytree(home.root, other.root)
    pruned = run_linkage(home.linkage_db, now=NOW, mode="full")
    report = pruned.blocking["pruning"]
    assert report["applied"] and report["max_match_probability"] < 0.5, report
    assert report["comparisons"] == ["first_name", "last_name", "ssn", "address", "zip"]
    monkeypatch.setattr(linkage.model, "pruning", lambda *a, **k: {"condition": None})
    monkeypatch.setattr(linkage.holdout, "pruning", lambda *a, **k: {"condition": None})
    full = run_linkage(other.linkage_db, now=NOW, mode="full")
    assert not full.blocking["pruning"]["applied"]

    def edges(h: Home) -> list[tuple]:
        with duckdb.connect(str(h.linkage_db), read_only=True) as con:
            return con.execute("select node_id_l, node_id_r, round(match_probability, 12) from link_edges "
                               "order by all").fetchall()

    assert edges(home) == edges(other) and len(edges(home)) > 100
    assert partition(home) == partition(other)
    # the held-out run skips pairs the same way: its counts are those of scoring every pair
    assert pruned.error_estimate == full.error_estimate and pruned.error_estimate["rates"]["linked_pairs"] > 0


def test_a_run_held_to_a_small_memory_limit_gives_the_same_persons(home, tmp_path):
    # DuckDB's default limit is 80 % of RAM (10 GB peak at 1,000,000 persons); the run sets its own and spills
    # past it into the zone's temp folder: the limit must never change who is linked to whom
    other = Home(tmp_path / "other")
    shutil.copytree(home.root, other.root)
    run_linkage(home.linkage_db, now=NOW, mode="full")
    tight = run_linkage(other.linkage_db, now=NOW, mode="full", params=LinkageParams(memory_limit="256MB"))
    assert tight.persons > 0
    assert partition(home) == partition(other)  # keys are minted per person, so compare who is with whom
    # the limit is real: below what the run needs it stops with an error that names the setting, the keys standing
    before = person_keys(other)
    with pytest.raises(LinkageMemoryError, match="memory_limit=64MB"):
        run_linkage(other.linkage_db, now=NOW, mode="full", params=LinkageParams(memory_limit="64MB"))
    assert person_keys(other) == before
    with duckdb.connect(str(other.linkage_db), read_only=True) as con:
        assert not con.execute("select count(*) from information_schema.tables where table_name like '__splink__%'"
                               ).fetchall()[0][0]
