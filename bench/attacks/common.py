"""What every attack shares: reading the linkage zone, the guesses format, bigrams and Bloom filter bits.

An attack reads ONLY the linkage zone file (``encodings``) and public reference data
(:mod:`bench.attacks.reference`). It returns :class:`Guesses`: plaintext guesses for tokens of an
``enc_`` column (a guess for a token applies to every record that carries it), each with the attacker's
own confidence in [0, 1]. The scorer (:mod:`bench.attacks.score`) is the only code that sees the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

__all__ = ["FIELDS", "Guesses", "bigram_index", "bigrams_of", "filters_matrix", "load_zone", "pseudo_persons",
           "rank_confidence"]

#: the field each attacked column holds (the scorer compares guesses with the truth of that field)
FIELDS = {"enc_fn_full": "first", "enc_ln_full": "last", "enc_dob_y": "birth_year", "enc_zip": "zip",
          "enc_dob_full": "birth_year"}  # scheme 2 has no year token: years are guessed per full-DOB token
NAME_COLUMNS = ("enc_fn_full", "enc_fn_phon", "enc_fn_init", "enc_fn_bf", "enc_ln_full", "enc_ln_phon",
                "enc_ln_part1", "enc_ln_part2", "enc_ln_bf", "enc_mn_init")


@dataclass
class Guesses:
    """Plaintext guesses per token: ``tokens`` has columns column, token, guess, confidence."""

    attack: str
    tokens: pd.DataFrame
    notes: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=["column", "token", "guess", "confidence"])

    def merged(self, other: Guesses, attack: str) -> Guesses:
        """Both sets of guesses; where both guess a token, the more confident one."""
        t = pd.concat([self.tokens, other.tokens], ignore_index=True)
        t = t.sort_values("confidence", ascending=False).drop_duplicates(["column", "token"])
        notes = self.notes if self.attack == attack else {self.attack: self.notes}
        return Guesses(attack, t.reset_index(drop=True), {**notes, other.attack: other.notes})


def load_zone(linkage_db: Path, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The ``encodings`` table (selected columns that exist), one row per (source, source_record_id).

    A record loaded twice (two extracts of one period, a re-sent envelope) is kept once.
    """
    with duckdb.connect(str(linkage_db), read_only=True) as con:
        have = [r[0] for r in con.execute("select column_name from information_schema.columns "
                                          "where table_name = 'encodings' order by ordinal_position").fetchall()]
        want = [c for c in (columns or have) if c in have]
        keep = ["source", "source_record_id", *[c for c in want if c not in ("source", "source_record_id")]]
        df = con.execute(f"select {', '.join(keep)} from encodings "
                         "qualify row_number() over (partition by source, source_record_id) = 1 "
                         "order by source, source_record_id").df()  # a fixed order: same guesses every run
    for c in (columns or ()):
        if c not in df.columns:
            df[c] = None
    for c in df.columns:  # BLOBs come back as bytearray (unhashable): make them bytes
        if c.endswith("_bf"):
            df[c] = [bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else None for v in df[c]]
    return df


def pseudo_persons(df: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct (first, last, date of birth) token triple: records of one person in several
    sources mostly collapse to one row, so token counts approximate person counts (what name lists give)."""
    key = [c for c in ("enc_fn_full", "enc_ln_full", "enc_dob_full") if c in df.columns and df[c].notna().any()]
    return df.drop_duplicates(key) if key else df


# ----------------------------------------------------------------------------------------------- bigrams
ALPHABET = " ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CODE = {c: i for i, c in enumerate(ALPHABET)}
N_BIGRAMS = len(ALPHABET) ** 2


def bigrams_of(name: str) -> list[str]:
    """Padded bigrams of a name, as the kit makes them (``partner_kit.encode.bigrams``), as a sorted list."""
    padded = f" {name} "
    return sorted({padded[i: i + 2] for i in range(len(padded) - 1)})


def bigram_index(bg: str) -> int:
    return _CODE[bg[0]] * len(ALPHABET) + _CODE[bg[1]]


def bigram_str(i: int) -> str:
    return ALPHABET[i // len(ALPHABET)] + ALPHABET[i % len(ALPHABET)]


def name_ok(name: str) -> bool:
    return bool(name) and all(c in _CODE and c != " " for c in name)


def filters_matrix(values: list[bytes]) -> np.ndarray:
    """Bloom filters (equal-length bytes) as a boolean matrix [n, bits], bit 0 = most significant bit."""
    if not values:
        return np.zeros((0, 0), dtype=bool)
    raw = np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), -1)
    return np.unpackbits(raw, axis=1).astype(bool)


# ------------------------------------------------------------------------------------------- confidence
def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def rank_confidence(expected: np.ndarray, rel_error: float) -> np.ndarray:
    """The attacker's confidence that the token at rank i is the reference name at rank i.

    ``expected`` are the reference's expected counts in descending order. A rank holds when the observed
    count stays between the midpoints to its neighbours; the count is Poisson with extra relative error
    ``rel_error`` (the attacker's belief about the reference list). Returns P(stays) per rank.
    """
    e = np.asarray(expected, dtype=float)
    out = np.zeros(len(e))
    for i, ei in enumerate(e):
        hi = (e[i - 1] + ei) / 2 if i > 0 else math.inf
        lo = (e[i + 1] + ei) / 2 if i + 1 < len(e) else 0.0
        sd = math.sqrt(max(ei, 1e-9) + (rel_error * ei) ** 2)
        out[i] = max(0.0, _phi((hi - ei) / sd) - _phi((lo - ei) / sd))
    return out
