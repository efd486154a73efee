"""What the attacker knows besides the linkage zone: public reference data, two strengths each.

Names (``NameReference``: normalised name -> expected share among persons, first and last):

* ``strong``: the simulator's own name lists (``synthetic/data/first_names.csv``, ``surnames.csv``) mixed by
  the county's census shares (race/ethnicity, age pyramid), plus the nickname and transliteration lists
  with small shares. This is the population's own frequency distribution: the best list an attacker
  could hold (in reality: a state voter file or a hospital's own patient index).
* ``weak``: the same lists mixed by *national* shares (not the county's), without birth-era weighting,
  every weight multiplied by a random factor (log-normal, sigma 0.5, fixed seed), truncated to the
  600 most common first names and 1,500 most common surnames, no variant lists. A "national ordering"
  attacker.

Per-agency profiles (``ProfileReference``: share of each source's records by birth year and by ZIP):

* ``strong``: counted on an independent synthetic population (another seed, same size): what the agencies'
  published tables (school enrolment by grade, ED visits and arrests by age, patients by ZIP) would say.
* ``weak``: the same tables coarsened as publications usually are: birth years in 5-year bands (spread
  evenly inside a band), and ZIP shares from a 20 % sample of them.

Everything here is derived from files shipped in the repository and from simulation; nothing reads the
attacked population, its truth, or any key.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["NameReference", "ProfileReference", "Reference", "name_reference", "profile_reference", "reference"]

DATA = Path(__file__).resolve().parents[2] / "synthetic" / "data"
GROUPS = ("white", "black", "hispanic", "arabic", "vietnamese", "chinese", "korean", "indian", "african",
          "filipino", "lumbee", "pacific")


@dataclass(frozen=True)
class NameReference:
    label: str
    first: pd.Series  # normalised first name -> expected share of persons (sums to <= 1)
    last: pd.Series  # normalised compact surname -> expected share
    rel_error: float  # the attacker's belief about the list's relative error (used for confidence only)


@dataclass(frozen=True)
class ProfileReference:
    label: str
    birth_year: pd.DataFrame  # index: year (int); columns: source; values: share of the source's records
    zip: pd.DataFrame  # index: ZIP (str); columns: source; values: share of the source's records


@dataclass(frozen=True)
class Reference:
    label: str
    names: NameReference
    profiles: ProfileReference | None = None


# --------------------------------------------------------------------------------------------------- names
def _norm_first(v: str) -> str | None:
    from partner_kit.normalise import normalise_given

    return normalise_given(v)


def _norm_last(v: str) -> str | None:
    from partner_kit.normalise import normalise_surname

    s = normalise_surname(v)
    return s.compact if s else None


def _county_shares() -> tuple[dict[str, float], dict[str, float], dict[int, float]]:
    """(surname group shares, first-name group shares, era-bucket shares) from census-style county figures."""
    from synthetic.population import AGE_BAND_W, ENGLISH_FIRST, HH_RACE_P, SURNAME_GROUP

    group: dict[str, float] = {}
    race_p = HH_RACE_P / HH_RACE_P.sum()
    for r, (groups, p) in SURNAME_GROUP.items():
        for g, q in zip(groups, p, strict=True):
            group[g] = group.get(g, 0.0) + race_p[r] * q
    first = {g: 0.0 for g in GROUPS}
    for g, s in group.items():
        eng = np.mean(ENGLISH_FIRST.get(g, (0.0, 0.0)))
        if g == "lumbee":
            first["white"] += 0.6 * s
            first["black"] += 0.4 * s
            continue
        first[g] += (1 - eng) * s
        first["white"] += eng * s
    # age pyramid in 5-year bands as of 2025 -> birth before 1975 / 1975-1989 / from 1990
    ages = np.repeat(np.arange(len(AGE_BAND_W)) * 5, 5) + np.tile(np.arange(5), len(AGE_BAND_W))
    w = np.repeat(AGE_BAND_W / 5, 5)
    byear = 2025 - ages
    era = {0: float(w[byear < 1975].sum()), 1: float(w[(byear >= 1975) & (byear < 1990)].sum()),
           2: float(w[byear >= 1990].sum())}
    tot = sum(era.values())
    return group, first, {k: v / tot for k, v in era.items()}


#: national-style shares for the weak list (US-wide, rounded; no local knowledge)
_NATIONAL = {"white": 0.60, "black": 0.13, "hispanic": 0.19, "arabic": 0.01, "vietnamese": 0.006,
             "chinese": 0.015, "korean": 0.006, "indian": 0.014, "african": 0.01, "filipino": 0.01,
             "lumbee": 0.0005, "pacific": 0.002}
_ERA_FIT = {0: {"C": 1.0, "O": 1.0, "Y": 0.05}, 1: {"C": 1.0, "O": 0.25, "Y": 0.25},
            2: {"C": 1.0, "O": 0.05, "Y": 1.0}}


def _mix_first(fn: pd.DataFrame, group_share: dict[str, float], era_share: dict[int, float] | None) -> pd.Series:
    parts = []
    for (g, s), d in fn.groupby(["group", "sex"]):
        sex_p = 0.485 if s == "M" else 0.515
        if era_share is None:
            w = d["weight"] / d["weight"].sum()
            parts.append(pd.Series(w.to_numpy() * group_share.get(g, 0) * sex_p, index=d["norm"].to_numpy()))
            continue
        for b, eshare in era_share.items():
            w = d["weight"] * d["era"].map(_ERA_FIT[b])
            w = w / w.sum()
            parts.append(pd.Series(w.to_numpy() * group_share.get(g, 0) * sex_p * eshare, index=d["norm"].to_numpy()))
    return pd.concat(parts).groupby(level=0).sum()


def _mix_last(sn: pd.DataFrame, group_share: dict[str, float]) -> pd.Series:
    parts = []
    for g, d in sn.groupby("group"):
        w = d["weight"] / d["weight"].sum()
        parts.append(pd.Series(w.to_numpy() * group_share.get(g, 0), index=d["norm"].to_numpy()))
    return pd.concat(parts).groupby(level=0).sum()


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, dtype=str, keep_default_na=False)


@lru_cache(maxsize=4)
def name_reference(strength: str = "strong") -> NameReference:
    """The strong or weak name list (see the module docstring)."""
    fn, sn = _read("first_names.csv"), _read("surnames.csv")
    fn["weight"], sn["weight"] = fn["weight"].astype(float), sn["weight"].astype(float)
    fn["norm"], sn["norm"] = fn["name"].map(_norm_first), sn["name"].map(_norm_last)
    fn, sn = fn.dropna(subset=["norm"]), sn.dropna(subset=["norm"])
    if strength == "strong":
        group, first_group, era = _county_shares()
        first, last = _mix_first(fn, first_group, era), _mix_last(sn, group)
        # variant lists (public nickname / romanisation tables): a small share of their base name
        for file, share in (("nicknames.csv", 0.05), ("transliterations.csv", 0.10)):
            v = _read(file)
            v["base"], v["var"] = v.iloc[:, 0].map(_norm_first), v.iloc[:, 1].map(_norm_first)
            v = v.dropna()
            per = v.groupby("base")["var"].transform("count")
            extra_first = pd.Series((v["base"].map(first).fillna(0) * share / per).to_numpy(), index=v["var"].to_numpy())
            extra_last = pd.Series((v["base"].map(last).fillna(0) * share / per).to_numpy(), index=v["var"].to_numpy())
            first = first.add(extra_first[extra_first > 0].groupby(level=0).sum(), fill_value=0.0)
            last = last.add(extra_last[extra_last > 0].groupby(level=0).sum(), fill_value=0.0)
        return NameReference("strong", first.sort_values(ascending=False), last.sort_values(ascending=False), 0.15)
    if strength == "weak":
        rng = np.random.default_rng(7)
        first = _mix_first(fn, _NATIONAL, None)
        last = _mix_last(sn, _NATIONAL)
        first = first * rng.lognormal(0.0, 0.5, len(first))
        last = last * rng.lognormal(0.0, 0.5, len(last))
        first = first.sort_values(ascending=False).head(600)
        last = last.sort_values(ascending=False).head(1500)
        return NameReference("weak", first / first.sum(), last / last.sum(), 0.5)
    raise ValueError(f"unknown strength {strength!r}")


# ------------------------------------------------------------------------------------------------ profiles
@lru_cache(maxsize=8)
def profile_reference(strength: str = "strong", *, persons: int = 20_000, seed: int = 1) -> ProfileReference:
    """Per-source birth-year and ZIP shares counted on an independent synthetic population (another seed).

    ``seed`` must differ from the attacked population's seed (the caller's business: the bench uses
    ``attacked seed + 1``).
    """
    from bench.attacks.truth import truth_table  # the reference population's own truth: public tables
    from bench.attacks.zone import build_population

    with tempfile.TemporaryDirectory(prefix="vpdc-attack-ref-") as tmp:
        pop = build_population(Path(tmp), persons=persons, seed=seed)
        t = truth_table(pop)
    t = t.dropna(subset=["person_id"])
    years = t.dropna(subset=["birth_year_s"]).assign(y=lambda d: d["birth_year_s"].astype(int))
    by = pd.crosstab(years["y"], years["source"]).astype(float)
    zp = pd.crosstab(t.dropna(subset=["zip"])["zip"], t.dropna(subset=["zip"])["source"]).astype(float)
    if strength == "weak":
        band = (by.index // 5) * 5
        by = by.groupby(band).transform("mean")  # 5-year bands, spread evenly
        rng = np.random.default_rng(seed)
        zp = pd.DataFrame(rng.binomial(zp.to_numpy().astype(np.int64), 0.2).astype(float), index=zp.index,
                          columns=zp.columns)
    elif strength != "strong":
        raise ValueError(f"unknown strength {strength!r}")
    return ProfileReference(strength, by / by.sum(), zp / zp.sum())


def reference(strength: str = "strong", *, persons: int = 20_000, seed: int = 1,
              profiles: bool = True) -> Reference:
    """Names and (optionally) per-agency profiles of one strength."""
    return Reference(strength, name_reference(strength),
                     profile_reference(strength, persons=persons, seed=seed) if profiles else None)
