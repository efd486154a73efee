"""Attack 4: birth-year and ZIP tokens aligned with per-agency profiles (``source`` is in clear).

A birth-year token (``enc_dob_y``, ~100 values) or a ZIP token (``enc_zip``, a few dozen) is one value
for every agency, and the linkage zone says which agency each record came from. So each token has a
*profile*: its record count at the county, the police, the schools, each hospital. Agencies differ
sharply (schools hold children only, police mostly young adults, hospital A draws from its own part of
the county) and those differences are public (enrolment by grade, arrests and ED visits by age, patients
by ZIP). The attack aligns token profiles with the reference's per-agency profiles: one optimal
assignment (Hungarian) under an over-dispersed Poisson deviance summed over agencies; confidence is the
posterior of the assigned value against all others.

Birth years get one more, graph-shaped, lever (after Vidanage et al.'s graph attacks): a person whose
records carry one SSN token but two birth-year tokens had a birth date keyed in with the year off, almost
always by one (or by ten). Those pairs chain year tokens into their calendar order. The attack starts
from the profile assignment and swaps values while the profile cost plus the chain cost (an SSN pair one
year apart costs nothing, ten years apart a little, anything else a lot) goes down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.attacks.common import Guesses, load_zone
from bench.attacks.reference import Reference
from bench.attacks.side_tokens import deviance

__all__ = ["align_profiles", "attack"]

DISPERSION = 2.0  # the reference is itself a sample: twice the Poisson variance
FLOOR = 0.2


def align_profiles(obs: pd.DataFrame, shares: pd.DataFrame, rel: float) -> list[tuple[str, str, float]]:
    """(token, value, confidence) for every token of ``obs`` (token x source counts) given the reference's
    ``shares`` (value x source, each column summing to 1)."""
    sources = [s for s in obs.columns if s in shares.columns]
    if not sources or obs.empty:
        return []
    o = obs[sources].to_numpy(dtype=float)
    e = shares[sources].to_numpy(dtype=float) * o.sum(axis=0)[None, :]
    cost = deviance(o[:, None, :], e[None, :, :] + FLOOR, DISPERSION, rel).sum(axis=2)
    if len(sources) and o.shape[0] > 2 * e.shape[0]:
        # many more tokens than values (salted tokens, or one token per full date of birth): not a one-to-one
        # assignment any more; each token gets the value its own per-agency profile fits best
        rows, cols = np.arange(o.shape[0]), cost.argmin(axis=1)
    else:
        rows, cols = linear_sum_assignment(cost)
    out = []
    for i, j in zip(rows, cols, strict=True):
        c = cost[i] - cost[i].min()
        w = np.exp(-c / 2.0)
        out.append((obs.index[i], str(shares.index[j]), float(w[j] / w.sum())))
    return out


#: cost (deviance units, -2 log-likelihood up to a constant) of an SSN pair whose two years are d apart
EDGE_COST = {1: 0.0, 10: 2.0}
EDGE_OTHER = 12.0


def year_edges(df: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(year token, year token) -> number of SSN tokens seen with both (and no third)."""
    if "enc_ssn_full" not in df or df["enc_ssn_full"].isna().all():
        return {}
    d = df.dropna(subset=["enc_ssn_full", "enc_dob_y"]).drop_duplicates(["enc_ssn_full", "enc_dob_y"])
    g = d.groupby("enc_ssn_full")["enc_dob_y"].agg(list)
    g = g[g.map(len) == 2]
    out: dict[tuple[str, str], int] = {}
    for a, b in g:
        key = (a, b) if a < b else (b, a)
        out[key] = out.get(key, 0) + 1
    return out


