import csv
import gc
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from partner_kit import Encoder, SchemaError, encode_extract, load_profile
from partner_kit import extract as kit_module
from partner_kit.encode import ENCODING_SCHEME
from partner_kit.geocode import AddressPoints
from tests.conftest import TODAY

HEADER = ["PERSON_ID", "LNAME", "FNAME", "MNAME", "SFX", "DOB", "SEX", "RACE", "ETHNICITY", "SSN", "ADDRESS", "ZIP"]
ROWS = [
    ["PID-2093571", "García-López", "José", "A", "", "19900307", "M", "W", "H", "234-56-7890", "1 Elmwood St",
     "28206"],
    ["P2", "Smith", "John", "", "JR", "19851313", "M", "B", "N", "", "12 Elm St", "28208"],  # bad DOB
    ["P3", "", "", "", "", "20000101", "F", "B", "N", "", "", ""],  # no name
    ["", "Doe", "Jane", "", "", "19700101", "F", "W", "N", "", "", ""],  # no id
    ["P5", "Nguyen", "Lan", "", "", "", "F", "A", "N", "", "", "28205"],  # no DOB: still encodable
]


def write_csv(path: Path, header, rows, delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_encode_extract_writes_encodings_content_and_rejects(tmp_path, keyring):
    src = write_csv(tmp_path / "persons.csv", HEADER, ROWS)
    out = tmp_path / "out" / "persons.parquet"
    s = encode_extract(load_profile("police", "persons"), src, out, Encoder(keyring.linkage_secret()), today=TODAY)
    assert (s.rows_read, s.rows_encoded) == (5, 3)
    # a date of birth that is no date is kept as missing (counted), never a reason to drop the record
    assert dict(s.rejected) == {"name_missing": 1, "record_id_missing": 1}
    assert dict(s.notes) == {"dob_date_format_kept_as_missing": 1}
    t = pq.read_table(out)
    assert t.column("birth_year").to_pylist() == [1990, None, None]
    assert t.column("RACE").to_pylist() == ["W", "B", "A"]
    assert t.column("enc_dob_full").null_count == 2 and t.column("enc_fn_full").null_count == 0
    assert set(t.column("linkage_key_version").to_pylist()) == {"v1"}
    assert set(t.column("enc_scheme").to_pylist()) == {ENCODING_SCHEME}
    rejects = list(csv.DictReader(open(s.rejects)))
    assert [(r["row"], r["field"], r["rule"]) for r in rejects] == [
        ("4", "FNAME+LNAME", "name_missing"), ("5", "PERSON_ID", "record_id_missing")]


def test_encoded_payload_holds_no_plaintext_identifier(tmp_path, keyring):
    src = write_csv(tmp_path / "persons.csv", HEADER, ROWS)
    out = tmp_path / "persons.parquet"
    encode_extract(load_profile("police", "persons"), src, out, Encoder(keyring.linkage_secret()), today=TODAY)
    # Scan decoded cells, not the file's bytes: Parquet pages are compressed (a plaintext in them would not
    # show in the raw bytes), and short strings turn up by chance in compressed bytes and in base64 tokens.
    t = pq.read_table(out)
    cells = [v if isinstance(v, str) else v.decode("latin-1")
             for col in t.columns for v in col.to_pylist() if isinstance(v, (str, bytes))]
    cells.append(Path(str(out).replace(".parquet", ".rejects.csv")).read_text())
    for secret_value in ["GARCIA", "García", "LOPEZ", "Jose", "JOSE", "234567890", "234-56-7890", "19900307",
                         "1990-03-07", "Elmwood", "ELMWOOD", "PID-2093571", "Nguyen", "NGUYEN"]:
        assert not [c for c in cells if secret_value in c], secret_value
    assert not {"FNAME", "LNAME", "MNAME", "DOB", "SSN", "ADDRESS", "PERSON_ID"} & set(t.column_names)
    # and the scan can fail: the content column RACE does come through
    assert "W" in t.column("RACE").to_pylist()


def test_unexpected_column_refuses_whole_file(tmp_path, keyring):
    src = write_csv(tmp_path / "persons.csv", HEADER + ["MOTHER_NAME"], [r + ["X"] for r in ROWS])
    out = tmp_path / "persons.parquet"
    with pytest.raises(SchemaError, match=r"persons.csv: unexpected columns \['MOTHER_NAME'\]"):
        encode_extract(load_profile("police", "persons"), src, out, Encoder(keyring.linkage_secret()), today=TODAY)
    assert not out.exists()


def test_missing_column_and_empty_file_are_refused(tmp_path, keyring):
    enc = Encoder(keyring.linkage_secret())
    src = write_csv(tmp_path / "persons.csv", HEADER[:-1], [r[:-1] for r in ROWS])
    with pytest.raises(SchemaError, match=r"missing columns \['ZIP'\]"):
        encode_extract(load_profile("police", "persons"), src, tmp_path / "o.parquet", enc, today=TODAY)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SchemaError, match="empty"):
        encode_extract(load_profile("police", "persons"), empty, tmp_path / "o.parquet", enc, today=TODAY)


def test_crash_midway_leaves_no_partial_output(tmp_path, keyring, monkeypatch):
    src = write_csv(tmp_path / "persons.csv", HEADER, [["P%d" % i, "Doe", "Jo", "", "", "19800101", "M", "W", "N",
                                                        "", "", ""] for i in range(5000)])
    out = tmp_path / "o" / "persons.parquet"
    real, calls = kit_module._encode_batch, []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(kit_module, "_encode_batch", crash_on_second)
    with pytest.raises(RuntimeError):
        encode_extract(load_profile("police", "persons"), src, out, Encoder(keyring.linkage_secret()),
                       today=TODAY, block_size=4096)
    assert len(calls) == 2
    assert list(out.parent.iterdir()) == []
    assert gc.isenabled()  # the kit pauses the garbage collector while encoding, and restores it on a crash too


