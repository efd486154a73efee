"""A partner writes and checks its own profile; extracts in any declared text encoding are read; an undeclared,
undecodable byte rejects its row (naming the column), never the file and never with a traceback."""

import csv
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from partner_kit import Encoder, ProfileError, encode_extract, load_profile
from partner_kit.profile_check import check_profile
from partner_kit.profiles import parse_profile, partners
from tests.conftest import TODAY
from tests.unit.partner_kit.test_kit import HEADER

ROWS = [["P1", "Müller", "José", "Ñ", "", "19900307", "M", "W", "H", "234-56-7890", "1 Elm St", "28206"],
        ["P2", "Smith", "Zoë", "", "JR", "19850303", "M", "B", "N", "", "12 Elm St", "28208"],
        ["P3", "O’Brien", "Siobhán", "", "", "20000101", "F", "B", "N", "", "", "28205"]]


def write(path: Path, rows, encoding: str) -> Path:
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def site_profile(tmp_path: Path, **changes) -> Path:
    """A site's own copy of the police profile with ``changes`` made to its persons extract."""
    raw = json.loads((Path(__file__).resolve().parents[3] / "partner_kit" / "profiles" / "police.json").read_text())
    raw["extracts"]["persons"].update(changes)
    d = tmp_path / "profiles"
    d.mkdir(exist_ok=True)
    (d / "police.json").write_text(json.dumps(raw))
    return d


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-8-sig", "utf-8"])
def test_extracts_in_a_declared_encoding_encode_like_utf8(tmp_path, keyring, encoding):
    enc = Encoder(keyring.linkage_secret())
    reference = encode_extract(load_profile("police", "persons"), write(tmp_path / "ref.csv", ROWS, "utf-8"),
                               tmp_path / "ref.parquet", enc, today=TODAY)
    rows = [[v.replace("’", "'") if encoding == "latin-1" else v for v in r] for r in ROWS]  # latin-1 has no ’
    profiles = site_profile(tmp_path, encoding=encoding.replace("utf-8-sig", "utf-8"))
    s = encode_extract(load_profile("police", "persons", profiles), write(tmp_path / "x.csv", rows, encoding),
                       tmp_path / "x.parquet", enc, today=TODAY)
    assert s.rows_encoded == reference.rows_encoded == 3 and not s.rejected
    got, want = pq.read_table(tmp_path / "x.parquet"), pq.read_table(tmp_path / "ref.parquet")
    assert got.column("enc_fn_full").to_pylist() == want.column("enc_fn_full").to_pylist()  # José = José
    if encoding != "latin-1":
        assert got.column("enc_ln_full").to_pylist() == want.column("enc_ln_full").to_pylist()


def test_an_undeclared_undecodable_byte_rejects_only_its_row_naming_the_column(tmp_path, keyring):
    path = write(tmp_path / "x.csv", ROWS, "utf-8")
    data = path.read_bytes().replace("Müller".encode(), "M\xfcller".encode("latin-1"))  # one cp1252/latin-1 byte
    path.write_bytes(data)
    s = encode_extract(load_profile("police", "persons"), path, tmp_path / "x.parquet", Encoder(keyring.linkage_secret()),
                       today=TODAY)
    assert s.rows_encoded == 2 and s.rejected == {"undecodable_text": 1}
    rejects = list(csv.DictReader(open(tmp_path / "x.rejects.csv")))
    assert rejects == [{"row": "2", "field": "LNAME", "rule": "undecodable_text",
                        "message": "a value is not valid utf-8 text"}]
    assert "ller" not in (tmp_path / "x.rejects.csv").read_text()  # never the value


@given(st.binary(min_size=1, max_size=40))
def test_any_bytes_in_a_name_give_an_encoded_row_or_a_reject_never_a_crash(tmp_path_factory, session_keyring, raw):
    tmp = tmp_path_factory.mktemp("bytes")
    keys = session_keyring
    path = write(tmp / "x.csv", ROWS[:1], "utf-8")
    cell = raw.replace(b",", b"").replace(b'"', b"").replace(b"\n", b"").replace(b"\r", b"")
    path.write_bytes(path.read_bytes().replace("Müller".encode(), cell))
    s = encode_extract(load_profile("police", "persons"), path, tmp / "x.parquet", Encoder(keys.linkage_secret()),
                       today=TODAY)
    assert s.rows_read == 1 and s.rows_encoded + sum(s.rejected.values()) == 1


