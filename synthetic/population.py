"""The true population of one chunk: demographics, names, identifiers, addresses, households, latent risk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic.ids import IdSpace
from synthetic.reference import ERA_BUCKETS, GROUP_INDEX, GROUPS
from synthetic.world import MULTI, A, B, H, I, M, P, W, World

# household race (then 3% of persons become multiracial): about White non-Hispanic 45%, Black 31%,
# Hispanic 14%, Asian 6%, MENA 1%, AIAN 0.5%, NHPI 0.2%, multiracial 3% (Mecklenburg-like)
HH_RACE_P = np.array([0.46, 0.32, 0.144, 0.062, 0.0103, 0.0055, 0.0022])
MULTI_SHARE = 0.03
COMP2 = {  # second component of a multiracial person given the household race
    W: ([B, H, A, I, M, P], [0.45, 0.25, 0.12, 0.10, 0.04, 0.04]),
    B: ([W, H, I, A], [0.60, 0.20, 0.10, 0.10]),
    H: ([W, B, I], [0.60, 0.30, 0.10]),
    A: ([W, P, B, H], [0.60, 0.20, 0.10, 0.10]),
    M: ([W, B], [0.70, 0.30]),
    I: ([W, B], [0.60, 0.40]),
    P: ([A, W], [0.60, 0.40]),
}
SURNAME_GROUP = {  # race -> name groups
    W: (["white", "black", "hispanic"], [0.985, 0.005, 0.01]),
    B: (["black", "african"], [0.90, 0.10]),
    H: (["hispanic"], [1.0]),
    A: (["indian", "vietnamese", "chinese", "korean", "filipino"], [0.33, 0.25, 0.20, 0.10, 0.12]),
    M: (["arabic"], [1.0]),
    I: (["lumbee", "white", "black"], [0.65, 0.25, 0.10]),
    P: (["pacific", "filipino"], [0.75, 0.25]),
}
# share of persons of a surname group who carry an English ("white" list) first name: (born < 1990, >= 1990)
ENGLISH_FIRST = {"chinese": (0.35, 0.5), "korean": (0.4, 0.55), "vietnamese": (0.2, 0.5), "indian": (0.03, 0.06),
                 "hispanic": (0.08, 0.22), "african": (0.2, 0.3), "filipino": (0.45, 0.5), "arabic": (0.04, 0.08),
                 "pacific": (0.3, 0.4)}
MIDDLE_P = {"white": 0.85, "black": 0.8, "hispanic": 0.4, "arabic": 0.5, "vietnamese": 0.85, "chinese": 0.15,
            "korean": 0.1, "indian": 0.35, "african": 0.4, "filipino": 0.6, "lumbee": 0.85, "pacific": 0.5}
VIET_MIDDLE = {"M": (["VAN", "DUC", "MINH", "QUOC", "HUU", "THANH"], [0.55, 0.1, 0.1, 0.1, 0.1, 0.05]),
               "F": (["THI", "NGOC", "THU", "KIM", "BICH", "THANH"], [0.6, 0.15, 0.1, 0.07, 0.05, 0.03])}
# age (years, as of the last period) in 5-year bands 0-4 .. 85-90
AGE_BAND_W = np.array([6.4, 6.5, 6.6, 6.3, 6.4, 7.9, 8.3, 7.9, 7.2, 6.8, 6.3, 5.8, 5.0, 4.0, 3.0, 2.0, 1.2, 0.8])
HH_SIZE_P = np.array([0.28, 0.33, 0.16, 0.13, 0.06, 0.04])
JR_SR_GROUPS = ("white", "black", "lumbee", "filipino")


@dataclass
class Population:
    n: int
    pid: np.ndarray  # int64 person ids
    male: np.ndarray  # bool
    race: np.ndarray  # int8 0..7
    comp1: np.ndarray  # int8 component races (== race unless multiracial)
    comp2: np.ndarray  # int8, -1 unless multiracial
    group: np.ndarray  # int8 surname group
    fgroup: np.ndarray  # int8 first-name group
    dob: np.ndarray  # int64 day number
    age: np.ndarray  # int16 years at the end of the last period
    first: np.ndarray  # object UPPER
    middle: np.ndarray
    last1: np.ndarray
    last2: np.ndarray  # second surname ('' unless two surnames)
    alt_last: np.ndarray  # other surname (marriage) or ''
    suffix: np.ndarray  # '', JR, SR, II, III
    ssn: np.ndarray  # int64 9 digits
    hh: np.ndarray  # int64 household id (chunk-local)
    tract: np.ndarray  # int32 tract index
    house: np.ndarray  # int32
    street: np.ndarray  # object
    unit: np.ndarray  # object '' or '12B'
    prev_tract: np.ndarray
    prev_house: np.ndarray
    prev_street: np.ndarray
    prev_unit: np.ndarray
    twin: np.ndarray  # bool
    jr_sr: np.ndarray  # bool
    risk: np.ndarray  # float, mean 1 (latent violence involvement)

    @property
    def birth_year(self) -> np.ndarray:
        return (self.dob.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.int32)


def _choice(rng: np.random.Generator, options, p, n: int) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.asarray(options)[rng.choice(len(p), size=n, p=p / p.sum())]


def _addresses(rng: np.random.Generator, world: World, tract: np.ndarray):
    n = len(tract)
    house = np.exp(rng.uniform(np.log(100), np.log(9999), n)).astype(np.int32)
    street = world.streets[tract, rng.integers(0, world.streets.shape[1], n)]
    dep = world.ref.deprivation[tract]
    has_unit = rng.random(n) < 0.08 + 0.35 * dep
    num = rng.integers(1, 400, n)
    letter = np.where(rng.random(n) < 0.2, np.array(list("ABCDEF"), dtype=object)[rng.integers(0, 6, n)], "")
    unit = np.full(n, "", dtype=object)
    unit[has_unit] = num[has_unit].astype(str).astype(object) + letter[has_unit]
    return house, street, unit


def _draw_first(rng, world: World, fgroup: np.ndarray, male: np.ndarray, byear: np.ndarray) -> np.ndarray:
    out = np.empty(len(fgroup), dtype=object)
    bucket = np.searchsorted(np.array(ERA_BUCKETS), byear, side="right")
    key = fgroup.astype(np.int64) * 8 + male.astype(np.int64) * 4 + bucket
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        g, s, b = GROUPS[k // 8], "M" if (k // 4) % 2 else "F", int(k % 4)
        out[idx] = world.ref.first[(g, s, b)].draw(rng, len(idx))
    return out


def _draw_surname(rng, world: World, group: np.ndarray) -> np.ndarray:
    out = np.empty(len(group), dtype=object)
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        out[idx] = world.ref.surname[GROUPS[g]].draw(rng, len(idx))
    return out


def make_population(rng: np.random.Generator, world: World, n: int, pid0: int, ssn_space: IdSpace) -> Population:
    cfg = world.cfg
    noise = cfg.noise
    end = world.end
    # households ---------------------------------------------------------------------------------------------
    sizes = rng.choice(np.arange(1, 7), size=n, p=HH_SIZE_P)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    hh = np.repeat(np.arange(len(sizes)), sizes)[:n]
    n_hh = int(hh[-1]) + 1
    hh_race = rng.choice(7, size=n_hh, p=HH_RACE_P / HH_RACE_P.sum()).astype(np.int8)
    hh_tract = np.empty(n_hh, dtype=np.int32)
    for r in range(7):
        idx = np.flatnonzero(hh_race == r)
        hh_tract[idx] = rng.choice(len(world.ref.tract), size=len(idx), p=world.tract_weight_by_race[r])
    hh_group = np.empty(n_hh, dtype=np.int8)
    for r, (groups, p) in SURNAME_GROUP.items():
        idx = np.flatnonzero(hh_race == r)
        hh_group[idx] = [GROUP_INDEX[g] for g in _choice(rng, groups, p, len(idx))]
    hh_house, hh_street, hh_unit = _addresses(rng, world, hh_tract)

    race = hh_race[hh].copy()
    comp1 = race.copy()
    comp2 = np.full(n, -1, dtype=np.int8)
    multi = rng.random(n) < MULTI_SHARE
    for r, (opts, p) in COMP2.items():
        idx = np.flatnonzero(multi & (comp1 == r))
        comp2[idx] = _choice(rng, opts, p, len(idx))
    race[multi] = MULTI
    group = hh_group[hh].copy()
    tract = hh_tract[hh].copy()
    house, street, unit = hh_house[hh].copy(), hh_street[hh].copy(), hh_unit[hh].copy()

    male = rng.random(n) < 0.485
    band = rng.choice(len(AGE_BAND_W), size=n, p=AGE_BAND_W / AGE_BAND_W.sum())
    width = np.where(band == len(AGE_BAND_W) - 1, 6, 5)
    age_days = ((band * 5 + rng.random(n) * width) * 365.2425).astype(np.int64)
    dob = end - age_days

    # twins: same surname, birth date, household and address; another first name ------------------------------
    twin = np.zeros(n, dtype=bool)
    jr_sr = np.zeros(n, dtype=bool)
    k_twins = round(noise.twin_rate * n / 2)
    twin_pairs = np.empty((0, 2), dtype=np.int64)
    if k_twins:
        pool = np.flatnonzero(end - dob < 80 * 365)
        k_twins = min(k_twins, len(pool) // 2)
        pick = rng.choice(pool, size=2 * k_twins, replace=False)
        a, b = pick[:k_twins], pick[k_twins:]
        for arr in (race, comp1, comp2, group, tract, house, street, unit, hh, dob):
            arr[b] = arr[a]
        same_sex = rng.random(k_twins) < 2 / 3
        male[b] = np.where(same_sex, male[a], ~male[a])
        twin[a] = twin[b] = True
        twin_pairs = np.column_stack([a, b])

    # JR/SR: father and son with the same first, middle and last name ---------------------------------------------
    k_jr = round(noise.jr_sr_rate * n / 2)
    jr_pairs = np.empty((0, 2), dtype=np.int64)
    if k_jr:
        age_years = (end - dob) / 365.2425
        ok_group = np.isin(group, [GROUP_INDEX[g] for g in JR_SR_GROUPS])
        fathers = np.flatnonzero(male & ~twin & ok_group & (age_years >= 38) & (age_years < 88))
        k_jr = min(k_jr, len(fathers), int((male & ~twin).sum() - len(fathers)))
        if k_jr > 0:
            f = rng.choice(fathers, size=k_jr, replace=False)
            rest = np.setdiff1d(np.flatnonzero(male & ~twin), f)
            s = rng.choice(rest, size=k_jr, replace=False)
            fage = age_years[f]
            gap = rng.uniform(19, np.minimum(42, fage - 0.5))
            dob[s] = np.minimum(dob[f] + (gap * 365.2425).astype(np.int64), end - 1)
            for arr in (race, comp1, comp2, group, tract, house, street, unit, hh):  # one household
                arr[s] = arr[f]
            jr_sr[f] = jr_sr[s] = True
            jr_pairs = np.column_stack([f, s])

    byear = (dob.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970)
    # names --------------------------------------------------------------------------------------------------
    fgroup = group.copy()
    young = byear >= 1990
    u = rng.random(n)
    for g, (p_old, p_young) in ENGLISH_FIRST.items():
        gi = GROUP_INDEX[g]
        fgroup[(group == gi) & (u < np.where(young, p_young, p_old))] = GROUP_INDEX["white"]
    lum = group == GROUP_INDEX["lumbee"]
    fgroup[lum] = np.where(rng.random(lum.sum()) < 0.6, GROUP_INDEX["white"], GROUP_INDEX["black"])
    first = _draw_first(rng, world, fgroup, male, byear)
    middle = np.full(n, "", dtype=object)
    has_mid = rng.random(n) < np.array([MIDDLE_P[g] for g in GROUPS])[group]
    viet = has_mid & (group == GROUP_INDEX["vietnamese"])
    for sx, flag in (("M", True), ("F", False)):
        idx = np.flatnonzero(viet & (male == flag))
        middle[idx] = _choice(rng, *VIET_MIDDLE[sx], len(idx))
    fil = has_mid & (group == GROUP_INDEX["filipino"])  # mother's maiden surname as middle name
    middle[fil] = _draw_surname(rng, world, group[fil])
    patr = has_mid & np.isin(group, [GROUP_INDEX[g] for g in ("arabic", "indian", "african")])  # father's name
    middle[patr] = _draw_first(rng, world, fgroup[patr], np.ones(patr.sum(), bool), byear[patr] - 30)
    other = has_mid & ~viet & ~fil & ~patr
    middle[other] = _draw_first(rng, world, fgroup[other], male[other], byear[other])
    middle[middle == first] = ""

    hh_surname = _draw_surname(rng, world, hh_group)
    last1 = hh_surname[hh]
    own = rng.random(n) < 0.2  # blended families, roommates, kept birth names
    last1[own] = _draw_surname(rng, world, group[own])
    two = (group == GROUP_INDEX["hispanic"]) & (rng.random(n) < noise.two_surnames)
    last2 = np.full(n, "", dtype=object)
    last2[two] = _draw_surname(rng, world, group[two])
    two &= last2 != last1
    last2[~two] = ""

    if len(twin_pairs):
        a, b = twin_pairs[:, 0], twin_pairs[:, 1]
        last1[b], last2[b] = last1[a], last2[a]
        first[b] = _draw_first(rng, world, fgroup[b], male[b], byear[b])
        for _ in range(20):  # twins never share a first name
            same = np.flatnonzero(first[b] == first[a])
            if not len(same):
                break
            first[b[same]] = _draw_first(rng, world, fgroup[b[same]], male[b[same]], byear[b[same]])
        else:
            first[b[same]] = first[b[same]] + "A"
    suffix = np.full(n, "", dtype=object)
    other_sfx = male & ~jr_sr & (rng.random(n) < 0.012) & np.isin(group, [GROUP_INDEX[g] for g in JR_SR_GROUPS])
    suffix[other_sfx] = _choice(rng, ["JR", "II", "III"], [0.6, 0.2, 0.2], int(other_sfx.sum()))
    if len(jr_pairs):
        f, s = jr_pairs[:, 0], jr_pairs[:, 1]
        first[s], last1[s], last2[s], fgroup[s] = first[f], last1[f], "", fgroup[f]
        keep_mid = rng.random(len(s)) < 0.8
        middle[s[keep_mid]] = middle[f[keep_mid]]
        suffix[f], suffix[s] = "SR", "JR"

    # another surname: marriage (adult women, a few men) --------------------------------------------------------
    alt_last = np.full(n, "", dtype=object)
    adult = (end - dob) > 20 * 365.2425
    elig = adult & ((~male & (rng.random(n) < 0.75)) | (male & (rng.random(n) < 0.08)))
    alt_last[elig] = _draw_surname(rng, world, group[elig])
    alt_last[alt_last == last1] = ""

    # identifiers, previous address ----------------------------------------------------------------------------
    v = ssn_space.take(n)
    area_i, rest = np.divmod(v, 99 * 9999)
    area = area_i + 1
    area = area + (area >= 666)
    grp, serial = np.divmod(rest, 9999)
    ssn = area * 1_000_000 + (grp + 1) * 10_000 + serial + 1

    moved_far = rng.random(n) < 0.6
    prev_tract = tract.copy()
    r7 = np.where(race == MULTI, comp1, race)
    for r in range(7):
        idx = np.flatnonzero(moved_far & (r7 == r))
        prev_tract[idx] = rng.choice(len(world.ref.tract), size=len(idx), p=world.tract_weight_by_race[r])
    prev_house, prev_street, prev_unit = _addresses(rng, world, prev_tract)

    # latent risk of violence involvement (victim or offender) ---------------------------------------------------
    mid = world.start + (world.end - world.start) // 2
    a_mid = (mid - dob) / 365.2425
    age_curve = np.where(a_mid < 12, 0.06, 0.07 + np.exp(-(((a_mid - 23.0) / 9.0) ** 2)))
    age_curve = np.where(a_mid < 0, 0.0, age_curve)
    sex_f = np.where(male, 1.0, 0.35)
    area_f = world.ref.violence_weight[tract]
    risk = age_curve * sex_f * area_f * rng.lognormal(-0.5, 1.0, n)
    risk = risk / max(risk.mean(), 1e-12)

    return Population(
        n=n, pid=np.arange(pid0, pid0 + n, dtype=np.int64), male=male, race=race, comp1=comp1, comp2=comp2,
        group=group, fgroup=fgroup, dob=dob, age=((end - dob) / 365.2425).astype(np.int16),
        first=first, middle=middle, last1=last1, last2=last2, alt_last=alt_last, suffix=suffix, ssn=ssn, hh=hh,
        tract=tract, house=house, street=street, unit=unit, prev_tract=prev_tract, prev_house=prev_house,
        prev_street=prev_street, prev_unit=prev_unit, twin=twin, jr_sr=jr_sr, risk=risk,
    )

