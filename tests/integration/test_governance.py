"""Gated cohort exports against a real registry and a real DuckDB warehouse (fixture cohort table)."""

import json
import random
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from typer.testing import CliRunner

from governance.outputs import DEFAULT_COLUMNS, CohortSpec, export_cohort
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.policy import PolicyRefused
from governance.registry.seed import PARTNERS, seed_demo
from governance.registry.workflow import review_request, revoke_request, submit_request
from tests.conftest import make_keys
from vpdc.cli import app
from workspace import Home

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
COLS = [{"dataset": "program_cohorts", "column": c} for c in DEFAULT_COLUMNS]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:  # noqa: D103
    h = Home(tmp_path / "home").ensure()
    make_keys(h.root)
    monkeypatch.setenv("VPDC_HOME", str(h.root))
    monkeypatch.delenv("VPDC_REGISTRY_URL", raising=False)
    rng = random.Random(7)
    rows = []
    for i in range(400):
        rows.append((f"pk_{i:06d}", f"cm{i}", "ATV", date(2023, 1, 1) + timedelta(days=rng.randrange(700)), 365,
                     rng.choice(["15-17", "18-24", "25-34"]), rng.choice(["M", "F"]),
                     rng.choice(["Black or African American", "Hispanic or Latino", "White"]),
                     *[rng.randrange(4) for _ in range(len(DEFAULT_COLUMNS) - 5)]))
    outcome_cols = [c for c in DEFAULT_COLUMNS if c not in ("program", "enrollment_date", "age_band_at_enrollment",
                                                            "sex", "race_ethnicity")]
    with duckdb.connect(str(h.warehouse_db)) as con:
        con.execute("create schema analytics")
        con.execute("create table analytics.program_cohorts (person_key varchar, cohort_member_id varchar, program varchar, "
                    "enrollment_date date, window_days integer, age_band_at_enrollment varchar, sex varchar, "
                    "race_ethnicity varchar, " + ", ".join(f"{c} integer" for c in outcome_cols) + ")")
        con.executemany(f"insert into analytics.program_cohorts values ({', '.join('?' * (8 + len(outcome_cols)))})", rows)
    return h


@pytest.fixture
def reg(home) -> Registry:
    r = Registry.at(home.registry_db)
    with r.transaction() as s:
        seed_demo(s)
        submit_request(s, requester="evaluator_atv", now=NOW, study_id="atv-eval", title="ATV", organisation="Eval",
                       purpose="p", research_questions="q", columns=COLS, output_level="cohort", irb_protocol="IRB-1",
                       irb_expires_on=date(2027, 6, 30), retention_end=date(2027, 9, 30), equity_communities="c",
                       equity_return_of_findings="r", equity_mitigation="m")
    return r


def approve(reg, who=None):
    for w in who if who is not None else [f"steward_{p}" for p in PARTNERS] + ["community_board"]:
        with reg.transaction() as s:
            review_request(s, reviewer=w, study_id="atv-eval", decision="approve", now=NOW)


def spec(actor="evaluator_atv", cols=tuple(DEFAULT_COLUMNS)):
    return CohortSpec("atv-eval", actor, "ATV", date(2021, 1, 1), date(2026, 11, 1), 365, cols)


def run(home, reg, **kw):
    return export_cohort(spec(**kw), registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs,
                         keys_dir=home.keys, now=NOW)


def actions(reg):
    with reg.read() as s:
        return [e.action for e in s.query(audit.AuditEntry).order_by(audit.AuditEntry.seq)]


def test_approved_export_is_pseudonymised_disclosure_checked_and_audited(home, reg):
    approve(reg)
    res = run(home, reg)
    csv = open(res.files[0]).read()
    header = csv.splitlines()[0].split(",")
    assert "person_key" not in header and "study_person_id" in header and "pk_0000" not in csv
    assert res.rows > 0 and res.rows + res.suppressed_rows == 400
    manifest = json.load(open(res.manifest))
    assert manifest["files"][0]["sha256"] and manifest["k_anonymity"]["k"] == 11
    assert actions(reg)[-3:] == ["export.authorized", "export.releasing", "export.released"]  # audited first
    with reg.read() as s:
        assert audit.verify(s).ok


@pytest.mark.parametrize("who", [[], ["steward_county", "steward_police"]])
def test_unapproved_or_partly_approved_export_is_refused_and_audited(home, reg, who):
    approve(reg, who)
    with pytest.raises(PolicyRefused, match="awaiting approval"):
        run(home, reg)
    assert actions(reg)[-1] == "refused.export.cohort" and not list(home.outputs.glob("atv-eval/*"))


def test_revoked_export_is_refused(home, reg):
    approve(reg)
    with reg.transaction() as s:
        revoke_request(s, actor="community_board", study_id="atv-eval", now=NOW, reason="concern")
    with pytest.raises(PolicyRefused, match="revoked"):
        run(home, reg)


