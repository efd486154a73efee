"""Every written file follows docs/partner-layouts.md: columns, delimiter, formats and code sets."""

from __future__ import annotations

import csv
import re
from datetime import datetime

import pandas as pd
import pytest
from synth_helpers import DOC, PERIODS, read_all, read_extract

from synthetic import LAYOUTS, PARTNERS, load_geography

COL = re.compile(r"^[A-Z][A-Z0-9_]+$")


def parse_doc() -> dict[tuple[str, str], tuple[tuple[str, ...], str]]:
    """(partner, extract) -> (columns, delimiter) as documented (tables or inline column lists)."""
    out: dict = {}
    partner = extract = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        h = re.match(r"^## (\w+)", line)
        if h:
            partner = h.group(1) if h.group(1) in PARTNERS else None
            extract = None
            continue
        f = re.match(r"^`(\w+)\.csv`(.*)$", line)
        if f and partner:
            extract = f.group(1)
            rest = f.group(2)
            sep = "|" if "(`|` delimited)" in rest else ","
            cols: list[str] = []
            if ":" in rest:
                inline = re.sub(r"\([^)]*\)", "", rest.split(":", 1)[1])
                cols = [c.strip() for c in inline.split(",") if COL.match(c.strip())]
            out[(partner, extract)] = (cols, sep)
            continue
        if partner and extract and line.startswith("| ") and not line.startswith("| column"):
            cell = line.split("|")[1]
            for c in cell.split(","):
                c = c.strip()
                if COL.match(c):
                    out[(partner, extract)][0].append(c)
    return {k: (tuple(v[0]), v[1]) for k, v in out.items()}


def test_doc_parses_to_every_extract():
    doc = parse_doc()
    assert set(doc) == {(x.partner, x.extract) for x in LAYOUTS}
    assert all(cols for cols, _ in doc.values())


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda x: f"{x.partner}.{x.extract}")
def test_layout_matches_doc(layout):
    cols, sep = parse_doc()[(layout.partner, layout.extract)]
    assert layout.columns == cols
    assert layout.sep == sep


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda x: f"{x.partner}.{x.extract}")
def test_files_have_documented_header_delimiter_and_field_count(small, layout):
    home = small[0]
    cols, sep = parse_doc()[(layout.partner, layout.extract)]
    for p in PERIODS:
        path = home / "partners" / layout.partner / p / layout.file
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter=sep))
        assert tuple(rows[0]) == cols, path
        assert all(len(r) == len(cols) for r in rows[1:]), path
        if sep == "|":  # a pipe file really is pipe-delimited, not comma
            assert "," not in rows[0][0]


def _match(series: pd.Series, pattern: str, allow_blank: bool = False) -> None:
    s = series[series != ""] if allow_blank else series
    bad = s[~s.str.fullmatch(pattern)]
    assert bad.empty, f"{series.name}: {bad.head(5).tolist()} do not match {pattern}"


def _within(series: pd.Series, allowed: set[str]) -> None:
    bad = set(series) - allowed
    assert not bad, f"{series.name}: {sorted(bad)[:10]} not in the documented code set"


def _dates(series: pd.Series, fmt: str, allow_blank: bool = False) -> pd.Series:
    s = series[series != ""] if allow_blank else series
    parsed = pd.to_datetime(s, format=fmt, errors="coerce")
    assert parsed.notna().all(), f"{series.name}: {s[parsed.isna()].head().tolist()} not {fmt}"
    return parsed


GEO = load_geography()
TRACTS, ZIPS = set(GEO["tract"]), set(GEO["zip"])
ICD = r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?"
EXT = r"[VWXY][0-9][0-9](\.[0-9A-Z]{1,4})?"
SUFFIXES = {"", "JR", "SR", "II", "III"}
CDC_RACE = {"1002-5", "2028-9", "2054-5", "2076-8", "2106-3", "2118-8", "2131-1"}


