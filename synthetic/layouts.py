"""Each partner's native layout (docs/partner-layouts.md): columns, delimiter, code sets and formats.

Functions here turn recorded identities and true events into the string columns of one extract file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from synthetic.activity import CAT, CAT_NAMES, CATEGORIES, NEVER, SERVICE_DEPT
from synthetic.identity import Identity
from synthetic.population import Population
from synthetic.world import MULTI, A, B, H, I, M, P, W, World


@dataclass(frozen=True)
class Layout:
    partner: str
    extract: str
    columns: tuple[str, ...]
    sep: str = ","
    kind: str = "events"  # or "persons"

    @property
    def file(self) -> str:
        return f"{self.extract}.csv"


LAYOUTS: tuple[Layout, ...] = (
    Layout("county", "clients", ("CLIENT_ID", "FIRST_NM", "MIDDLE_NM", "LAST_NM", "NAME_SUFFIX", "DOB", "GENDER",
                                 "SSN", "RACE_CD", "HISP_IND", "RACE_METHOD", "ADDR_LINE1", "ZIP", "CENSUS_TRACT"),
           kind="persons"),
    Layout("county", "services", ("SERVICE_ID", "CLIENT_ID", "DEPT", "SERVICE_CD", "SERVICE_START_DT",
                                  "SERVICE_END_DT")),
    Layout("police", "persons", ("PERSON_ID", "LNAME", "FNAME", "MNAME", "SFX", "DOB", "SEX", "RACE", "ETHNICITY",
                                 "SSN", "ADDRESS", "ZIP"), kind="persons"),
    Layout("police", "incident_persons", ("INCIDENT_ID", "PERSON_ID", "ROLE", "OFFENSE_CD", "VIOLENT_FLAG",
                                          "FIREARM_FLAG", "DOMESTIC_FLAG", "INCIDENT_DT", "CENSUS_TRACT", "ZIP")),
    Layout("schools", "students", ("STUDENT_ID", "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "BIRTH_DATE", "GENDER",
                                   "HISPANIC_LATINO", "RACE_AMERICAN_INDIAN", "RACE_ASIAN", "RACE_BLACK",
                                   "RACE_PACIFIC_ISLANDER", "RACE_WHITE", "RACE_MENA", "RACE_REPORTER",
                                   "HOME_ADDRESS", "HOME_ZIP"), kind="persons"),
    Layout("schools", "enrollments", ("STUDENT_ID", "SCHOOL_YEAR", "SCHOOL_CODE", "GRADE_LEVEL", "DAYS_ENROLLED",
                                      "DAYS_ABSENT")),
    Layout("schools", "suspensions", ("INCIDENT_NO", "STUDENT_ID", "INCIDENT_DATE", "SUSP_TYPE", "SUSP_DAYS",
                                      "REASON_CD")),
    Layout("hospital_a", "patients", ("MRN", "PAT_FIRST_NAME", "PAT_MIDDLE_NAME", "PAT_LAST_NAME", "BIRTH_DATE",
                                      "SEX_C", "SSN", "RACE_CODE", "ETHNIC_CODE", "ADD_LINE_1", "ZIP"), kind="persons"),
    Layout("hospital_a", "encounters", ("PAT_ENC_CSN_ID", "MRN", "ADMIT_DTTM", "ENC_TYPE", "DX_PRIMARY",
                                        "EXT_CAUSE_CD", "DISPOSITION")),
    Layout("hospital_b", "patients", ("PERSON_ID", "NAME_FULL_FORMATTED", "BIRTH_DT_TM", "SEX_CD", "SSN", "RACE_DISP",
                                      "ETHNIC_GRP_DISP", "STREET_ADDR", "ZIPCODE"), sep="|", kind="persons"),
    Layout("hospital_b", "visits", ("ENCNTR_ID", "PERSON_ID", "REG_DT_TM", "ENCNTR_TYPE_DISP", "DIAG_CD", "ECODE",
                                    "INTENT_DISP", "MECHANISM_DISP"), sep="|"),
)
LAYOUT = {(lay.partner, lay.extract): lay for lay in LAYOUTS}
PARTNERS: tuple[str, ...] = ("county", "police", "schools", "hospital_a", "hospital_b")
PERSON_EXTRACT = {lay.partner: lay.extract for lay in LAYOUTS if lay.kind == "persons"}

# ----------------------------------------------------------------------------------------------- race coding
COUNTY_RACE = {W: [("1", .93), ("9", .05), ("8", .02)], B: [("2", .93), ("9", .05), ("8", .01), ("7", .01)],
               H: [("8", .40), ("1", .35), ("9", .18), ("2", .04), ("7", .03)], A: [("3", .9), ("9", .06), ("8", .04)],
               M: [("6", .55), ("1", .30), ("8", .08), ("9", .07)], I: [("4", .75), ("1", .1), ("2", .05), ("9", .1)],
               P: [("5", .7), ("3", .15), ("9", .15)]}
POLICE_RACE = {W: [("W", .95), ("B", .01), ("U", .04)], B: [("B", .96), ("U", .03), ("W", .01)],
               H: [("W", .7), ("B", .04), ("U", .2), ("I", .03), ("A", .03)],
               A: [("A", .85), ("W", .05), ("U", .07), ("P", .03)], M: [("W", .8), ("A", .08), ("B", .02), ("U", .1)],
               I: [("W", .45), ("I", .3), ("B", .15), ("U", .1)], P: [("A", .45), ("P", .3), ("W", .1), ("U", .15)]}
HOSP_A_RACE = {W: [("2106-3", .9), ("ASKU", .03), ("UNK", .05), ("2131-1", .02)],
               B: [("2054-5", .9), ("ASKU", .03), ("UNK", .05), ("2131-1", .02)],
               H: [("2131-1", .4), ("2106-3", .3), ("UNK", .15), ("ASKU", .1), ("2054-5", .05)],
               A: [("2028-9", .88), ("2131-1", .04), ("UNK", .05), ("ASKU", .03)],
               M: [("2118-8", .45), ("2106-3", .35), ("2131-1", .1), ("UNK", .06), ("ASKU", .04)],
               I: [("1002-5", .7), ("2106-3", .15), ("UNK", .1), ("ASKU", .05)],
               P: [("2076-8", .7), ("2028-9", .15), ("UNK", .1), ("ASKU", .05)]}
HOSP_A_CODE = {W: "2106-3", B: "2054-5", A: "2028-9", M: "2118-8", I: "1002-5", P: "2076-8"}
HOSP_B_LABEL = {W: "White", B: "Black or African American", A: "Asian", M: "Middle Eastern or North African",
                I: "American Indian or Alaska Native", P: "Native Hawaiian or Other Pacific Islander"}
HOSP_B_RACE = {r: [(lab, .88), ("Unknown", .05), ("Declined", .03), ("Other", .04)] for r, lab in HOSP_B_LABEL.items()}
HOSP_B_RACE[H] = [("Other", .45), ("White", .25), ("Unknown", .15), ("Declined", .1), ("Black or African American", .05)]
HOSP_B_RACE[M] = [("Middle Eastern or North African", .35), ("White", .4), ("Other", .15), ("Unknown", .06),
                  ("Declined", .04)]
HOSP_B_RACE[I] = [("American Indian or Alaska Native", .65), ("White", .15), ("Unknown", .1), ("Other", .1)]
HOSP_B_RACE[P] = [("Native Hawaiian or Other Pacific Islander", .65), ("Asian", .15), ("Unknown", .1), ("Other", .1)]
SCHOOL_FLAGS = ("RACE_AMERICAN_INDIAN", "RACE_ASIAN", "RACE_BLACK", "RACE_PACIFIC_ISLANDER", "RACE_WHITE", "RACE_MENA")
SCHOOL_FLAG_OF = {W: 4, B: 2, A: 1, P: 3, I: 0, M: 5}

STREET_WORDS = {"ST": "STREET", "AVE": "AVENUE", "DR": "DRIVE", "RD": "ROAD", "LN": "LANE", "CT": "COURT",
                "PL": "PLACE", "CIR": "CIRCLE", "BLVD": "BOULEVARD", "TRL": "TRAIL", "PKWY": "PARKWAY",
                "TER": "TERRACE"}
DIRECTIONS = {"N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST"}
MONTHS = np.array(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], dtype=object)


def _frame(cols: dict) -> pd.DataFrame:
    """String columns as plain object arrays (no Arrow conversion: they only go to CSV)."""
    return pd.DataFrame({k: np.asarray(v, dtype=object) for k, v in cols.items()}, dtype=object)


def _cat(rng, key: np.ndarray, table: dict) -> np.ndarray:
    out = np.empty(len(key), dtype=object)
    for k, opts in table.items():
        idx = np.flatnonzero(key == k)
        if len(idx):
            codes = np.array([c for c, _ in opts], dtype=object)
            p = np.array([w for _, w in opts], dtype=float)
            out[idx] = codes[rng.choice(len(codes), len(idx), p=p / p.sum())]
    return out


def _race_parts(pop: Population, person: np.ndarray, rng):
    """(race used for a single-race question, is Hispanic, is multiracial across races, second race)."""
    race, c1, c2 = pop.race[person], pop.comp1[person], pop.comp2[person]
    multi = race == MULTI
    hisp = (race == H) | (multi & ((c1 == H) | (c2 == H)))
    # a multiracial person with a Hispanic component is, on a two-question form, a Hispanic of the other race
    other = np.where(c1 == H, c2, c1)
    single = np.where(multi, other, race)
    multi_race = multi & (c1 != H) & (c2 != H)
    pick2 = rng.random(len(person)) < 0.5
    single = np.where(multi_race & pick2, c2, single)
    return single.astype(np.int8), hisp, multi_race, c1, c2


@lru_cache(maxsize=4)
def _date_tables(lo: int, hi: int) -> dict[str, np.ndarray]:
    days = np.arange(lo, hi + 1).astype("datetime64[D]")
    iso = pd.Series(np.datetime_as_string(days, unit="D"), dtype=object)
    y, m, d = iso.str.slice(0, 4), iso.str.slice(5, 7), iso.str.slice(8, 10)
    mon = pd.Series(MONTHS[m.astype(int).to_numpy() - 1], dtype=object)
    tables = {"iso": iso, "mdy": m + "/" + d + "/" + y, "ymd": y + m + d, "dmy": d + "-" + mon + "-" + y}
    return {k: np.array(v.to_numpy(dtype=object), dtype=object) for k, v in tables.items()}


class Formatter:
    """String formatting tables for one run (dates, times, streets)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.lo = int(world.end) - 100 * 366 - 4000
        tables = _date_tables(self.lo, int(world.end) + 800)
        self.iso, self.mdy, self.ymd, self.dmy = tables["iso"], tables["mdy"], tables["ymd"], tables["dmy"]
        self.hhmm = np.array([f"{h:02d}:{mm:02d}" for h in range(24) for mm in range(60)], dtype=object)
        streets = np.unique(world.streets.ravel())
        self.street_words = dict(zip(streets, [self._expand(s) for s in streets]))

    @staticmethod
    def _expand(s: str) -> str:
        parts = s.split(" ")
        if parts[-1] in STREET_WORDS:
            parts[-1] = STREET_WORDS[parts[-1]]
        if len(parts) > 2 and parts[0] in DIRECTIONS:
            parts[0] = DIRECTIONS[parts[0]]
        return " ".join(parts)

    def date(self, days: np.ndarray, fmt: str) -> np.ndarray:
        table = {"iso": self.iso, "mdy": self.mdy, "ymd": self.ymd, "dmy": self.dmy}[fmt]
        days = np.asarray(days, dtype=np.int64)
        ok = (days >= self.lo) & (days < self.lo + len(table))
        out = np.full(len(days), "", dtype=object)
        out[ok] = table[days[ok] - self.lo]
        return out

    def time(self, minute: np.ndarray) -> np.ndarray:
        return self.hhmm[np.asarray(minute, dtype=np.int64)]

    def address(self, ident: Identity, rng, *, expand_p: float, unit_words: tuple[str, ...]) -> np.ndarray:
        n = len(ident.house)
        street = ident.street.copy()
        ex = np.flatnonzero((rng.random(n) < expand_p) & (street != ""))
        if len(ex):
            street[ex] = pd.Series(street[ex]).map(self.street_words).fillna(pd.Series(street[ex])).to_numpy()
        out = ident.house.astype(str).astype(object) + " " + street
        has_unit = ident.unit != ""
        words = np.array(unit_words, dtype=object)[rng.integers(0, len(unit_words), n)]
        out[has_unit] = out[has_unit] + " " + words[has_unit] + ident.unit[has_unit]
        out[ident.addr_missing] = ""
        return out

    def zip(self, ident: Identity) -> np.ndarray:
        z = self.world.ref.zip[ident.tract].astype(object)
        z[ident.zip_missing] = ""
        return z


