"""Ingestion through real Dagster runs (landing sensor → in-process runs) against real DuckDB files."""

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from governance.keys import KeyRing, init_keys
from governance.transfer import read_manifest, seal_envelope
from landing.ingest import ingest_envelope, quarantine_reason
from linkage.encoding import ENCODING_COLUMNS, load_profile
from orchestration.runner import run_landing_sensor_once
from tests.integration.conftest import envelopes
from vpdc.config import Home

pytestmark = pytest.mark.integration


def keep_only(home: Home, keep: list[Path]) -> None:
    """Hold back every other envelope so a test ingests only what it is about."""
    held = home.root / "held"
    for f in home.landing().glob("*/*.vpdc"):
        if f not in keep:
            (held / f.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), held / f.parent.name / f.name)


def reseal(home: Home, table: pa.Table, like: Path, *, schema_version: str | None = None, partner: str | None = None,
           keyring: KeyRing | None = None, row_count: int | None = None, name: str = "x") -> Path:
    m = read_manifest(like)
    tmp = home.root / f"{name}.parquet"
    pq.write_table(table, tmp)
    env = seal_envelope(tmp, partner=partner or m.partner, extract_type=m.extract_type, period=m.period,
                        schema_version=schema_version or m.schema_version,
                        row_count=table.num_rows if row_count is None else row_count,
                        linkage_key_version=m.linkage_key_version, keyring=keyring or KeyRing(home.keys),
                        out_dir=home.landing(partner or m.partner), extra=m.extra)
    tmp.unlink()
    return env


def encoded(home: Home, envelope: Path) -> pa.Table:
    """The payload inside an envelope (decrypted with the warehouse key, as a test fixture only)."""
    from governance.transfer import open_envelope

    with open_envelope(envelope, KeyRing(home.keys)) as opened:
        return pq.read_table(opened.payload)


def quarantined(home: Home) -> dict[str, dict]:
    return {f.name: quarantine_reason(f) for f in home.quarantine.glob("*.vpdc")}


def wh(home: Home, sql: str, params=None):
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_every_envelope_loads_and_the_zones_stay_separated(home):
    n = len(envelopes(home))
    runs = run_landing_sensor_once(home)
    assert len(runs) == n and all(r.success for r in runs), [r.error for r in runs if not r.success]
    assert not list(home.landing().glob("*/*.vpdc")) and len(list(home.archive.glob("*/*.vpdc"))) == n
    assert wh(home, "select count(*) from raw.loads where is_current")[0][0] == n
    # no encoding column in the warehouse
    wcols = wh(home, "select table_name, column_name from information_schema.columns")
    assert not [c for c in wcols if c[1].startswith("enc_") or c[1] in ENCODING_COLUMNS]
    # no content column in the linkage zone: only keys, versions and encodings
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        lcols = {c[0] for c in con.execute("select column_name from information_schema.columns "
                                           "where table_name = 'encodings'").fetchall()}
        assert lcols == {"source", "extract_type", "load_id", "source_record_id", "linkage_key_version",
                         *ENCODING_COLUMNS}
        n_enc = con.execute("select count(*) from encodings").fetchone()[0]
    n_persons = sum(wh(home, f"select count(*) from raw.{t}")[0][0] for t in
                    ("county__clients", "police__persons", "schools__students", "hospital_a__patients",
                     "hospital_b__patients"))
    assert n_enc == n_persons > 0
    # run keys: a second sensor evaluation starts nothing new
    again = run_landing_sensor_once(home)
    assert again == []


def test_same_file_dropped_twice_loads_once(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    shutil.copy(env, env.with_name("copy-of-" + env.name))
    runs = run_landing_sensor_once(home)
    assert [r.skipped for r in runs] == [False, True]
    assert wh(home, "select count(*) from raw.loads")[0][0] == 1


def test_same_envelope_twice_changes_nothing_and_is_refused_as_replay(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    copy = home.root / "copy.vpdc"
    shutil.copy(env, copy)
    assert run_landing_sensor_once(home)[0].success
    before = wh(home, "select * from raw.police__persons order by source_record_id")
    shutil.move(str(copy), home.landing("police") / "resent-copy.vpdc")
    out = ingest_envelope(home.landing("police") / "resent-copy.vpdc", home, KeyRing(home.keys))
    assert (out.status, out.check) == ("quarantined", "replay")
    assert wh(home, "select * from raw.police__persons order by source_record_id") == before
    assert wh(home, "select count(*) from raw.loads")[0][0] == 1


def test_tampered_envelope_is_quarantined_and_blocks_its_asset(home):
    env = envelopes(home, "schools", "students")[0]
    keep_only(home, [env])
    data = bytearray(env.read_bytes())
    data[-200] ^= 0xFF
    env.write_bytes(bytes(data))
    runs = run_landing_sensor_once(home)
    assert len(runs) == 1 and not runs[0].success and "quarantined (decrypt)" in runs[0].error
    reason = quarantined(home)[env.name]
    assert reason["check"] == "decrypt" and reason["partner"] == "schools"
    assert not home.warehouse_db.exists() or not wh(home, "select count(*) from information_schema.tables "
                                                          "where table_name = 'schools__students'")[0][0]
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        rec = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey(["raw", "schools", "students"]), "envelope_verified"))
        assert rec is not None and rec.evaluation.passed is False


