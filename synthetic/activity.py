"""What happens to the persons of one chunk: police contacts, hospital encounters, school years, county services.

Everything here is about true persons (chunk-local index ``person``) and true dates (day numbers); record ids,
identifier noise and each source's layout come later (``synthetic.identity``, ``synthetic.layouts``).

Causal structure (kept simple, but with the shape evaluators need):
- a latent risk (age, sex, place, individual) drives police contacts, violent roles, assault injuries and
  school discipline; violence concentrates in the priority areas and among young adults;
- many violent police victimisations produce a hospital visit the same day (assault injury);
- Alternatives to Violence (ATV) enrolls a share of young people after a violent police contact in or from a
  priority area; hospital-based violence intervention (HVIP) enrolls a share of people after an assault injury
  visit; enrollment comes after the qualifying event, and is likelier the more police contacts and assault
  injuries the person had in the year before it (selection on prior risk: a naive before/after is biased);
- the programs' true effects (``SynthConfig.effects``, :class:`synthetic.config.ProgramEffects`) thin the
  events they prevent: ATV participants' violent police contacts in the window after enrollment, HVIP
  participants' later assault injuries, and violent incidents in one priority area after a place-based
  program's start date;
- homicide victims and patients who die have no events afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date as _date

import numpy as np
import pandas as pd

from synthetic.population import Population
from synthetic.world import EPOCH, World, day

NEVER = np.iinfo(np.int64).max // 4

# ----------------------------------------------------------------------------------------------- police codes
VIOLENT_OFF = np.array(["13B", "13A", "120", "11A", "09A"], dtype=object)
VIOLENT_OFF_P = np.array([0.48, 0.32, 0.13, 0.06, 0.01])
OTHER_OFF = np.array(["23H", "220", "35A", "520"], dtype=object)
OTHER_OFF_P = np.array([0.42, 0.20, 0.23, 0.15])
FIREARM_P = {"09A": 0.8, "13A": 0.45, "120": 0.38, "520": 0.85, "11A": 0.02}
DOMESTIC_P = {"13B": 0.4, "13A": 0.22, "09A": 0.12, "11A": 0.35}
HOUR_VIOLENT = np.array([8, 7, 6, 4, 3, 2, 1.5, 1.5, 2, 2.5, 3, 3.5, 4, 4, 4.5, 5, 5.5, 6, 6.5, 7, 8, 9, 9.5, 9])
HOUR_DAY = np.array([2, 1.5, 1, 1, 1, 1.5, 2, 4, 6, 7, 7.5, 7.5, 7.5, 7.5, 7.5, 7.5, 7, 6.5, 6, 5, 4.5, 4, 3, 2.5])
HOUR_ED = np.array([3, 2.5, 2, 2, 2, 2, 2.5, 3.5, 5, 6, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6, 5.5, 5, 4.5, 4, 3.5])

# --------------------------------------------------------------------------------------------- hospital codes
FIREARM_DX = ["S21.109A", "S31.109A", "S71.109A", "S41.109A", "S01.81XA"]
BLUNT_DX = ["S00.83XA", "S02.2XXA", "S06.0X0A", "S09.90XA", "S20.219A", "S01.81XA"]
#: category -> (external cause codes with weights, diagnosis codes, hospital B intent, hospital B mechanism)
CATEGORIES: dict[str, tuple[list[tuple[str, float]], list[str], str, str]] = {
    "assault_firearm": ([("X95.9XXA", 0.6), ("X93.XXXA", 0.3), ("X94.9XXA", 0.1)], FIREARM_DX, "Assault", "Firearm"),
    "assault_sharp": ([("X99.9XXA", 0.7), ("X99.1XXA", 0.3)], ["S61.419A", "S21.109A", "S31.109A", "S01.81XA"],
                      "Assault", "Cut/pierce"),
    "assault_bodily": ([("Y04.0XXA", 0.7), ("Y04.8XXA", 0.3)], BLUNT_DX, "Assault", "Struck by/against"),
    "assault_other": ([("Y00.XXXA", 0.5), ("Y09", 0.5)], BLUNT_DX, "Assault", "Other"),
    "assault_sexual": ([("Y09", 1.0)], ["T74.21XA"], "Assault", "Other"),
    "self_firearm": ([("X74.9XXA", 0.5), ("X72.XXXA", 0.5)], FIREARM_DX, "Self-harm", "Firearm"),
    "self_sharp": ([("X78.9XXA", 1.0)], ["S61.419A", "S51.819A"], "Self-harm", "Cut/pierce"),
    "self_poison": ([("", 1.0)], ["T39.1X2A", "T42.4X2A"], "Self-harm", "Other"),
    "acc_firearm": ([("W34.00XA", 0.5), ("W32.0XXA", 0.5)], FIREARM_DX, "Accident", "Firearm"),
    "undet_firearm": ([("Y24.9XXA", 1.0)], FIREARM_DX, "Undetermined", "Firearm"),
    "mvc": ([("V43.52XA", 0.5), ("V89.2XXA", 0.5)], ["S13.4XXA", "S39.012A", "S06.0X0A", "S20.219A", "S52.501A"],
            "Accident", "Motor vehicle"),
    "fall": ([("W19.XXXA", 0.6), ("W01.0XXA", 0.4)], ["S72.001A", "S52.501A", "S09.90XA", "S93.401A", "S01.81XA"],
             "Accident", "Fall"),
    "struck": ([("W22.8XXA", 0.5), ("W50.0XXA", 0.5)], ["S00.83XA", "S09.90XA", "S93.401A", "S61.419A"],
               "Accident", "Struck by/against"),
    "none": ([("", 1.0)], ["J06.9", "R07.9", "R10.9", "N39.0", "K21.9", "I10", "E11.9", "J45.909", "M54.50", "R51.9",
                           "J02.9", "A09", "R50.9", "F32.A", "F41.9", "R55", "J18.9", "I50.9", "U07.1", "R11.2",
                           "L03.90", "O80", "I21.9", "F10.129"], "", ""),
}
CAT_NAMES = tuple(CATEGORIES)
CAT = {c: i for i, c in enumerate(CAT_NAMES)}
ASSAULT_CATS = np.array([CAT[c] for c in CAT_NAMES if c.startswith("assault")])

# --------------------------------------------------------------------------------------------- county codes
SERVICE_DEPT = {"SNAP": "DSS", "MEDICAID": "DSS", "HOUSING": "CSS", "WIC": "PH", "BEHAV_HEALTH": "PH",
                "PRETRIAL": "CJS", "PROBATION_SUPPORT": "CJS", "ATV_ENROLL": "CSS", "HVIP_ENROLL": "CSS"}
SERVICE_DAYS = {"SNAP": (180, 720), "MEDICAID": (365, 1095), "HOUSING": (90, 540), "WIC": (180, 900),
                "BEHAV_HEALTH": (30, 365), "PRETRIAL": (30, 200), "PROBATION_SUPPORT": (180, 720),
                "ATV_ENROLL": (90, 365), "HVIP_ENROLL": (60, 300)}
GENERIC_MIX = {  # life stage -> (codes, weights)
    "infant": (["WIC", "MEDICAID", "SNAP", "HOUSING"], [0.35, 0.45, 0.15, 0.05]),
    "child": (["MEDICAID", "SNAP", "BEHAV_HEALTH", "HOUSING"], [0.55, 0.25, 0.12, 0.08]),
    "mother": (["SNAP", "MEDICAID", "WIC", "HOUSING", "BEHAV_HEALTH"], [0.28, 0.25, 0.2, 0.12, 0.15]),
    "adult": (["SNAP", "MEDICAID", "HOUSING", "BEHAV_HEALTH"], [0.35, 0.22, 0.18, 0.25]),
    "senior": (["MEDICAID", "SNAP", "HOUSING", "BEHAV_HEALTH"], [0.45, 0.3, 0.15, 0.1]),
}
SUSP_REASONS = np.array(["FIGHT", "DISRUPT", "OTHER", "ASSAULT", "DRUGS", "BULLY", "WEAPON"], dtype=object)
SUSP_REASON_P = np.array([0.33, 0.22, 0.15, 0.10, 0.08, 0.07, 0.05])
SUSP_OSS_P = {"WEAPON": 0.95, "ASSAULT": 0.85, "FIGHT": 0.6, "DRUGS": 0.8, "BULLY": 0.5, "DISRUPT": 0.3, "OTHER": 0.35}

#: what counts as prior risk for selection into a program: police contacts (any role) and assault-injury visits
#: in the PRIOR_DAYS before the qualifying event (the same definition the evaluation matches on).
PRIOR_DAYS = 365


@dataclass
class Activity:
    police: pd.DataFrame  # person, date, minute, role, offense, violent, firearm, domestic, tract, inc
    hospital: dict[str, pd.DataFrame]  # 'hospital_a'/'hospital_b': person, date, minute, cat, inpatient, dispo, ...
    enrollments: pd.DataFrame  # person, date (entry), year, grade, school, days, absent
    suspensions: pd.DataFrame  # person, date, year, reason, oss, days, inc
    county: pd.DataFrame  # person, date, end, code


def _mean(x: np.ndarray) -> float:
    return max(float(x.mean()), 1e-9) if len(x) else 1.0


def _norm_p(target: float, m: np.ndarray, cap: float = 0.95) -> np.ndarray:
    return np.clip(target * m / _mean(m), 0.0, cap)


def _uniform_days(rng, lo: np.ndarray, hi: int | np.ndarray) -> np.ndarray:
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.broadcast_to(np.asarray(hi, dtype=np.int64), lo.shape)
    return lo + np.floor(rng.random(len(lo)) * (np.maximum(hi - lo, 0) + 1)).astype(np.int64)


def _minutes(rng, n: int, hour_w: np.ndarray) -> np.ndarray:
    h = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    return (h * 60 + rng.integers(0, 60, n)).astype(np.int32)


def _pick(rng, table: dict, keys: np.ndarray, default: float = 0.0) -> np.ndarray:
    p = np.array([table.get(k, default) for k in keys], dtype=float) if len(keys) else np.zeros(0)
    return rng.random(len(keys)) < p


def _age_at(pop: Population, person: np.ndarray, date: np.ndarray) -> np.ndarray:
    return (date - pop.dob[person]) / 365.2425


# ------------------------------------------------------------------------------------------------------ police
def _police(rng, world: World, pop: Population) -> pd.DataFrame:
    age_end = pop.age
    m = (0.35 + pop.risk) * np.where(age_end < 6, 0.1, 1.0)
    present = rng.random(pop.n) < _norm_p(0.185, m)
    pi = np.flatnonzero(present)
    r = 0.3 + pop.risk[pi]
    k = 1 + rng.poisson(0.9 * r / _mean(r))
    person = np.repeat(pi, k)
    n = len(person)
    lo = np.maximum(world.start, pop.dob[person] + 3 * 365)
    lo = np.where(lo > world.end, np.maximum(world.start, pop.dob[person]), lo)
    date = _uniform_days(rng, lo, world.end)
    age = _age_at(pop, person, date)
    risk = pop.risk[person]
    male = pop.male[person]
    violent = rng.random(n) < np.clip(0.2 + 0.25 * np.log1p(risk), 0.1, 0.85)
    violent |= age < 12
    offense = np.where(violent, VIOLENT_OFF[rng.choice(5, n, p=VIOLENT_OFF_P)], OTHER_OFF[rng.choice(4, n, p=OTHER_OFF_P)])
    u = rng.random(n)
    p_vic = np.where(male, 0.5 - 0.08 * np.minimum(np.log1p(risk), 2.0), 0.72)
    p_vic = np.where(np.isin(offense, ["23H", "220"]), 0.62, p_vic)
    p_vic = np.where(np.isin(offense, ["35A", "520"]), 0.0, p_vic)
    rest = (1 - p_vic)
    role = np.where(u < p_vic, "VIC", np.where(u < p_vic + rest * np.where(p_vic == 0, 0.4, 0.6), "SUS", "ARR"))
    child = age < 12
    role = np.where(child, "VIC", role).astype(object)
    offense = np.where(child & ~np.isin(offense, ["13B", "11A", "13A"]), "13B", offense).astype(object)
    firearm = _pick(rng, FIREARM_P, offense)
    dom_p = np.array([DOMESTIC_P.get(o, 0.0) for o in offense]) * np.where(~male & (role == "VIC"), 1.6, 1.0)
    domestic = rng.random(n) < np.minimum(dom_p, 0.9)
    home = (rng.random(n) < 0.55) | domestic
    tract = np.where(home, pop.tract[person],
                     rng.choice(len(world.violence_tract_p), size=n, p=world.violence_tract_p)).astype(np.int32)
    minute = np.where(np.isin(offense, VIOLENT_OFF), _minutes(rng, n, HOUR_VIOLENT), _minutes(rng, n, HOUR_DAY))
    df = pd.DataFrame({"person": person, "date": date, "minute": minute, "role": role, "offense": offense,
                       "violent": np.isin(offense, VIOLENT_OFF), "firearm": firearm, "domestic": domestic,
                       "tract": tract, "inc": np.arange(n, dtype=np.int64), "paired": np.zeros(n, bool)})
    # some violent incidents have a victim and a suspect who are both in the population
    vic = np.flatnonzero(df["violent"].to_numpy() & (role == "VIC") & ~domestic)
    sus = np.flatnonzero(df["violent"].to_numpy() & (role != "VIC"))
    k_pairs = int(min(len(vic), len(sus)) * 0.45)
    if k_pairs:
        v = rng.permutation(vic)[:k_pairs]
        s = rng.permutation(sus)[:k_pairs]
        vdate = date[v]
        ok = (person[v] != person[s]) & ((vdate - pop.dob[person[s]]) > 12 * 365)
        v, s = v[ok], s[ok]
        for c in ("date", "minute", "offense", "firearm", "domestic", "tract", "inc"):
            col = df[c].to_numpy().copy()
            col[s] = col[v]
            df[c] = col
        paired = df["paired"].to_numpy().copy()
        paired[v] = paired[s] = True
        df["paired"] = paired
    return df


# ---------------------------------------------------------------------------------------------------- hospitals
def _hospital_codes(rng, df: pd.DataFrame, pop: Population, linked_dead: np.ndarray) -> pd.DataFrame:
    n = len(df)
    cat = df["cat"].to_numpy()
    age = _age_at(pop, df["person"].to_numpy(), df["date"].to_numpy())
    ext = np.empty(n, dtype=object)
    dx = np.empty(n, dtype=object)
    for ci, name in enumerate(CAT_NAMES):
        idx = np.flatnonzero(cat == ci)
        if not len(idx):
            continue
        codes, dxs = CATEGORIES[name][0], CATEGORIES[name][1]
        ext[idx] = np.array([c for c, _ in codes], dtype=object)[
            rng.choice(len(codes), len(idx), p=np.array([w for _, w in codes]) / sum(w for _, w in codes))]
        if name == "none":
            pool = np.array(dxs, dtype=object)
            d = pool[rng.integers(0, len(pool), len(idx))]
            female_adult = (~pop.male[df["person"].to_numpy()[idx]]) & (age[idx] > 16) & (age[idx] < 45)
            d = np.where((d == "O80") & ~female_adult, "R10.9", d)
            d = np.where(np.isin(d, ["I21.9", "I50.9"]) & (age[idx] < 40), "R07.9", d)
            dx[idx] = d
        else:
            dx[idx] = np.array(dxs, dtype=object)[rng.integers(0, len(dxs), len(idx))]
    injury = cat != CAT["none"]
    firearm = np.isin(cat, [CAT[c] for c in CAT_NAMES if c.endswith("firearm")])
    inpatient = rng.random(n) < np.where(firearm, 0.4, np.where(injury, 0.1, np.where(age >= 65, 0.3, 0.1)))
    inpatient |= dx == "O80"
    u = rng.random(n)
    expired_p = np.where(firearm, 0.05, np.where(inpatient & (age >= 70), 0.04, 0.002))
    ed_dispo = np.where(u < expired_p, "EXPIRED",
                        np.where(u < expired_p + np.where(firearm, 0.35, 0.07), "ADMIT",
                                 np.where(u < expired_p + np.where(firearm, 0.4, 0.09), "TRANSFER", "HOME")))
    ip_dispo = np.where(u < expired_p, "EXPIRED", np.where(u < expired_p + 0.1, "TRANSFER", "HOME"))
    dispo = np.where(inpatient, ip_dispo, ed_dispo).astype(object)
    dispo[linked_dead] = "EXPIRED"
    df["ext"], df["dx"], df["inpatient"], df["dispo"] = ext, dx, inpatient, dispo
    return df


def _hospital(rng, world: World, pop: Population, police: pd.DataFrame) -> dict[str, pd.DataFrame]:
    share_a = world.ref.hospital_a_share[pop.tract]
    age = pop.age
    age_f = np.select([age < 5, age < 18, age < 45, age < 65], [1.3, 0.7, 1.0, 1.1], 1.4)
    dep_f = 0.8 + 0.4 * world.ref.deprivation[pop.tract]
    out = {}
    # police-linked assault injuries: the victim is seen the same day
    pv = police[(police["role"] == "VIC")]
    link_p = {"09A": 0.55, "13A": 0.6, "120": 0.18, "13B": 0.07, "11A": 0.45}
    pv = pv[_pick(rng, link_p, pv["offense"].to_numpy())]
    lp = pv["person"].to_numpy()
    go_a = rng.random(len(pv)) < share_a[lp] / (share_a[lp] + 0.75 * (1 - share_a[lp]))
    off = pv["offense"].to_numpy()
    fa = pv["firearm"].to_numpy()
    u = rng.random(len(pv))
    lcat = np.select(
        [fa, off == "11A", (off == "13A") & (u < 0.5), (off == "13A") & (u < 0.8)],
        [CAT["assault_firearm"], CAT["assault_sexual"], CAT["assault_sharp"], CAT["assault_bodily"]],
        np.where(u < 0.9, CAT["assault_bodily"], CAT["assault_other"]))
    ldead = off == "09A"
    for h, target, in_a in (("hospital_a", 0.40, True), ("hospital_b", 0.30, False)):
        share = share_a if in_a else 1 - share_a
        m = age_f * dep_f * share
        present = rng.random(pop.n) < _norm_p(target, m)
        sel = go_a if in_a else ~go_a
        present[lp[sel]] = True
        pi = np.flatnonzero(present)
        f = age_f[pi]
        k = 1 + rng.poisson(1.0 * f / _mean(f))
        person = np.repeat(pi, k)
        n = len(person)
        date = _uniform_days(rng, np.maximum(world.start, pop.dob[person]), world.end)
        a = _age_at(pop, person, date)
        risk = pop.risk[person]
        p_assault = np.minimum(0.25, 0.012 * risk)
        p_self = np.where((a >= 12) & (a < 60), 0.008, 0.003)
        p_acc = np.where(a >= 70, 0.15, 0.10)
        u = rng.random(n)
        cat = np.full(n, CAT["none"], dtype=np.int16)
        is_as = u < p_assault
        is_self = (u >= p_assault) & (u < p_assault + p_self)
        is_acc = (u >= p_assault + p_self) & (u < p_assault + p_self + p_acc)
        v = rng.random(n)
        fire_share = np.clip(0.12 + 0.1 * np.log1p(risk), 0.1, 0.5)
        cat[is_as] = np.select([v[is_as] < fire_share[is_as], v[is_as] < fire_share[is_as] + 0.18,
                                v[is_as] < fire_share[is_as] + 0.85],
                               [CAT["assault_firearm"], CAT["assault_sharp"], CAT["assault_bodily"]],
                               CAT["assault_other"])
        cat[is_self] = np.select([v[is_self] < 0.2, v[is_self] < 0.55], [CAT["self_firearm"], CAT["self_sharp"]],
                                 CAT["self_poison"])
        old = a >= 65
        cat[is_acc] = np.select(
            [v[is_acc] < 0.03, v[is_acc] < 0.05, (v[is_acc] < 0.75) & old[is_acc], v[is_acc] < 0.35,
             v[is_acc] < 0.7], [CAT["acc_firearm"], CAT["undet_firearm"], CAT["fall"], CAT["mvc"], CAT["fall"]],
            CAT["struck"])
        minute = np.where(is_as, _minutes(rng, n, HOUR_VIOLENT), _minutes(rng, n, HOUR_ED))
        bg = pd.DataFrame({"person": person, "date": date, "minute": minute, "cat": cat,
                           "link": np.full(n, -1, dtype=np.int64)})
        lsel = np.flatnonzero(sel)
        linked = pd.DataFrame({
            "person": lp[lsel], "date": pv["date"].to_numpy()[lsel],
            "minute": np.minimum(pv["minute"].to_numpy()[lsel] + rng.integers(20, 180, len(lsel)), 1439),
            "cat": lcat[lsel].astype(np.int16), "link": pv.index.to_numpy()[lsel]})
        df = pd.concat([bg, linked], ignore_index=True)
        dead = np.zeros(len(df), bool)
        dead[len(bg):] = ldead[lsel] & (rng.random(len(lsel)) < 0.6)
        out[h] = _hospital_codes(rng, df, pop, dead)
    return out


# ------------------------------------------------------------------------------------------------------ schools
def _schools(rng, world: World, pop: Population) -> tuple[pd.DataFrame, pd.DataFrame]:
    years = np.array(world.school_years, dtype=np.int64)
    sep1 = np.array([day(int(y), 9, 1) for y in years])
    ystart = np.array([day(int(y), 8, 26) for y in years])
    yend = np.array([day(int(y) + 1, 6, 10) for y in years])
    n = pop.n
    a = np.floor((sep1[None, :] - pop.dob[:, None]) / 365.2425).astype(np.int64)
    retained = (rng.random(n) < 0.06).astype(np.int64)
    grade = a - 5 - retained[:, None]
    in_district = rng.random(n) < 0.86
    ok = in_district[:, None] & (grade >= 0) & (grade <= 12)
    # movers: arrive in a later year (mid-year), or leave
    yi = np.arange(len(years))
    arrive = np.where(rng.random(n) < 0.12, rng.integers(0, len(years), n), 0)
    leave = np.where(rng.random(n) < 0.06, rng.integers(0, len(years), n), len(years))
    ok &= (yi[None, :] >= arrive[:, None]) & (yi[None, :] <= leave[:, None])
    entry = np.broadcast_to(ystart, (n, len(years))).copy()
    first_ok = np.argmax(ok, axis=1)
    mid = (arrive > 0) & ok[np.arange(n), first_ok] & (first_ok == arrive)
    mi = np.flatnonzero(mid)
    entry[mi, first_ok[mi]] = ystart[first_ok[mi]] + rng.integers(0, 260, len(mi))
    ok &= entry <= world.end
    pi, yj = np.nonzero(ok)
    e = entry[pi, yj]
    g = grade[pi, yj]
    as_of = np.minimum(yend[yj], world.period_ends[world.period_of(e)])
    span = (yend[yj] - ystart[yj] + 1)
    frac = (np.minimum(as_of, yend[yj]) - np.maximum(e, ystart[yj]) + 1) / span
    days = np.clip(np.round(180 * frac), 1, 180).astype(np.int64)
    tr = pop.tract[pi]
    level = np.where(g <= 5, 1, np.where(g <= 8, 2, 3))
    num = np.where(level == 1, tr // 2, np.where(level == 2, tr // 5, tr // 10))
    school = (600000 + level * 10000 + num).astype(str).astype(object)
    rate = 0.045 * (1 + 1.2 * world.ref.deprivation[tr]) * (1 + 0.3 * np.log1p(pop.risk[pi]))
    rate = np.minimum(rate * np.exp(rng.normal(0, 0.6, len(pi))), 0.6)
    absent = rng.binomial(days, rate)
    enr = pd.DataFrame({"person": pi, "date": e, "year": years[yj], "grade": g, "school": school, "days": days,
                        "absent": absent, "ystart": ystart[yj], "yend": yend[yj]})

    # suspensions: about 10% of students
    students = np.unique(pi)
    sg = pd.Series(g).groupby(pi).max().reindex(students).to_numpy()
    m = np.where(sg >= 6, 1.5, 0.4) * (1 + pop.risk[students]) * np.where(pop.male[students], 1.5, 0.7)
    m *= 1 + world.ref.deprivation[pop.tract[students]]
    susp = students[rng.random(len(students)) < _norm_p(0.12, m, 0.8)]
    if not len(susp):
        return enr, pd.DataFrame({"person": np.zeros(0, np.int64), "date": np.zeros(0, np.int64),
                                  "year": np.zeros(0, np.int64), "school": np.zeros(0, object),
                                  "reason": np.zeros(0, object), "oss": np.zeros(0, bool),
                                  "days": np.zeros(0, np.int64), "inc": np.zeros(0, np.int64)})
    k = 1 + rng.poisson(0.7, len(susp))
    sp = np.repeat(susp, k)
    # pick one of the student's enrolled years at random
    e_sorted = enr.sort_values(["person", "year"], kind="stable").reset_index(drop=True)
    first_row = np.searchsorted(e_sorted["person"].to_numpy(), sp, side="left")
    n_rows = np.searchsorted(e_sorted["person"].to_numpy(), sp, side="right") - first_row
    row = first_row + np.floor(rng.random(len(sp)) * n_rows).astype(np.int64)
    er = e_sorted.iloc[row]
    lo = np.maximum.reduce([er["date"].to_numpy(), er["ystart"].to_numpy(), np.full(len(sp), day(2021, 1, 4))])
    hi = np.minimum(er["yend"].to_numpy(), world.end)
    keep = hi >= lo
    sp, er, lo, hi = sp[keep], er[keep], lo[keep], hi[keep]
    date = _uniform_days(rng, lo, hi)
    wd = (date + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    date = np.where(wd == 5, date - 1, np.where(wd == 6, date + 1, date))
    date = np.clip(date, lo, hi)
    nn = len(sp)
    risk = pop.risk[sp]
    w = np.tile(SUSP_REASON_P, (nn, 1))
    w[:, 3] *= 1 + 0.5 * np.log1p(risk)
    w[:, 6] *= 1 + 0.5 * np.log1p(risk)
    cw = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
    reason = SUSP_REASONS[np.minimum((rng.random(nn)[:, None] > cw).sum(axis=1), len(SUSP_REASONS) - 1)]
    oss = _pick(rng, SUSP_OSS_P, reason)
    days_s = np.where(oss, np.where(reason == "WEAPON", rng.integers(5, 11, nn), 1 + rng.poisson(2, nn)),
                      rng.integers(1, 4, nn))
    sus = pd.DataFrame({"person": sp, "date": date, "year": er["year"].to_numpy(), "school": er["school"].to_numpy(),
                        "reason": reason, "oss": oss, "days": days_s, "inc": np.arange(nn, dtype=np.int64),
                        "lo": lo, "hi": hi})
    # fights involve two students of the same school and year: one incident number, one date
    fights = sus[sus["reason"] == "FIGHT"].sample(frac=1.0, random_state=rng)
    fights = fights.sort_values(["school", "year"], kind="stable")
    pos = fights.groupby(["school", "year"], sort=False).cumcount().to_numpy()
    idx = fights.index.to_numpy()
    a_i, b_i = idx[:-1], idx[1:]
    same_grp = (fights["school"].to_numpy()[:-1] == fights["school"].to_numpy()[1:]) & (
        fights["year"].to_numpy()[:-1] == fights["year"].to_numpy()[1:])
    pair = same_grp & (pos[:-1] % 2 == 0) & (fights["person"].to_numpy()[:-1] != fights["person"].to_numpy()[1:])
    pair &= rng.random(len(pair)) < 0.6
    a_i, b_i = a_i[pair], b_i[pair]
    inc = sus["inc"].to_numpy().copy()
    dt_ = sus["date"].to_numpy().copy()
    # the shared date must lie in the partner's own enrolled window
    fits = (dt_[a_i] >= sus["lo"].to_numpy()[b_i]) & (dt_[a_i] <= sus["hi"].to_numpy()[b_i])
    a_i, b_i = a_i[fits], b_i[fits]
    inc[b_i] = inc[a_i]
    dt_[b_i] = dt_[a_i]
    sus["inc"], sus["date"] = inc, dt_
    return enr, sus.drop(columns=["lo", "hi"])


# ------------------------------------------------------------------------------------------------------- county
def _generic_services(rng, world: World, pop: Population, pi: np.ndarray) -> pd.DataFrame:
    k = 1 + rng.poisson(0.95, len(pi))
    person = np.repeat(pi, k)
    date = _uniform_days(rng, np.maximum(world.start, pop.dob[person]), world.end)
    age = _age_at(pop, person, date)
    female = ~pop.male[person]
    stage = np.select([age < 5, age < 18, female & (age < 45), age < 65],
                      ["infant", "child", "mother", "adult"], "senior")
    code = np.empty(len(person), dtype=object)
    for s, (codes, w) in GENERIC_MIX.items():
        idx = np.flatnonzero(stage == s)
        code[idx] = np.array(codes, dtype=object)[rng.choice(len(codes), len(idx), p=np.array(w) / sum(w))]
    return pd.DataFrame({"person": person, "date": date, "code": code})


def _with_ends(rng, df: pd.DataFrame) -> pd.DataFrame:
    code = df["code"].to_numpy()
    lo = np.array([SERVICE_DAYS[c][0] for c in code], dtype=np.int64)
    hi = np.array([SERVICE_DAYS[c][1] for c in code], dtype=np.int64)
    end = df["date"].to_numpy() + lo + np.floor(rng.random(len(df)) * (hi - lo + 1)).astype(np.int64)
    end = np.where(rng.random(len(df)) < 0.1, NEVER, end)  # open-ended
    df["end"] = end
    return df


def _prior_contacts(police: pd.DataFrame, hospital: dict[str, pd.DataFrame], n: int):
    """A function (persons, dates) -> police contacts and assault-injury visits of each person in the
    PRIOR_DAYS before each date (the date itself excluded)."""
    parts = [police[["person", "date"]]] + [h.loc[np.isin(h["cat"].to_numpy(), ASSAULT_CATS), ["person", "date"]]
                                            for h in hospital.values()]
    ev = pd.concat(parts, ignore_index=True).sort_values(["person", "date"], kind="stable")
    ep, ed = ev["person"].to_numpy(dtype=np.int64), ev["date"].to_numpy(dtype=np.int64)
    key = ep * 10**6 + ed  # day numbers stay below 10**6 until the year 4707

    def count(persons: np.ndarray, dates: np.ndarray) -> np.ndarray:
        persons, dates = np.asarray(persons, dtype=np.int64), np.asarray(dates, dtype=np.int64)
        hi = np.searchsorted(key, persons * 10**6 + dates, side="left")
        lo = np.searchsorted(key, persons * 10**6 + dates - PRIOR_DAYS, side="left")
        return hi - lo

    return count


def simulate(rng: np.random.Generator, world: World, pop: Population) -> Activity:
    police = _police(rng, world, pop)
    hospital = _hospital(rng, world, pop, police)

    # a place-based program: fewer violent incidents in its priority area from its start date on ---------------
    fx = world.cfg.effects
    gone = np.zeros(len(police), bool)
    area_tracts = world.ref.geo["priority_area"].to_numpy() == fx.area
    area_start = (_date.fromisoformat(fx.area_start) - EPOCH).days
    if fx.area_violence > 0:
        in_area = police["violent"].to_numpy() & area_tracts[police["tract"].to_numpy()] \
            & (police["date"].to_numpy() >= area_start)
        # whole incidents: every person of an incident that does not happen
        inc = police["inc"].to_numpy()
        u_inc = np.unique(inc[in_area])
        hit = u_inc[rng.random(len(u_inc)) < fx.area_violence]
        gone |= in_area & np.isin(inc, hit)

    # programs ---------------------------------------------------------------------------------------------
    pr = police["person"].to_numpy()
    pdate = police["date"].to_numpy()
    page = _age_at(pop, pr, pdate)
    prio = world.ref.priority
    prior = _prior_contacts(police[~gone], hospital, pop.n)
    # violence interrupters reach young people involved in violence in the priority areas
    qual = ~gone & police["violent"].to_numpy() & (page >= 14) & (page < 31) & prio[police["tract"].to_numpy()]
    q = pd.Series(pdate[qual]).groupby(pr[qual]).min()
    # selection: the more police contacts and assault injuries in the year before, the likelier the enrollment
    q_prior = prior(q.index.to_numpy(), q.to_numpy())
    atv_p = q.index.to_numpy()[rng.random(len(q)) < 0.16 + 0.06 * np.minimum(q_prior, 3)]
    atv_d = q.loc[atv_p].to_numpy() + rng.integers(7, 91, len(atv_p))
    # community referrals without a police contact
    young_prio = np.flatnonzero(prio[pop.tract] & (pop.age >= 16) & (pop.age < 32) & (pop.risk > 2.0))
    young_prio = np.setdiff1d(young_prio, q.index.to_numpy())
    ref_p = young_prio[rng.random(len(young_prio)) < 0.03]
    ref_d = _uniform_days(rng, np.full(len(ref_p), world.start + 180), world.end)
    atv = pd.DataFrame({"person": np.concatenate([atv_p, ref_p]), "date": np.concatenate([atv_d, ref_d]),
                        "code": "ATV_ENROLL"})
    atv = atv[atv["date"] <= world.end]
    assaults = pd.concat([h[np.isin(h["cat"].to_numpy(), ASSAULT_CATS) & ~np.isin(h["link"].to_numpy(),
                                                                                    np.flatnonzero(gone))]
                          [["person", "date", "inpatient"]] for h in hospital.values()])
    first_as = assaults.sort_values(["person", "date"], kind="stable").drop_duplicates("person")
    fa_age = _age_at(pop, first_as["person"].to_numpy(), first_as["date"].to_numpy())
    fa_prior = prior(first_as["person"].to_numpy(), first_as["date"].to_numpy())
    enroll = rng.random(len(first_as)) < np.where((fa_age >= 10) & (fa_age < 36), 0.2, 0.05) \
        * (1 + 0.4 * np.minimum(fa_prior, 3))
    fa = first_as[enroll]
    hvip_d = fa["date"].to_numpy() + np.where(fa["inpatient"].to_numpy(), rng.integers(2, 9, len(fa)),
                                              rng.integers(1, 22, len(fa)))
    hvip = pd.DataFrame({"person": fa["person"].to_numpy(), "date": hvip_d, "code": "HVIP_ENROLL"})
    hvip = hvip[hvip["date"] <= world.end]
    programs = pd.concat([atv, hvip], ignore_index=True)

    # program effects (never the events that qualified for a program) ---------------------------------------------
    atv_enr = atv.groupby("person")["date"].min()
    e_atv = atv_enr.reindex(pr).to_numpy(dtype=float, na_value=np.inf)
    in_window = (pdate > e_atv) & (pdate <= e_atv + fx.atv_window_days)
    gone |= police["violent"].to_numpy() & in_window & (rng.random(len(police)) < fx.atv_violence)
    dropped = police.index.to_numpy()[gone]
    police = police[~gone]
    hvip_enr = hvip.groupby("person")["date"].min()
    hvip_keys = fa["person"].to_numpy(dtype=np.int64) * 10**6 + fa["date"].to_numpy(dtype=np.int64)
    for h, df in hospital.items():
        person_h, date_h, cat_h = df["person"].to_numpy(), df["date"].to_numpy(), df["cat"].to_numpy()
        assault = np.isin(cat_h, ASSAULT_CATS)
        keep = assault & np.isin(person_h.astype(np.int64) * 10**6 + date_h, hvip_keys)
        e_h = hvip_enr.reindex(person_h).to_numpy(dtype=float, na_value=np.inf)
        d = np.isin(df["link"].to_numpy(), dropped)
        d |= assault & (date_h > e_h) & (rng.random(len(df)) < fx.hvip_reinjury)
        hospital[h] = df[~(d & ~keep)]

    enrollments, suspensions = _schools(rng, world, pop)

    # county: clients (more likely with arrests), generic services, criminal justice services, programs -------
    arrested = np.zeros(pop.n, bool)
    arr_rows = police[police["role"] == "ARR"]
    arrested[arr_rows["person"].to_numpy()] = True
    age = pop.age
    m = (0.35 + 1.6 * world.ref.deprivation[pop.tract]) * np.select([age < 5, age < 18, age < 65], [1.6, 1.2, 1.0], 1.1)
    m *= (1 + 1.5 * arrested) * np.where(pop.male, 1.0, 1.2)
    client = rng.random(pop.n) < _norm_p(0.345, m)
    cjs_rows = arr_rows[client[arr_rows["person"].to_numpy()] | (rng.random(len(arr_rows)) < 0.15)]
    u = rng.random(len(cjs_rows))
    pre = cjs_rows[u < 0.3]
    prob = cjs_rows[(u >= 0.3) & (u < 0.42)]
    cjs = pd.concat([
        pd.DataFrame({"person": pre["person"].to_numpy(), "date": pre["date"].to_numpy() + rng.integers(1, 8, len(pre)),
                      "code": "PRETRIAL"}),
        pd.DataFrame({"person": prob["person"].to_numpy(),
                      "date": prob["date"].to_numpy() + rng.integers(60, 401, len(prob)), "code": "PROBATION_SUPPORT"}),
    ], ignore_index=True)
    cjs = cjs[cjs["date"] <= world.end]
    generic = _generic_services(rng, world, pop, np.flatnonzero(client))
    county = _with_ends(rng, pd.concat([generic, cjs, programs], ignore_index=True))

    # deaths: nothing happens to a person after a homicide or a death in hospital -------------------------------
    death = np.full(pop.n, NEVER, dtype=np.int64)
    h09 = police[(police["offense"] == "09A") & (police["role"] == "VIC")]
    np.minimum.at(death, h09["person"].to_numpy(), h09["date"].to_numpy())
    for df in hospital.values():
        ex = df[df["dispo"] == "EXPIRED"]
        np.minimum.at(death, ex["person"].to_numpy(), ex["date"].to_numpy())

    def alive(df: pd.DataFrame) -> pd.DataFrame:
        person = df["person"].to_numpy(dtype=np.int64)
        return df[df["date"].to_numpy(dtype=np.int64) <= death[person]].reset_index(drop=True)

    police = alive(police)
    hospital = {h: alive(df) for h, df in hospital.items()}
    enrollments = alive(enrollments)
    suspensions = alive(suspensions)
    county = alive(county)
    county["end"] = np.minimum(county["end"].to_numpy(), np.where(death[county["person"].to_numpy()] < NEVER,
                                                                  death[county["person"].to_numpy()], NEVER))
    return Activity(police=police, hospital=hospital, enrollments=enrollments, suspensions=suspensions,
                    county=county)