def _ssn(ssn: np.ndarray, dashed: bool) -> np.ndarray:
    s = pd.Series(ssn).astype(str).str.zfill(9)
    if dashed:
        s = s.str.slice(0, 3) + "-" + s.str.slice(3, 5) + "-" + s.str.slice(5, 9)
    out = np.array(s.to_numpy(dtype=object), dtype=object)
    out[ssn < 0] = ""
    return out


def _title(a: np.ndarray) -> np.ndarray:
    out = np.array(pd.Series(a, dtype=object).str.title().to_numpy(dtype=object), dtype=object)
    roman = np.flatnonzero(pd.Series(out, dtype=object).str.contains(" I[iv]", regex=True).to_numpy(dtype=bool))
    for i in roman:  # suffixes II, III, IV stay upper case
        out[i] = " ".join(w.upper() if w in ("Ii", "Iii", "Iv") else w for w in out[i].split(" "))
    return out


def _sex(sex: np.ndarray, m: str, f: str, u: str) -> np.ndarray:
    return np.where(sex == 1, m, np.where(sex == 0, f, u)).astype(object)


def _yn(b: np.ndarray) -> np.ndarray:
    return np.where(b, "Y", "N").astype(object)


# ---------------------------------------------------------------------------------------------- person files
def person_frame(partner: str, fmt: Formatter, rng, pop: Population, person: np.ndarray, ident: Identity,
                 rid: np.ndarray, first_seen: np.ndarray) -> pd.DataFrame:
    n = len(person)
    single, hisp, multi_race, c1, c2 = _race_parts(pop, person, rng)
    age = (first_seen - pop.dob[person]) / 365.2425
    if partner == "county":
        race = _cat(rng, single, COUNTY_RACE)
        u = rng.random(n)
        race[multi_race & (u < 0.7)] = "7"
        race[multi_race & (u >= 0.95)] = "9"
        hisp_ind = np.where(hisp, _cat(rng, np.zeros(n), {0: [("Y", .9), ("U", .07), ("N", .03)]}),
                            _cat(rng, np.zeros(n), {0: [("N", .9), ("U", .08), ("Y", .02)]}))
        method = np.where(age < 14, _cat(rng, np.zeros(n), {0: [("PROXY", .85), ("SELF", .05), ("UNK", .1)]}),
                          _cat(rng, np.zeros(n), {0: [("SELF", .85), ("PROXY", .07), ("UNK", .08)]}))
        method = np.where((race == "9") & (rng.random(n) < 0.7), "UNK", method)
        tract = fmt.world.ref.tract[ident.tract].astype(object)
        tract[ident.addr_missing] = ""
        return _frame({
            "CLIENT_ID": pd.Series(rid).map("C{:08d}".format).to_numpy(dtype=object),
            "FIRST_NM": ident.first, "MIDDLE_NM": ident.middle, "LAST_NM": ident.last, "NAME_SUFFIX": ident.suffix,
            "DOB": fmt.date(ident.dob, "mdy"), "GENDER": _sex(ident.sex, "M", "F", "U"), "SSN": _ssn(ident.ssn, True),
            "RACE_CD": race, "HISP_IND": hisp_ind, "RACE_METHOD": method,
            "ADDR_LINE1": fmt.address(ident, rng, expand_p=0.05, unit_words=("APT ",)), "ZIP": fmt.zip(ident),
            "CENSUS_TRACT": tract})
    if partner == "police":
        race = _cat(rng, single, POLICE_RACE)
        has_b = multi_race & ((c1 == B) | (c2 == B))
        u = rng.random(n)
        race[has_b & (u < 0.8)] = "B"
        race[multi_race & (u >= 0.95)] = "U"
        eth = np.where(hisp, _cat(rng, np.zeros(n), {0: [("H", .65), ("N", .15), ("U", .2)]}),
                       _cat(rng, np.zeros(n), {0: [("N", .75), ("U", .23), ("H", .02)]}))
        return _frame({
            "PERSON_ID": pd.Series(rid).map("P{:09d}".format).to_numpy(dtype=object),
            "LNAME": ident.last, "FNAME": ident.first, "MNAME": ident.middle, "SFX": ident.suffix,
            "DOB": fmt.date(ident.dob, "ymd"), "SEX": _sex(ident.sex, "M", "F", "U"), "RACE": race, "ETHNICITY": eth,
            "SSN": _ssn(ident.ssn, False),
            "ADDRESS": fmt.address(ident, rng, expand_p=0.3, unit_words=("APT ", "#", "UNIT ")), "ZIP": fmt.zip(ident)})
    if partner == "schools":
        flags = np.zeros((n, 6), dtype=bool)
        for r, col in SCHOOL_FLAG_OF.items():  # single race (also the race of a Hispanic multiracial person)
            flags[:, col] |= single == r
        # Hispanic only: White half the time, some Black or American Indian, a third no race at all
        hr = pop.race[person] == H
        u = rng.random(n)
        flags[:, 4] |= hr & ((u < 0.5) | ((u >= 0.63) & (u < 0.65)))
        flags[:, 2] |= hr & (u >= 0.5) & (u < 0.55)
        flags[:, 0] |= hr & (u >= 0.55) & (u < 0.65)
        for r, col in SCHOOL_FLAG_OF.items():  # multiracial: every race reported
            flags[:, col] |= multi_race & ((c1 == r) | (c2 == r))
        mena = single == M
        to_white = mena & (rng.random(n) < 0.25)
        flags[to_white, 5], flags[to_white, 4] = False, True
        ai = (single == I) & (rng.random(n) < 0.2)
        flags[ai, 4] = True
        pi_ = (single == P) & (rng.random(n) < 0.2)
        flags[pi_, 1] = True
        unknown = rng.random(n) < 0.02
        flags[unknown] = False
        his = np.where(hisp, rng.random(n) < 0.97, rng.random(n) < 0.01) & ~unknown
        reporter = np.where(age < 14, np.where(rng.random(n) < 0.95, "PARENT", "SELF"),
                            np.where(rng.random(n) < 0.4, "SELF", "PARENT")).astype(object)
        cols = {"STUDENT_ID": rid.astype(str).astype(object), "LAST_NAME": _title(ident.last),
                "FIRST_NAME": _title(ident.first), "MIDDLE_NAME": _title(ident.middle),
                "BIRTH_DATE": fmt.date(ident.dob, "iso"), "GENDER": _sex(ident.sex, "M", "F", "X"),
                "HISPANIC_LATINO": _yn(his)}
        for j, c in enumerate(SCHOOL_FLAGS):
            cols[c] = _yn(flags[:, j])
        cols["RACE_REPORTER"] = reporter
        cols["HOME_ADDRESS"] = _title(fmt.address(ident, rng, expand_p=0.1, unit_words=("APT ",)))
        cols["HOME_ZIP"] = fmt.zip(ident)
        return _frame(cols)
    if partner == "hospital_a":
        race = _cat(rng, single, HOSP_A_RACE)
        u = rng.random(n)
        joined = np.array([";".join(sorted((HOSP_A_CODE[a], HOSP_A_CODE[b]))) if a in HOSP_A_CODE and b in HOSP_A_CODE
                           else "" for a, b in zip(c1, c2)], dtype=object) if multi_race.any() else np.full(n, "")
        race = np.where(multi_race & (u < 0.65), joined, race)
        race = np.where(multi_race & (u >= 0.8) & (u < 0.9), "2131-1", race)
        race = np.where(multi_race & (u >= 0.9), np.where(u >= 0.95, "ASKU", "UNK"), race).astype(object)
        eth = np.where(hisp, _cat(rng, np.zeros(n), {0: [("2135-2", .88), ("UNK", .08), ("ASKU", .04)]}),
                       _cat(rng, np.zeros(n), {0: [("2186-5", .88), ("UNK", .09), ("ASKU", .03)]}))
        return _frame({
            "MRN": rid.astype(str).astype(object), "PAT_FIRST_NAME": _title(ident.first),
            "PAT_MIDDLE_NAME": _title(ident.middle), "PAT_LAST_NAME": _title(ident.last),
            "BIRTH_DATE": fmt.date(ident.dob, "iso"), "SEX_C": _sex(ident.sex, "2", "1", "3"),
            "SSN": _ssn(ident.ssn, False), "RACE_CODE": race, "ETHNIC_CODE": eth,
            "ADD_LINE_1": _title(fmt.address(ident, rng, expand_p=0.5, unit_words=("APT ", "UNIT "))),
            "ZIP": fmt.zip(ident)})
    if partner == "hospital_b":
        race = _cat(rng, single, HOSP_B_RACE)
        u = rng.random(n)
        race = np.where(multi_race & (u < 0.6), "Multiple", race)
        race = np.where(multi_race & (u >= 0.8) & (u < 0.9), "Other", race)
        race = np.where(multi_race & (u >= 0.9), np.where(u >= 0.95, "Declined", "Unknown"), race).astype(object)
        eth = np.where(hisp, _cat(rng, np.zeros(n), {0: [("Hispanic or Latino", .85), ("Unknown", .08),
                                                          ("Declined", .07)]}),
                       _cat(rng, np.zeros(n), {0: [("Not Hispanic or Latino", .85), ("Unknown", .1),
                                                   ("Declined", .05)]}))
        last = ident.last.copy()
        sfx = ident.suffix != ""
        last[sfx] = last[sfx] + " " + ident.suffix[sfx]
        given = ident.first.copy()
        mid = ident.middle != ""
        given[mid] = given[mid] + " " + ident.middle[mid]
        return _frame({
            "PERSON_ID": rid.astype(str).astype(object), "NAME_FULL_FORMATTED": last + ", " + given,
            "BIRTH_DT_TM": fmt.date(ident.dob, "dmy"), "SEX_CD": _sex(ident.sex, "Male", "Female", "Unknown"),
            "SSN": _ssn(ident.ssn, True), "RACE_DISP": race, "ETHNIC_GRP_DISP": eth,
            "STREET_ADDR": fmt.address(ident, rng, expand_p=0.15, unit_words=("APT ", "UNIT ", "# ")),
            "ZIPCODE": fmt.zip(ident)})
    raise ValueError(f"unknown partner {partner!r}")