def test_unknown_partner_is_quarantined(home, tmp_path):
    other = tmp_path / "fire-keys"
    init_keys(other, ("fire_dept",))
    ring = KeyRing(home.keys)
    (home.keys / "partners" / "fire_dept").mkdir(parents=True)
    shutil.copy(other / "partners" / "fire_dept" / "signing.key", home.keys / "partners" / "fire_dept" / "signing.key")
    like = envelopes(home, "police", "persons")[0]
    keep_only(home, [])
    env = reseal(home, encoded(home, home.root / "held" / "police" / like.name), home.root / "held" / "police" / like.name,
                 partner="fire_dept", keyring=ring)
    runs = run_landing_sensor_once(home)
    assert len(runs) == 1 and runs[0].job == "triage_job" and not runs[0].success
    assert quarantined(home)[env.name]["check"] == "unknown_partner"


def test_wrong_schema_version_is_quarantined(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [])
    held = home.root / "held" / "police" / env.name
    bad = reseal(home, encoded(home, held), held, schema_version="police.persons/2")
    runs = run_landing_sensor_once(home)
    assert not runs[0].success
    reason = quarantined(home)[bad.name]
    assert reason["check"] == "validation" and "police.persons/2" in reason["detail"]


def test_column_of_plaintext_names_is_refused_naming_the_column(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [])
    held = home.root / "held" / "police" / env.name
    t = encoded(home, held)
    names = ["James Smith", "Maria Garcia", "Robert Johnson", "Linda Williams"] * (t.num_rows // 4 + 1)
    bad = reseal(home, t.append_column("NOTES", pa.array(names[: t.num_rows])), held)
    # names smuggled into an allow-listed content column are caught by value, not by name
    smuggled = reseal(home, t.set_column(t.schema.get_field_index("RACE"), "RACE", pa.array(names[: t.num_rows])),
                      held, name="y")
    run_landing_sensor_once(home)
    q = quarantined(home)
    assert q[bad.name]["check"] == "plaintext_identifier" and "column NOTES" in q[bad.name]["detail"]
    assert q[smuggled.name]["check"] == "plaintext_identifier" and "column RACE" in q[smuggled.name]["detail"]
    for reason in q.values():  # counts and column names only: no value reaches the reason
        assert "Smith" not in json.dumps(reason) and "Garcia" not in json.dumps(reason)


def test_duplicated_record_ids_are_refused(home):
    env = envelopes(home, "hospital_a", "patients")[0]
    keep_only(home, [])
    held = home.root / "held" / "hospital_a" / env.name
    t = encoded(home, held)
    bad = reseal(home, pa.concat_tables([t, t.slice(0, 5)]), held)
    run_landing_sensor_once(home)
    reason = quarantined(home)[bad.name]
    assert reason["check"] == "validation" and "unique:source_record_id" in reason["detail"]
    report = json.loads(Path(reason["report"]).read_text())
    assert any(c["check"] == "unique" and c["unexpected_count"] == 5 for c in report["checks"])


def test_unknown_code_is_refused_naming_column_and_count(home):
    env = envelopes(home, "police", "incident_persons")[0]
    keep_only(home, [])
    held = home.root / "held" / "police" / env.name
    t = encoded(home, held)
    roles = pc.if_else(pc.equal(pa.array(range(t.num_rows)), 0), "WITNESS", t["ROLE"])
    bad = reseal(home, t.set_column(t.schema.get_field_index("ROLE"), "ROLE", roles), held)
    run_landing_sensor_once(home)
    reason = quarantined(home)[bad.name]
    assert "value_set:ROLE: 1 of" in reason["detail"] and "WITNESS" not in json.dumps(reason)


def test_empty_extract_loads_zero_rows(home):
    env = envelopes(home, "schools", "suspensions")[0]
    keep_only(home, [])
    held = home.root / "held" / "schools" / env.name
    t = encoded(home, held).slice(0, 0)
    reseal(home, t, held)
    runs = run_landing_sensor_once(home)
    assert runs[0].success
    assert wh(home, "select row_count from raw.loads")[0][0] == 0


def test_zero_byte_file_is_quarantined(home):
    keep_only(home, [])
    f = home.landing("county") / "broken.vpdc"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b"")
    runs = run_landing_sensor_once(home)
    assert runs[0].job == "triage_job" and not runs[0].success
    assert quarantined(home)["broken.vpdc"]["check"] == "format"
    assert (home.quarantine / "broken.vpdc").exists()  # kept, never deleted