def chain_years(guesses: list[tuple[str, str, float]], obs: pd.DataFrame, shares: pd.DataFrame, rel: float,
                edges: dict[tuple[str, str], int], *, seed: int = 0, anneal: int = 120_000,
                sample: int = 60_000) -> list[tuple[str, str, float]]:
    """Year tokens -> years under the profile cost plus the SSN-pair chain cost.

    Simulated annealing from the profile assignment with moves that suit a chain (swap two years' tokens,
    reverse a run of years, rotate a run by one), then Metropolis sampling at the model's own temperature:
    the guess is each token's most visited year, the confidence how often it was there (a posterior
    marginal)."""
    if not edges or not guesses:
        return guesses
    rng = np.random.default_rng(seed)
    order = np.argsort([int(v) for v in shares.index])
    shares = shares.iloc[order]
    sources = [s for s in obs.columns if s in shares.columns]
    o = obs[sources].to_numpy(dtype=float)
    e = shares[sources].to_numpy(dtype=float) * o.sum(axis=0)[None, :]
    cost = deviance(o[:, None, :], e[None, :, :] + FLOOR, DISPERSION, rel).sum(axis=2).tolist()
    n_tok, n_val = len(obs), len(shares)
    tok_i = {t: i for i, t in enumerate(obs.index)}
    years = [int(v) for v in shares.index]
    val_j = {str(v): j for j, v in enumerate(shares.index)}
    assign = [-1] * n_tok
    for t, v, _ in guesses:
        assign[tok_i[t]] = val_j[v]
    holder = [-1] * n_val
    for i, j in enumerate(assign):
        if j >= 0:
            holder[j] = i
    nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n_tok)]
    for (a, b), w in edges.items():
        if a in tok_i and b in tok_i:
            nbrs[tok_i[a]].append((tok_i[b], w))
            nbrs[tok_i[b]].append((tok_i[a], w))

    def part_cost(toks: list[int]) -> float:
        """Profile cost of ``toks`` plus every edge touching them (once)."""
        inside = set(toks)
        c = 0.0
        for i in toks:
            if assign[i] < 0:
                continue
            c += cost[i][assign[i]]
            yi = years[assign[i]]
            for n, w in nbrs[i]:
                if assign[n] < 0 or (n in inside and n < i):
                    continue
                c += w * EDGE_COST.get(abs(yi - years[assign[n]]), EDGE_OTHER)
        return c

    def set_values(vals: list[int], new_holders: list[int]) -> None:
        for j, i in zip(vals, new_holders, strict=True):
            holder[j] = i
            if i >= 0:
                assign[i] = j

    steps = anneal + sample
    visits = np.zeros((n_tok, n_val), dtype=np.int64)
    kinds = rng.integers(0, 3, steps)
    a_s = rng.integers(0, n_val, steps)
    b_s = rng.integers(0, n_val, steps)
    lens = rng.integers(2, 16, steps)
    us = rng.random(steps)
    for s_ in range(steps):
        t = max(1.0, 30.0 * (1 - s_ / anneal)) if s_ < anneal else 1.0
        kind = kinds[s_]
        if kind == 0:  # swap the tokens of two years
            vals = [int(a_s[s_]), int(b_s[s_])]
            if vals[0] == vals[1]:
                continue
            new = [holder[vals[1]], holder[vals[0]]]
        else:
            lo = int(a_s[s_])
            hi = min(n_val, lo + int(lens[s_]))
            vals = list(range(lo, hi))
            if len(vals) < 2:
                continue
            old = [holder[j] for j in vals]
            new = old[::-1] if kind == 1 else (old[1:] + old[:1] if us[s_] < 0.5 else old[-1:] + old[:-1])
        old = [holder[j] for j in vals]
        toks = [i for i in old if i >= 0]
        before = part_cost(toks)
        set_values(vals, new)
        after = part_cost(toks)
        d = after - before
        if not (d <= 0 or us[s_] < np.exp(-d / (2.0 * t))):
            set_values(vals, old)
        if s_ >= anneal and s_ % 10 == 0:
            visits[np.arange(n_tok), assign] += 1
    out = []
    for i in range(n_tok):
        j = int(visits[i].argmax())
        out.append((obs.index[i], str(shares.index[j]), float(visits[i, j] / max(1, visits[i].sum()))))
    return out


def attack(linkage_db: Path, reference: Reference, *, chain: bool = True) -> Guesses:
    """``chain=False``: profiles only (no SSN-pair chain of birth years)."""
    if reference.profiles is None:
        raise ValueError("the profile attack needs a reference with per-agency profiles")
    df = load_zone(linkage_db, ("enc_dob_y", "enc_dob_full", "enc_zip", "enc_ssn_full"))
    rel = {"strong": 0.1, "weak": 0.3}.get(reference.profiles.label, 0.3)
    rows, notes = [], {}
    # scheme 2 has no birth-year token: the year is then guessed for each full date-of-birth token (adapted)
    year_column = "enc_dob_y" if df["enc_dob_y"].notna().any() else "enc_dob_full"
    notes["year_column"] = year_column
    for column, shares in ((year_column, reference.profiles.birth_year), ("enc_zip", reference.profiles.zip)):
        d = df.dropna(subset=[column])
        if d.empty:
            continue
        obs = pd.crosstab(d[column], d["source"])
        shares = shares.copy()
        is_year = column in ("enc_dob_y", "enc_dob_full")
        shares.index = shares.index.map(lambda v, y=is_year: f"{int(v):04d}" if y else str(v))
        guesses = align_profiles(obs, shares, rel)
        if column == "enc_dob_y" and chain:
            edges = year_edges(df)
            guesses = chain_years(guesses, obs, shares, rel, edges)
            notes["ssn_pairs_across_years"] = int(sum(edges.values()))
        rows += [(column, tok, val, conf) for tok, val, conf in guesses]
        notes[column] = {"tokens": len(obs), "reference_values": len(shares), "guessed": len(guesses)}
    return Guesses("profiles", Guesses.frame(rows), notes)
