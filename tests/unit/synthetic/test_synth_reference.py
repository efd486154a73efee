"""Configuration checks, shipped reference data, id permutations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthetic import PRIORITY_AREAS, SynthConfig, load_geography
from synthetic.ids import IdSpace
from synthetic.reference import GROUPS, reference


@pytest.mark.parametrize("kwargs", [
    {"persons": 0}, {"periods": ()}, {"periods": ("2025-13",)}, {"periods": ("2025-12", "2025-11")},
    {"periods": ("2020-12",)}, {"periods": "2025-11"}, {"chunk_size": 10}, {"seed": -1},
])
def test_config_is_validated(kwargs):
    with pytest.raises((ValueError, TypeError)):
        SynthConfig(**kwargs)


def test_periods_accept_a_list():
    assert SynthConfig(periods=["2025-11", "2025-12"]).periods == ("2025-11", "2025-12")


def test_geography():
    g = load_geography()
    assert list(g.columns) == ["tract", "zip", "neighborhood", "priority_area"]
    assert g["tract"].str.fullmatch(r"37119\d{6}").all() and g["tract"].is_unique
    assert 220 <= len(g) <= 260
    assert g["zip"].str.fullmatch(r"282\d\d").all() and 25 <= g["zip"].nunique() <= 35
    assert 35 <= g["neighborhood"].nunique() <= 50
    assert set(g["priority_area"]) - {""} == set(PRIORITY_AREAS)
    assert 0.03 < (g["priority_area"] != "").mean() < 0.12


def test_name_tables():
    ref = reference()
    for g in GROUPS:
        assert len(ref.surname[g].values) >= 20, g
        if g != "lumbee":
            assert len(ref.first[(g, "M", 2)].values) >= 10 and len(ref.first[(g, "F", 2)].values) >= 10, g
    assert "BILL" in ref.nicknames["WILLIAM"]
    assert "MUHAMMAD" in ref.variants["MOHAMMED"] and "YUSUF" in ref.variants["YOUSSEF"]
    assert "NGUYỄN" in ref.variants["NGUYEN"]
    assert len(ref.surname["white"].values) > 1000  # long tail: realistic collision rates at scale


@settings(max_examples=40, deadline=None)
@given(size=st.integers(2, 5000), seed=st.integers(0, 2**31))
def test_id_space_is_a_permutation(size, seed):
    sp = IdSpace("x", size, seed, lo=7)
    a = sp.take(size // 2)
    b = sp.take(size - size // 2)
    ids = np.concatenate([a, b])
    assert sorted(ids.tolist()) == list(range(7, 7 + size))
    with pytest.raises(ValueError):
        sp.take(1)


def test_id_space_large_domain_unique():
    sp = IdSpace("csn", 9 * 10**11, 1, lo=10**11)
    ids = sp.take(200_000)
    assert len(np.unique(ids)) == len(ids)
    assert ids.min() >= 10**11 and ids.max() < 10**12
