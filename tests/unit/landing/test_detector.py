"""The plaintext detector: identifier recognisers in content columns and the text test of keyed columns, down to
one row, with no false refusal of honest values (property tests over the kit's own encodings)."""

import unicodedata

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from envelope.keys import LinkageSecret
from landing.detector import KeyedColumn, recognise, scan_batches, suspicious_column_name
from landing.keyed import name_words
from partner_kit.encode import Encoder

ENC = Encoder(LinkageSecret.from_master("v1", b"s" * 32))
NAMES = sorted(w for w in name_words() if len(w) >= 3)
HONEST = ["28202", "37119005400", "610052", "2024-2025", "S06.9X1A", "X95.8", "1002-5;2106-3", "ASKU", "PK", "09"]
KEYED = {"enc_fn_full": KeyedColumn("token", 16), "source_record_id": KeyedColumn("id", 20),
         "enc_fn_bf": KeyedColumn("bloom", 64)}


def scan(cols: dict, **kw):
    return scan_batches([pa.record_batch({k: pa.array(v) for k, v in cols.items()})], **kw)


def one_among_honest(value: str, n: int = 2_000) -> list[tuple[str, str, int]]:
    """Scan a content column of ``n`` honest values and one planted value: (column, kind, rows) found."""
    return [(f.column, f.kind, f.count) for f in scan({"CODE": HONEST * (n // len(HONEST)) + [value]})]


@pytest.mark.parametrize("name", ["FNAME", "LAST_NAME", "PAT_FIRST_NAME", "DOB", "BIRTH_DATE", "SSN", "PHONE",
                                  "HOME_ADDRESS", "STREET", "EMAIL", "MRN", "NAME"])
def test_identifier_column_names_are_suspicious(name):
    assert suspicious_column_name(name)


@pytest.mark.parametrize("name", ["RACE_CD", "ZIP", "CENSUS_TRACT", "ROLE", "SERVICE_CD", "enc_fn_full",
                                  "HOME_ZIP", "DEPT", "INCIDENT_DT", "birth_year", "SCHOOL_CODE"])
def test_content_column_names_are_not(name):
    assert not suspicious_column_name(name)


def test_honest_code_and_pattern_values_are_never_identifiers():
    assert scan({"CODE": HONEST * 100}) == []
    codes = ["White", "Black or African American", "Other", "Declined", "LEE"]
    assert scan({"RACE_DISP": codes * 10}, known_values={"RACE_DISP": codes}) == []


_area = st.integers(1, 899).filter(lambda a: a != 666)
_ssn = st.tuples(_area, st.integers(1, 99), st.integers(1, 9999), st.sampled_from(["-", " ", ".", ""]))


@settings(max_examples=60)
@given(_ssn, st.sampled_from(["{}", "SSN {}", "{} MARIA", "610052 {}"]))
def test_an_ssn_in_any_layout_is_found_in_one_row(ssn, template):
    a, g, s, sep = ssn
    value = template.format(f"{a:03d}{sep}{g:02d}{sep}{s:04d}")
    assert ("CODE", "ssn", 1) in one_among_honest(value)


@pytest.mark.parametrize("value", ["000-12-3456", "666-12-3456"])
def test_a_dashed_ssn_layout_is_found_even_when_invalid(value):
    assert ("CODE", "ssn", 1) in one_among_honest(value)


@pytest.mark.parametrize("value", ["000123456", "666123456", "123004567", "123450000", "28202-1234"])
def test_undelimited_numbers_that_are_no_valid_ssn_are_not_ssns(value):
    assert "ssn" not in {k for _, k, _ in one_among_honest(value)}


_FORMATS = ["%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%m-%d-%Y", "%d-%b-%Y", "%B %d, %Y", "%b %d %Y", "%d %B %Y",
            "%Y/%m/%d", "%m%d%Y", "%d.%m.%Y"]


@settings(max_examples=80)
@given(st.dates(min_value=__import__("datetime").date(1920, 1, 1), max_value=__import__("datetime").date(2025, 12, 31)),
       st.sampled_from(_FORMATS), st.sampled_from(["{}", "MARIA GARCIA {}", "{}!", "born {}"]),
       st.sampled_from([str.upper, str.lower, str.title]))
def test_a_date_of_birth_in_any_partner_format_is_found_in_one_row(d, fmt, template, case):
    value = case(template.format(d.strftime(fmt)))
    assert ("CODE", "date_of_birth", 1) in one_among_honest(value)


def _accent(name: str) -> str:
    return name.replace("E", "É", 1).replace("A", "Á", 1)


@settings(max_examples=80)
@given(st.sampled_from(NAMES), st.sampled_from(NAMES),
       st.sampled_from(["{f} {l}", "{l}, {f}", "{l},{f}", "{f}", "{l}", "610052 {f} {l}", "{f} {l} 2011-11-16",
                        "{l}-{f}", "{f}_{l}"]),
       st.sampled_from([str.upper, str.lower, str.title, _accent, lambda s: unicodedata.normalize("NFD", _accent(s))]))
@example("MARIA", "GARCIA", "{l}, {f}", str.title)
def test_a_person_name_in_any_casing_order_or_accent_is_found_in_one_row(first, last, template, case):
    value = case(template.format(f=first, l=last))
    assert ("CODE", "name", 1) in one_among_honest(value)


@pytest.mark.parametrize(("value", "kind"), [
    ("1200 N Tryon St", "street_address"), ("55 Beatties Ford Rd.", "street_address"), ("9 ELM STREET APT 4", "street_address"),
    ("PO Box 1234", "street_address"), ("(704) 555-0134", "phone"), ("704-555-0134", "phone"), ("7045550134", "phone"),
    ("+1 704 555 0134", "phone"), ("someone@example.org", "email"), ("First.Last@Mail.Example.COM", "email"),
])
def test_addresses_phones_and_emails_are_found_in_one_row(value, kind):
    assert ("CODE", kind, 1) in one_among_honest(value)


def test_findings_count_rows_name_the_rule_and_never_carry_values():
    values = HONEST * 100 + ["MARIA GARCIA"] * 3 + ["123-45-6789"]
    findings = scan({"SCHOOL_CODE": values})
    assert sorted((f.kind, f.count, f.rule) for f in findings) == [("name", 3, "name_list"), ("ssn", 1, "ssn_formats")]
    text = " ".join(str(f) for f in findings)
    assert "MARIA" not in text and "6789" not in text and "SCHOOL_CODE" in text and "rule name_list" in text


# ------------------------------------------------------------------------------------- keyed columns
@settings(max_examples=40)
@given(st.lists(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ -'", min_size=1, max_size=30), min_size=1, max_size=200),
       st.lists(st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=12), min_size=1, max_size=200))
def test_the_kits_tokens_ids_and_bloom_filters_are_never_refused(names, ids):
    n = min(len(names), len(ids))
    cols = {"enc_fn_full": [ENC.token("name", x) for x in names[:n]],
            "source_record_id": [ENC.record_id("police/person", x) for x in ids[:n]],
            "enc_fn_bf": pa.array([ENC.bloom("name", x.strip() or "A") for x in names[:n]], pa.binary())}
    assert scan(cols, keyed_columns=KEYED) == []


def _pad(text: str, width: int, pad: str) -> str:
    return (text + pad * width)[:width]


@settings(max_examples=60)
@given(st.sampled_from(NAMES), st.sampled_from(NAMES), st.sampled_from(["_", "-", "0", "X", "A"]),
       st.sampled_from([str.upper, str.lower, str.title]),
       st.sampled_from(["{f}{p}{l}", "{l}{p}{f}", "{f}", "{l}{p}{f}{p}20111116", "2011-11-16", "{f}{l}"]))
def test_a_name_or_date_padded_into_a_token_or_id_is_found_in_one_row(first, last, pad, case, template):
    text = case(template.format(f=first, l=last, p=pad if pad in "_-" else "_"))
    honest_tokens = [ENC.token("name", f"N{i}") for i in range(500)]
    honest_ids = [ENC.record_id("police/person", str(i)) for i in range(500)]
    found = scan({"enc_fn_full": honest_tokens + [_pad(text, 16, pad)],
                  "source_record_id": honest_ids + [_pad(text, 20, pad)]}, keyed_columns=KEYED)
    assert [(f.column, f.kind, f.count) for f in found] == [
        ("enc_fn_full", "text_in_keyed_column", 1), ("source_record_id", "text_in_keyed_column", 1)]


@pytest.mark.parametrize("raw", [b"MARIA GARCIA", "José García".encode(), b"GARCIA, MARIA 2011-11-16",
                                 b"1200 N TRYON ST", b"\x00" * 64, b"\xff" * 64, bytes(range(64)), b"AB" * 32])
@pytest.mark.parametrize("pad", [b"\x00", b" "])
def test_text_or_structured_bytes_in_a_bloom_filter_column_are_found_in_one_row(raw, pad):
    honest = [ENC.bloom("name", n) for n in NAMES[:300]]
    found = scan({"enc_fn_bf": pa.array(honest + [(raw + pad * 64)[:64]], pa.binary())}, keyed_columns=KEYED)
    assert [(f.column, f.kind, f.count) for f in found] == [("enc_fn_bf", "text_in_keyed_column", 1)]


def test_recognise_masks_each_kind():
    masks = recognise(pa.array(["123-45-6789", "MARIA", "28202"]))
    assert [k for k in masks if masks[k][0]] == ["ssn"] and [k for k in masks if masks[k][1]] == ["name"]
    assert not any(m[2] for m in masks.values())


def test_the_shipped_text_models_are_what_the_builders_make():
    """landing/data/text_models.npz is a cache of deterministic builds (fixed seeds): rebuild it with
    `python -m landing.keyed` after changing the name list or the disguises."""
    import numpy as np

    from landing import keyed

    assert np.array_equal(keyed._token_model(), keyed.build_token_model())
    assert np.array_equal(keyed._bloom_model(), keyed.build_bloom_model())