def test_county_codes(small):
    home = small[0]
    c = read_all(home, "county", "clients")
    _match(c["CLIENT_ID"], r"C\d{8}")
    _dates(c["DOB"], "%m/%d/%Y")
    _within(c["GENDER"], {"M", "F", "U"})
    _match(c["SSN"], r"\d{3}-\d{2}-\d{4}", allow_blank=True)
    _within(c["RACE_CD"], set("123456789"))
    _within(c["HISP_IND"], {"Y", "N", "U"})
    _within(c["RACE_METHOD"], {"SELF", "PROXY", "UNK"})
    _within(c["NAME_SUFFIX"], SUFFIXES)
    _within(c["ZIP"], ZIPS | {""})
    _within(c["CENSUS_TRACT"], TRACTS | {""})
    s = read_all(home, "county", "services")
    _match(s["SERVICE_ID"], r"S\d{9}")
    _within(s["DEPT"], {"DSS", "PH", "CJS", "CSS"})
    _within(s["SERVICE_CD"], {"ATV_ENROLL", "HVIP_ENROLL", "SNAP", "WIC", "MEDICAID", "PRETRIAL",
                              "PROBATION_SUPPORT", "HOUSING", "BEHAV_HEALTH"})
    start = _dates(s["SERVICE_START_DT"], "%m/%d/%Y")
    end = _dates(s["SERVICE_END_DT"], "%m/%d/%Y", allow_blank=True)
    assert (end >= start[end.index]).all()
    assert (start >= "2021-01-01").all()
    assert set(s["SERVICE_CD"]) >= {"ATV_ENROLL", "HVIP_ENROLL", "SNAP", "MEDICAID"}
    assert s["SERVICE_END_DT"].eq("").any() and s["SERVICE_END_DT"].ne("").any()


def test_police_codes(small):
    home = small[0]
    p = read_all(home, "police", "persons")
    _match(p["PERSON_ID"], r"P\d{9}")
    _dates(p["DOB"], "%Y%m%d", allow_blank=True)
    _within(p["SEX"], {"M", "F", "U"})
    _within(p["RACE"], {"W", "B", "A", "I", "P", "U"})
    _within(p["ETHNICITY"], {"H", "N", "U"})
    _match(p["SSN"], r"\d{9}", allow_blank=True)
    _within(p["SFX"], SUFFIXES)
    assert p["SSN"].eq("").mean() > 0.3  # "often blank"
    i = read_all(home, "police", "incident_persons")
    _match(i["INCIDENT_ID"], r"I20\d{2}\d{7}")
    _within(i["ROLE"], {"VIC", "SUS", "ARR"})
    violent = {"09A", "13A", "13B", "120", "11A"}
    _within(i["OFFENSE_CD"], violent | {"220", "23H", "35A", "520"})
    for c in ("VIOLENT_FLAG", "FIREARM_FLAG", "DOMESTIC_FLAG"):
        _within(i[c], {"Y", "N"})
    assert (i["VIOLENT_FLAG"].eq("Y") == i["OFFENSE_CD"].isin(violent)).all()
    dt = _dates(i["INCIDENT_DT"], "%Y-%m-%d %H:%M")
    assert (i["INCIDENT_ID"].str.slice(1, 5).astype(int) == dt.dt.year).all()
    assert (dt >= "2021-01-01").all()
    _within(i["CENSUS_TRACT"], TRACTS)
    _within(i["ZIP"], ZIPS)
    assert not i.duplicated(["INCIDENT_ID", "PERSON_ID"]).any()
    assert i["FIREARM_FLAG"].eq("Y").any() and i["DOMESTIC_FLAG"].eq("Y").any()


