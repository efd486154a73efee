"""Shipped reference data (``synthetic/data/*.csv``) and the sampling tables built from it.

- ``geography.csv``: tract, zip, neighborhood, priority_area (the shared synthetic geography).
- ``tract_profile.csv``: per tract population weight, deprivation index, hospital A market share, violence
  weight and corridor streets (simulator-only attributes, kept out of the shared geography).
- ``first_names.csv`` (name, sex, group, era, weight), ``surnames.csv`` (name, group, weight): invented or
  common names by cultural group with Zipf-like weights; era ``O`` names are for births before 1975, ``Y``
  for births from 1990, ``C`` for any.
- ``nicknames.csv`` (name, nickname), ``transliterations.csv`` (name, variant): variant maps.
- ``streets.csv``: generic street names used in every tract besides the tract's corridor streets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"

PRIORITY_AREAS: tuple[str, ...] = (
    "Beatties Ford Rd/LaSalle St",
    "Central Ave/N Sharon Amity Rd",
    "Nations Ford Rd/Arrowood Rd",
    "Sugar Creek Rd/I-85",
)

#: Cultural name groups (surname lists); first-name lists exist for all but ``lumbee``.
GROUPS: tuple[str, ...] = ("white", "black", "hispanic", "arabic", "vietnamese", "chinese", "korean", "indian",
                           "african", "filipino", "lumbee", "pacific")
GROUP_INDEX = {g: i for i, g in enumerate(GROUPS)}
#: birth-year buckets for first-name eras: < 1975, 1975-1989, >= 1990
ERA_BUCKETS = (1975, 1990)


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, dtype=str, keep_default_na=False, encoding="utf-8")


def load_geography() -> pd.DataFrame:
    """The shared synthetic geography: one row per census tract (all columns strings, blank = no priority area)."""
    return _read("geography.csv")


@dataclass(frozen=True)
class Sampler:
    """Weighted categorical sampler over ``values`` (cumulative weights, searchsorted)."""

    values: np.ndarray  # object array of str
    cum: np.ndarray

    @classmethod
    def of(cls, values, weights) -> Sampler:
        w = np.asarray(weights, dtype=float)
        return cls(np.asarray(values, dtype=object), np.cumsum(w / w.sum()))

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        i = np.searchsorted(self.cum, rng.random(n) * self.cum[-1], side="right")
        return self.values[np.minimum(i, len(self.values) - 1)]


@dataclass(frozen=True)
class Reference:
    geo: pd.DataFrame  # geography + tract profile, one row per tract, index 0..T-1
    tract: np.ndarray  # str
    zip: np.ndarray
    priority: np.ndarray  # bool
    deprivation: np.ndarray
    hospital_a_share: np.ndarray
    violence_weight: np.ndarray
    population_weight: np.ndarray
    corridor: tuple[tuple[str, ...], ...]
    generic_streets: tuple[str, ...]
    first: dict  # (group, sex, era_bucket) -> Sampler
    surname: dict  # group -> Sampler
    nicknames: dict  # UPPER name -> tuple of UPPER nicknames
    variants: dict  # UPPER name -> tuple of UPPER variants


@lru_cache(maxsize=1)
def reference() -> Reference:
    geo = load_geography()
    prof = _read("tract_profile.csv")
    if list(geo.columns) != ["tract", "zip", "neighborhood", "priority_area"]:
        raise ValueError(f"{DATA / 'geography.csv'}: columns must be tract,zip,neighborhood,priority_area")
    bad = set(geo["priority_area"]) - set(PRIORITY_AREAS) - {""}
    if bad:
        raise ValueError(f"{DATA / 'geography.csv'}: unknown priority_area {sorted(bad)}")
    geo = geo.merge(prof, on="tract", how="left", validate="one_to_one")
    if geo["deprivation"].eq("").any() or geo["deprivation"].isna().any():
        raise ValueError(f"{DATA / 'tract_profile.csv'} lacks tracts of geography.csv")
    for c in ("population_weight", "deprivation", "hospital_a_share", "violence_weight"):
        geo[c] = geo[c].astype(float)

    fn = _read("first_names.csv")
    fn["name"] = fn["name"].str.upper()
    fn["weight"] = fn["weight"].astype(float)
    first: dict = {}
    era_fit = {  # weight multiplier of an era's names for a birth-year bucket
        0: {"C": 1.0, "O": 1.0, "Y": 0.05},
        1: {"C": 1.0, "O": 0.25, "Y": 0.25},
        2: {"C": 1.0, "O": 0.05, "Y": 1.0},
    }
    for (g, s), d in fn.groupby(["group", "sex"], sort=True):
        for b, fit in era_fit.items():
            w = d["weight"].to_numpy() * d["era"].map(fit).to_numpy()
            agg = pd.Series(w, index=d["name"].to_numpy()).groupby(level=0, sort=True).sum()
            first[(g, s, b)] = Sampler.of(agg.index.to_numpy(), agg.to_numpy())
    sn = _read("surnames.csv")
    sn["name"] = sn["name"].str.upper()
    sn["weight"] = sn["weight"].astype(float)
    surname = {}
    for g, d in sn.groupby("group", sort=True):
        agg = d.groupby("name", sort=True)["weight"].sum()
        surname[g] = Sampler.of(agg.index.to_numpy(), agg.to_numpy())
    missing = [g for g in GROUPS if g not in surname]
    if missing:
        raise ValueError(f"{DATA / 'surnames.csv'}: no surnames for groups {missing}")

    nick: dict = {}
    for k, v in _read("nicknames.csv").itertuples(index=False):
        nick.setdefault(k.upper(), []).append(v.upper())
    var: dict = {}
    for k, v in _read("transliterations.csv").itertuples(index=False):
        var.setdefault(k.upper(), []).append(v.upper())

    corridor = tuple(tuple(s for s in c.split(";") if s) for c in geo["corridor_streets"])
    streets = tuple(_read("streets.csv")["street"].str.upper())
    return Reference(
        geo=geo,
        tract=geo["tract"].to_numpy(dtype=object),
        zip=geo["zip"].to_numpy(dtype=object),
        priority=geo["priority_area"].ne("").to_numpy(),
        deprivation=geo["deprivation"].to_numpy(),
        hospital_a_share=geo["hospital_a_share"].to_numpy(),
        violence_weight=geo["violence_weight"].to_numpy(),
        population_weight=geo["population_weight"].to_numpy(),
        corridor=corridor,
        generic_streets=streets,
        first=first,
        surname=surname,
        nicknames={k: tuple(v) for k, v in nick.items()},
        variants={k: tuple(v) for k, v in var.items()},
    )