def test_a_revocation_cleared_in_the_registry_table_releases_nothing(home, reg):
    approve(reg)
    with reg.transaction() as s:
        revoke_request(s, actor="community_board", study_id="atv-eval", now=NOW, reason="concern")
    with reg.engine.begin() as c:  # someone who can write the registry database, but holds no key
        c.exec_driver_sql("update requests set revoked_at = null, revoked_by = null")
    with pytest.raises(PolicyRefused):
        run(home, reg)
    assert not list(home.outputs.glob("atv-eval/*.csv"))


def test_out_of_scope_column_and_wrong_actor_are_refused(home, reg):
    approve(reg)
    with pytest.raises(PolicyRefused, match="not in the catalogue|outside the approval"):
        run(home, reg, cols=(*DEFAULT_COLUMNS, "firearm_injury_visits_post"))
    with pytest.raises(PolicyRefused, match="not the requester"):
        run(home, reg, actor="analyst_isc")


def test_a_file_that_would_fail_disclosure_is_not_released(home, reg, monkeypatch):
    approve(reg)
    # skip the k-anonymity step: the final release check must still stop the file
    monkeypatch.setattr("governance.disclosure.enforce_k_anonymity",
                        lambda df, qis, rules, gens=None, **kw: (df, type("R", (), {"to_dict": lambda self: {"records_suppressed": 0}})()))
    with pytest.raises(PolicyRefused, match="release check failed"):
        run(home, reg)
    assert actions(reg)[-1] == "refused.export.release" and not list(home.outputs.glob("atv-eval/*.csv"))


def test_a_revocation_while_the_file_is_prepared_stops_the_release(home, reg, monkeypatch):
    from governance import disclosure

    approve(reg)
    real = disclosure.enforce_k_anonymity

    def revoked_meanwhile(*args, **kwargs):
        with reg.transaction() as s:
            revoke_request(s, actor="steward_police", study_id="atv-eval", now=NOW, reason="concern raised")
        return real(*args, **kwargs)

    monkeypatch.setattr(disclosure, "enforce_k_anonymity", revoked_meanwhile)
    with pytest.raises(PolicyRefused, match="no longer active at release: revoked by steward_police"):
        run(home, reg)
    assert actions(reg)[-1] == "refused.export.release" and not list(home.outputs.glob("atv-eval/*.csv"))


def test_study_extract_k_anonymity_counts_persons_not_events(home, reg):
    import pandas as pd

    from governance.disclosure import DisclosureRules, check_release, enforce_k_anonymity

    # 30 events of 3 persons in one class, 40 events of 20 persons in another: only the second may go out
    df = pd.DataFrame({"study_person_id": [f"p{i % 3}" for i in range(30)] + [f"q{i % 20}" for i in range(40)],
                       "age_band_at_event": ["18-24"] * 30 + ["25-34"] * 40})
    out, rep = enforce_k_anonymity(df, ["age_band_at_event"], DisclosureRules(), entity="study_person_id",
                                   max_suppressed_fraction=0.0)
    assert set(out["age_band_at_event"]) == {"25-34"} and rep.records_suppressed == 30 and rep.smallest_class == 20
    assert not check_release(df, kind="record", rules=DisclosureRules(), quasi_identifiers=["age_band_at_event"],
                             entity="study_person_id").passed
    assert check_release(df, kind="record", rules=DisclosureRules(), quasi_identifiers=["age_band_at_event"]).passed