def test_schools_codes(small):
    home = small[0]
    s = read_all(home, "schools", "students")
    _match(s["STUDENT_ID"], r"[1-9]\d{6}")
    born = _dates(s["BIRTH_DATE"], "%Y-%m-%d")
    _within(s["GENDER"], {"M", "F", "X"})
    for c in ("HISPANIC_LATINO", "RACE_AMERICAN_INDIAN", "RACE_ASIAN", "RACE_BLACK", "RACE_PACIFIC_ISLANDER",
              "RACE_WHITE", "RACE_MENA"):
        _within(s[c], {"Y", "N"})
    _within(s["RACE_REPORTER"], {"SELF", "PARENT"})
    _within(s["HOME_ZIP"], ZIPS | {""})
    assert (born > "2000-01-01").mean() > 0.98  # school age in 2020-2026 (a few wrong birth dates)
    e = read_all(home, "schools", "enrollments")
    _match(e["SCHOOL_YEAR"], r"20\d\d-20\d\d")
    y0, y1 = e["SCHOOL_YEAR"].str.slice(0, 4).astype(int), e["SCHOOL_YEAR"].str.slice(5, 9).astype(int)
    assert ((y1 - y0) == 1).all() and (y0 >= 2020).all() and (y0 <= 2025).all()
    _within(e["GRADE_LEVEL"], {"KG"} | {f"{g:02d}" for g in range(1, 13)})
    d, a = e["DAYS_ENROLLED"].astype(int), e["DAYS_ABSENT"].astype(int)
    assert ((d >= 1) & (d <= 180) & (a >= 0) & (a <= d)).all()
    assert not e.duplicated(["STUDENT_ID", "SCHOOL_YEAR", "SCHOOL_CODE"]).any()
    u = read_all(home, "schools", "suspensions")
    _match(u["INCIDENT_NO"], r"\d{8}")
    _dates(u["INCIDENT_DATE"], "%m/%d/%Y")
    _within(u["SUSP_TYPE"], {"OSS", "ISS"})
    _within(u["REASON_CD"], {"FIGHT", "ASSAULT", "WEAPON", "DRUGS", "DISRUPT", "BULLY", "OTHER"})
    assert (u["SUSP_DAYS"].astype(int) >= 1).all()
    assert not u.duplicated(["INCIDENT_NO", "STUDENT_ID"]).any()
    share = u["STUDENT_ID"].nunique() / s["STUDENT_ID"].nunique()
    assert 0.04 < share < 0.2  # about 10% of students


def test_schools_have_no_ssn(small):
    home = small[0]
    for lay in LAYOUTS:
        if lay.partner == "schools":
            assert not any("SSN" in c for c in lay.columns)
            d = read_all(home, "schools", lay.extract)
            for c in d.columns[1:]:
                assert not d[c].str.fullmatch(r"\d{3}-?\d{2}-?\d{4}").any(), c


def test_hospital_a_codes(small):
    home = small[0]
    p = read_all(home, "hospital_a", "patients")
    _match(p["MRN"], r"\d{10}")
    _dates(p["BIRTH_DATE"], "%Y-%m-%d")
    _within(p["SEX_C"], {"1", "2", "3"})
    _match(p["SSN"], r"\d{9}", allow_blank=True)
    parts = set(p["RACE_CODE"].str.split(";").explode())
    _within(pd.Series(sorted(parts), name="RACE_CODE"), CDC_RACE | {"ASKU", "UNK"})
    assert not p["RACE_CODE"].str.contains("ASKU;|;ASKU|UNK;|;UNK").any()
    _within(p["ETHNIC_CODE"], {"2135-2", "2186-5", "ASKU", "UNK"})
    e = read_all(home, "hospital_a", "encounters")
    _match(e["PAT_ENC_CSN_ID"], r"\d{12}")
    _match(e["MRN"], r"\d{10}")
    dt = _dates(e["ADMIT_DTTM"], "%Y-%m-%d %H:%M:%S")
    assert (dt >= "2021-01-01").all()
    _within(e["ENC_TYPE"], {"ED", "INPATIENT"})
    _match(e["DX_PRIMARY"], ICD)
    _match(e["EXT_CAUSE_CD"], EXT, allow_blank=True)
    _within(e["DISPOSITION"], {"HOME", "ADMIT", "TRANSFER", "EXPIRED"})
    ext = e["EXT_CAUSE_CD"]
    assert ext.str.match(r"X9[345]").any() and ext.str.startswith("Y04").any() and ext.str.startswith("X99").any()