# ----------------------------------------------------------------------------------------------- event files
def services_frame(fmt: Formatter, df: pd.DataFrame, sid: np.ndarray, client: np.ndarray,
                   period: np.ndarray) -> pd.DataFrame:
    end = df["end"].to_numpy()
    as_of = fmt.world.period_ends[period]
    end_s = fmt.date(end, "mdy")
    end_s[(end > as_of) | (end >= NEVER)] = ""
    code = df["code"].to_numpy(dtype=object)
    return _frame({
        "SERVICE_ID": pd.Series(sid).map("S{:09d}".format).to_numpy(dtype=object),
        "CLIENT_ID": pd.Series(client).map("C{:08d}".format).to_numpy(dtype=object),
        "DEPT": pd.Series(code).map(SERVICE_DEPT).to_numpy(dtype=object), "SERVICE_CD": code,
        "SERVICE_START_DT": fmt.date(df["date"].to_numpy(), "mdy"), "SERVICE_END_DT": end_s})


def incidents_frame(fmt: Formatter, df: pd.DataFrame, inc_year: np.ndarray, inc_num: np.ndarray,
                    pid: np.ndarray) -> pd.DataFrame:
    iid = "I" + pd.Series(inc_year).astype(str) + pd.Series(inc_num).astype(str).str.zfill(7)
    date = df["date"].to_numpy()
    tr = df["tract"].to_numpy()
    return _frame({
        "INCIDENT_ID": iid.to_numpy(dtype=object),
        "PERSON_ID": pd.Series(pid).map("P{:09d}".format).to_numpy(dtype=object),
        "ROLE": df["role"].to_numpy(dtype=object), "OFFENSE_CD": df["offense"].to_numpy(dtype=object),
        "VIOLENT_FLAG": _yn(df["violent"].to_numpy()), "FIREARM_FLAG": _yn(df["firearm"].to_numpy()),
        "DOMESTIC_FLAG": _yn(df["domestic"].to_numpy()),
        "INCIDENT_DT": fmt.date(date, "iso") + " " + fmt.time(df["minute"].to_numpy()),
        "CENSUS_TRACT": fmt.world.ref.tract[tr].astype(object), "ZIP": fmt.world.ref.zip[tr].astype(object)})


