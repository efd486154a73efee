"""Configuration of the simulator: population size, seed, extract periods and identifier noise rates."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date as _date
from itertools import pairwise

from synthetic.reference import PRIORITY_AREAS

#: Events start here; the baseline extract holds everything from this month on.
HISTORY_START = "2021-01"


@dataclass(frozen=True)
class NoiseRates:
    """Probabilities of identifier noise, per person record unless stated otherwise.

    Every rate is in [0, 1]. A rate of 0 switches that kind of noise off completely (no record carries it);
    rates are multiplied by a fixed per-source factor where sources really differ (see ``SOURCE_FACTORS`` in
    ``synthetic.identity``: e.g. the police miss SSNs far more often than the county) and capped at 1.
    The token written to the truth file's ``noise`` column is the field name (``twin_rate`` → ``twin``,
    ``jr_sr_rate`` → ``jr_sr``).
    """

    #: per name field (first, middle, last) per record: one keyboard/phonetic edit.
    typo: float = 0.02
    #: record uses a nickname of the first name (William → Bill), for persons whose name has one.
    nickname: float = 0.05
    #: for persons with two surnames (Hispanic naming): the record keeps only one, or hyphenates/joins
    #: them, instead of ``PATERNAL MATERNAL``.
    compound_surname: float = 0.5
    #: record of an adult woman (men: a tenth as often) carries another surname (marriage/divorce),
    #: sometimes hyphenated with the birth surname.
    surname_change: float = 0.1
    #: first and last name fields swapped.
    first_last_swap: float = 0.01
    #: day and month of birth swapped (only where the day is 1-12 and differs from the month).
    dob_day_month_swap: float = 0.01
    #: one wrong component of the birth date (day, month or year off by a little).
    dob_error: float = 0.01
    #: birth date blank (police only: the other sources require it).
    missing_dob: float = 0.05
    #: SSN blank where the source has an SSN field (the schools never have one).
    missing_ssn: float = 0.12
    #: SSN with two digits transposed or one digit wrong.
    ssn_error: float = 0.01
    #: address line blank (ZIP blank in half of those).
    missing_address: float = 0.03
    #: record holds a previous address of the person.
    address_change: float = 0.12
    #: sex recorded as unknown (``U``/``X``/``3``/``Unknown``).
    missing_sex: float = 0.005
    #: share of persons who are a twin (pairs: same surname, birth date and address, other first name).
    twin_rate: float = 0.02
    #: share of persons in a father/son pair with the same first and last name at one address (JR/SR,
    #: the suffix recorded only sometimes).
    jr_sr_rate: float = 0.01
    #: record of a person with a MENA/Arabic, Asian or Spanish-accented name uses another romanisation
    #: (Mohammed/Muhammad, Yusuf/Youssef), keeps or drops diacritics (Nguyễn/Nguyen), or writes an East
    #: Asian name family-name first.
    transliteration: float = 0.3
    #: share of persons with a second record id in one source (itself with independent variation).
    within_source_duplicate: float = 0.02
    #: population, not noise: share of Hispanic persons who carry two surnames.
    two_surnames: float = 0.55

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"NoiseRates.{f.name} must be a number in [0, 1], got {v!r}")

    @classmethod
    def none(cls) -> NoiseRates:
        """No identifier noise, twins, JR/SR pairs or duplicates (two surnames still occur, and sources without a
        suffix field still write a recorded suffix into the last name: truth token ``suffix_in_last_name``)."""
        return cls(**{f.name: 0.0 for f in fields(cls) if f.name != "two_surnames"})


@dataclass(frozen=True)
class ProgramEffects:
    """The true effects of the programs: the simulator applies them, and writes them to
    ``truth/program_effects.json``, which only the scoring of evaluations (tests, bench) reads.

    Each effect is a share in [0, 1] of events that do not happen; 0 switches it off (``ProgramEffects.none()``).
    - ``atv_violence``: of an ATV participant's violent police contacts (as victim, suspect or arrestee) dated in
      the ``atv_window_days`` after enrollment; their same-day injury visits go with them. Rate ratio 1 - share.
    - ``hvip_reinjury``: of an HVIP participant's assault-injury hospital visits after enrollment (any time):
      the hazard of violent re-injury is multiplied by 1 - share.
    - ``area_violence``: of violent police incidents located in the priority area ``area`` on or after
      ``area_start`` (a place-based program's start), with their injury visits. Rate ratio 1 - share.
    Selection into the programs does not change with these settings: higher prior risk (more police contacts
    and assault injuries in the year before the qualifying event) enrolls more, whatever the effects.
    """

    atv_violence: float = 0.35
    atv_window_days: int = 365
    hvip_reinjury: float = 0.35
    area_violence: float = 0.2
    area: str = "Beatties Ford Rd/LaSalle St"
    area_start: str = "2023-07-01"

    def __post_init__(self) -> None:
        for name in ("atv_violence", "hvip_reinjury", "area_violence"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"ProgramEffects.{name} must be a number in [0, 1], got {v!r}")
        if not isinstance(self.atv_window_days, int) or isinstance(self.atv_window_days, bool) \
                or not 1 <= self.atv_window_days <= 3650:
            raise ValueError(f"ProgramEffects.atv_window_days must be an integer in [1, 3650], got "
                             f"{self.atv_window_days!r}")
        if self.area not in PRIORITY_AREAS:
            raise ValueError(f"ProgramEffects.area must be one of {', '.join(PRIORITY_AREAS)}, got {self.area!r}")
        if not isinstance(self.area_start, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.area_start):
            raise ValueError(f"ProgramEffects.area_start must be a date YYYY-MM-DD, got {self.area_start!r}")
        try:
            _date.fromisoformat(self.area_start)
        except ValueError:
            raise ValueError(f"ProgramEffects.area_start is not a calendar date: {self.area_start!r}") from None

    @classmethod
    def none(cls) -> ProgramEffects:
        """Every effect zero: the programs change nothing (selection into them stays as it is)."""
        return cls(atv_violence=0.0, hvip_reinjury=0.0, area_violence=0.0)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _month_index(p: str) -> int:
    m = _PERIOD.match(p)
    if not m:
        raise ValueError(f"period {p!r} is not YYYY-MM")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


@dataclass(frozen=True)
class SynthConfig:
    """What to simulate.

    ``periods``: extract months ``YYYY-MM`` in increasing order. The first is the baseline (all history since
    2021-01 up to the end of that month); each later one holds the events dated after the previous period
    and up to the end of its month (with consecutive months: that month's events), and the person records
    first seen in that window.
    """

    persons: int = 20_000
    seed: int = 20261121
    periods: tuple[str, ...] = ("2025-11", "2025-12")
    noise: NoiseRates = field(default_factory=NoiseRates)
    #: the programs' true effects (ground truth for evaluation scoring only).
    effects: ProgramEffects = field(default_factory=ProgramEffects)
    #: persons simulated (and held in memory) at a time.
    chunk_size: int = 50_000

    def __post_init__(self) -> None:
        if isinstance(self.periods, str):
            raise TypeError("periods must be a sequence of 'YYYY-MM' strings, not one string")
        object.__setattr__(self, "periods", tuple(self.periods))
        if not isinstance(self.persons, int) or isinstance(self.persons, bool) or self.persons < 1:
            raise ValueError(f"persons must be a positive integer, got {self.persons!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.chunk_size, int) or self.chunk_size < 100:
            raise ValueError(f"chunk_size must be an integer >= 100, got {self.chunk_size!r}")
        if not isinstance(self.noise, NoiseRates):
            raise TypeError("noise must be a NoiseRates")
        if not isinstance(self.effects, ProgramEffects):
            raise TypeError("effects must be a ProgramEffects")
        if not self.periods:
            raise ValueError("periods must name at least one month")
        idx = [_month_index(p) for p in self.periods]
        if idx[0] < _month_index(HISTORY_START):
            raise ValueError(f"the first period {self.periods[0]} is before the history start {HISTORY_START}")
        if any(b <= a for a, b in pairwise(idx)):
            raise ValueError(f"periods must be strictly increasing: {self.periods}")
        if idx[-1] > _month_index("2099-12"):
            raise ValueError("periods after 2099 are not supported")