def test_resent_period_supersedes_and_keeps_both_loads(home):
    env = envelopes(home, "county", "clients")[0]
    keep_only(home, [env])
    first = read_manifest(env)
    run_landing_sensor_once(home)
    held = home.archive / "county" / env.name
    resent = reseal(home, encoded(home, held), held)
    run_landing_sensor_once(home)
    loads = wh(home, "select load_id, is_current, superseded_by from raw.loads order by created_at")
    second = read_manifest(home.archive / "county" / resent.name).envelope_id
    assert loads == [(first.envelope_id, False, second), (second, True, None)]
    # both loads' rows are kept; analysts read the current one
    assert wh(home, "select count(distinct load_id) from raw.county__clients")[0][0] == 2
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        assert con.execute("select load_id from loads where is_current").fetchall() == [(second,)]


def test_late_arriving_older_envelope_does_not_become_current(home):
    env = envelopes(home, "county", "clients")[0]
    keep_only(home, [])
    held = home.root / "held" / "county" / env.name
    t = encoded(home, held)
    newer = reseal(home, t, held, name="a")
    run_landing_sensor_once(home)
    shutil.move(str(held), home.landing("county") / held.name)  # the original, created earlier, arrives late
    run_landing_sensor_once(home)
    current = wh(home, "select load_id from raw.loads where is_current")
    assert current == [(read_manifest(home.archive / "county" / newer.name).envelope_id,)]


def test_crash_mid_load_leaves_no_partial_rows_and_rerun_completes(home, monkeypatch):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    eid = read_manifest(env).envelope_id
    import landing.ingest as ingest_module

    real = ingest_module.load_payload

    def crashing(*args, **kwargs):
        def boom():
            raise RuntimeError("power cut between the zones")
        return real(*args, **{**kwargs, "_after_linkage_commit": boom})

    monkeypatch.setattr(ingest_module, "load_payload", crashing)
    runs = run_landing_sensor_once(home)
    assert not runs[0].success and env.exists()  # still in landing, not quarantined
    if home.warehouse_db.exists():  # the crash came before the warehouse transaction: no partial rows there
        tables = wh(home, "select table_name from information_schema.tables")
        assert ("police__persons",) not in tables or wh(home, "select count(*) from raw.police__persons")[0][0] == 0
        assert ("loads",) not in tables or wh(home, "select count(*) from raw.loads")[0][0] == 0

    monkeypatch.setattr(ingest_module, "load_payload", real)
    rerun = run_landing_sensor_once(home)
    assert rerun[0].success and rerun[0].run_key == f"{eid}#attempt2"
    rows = wh(home, "select count(*), count(distinct source_record_id) from raw.police__persons")[0]
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        enc = con.execute("select count(*), count(distinct source_record_id) from encodings").fetchone()
    assert rows[0] == rows[1] == enc[0] == enc[1] == read_manifest(home.archive / "police" / env.name).row_count


