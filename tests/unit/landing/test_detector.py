import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envelope.keys import LinkageSecret
from landing.detector import DetectorRules, scan_batches, suspicious_column_name
from partner_kit.encode import Encoder

ENC = Encoder(LinkageSecret.from_master("v1", b"s" * 32))


def scan(cols: dict, **kw):
    return scan_batches([pa.record_batch({k: pa.array(v, pa.string()) for k, v in cols.items()})], **kw)


@pytest.mark.parametrize("name", ["FNAME", "LAST_NAME", "PAT_FIRST_NAME", "DOB", "BIRTH_DATE", "SSN", "PHONE",
                                  "HOME_ADDRESS", "STREET", "EMAIL", "MRN", "NAME"])
def test_identifier_column_names_are_suspicious(name):
    assert suspicious_column_name(name)


@pytest.mark.parametrize("name", ["RACE_CD", "ZIP", "CENSUS_TRACT", "ROLE", "SERVICE_CD", "enc_fn_full",
                                  "HOME_ZIP", "DEPT", "INCIDENT_DT", "birth_year", "SCHOOL_CODE"])
def test_content_column_names_are_not(name):
    assert not suspicious_column_name(name)


@pytest.mark.parametrize(("values", "kind"), [
    (["123-45-6789", "987-65-4321", "234-56-7890"], "ssn"),
    (["(704) 555-0100", "704-555-0101", "704.555.0102"], "phone"),
    (["1990-03-07", "03/07/1990", "07-MAR-1990"], "date_in_clear"),
    (["1200 N Tryon St", "55 Beatties Ford Rd", "9 Elm Street Apt 4"], "street_address"),
    (["a@b.org", "x.y@z.com", "q@w.net"], "email"),
    (["SMITH, JOHN", "Maria Garcia", "JAMES"], "name"),
])
def test_plaintext_values_are_found(values, kind):
    findings = scan({"FREE_TEXT": values * 10})
    assert [(f.column, f.kind) for f in findings] == [("FREE_TEXT", kind)]
    assert all(v not in str(findings[0]) for v in values)  # findings never carry values


def test_declared_code_values_are_not_names():
    codes = ["White", "Black or African American", "Other", "Declined"]
    assert scan({"RACE_DISP": codes * 10}, known_values={"RACE_DISP": set(codes)}) == []


@settings(max_examples=30)
@given(st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=12), min_size=1, max_size=50))
def test_tokens_of_names_never_look_like_plaintext(names):
    import datetime

    tokens = [ENC.encode_record({"first": n, "last": n, "dob": datetime.date(1990, 1, 1)}, "A" * 20)
              for n in names]
    assert scan({"enc_x": [t["enc_fn_full"] for t in tokens] + [t["enc_ln_full"] for t in tokens]}) == []


@settings(max_examples=30)
@given(st.lists(st.from_regex(r"^[0-8][0-9]{2}-[0-9]{2}-[0-9]{4}$", fullmatch=True), min_size=3, max_size=30))
def test_ssns_in_the_clear_are_always_found(ssns):
    assert [f.kind for f in scan({"X": ssns})] == ["ssn"]


def test_a_stray_date_or_name_below_threshold_is_tolerated():
    values = ["ok"] * 1000 + ["1990-01-02", "Smith"]
    assert scan({"X": values}, rules=DetectorRules(min_share=0.01, min_count=3)) == []


@pytest.mark.parametrize("value,kind", [("123-45-6789", "ssn"), ("(704) 555-0134", "phone"),
                                        ("someone@example.org", "email")])
def test_a_single_ssn_phone_or_email_in_the_clear_is_refused(value, kind):
    values = ["ok"] * 100_000 + [value]
    assert [(f.kind, f.count) for f in scan({"X": values})] == [(kind, 1)]
