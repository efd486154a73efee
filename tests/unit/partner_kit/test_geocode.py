"""Residence tracts at the partner's site: the address-points lookup (variants of one address find its point, an
ambiguous or unknown address gets none), clear refusals of a bad file or profile, and an encoded hospital extract
that carries the tract and never the address."""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from partner_kit import Encoder, SchemaError, encode_extract, load_profile
from partner_kit.geocode import AddressPoints, GeocodeError
from partner_kit.normalise import normalise_address_array, normalise_zip_array
from partner_kit.profiles import ProfileError, parse_profile
from tests.conftest import TODAY


def write_points(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["address", "zip", "tract"])
        w.writerows(rows)
    return path


def lookup(points: AddressPoints, addresses: list[str], zips: list[str]) -> list[str | None]:
    return points.tracts(normalise_address_array(pa.array(addresses)), normalise_zip_array(pa.array(zips))).to_pylist()


def test_variants_of_an_address_find_its_tract_and_ambiguous_or_unknown_ones_none(tmp_path):
    pts = AddressPoints.load(write_points(tmp_path / "p.csv", [
        ["1234 OAK ST", "28216", "37119000101"], ["55 Beatties Ford Road", "28216", "37119000102"],
        ["77 MAPLE AVE", "28205", "37119000801"], ["77 MAPLE AVE", "28205", "37119000802"],  # two tracts: ambiguous
    ]))
    assert pts.ambiguous == 1
    got = lookup(pts, ["1234 Oak Street", "1234 oak st apt 5", "55 BEATTIES FORD RD", "77 Maple Ave", "9 Nowhere Ln",
                       "1234 OAK ST", ""],
                 ["28216", "28216-1234", "28216", "28205", "28216", "28205", "28216"])
    assert got == ["37119000101", "37119000101", "37119000102", None, None, None, None]


@given(house=st.integers(1, 99999), street=st.sampled_from(["OAK", "MAPLE", "SUGAR CREEK", "W TRADE"]),
       kind=st.sampled_from([("ST", "Street"), ("RD", "road"), ("AVE", "Avenue")]),
       unit=st.sampled_from(["", " APT 4", " #12", " Unit B"]), upper=st.booleans())
def test_the_written_forms_of_one_address_point_agree(house, street, kind, unit, upper):
    pts = AddressPoints(points={})
    canonical = f"{house} {street} {kind[0]}"
    key = normalise_address_array(pa.array([canonical])).to_pylist()[0] + "|28216"
    pts.points[key] = "37119000101"
    written = f"{house} {street.title()} {kind[1]}{unit}"
    assert lookup(pts, [written.upper() if upper else written], ["28216"]) == ["37119000101"]


def test_a_bad_address_points_file_is_refused_naming_the_file_and_line(tmp_path):
    with pytest.raises(GeocodeError, match="no address-points file"):
        AddressPoints.load(tmp_path / "missing.csv")
    (tmp_path / "cols.csv").write_text("addr,zip,tract\n")
    with pytest.raises(GeocodeError, match=r"missing columns \['address'\]"):
        AddressPoints.load(tmp_path / "cols.csv")
    with pytest.raises(GeocodeError, match="line 3: tract '2811' is not an 11-digit census tract"):
        AddressPoints.load(write_points(tmp_path / "t.csv", [["1 A ST", "28216", "37119000101"],
                                                             ["2 A ST", "28216", "2811"]]))


def test_a_geocode_profile_needs_an_address_and_a_new_column():
    base = {"kind": "persons", "file": "p.csv", "schema_version": "x.p/1",
            "record_id": {"columns": ["ID"], "namespace": "x/p"},
            "identifiers": {"first_name": "FN", "last_name": "LN", "address": "ADDR", "zip": "ZIP"},
            "content": {"ZIP": {"type": "string", "pattern": "^\\d{5}$"}}}
    ok = parse_profile("x", "p", {**base, "geocode": {"column": "TRACT", "reference": "points.csv"}})
    assert ok.derived_content == {"TRACT": {"type": "string", "pattern": "^[0-9]{11}$"}}
    assert ok.output_schema().names[-1] == "TRACT" and "TRACT" not in ok.expected_columns()
    for bad, rule in [({"column": "ZIP", "reference": "points.csv"}, "must be a new column"),
                      ({"column": "TRACT", "reference": "../points.csv"}, "plain file name"),
                      ({"column": "TRACT"}, "must be"),
                      ]:
        with pytest.raises(ProfileError, match=rule):
            parse_profile("x", "p", {**base, "geocode": bad})
    no_addr = {**base, "identifiers": {"first_name": "FN", "last_name": "LN"}}
    with pytest.raises(ProfileError, match="needs a persons extract with the address and zip roles"):
        parse_profile("x", "p", {**no_addr, "geocode": {"column": "TRACT", "reference": "p.csv"}})


