"""The column-wise kit equals a plain row-by-row reference built from the scalar normalisers and encoders.

The kit is fast because it works on Arrow columns and once per distinct value. This reference is the
slow, obvious reading of the same rules (DESIGN.md "Linkage on encodings"), one row at a time; hypothesis
feeds both the same messy extracts and every kept row, every encoding and every reject must agree.
"""

import csv
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envelope.keys import LinkageSecret
from partner_kit import Encoder, encode_extract, load_profile
from partner_kit.extract import _content_parser
from partner_kit.geocode import AddressPoints
from partner_kit.normalise import (
    NormaliseError,
    name_words,
    normalise_address,
    normalise_given,
    normalise_sex,
    normalise_ssn,
    normalise_suffix,
    normalise_surname,
    normalise_zip,
    parse_date,
    split_formatted_name,
)

TODAY = date(2026, 11, 21)
SECRET = LinkageSecret.from_master("v1", b"r" * 32)


def reference(profile, rows: list[dict[str, str]]) -> tuple[list[dict], set[tuple]]:
    """(encoded rows kept, {(row number, field, rule)}) computed one row at a time."""
    enc = Encoder(SECRET)
    ids = profile.identifiers
    kept, rejects = [], set()
    for n, row in enumerate(rows, start=2):
        bad = set()
        rid_cols = profile.record_id["columns"]
        parts = [row[c].strip() for c in rid_cols]
        if any(p == "" for p in parts):
            bad.add((n, "+".join(rid_cols), "record_id_missing"))
        if ids.get("formatted_name"):
            last_raw, first_raw, middle_raw = split_formatted_name(row[ids["formatted_name"]])
        else:
            first_raw, last_raw = row[ids["first_name"]], row[ids["last_name"]]
            middle_raw = row[ids["middle_name"]] if ids.get("middle_name") else ""
        first, sn, middle = normalise_given(first_raw or ""), normalise_surname(last_raw or ""), \
            normalise_given(middle_raw or "")
        if first is None and sn is None:
            name_field = ids.get("formatted_name") or f"{ids['first_name']}+{ids['last_name']}"
            bad.add((n, name_field, "name_missing"))
        try:
            dob = parse_date(row[ids["dob"]], ids.get("dob_format", "%Y-%m-%d"), latest=TODAY)
        except NormaliseError:
            dob = None  # a date of birth that is no date is kept as missing, not a reject
        content = {}
        for col, spec in profile.content.items():
            try:
                content[col] = _content_parser(spec)(row[col])
            except NormaliseError as exc:
                bad.add((n, col, exc.rule))
        if bad:
            rejects |= bad
            continue
        two = sn is not None and len(sn.parts) > 1
        own_sfx = normalise_suffix(row[ids["suffix"]]) if ids.get("suffix") else None
        sfx = own_sfx or (sn.suffix if sn else None)
        ssn = normalise_ssn(row[ids["ssn"]]) if ids.get("ssn") else None
        rid = enc.record_id(profile.record_id["namespace"], "|".join(parts))
        features = {
            "first": first, "last": sn.compact if sn else None,
            "last_part1": sn.parts[0] if two else None, "last_part2": sn.parts[-1] if two else None,
            "middle_init": middle[0] if middle else None, "suffix": sfx, "dob": dob,
            "sex": normalise_sex(row[ids["sex"]], ids.get("sex_map", {})), "ssn": ssn,
            "addr": normalise_address(row[ids["address"]]), "zip": normalise_zip(row[ids["zip"]]),
            "name_words": name_words(first_raw, middle_raw, last_raw),
        }
        derived = {}
        if profile.geocode:  # the residence tract: the scalar normalisers' key in the site's address points
            key = f"{features['addr']}|{features['zip']}" if features["addr"] and features["zip"] else None
            derived[profile.geocode["column"]] = points_of(rows).points.get(key) if key else None
        kept.append({
            "source_record_id": rid, "linkage_key_version": "v1", **enc.encode_record(features, rid),
            "birth_year": dob.year if dob else None,
            **content, **derived,
        })
    return kept, rejects


def points_of(rows: list[dict[str, str]]) -> AddressPoints:
    """Address points for every other distinct raw address of ``rows`` (keyed by the scalar normalisers), each in a
    tract made from its position: the kit's column-wise lookup must find exactly these."""
    points = {}
    for i, row in enumerate(rows):
        addr = next((row[c] for c in row if c in ("ADD_LINE_1", "STREET_ADDR", "ADDRESS", "HOME_ADDRESS")), "")
        zip_ = next((row[c] for c in row if c in ("ZIP", "ZIPCODE", "HOME_ZIP")), "")
        a, z = normalise_address(addr), normalise_zip(zip_)
        if a and z and i % 2 == 0:
            points.setdefault(f"{a}|{z}", f"37119{i:06d}")
    return AddressPoints(points=points)