def test_a_site_profile_is_used_before_the_shipped_one_and_adds_partners(tmp_path):
    d = site_profile(tmp_path, file="people.csv")
    assert load_profile("police", "persons", d).file == "people.csv"
    assert load_profile("police", "persons").file == "persons.csv"
    raw = json.loads((d / "police.json").read_text()) | {"partner": "fire_dept"}
    (d / "fire_dept.json").write_text(json.dumps(raw))
    assert "fire_dept" in partners(d) and "fire_dept" not in partners()


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "people"}, "kind"), ({"file": "../../etc/passwd"}, "file"), ({"delimiter": "ab"}, "delimiter"),
    ({"encoding": "klingon"}, "encoding"), ({"schema_version": "v1"}, "schema_version"),
    ({"record_id": {"columns": []}}, "record_id"), ({"identifiers": {"shoe_size": "X"}}, "shoe_size"),
    ({"content": {"X": {"type": "blob"}}}, "X"), ({"content": {"X": {"type": "string", "pattern": "("}}}, "pattern"),
    ({"colour": "red"}, "colour"),
])
def test_a_malformed_profile_is_refused_naming_the_field(change, field):
    ex = json.loads((Path(__file__).resolve().parents[3] / "partner_kit" / "profiles" / "police.json").read_text())
    with pytest.raises(ProfileError, match=field):
        parse_profile("police", "persons", ex["extracts"]["persons"] | change, source="police.json")


def test_every_shipped_profile_declares_its_content_values_or_patterns():
    """No free-text content column: free text is where identifiers hide (the landing zone refuses it too)."""
    for p in partners():
        for e in json.loads((Path(__file__).resolve().parents[3] / "partner_kit" / "profiles" / f"{p}.json")
                            .read_text())["extracts"]:
            for col, spec in load_profile(p, e).content.items():
                assert spec["type"] != "string" or "values" in spec or "pattern" in spec, (p, e, col)


def test_profile_check_reports_by_column_and_never_shows_a_value(tmp_path):
    sample = write(tmp_path / "sample.csv", ROWS + [["P4", "Doe", "Jane", "", "", "31/12/1990", "X", "Q", "N", "",
                                                      "", "2820"]], "utf-8")
    report = check_profile("police", "persons", sample, today=TODAY)
    by = {(c.check, c.column): c for c in report.checks}
    assert report.rows == 4 and not report.passed
    assert by[("content", "RACE")].status == "fail" and "1 values outside" in by[("content", "RACE")].detail
    assert by[("content", "ZIP")].status == "fail" and "pattern" in by[("content", "ZIP")].detail
    assert by[("identifier dob", "DOB")].status == "fail" and "1 in another format" in by[("identifier dob", "DOB")].detail
    assert by[("identifier sex_map", "SEX")].status == "fail"
    text = json.dumps(report.as_dict())
    assert not [v for row in ROWS for v in row if len(v) > 3 and v in text]


def test_profile_check_says_what_to_fix_for_a_wrong_encoding_and_an_extra_column(tmp_path):
    sample = write(tmp_path / "sample.csv", ROWS, "cp1252")
    report = check_profile("police", "persons", sample, today=TODAY)
    enc = next(c for c in report.checks if c.check == "encoding")
    assert enc.status == "fail" and "cp1252" in enc.detail
    shutil.copy(sample, tmp_path / "extra.csv")
    lines = (tmp_path / "extra.csv").read_bytes().split(b"\r\n")
    lines = [lines[0] + b",NOTES"] + [ln + b",x" for ln in lines[1:] if ln]
    (tmp_path / "extra.csv").write_bytes(b"\r\n".join(lines) + b"\r\n")
    report = check_profile("police", "persons", tmp_path / "extra.csv", today=TODAY)
    header = next(c for c in report.checks if c.check == "header")
    assert header.status == "fail" and "NOTES" in header.detail