def test_quarantine_retry_after_fixing_the_cause(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    trusted = home.keys / "trusted" / "police.pub"
    saved = trusted.read_text()
    trusted.unlink()  # the partner's key is not registered yet
    run_landing_sensor_once(home)
    assert quarantined(home)[env.name]["check"] == "unknown_partner"
    trusted.write_text(saved)  # the steward registers it
    from typer.testing import CliRunner

    from vpdc.cli import app

    res = CliRunner().invoke(app, ["quarantine", "retry", env.name, "--home", str(home.root), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["status"] == "loaded"
    assert (home.quarantine / f"{env.stem}.retry1.vpdc.previous-reason.json").exists()


def test_dagster_yaml_loads_through_a_real_instance(home):
    import dagster as dg

    from orchestration.runner import configure_environment

    configure_environment(home)
    with dg.DagsterInstance.get() as instance:
        assert instance.root_directory == str(home.dagster)
        cfg = instance.get_concurrency_config()
        assert cfg.pool_config.default_pool_limit == 1
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
    assert "enabled: false" in (home.dagster / "dagster.yaml").read_text()


def test_validation_results_carry_no_record_values(home):
    run_landing_sensor_once(home)
    for report in (home.reports / "validation").glob("*.json"):
        text = report.read_text()
        assert "partial_unexpected" not in text and "unexpected_list" not in text
        data = json.loads(text)
        assert set(data["checks"][0]) == {"check", "column", "severity", "passed", "element_count",
                                          "unexpected_count", "detail"}


def _identifier_values(home_root: Path) -> dict[str, set[str]]:
    """Every raw name, date of birth, SSN and street address in the synthetic person extracts, as the
    partner wrote it and in the forms the kit normalises it to (upper case, digits only, ISO date)."""
    import pyarrow.csv as pacsv

    from linkage.encoding import extract_types
    from linkage.encoding.normalise import parse_date
    from vpdc.config import SOURCES

    found: dict[str, set[str]] = {"name": set(), "dob": set(), "ssn": set(), "address": set()}
    for partner in SOURCES:
        for x in extract_types(partner):
            prof = load_profile(partner, x)
            if prof.kind != "persons":
                continue
            ids = prof.identifiers
            for f in (home_root / "partners" / partner).glob(f"*/{prof.file}"):
                t = pacsv.read_csv(f, parse_options=pacsv.ParseOptions(delimiter=prof.delimiter),
                                   convert_options=pacsv.ConvertOptions(
                                       column_types={c: pa.string() for c in prof.expected_columns()}))
                for role in ("first_name", "middle_name", "last_name", "formatted_name"):
                    if ids.get(role):
                        for v in t.column(ids[role]).to_pylist():
                            if v:
                                found["name"] |= {v, v.upper()} | set(v.replace(",", " ").split())
                for v in t.column(ids["dob"]).to_pylist():
                    if v:
                        found["dob"].add(v)
                        try:
                            d = parse_date(v, ids.get("dob_format", "%Y-%m-%d"), latest=TODAY)
                        except Exception:
                            continue
                        if d:
                            found["dob"] |= {d.isoformat(), d.strftime("%Y%m%d"), d.strftime("%m/%d/%Y")}
                if ids.get("ssn"):
                    for v in t.column(ids["ssn"]).to_pylist():
                        if v:
                            found["ssn"] |= {v, "".join(ch for ch in v if ch.isdigit())}
                for v in t.column(ids["address"]).to_pylist():
                    if v:
                        found["address"] |= {v, v.upper()}
    return found


def _leaks(t: pa.Table, footer: str, long_values: set[str], short_values: set[str]) -> set[str]:
    """Identifier values found in a decoded payload. Values of 6+ characters may not occur anywhere inside
    a cell; shorter ones (Li, Ng, initials) may not be a whole cell or a whole word of one: chance puts
    short strings inside base64 tokens."""
    cells = {v if isinstance(v, str) else v.decode("latin-1")
             for col in t.columns for v in col.unique().to_pylist() if isinstance(v, (str, bytes))}
    cells.add(footer)
    words = {w for c in cells for w in c.split()}
    return {v for v in long_values if any(v in c for c in cells)} | (short_values & (cells | words))


def test_no_raw_name_dob_ssn_or_address_of_the_synthetic_extracts_is_in_any_envelope_payload(sent_home):
    """The issue's scan: open every envelope of the synthetic collaborative and look for each identifier,
    in decoded cells (Parquet pages are compressed: a byte scan would prove nothing) and in the footer."""
    from governance.transfer import open_envelope

    secrets = _identifier_values(sent_home.root)
    assert min(len(v) for v in secrets.values()) > 100  # the scan has something to find
    long_values = {v for vals in secrets.values() for v in vals if len(v) >= 6}
    short_values = {v for vals in secrets.values() for v in vals if 2 <= len(v) < 6}
    keyring = KeyRing(sent_home.keys)
    scanned, first = 0, None
    for env in sorted(sent_home.landing().glob("*/*.vpdc")):
        with open_envelope(env, keyring) as opened:
            pf = pq.ParquetFile(opened.payload)
            t = pf.read()
            footer = str(pf.metadata.metadata or {}) + str(pf.schema_arrow)
        leaks = _leaks(t, footer, long_values, short_values)
        assert not leaks, f"{env.name}: {len(leaks)} identifier values found in the payload"
        scanned += t.num_rows
        first = first or t
    assert scanned > 1000
    # the scan can fail: a payload with one name, one SSN or one DOB slipped into a content column is caught
    name, ssn, dob = (sorted(v for v in secrets[k] if len(v) >= 6)[0] for k in ("name", "ssn", "dob"))
    for planted in (name, ssn, dob):
        bad = first.append_column("NOTE", pa.array([f"see {planted}"] + [None] * (first.num_rows - 1)))
        assert planted in _leaks(bad, "", long_values, short_values)