def test_hospital_b_codes(small):
    home = small[0]
    p = read_all(home, "hospital_b", "patients")
    _match(p["PERSON_ID"], r"\d{8}")
    _match(p["NAME_FULL_FORMATTED"], r"[^,|]+, [^,|]+")
    born = p["BIRTH_DT_TM"].map(lambda s: datetime.strptime(s, "%d-%b-%Y"))
    assert born.notna().all()
    _match(p["BIRTH_DT_TM"], r"\d\d-(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)-\d{4}")
    _within(p["SEX_CD"], {"Male", "Female", "Unknown"})
    _match(p["SSN"], r"\d{3}-\d{2}-\d{4}", allow_blank=True)
    _within(p["RACE_DISP"], {"White", "Black or African American", "Asian", "American Indian or Alaska Native",
                             "Native Hawaiian or Other Pacific Islander", "Middle Eastern or North African",
                             "Multiple", "Other", "Declined", "Unknown"})
    _within(p["ETHNIC_GRP_DISP"], {"Hispanic or Latino", "Not Hispanic or Latino", "Declined", "Unknown"})
    v = read_all(home, "hospital_b", "visits")
    _match(v["ENCNTR_ID"], r"\d{9}")
    _dates(v["REG_DT_TM"], "%m/%d/%Y %H:%M")
    _within(v["ENCNTR_TYPE_DISP"], {"Emergency", "Inpatient"})
    _match(v["DIAG_CD"], ICD)
    _match(v["ECODE"], EXT, allow_blank=True)
    _within(v["INTENT_DISP"], {"Assault", "Accident", "Self-harm", "Undetermined", ""})
    _within(v["MECHANISM_DISP"], {"Firearm", "Cut/pierce", "Struck by/against", "Motor vehicle", "Fall", "Other", ""})
    injury = v["INTENT_DISP"].ne("") | v["MECHANISM_DISP"].ne("")
    assert v.loc[~injury, "ECODE"].eq("").all()


def test_name_formats(tmp_path):
    from synthetic import NoiseRates, SynthConfig, generate

    home = tmp_path
    generate(SynthConfig(persons=600, seed=2, periods=PERIODS, noise=NoiseRates(jr_sr_rate=0.3)), home)
    b = read_all(home, "hospital_b", "patients")
    last = b["NAME_FULL_FORMATTED"].str.split(", ").str[0]
    assert last.str.contains(r" (?:JR|SR|II|III)$").any()  # suffix inside the last-name part
    s = read_all(home, "schools", "students")
    assert s["LAST_NAME"].str.contains(r" (?:Jr|Sr|II|III)$").any()  # suffix inside LAST_NAME sometimes


def test_later_periods_are_monthly_increments(small):
    home, _, cfg = small
    for k, p in enumerate(cfg.periods[1:], start=1):
        i = read_extract(home, "police", p, "incident_persons")
        assert i["INCIDENT_DT"].str.startswith(p).all()
        s = read_extract(home, "county", p, "services")
        assert (s["SERVICE_START_DT"].str.slice(6, 10) + "-" + s["SERVICE_START_DT"].str.slice(0, 2)).eq(p).all()
        e = read_extract(home, "hospital_a", p, "encounters")
        assert e["ADMIT_DTTM"].str.startswith(p).all()
    base = read_extract(home, "hospital_a", cfg.periods[0], "encounters")
    assert (base["ADMIT_DTTM"] < cfg.periods[1]).all()
    assert base["ADMIT_DTTM"].min() < "2021-03"  # history since 2021-01


def test_events_reference_person_records_of_same_or_earlier_period(small):
    home, _, cfg = small
    refs = [("county", "clients", "CLIENT_ID", "services", "CLIENT_ID"),
            ("police", "persons", "PERSON_ID", "incident_persons", "PERSON_ID"),
            ("schools", "students", "STUDENT_ID", "enrollments", "STUDENT_ID"),
            ("schools", "students", "STUDENT_ID", "suspensions", "STUDENT_ID"),
            ("hospital_a", "patients", "MRN", "encounters", "MRN"),
            ("hospital_b", "patients", "PERSON_ID", "visits", "PERSON_ID")]
    for partner, pe, pid, ev, ref in refs:
        seen: set[str] = set()
        for p in cfg.periods:
            persons = read_extract(home, partner, p, pe)[pid]
            assert not persons.duplicated().any()
            assert not (set(persons) & seen)  # a person record appears once, in the period it is first seen
            seen |= set(persons)
            events = read_extract(home, partner, p, ev)[ref]
            assert set(events) <= seen, (partner, ev, p)
            assert set(persons) <= set(events) or ev == "suspensions"  # every new record comes with an event