def test_hospital_b_formatted_names_and_pipe_delimiter(tmp_path, keyring):
    header = ["PERSON_ID", "NAME_FULL_FORMATTED", "BIRTH_DT_TM", "SEX_CD", "SSN", "RACE_DISP", "ETHNIC_GRP_DISP",
              "STREET_ADDR", "ZIPCODE"]
    rows = [["1", "SMITH JR, JOHN A", "07-MAR-1994", "Male", "", "White", "Not Hispanic or Latino", "", "28202"]]
    src = write_csv(tmp_path / "patients.csv", header, rows, delimiter="|")
    out = tmp_path / "p.parquet"
    enc = Encoder(keyring.linkage_secret())
    s = encode_extract(load_profile("hospital_b", "patients"), src, out, enc, today=TODAY,
                       address_points=AddressPoints())
    assert s.rows_encoded == 1
    t = pq.read_table(out).to_pylist()[0]
    want = enc.encode_record({"first": "JOHN", "last": "SMITH", "middle_init": "A", "suffix": "JR",
                              "dob": date(1994, 3, 7), "sex": "M", "zip": "28202", "name_words": "JOHN SMITH"},
                             t["source_record_id"])
    assert {c: t[c] for c in want} == want
    assert t["birth_year"] == 1994


def test_events_reference_the_same_pseudonymous_person_id(tmp_path, keyring):
    enc = Encoder(keyring.linkage_secret())
    persons = write_csv(tmp_path / "persons.csv", HEADER, ROWS[:1])
    ev_header = ["INCIDENT_ID", "PERSON_ID", "ROLE", "OFFENSE_CD", "VIOLENT_FLAG", "FIREARM_FLAG", "DOMESTIC_FLAG",
                 "INCIDENT_DT", "CENSUS_TRACT", "ZIP"]
    events = write_csv(tmp_path / "ip.csv", ev_header, [
        ["I20250000001", "PID-2093571", "VIC", "13A", "Y", "Y", "N", "2025-06-01 22:10", "37119001100", "28206"],
        ["I20250000002", "PID-2093571", "SUS", "13B", "Y", "N", "N", "June 3", "37119001100", "28206"]])
    encode_extract(load_profile("police", "persons"), persons, tmp_path / "p.parquet", enc, today=TODAY)
    s = encode_extract(load_profile("police", "incident_persons"), events, tmp_path / "e.parquet", enc, today=TODAY)
    assert dict(s.rejected) == {"date_format": 1}
    p = pq.read_table(tmp_path / "p.parquet").to_pylist()[0]
    e = pq.read_table(tmp_path / "e.parquet").to_pylist()[0]
    assert e["person_record_id"] == p["source_record_id"]
    assert e["INCIDENT_DT"].isoformat() == "2025-06-01T22:10:00"


def test_content_strings_are_trimmed_and_a_blank_required_one_is_rejected(tmp_path, keyring):
    header = ["STUDENT_ID", "SCHOOL_YEAR", "SCHOOL_CODE", "GRADE_LEVEL", "DAYS_ENROLLED", "DAYS_ABSENT"]
    rows = [["S1", " 2024-2025 ", " 301\u3000", "09", "180", "4"],
            ["S2", "2024-2025", "302", " ", "180", "x"],  # bad int → rejected
            ["S3", "  ", "301", "11", "180", "2"]]  # required SCHOOL_YEAR blank
    src = write_csv(tmp_path / "enrollments.csv", header, rows)
    out = tmp_path / "e.parquet"
    s = encode_extract(load_profile("schools", "enrollments"), src, out, Encoder(keyring.linkage_secret()),
                       today=TODAY)
    assert (s.rows_read, s.rows_encoded) == (3, 1)
    t = pq.read_table(out).to_pylist()
    assert (t[0]["SCHOOL_YEAR"], t[0]["SCHOOL_CODE"], t[0]["GRADE_LEVEL"]) == ("2024-2025", "301", "09")
    rejects = {(r["row"], r["field"], r["rule"]) for r in csv.DictReader(open(s.rejects))}
    assert rejects == {("3", "DAYS_ABSENT", "int_format"), ("4", "SCHOOL_YEAR", "required"),
                       ("4", "STUDENT_ID+SCHOOL_YEAR+SCHOOL_CODE", "record_id_missing")}


def test_a_mistyped_street_type_gives_the_same_address_token(tmp_path, keyring):
    """Scheme 7 (ADR 0018): the kit standardises the street type before encoding, so one typo in STREET, a space
    inside it or a type glued to the name does not make one household two addresses; another street stays apart."""
    rows = [["A1", "Hand", "Ethan", "", "", "19411222", "M", "W", "N", "", address, "28206"]
            for address in ("1 Lambrigg Sitreet", "1 LAMBRIGG STREET", "1 Lambrigg S treet", "1 Lambriggstreet",
                            "1 Lambrigg Crescent", "2 Lambrigg Street")]
    for i, row in enumerate(rows):
        row[0] = f"A{i}"
    src = write_csv(tmp_path / "persons.csv", HEADER, rows)
    out = tmp_path / "persons.parquet"
    encode_extract(load_profile("police", "persons"), src, out, Encoder(keyring.linkage_secret()), today=TODAY)
    tokens = pq.read_table(out).column("enc_addr").to_pylist()
    assert len(set(tokens[:4])) == 1 and len(set(tokens)) == 3
