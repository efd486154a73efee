"""Seeded simulator of a Mecklenburg-like population and the raw extracts of the collaborative's partners.

``generate(SynthConfig(...), home)`` writes ``home/partners/<partner>/<period>/<extract>.csv`` in each partner's
native layout (docs/partner-layouts.md) with realistic identifier noise, and ``home/truth/truth.parquet`` (true person
per record and the noise applied) for linkage evaluation only. Everything is synthetic.
"""

from synthetic.build import generate
from synthetic.config import NoiseRates, ProgramEffects, SynthConfig
from synthetic.identity import NOISE_TOKENS
from synthetic.layouts import LAYOUTS, PARTNERS, Layout
from synthetic.reference import PRIORITY_AREAS, load_geography
from synthetic.world import RACE_LABELS

__all__ = [
    "LAYOUTS",
    "NOISE_TOKENS",
    "PARTNERS",
    "PRIORITY_AREAS",
    "ProgramEffects",
    "RACE_LABELS",
    "Layout",
    "NoiseRates",
    "SynthConfig",
    "generate",
    "load_geography",
]