def run_kit(profile, rows: list[dict[str, str]], tmp: Path, block_size: int) -> tuple[list[dict], set[tuple]]:
    src, out = tmp / "in.csv", tmp / "out.parquet"
    header = sorted(profile.expected_columns())
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=profile.delimiter)
        w.writerow(header)
        w.writerows([[r[c] for c in header] for r in rows])
    s = encode_extract(profile, src, out, Encoder(SECRET), today=TODAY, block_size=block_size,
                       address_points=points_of(rows) if profile.geocode else None)
    with open(s.rejects, newline="") as f:
        rejects = {(int(r["row"]), r["field"], r["rule"]) for r in csv.DictReader(f)}
    return pq.read_table(out).to_pylist(), rejects


# Realistic messy values with arbitrary text mixed in. No newlines or NULs: the CSV itself must parse.
def text(samples: list[str]):
    plain = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12)
    return st.one_of(st.sampled_from(samples), plain, st.just(""))


GIVEN = ["José", "MARY ANN", "Dr. John", "Bill", "  ana ", "NFN", "J.", "Zoë", "Jean-Luc", "O'Neil", "II", "123"]
SURNAMES = ["García-López", "de la Cruz", "Smith Jr.", "NGUYEN", "O'Brien", "Van Der Berg", "UNKNOWN", "Al Hassan",
            "Müller", "St. John III"]
SSNS = ["234-56-7890", "234567890", "000-12-3456", "666-12-3456", "123-45-6789", "234 56 7890", "2345", ""]
ADDRESSES = ["1200 North Tryon Street, Apt 4B", "9 Elm St. #3", "55 Beatties Ford Road", "12 AVENUE RD",
             "Calle José 5", "PO BOX 12", "  "]
ZIPS = ["28206", "28206-1234", "00000", "2820", ""]


def police_row():
    return st.fixed_dictionaries({
        "PERSON_ID": st.one_of(st.from_regex(r"\AP[0-9]{1,6}\Z"), st.just(""), st.just(" ")),
        "FNAME": text(GIVEN), "MNAME": text(GIVEN), "LNAME": text(SURNAMES), "SFX": text(["JR", "Sr.", "III", "2nd"]),
        "DOB": st.one_of(st.dates(date(1890, 1, 1), date(2030, 1, 1)).map(lambda d: d.strftime("%Y%m%d")),
                         text(["19851313", "20200230", "19900307", " 19900307 ", "00000000"])),
        "SEX": text(["M", "F", "U", "X"]), "SSN": text(SSNS), "ADDRESS": text(ADDRESSES), "ZIP": text(ZIPS),
        "RACE": text(["W", "B", " A ", "I\u3000", "U"]), "ETHNICITY": st.sampled_from(["H", "N", "U"]),
    })


def hospital_b_row():
    return st.fixed_dictionaries({
        "PERSON_ID": st.from_regex(r"\A[0-9]{1,7}\Z"),
        "NAME_FULL_FORMATTED": text(["SMITH JR, JOHN A", "GARCIA LOPEZ, MARIA", "John Smith", ", ANA", "SMITH,",
                                     "DE LA CRUZ, JOSÉ MIGUEL", "Cher"]),
        "BIRTH_DT_TM": st.one_of(st.dates(date(1890, 1, 1), date(2030, 1, 1)).map(lambda d: d.strftime("%d-%b-%Y")),
                                 text(["30-FEB-2020", "07-mar-1994", "07-XXX-1994", "1994-03-07"])),
        "SEX_CD": st.sampled_from(["Male", "Female", "Unknown"]), "SSN": text(SSNS),
        "RACE_DISP": st.sampled_from(["White", "Asian", "Declined"]),
        "ETHNIC_GRP_DISP": st.sampled_from(["Hispanic or Latino", "Unknown"]),
        "STREET_ADDR": text(ADDRESSES), "ZIPCODE": text(ZIPS),
    })


def _agree(profile, rows, tmp_path_factory, block_size):
    tmp = tmp_path_factory.mktemp("kitref")
    got_rows, got_rejects = run_kit(profile, rows, tmp, block_size)
    want_rows, want_rejects = reference(profile, rows)
    assert got_rejects == want_rejects
    assert len(got_rows) == len(want_rows)
    for got, want in zip(got_rows, want_rows, strict=True):
        assert {k: got[k] for k in want} == want


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(police_row(), min_size=1, max_size=25), small_blocks=st.booleans())
def test_police_extract_encodes_exactly_as_the_row_by_row_reference(tmp_path_factory, rows, small_blocks):
    # small blocks: several batches, so caches carried across batches are exercised too
    _agree(load_profile("police", "persons"), rows, tmp_path_factory, 256 if small_blocks else 1 << 20)


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(hospital_b_row(), min_size=1, max_size=25))
def test_formatted_name_extract_encodes_exactly_as_the_row_by_row_reference(tmp_path_factory, rows):
    _agree(load_profile("hospital_b", "patients"), rows, tmp_path_factory, 1 << 20)