def enrollments_frame(df: pd.DataFrame, sid: np.ndarray) -> pd.DataFrame:
    y = df["year"].to_numpy()
    g = df["grade"].to_numpy()
    grade = np.where(g == 0, "KG", pd.Series(g).astype(str).str.zfill(2).to_numpy(dtype=object)).astype(object)
    return _frame({
        "STUDENT_ID": sid.astype(str).astype(object),
        "SCHOOL_YEAR": (pd.Series(y).astype(str) + "-" + pd.Series(y + 1).astype(str)).to_numpy(dtype=object),
        "SCHOOL_CODE": df["school"].to_numpy(dtype=object), "GRADE_LEVEL": grade,
        "DAYS_ENROLLED": df["days"].astype(str).to_numpy(dtype=object),
        "DAYS_ABSENT": df["absent"].astype(str).to_numpy(dtype=object)})


def suspensions_frame(fmt: Formatter, df: pd.DataFrame, incno: np.ndarray, sid: np.ndarray) -> pd.DataFrame:
    return _frame({
        "INCIDENT_NO": incno.astype(str).astype(object), "STUDENT_ID": sid.astype(str).astype(object),
        "INCIDENT_DATE": fmt.date(df["date"].to_numpy(), "mdy"),
        "SUSP_TYPE": np.where(df["oss"].to_numpy(), "OSS", "ISS").astype(object),
        "SUSP_DAYS": df["days"].astype(str).to_numpy(dtype=object), "REASON_CD": df["reason"].to_numpy(dtype=object)})


