"""Noise rates: a rate of 0 switches a kind of noise off, a high rate produces it, rates are roughly respected."""

from __future__ import annotations

import tempfile
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synth_helpers import read_all

from synthetic import NOISE_TOKENS, NoiseRates, SynthConfig, generate

TOKEN_OF = {f.name: {"twin_rate": "twin", "jr_sr_rate": "jr_sr"}.get(f.name, f.name)
            for f in fields(NoiseRates) if f.name != "two_surnames"}
PERIODS = ("2025-11", "2025-12")


def run(noise: NoiseRates, persons: int = 200, seed: int = 1) -> tuple[Path, pd.DataFrame, tempfile.TemporaryDirectory]:
    tmp = tempfile.TemporaryDirectory()
    home = Path(tmp.name)
    generate(SynthConfig(persons=persons, seed=seed, periods=PERIODS, noise=noise), home)
    return home, pd.read_parquet(home / "truth" / "truth.parquet"), tmp


def tokens(truth: pd.DataFrame) -> pd.Series:
    return truth["noise"].str.split(",")


def test_every_rate_has_a_token():
    assert set(TOKEN_OF.values()) <= set(NOISE_TOKENS)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(TOKEN_OF)), seed=st.integers(0, 10_000))
def test_rate_zero_means_no_such_noise(name, seed):
    _, truth, tmp = run(NoiseRates(**{name: 0.0}), seed=seed)
    with tmp:
        assert not tokens(truth).map(lambda t: TOKEN_OF[name] in t).any()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(TOKEN_OF)), seed=st.integers(0, 10_000))
def test_high_rate_produces_the_noise(name, seed):
    _, truth, tmp = run(NoiseRates(**{name: 0.9}), seed=seed)
    with tmp:
        assert tokens(truth).map(lambda t: TOKEN_OF[name] in t).sum() >= 3


def test_no_noise_at_all():
    home, truth, tmp = run(NoiseRates.none(), persons=600)
    with tmp:
        # only the schools' and hospital A's habit of writing a suffix into the last name remains
        assert truth["noise"].isin(["", "suffix_in_last_name"]).all()
        assert not truth.duplicated(["source", "person_id"]).any()
        c = read_all(home, "county", "clients", PERIODS)
        a = read_all(home, "hospital_a", "patients", PERIODS)
        assert c["SSN"].ne("").all() and a["SSN"].ne("").all() and c["ADDR_LINE1"].ne("").all()
        pid = truth.set_index(["source", "record_id"])["person_id"]
        c["pid"] = pid.loc[list(zip(["county"] * len(c), c["CLIENT_ID"]))].to_numpy()
        a["pid"] = pid.loc[list(zip(["hospital_a"] * len(a), a["MRN"]))].to_numpy()
        m = c.merge(a, on="pid")
        assert len(m) > 20
        assert (m["SSN_x"].str.replace("-", "") == m["SSN_y"]).all()
        assert (pd.to_datetime(m["DOB"], format="%m/%d/%Y") == pd.to_datetime(m["BIRTH_DATE"])).all()
        assert (m["FIRST_NM"] == m["PAT_FIRST_NAME"].str.upper()).mean() > 0.97


def test_rates_are_roughly_respected_and_match_the_files():
    noise = NoiseRates(missing_address=0.3, missing_ssn=0.2, missing_dob=0.2, within_source_duplicate=0.1, typo=0.1)
    home, truth, tmp = run(noise, persons=1500, seed=3)
    with tmp:
        t = truth.assign(tok=tokens(truth))
        def share(src: str, tok: str) -> float:
            return t[t["source"] == src]["tok"].map(lambda x: tok in x).mean()

        assert 0.17 < share("county", "missing_address") < 0.31  # 0.3 x county factor 0.8
        assert 0.06 < share("county", "missing_ssn") < 0.16  # 0.2 x 0.5 (duplicates more)
        assert share("police", "missing_ssn") > 0.7  # 0.2 x 4
        assert 0.12 < share("police", "missing_dob") < 0.28
        assert share("hospital_a", "missing_dob") == 0  # only the police leave DOB blank
        assert 0.12 < share("county", "typo") < 0.35  # 0.1 per name field
        dups = t[t["tok"].map(lambda x: "within_source_duplicate" in x)]
        per_source = dups.groupby("source").size() / truth.drop_duplicates(["source", "person_id"]).groupby(
            "source").size()
        assert 0.05 < per_source["hospital_a"] < 0.12  # 0.1 x 0.8
        # the truth's tokens match what is in the files
        c = read_all(home, "county", "clients", PERIODS).merge(
            truth[truth["source"] == "county"], left_on="CLIENT_ID", right_on="record_id")
        assert (c["SSN"].eq("") == c["noise"].str.contains("missing_ssn")).all()
        assert (c["ADDR_LINE1"].eq("") == c["noise"].str.contains("missing_address")).all()
        p = read_all(home, "police", "persons", PERIODS).merge(
            truth[truth["source"] == "police"], left_on="PERSON_ID", right_on="record_id")
        assert (p["DOB"].eq("") == p["noise"].str.contains("missing_dob")).all()


@pytest.mark.parametrize("bad", [{"typo": -0.1}, {"missing_ssn": 1.5}, {"twin_rate": "x"}])
def test_rates_are_validated(bad):
    with pytest.raises(ValueError):
        NoiseRates(**bad)
