"""Person records: which record ids a person has in a source, and the identifiers each record carries.

A source's person records are the (person, slot) pairs of its events: slot 0 is the person's record, slot 1 a
within-source duplicate (a second registration that took over part of the person's events). Each record then
gets its own, independently noisy copy of the person's identifiers; the noise applied is kept per record as
bit flags (``NOISE_TOKENS``) for the truth file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic.config import NoiseRates
from synthetic.population import Population
from synthetic.reference import GROUP_INDEX
from synthetic.world import World

NA_DAY = np.iinfo(np.int64).min

NOISE_TOKENS: tuple[str, ...] = (
    "typo", "nickname", "compound_surname", "surname_change", "first_last_swap", "dob_day_month_swap", "dob_error",
    "missing_dob", "missing_ssn", "ssn_error", "missing_address", "address_change", "missing_sex", "twin", "jr_sr",
    "transliteration", "within_source_duplicate", "suffix_in_last_name",
)
BIT = {t: np.int64(1) << np.int64(i) for i, t in enumerate(NOISE_TOKENS)}

#: Per-source multipliers of the configured rates (default 1; 0 = cannot happen in that source).
SOURCE_FACTORS: dict[str, dict[str, float]] = {
    "county": {"nickname": 0.6, "missing_ssn": 0.5, "missing_address": 0.8, "missing_dob": 0.0},
    "police": {"typo": 1.5, "nickname": 2.0, "missing_ssn": 4.0, "missing_address": 1.5, "missing_dob": 1.0,
               "within_source_duplicate": 1.5, "address_change": 1.3, "dob_error": 1.5, "missing_sex": 2.0,
               "first_last_swap": 1.5},
    "schools": {"typo": 0.7, "nickname": 0.5, "missing_ssn": 0.0, "ssn_error": 0.0, "missing_address": 0.3,
                "missing_dob": 0.0, "within_source_duplicate": 0.5, "address_change": 0.7, "first_last_swap": 0.5},
    "hospital_a": {"missing_ssn": 1.5, "missing_address": 0.7, "missing_dob": 0.0, "within_source_duplicate": 0.8},
    "hospital_b": {"typo": 1.2, "missing_ssn": 2.5, "missing_address": 0.7, "missing_dob": 0.0},
}
#: probability that a true suffix (JR, SR, II, III) is recorded at all (a father's SR: half as often)
SUFFIX_RECORDED = {"county": 0.75, "police": 0.6, "schools": 0.3, "hospital_a": 0.25, "hospital_b": 0.6}
#: sources without a suffix field put a recorded suffix into the last name
SUFFIX_IN_LAST = {"schools", "hospital_a"}
#: middle name as (full, initial) probabilities; blank otherwise
MIDDLE_FORM = {"county": (0.65, 0.25), "police": (0.2, 0.6), "schools": (0.92, 0.0), "hospital_a": (0.7, 0.15),
               "hospital_b": (0.4, 0.5)}
#: variation forced onto within-source duplicates (never where the configured rate is 0)
DUP_BOOST = {"typo": 0.1, "nickname": 0.25, "address_change": 0.5, "missing_ssn": 0.3, "dob_error": 0.05}

KEYBOARD = {
    "Q": "WA", "W": "QES", "E": "WRD", "R": "ETF", "T": "RYG", "Y": "TUH", "U": "YIJ", "I": "UOK", "O": "IPL",
    "P": "OL", "A": "QSZ", "S": "ADWX", "D": "SFEC", "F": "DGRV", "G": "FHTB", "H": "GJYN", "J": "HKUM",
    "K": "JLI", "L": "KO", "Z": "AX", "X": "ZCS", "C": "XVD", "V": "CBF", "B": "VNG", "N": "BMH", "M": "NJ",
}
PHONETIC = {"PH": "F", "CK": "K", "EE": "EA", "IE": "EI", "Y": "I", "C": "K", "S": "Z", "TH": "T", "AE": "A",
            "OU": "OO", "EY": "Y"}
EAST_ASIAN = {GROUP_INDEX["vietnamese"], GROUP_INDEX["chinese"], GROUP_INDEX["korean"]}
TRANSLIT_GROUPS = np.array([GROUP_INDEX[g] for g in ("arabic", "vietnamese", "chinese", "korean", "indian", "african",
                                                     "hispanic")])


def rate(noise: NoiseRates, source: str, name: str) -> float:
    return min(1.0, getattr(noise, name) * SOURCE_FACTORS.get(source, {}).get(name, 1.0))


# --------------------------------------------------------------------------------------- records from events
def split_records(rng, person: np.ndarray, order: np.ndarray, p_dup: float) -> np.ndarray:
    """Slot (0 or 1) per event: a duplicate record takes over a person's events from a random point on.

    ``order`` sorts events within a person (date, or school year). Only persons with two or more events can get
    a duplicate; their selection probability is scaled so that about ``p_dup`` of all persons get one.
    """
    n = len(person)
    slot = np.zeros(n, dtype=np.int8)
    if n == 0 or p_dup <= 0:
        return slot
    o = np.lexsort((order, person))
    ps = person[o]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    counts = np.diff(np.r_[starts, n])
    elig = counts >= 2
    if not elig.any():
        return slot
    p = min(1.0, p_dup * len(counts) / elig.sum())
    chosen = elig & (rng.random(len(counts)) < p)
    rank = np.arange(n) - np.repeat(starts, counts)
    k = np.repeat(1 + np.floor(rng.random(len(counts)) * np.maximum(counts - 1, 1)).astype(np.int64), counts)
    ch = np.repeat(chosen, counts)
    to_dup = ch & ((rank == k) | ((rank > k) & (rng.random(n) < 0.8)))
    slot[o[to_dup]] = 1
    return slot


def records_of(person: np.ndarray, slot: np.ndarray, date: np.ndarray, world: World) -> pd.DataFrame:
    """One row per (person, slot): first_seen (earliest event date) and the period that first holds it."""
    df = pd.DataFrame({"person": person, "slot": slot, "date": date})
    rec = df.groupby(["person", "slot"], sort=True)["date"].min().reset_index().rename(columns={"date": "first_seen"})
    rec["period"] = world.period_of(rec["first_seen"].to_numpy())
    return rec


# ------------------------------------------------------------------------------------------ identifier noise
def _typo(s: str, rng) -> str:
    if len(s) < 2:
        return s
    letters = [i for i, ch in enumerate(s) if ch.isalpha()]
    if not letters:
        return s
    i = letters[int(rng.integers(len(letters)))]
    op = rng.random()
    ch = s[i]
    if op < 0.35 and ch in KEYBOARD:  # adjacent key
        near = KEYBOARD[ch]
        return s[:i] + near[int(rng.integers(len(near)))] + s[i + 1:]
    if op < 0.55 and len(s) > 2:  # deletion
        return s[:i] + s[i + 1:]
    if op < 0.75 and i + 1 < len(s) and s[i + 1].isalpha() and s[i + 1] != ch:  # transposition
        return s[:i] + s[i + 1] + ch + s[i + 2:]
    if op < 0.85:  # doubled letter
        return s[:i] + ch + s[i:]
    for a, b in PHONETIC.items():  # phonetic respelling
        j = s.find(a, 1)
        if j > 0:
            return s[:j] + b + s[j + len(a):]
    return s[:i] + s[i + 1:] if len(s) > 2 else s


def _ssn_error(v: int, rng) -> int:
    s = list(f"{v:09d}")
    i = int(rng.integers(0, 8))
    if rng.random() < 0.5 and s[i] != s[i + 1]:
        s[i], s[i + 1] = s[i + 1], s[i]
    else:
        s[i] = str((int(s[i]) + int(rng.integers(1, 10))) % 10)
    out = int("".join(s))
    return out if out >= 1_000_000 else v  # keep a plausible area number


@dataclass
class Identity:
    """Recorded identifiers of a batch of person records (UPPER case names; layouts format them)."""

    first: np.ndarray
    middle: np.ndarray
    last: np.ndarray
    suffix: np.ndarray  # recorded suffix ('' when not recorded or put into `last`)
    dob: np.ndarray  # int64 day, NA_DAY when missing
    ssn: np.ndarray  # int64, -1 when missing
    house: np.ndarray  # int32, -1 when missing
    street: np.ndarray
    unit: np.ndarray
    tract: np.ndarray  # int32 tract index of the recorded address (also when the address line is blank)
    addr_missing: np.ndarray  # bool: address line (and census tract) blank
    zip_missing: np.ndarray  # bool
    sex: np.ndarray  # int8: 1 male, 0 female, -1 unknown
    flags: np.ndarray  # int64 noise bits


def _mask(rng, n: int, p: float | np.ndarray) -> np.ndarray:
    return rng.random(n) < p


def recorded_identity(rng, world: World, pop: Population, person: np.ndarray, slot: np.ndarray,
                      source: str) -> Identity:
    noise = world.cfg.noise
    ref = world.ref
    n = len(person)
    dup = slot == 1

    def r(name: str) -> np.ndarray:
        base = rate(noise, source, name)
        if name in DUP_BOOST and base > 0:
            return np.where(dup, max(base, DUP_BOOST[name]), base)
        return np.full(n, base)

    flags = np.zeros(n, dtype=np.int64)
    flags[pop.twin[person]] |= BIT["twin"]
    flags[pop.jr_sr[person]] |= BIT["jr_sr"]
    flags[dup] |= BIT["within_source_duplicate"]
    group = pop.group[person]
    first = pop.first[person].copy()
    middle = pop.middle[person].copy()
    l1, l2 = pop.last1[person], pop.last2[person]
    two = l2 != ""
    last = l1.copy()
    last[two] = l1[two] + " " + l2[two]

    # transliteration ------------------------------------------------------------------------------------------
    elig = np.isin(group, TRANSLIT_GROUPS)
    sel = np.flatnonzero(elig & _mask(rng, n, r("transliteration")))
    variants = ref.variants
    hisp = GROUP_INDEX["hispanic"]
    for i in sel:
        g = group[i]
        f, m, la = first[i], middle[i], last[i]
        opts = []
        if g in EAST_ASIAN:
            opts.append("swap")
            if g == GROUP_INDEX["vietnamese"] and m:
                opts.append("merge")
        if g in (hisp, GROUP_INDEX["vietnamese"]) and any(
                not v.isascii() for v in variants.get(f, ()) + variants.get(la.split(" ")[0], ())):
            opts.append("accents")
        if f in variants and g != hisp:
            opts.append("first")
        if la in variants and g != hisp:
            opts.append("last")
        if not opts:
            continue
        op = opts[int(rng.integers(len(opts)))]
        if op == "swap":
            first[i], last[i] = la, f
        elif op == "merge":
            first[i], middle[i] = f"{m} {f}", ""
        elif op == "accents":
            def acc(x: str) -> str:
                return " ".join(next((v for v in variants.get(w, ()) if not v.isascii()), w) for w in x.split(" "))
            first[i], middle[i], last[i] = acc(f), acc(m) if m else m, acc(la)
        elif op == "first":
            vs = variants[f]
            first[i] = vs[int(rng.integers(len(vs)))]
        else:
            vs = variants[la]
            last[i] = vs[int(rng.integers(len(vs)))]
        flags[i] |= BIT["transliteration"]

    # nickname -------------------------------------------------------------------------------------------------
    nick = ref.nicknames
    has_nick = np.fromiter((f in nick for f in first), dtype=bool, count=n)
    for i in np.flatnonzero(has_nick & _mask(rng, n, r("nickname"))):
        opts = nick[first[i]]
        first[i] = opts[int(rng.integers(len(opts)))]
        flags[i] |= BIT["nickname"]

    # two surnames recorded as one, hyphenated, joined, or split into middle/last -----------------------------------
    cs = np.flatnonzero(two & (last == l1 + " " + l2) & _mask(rng, n, r("compound_surname")))
    if len(cs):
        u = rng.random(len(cs))
        a, b = l1[cs], l2[cs]
        last[cs] = np.where(u < 0.5, a, np.where(u < 0.8, a + "-" + b, np.where(u < 0.85, a + b,
                                                                                  np.where(u < 0.9, b, b))))
        mid_split = u >= 0.9
        middle[cs[mid_split]] = a[mid_split]
        flags[cs] |= BIT["compound_surname"]

    # another surname (marriage) ----------------------------------------------------------------------------------
    alt = pop.alt_last[person]
    male = pop.male[person]
    p_sc = r("surname_change") * np.where(male, 0.1, 1.0)
    sc = np.flatnonzero((alt != "") & _mask(rng, n, p_sc))
    if len(sc):
        hy = rng.random(len(sc)) < 0.25
        last[sc] = np.where(hy, l1[sc] + "-" + alt[sc], alt[sc])
        flags[sc] |= BIT["surname_change"]

    # suffix: recorded or not, in its own field or inside the last name -------------------------------------------
    true_sfx = pop.suffix[person]
    p_rec = SUFFIX_RECORDED[source] * np.where(true_sfx == "SR", 0.5, 1.0)
    rec_sfx = (true_sfx != "") & _mask(rng, n, p_rec)
    suffix = np.where(rec_sfx, true_sfx, "").astype(object)
    if source in SUFFIX_IN_LAST:
        last[rec_sfx] = last[rec_sfx] + " " + suffix[rec_sfx]
        flags[rec_sfx] |= BIT["suffix_in_last_name"]
        suffix[:] = ""

    # first/last swap, typos ----------------------------------------------------------------------------------------
    sw = _mask(rng, n, r("first_last_swap"))
    first[sw], last[sw] = last[sw], first[sw].copy()
    flags[sw] |= BIT["first_last_swap"]
    p_typo = r("typo")
    for arr in (first, middle, last):
        t = np.flatnonzero(_mask(rng, n, p_typo) & (arr != ""))
        for i in t:
            new = _typo(arr[i], rng)
            if new != arr[i]:
                arr[i] = new
                flags[i] |= BIT["typo"]

    # middle name form (a source habit, not noise) ------------------------------------------------------------------
    full_p, init_p = MIDDLE_FORM[source]
    u = rng.random(n)
    has_m = middle != ""
    initial = has_m & (u >= full_p) & (u < full_p + init_p)
    middle[initial] = np.array([m[0] for m in middle[initial]], dtype=object)
    middle[has_m & (u >= full_p + init_p)] = ""

    # date of birth -------------------------------------------------------------------------------------------------
    dob = pop.dob[person].copy()
    d64 = dob.astype("datetime64[D]")
    mon = d64.astype("datetime64[M]")
    y = mon.astype("datetime64[Y]").astype(np.int64) + 1970
    mo = mon.astype(np.int64) % 12 + 1
    dd = (d64 - mon).astype(np.int64) + 1
    swap_ok = (dd <= 12) & (dd != mo)
    dm = swap_ok & _mask(rng, n, r("dob_day_month_swap"))
    swapped = (((y - 1970) * 12 + dd - 1).astype("datetime64[M]").astype("datetime64[D]") + (mo - 1)).astype(np.int64)
    dob[dm] = swapped[dm]
    flags[dm] |= BIT["dob_day_month_swap"]
    de = np.flatnonzero(_mask(rng, n, r("dob_error")))
    if len(de):
        u = rng.random(len(de))
        sign = np.where(rng.random(len(de)) < 0.5, -1, 1)
        delta = np.where(u < 0.4, rng.integers(1, 4, len(de)), np.where(u < 0.6, 30, np.where(u < 0.9, 365, 3652)))
        dob[de] = np.minimum(dob[de] + sign * delta, world.end)
        flags[de] |= BIT["dob_error"]
    md = _mask(rng, n, r("missing_dob"))
    dob[md] = NA_DAY
    flags[md] |= BIT["missing_dob"]

    # SSN -----------------------------------------------------------------------------------------------------------
    ssn = pop.ssn[person].copy()
    se = np.flatnonzero(_mask(rng, n, r("ssn_error")))
    for i in se:
        new = _ssn_error(int(ssn[i]), rng)
        if new != ssn[i]:
            ssn[i] = new
            flags[i] |= BIT["ssn_error"]
    ms = _mask(rng, n, r("missing_ssn"))
    ssn[ms] = -1
    flags[ms] |= BIT["missing_ssn"]

    # address -------------------------------------------------------------------------------------------------------
    ac = _mask(rng, n, r("address_change"))
    house = np.where(ac, pop.prev_house[person], pop.house[person]).astype(np.int32)
    street = np.where(ac, pop.prev_street[person], pop.street[person]).astype(object)
    unit = np.where(ac, pop.prev_unit[person], pop.unit[person]).astype(object)
    tract = np.where(ac, pop.prev_tract[person], pop.tract[person]).astype(np.int32)
    flags[ac] |= BIT["address_change"]
    ma = _mask(rng, n, r("missing_address"))
    house[ma], street[ma], unit[ma] = -1, "", ""
    zip_missing = ma & (rng.random(n) < 0.5)
    flags[ma] |= BIT["missing_address"]

    sex = pop.male[person].astype(np.int8)
    mx = _mask(rng, n, r("missing_sex"))
    sex[mx] = -1
    flags[mx] |= BIT["missing_sex"]
    return Identity(first=first, middle=middle, last=last, suffix=suffix, dob=dob, ssn=ssn, house=house,
                    street=street, unit=unit, tract=tract, addr_missing=ma, zip_missing=zip_missing, sex=sex, flags=flags)


def noise_strings(flags: np.ndarray) -> np.ndarray:
    """Comma lists of noise tokens (in ``NOISE_TOKENS`` order) from bit flags."""
    out = np.empty(len(flags), dtype=object)
    uniq, inv = np.unique(flags, return_inverse=True)
    labels = np.array([",".join(t for t in NOISE_TOKENS if int(u) & int(BIT[t])) for u in uniq], dtype=object)
    out[:] = labels[inv]
    return out
