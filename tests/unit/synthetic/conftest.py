"""Fixtures for the simulator tests: one small generated data set per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from synth_helpers import PERIODS

from synthetic import NoiseRates, SynthConfig, generate


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> tuple[Path, dict, SynthConfig]:
    """1,500 persons, three monthly periods, several chunks, default noise (plus more twins and JR/SR pairs)."""
    home = tmp_path_factory.mktemp("synth-small")
    cfg = SynthConfig(persons=1500, seed=7, periods=PERIODS, chunk_size=600,
                      noise=NoiseRates(twin_rate=0.04, jr_sr_rate=0.05, within_source_duplicate=0.05))
    summary = generate(cfg, home)
    return home, summary, cfg


@pytest.fixture(scope="session")
def truth(small) -> pd.DataFrame:
    return pd.read_parquet(small[0] / "truth" / "truth.parquet")
