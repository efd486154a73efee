"""The dbt analytics zone on a tiny synthetic warehouse: build, de-identification, suppression, code maps, contracts,
and the analysts' k-anonymous views of the marts."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from envelope.keys import WarehouseKeyRing
from governance.defaults import AGE_BANDS_WIDER
from governance.disclosure import DisclosureRules
from governance.outputs.browse import BROWSE_VIEWS, BrowseViewError, browse_rows, build_browse_views
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.errors import PermissionRefused
from governance.registry.seed import seed_demo
from landing.ingest import ingest_envelope
from linkage.run import export_person_map, run_linkage
from orchestration.dbt_project import DBT_PROJECT_DIR, dbt_command, dbt_env
from tests.integration.conftest import boundary
from workspace import Home

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
MARTS = ("persons", "events", "program_cohorts", "community_violence_indicators")
MIN_CELL = 11
# name, given/family name parts, address, identifier encodings (enc_*, tokens, Bloom filters), exact birth dates
FORBIDDEN_COLUMN = re.compile(
    r"(^|_)(name|names|fname|lname|first|last|middle|suffix|sfx|ssn|address|addr|street|dob|birth_date|birth_dt"
    r"|token|tokens|bloom|bf|enc|hmac)(_|$)|^enc_|date_of_birth", re.IGNORECASE)


@dataclass
class DbtRun:
    success: bool
    results: dict[str, dict]  # node name -> run_results.json entry (status, message)
    output: str


def dbt(args: list[str], warehouse: Path, tmp: Path, project_dir: Path = DBT_PROJECT_DIR) -> DbtRun:
    """Run dbt in a subprocess on ``warehouse`` with a private target dir (the project's manifest stays untouched).

    A subprocess, not dbtRunner: dbt-duckdb keeps its connection open in the calling process.
    """
    target = tmp / "dbt-target"
    argv = dbt_command(args, target_path=target)
    argv[argv.index("--project-dir") + 1] = argv[argv.index("--profiles-dir") + 1] = str(project_dir)
    proc = subprocess.run(argv, env=dbt_env(warehouse_db=warehouse), capture_output=True, text=True, cwd=project_dir,
                          check=False)
    run_results = target / "run_results.json"
    results = {}
    if run_results.exists():
        for r in json.loads(run_results.read_text())["results"]:
            results[r["unique_id"].split(".")[2]] = r
    return DbtRun(proc.returncode == 0, results, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def linked_home(sent_home, tmp_path_factory) -> Home:
    """Both periods ingested and linked: raw content + raw.person_map, as the ingestion and linkage assets leave it."""
    home = Home(tmp_path_factory.mktemp("marts") / "home")
    shutil.copytree(sent_home.root, home.root)
    ring = WarehouseKeyRing(home.keys)
    for f in sorted(home.landing().glob("*/*.vpdc")):
        out = ingest_envelope(f, home, ring, now=NOW)
        assert out.status == "loaded", (out.file, out.check, out.detail)
    result = run_linkage(home.linkage_db, now=NOW, mode="full")
    export_person_map(home.linkage_db, home.warehouse_db, run_id=result.run_id, boundary=boundary(home))
    with duckdb.connect(str(home.warehouse_db)) as con:
        # a duplicate registration: the same person twice in one county load, once self-reported White, once Black.
        # "The most recent record" cannot tell them apart by time or source: only a stable tie-break can
        pk, rid = con.execute("select person_key, source_record_id from raw.person_map where source = 'county' "
                              "order by source_record_id limit 1").fetchone()
        con.execute("insert into raw.county__clients select source, load_id, 'dup-' || source_record_id, birth_year, "
                    "GENDER, case when RACE_CD = '1' then '2' else '1' end, 'N', 'SELF', ZIP, CENSUS_TRACT "
                    "from raw.county__clients where source_record_id = ?", [rid])
        con.execute("update raw.county__clients set RACE_METHOD = 'SELF', HISP_IND = 'N' where source_record_id = ?",
                    [rid])
        con.execute("insert into raw.person_map select source, 'dup-' || source_record_id, person_key, "
                    "match_confidence, linkage_run_id from raw.person_map where source_record_id = ?", [rid])
    shutil.copyfile(home.warehouse_db, home.root / "warehouse-before-marts.duckdb")
    return home


@pytest.fixture(scope="module")
def built(linked_home, tmp_path_factory) -> Path:
    """``dbt build`` (seeds, models, data tests, unit tests) of every model on the small warehouse."""
    tmp = tmp_path_factory.mktemp("dbt-build")
    res = dbt(["build"], linked_home.warehouse_db, tmp)
    failed = [(n, r["status"], r["message"]) for n, r in res.results.items() if r["status"] not in ("success", "pass")]
    assert res.success and not failed and res.results, failed or res.output[-3000:]
    return linked_home.warehouse_db


@pytest.fixture
def warehouse_copy(built, tmp_path) -> Path:
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built, copy)
    return copy


def test_identical_inputs_give_identical_marts_whatever_the_row_order(built, linked_home, tmp_path):
    """Build again from the same inputs with every raw table's rows in another order: every mart, row for row,
    and every published cell must be the same (ties broken on stable keys, never on arrival order)."""
    again = tmp_path / "again.duckdb"
    shutil.copyfile(linked_home.root / "warehouse-before-marts.duckdb", again)
    shutil.copytree(linked_home.root / "reference", tmp_path / "reference")  # the same population estimates
    with duckdb.connect(str(again)) as con:
        for (table,) in con.execute("select table_name from information_schema.tables where table_schema = 'raw' "
                                    "and table_type = 'BASE TABLE'").fetchall():
            con.execute(f'create or replace table raw."{table}" as select * from raw."{table}" order by random()')
    res = dbt(["build"], again, tmp_path)
    assert res.success, res.output[-2000:]
    with duckdb.connect(str(built), read_only=True) as first, duckdb.connect(str(again), read_only=True) as second:
        for mart in MARTS:
            cols = [r[0] for r in first.execute("select column_name from information_schema.columns where "
                                                "table_schema = 'analytics' and table_name = ? order by ordinal_position",
                                                [mart]).fetchall()]
            order = ", ".join(f'"{c}"' for c in cols)
            a = first.execute(f"select * from analytics.{mart} order by {order}").fetchall()
            b = second.execute(f"select * from analytics.{mart} order by {order}").fetchall()
            assert a == b, f"{mart}: {sum(x != y for x, y in zip(a, b))} rows differ between two builds"
        dup = first.execute("select race_ethnicity from analytics.persons p join raw.person_map m using (person_key) "
                            "where m.source_record_id like 'dup-%'").fetchall()
        assert len(dup) == 1  # the tie was there to break


def test_dbt_build_builds_every_mart_with_rows(built):
    with duckdb.connect(str(built), read_only=True) as con:
        counts = {m: con.execute(f"select count(*) from analytics.{m}").fetchone()[0] for m in MARTS}
    assert all(counts[m] > 0 for m in ("persons", "events", "community_violence_indicators")), counts


def test_no_mart_exposes_names_encodings_or_exact_birth_dates(built):
    with duckdb.connect(str(built), read_only=True) as con:
        cols = con.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            "where table_schema in ('analytics', 'intermediate', 'staging')").fetchall()
    assert {t for s, t, *_ in cols if s == "analytics"} >= set(MARTS)
    leaks = [(s, t, c) for s, t, c, _ in cols if FORBIDDEN_COLUMN.search(c)]
    assert leaks == []
    assert not [(t, c, d) for s, t, c, d in cols if d.upper().startswith(("BIT", "BLOB"))]  # no Bloom filters
    # birth year is the only birth information, and it is a year, not a date
    assert [(t, d) for s, t, c, d in cols if s == "analytics" and "birth" in c] == [("persons", "SMALLINT")]


def _lines(cells: dict) -> list[tuple[list, tuple]]:
    """The additive constraints a reader can check in one month x indicator: (interior cell keys, total key)."""
    levels = defaultdict(set)
    groups = defaultdict(set)
    for level, geo, dim, grp in cells:
        levels[level].add(geo)
        groups[dim].add(grp)
    county = ("county", "Mecklenburg County")
    lines = []
    for level in ("neighbourhood", "priority_area"):
        for dim in ("race_ethnicity", "sex", "age_band"):
            for geo in levels[level]:
                lines.append(([(level, geo, dim, k) for k in groups[dim]], (level, geo, "all", "All")))
            for k in groups[dim]:
                lines.append(([(level, g, dim, k) for g in levels[level]], (*county, dim, k)))
        lines.append(([(level, g, "all", "All") for g in levels[level]], (*county, "all", "All")))
    for dim in ("race_ethnicity", "sex", "age_band"):
        lines.append(([(*county, dim, k) for k in groups[dim]], (*county, "all", "All")))
    return lines


def recoverable_cells(cells: dict) -> list:
    """Suppressed cells whose value follows exactly from the published cells and the table's sums (rank test)."""
    unknown = [k for k, v in cells.items() if v is None]
    if not unknown:
        return []
    index = {k: i for i, k in enumerate(unknown)}
    rows = []
    for interior, total in _lines(cells):
        row = np.zeros(len(unknown))
        for k in interior:
            if k in index:
                row[index[k]] += 1
        if total in index:
            row[index[total]] -= 1
        if row.any():
            rows.append(row)
    if not rows:
        return []
    a = np.array(rows)
    rank = np.linalg.matrix_rank(a)
    out = []
    for k, i in index.items():
        e = np.zeros(len(unknown))
        e[i] = 1
        if np.linalg.matrix_rank(np.vstack([a, e])) == rank:  # e_i in the row space: the cell is determined
            out.append(k)
    return out


def test_no_published_cell_between_1_and_10_survives_including_through_totals(built):
    with duckdb.connect(str(built), read_only=True) as con:
        rows = con.execute(
            "select period_type || ' ' || period_start, indicator, geography_level, geography, demographic_dimension, "
            "demographic_group, event_count, suppressed from analytics.community_violence_indicators "
            "where period_type in ('month', 'quarter', 'year')").fetchall()
    assert not [r for r in rows if r[6] is not None and 1 <= r[6] < MIN_CELL]
    assert all((r[6] is None) == r[7] for r in rows)
    tables = defaultdict(dict)
    for month, ind, level, geo, dim, grp, n, _ in rows:
        tables[(month, ind)][(level, geo, dim, grp)] = n
    assert any(v is None for t in tables.values() for v in t.values())  # the tiny data do have small cells
    for key, cells in tables.items():
        # the table is additive as published (a fully published line sums to its total) ...
        for interior, total in _lines(cells):
            if all(cells[k] is not None for k in [*interior, total]):
                assert sum(cells[k] for k in interior) == cells[total], (key, total)
        # ... and no suppressed cell can be solved from the published cells and totals
        assert recoverable_cells(cells) == [], key


def test_the_published_family_adds_up_and_its_rates_use_the_population_estimates(built, linked_home):
    import pandas as pd

    with duckdb.connect(str(built), read_only=True) as con:
        df = con.execute("select * from analytics.community_violence_indicators").df()
    assert set(df["period_type"]) == {"month", "quarter", "year", "rolling_12", "year_to_date"}
    key = ["indicator", "geography_level", "geography", "demographic_dimension", "demographic_group"]
    months = df[df["period_type"] == "month"].set_index([*key, "period_start"])["event_count"]
    # every longer period covers all its months and is the sum of its published months, withheld if any month is
    # (so it can never help solve a hidden month)
    sample = df[df["period_type"] != "month"].groupby("period_type").sample(150, random_state=1)
    for _, r in sample.iterrows():
        inside = months.loc[tuple(r[k] for k in key)]
        inside = inside[(inside.index >= r["period_start"]) & (inside.index <= r["period_end"])]
        assert len(inside) == {"quarter": 3, "year": 12, "rolling_12": 12}.get(
            r["period_type"], pd.Timestamp(r["period_end"]).month), r.to_dict()
        expected = None if inside.isna().any() else int(inside.sum())
        assert (None if pd.isna(r["event_count"]) else int(r["event_count"])) == expected, r.to_dict()
        assert bool(r["suppressed"]) == (expected is None)
    # rates: count per 100,000 residents where both are known, from the home's population estimates
    estimates = pd.read_csv(linked_home.root / "reference" / "population_estimates.csv")
    county = df[(df["geography_level"] == "county") & (df["demographic_dimension"] == "all")]
    assert (county["population"] == estimates["population"].sum()).all()
    has = df["rate_per_100k"].notna()
    assert has.any() and df.loc[df["suppressed"], "rate_per_100k"].isna().all()
    assert df.loc[(df["period_type"] == "year") & (df["geography_level"] == "county"), "rate_per_100k"].notna().any()
    assert ((df.loc[has, "event_count"] * 100000 / df.loc[has, "population"]).round(1)
            - df.loc[has, "rate_per_100k"]).abs().max() < 0.051
    assert df.loc[df["geography"] == "Unknown location", "population"].isna().all()


def test_recoverability_check_catches_a_lone_suppressed_cell():
    # guard for the test above: one suppressed cell in a line is exactly its total minus the rest
    cells = {("county", "Mecklenburg County", "all", "All"): 30,
             ("neighbourhood", "A", "all", "All"): None, ("neighbourhood", "B", "all", "All"): 25}
    assert recoverable_cells(cells) == [("neighbourhood", "A", "all", "All")]


def test_unmapped_code_fails_a_test_naming_the_code_and_the_source(warehouse_copy, tmp_path):
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("update raw.police__persons set RACE = 'Z9' where source_record_id = "
                    "(select min(source_record_id) from raw.police__persons)")
    res = dbt(["build", "--select", "stg_police__persons+"], warehouse_copy, tmp_path)
    assert not res.success
    failing = [r for n, r in res.results.items() if "codes_are_mapped" in n and r["status"] in ("error", "fail")]
    assert len(failing) == 1, [(n, r["status"]) for n, r in res.results.items()]
    message = failing[0]["message"]
    assert "'Z9'" in message and "source police" in message and "RACE" in message, message
    assert "'Z9'" in res.output  # the console says it too
    # nothing downstream is built with the code silently mapped to Unknown
    assert res.results["persons"]["status"] == "skipped"


def test_mart_contracts_are_enforced(warehouse_copy, tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    yml = project / "models" / "marts" / "core" / "_core__models.yml"
    text = yml.read_text()
    assert "data_type: smallint" in text
    yml.write_text(text.replace("data_type: smallint", "data_type: varchar", 1))  # persons.birth_year
    res = dbt(["run", "--select", "persons"], warehouse_copy, tmp_path, project_dir=project)
    assert not res.success
    assert res.results["persons"]["status"] == "error"
    message = res.results["persons"]["message"]
    assert "contract" in message.lower() and "birth_year" in message, message


def test_dagster_graph_maps_dbt_sources_onto_ingestion_and_linkage_assets(tmp_path, monkeypatch):
    import dagster as dg

    from orchestration.definitions import defs

    monkeypatch.setenv("VPDC_HOME", str(tmp_path))  # the manifest is prepared under VPDC_HOME/dbt at load time
    d = defs()
    graph = d.resolve_asset_graph()
    job = d.resolve_job_def("marts_job")
    marts = {dg.AssetKey(["analytics", m]) for m in MARTS}
    assert marts <= set(graph.get_all_asset_keys())
    assert dg.AssetKey(["raw", "police", "persons"]) in graph.get(
        dg.AssetKey(["analytics", "staging", "stg_police__persons"])).parent_keys
    assert graph.get(dg.AssetKey(["analytics", "staging", "stg_linkage__person_map"])).parent_keys == {
        dg.AssetKey(["raw", "person_map"])}
    assert graph.get(dg.AssetKey(["analytics", "persons"])).group_name == "marts"
    # every dbt source is a declared asset: no node of the lineage is unknown to Dagster
    staging = [k for k in graph.get_all_asset_keys() if k.path[:2] == ["analytics", "staging"]]
    parents = {p for k in staging for p in graph.get(k).parent_keys}
    assert dg.AssetKey(["raw", "loads"]) in parents
    assert parents <= set(graph.get_all_asset_keys()) and not [p for p in parents if graph.get(p).is_external
                                                                and p != dg.AssetKey(["raw", "loads"])]
    dbt_assets_def = d.resolve_assets_def(dg.AssetKey(["analytics", "persons"]))
    assert dbt_assets_def.op.pool == "duckdb_writer"  # one writer per DuckDB file
    assert dg.AssetKey(["reports", "data_dictionary"]) in {k for k in job.asset_layer.selected_asset_keys}


EQUITY_KEYS = {"sources", "collection_method", "population", "known_biases", "suppression"}


def test_every_mart_column_carries_equity_metadata_and_the_dictionary_shows_it(built, linked_home):
    from orchestration.dbt_project import prepare_manifest
    from orchestration.defs.marts.dictionary import write_data_dictionary

    manifest = json.loads(prepare_manifest(linked_home.root).read_text())
    marts = {n["name"]: n for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and "/marts/" in "/" + n["original_file_path"]}
    assert set(MARTS) <= set(marts)
    with duckdb.connect(str(built), read_only=True) as con:
        for name in MARTS:
            built_cols = {r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'analytics' "
                "and table_name = ?", [name]).fetchall()}
            documented = marts[name]["columns"]
            assert built_cols == set(documented), name  # every built column is documented, and only those
            for col, spec in documented.items():
                equity = spec.get("meta", {}).get("equity", {})
                missing = EQUITY_KEYS - {k for k, v in equity.items() if v not in (None, "", [])}
                assert not missing, f"{name}.{col}: no equity metadata for {sorted(missing)}"
    html = write_data_dictionary(linked_home.root, warehouse_db=built).read_text()
    assert "community_violence_indicators" in html and "known_biases" in html
    assert "police data record contact" in html.lower() or "contact with police" in html.lower()
    assert "<script src=\"http" not in html  # self-contained: opens offline


# ------------------------------------------------------------------------------------------------------------------
# The analysts' views of the marts (governance.outputs.browse), on the marts built above: k-anonymous in persons on
# what an attacker knows, no person identifier, replaced whole, read only with the browse permission and audited.
BROWSE_NOW = datetime(2026, 11, 22, 9, tzinfo=UTC)
K = MIN_CELL  # the collaborative k-anonymity default equals the minimum cell
IDENTIFIERS = {"person_key", "event_id", "cohort_member_id", "study_person_id", "census_tract", "event_code",
               "event_date", "age_at_event", "birth_year", "age_at_reference"}


@pytest.fixture(scope="module")
def warehouse(built, tmp_path_factory):
    """The built marts, with 400 more program-cohort members (random bands, dates and counts): the fixture's
    population has too few enrolments for any cohort row to survive k = 11, and an empty view proves nothing."""
    path = tmp_path_factory.mktemp("browse-wh") / "warehouse.duckdb"
    shutil.copyfile(built, path)
    rng = random.Random(7)
    with duckdb.connect(str(path)) as con:
        cols = [r[0] for r in con.execute("select column_name from information_schema.columns where table_schema = "
                                          "'analytics' and table_name = 'program_cohorts' order by ordinal_position"
                                          ).fetchall()]
        rows = []
        for i in range(400):
            enrolled = date(2022, 1, 1) + timedelta(days=rng.randrange(900))
            row = {"cohort_member_id": f"cm-{i}", "person_key": f"wp_synthetic_{i}", "program": rng.choice(["ATV", "HVIP"]),
                   "enrollment_date": enrolled, "window_days": 365, "pre_window_start": enrolled - timedelta(days=365),
                   "post_window_end": enrolled + timedelta(days=365), "observation_end_date": date(2026, 6, 30),
                   "post_window_complete": True, "age_band_at_enrollment": rng.choice(["15-17", "18-24", "25-34"]),
                   "sex": rng.choice(["Male", "Female"]), "race_ethnicity": rng.choice(["Black", "White", "Hispanic"])}
            rows.append([row.get(c, rng.choice([0, 0, 0, 1, 2, 5])) for c in cols])
        con.executemany(f"insert into analytics.program_cohorts values ({', '.join('?' * len(cols))})", rows)
    return path


@pytest.fixture(scope="module")
def views(warehouse, tmp_path_factory):
    out = tmp_path_factory.mktemp("browse") / "analyst" / "browse.duckdb"
    result = build_browse_views(warehouse, out, rules=DisclosureRules(k_anonymity=K), now=BROWSE_NOW)
    with duckdb.connect(str(out), read_only=True) as con:
        frames = {v: con.execute(f'select * from "{v}"').df() for v in BROWSE_VIEWS}
        about = con.execute("select * from about").df()
    return result, frames, about


def _covers(label, value, column: str) -> bool:
    """Whether a view's (possibly generalised) label is consistent with the mart's exact value: what an attacker
    who knows the exact value must assume."""
    if label == "All":
        return True
    if pd.isna(label) or pd.isna(value):
        return pd.isna(label) and pd.isna(value)
    if isinstance(value, (date, pd.Timestamp)):
        d = pd.Timestamp(value)
        return label in (f"{d:%Y-%m}", f"{d.year}Q{(d.month - 1) // 3 + 1}", f"{d.year}")
    if column.startswith("age_band"):
        return label == value or AGE_BANDS_WIDER.get(value) == label
    if isinstance(label, str) and label.endswith("+") and label[:-1].isdigit():
        return float(value) >= int(label[:-1])
    return str(label) == str(value)


def _mart(built, view: str) -> pd.DataFrame:
    v = BROWSE_VIEWS[view]
    cols = ", ".join(f"array_to_string(list_sort({c}), ';') as {c}" if c in v.lists else c for c in v.columns)
    with duckdb.connect(str(built), read_only=True) as con:
        return con.execute(f"select person_key, {cols} from analytics.{v.mart}").df()


def test_no_view_carries_a_person_identifier_exact_date_or_age(views):
    _, frames, about = views
    for view, frame in frames.items():
        bad = [c for c in frame.columns if c in IDENTIFIERS or FORBIDDEN_COLUMN.search(c)]
        assert not bad, (view, bad)
        for c in BROWSE_VIEWS[view].dates:
            shown = frame[c].dropna().astype(str)
            assert shown.map(lambda s: bool(re.fullmatch(r"\d{4}(-\d{2}|Q[1-4])?|All", s))).all(), (view, c)
    assert set(about["view"]) == set(BROWSE_VIEWS)
    assert (about["k"] == K).all() and (about["smallest_class"] >= K).all()


@pytest.mark.parametrize("view", list(BROWSE_VIEWS))
def test_every_row_is_consistent_with_at_least_k_persons_of_the_mart(views, warehouse, view):
    """The attacker's view of k-anonymity: for each class of the view (its quasi-identifier labels), count the
    distinct persons of the MART whose exact values it could stand for. Counted here from the mart, independently
    of the library's own class sizes."""
    result, frames, _ = views
    qis = result.views[view]["quasi_identifiers"]
    mart = _mart(warehouse, view)
    frame = frames[view]
    assert len(frame), f"{view}: everything suppressed, nothing to check"
    small = []
    for labels in frame[qis].drop_duplicates().itertuples(index=False):
        ok = pd.Series(True, index=mart.index)
        for q, label in zip(qis, labels, strict=True):
            ok &= pd.Series([_covers(label, v, q) for v in mart[q]], index=mart.index)
        persons = mart.loc[ok, "person_key"].nunique()
        if persons < K:
            small.append((dict(zip(qis, labels, strict=True)), persons))
    assert not small, small[:3]


def test_one_known_event_pins_a_person_in_the_mart_but_not_in_the_view(views, built):
    """The issue's attack: who knows one police contact (its date, type and neighbourhood) finds that person in the
    events mart, with their key and whole history; in the view the same knowledge matches at least k persons' rows
    (or none: the event was suppressed), and no row carries a key to follow."""
    _, frames, _ = views
    with duckdb.connect(str(built), read_only=True) as con:
        police = con.execute("""select event_date, event_type, neighbourhood, age_band_at_event,
                count(distinct person_key) over (partition by event_date, event_type, neighbourhood) persons
            from analytics.events where sector = 'police'""").df()
    pinned_in_mart = float((police["persons"] == 1).mean())
    assert pinned_in_mart > 0.5, pinned_in_mart  # the attack works on the mart

    view = frames["events"]
    mart = _mart(built, "events")
    qis = ["event_month", "event_type", "neighbourhood", "age_band_at_event"]
    checked = 0
    for known in police.itertuples(index=False):
        rows = view[(view["event_type"] == known.event_type)
                    & view["event_month"].map(lambda s, d=known.event_date: _covers(s, d, "event_month"))
                    & view["neighbourhood"].map(lambda s, n=known.neighbourhood: _covers(s, n, "neighbourhood"))
                    & view["age_band_at_event"].map(lambda s, a=known.age_band_at_event: _covers(s, a, "age_band"))]
        if rows.empty:
            continue
        checked += 1
        # every class among those rows stands for at least k persons of the mart
        for labels in rows[qis].drop_duplicates().itertuples(index=False):
            ok = pd.Series(True, index=mart.index)
            for q, label in zip(qis, labels, strict=True):
                ok &= pd.Series([_covers(label, v, q) for v in mart[q]], index=mart.index)
            assert mart.loc[ok, "person_key"].nunique() >= K
    assert checked >= 20, checked  # events that survived in the view, each checked above


def test_a_failed_build_leaves_the_previous_views_whole(views, built, tmp_path):
    result, frames, _ = views
    out = tmp_path / "analyst" / "browse.duckdb"
    out.parent.mkdir()
    shutil.copyfile(result.path, out)
    before = out.read_bytes()
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(built, broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("alter table analytics.persons drop column sex")
    with pytest.raises(BrowseViewError, match=r"analytics\.persons: columns sex are not in the mart"):
        build_browse_views(broken, out, rules=DisclosureRules(k_anonymity=K), now=BROWSE_NOW)
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["browse.duckdb"]  # no temporary file left behind


def test_only_analysts_and_evaluators_browse_and_every_read_and_refusal_is_audited(views, tmp_path):
    result, _, _ = views
    reg = Registry.at(tmp_path / "registry.db")
    with reg.transaction() as s:
        seed_demo(s)
    body = browse_rows(reg, result.path, actor="analyst_isc", view="events", now=BROWSE_NOW, limit=5,
                       where=[("sector", "police")], columns=["event_month", "event_type"])
    assert body["columns"] == ["event_month", "event_type"] and 0 < len(body["rows"]) <= 5
    assert body["total"] >= len(body["rows"]) and body["about"]["k"] == K
    with pytest.raises(PermissionRefused):
        browse_rows(reg, result.path, actor="steward_police", view="events", now=BROWSE_NOW)
    # hostile input: a column that is not the view's (an injection attempt), an unknown view, a huge limit
    for kwargs, message in ((dict(view="events", where=[('x" = \'\' or 1=1 --', "a")]), "not a column of events"),
                            (dict(view="events", columns=["person_key"]), "not a column of events"),
                            (dict(view="warehouse.analytics.events"), "no view named"),
                            (dict(view="events", limit=10**9), "give a number of rows")):
        with pytest.raises(BrowseViewError, match=message):
            browse_rows(reg, result.path, actor="analyst_isc", now=BROWSE_NOW, **kwargs)
    with reg.read() as s:
        actions = [e.action for e in s.query(audit.AuditEntry).order_by(audit.AuditEntry.seq)]
    assert actions.count("browse.read") == 1
    assert actions.count("refused.browse") == 5, actions[-8:]

