"""Attack 1: frequency alignment of full name tokens (Kuzu et al. 2011, on deterministic tokens).

The baseline every keyed deterministic encoding falls to: count how many (pseudo-)persons carry each
first-name token and each surname token, sort, and give the token at rank i the reference name at rank i.
No side information at all: not the initial or phonetic tokens, not the shared name domain, not the Bloom
filters. Confidence: the probability that the rank is stable given the reference's own spacing
(:func:`bench.attacks.common.rank_confidence`).
"""

from __future__ import annotations

from pathlib import Path

from bench.attacks.common import Guesses, load_zone, pseudo_persons, rank_confidence
from bench.attacks.reference import Reference

__all__ = ["attack"]


def attack(linkage_db: Path, reference: Reference) -> Guesses:
    df = pseudo_persons(load_zone(linkage_db, ("enc_fn_full", "enc_ln_full", "enc_dob_full")))
    rows = []
    notes = {}
    for column, ref in (("enc_fn_full", reference.names.first), ("enc_ln_full", reference.names.last)):
        counts = df[column].value_counts().sort_index().sort_values(ascending=False, kind="stable")
        n = int(counts.sum())
        k = min(len(counts), len(ref))
        expected = ref.to_numpy()[:k] * n
        conf = rank_confidence(expected, reference.names.rel_error)
        names = ref.index[:k]
        rows += [(column, tok, name, float(c)) for tok, name, c in zip(counts.index[:k], names, conf, strict=True)]
        notes[column] = {"tokens": len(counts), "reference_names": len(ref), "guessed": k}
    return Guesses("frequency", Guesses.frame(rows), notes)
