"""Attack 2: frequency alignment seeded by the deterministic side tokens and the shared name domain.

The linkage zone gives every name token three kinds of context that plain frequency alignment ignores:

1. **First-initial tokens** (``enc_fn_init``, 26 values): they sort first-name tokens into letter groups.
   Which token is which letter follows from each group's *profile* (its total and its top names'
   counts) against the reference's letter profiles (one 26 x 26 assignment).
2. **Phonetic tokens** (``enc_fn_phon``, ``enc_ln_phon``: Metaphone codes, one domain for first and last
   names): they sort name tokens into sound-alike groups. The attacker computes the Metaphone code of
   every reference name (the kit's algorithm is public) and aligns phonetic tokens with codes by their
   first-name and surname counts and the initials of their members.
3. **One token domain for first and last names** ("name"): a token has a first-name count *and* a
   surname count (WILLIAMS is a surname and a first name; swapped fields put every common first name into
   the surname column now and then), a two-dimensional profile that is far more telling than either.

Then, inside each phonetic group, member tokens are aligned with the reference names of that code by the
same two counts and the initial. Assignments are optimal (Hungarian) under a Poisson deviance with
over-dispersion (surnames cluster in households); the confidence of a guess is the posterior of its code
times the posterior of its name inside the code. Bloom filters are not used here (that is attack 3).
"""

from __future__ import annotations

from pathlib import Path

import jellyfish
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from bench.attacks.common import Guesses, load_zone, pseudo_persons
from bench.attacks.reference import Reference

__all__ = ["attack", "decode_initials", "name_tokens"]

DISPERSION_FIRST = 1.5
DISPERSION_LAST = 3.0
FLOOR = 0.3  # expected count of a name the list does not hold (typos, rare names)
LETTER_PENALTY = 4.0  # deviance units per first-name record whose initial the code's names never start with
TOP_K = 8


def metaphone(name: str) -> str:
    """The kit's phonetic code (``Encoder._metaphone``)."""
    return jellyfish.metaphone(name) or name[:1]


