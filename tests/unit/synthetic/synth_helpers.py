"""Readers shared by the simulator tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from synthetic import LAYOUTS

DOC = Path(__file__).resolve().parents[3] / "docs" / "partner-layouts.md"
PERIODS = ("2025-10", "2025-11", "2025-12")


def read_extract(home: Path, partner: str, period: str, extract: str) -> pd.DataFrame:
    lay = next(x for x in LAYOUTS if x.partner == partner and x.extract == extract)
    return pd.read_csv(home / "partners" / partner / period / lay.file, sep=lay.sep, dtype=str,
                       keep_default_na=False, encoding="utf-8")


def read_all(home: Path, partner: str, extract: str, periods=PERIODS) -> pd.DataFrame:
    frames = []
    for p in periods:
        d = read_extract(home, partner, p, extract)
        d.insert(0, "_period", p)
        frames.append(d)
    return pd.concat(frames, ignore_index=True)