def test_cli_paths_cannot_bypass_the_gate(home, reg):
    runner = CliRunner()
    res = runner.invoke(app, ["cohort", "export", "atv-eval", "--as", "evaluator_atv", "--home", str(home.root)])
    assert res.exit_code == 3 and "awaiting approval" in res.output
    res = runner.invoke(app, ["review", "approve", "atv-eval", "--as", "evaluator_atv", "--home", str(home.root)])
    assert res.exit_code == 2 and "evaluator_atv is an evaluator: review needs the permission" in res.output
    assert actions(reg)[-2:] == ["refused.export.cohort", "refused.review"]
    res = runner.invoke(app, ["audit", "verify", "--as", "engineer_ids", "--home", str(home.root), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"]


def test_retention_sweep_destroys_outputs_and_key_and_records_it(home, reg):
    approve(reg)
    run(home, reg)
    assert list((home.keys / "studies").glob("*"))
    res = CliRunner().invoke(app, ["retention", "sweep", "--as", "engineer_ids", "--home", str(home.root),
                                   "--today", "2027-10-01", "--confirm", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["studies"][0]["study_id"] == "atv-eval"
    assert not (home.outputs / "atv-eval").exists() and not list((home.keys / "studies").glob("atv-eval*"))
    assert actions(reg)[-2:] == ["study.destroyed", "retention.swept"]
    with pytest.raises(PolicyRefused, match="expired|destroyed"):
        export_cohort(spec(), registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs,
                      keys_dir=home.keys, now=datetime(2027, 10, 2, tzinfo=UTC))


def test_retention_sweep_handles_requests_that_never_exported(home, reg):
    with reg.transaction() as s:  # a second request, denied, never exported: no outputs and no study key
        submit_request(s, requester="analyst_isc", now=NOW, study_id="never-run", title="T", organisation="O",
                       purpose="p", research_questions="q", columns=COLS, output_level="cohort", irb_protocol="I",
                       irb_expires_on=date(2027, 6, 30), retention_end=date(2027, 3, 31), equity_communities="c",
                       equity_return_of_findings="r", equity_mitigation="m")
        review_request(s, reviewer="steward_police", study_id="never-run", decision="deny", now=NOW, comment="no")
    approve(reg)
    run(home, reg)
    res = CliRunner().invoke(app, ["retention", "sweep", "--as", "engineer_ids", "--home", str(home.root),
                                   "--today", "2027-10-01", "--confirm", "--json"])
    assert res.exit_code == 0, res.output
    swept = {r["study_id"]: r for r in json.loads(res.stdout)["studies"]}
    assert set(swept) == {"atv-eval", "never-run"}
    assert swept["never-run"]["study_key"] == "none was ever created" and swept["never-run"]["files_destroyed"] == 0
    assert swept["atv-eval"]["study_key"]["bytes_overwritten"] > 0
    # each destruction is audited first (intent), then done, then recorded as done
    assert actions(reg)[-5:] == ["study.destruction_started", "study.destroyed"] * 2 + ["retention.swept"]


def test_linked_study_extract_is_date_shifted_pseudonymised_and_gated(home, reg):
    from governance.outputs import StudySpec, run_study

    rng = random.Random(3)
    with duckdb.connect(str(home.warehouse_db)) as con:
        con.execute("create table analytics.events (person_key varchar, event_date date, sector varchar, "
                    "event_type varchar, age_band_at_event varchar, is_violent_offense_victim boolean)")
        con.executemany("insert into analytics.events values (?, ?, ?, ?, ?, ?)",
                        [(f"pk_{i % 150:06d}", date(2024, 1, 1) + timedelta(days=rng.randrange(300)), "police",
                          "victim", rng.choice(["18-24", "25-34"]), rng.random() < 0.3) for i in range(900)])
    cols = ("event_date", "sector", "event_type", "age_band_at_event", "is_violent_offense_victim")
    with reg.transaction() as s:
        submit_request(s, requester="analyst_isc", now=NOW, study_id="linked-1", title="Linked", organisation="ISC",
                       purpose="p", research_questions="q", columns=[{"dataset": "events", "column": c} for c in cols],
                       output_level="linked_extract", irb_protocol="IRB-2", irb_expires_on=date(2027, 6, 30),
                       retention_end=date(2027, 9, 30), equity_communities="c", equity_return_of_findings="r",
                       equity_mitigation="m")
    spec = StudySpec("linked-1", "analyst_isc", cols, date(2023, 1, 1), date(2025, 12, 31))
    kw = dict(registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, keys_dir=home.keys, now=NOW)
    with pytest.raises(PolicyRefused, match="awaiting approval"):
        run_study(spec, **kw)
    for who in [f"steward_{p}" for p in PARTNERS] + ["community_board"]:
        with reg.transaction() as s:
            review_request(s, reviewer=who, study_id="linked-1", decision="approve", now=NOW)
    res = run_study(spec, **kw)
    text_out = open(res.files[0]).read()
    assert "pk_0000" not in text_out and "study_person_id" in text_out.splitlines()[0]
    assert json.load(open(res.manifest))["dates"].startswith("shifted per person")
    with pytest.raises(PolicyRefused, match="not the requester"):
        run_study(StudySpec("linked-1", "evaluator_atv", cols, date(2023, 1, 1), date(2025, 12, 31)), **kw)


def test_cohort_with_a_matched_comparison_group(home, reg):
    """Controls: never enrolled, same sex, age band at the index date, area and prior-contact bucket."""
    from governance.outputs.comparison import comparison_group

    rng = random.Random(5)
    with duckdb.connect(str(home.warehouse_db)) as con:
        parts = con.execute("select person_key, enrollment_date, age_band_at_enrollment, sex "
                            "from analytics.program_cohorts").fetchall()
        band_year = {"15-17": 16, "18-24": 20, "25-34": 30}
        persons = [(pk, d.year - band_year[b], s, "Black or African American") for pk, d, b, s in parts]
        persons += [(f"ctl_{i:05d}", 2004 - rng.randrange(0, 20), rng.choice(["M", "F"]), "White") for i in range(3000)]
        con.execute("create table analytics.persons (person_key varchar, birth_year integer, sex varchar, "
                    "race_ethnicity varchar)")
        con.executemany("insert into analytics.persons values (?, ?, ?, ?)", persons)
        con.execute("create table analytics.events (person_key varchar, event_date date, sector varchar, "
                    "event_type varchar, is_priority_area boolean, is_violent_offense_victim boolean, "
                    "is_assault_injury boolean, is_firearm_injury boolean, is_school_suspension_fighting boolean)")
        con.execute("insert into analytics.events select person_key, date '2024-06-01', 'police', "
                    "'police_contact_victim', true, true, false, false, false from analytics.persons")
        controls = comparison_group(con, program="ATV", period_start=date(2021, 1, 1), period_end=date(2026, 11, 1),
                                    window_days=365, ratio=1)
        enrolled = {p[0] for p in parts}
    assert len(controls) > 0 and not set(controls["person_key"]) & enrolled
    assert controls["person_key"].is_unique  # each control used once
    approve(reg)
    res = export_cohort(CohortSpec("atv-eval", "evaluator_atv", "ATV", date(2021, 1, 1), date(2026, 11, 1), 365,
                                   comparison_ratio=1),
                        registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, keys_dir=home.keys,
                        now=NOW)
    import pandas as pd

    out = pd.read_csv(res.files[0])
    assert set(out["cohort_group"]) <= {"participant", "comparison"} and "person_key" not in out.columns


def test_conditions_removing_a_column_narrow_the_default_export_instead_of_blocking_it(home, reg):
    approve(reg, [f"steward_{p}" for p in PARTNERS])
    with reg.transaction() as s:
        review_request(s, reviewer="community_board", study_id="atv-eval", decision="approve", now=NOW,
                       conditions={"remove_columns": [{"dataset": "program_cohorts", "column": "race_ethnicity"}]})
    res = export_cohort(CohortSpec("atv-eval", "evaluator_atv", "ATV", date(2021, 1, 1), date(2026, 11, 1), 365),
                        registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, keys_dir=home.keys,
                        now=NOW)
    header = open(res.files[0]).readline().strip().split(",")
    assert "race_ethnicity" not in header and "sex" in header and "police_victim_contacts_post" in header
    with pytest.raises(PolicyRefused, match="outside the approval: program_cohorts.race_ethnicity"):
        run(home, reg)  # asking for the removed column by name is still refused


def _linkage_runs(home, runs: list[tuple[str, datetime]], events: list[tuple[str, str]] = ()):
    with duckdb.connect(str(home.warehouse_db)) as con:
        con.execute("create schema if not exists raw")
        con.execute("create or replace table raw.linkage_runs (linkage_run_id varchar, started_at timestamptz, "
                    "finished_at timestamptz, mode varchar, linkage_key_version varchar, records bigint, "
                    "persons bigint, new_records bigint)")
        con.executemany("insert into raw.linkage_runs values (?, ?, ?, 'full', 'v1', 400, 380, 0)",
                        [(r, t, t) for r, t in runs])
        con.execute("create or replace table raw.person_key_events (linkage_run_id varchar, event_at timestamptz, "
                    "event varchar, person_key varchar, other_key varchar, records bigint)")
        for e in events:
            con.execute("insert into raw.person_key_events values (?, now(), ?, 'pk_a', 'pk_b', 2)", list(e))


def test_a_study_pins_its_linkage_run_and_is_refused_after_merges_until_it_repins(home, reg):
    approve(reg)
    _linkage_runs(home, [("run-1", NOW - timedelta(days=30))])
    first = json.load(open(run(home, reg).manifest))
    assert first["linkage"]["pinned_run"] == first["linkage"]["current_run"] == "run-1"
    # a later linkage run adds records only: keys of existing persons unchanged, outputs still line up
    _linkage_runs(home, [("run-1", NOW - timedelta(days=30)), ("run-2", NOW - timedelta(days=20))],
                  [("run-2", "created")])
    assert json.load(open(run(home, reg).manifest))["linkage"]["pinned_run"] == "run-1"
    # a run that merges persons changes who is who: refused until the analyst accepts it
    _linkage_runs(home, [("run-1", NOW - timedelta(days=30)), ("run-2", NOW - timedelta(days=20)),
                         ("run-3", NOW - timedelta(days=10))], [("run-2", "created"), ("run-3", "merged")])
    with pytest.raises(PolicyRefused, match="pinned linkage run run-1 .1 merges, 0 splits"):
        run(home, reg)
    assert actions(reg)[-1] == "refused.export.cohort"
    res = export_cohort(CohortSpec("atv-eval", "evaluator_atv", "ATV", date(2021, 1, 1), date(2026, 11, 1), 365,
                                   tuple(DEFAULT_COLUMNS), repin=True),
                        registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, keys_dir=home.keys,
                        now=NOW)
    assert json.load(open(res.manifest))["linkage"]["pinned_run"] == "run-3"
    assert "study.repinned" in actions(reg)
    with reg.read() as s:
        assert audit.verify(s).ok


@pytest.mark.parametrize("content,problem", [
    ("{not json", "not JSON"),
    ("[1, 2]", "must hold one JSON object"),
    (json.dumps({"study_id": "x1", "surprise": 1}), "unknown fields ['surprise']"),
    (json.dumps({"study_id": "x1"}), "missing fields"),
])
def test_a_bad_request_file_is_refused_clearly_and_audited(home, reg, tmp_path, content, problem):
    f = tmp_path / "request.json"
    f.write_text(content)
    res = CliRunner().invoke(app, ["request", "submit", "--as", "analyst_isc", "--file", str(f), "--home", str(home.root)])
    assert res.exit_code == 2 and problem in res.output.replace("\n", "")
    assert "Traceback" not in res.output
    assert actions(reg)[-1] == "refused.request.submit"


def test_a_request_file_with_wrong_types_is_refused_naming_the_field(home, reg, tmp_path):
    body = {"study_id": "typed-1", "title": "T", "organisation": "O", "purpose": "p", "research_questions": "q",
            "columns": ["program_cohorts.sex"], "output_level": "cohort", "irb_protocol": "I",
            "irb_expires_on": "2027-06-30", "retention_end": "2027-09-30", "equity_communities": "c",
            "equity_return_of_findings": "r", "equity_mitigation": "m"}
    f = tmp_path / "request.json"
    for change, problem in (({}, "columns: item 1"), ({"columns": COLS[:1], "retention_end": "soon"}, "retention_end"),
                            ({"columns": COLS[:1], "title": 42}, "title: must be text")):
        f.write_text(json.dumps(body | change))
        res = CliRunner().invoke(app, ["request", "submit", "--as", "analyst_isc", "--file", str(f),
                                       "--home", str(home.root)])
        assert res.exit_code == 2 and problem in res.output.replace("\n", ""), res.output
        assert "Traceback" not in res.output


def _materialize_cohort(home, partition="atv-eval", **config):
    import dagster as dg

    from orchestration.defs.governance.assets import program_cohort_export, studies
    from orchestration.resources import GovernanceRegistry, VpdcHome

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(studies.name, [partition])
    return dg.materialize(
        [program_cohort_export], instance=instance, partition_key=partition, raise_on_error=False,
        resources={"vpdc_home": VpdcHome(root=str(home.root)), "registry": GovernanceRegistry(home=str(home.root))},
        run_config={"ops": {"outputs__program_cohort": {"config": {"actor": "evaluator_atv", "period_to": "2026-11-01",
                                                                   **config}}}})


def test_the_dagster_cohort_asset_refuses_until_approved_and_then_releases(home, reg):
    from orchestration.defs.governance.assets import new_study_partitions

    assert new_study_partitions(reg, set()) == ["atv-eval"] and new_study_partitions(reg, {"atv-eval"}) == []
    refused = _materialize_cohort(home)
    assert not refused.success
    failure = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "awaiting approval" in failure.event_specific_data.error.message
    assert actions(reg)[-1] == "refused.export.cohort" and not list(home.outputs.glob("atv-eval/*.csv"))
    approve(reg)
    # asking through Dagster for a column outside the approval is refused too: no path around the gate
    outside = _materialize_cohort(home, columns=["program", "firearm_injury_visits_post"])
    assert not outside.success and actions(reg)[-1] == "refused.export.cohort"
    done = _materialize_cohort(home)
    assert done.success
    mat = done.asset_materializations_for_node("outputs__program_cohort")[0]
    assert mat.metadata["rows"].value > 0 and list(home.outputs.glob("atv-eval/*.csv"))
    assert actions(reg)[-3:] == ["export.authorized", "export.releasing", "export.released"]  # audited first


def test_an_aggregate_only_approval_allows_a_suppressed_summary_but_no_cohort(home, reg):
    import pandas as pd

    from governance.outputs import SummarySpec, export_cohort_summary

    approve(reg, [f"steward_{p}" for p in PARTNERS])
    with reg.transaction() as s:
        review_request(s, reviewer="community_board", study_id="atv-eval", decision="approve", now=NOW,
                       conditions={"aggregate_only": True})
    with pytest.raises(PolicyRefused, match="output level cohort exceeds the approved aggregate"):
        run(home, reg)
    with duckdb.connect(str(home.warehouse_db)) as con:  # one person with almost all the post-window contacts
        con.execute("update analytics.program_cohorts set police_victim_contacts_post = 5000 "
                    "where cohort_member_id = 'cm7'")
    spec = SummarySpec("atv-eval", "evaluator_atv", "ATV", date(2021, 1, 1), date(2026, 11, 1), 365,
                       by=("age_band_at_enrollment", "sex"), outcomes=("police_victim_contacts", "school_suspensions"))
    res = export_cohort_summary(spec, registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, now=NOW)
    table = pd.read_csv(res.files[0])
    counts = [c for c in table.columns if c == "persons" or c.startswith("persons_with_")]
    values = table[counts].to_numpy().ravel()
    published = values[~pd.isna(values)]
    assert not ((published >= 1) & (published < 11)).any()  # no small cell survives
    for _, row in table[counts].iterrows():  # no row with exactly one hidden cell
        assert row.isna().sum() != 1
    for c in counts:  # no column with exactly one hidden cell (the All row is the column's total)
        assert table[c].isna().sum() != 1
    assert table["police_victim_contacts_post_total"].isna().any()  # dominated sums are withheld
    assert not [c for c in table.columns if "share" in c or c == "person_key"]
    manifest = json.load(open(res.manifest))
    assert manifest["dominance_withheld_sums"] >= 1 and manifest["files"][0]["sha256"]
    # audited first (the intent, before the file is written), then done
    assert actions(reg)[-3:] == ["summary.authorized", "summary.releasing", "summary.released"]
    with reg.read() as s:
        assert audit.verify(s).ok


def test_the_strictest_partners_disclosure_rules_apply_to_a_release(home, reg):
    from governance.registry.models import Partner

    with reg.transaction() as s:  # the police department asks for k = 25 and cells of at least 15 (audited)
        police = s.get(Partner, "police")
        police.k_anonymity, police.min_cell = 25, 15
        audit.append(s, actor="registry", action="partner.rules_changed", subject="police", at=NOW, rows=[police])
    approve(reg)
    res = run(home, reg)
    manifest = json.load(open(res.manifest))
    assert manifest["k_anonymity"]["k"] == 25 and manifest["k_anonymity"]["smallest_class"] >= 25
    assert manifest["rules"]["k_anonymity"] == 25 and manifest["rules"]["min_cell"] == 15


def test_a_partner_rule_weakened_in_the_registry_table_releases_nothing(home, reg):
    approve(reg)
    with reg.engine.begin() as c:  # k = 2 and cells of 1: what a writer of the database would like
        c.exec_driver_sql("update partners set k_anonymity = 2, min_cell = 1")
    with pytest.raises(PolicyRefused, match="partner county differs from its audit entry"):
        run(home, reg)
    assert actions(reg)[-1] == "refused.export.cohort" and not list(home.outputs.glob("atv-eval/*.csv"))


# ------------------------------------------------------------------------------ checkpoints, by the CLI
def one_line(output: str) -> str:
    return " ".join(output.split())  # the terminal wraps long lines


def test_a_steward_checkpoints_the_chain_and_verify_names_a_cut_tail(home, reg):
    runner = CliRunner()
    approve(reg)
    res = runner.invoke(app, ["audit", "checkpoint", "--as", "steward_police", "--home", str(home.root), "--json"])
    assert res.exit_code == 0, res.output
    cp = json.loads(res.stdout)
    assert cp["seq"] == 8 and (home.checkpoints / cp["file"]).is_file()
    assert (home.checkpoints / "signers" / "steward_police.pub").is_file()
    assert oct((home.steward_keys("steward_police") / "checkpoint.key").stat().st_mode)[-3:] == "600"
    res = runner.invoke(app, ["audit", "verify", "--as", "steward_police", "--home", str(home.root)])
    assert res.exit_code == 0 and "matches checkpoint 8 signed by steward_police" in one_line(res.output)
    with reg.engine.begin() as c:  # cut the checkpointed tail, move the head back
        c.exec_driver_sql("delete from audit_log where seq >= 7")
        c.exec_driver_sql("update audit_head set seq = 6, hash = (select hash from audit_log where seq = 6)")
    res = runner.invoke(app, ["audit", "verify", "--as", "engineer_ids", "--home", str(home.root), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["first_bad_seq"] == 7
    res = runner.invoke(app, ["audit", "verify", "--as", "engineer_ids", "--home", str(home.root)])
    assert res.exit_code == 1 and "entry 7 is missing: the chain ends at entry 6" in one_line(res.output)
    res = runner.invoke(app, ["audit", "checkpoint", "--as", "community_board", "--home", str(home.root)])
    assert res.exit_code == 2 and "the audit chain does not verify" in one_line(res.output)  # nobody signs it
    assert not list(home.checkpoints.glob("*community_board.json"))
    with pytest.raises(PolicyRefused, match="cut short"):
        run(home, reg)


def test_a_checkpoint_signed_with_another_key_or_edited_is_refused(home, reg):
    runner = CliRunner()
    approve(reg)
    assert runner.invoke(app, ["audit", "checkpoint", "--as", "steward_police", "--home", str(home.root)]).exit_code == 0
    other = home.root / "elsewhere"
    res = runner.invoke(app, ["audit", "checkpoint", "--as", "steward_police", "--home", str(home.root),
                              "--key-dir", str(other)])
    assert res.exit_code == 2 and "another checkpoint key is registered for steward_police" in one_line(res.output)
    cp = next(home.checkpoints.glob("*.json"))
    cp.write_text(cp.read_text().replace('"seq": 8', '"seq": 3'))
    res = runner.invoke(app, ["audit", "verify", "--as", "engineer_ids", "--home", str(home.root)])
    assert res.exit_code == 1 and "its signature does not verify" in one_line(res.output)


# -------------------------------------------------------------------------- every action x every role
#: Who may do what, written out: a change to roles.py must change this table too.
ROLE_USER = {"analyst": "analyst_isc", "evaluator": "evaluator_atv", "steward": "steward_police",
             "community_reviewer": "community_board", "engineer": "engineer_ids", "administrator": "admin_ids"}
MATRIX = {
    "request.submit": {"analyst", "evaluator"},
    "request.withdraw": {"analyst", "evaluator"},
    "review": {"steward", "community_reviewer"},
    "request.revoke": {"steward", "community_reviewer"},
    "export.cohort": {"evaluator"},
    "export.summary": {"evaluator"},
    "study.run": {"analyst"},
    "audit.verify": {"steward", "community_reviewer", "engineer", "administrator"},
    "audit.checkpoint": {"steward", "community_reviewer"},
    "retention.sweep": {"engineer"},
    "partner.register": {"engineer"},
    "user.add": {"administrator"},
    "user.remove": {"administrator"},
    "account.credentials": {"administrator"},
    "agreement.add": {"administrator"},
    "output.check": {"steward", "engineer"},
    "browse": {"analyst", "evaluator"},
}
#: The audit entry each action leaves when it runs (its refusal is always refused.<action>).
DONE = {"request.submit": "request.submitted", "request.withdraw": "request.withdrawn", "review": "review.approve",
        "request.revoke": "request.revoked", "export.cohort": "export.released", "export.summary": "summary.released",
        "study.run": "study.released", "audit.verify": "audit.verified", "audit.checkpoint": "audit.checkpointed",
        "retention.sweep": "retention.swept", "partner.register": "partner.key_registered", "user.add": "user.added",
        "user.remove": "user.removed", "account.credentials": "account.credentials", "agreement.add": "agreement.added",
        "output.check": "output.check.approve", "browse": "browse.read"}
EVENT_COLS = ("event_date", "sector", "event_type", "age_band_at_event", "is_violent_offense_victim")


def test_the_matrix_covers_every_declared_action_and_every_role():
    from governance.registry.models import Role
    from governance.registry.roles import ACTIONS, PERMISSIONS, allowed

    assert set(MATRIX) == set(ACTIONS) == set(DONE) and set(ROLE_USER) == {r.value for r in Role}
    for action, perms in ACTIONS.items():  # the written-out table is what roles.py says
        assert MATRIX[action] == {r.value for r in PERMISSIONS if any(allowed(r, p) for p in perms)}, action
    declared = {p for ps in ACTIONS.values() for p in ps}
    assert declared == {p for ps in PERMISSIONS.values() for p in ps}  # every held permission is checked somewhere


def _own_request(reg, actor, level, study):
    """A request of ``actor``'s own when their role may submit one, else the evaluator's atv-eval; approved by
    everyone it needs. So only the action's permission can refuse."""
    from governance.registry.models import Request
    from governance.registry.policy import required_reviews

    if actor in ("analyst_isc", "evaluator_atv"):
        cols = ([{"dataset": "events", "column": c} for c in EVENT_COLS] if level == "linked_extract" else COLS)
        with reg.transaction() as s:
            submit_request(s, requester=actor, now=NOW, study_id=study, title="T", organisation="O", purpose="p",
                           research_questions="q", columns=cols, output_level=level, irb_protocol="I",
                           irb_expires_on=date(2027, 6, 30), retention_end=date(2027, 9, 30),
                           equity_communities="c", equity_return_of_findings="r", equity_mitigation="m")
    else:
        study = "atv-eval"
    with reg.read() as s:
        partners, community = required_reviews(s, s.query(Request).filter_by(study_id=study).one())
    for who in [f"steward_{p}" for p in sorted(partners)] + (["community_board"] if community else []):
        with reg.transaction() as s:
            review_request(s, reviewer=who, study_id=study, decision="approve", now=NOW)
    return study


def _perform(action, actor, home, reg):
    from governance.outputs import StudySpec, SummarySpec, run_study
    from governance.outputs.summary import export_cohort_summary
    from governance.partners import register_partner_key
    from governance.registry.integrity import verify_chain, write_checkpoint
    from governance.registry.workflow import withdraw_request
    from governance.retention import sweep

    kw = {"registry": reg, "warehouse_db": home.warehouse_db, "outputs_dir": home.outputs, "now": NOW}
    if action == "request.submit":
        with reg.transaction() as s:
            submit_request(s, requester=actor, now=NOW, study_id="perm-1", title="T", organisation="O", purpose="p",
                           research_questions="q", columns=COLS, output_level="cohort", irb_protocol="I",
                           irb_expires_on=date(2027, 6, 30), retention_end=date(2027, 9, 30),
                           equity_communities="c", equity_return_of_findings="r", equity_mitigation="m")
    elif action == "request.withdraw":
        study = _own_request(reg, actor, "cohort", "perm-1")
        with reg.transaction() as s:
            withdraw_request(s, actor=actor, study_id=study, now=NOW)
    elif action == "review":
        with reg.transaction() as s:
            review_request(s, reviewer=actor, study_id="atv-eval", decision="approve", now=NOW)
    elif action == "request.revoke":
        with reg.transaction() as s:
            revoke_request(s, actor=actor, study_id="atv-eval", now=NOW, reason="r")
    elif action == "export.cohort":
        study = _own_request(reg, actor, "cohort", "perm-1")
        export_cohort(CohortSpec(study, actor, "ATV", date(2021, 1, 1), date(2026, 11, 1), 365), keys_dir=home.keys,
                      **kw)
    elif action == "export.summary":
        study = _own_request(reg, actor, "cohort", "perm-1")
        export_cohort_summary(SummarySpec(study, actor, "ATV", date(2021, 1, 1), date(2026, 11, 1), 365), **kw)
    elif action == "study.run":
        study = _own_request(reg, actor, "linked_extract", "perm-1")
        run_study(StudySpec(study, actor, EVENT_COLS, date(2023, 1, 1), date(2025, 12, 31)), keys_dir=home.keys, **kw)
    elif action == "audit.verify":
        assert verify_chain(reg, actor=actor, now=NOW).ok
    elif action == "audit.checkpoint":
        write_checkpoint(reg, actor=actor, folder=home.checkpoints, key_dir=home.steward_keys(actor), now=NOW)
    elif action == "retention.sweep":
        sweep(reg, actor=actor, outputs_dir=home.outputs, keys_dir=home.keys, today=NOW.date(), now=NOW,
              confirm=True)
    elif action == "partner.register":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        public = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
        register_partner_key(reg, keys_dir=home.keys, partner="police", public_key=public, actor=actor, now=NOW)
    elif action == "user.add":
        from governance.identity.signin import add_user

        add_user(reg, actor=actor, user_id="perm_user", display_name="P", organisation="O", role="analyst", now=NOW)
    elif action == "user.remove":
        from governance.identity.signin import remove_user

        remove_user(reg, actor=actor, user_id="analyst_isc" if actor != "analyst_isc" else "evaluator_atv", now=NOW)
    elif action == "account.credentials":
        from governance.identity.signin import set_credentials

        set_credentials(reg, actor=actor, user_id="analyst_isc", email="analyst@example.org", now=NOW)
    elif action == "agreement.add":
        from governance.identity.signin import add_agreement

        add_agreement(reg, actor=actor, partner_id="police", title="DSA 2", starts_on=date(2026, 1, 1),
                      expires_on=date(2028, 1, 1), now=NOW)
    elif action == "output.check":
        from governance.outputs.checking import check_output
        from governance.registry.models import Release

        with reg.transaction() as s:
            rel = Release(study_id="atv-eval", version=1, kind="cohort", spec={}, file="cohort_atv_v1.csv", cells=[],
                          columns=[], persons=0, state="released", actor="evaluator_atv", created_at=NOW)
            s.add(rel)
            s.flush()
            rid = rel.id
        check_output(reg, checker=actor, release_id=rid, decision="approve", now=NOW)
    elif action == "browse":
        from governance.outputs.browse import BROWSE_VIEWS, browse_rows

        home.analyst_browse_db.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(home.analyst_browse_db)) as con:
            con.execute("create or replace table events (" + ", ".join(f'"{c}" varchar'
                                                                        for c in BROWSE_VIEWS["events"].columns) + ")")
            con.execute("create or replace table about as select 'events' as view, 11 as k, '[]' as quasi_identifiers, "
                        "'{}' as levels, 0 as records_suppressed, 11 as smallest_class, '' as built_at")
        assert browse_rows(reg, home.analyst_browse_db, actor=actor, view="events", now=NOW)["total"] == 0
    else:  # pragma: no cover - the coverage test above keeps MATRIX and this in step
        raise AssertionError(action)


@pytest.mark.parametrize("role", sorted(ROLE_USER))
@pytest.mark.parametrize("action", sorted(MATRIX))
def test_every_action_is_allowed_or_refused_by_its_declared_permission_and_audited(home, reg, action, role):
    from governance.registry.errors import GovernanceError

    actor = ROLE_USER[role]
    if action == "study.run":
        with duckdb.connect(str(home.warehouse_db)) as con:
            con.execute("create table analytics.events (person_key varchar, event_date date, sector varchar, "
                        "event_type varchar, age_band_at_event varchar, is_violent_offense_victim boolean)")
            con.executemany("insert into analytics.events values (?, ?, ?, ?, ?, ?)",
                            [(f"pk_{i % 150:06d}", date(2024, 1, 1) + timedelta(days=i % 300), "police", "victim",
                              "25-34", False) for i in range(900)])
    if role in MATRIX[action]:
        _perform(action, actor, home, reg)
        mine = [(a, who) for a, who in actor_actions(reg) if who == actor]
        assert (DONE[action], actor) in mine and not [a for a, _ in mine if a.startswith("refused.")]
    else:
        with pytest.raises((GovernanceError, PolicyRefused), match=rf"{actor} is an? {role}: {action} needs the "
                                                                  "permission to"):
            _perform(action, actor, home, reg)
        assert actor_actions(reg)[-1] == (f"refused.{action}", actor)
        assert DONE[action] not in [a for a, who in actor_actions(reg) if who == actor]
    with reg.read() as s:
        assert audit.verify(s).ok


def actor_actions(reg):
    with reg.read() as s:
        return [(e.action, e.actor) for e in s.query(audit.AuditEntry).order_by(audit.AuditEntry.seq)]


def test_an_action_that_declares_no_permission_cannot_run(reg):
    from governance.registry.errors import PermissionRefused
    from governance.registry.permissions import require

    with pytest.raises(PermissionRefused, match="declares no permission"), reg.transaction() as s:
        require(s, "engineer_ids", "registry.drop_everything", now=NOW)
    assert actor_actions(reg)[-1] == ("refused.registry.drop_everything", "engineer_ids")