def deviance(o: np.ndarray, e: np.ndarray, phi: float, rel: float = 0.0) -> np.ndarray:
    """Poisson deviance of observed ``o`` against expected ``e`` (broadcast), over-dispersed: divided by
    ``phi + rel**2 * e`` (``rel``: the reference list's relative error, so a weak list gives flat posteriors)."""
    o = np.asarray(o, dtype=float)
    e = np.maximum(np.asarray(e, dtype=float), 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(o > 0, o * np.log(np.where(o > 0, o, 1.0) / e), 0.0)
    return 2.0 * (term - (o - e)) / (phi + rel * rel * e)


def name_tokens(df: pd.DataFrame) -> pd.DataFrame:
    """One row per name token (first and last share the domain): nf, nl (pseudo-person counts), the
    initial token, the phonetic token, and the Bloom filter when the zone has one."""
    pp = pseudo_persons(df)

    def mode(frame: pd.DataFrame, key: str, col: str) -> pd.Series:
        f = frame[[key, col]].dropna()
        if f.empty:
            return pd.Series(dtype=object)
        return f.groupby([key, col]).size().rename("n").reset_index().sort_values("n", ascending=False) \
            .drop_duplicates(key).set_index(key)[col]

    fn = pp.groupby("enc_fn_full").size().rename("nf")
    ln = pp.groupby("enc_ln_full").size().rename("nl")
    t = pd.concat([fn, ln], axis=1).fillna(0.0)
    t.index.name = "token"
    t["init"] = mode(pp, "enc_fn_full", "enc_fn_init")
    phon = pd.concat([mode(pp, "enc_fn_full", "enc_fn_phon"), mode(pp, "enc_ln_full", "enc_ln_phon")])
    t["phon"] = phon[~phon.index.duplicated()]
    for part in ("enc_ln_part1", "enc_ln_part2"):
        if part in pp and pp[part].notna().any():
            t[part.removeprefix("enc_ln_")] = mode(pp, "enc_ln_full", part)
    if "enc_fn_bf" in pp:
        bf = pd.concat([mode(df, "enc_fn_full", "enc_fn_bf"), mode(df, "enc_ln_full", "enc_ln_bf")])
        t["bf"] = bf[~bf.index.duplicated()]
    return t.reset_index()


def reference_names(reference: Reference, n_first: float, n_last: float) -> pd.DataFrame:
    """Reference names with expected first/last counts, initial and Metaphone code."""
    r = pd.concat([reference.names.first.rename("pf"), reference.names.last.rename("pl")], axis=1).fillna(0.0)
    r.index.name = "name"
    r = r.reset_index()
    r["ef"], r["el"] = r["pf"] * n_first, r["pl"] * n_last
    r["letter"] = r["name"].str[0]
    r["code"] = r["name"].map(metaphone)
    return r


def decode_initials(tokens: pd.DataFrame, ref: pd.DataFrame, group: pd.Series | None = None) -> dict[str, tuple[str, float]]:
    """init token -> (letter, confidence): 26 x 26 assignment of group profiles (total, top counts).

    ``group`` (token -> init token) may put surname tokens into the groups too (the Bloom attack finds
    them by their leading bigram): the profile then has a surname half, which small populations need.
    """
    tk = tokens.dropna(subset=["init"])
    groups_f = {k: np.sort(g["nf"].to_numpy())[::-1] for k, g in tk[tk["nf"] > 0].groupby("init")}
    letters_f = {L: np.sort(g["ef"].to_numpy())[::-1] for L, g in ref[ref["ef"] > 0].groupby("letter")}
    gk, lk = list(groups_f), list(letters_f)
    use_ln = group is not None
    if use_ln:
        gmap = group.to_dict()
        g_of = np.array([gmap.get(t) for t in tokens["token"]], dtype=object)
        sel = (tokens["nl"].to_numpy() > 0) & np.array([g is not None for g in g_of])
        ln_part = pd.DataFrame({"g": g_of[sel], "nl": tokens["nl"].to_numpy()[sel]})
        groups_l = {k: np.sort(g["nl"].to_numpy())[::-1] for k, g in ln_part.groupby("g")}
        letters_l = {L: np.sort(g["el"].to_numpy())[::-1] for L, g in ref[ref["el"] > 0].groupby("letter")}

    def profile(v: np.ndarray) -> np.ndarray:
        top = np.zeros(TOP_K)
        top[: min(TOP_K, len(v))] = v[:TOP_K]
        return np.sqrt(np.concatenate([[v.sum()] * 2, top]))

    empty = np.zeros(0)
    po = np.array([np.concatenate([profile(groups_f[k]), profile(groups_l.get(k, empty))]) if use_ln
                   else profile(groups_f[k]) for k in gk])
    pe = np.array([np.concatenate([profile(letters_f[L]), profile(letters_l.get(L, empty))]) if use_ln
                   else profile(letters_f[L]) for L in lk])
    cost = ((po[:, None, :] - pe[None, :, :]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    out = {}
    for i, j in zip(rows, cols, strict=True):
        post = np.exp(-(cost[i] - cost[i].min()) / 2.0)
        out[gk[i]] = (lk[j], float(post[j] / post.sum()))
    return out


def assign_with_dummy(cost: np.ndarray, dummy: np.ndarray, max_cells: int = 4_000_000) -> list[tuple[int, int]]:
    """Optimal assignment of rows to distinct columns where row i may instead stay unassigned at cost
    ``dummy[i]``: the pairs assigned. Same optimum as adding one dummy column per row, without the
    rows x rows block: solve on min(cost - dummy, 0) and drop pairs that gain nothing. Beyond ``max_cells``
    only the rows with the most to gain take part (the rest could only be low-count tokens)."""
    if cost.size == 0:
        return []
    gain = np.minimum(cost - dummy[:, None], 0.0)
    rows = np.flatnonzero(gain.min(axis=1) < 0)
    limit = max(1, max_cells // max(1, cost.shape[1]))
    if len(rows) > limit:
        rows = rows[np.argsort(gain[rows].min(axis=1))[:limit]]
    if not len(rows):
        return []
    r, c = linear_sum_assignment(gain[rows])
    return [(int(rows[i]), int(j)) for i, j in zip(r, c, strict=True) if gain[rows[i], j] < 0]


def _softmax_conf(costs: np.ndarray, chosen: int) -> float:
    c = costs - costs.min()
    w = np.exp(-c / 2.0)
    return float(w[chosen] / w.sum())


def attack(linkage_db: Path, reference: Reference) -> Guesses:
    df = load_zone(linkage_db, ("enc_fn_full", "enc_ln_full", "enc_dob_full", "enc_fn_init", "enc_fn_phon",
                                "enc_ln_phon"))
    tokens = name_tokens(df)
    guesses, notes = align(tokens, reference)
    return Guesses("side_tokens", guesses, notes)


def align(tokens: pd.DataFrame, reference: Reference, *, group: pd.Series | None = None) -> tuple[pd.DataFrame, dict]:
    """The attack on a token table (``name_tokens``): guesses for enc_fn_full and enc_ln_full tokens.

    ``group`` (token -> init token, for surname tokens too): see :func:`decode_initials`; surname tokens
    then get a letter as well.
    """
    n_first, n_last = tokens["nf"].sum(), tokens["nl"].sum()
    rel = reference.names.rel_error
    ref = reference_names(reference, n_first, n_last)
    notes: dict = {}
    tokens = tokens.copy()
    has_init = tokens["init"].notna().any()
    if has_init:
        letters = decode_initials(tokens, ref, group)
        init = tokens["token"].map(group.to_dict()) if group is not None else tokens["init"]
        tokens["letter"] = init.map(lambda k: letters.get(k, (None, 0.0))[0] if isinstance(k, str) else None)
        notes["initials_decoded"] = len(letters)
    else:
        tokens["letter"] = None
    has_phon = tokens["phon"].notna().any()
    if not has_phon:  # no phonetic tokens: one group per initial (or one group in all)
        tokens["phon"] = tokens["letter"].fillna("?") if has_init else "?"
        ref = ref.assign(code=ref["letter"] if has_init else "?")

    # -- phonetic tokens -> codes --------------------------------------------------------------------------
    ptab = tokens.groupby("phon").agg(nf=("nf", "sum"), nl=("nl", "sum"), members=("token", "size"))
    codes = ref.groupby("code").agg(ef=("ef", "sum"), el=("el", "sum"), names=("name", "size"))
    code_letters = ref[ref["ef"] > 0].groupby("code")["letter"].agg(set)
    # letters of each phonetic token's first-name records
    lt = tokens[(tokens["nf"] > 0) & tokens["letter"].notna()].groupby(["phon", "letter"])["nf"].sum()
    cost = (deviance(ptab["nf"].to_numpy()[:, None], codes["ef"].to_numpy()[None, :] + FLOOR, DISPERSION_FIRST, rel)
            + deviance(ptab["nl"].to_numpy()[:, None], codes["el"].to_numpy()[None, :] + FLOOR, DISPERSION_LAST, rel))
    if has_init and has_phon:
        pidx = {p: i for i, p in enumerate(ptab.index)}
        code_list = list(codes.index)
        letter_sets = [code_letters.get(c, set()) for c in code_list]
        for (p, L), cnt in lt.items():
            bad = np.array([L not in s for s in letter_sets])
            cost[pidx[p]] += LETTER_PENALTY * cnt * bad
    # a dummy code per phonetic token: "not in the list" (expected FLOOR for both counts)
    dummy = deviance(ptab["nf"].to_numpy(), FLOOR, DISPERSION_FIRST, rel) + deviance(ptab["nl"].to_numpy(), FLOOR,
                                                                               DISPERSION_LAST, rel)
    code_of: dict[str, tuple[str, float]] = {}
    for i, j in assign_with_dummy(cost, dummy + 1.0):
        code_of[ptab.index[i]] = (codes.index[j], _softmax_conf(np.append(cost[i], dummy[i] + 1.0), j))
    notes["phon_tokens"], notes["phon_decoded"] = len(ptab), len(code_of)

    # -- inside each phonetic group: member tokens -> names of that code --------------------------------------
    by_code = {c: g for c, g in ref.groupby("code")}
    rows_out = []
    for p, members in tokens.groupby("phon"):
        if p not in code_of:
            continue
        code, pconf = code_of[p]
        cand = by_code[code]
        ef, el = cand["ef"].to_numpy(), cand["el"].to_numpy()
        c = (deviance(members["nf"].to_numpy()[:, None], ef[None, :] + FLOOR, DISPERSION_FIRST, rel)
             + deviance(members["nl"].to_numpy()[:, None], el[None, :] + FLOOR, DISPERSION_LAST, rel))
        if has_init:
            ml = members["letter"].to_numpy()
            cl = cand["letter"].to_numpy()
            mismatch = (ml[:, None] != cl[None, :]) & pd.notna(ml)[:, None]
            c = c + mismatch * (LETTER_PENALTY * np.maximum(members["nf"].to_numpy(), 1.0))[:, None]
        d = (deviance(members["nf"].to_numpy(), FLOOR, DISPERSION_FIRST, rel)
             + deviance(members["nl"].to_numpy(), FLOOR, DISPERSION_LAST, rel) + 1.0)
        for i, j in assign_with_dummy(c, d):
            conf = pconf * _softmax_conf(np.append(c[i], d[i]), j)
            tok, name = members["token"].iloc[i], cand["name"].iloc[j]
            if members["nf"].iloc[i] > 0:
                rows_out.append(("enc_fn_full", tok, name, conf))
            if members["nl"].iloc[i] > 0:
                rows_out.append(("enc_ln_full", tok, name, conf))
    notes["tokens"] = len(tokens)
    return Guesses.frame(rows_out), notes