def test_an_encoded_hospital_extract_carries_the_tract_and_never_the_address(tmp_path, keyring):
    profile = load_profile("hospital_a", "patients")
    header = sorted(profile.expected_columns())
    rows = [{"MRN": "M1", "PAT_FIRST_NAME": "Ana", "PAT_MIDDLE_NAME": "", "PAT_LAST_NAME": "Ruiz",
             "BIRTH_DATE": "1990-01-02", "SEX_C": "1", "SSN": "", "RACE_CODE": "2106-3", "ETHNIC_CODE": "2135-2",
             "ADD_LINE_1": "1234 Oak Street Apt 2", "ZIP": "28216"},
            {"MRN": "M2", "PAT_FIRST_NAME": "Bo", "PAT_MIDDLE_NAME": "", "PAT_LAST_NAME": "Li",
             "BIRTH_DATE": "1980-05-06", "SEX_C": "2", "SSN": "", "RACE_CODE": "2028-9", "ETHNIC_CODE": "2186-5",
             "ADD_LINE_1": "9 Unknown Way", "ZIP": "28216"}]
    src = tmp_path / "patients.csv"
    with open(src, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    enc = Encoder(keyring.linkage_secret())
    with pytest.raises(SchemaError, match="reference/address_points.csv"):
        encode_extract(profile, src, tmp_path / "x.parquet", enc, today=TODAY)
    pts = AddressPoints.load(write_points(tmp_path / "address_points.csv", [["1234 OAK ST", "28216", "37119000101"]]))
    s = encode_extract(profile, src, tmp_path / "p.parquet", enc, today=TODAY, address_points=pts)
    assert s.notes["residence_tract_not_found"] == 1
    table = pq.read_table(tmp_path / "p.parquet")
    assert table.column("RESIDENCE_TRACT").to_pylist() == ["37119000101", None]
    text = repr(table.to_pylist()).upper()
    assert "OAK" not in text and "UNKNOWN WAY" not in text


def test_the_lookup_is_kept_beside_the_list_and_rebuilt_when_the_list_changes(tmp_path, monkeypatch):
    """A county's list is normalised once, not on every run; a changed list (or a changed normaliser) is read again,
    and a damaged cache is rebuilt, never trusted."""
    import os

    from partner_kit import geocode

    path = write_points(tmp_path / "address_points.csv", [["1234 OAK ST", "28216", "37119000101"]])
    first = AddressPoints.load(path)
    cache = geocode.lookup_cache_path(path)
    assert cache.is_file() and (os.stat(cache).st_mode & 0o777) == 0o600
    calls = []
    real = geocode.AddressPoints._parse.__func__
    monkeypatch.setattr(geocode.AddressPoints, "_parse", classmethod(lambda cls, p: calls.append(p) or real(cls, p)))
    again = AddressPoints.load(path)
    assert calls == [] and lookup(again, ["1234 Oak Street"], ["28216"]) == lookup(first, ["1234 OAK ST"], ["28216"]) \
        == ["37119000101"]
    write_points(path, [["1234 OAK ST", "28216", "37119000999"]])  # the county moved the point to another tract
    assert lookup(AddressPoints.load(path), ["1234 OAK ST"], ["28216"]) == ["37119000999"] and len(calls) == 1
    cache.write_bytes(b"not parquet")
    assert lookup(AddressPoints.load(path), ["1234 OAK ST"], ["28216"]) == ["37119000999"] and len(calls) == 2
    assert AddressPoints.load(path, cache=False).ambiguous == 0 and len(calls) == 3


def test_reference_check_builds_the_lookup_once_and_names_a_bad_file(tmp_path, monkeypatch):
    """`vpdc-kit reference check`: a new county list is checked and normalised before the month's run (which then
    reuses the lookup); a malformed one is named with its line, exit 2, no traceback; a partner that computes no
    tract is told so."""
    import json

    from typer.testing import CliRunner

    from partner_kit import geocode
    from partner_kit.cli import app

    monkeypatch.delenv("VPDC_DEBUG", raising=False)
    site = tmp_path / "site"
    (site / "reference").mkdir(parents=True)
    write_points(site / "reference" / "address_points.csv",
                 [["12 Oak Street", "28216", "37119000101"], ["12 OAK ST", "28216", "37119000101"],
                  ["77 MAPLE AVE", "28205", "37119000801"], ["77 Maple Avenue", "28205", "37119000802"],
                  ["5 ELM DR", "28205", "37119000801"]])
    run = CliRunner().invoke(app, ["reference", "check", "--partner", "hospital_a", "--site", str(site), "--json"])
    assert run.exit_code == 0, run.output
    row, = json.loads(run.stdout)
    assert (row["file"], row["points"], row["ambiguous"], row["lookup"]) == ("address_points.csv", 2, 1, "built")
    calls = []
    real = geocode.AddressPoints._parse.__func__
    monkeypatch.setattr(geocode.AddressPoints, "_parse", classmethod(lambda cls, p: calls.append(p) or real(cls, p)))
    again = CliRunner().invoke(app, ["reference", "check", "--partner", "hospital_a", "--site", str(site), "--json"])
    assert json.loads(again.stdout)[0]["lookup"] == "reused" and calls == []
    profile = load_profile("hospital_a", "patients")
    assert lookup(geocode.site_address_points(profile, site / "reference"), ["12 OAK ST"], ["28216"]) == \
        ["37119000101"] and calls == []  # the encode run's load reuses what the check built

    write_points(site / "reference" / "address_points.csv",
                 [["1 A ST", "28216", "37119000101"], ["2 A ST", "28216", "2811"]])
    bad = CliRunner().invoke(app, ["reference", "check", "--partner", "hospital_a", "--site", str(site)])
    assert bad.exit_code == 2 and "line 3: tract '2811' is not an 11-digit census tract" in bad.output
    assert "Traceback" not in bad.output and "address_points.csv" in bad.output
    none = CliRunner().invoke(app, ["reference", "check", "--partner", "police", "--site", str(site)])
    assert none.exit_code == 2 and "no profile computes residence tracts" in none.output


@given(st.lists(st.tuples(st.sampled_from(["1 OAK ST", "2 OAK ST", "3 ELM AVE", "4 ELM AVE", "5 PINE RD"]),
                          st.sampled_from(["28202", "28205"]),
                          st.sampled_from(["37119000101", "37119000102", "37119000201"])), max_size=30),
       st.lists(st.tuples(st.sampled_from(["1 OAK ST", "2 OAK ST", "3 ELM AVE", "4 ELM AVE", "5 PINE RD", "9 NEW LN"]),
                          st.sampled_from(["28202", "28205"])), min_size=1, max_size=12))
def test_the_lookup_places_an_address_only_where_all_its_points_agree(tmp_path_factory, points, asked):
    """Ambiguity is decided per lookup (the list keeps every point): an address gets a tract exactly when every
    point of the list at that address and ZIP lies in that one tract; counts say the same of the whole list."""
    path = write_points(tmp_path_factory.mktemp("pts") / "p.csv", [list(p) for p in points])
    pts = AddressPoints.load(path, cache=False)
    tracts: dict[tuple[str, str], set[str]] = {}
    for a, z, t in points:
        tracts.setdefault((a, z), set()).add(t)
    want = [next(iter(tracts[q])) if len(tracts.get(q, ())) == 1 else None for q in asked]
    assert lookup(pts, [a for a, _ in asked], [z for _, z in asked]) == want
    assert (len(pts), pts.ambiguous) == (sum(len(v) == 1 for v in tracts.values()), sum(len(v) > 1 for v in tracts.values()))
