"""Run-wide constants derived from the configuration: dates, periods, street tables, tract weights."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from synthetic.config import HISTORY_START, SynthConfig
from synthetic.reference import Reference, reference

EPOCH = dt.date(1970, 1, 1)

# race / ethnicity categories (2024 OMB SPD 15 minimum categories, multiracial kept)
W, B, H, A, M, I, P, MULTI = range(8)
RACE_LABELS: tuple[str, ...] = (
    "White",
    "Black or African American",
    "Hispanic or Latino",
    "Asian",
    "Middle Eastern or North African",
    "American Indian or Alaska Native",
    "Native Hawaiian or Pacific Islander",
    "Multiracial",
)

STREET_TYPES = np.array(["ST", "AVE", "DR", "RD", "LN", "CT", "PL", "WAY", "CIR", "BLVD", "TRL", "PKWY", "TER"],
                        dtype=object)
STREET_TYPE_W = np.array([20, 12, 22, 10, 10, 10, 4, 4, 4, 1, 1, 1, 1], dtype=float)
STREETS_PER_TRACT = 24


def day(y: int, m: int, d: int) -> int:
    return (dt.date(y, m, d) - EPOCH).days


def to_date(days: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(days))


def month_end(period: str) -> int:
    y, m = int(period[:4]), int(period[5:7])
    nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
    return (nxt - EPOCH).days - 1


@dataclass(frozen=True)
class World:
    cfg: SynthConfig
    ref: Reference
    start: int  # first day of history (2021-01-01)
    period_ends: np.ndarray  # int64 day numbers, one per period
    end: int  # last day simulated (end of the last period)
    school_years: tuple[int, ...]  # starting years of school years 2020-2021 .. the one holding `end`
    streets: np.ndarray  # [tracts, STREETS_PER_TRACT] object: "BEATTIES FORD RD"
    tract_weight_by_race: np.ndarray  # [7, tracts] probabilities of home tract by (non-multi) race
    violence_tract_p: np.ndarray  # [tracts] where violent incidents happen away from home

    @property
    def periods(self) -> tuple[str, ...]:
        return self.cfg.periods

    def period_of(self, days: np.ndarray) -> np.ndarray:
        """Index of the period holding each day (days after the last period end get the last index)."""
        return np.minimum(np.searchsorted(self.period_ends, days, side="left"), len(self.period_ends) - 1)


def build_world(cfg: SynthConfig) -> World:
    ref = reference()
    ends = np.array([month_end(p) for p in cfg.periods], dtype=np.int64)
    y0, m0 = int(HISTORY_START[:4]), int(HISTORY_START[5:])
    end = int(ends[-1])
    end_date = to_date(end)
    last_sy = end_date.year if end_date.month >= 8 else end_date.year - 1
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 7001]))
    t = len(ref.tract)
    streets = np.empty((t, STREETS_PER_TRACT), dtype=object)
    generic = np.array(ref.generic_streets, dtype=object)
    for i in range(t):
        corridor = list(ref.corridor[i])
        k = STREETS_PER_TRACT - 2 * len(corridor)
        names = generic[rng.choice(len(generic), size=k, replace=False)]
        types = STREET_TYPES[rng.choice(len(STREET_TYPES), size=k, p=STREET_TYPE_W / STREET_TYPE_W.sum())]
        row = [f"{a} {b}" for a, b in zip(names, types)] + corridor * 2
        streets[i, :] = row[:STREETS_PER_TRACT]
    dep, pw = ref.deprivation, ref.population_weight
    f = np.vstack([
        1.5 - 1.3 * dep,  # White
        0.25 + 1.7 * dep,  # Black
        0.45 + 1.1 * dep,  # Hispanic
        1.25 - 0.7 * dep,  # Asian
        0.9 + 0.2 * dep,  # MENA
        np.ones_like(dep),  # AIAN
        np.ones_like(dep),  # NHPI
    ]) * pw
    f = np.clip(f, 0.01, None)
    f = f / f.sum(axis=1, keepdims=True)
    vt = ref.violence_weight / ref.violence_weight.sum()
    return World(cfg=cfg, ref=ref, start=day(y0, m0, 1), period_ends=ends, end=end,
                 school_years=tuple(range(2020, last_sy + 1)), streets=streets,
                 tract_weight_by_race=f, violence_tract_p=vt)
