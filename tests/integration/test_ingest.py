"""Ingestion through real Dagster runs (landing sensor → in-process runs) against real DuckDB files."""

import contextlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from envelope.format import read_manifest, seal_envelope
from envelope.keys import PartnerKeyRing, WarehouseKeyRing, generate_signing_key, install_transport_key
from landing.archive import entry_manifest, open_part
from landing.ingest import ingest_envelope, quarantine_reason
from orchestration.runner import run_landing_sensor_once
from partner_kit import ENCODING_COLUMNS, load_profile
from tests.conftest import TODAY
from tests.integration.conftest import envelopes
from workspace import Home

pytestmark = pytest.mark.integration
TODAY_NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def keep_only(home: Home, keep: list[Path]) -> None:
    """Hold back every other envelope so a test ingests only what it is about."""
    held = home.root / "held"
    for f in home.landing().glob("*/*.vpdc"):
        if f not in keep:
            (held / f.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.move(str(f), held / f.parent.name / f.name)


def reseal(home: Home, table: pa.Table, like: Path, *, schema_version: str | None = None, partner: str | None = None,
           keyring: PartnerKeyRing | None = None, row_count: int | None = None, name: str = "x") -> Path:
    m = read_manifest(like)
    tmp = home.root / f"{name}.parquet"
    pq.write_table(table, tmp)
    env = seal_envelope(tmp, partner=partner or m.partner, extract_type=m.extract_type, period=m.period,
                        schema_version=schema_version or m.schema_version,
                        row_count=table.num_rows if row_count is None else row_count,
                        linkage_key_version=m.linkage_key_version,
                        keyring=keyring or PartnerKeyRing(home.partner_keys(partner or m.partner)),
                        out_dir=home.landing(partner or m.partner), extra=m.extra)
    tmp.unlink()
    return env


def encoded(home: Home, envelope: Path) -> pa.Table:
    """The payload inside an envelope (decrypted with the warehouse key, as a test fixture only)."""
    from envelope.format import open_envelope

    with open_envelope(envelope, WarehouseKeyRing(home.keys)) as opened:
        return pq.read_table(opened.payload)


def quarantined(home: Home) -> dict[str, dict]:
    return {f.name: quarantine_reason(f) for f in home.quarantine.glob("*.vpdc")}


def wh(home: Home, sql: str, params=None):
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_every_envelope_loads_the_zones_stay_separated_and_validation_keeps_no_value(home):
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
    # the validation reports of every load carry no record value (GX's unexpected-value lists are never kept)
    reports = list((home.reports / "validation").glob("*.json"))
    assert reports
    for report in reports:
        text = report.read_text()
        assert "partial_unexpected" not in text and "unexpected_list" not in text
        data = json.loads(text)
        assert set(data["checks"][0]) == {"check", "column", "severity", "passed", "element_count",
                                          "unexpected_count", "detail"}


def test_the_archive_keeps_the_zones_parts_apart_and_the_transport_key_cannot_rejoin_them(home):
    from envelope.format import MAGIC, verify_signed_manifest
    from envelope.keys import LinkageZoneKeyRing
    from landing.archive import ArchiveError, signed_manifest

    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    sent = encoded(home, env)
    assert run_landing_sensor_once(home)[0].success
    entry = home.archive / "police" / env.name
    assert sorted(p.name for p in entry.iterdir()) == ["content.part", "linkage.part", "manifest.json"]
    # the envelope itself (encodings and content together under the transport key) is kept in neither place
    assert not [p for d in (home.archive, home.landing()) for p in d.rglob("*")
                if p.is_file() and p.read_bytes()[:len(MAGIC)] == MAGIC]
    ring = WarehouseKeyRing(home.keys)
    transport = ring.transport_private_key()
    # the transport key opens the content part only, and it holds no encoding
    with open_part(entry, "content", transport) as p:
        content = pq.read_table(p)
    assert content.num_rows == sent.num_rows and not set(content.column_names) & set(ENCODING_COLUMNS)
    with pytest.raises(ArchiveError, match="only its own zone"), open_part(entry, "linkage", transport):
        pass
    # the linkage zone opens its own part with its own key: what the linkage zone holds, and nothing else
    zone = LinkageZoneKeyRing(home.linkage_keys)
    with pytest.raises(ArchiveError, match="only its own zone"), open_part(entry, "content", zone.archive_private_key()):
        pass
    with open_part(entry, "linkage", zone.archive_private_key()) as p:
        enc = pq.read_table(p)
    assert set(enc.column_names) <= {"source_record_id", "linkage_key_version", "source_record_id_prev",
                                     *ENCODING_COLUMNS}
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        held = con.execute("select source_record_id, enc_fn_full from encodings order by all").fetchall()
    assert sorted(zip(enc["source_record_id"].to_pylist(), enc["enc_fn_full"].to_pylist(), strict=True)) == held
    # even both zones' keys together do not join the parts: the linkage part's record ids are boundary labels
    assert not set(enc["source_record_id"].to_pylist()) & set(content["source_record_id"].to_pylist())
    # the partner's signature of what was sent still verifies
    assert verify_signed_manifest(*signed_manifest(entry), ring).envelope_id == entry_manifest(entry).envelope_id


def test_both_zones_rebuild_from_the_archive_each_with_its_own_key(home):
    from envelope.keys import LinkageZoneKeyRing
    from landing.archive import reload_entry
    from tests.integration.conftest import boundary

    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    assert run_landing_sensor_once(home)[0].success
    encodings = "select * exclude (load_id) from encodings order by source_record_id"
    content = "select * from raw.police__persons order by source_record_id"
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        lz_before = con.execute(encodings).fetchall()
    wh_before = wh(home, content)
    lost = home.root / "lost"
    lost.mkdir()
    res = reload_entry(home.archive / "police" / env.name, now=TODAY_NOW, boundary=boundary(home),
                       linkage_key=LinkageZoneKeyRing(home.linkage_keys).archive_private_key(),
                       content_key=WarehouseKeyRing(home.keys).transport_private_key(),
                       linkage_db=lost / "linkage.duckdb", warehouse_db=lost / "warehouse.duckdb")
    assert res.linkage_rows == res.warehouse_rows == len(wh_before) > 0
    with duckdb.connect(str(lost / "linkage.duckdb"), read_only=True) as con:
        assert con.execute(encodings).fetchall() == lz_before
    with duckdb.connect(str(lost / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(content).fetchall() == wh_before


def test_same_file_dropped_twice_loads_once(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    shutil.copy(env, env.with_name("copy-of-" + env.name))
    runs = run_landing_sensor_once(home)
    assert [r.job for r in runs] == ["ingest_job", "triage_job"]
    assert wh(home, "select count(*) from raw.loads")[0][0] == 1
    # the second copy does not linger in landing: it is refused as a replay, kept and audited
    assert not list(home.landing().glob("*/*.vpdc"))
    assert [r["check"] for r in quarantined(home).values()] == ["replay"]
    assert run_landing_sensor_once(home) == []


def test_a_copy_arriving_after_its_envelope_loaded_is_refused_as_replay(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    spare = home.root / "spare.vpdc"
    shutil.copy(env, spare)
    assert run_landing_sensor_once(home)[0].success
    shutil.move(str(spare), home.landing("police") / "late-copy.vpdc")
    runs = run_landing_sensor_once(home)
    assert [r.job for r in runs] == ["triage_job"]
    assert quarantined(home)["late-copy.vpdc"]["check"] == "replay"
    assert wh(home, "select count(*) from raw.loads")[0][0] == 1


def test_same_envelope_twice_changes_nothing_and_is_refused_as_replay(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    copy = home.root / "copy.vpdc"
    shutil.copy(env, copy)
    assert run_landing_sensor_once(home)[0].success
    before = wh(home, "select * from raw.police__persons order by source_record_id")
    shutil.move(str(copy), home.landing("police") / "resent-copy.vpdc")
    out = ingest_envelope(home.landing("police") / "resent-copy.vpdc", home, WarehouseKeyRing(home.keys))
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


def test_unknown_partner_is_ignored_in_its_own_folder_and_quarantined_in_a_partners(home, tmp_path):
    fire = tmp_path / "fire-site" / "keys"  # a site the collaborative never registered
    generate_signing_key(fire)
    install_transport_key(fire, WarehouseKeyRing(home.keys).transport_public_hex())
    ring = PartnerKeyRing(fire)
    like = envelopes(home, "police", "persons")[0]
    keep_only(home, [])
    env = reseal(home, encoded(home, home.root / "held" / "police" / like.name), home.root / "held" / "police" / like.name,
                 partner="fire_dept", keyring=ring)
    # in a folder of its own, which is no partner's: ignored with a reason in the sensor's log, never loaded
    assert run_landing_sensor_once(home) == [] and env.exists()
    # dropped into a partner's folder: refused (its manifest names no partner of that folder) and quarantined
    shutil.move(str(env), home.landing("police") / env.name)
    runs = run_landing_sensor_once(home)
    assert len(runs) == 1 and runs[0].job == "triage_job" and not runs[0].success
    assert quarantined(home)[env.name]["check"] in ("unknown_partner", "partner_mismatch")


def test_wrong_schema_version_is_quarantined(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [])
    held = home.root / "held" / "police" / env.name
    bad = reseal(home, encoded(home, held), held, schema_version="police.persons/2")
    runs = run_landing_sensor_once(home)
    assert not runs[0].success
    reason = quarantined(home)[bad.name]
    assert reason["check"] == "validation" and "police.persons/2" in reason["detail"]


def test_envelope_of_an_older_kit_is_quarantined_naming_the_scheme_and_what_to_do(home):
    """A partner still on kit 0.3 (encoding scheme 2): refused with the scheme named, not only a missing column."""
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [])
    held = home.root / "held" / "police" / env.name
    m = read_manifest(held)
    old = encoded(home, held).drop_columns(["enc_nw_bf"])
    tmp = home.root / "old-kit.parquet"
    pq.write_table(old, tmp)
    bad = seal_envelope(tmp, partner=m.partner, extract_type=m.extract_type, period=m.period,
                        schema_version=m.schema_version, row_count=old.num_rows, linkage_key_version=m.linkage_key_version,
                        keyring=PartnerKeyRing(home.partner_keys("police")), out_dir=home.landing("police"),
                        extra=m.extra | {"encoding_scheme": "vpdc-encoding-v2", "kit": "vpdc-partner-kit 0.3.0"})
    runs = run_landing_sensor_once(home)
    assert not runs[0].success
    reason = quarantined(home)[bad.name]
    assert reason["check"] == "validation", reason
    assert "encoded with vpdc-encoding-v2" in reason["detail"] and "encode this period again" in reason["detail"]


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
    held = home.root / "held-original.vpdc"  # the partner's copy: the archive keeps the parts apart, not the envelope
    shutil.copy(env, held)
    run_landing_sensor_once(home)
    resent = reseal(home, encoded(home, held), held)
    run_landing_sensor_once(home)
    loads = wh(home, "select load_id, is_current, superseded_by from raw.loads order by created_at")
    second = entry_manifest(home.archive / "county" / resent.name).envelope_id
    assert loads == [(first.envelope_id, False, second), (second, True, None)]
    # both loads' rows are kept; analysts read the current one
    assert wh(home, "select count(distinct load_id) from raw.county__clients")[0][0] == 2
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        assert con.execute("select load_id from loads where is_current").fetchall() == [(second,)]


def test_a_zone_of_an_older_kit_takes_a_newer_kits_columns_without_losing_its_rows(home):
    """Upgrading the kit: the first scheme-3 envelope arrives at a linkage zone built from scheme 2 (no
    ``enc_nw_bf``). The column is added (blank for the older loads) and the rows land by name."""
    env = envelopes(home, "county", "clients")[0]
    keep_only(home, [env])
    held = home.root / "held-original.vpdc"
    shutil.copy(env, held)
    run_landing_sensor_once(home)
    with duckdb.connect(str(home.linkage_db)) as con:  # the zone as scheme 2 left it
        con.execute("alter table encodings drop column enc_nw_bf")
        con.execute("update encodings set enc_scheme = 'vpdc-encoding-v2'")
        before = con.execute("select count(*) from encodings").fetchall()[0][0]
    resent = reseal(home, encoded(home, held), held)
    runs = run_landing_sensor_once(home)
    assert all(r.success for r in runs), [r.error for r in runs]
    second = entry_manifest(home.archive / "county" / resent.name).envelope_id
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        rows = dict(con.execute("select load_id = ?, count(enc_nw_bf) from encodings group by 1", [second]).fetchall())
        n = con.execute("select count(*) from encodings where load_id = ?", [second]).fetchall()[0][0]
    assert rows == {False: 0, True: n} and n == before  # the old load kept, blank; the new one complete


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
    assert current == [(entry_manifest(home.archive / "county" / newer.name).envelope_id,)]


def linkage(home: Home, sql: str, params=None):
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@contextlib.contextmanager
def crash_at(hook: str):
    """Ingestion crashes at ``hook`` (a power cut) while the context is open."""
    import orchestration.defs.ingest.assets as assets_module

    real = assets_module.ingest_envelope

    def crashing(*args, **kwargs):
        def boom():
            raise RuntimeError(f"power cut ({hook})")
        return real(*args, **{**kwargs, hook: boom})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(assets_module, "ingest_envelope", crashing)
        yield


def test_crash_between_the_zones_leaves_no_partial_or_current_rows_and_rerun_completes(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    eid = read_manifest(env).envelope_id
    with crash_at("_load_hook"):  # after the linkage commit, before the warehouse transaction
        runs = run_landing_sensor_once(home)
    assert not runs[0].success and env.exists()  # still in landing, not quarantined
    assert not list(home.quarantine.glob("*.vpdc"))
    # the warehouse has nothing of it, and the linkage zone holds it only as a staged load, never current
    assert not home.warehouse_db.exists()  # its transaction never began: nothing of it (nor anything else)
    assert linkage(home, "select state, is_current from loads where load_id = ?", [eid]) == [("staged", False)]
    assert linkage(home, "select count(*) from encodings e join loads l using (load_id) where l.is_current") == [(0,)]

    rerun = run_landing_sensor_once(home)
    assert rerun[0].success and rerun[0].run_key.startswith(f"{eid}@") and rerun[0].run_key.endswith("#attempt2")
    rows = wh(home, "select count(*), count(distinct source_record_id) from raw.police__persons")[0]
    enc = linkage(home, "select count(*), count(distinct source_record_id) from encodings")[0]
    assert rows[0] == rows[1] == enc[0] == enc[1] == entry_manifest(home.archive / "police" / env.name).row_count
    assert linkage(home, "select state, is_current from loads") == [("complete", True)]


def test_crash_after_the_warehouse_commit_is_finished_by_the_rerun_not_refused_as_replay(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    eid = read_manifest(env).envelope_id
    spare = home.root / "spare.vpdc"
    shutil.copy(env, spare)
    with crash_at("_commit_hook"):  # the warehouse committed; linkage still staged; envelope not yet retired
        assert not run_landing_sensor_once(home)[0].success and env.exists()
    assert wh(home, "select load_id, is_current from raw.loads") == [(eid, True)]
    assert linkage(home, "select state from loads") == [("staged",)]

    rerun = run_landing_sensor_once(home)
    assert rerun[0].success, rerun[0].error
    assert not env.exists() and (home.archive / "police" / env.name).exists()
    assert not list(home.quarantine.glob("*.vpdc"))
    assert linkage(home, "select state, is_current from loads") == [("complete", True)]
    n = wh(home, "select count(*) from raw.police__persons")[0][0]
    assert linkage(home, "select count(*) from encodings")[0][0] == n == entry_manifest(home.archive / "police" / env.name).row_count
    # and once it is archived, a further copy is a replay again
    shutil.copy(spare, home.landing("police") / "again.vpdc")
    assert ingest_envelope(home.landing("police") / "again.vpdc", home, WarehouseKeyRing(home.keys)).check == "replay"


def test_staged_loads_are_completed_only_once_the_warehouse_has_them(home):
    from landing.load import complete_staged_loads

    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    with crash_at("_commit_hook"):
        run_landing_sensor_once(home)
    assert complete_staged_loads(home.linkage_db, home.warehouse_db) == [read_manifest(env).envelope_id]
    assert complete_staged_loads(home.linkage_db, home.warehouse_db) == []  # idempotent
    assert linkage(home, "select state, is_current from loads") == [("complete", True)]


def test_quarantine_retry_after_fixing_the_cause(home):
    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    trusted = home.keys / "partners" / "police.pub"
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

    from orchestration.runner import dagster_environment

    with dagster_environment(home), dg.DagsterInstance.get() as instance:
        assert instance.root_directory == str(home.dagster)
        cfg = instance.get_concurrency_config()
        assert cfg.pool_config.default_pool_limit == 1
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
    assert "enabled: false" in (home.dagster / "dagster.yaml").read_text()


def _identifier_values(home_root: Path) -> dict[str, set[str]]:
    """Every raw name, date of birth, SSN and street address in the synthetic person extracts, as the
    partner wrote it and in the forms the kit normalises it to (upper case, digits only, ISO date)."""
    import pyarrow.csv as pacsv

    from partner_kit import extract_types
    from partner_kit.normalise import parse_date
    from partner_kit.profiles import partners

    found: dict[str, set[str]] = {"name": set(), "dob": set(), "ssn": set(), "address": set()}
    for partner in tuple(partners()):
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
    short strings inside base64 tokens, and inside binary cells (a balanced Bloom filter is 64 random bytes,
    its latin-1 reading full of "words"), which are searched for the long values only."""
    # keyed tokens and pseudonymous ids are random base64url: any 6 letters occur in them by chance (about once in
    # a hundred runs of this test with fresh keys), so there an identifier leaks only as a whole cell
    random = {n for n in t.column_names if n.startswith("enc_") or n.endswith("record_id")}
    tokens = {v for n in random for v in t.column(n).unique().to_pylist() if isinstance(v, str)}
    text = {v for n in t.column_names if n not in random for v in t.column(n).unique().to_pylist()
            if isinstance(v, str)}
    binary = {v.decode("latin-1") for col in t.columns for v in col.unique().to_pylist() if isinstance(v, bytes)}
    text.add(footer)
    words = {w for c in text for w in c.split()}
    return ({v for v in long_values if any(v in c for c in text | binary)} | (short_values & (text | words))
            | ((long_values | short_values) & tokens))


def test_no_raw_name_dob_ssn_or_address_of_the_synthetic_extracts_is_in_any_envelope_payload(sent_home):
    """The issue's scan: open every envelope of the synthetic collaborative and look for each identifier,
    in decoded cells (Parquet pages are compressed: a byte scan would prove nothing) and in the footer."""
    from envelope.format import open_envelope

    secrets = _identifier_values(sent_home.root)
    assert min(len(v) for v in secrets.values()) > 100  # the scan has something to find
    long_values = {v for vals in secrets.values() for v in vals if len(v) >= 6}
    short_values = {v for vals in secrets.values() for v in vals if 2 <= len(v) < 6}
    keyring = WarehouseKeyRing(sent_home.keys)
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


def _everything_written_about_ingestion(home: Home) -> str:
    """Every place an ingestion run writes text about what it saw: Dagster's event log (asset and check
    metadata, step failures, logs), quarantine reasons, validation reports, ingest events, the audit chain."""
    import dagster as dg

    from governance.registry.db import Registry, sqlite_url
    from governance.registry.models import AuditEntry
    from orchestration.runner import dagster_environment

    parts = []
    with dagster_environment(home), dg.DagsterInstance.get() as instance:
        for run in instance.get_runs():
            for rec in instance.all_logs(run.run_id):
                parts.append(rec.to_json() if hasattr(rec, "to_json") else repr(rec))
    parts += [p.read_text() for p in home.quarantine.glob("*.json")]
    parts += [p.read_text() for p in (home.reports / "validation").glob("*")]
    parts.append(repr(wh(home, "select * from raw.ingest_events")))
    with Registry(sqlite_url(home.registry_db)).read() as s:
        parts += [repr((e.actor, e.action, e.subject, e.detail)) for e in s.query(AuditEntry)]
    return "\n".join(parts)


def test_refusals_and_loads_are_audited_in_the_hash_chain_without_record_values(home, sent_home):
    from governance.registry.audit import verify
    from governance.registry.db import Registry, sqlite_url
    from governance.registry.models import AuditEntry

    env = envelopes(home, "police", "persons")[0]
    other = home.root / "held" / "county" / envelopes(home, "county", "clients")[0].name
    keep_only(home, [env])
    t = encoded(home, other)
    secrets = _identifier_values(sent_home.root)
    names = sorted(v for v in secrets["name"] if len(v) >= 8 and " " in v)[: t.num_rows]
    assert len(names) >= 4
    planted = (names * (t.num_rows // len(names) + 1))[: t.num_rows]
    bad = reseal(home, t.append_column("CLIENT_FULL_NAME", pa.array(planted)), other)
    runs = run_landing_sensor_once(home)
    assert sorted(r.success for r in runs) == [False, True]

    with Registry(sqlite_url(home.registry_db)).read() as s:
        entries = [(e.actor, e.action, e.subject, e.detail) for e in s.query(AuditEntry).order_by(AuditEntry.seq)]
        assert verify(s).ok
    by_action = {a: (subj, d) for _, a, subj, d in entries}
    assert by_action["ingest.loaded"][0] == env.name and by_action["ingest.loaded"][1]["partner"] == "police"
    refused_subject, refused = by_action["refused.ingest"]
    assert refused_subject == bad.name and refused["check"] == "plaintext_identifier"
    assert "CLIENT_FULL_NAME" in refused["reason"]
    events = wh(home, "select file, status, check_name from raw.ingest_events order by file")
    assert sorted(events) == sorted([(env.name, "loaded", None), (bad.name, "quarantined", "plaintext_identifier")])

    written = _everything_written_about_ingestion(home)
    assert len(written) > 10_000  # the scan reads real event logs
    leaked = [n for n in set(planted) if n in written]
    assert not leaked, f"{len(leaked)} planted names reached logs, metadata, reasons, reports or the audit"


def test_quarantine_list_and_show_name_the_file_check_and_reason(home):
    from typer.testing import CliRunner

    from vpdc.cli import app

    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    data = bytearray(env.read_bytes())
    data[-10] ^= 0xFF  # flip a byte of the ciphertext
    env.write_bytes(bytes(data))
    run_landing_sensor_once(home)
    runner = CliRunner()
    listed = runner.invoke(app, ["quarantine", "list", "--home", str(home.root), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["file"], r["check"]) for r in rows] == [(env.name, quarantined(home)[env.name]["check"])]
    shown = runner.invoke(app, ["quarantine", "show", env.name, "--home", str(home.root), "--json"])
    assert shown.exit_code == 0, shown.output
    reason = json.loads(shown.stdout)
    assert reason["envelope_id"] == read_manifest(home.quarantine / env.name).envelope_id
    assert reason["check"] in ("checksum", "decrypt", "signature") and reason["detail"]
    missing = runner.invoke(app, ["quarantine", "show", "no-such.vpdc", "--home", str(home.root)])
    assert missing.exit_code != 0 and "no-such.vpdc: not in quarantine" in missing.output.replace("\n", "")


def test_an_envelope_whose_runs_keep_crashing_is_given_up_after_max_attempts(home):
    from orchestration.defs.ingest.sensors import MAX_ATTEMPTS, landing_run_requests

    env = envelopes(home, "police", "persons")[0]
    keep_only(home, [env])
    eid = read_manifest(env).envelope_id
    keys = []
    for crashes in range(MAX_ATTEMPTS + 1):
        reqs, _, given_up = landing_run_requests(home.landing(), home.root, set(),
                                                 crashed_runs=lambda e, f, n=crashes: n if e == eid else 0)
        keys.append([r.run_key for r in reqs])
        if crashes < MAX_ATTEMPTS:
            assert given_up == []
    from landing.arrivals import scan_landing

    key = f"{eid}@{scan_landing(home).arrivals[0].fingerprint()}"
    assert keys[:MAX_ATTEMPTS] == [[key], *([f"{key}#attempt{n + 1}"] for n in range(1, MAX_ATTEMPTS))]
    assert keys[MAX_ATTEMPTS] == [] and given_up == [str(env.relative_to(home.root))]
