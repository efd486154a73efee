"""The validation suite on small payloads made by the real kit (GX runs for real; no mocks)."""

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from envelope.format import Manifest
from landing.validation import ValidationSettings, validate_payload
from partner_kit import Encoder, encode_extract, load_profile
from tests.conftest import TODAY
from tests.unit.partner_kit.test_kit import HEADER, write_csv

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def manifest(rows: int, **kw) -> Manifest:
    base = dict(envelope_id="e" * 32, partner="police", extract_type="persons", period="2025-11",
                schema_version="police.persons/1", row_count=rows, payload_sha256="", payload_bytes=0,
                ciphertext_sha256="", ciphertext_bytes=0, signing_key_id="", transport_key_id="",
                linkage_key_version="v1", created_at="2026-11-21T00:00:00+00:00", wrapped_key="",
                extra={"bloom_bits": 512})
    return Manifest(**(base | kw))


def payload(tmp_path: Path, keyring, n: int, sex_blank_every: int = 0) -> Path:
    rows = [[f"P{i}", "Doe", "Jo", "", "", "19800101", "U" if sex_blank_every and i % sex_blank_every == 0 else "M",
             "W", "N", "", "", "28206"] for i in range(n)]
    src = write_csv(tmp_path / "persons.csv", HEADER, rows)
    out = tmp_path / "p.parquet"
    encode_extract(load_profile("police", "persons"), src, out, Encoder(keyring.linkage_secret()), today=TODAY)
    return out


def test_clean_payload_passes_every_check(tmp_path, keyring):
    p = payload(tmp_path, keyring, 50)
    report = validate_payload(p, load_profile("police", "persons"), manifest(50), now=NOW)
    assert report.passed, report.summary()
    assert {c.check for c in report.checks} >= {"schema_version", "column_types", "row_count", "unique", "columns",
                                                "token_format", "id_format", "key_version", "bloom_length", "value_set"}


@pytest.mark.parametrize(("n", "passed"), [(9, True), (400, False)])
def test_null_rate_ceiling_needs_enough_rows_to_judge(tmp_path, keyring, n, passed):
    p = payload(tmp_path, keyring, n, sex_blank_every=3)  # a third of sexes unknown: above the 10 % ceiling
    report = validate_payload(p, load_profile("police", "persons"), manifest(n), now=NOW)
    check = next(c for c in report.checks if c.key == "null_rate:enc_sex")
    assert check.passed is passed


def test_unaccepted_key_version_fails(tmp_path, keyring):
    p = payload(tmp_path, keyring, 5)
    report = validate_payload(p, load_profile("police", "persons"), manifest(5), now=NOW,
                              settings=ValidationSettings(accepted_key_versions=("v2",)))
    assert [c.check for c in report.failures()] == ["key_version_accepted"]


def test_wrong_bloom_length_fails(tmp_path, keyring):
    p = payload(tmp_path, keyring, 5)
    t = pq.read_table(p)
    short = pa.array([b[:32] for b in t["enc_fn_bf"].to_pylist()], pa.binary())
    pq.write_table(t.set_column(t.schema.get_field_index("enc_fn_bf"), "enc_fn_bf", short), p)
    report = validate_payload(p, load_profile("police", "persons"), manifest(5), now=NOW)
    assert "bloom_length:enc_fn_bf" in {c.key for c in report.failures()}


def test_future_event_dates_fail_the_date_range(tmp_path, keyring):
    header = ["SERVICE_ID", "CLIENT_ID", "DEPT", "SERVICE_CD", "SERVICE_START_DT", "SERVICE_END_DT"]
    src = write_csv(tmp_path / "s.csv", header, [["S1", "C1", "DSS", "SNAP", "01/01/2030", ""],
                                                 ["S2", "C1", "DSS", "SNAP", "01/01/2024", ""]])
    out = tmp_path / "s.parquet"
    encode_extract(load_profile("county", "services"), src, out, Encoder(keyring.linkage_secret()), today=TODAY)
    report = validate_payload(out, load_profile("county", "services"),
                              manifest(2, partner="county", extract_type="services", schema_version="county.services/1"),
                              now=NOW)
    bad = {c.key: c for c in report.failures()}
    assert bad["date_range:SERVICE_START_DT"].unexpected_count == 1


def test_validation_suite_command_lists_every_check_of_a_schema_with_its_engine():
    import json

    from typer.testing import CliRunner

    from partner_kit import ENCODING_COLUMNS, load_profile
    from vpdc.cli import app

    res = CliRunner().invoke(app, ["validation-suite", "--partner", "police", "--extract", "persons", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    gx = {(r["check"], r["column"]) for r in rows if r["engine"] == "great_expectations"}
    profile = load_profile("police", "persons")
    assert {("value_set", c) for c, spec in profile.content.items() if "values" in spec} <= gx
    assert ("key_version", "linkage_key_version") in gx and ("id_format", "source_record_id") in gx
    arrow = {(r["check"], r["column"]) for r in rows if r["engine"] == "arrow"}
    assert {c for check, c in arrow if check in ("token_format", "bloom_length")} == set(ENCODING_COLUMNS)
    unknown = CliRunner().invoke(app, ["validation-suite", "--partner", "nobody", "--extract", "x"])
    assert unknown.exit_code == 2 and "nobody" in unknown.output


def test_the_detectors_counts_give_the_same_encoding_checks_as_validation_alone(tmp_path, keyring):
    """Ingestion reads a payload's encoding columns once: the detector's counts stand in for validation's pass."""
    from landing.detector import scan_batches
    from landing.validation import keyed_spec

    p = payload(tmp_path, keyring, 400, sex_blank_every=3)
    t = pq.read_table(p)
    fn = t.column("enc_fn_full").to_pylist()
    fn[:3] = ["short", None, "!" * 16]  # ill-formed tokens and a null
    bf = t.column("enc_fn_bf").to_pylist()
    bf[5] = b"\x01" * 10  # a Bloom filter of the wrong length
    t = t.set_column(t.schema.get_field_index("enc_fn_full"), "enc_fn_full", pa.array(fn, pa.string()))
    t = t.set_column(t.schema.get_field_index("enc_fn_bf"), "enc_fn_bf", pa.array(bf, pa.binary()))
    pq.write_table(t, p)
    profile = load_profile("police", "persons")
    stats: dict = {}
    scan_batches(pq.ParquetFile(p).iter_batches(batch_size=100), keyed_columns=keyed_spec(profile), keyed_stats=stats)
    alone = validate_payload(p, profile, manifest(400), now=NOW)
    reused = validate_payload(p, profile, manifest(400), now=NOW, encoding_stats=stats)
    assert [(c.key, c.passed, c.element_count, c.unexpected_count) for c in reused.checks] == \
        [(c.key, c.passed, c.element_count, c.unexpected_count) for c in alone.checks]
    assert {c.key for c in alone.failures()} >= {"token_format:enc_fn_full", "bloom_length:enc_fn_bf",
                                                  "null_rate:enc_sex"}