def _injury_text(rng, df: pd.DataFrame, missing_ext: float):
    cat = df["cat"].to_numpy()
    ext = df["ext"].to_numpy(dtype=object).copy()
    injury = cat != CAT["none"]
    ext[injury & (rng.random(len(df)) < missing_ext)] = ""
    intent = np.array([CATEGORIES[c][2] for c in CAT_NAMES], dtype=object)[cat]
    mech = np.array([CATEGORIES[c][3] for c in CAT_NAMES], dtype=object)[cat]
    blank = injury & (rng.random(len(df)) < 0.05)
    intent[blank] = ""
    return ext, intent, mech


def encounters_frame(fmt: Formatter, rng, df: pd.DataFrame, csn: np.ndarray, mrn: np.ndarray) -> pd.DataFrame:
    ext, _, _ = _injury_text(rng, df, 0.12)
    secs = pd.Series(rng.integers(0, 60, len(df))).astype(str).str.zfill(2).to_numpy(dtype=object)
    return _frame({
        "PAT_ENC_CSN_ID": csn.astype(str).astype(object), "MRN": mrn.astype(str).astype(object),
        "ADMIT_DTTM": fmt.date(df["date"].to_numpy(), "iso") + " " + fmt.time(df["minute"].to_numpy()) + ":" + secs,
        "ENC_TYPE": np.where(df["inpatient"].to_numpy(), "INPATIENT", "ED").astype(object),
        "DX_PRIMARY": df["dx"].to_numpy(dtype=object), "EXT_CAUSE_CD": ext,
        "DISPOSITION": df["dispo"].to_numpy(dtype=object)})


def visits_frame(fmt: Formatter, rng, df: pd.DataFrame, eid: np.ndarray, pid: np.ndarray) -> pd.DataFrame:
    ext, intent, mech = _injury_text(rng, df, 0.2)
    return _frame({
        "ENCNTR_ID": eid.astype(str).astype(object), "PERSON_ID": pid.astype(str).astype(object),
        "REG_DT_TM": fmt.date(df["date"].to_numpy(), "mdy") + " " + fmt.time(df["minute"].to_numpy()),
        "ENCNTR_TYPE_DISP": np.where(df["inpatient"].to_numpy(), "Inpatient", "Emergency").astype(object),
        "DIAG_CD": df["dx"].to_numpy(dtype=object), "ECODE": ext, "INTENT_DISP": intent, "MECHANISM_DISP": mech})
