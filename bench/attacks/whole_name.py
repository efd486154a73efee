"""Attack 5: the whole-name filter of scheme 3 (``enc_nw_bf``, ADR 0014), with known records.

The filter holds the bigrams of every word of a person's names in no order. It is built like the other name
filters (own key, salted by the exact date of birth, XOR-folded, masked, balanced), so the frequency and
pattern-mining attacks have nothing to count: one bigram sets other positions under every birth date. What an
attacker *can* use is similarity among the filters of one birth date (they share a salt: the full-DOB token,
unsalted, says which records do) and known plaintext. The attacker here is as strong as we can make them: an
insider holding the zone who colludes with one partner and so knows the true names of **every record of that
partner** (a few thousand records, each with its filter). For every other record:

* **same birth date**: the known record of that date whose filter is closest (Dice); its words are the guess
  when Dice >= ``threshold`` (the linkage's own whole-name level: a pair that close is one person's variants);
* **another birth date** (an attacker who ignores the salt): the closest known record of any other birth date,
  for a sample of records.

Scheme 5's whole-name filter salted by the SSN (``enc_nws_bf``, ADR 0016) is attacked the same way with
``column="enc_nws_bf", salt="enc_ssn_full"``: the unsalted SSN token says which records share its salt, so the
route "same_birth_date" then means "same salt" (records of one SSN) and "other_birth_date" another SSN. Scheme 6's
filter salted by the street address (``enc_nwa_bf``, ADR 0017) likewise with ``salt="enc_addr"``: the same salt is a
household, where relatives' close names are what a colluding partner could learn. Scheme 7's first-name token salted by
the address (``enc_fn_addr``, ADR 0018) is a keyed deterministic token, not a filter: ``column="enc_fn_addr",
salt="enc_addr"`` compares tokens for equality (confidence 1 where a known record of that household has the same
token, 0 otherwise), and the known records' "words" are then their first names.

Scored against the synthetic truth: a guess is right when the guessed words are the record's words. Reported
apart: records of persons the colluding partner does **not** hold (a real decoding: what the target is about)
and records of persons it holds (membership: the partner learns where else its own clients appear, which is
what linkage itself computes and the governance rules keep from partners).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.attacks.common import load_zone
from partner_kit.nicknames import MAX_FORMAL

__all__ = ["attack"]

THRESHOLD = 0.92
ANY_DATE_SAMPLE = 2_000


def _bits(filters: list[bytes]) -> np.ndarray:
    return np.unpackbits(np.frombuffer(b"".join(filters), dtype=np.uint8).reshape(len(filters), -1), axis=1)


def _dice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dice of every row of ``a`` with every row of ``b`` (0/1 matrices)."""
    inter = a.astype(np.float32) @ b.T.astype(np.float32)
    return 2 * inter / (a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :])


def _tokens(values: pd.Series) -> np.ndarray:
    """Deterministic tokens as integer codes (equal tokens, equal codes)."""
    return pd.factorize(values)[0]


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1.0 where token ``a[i]`` equals ``b[j]``, 0.0 elsewhere: the "Dice" of a deterministic token."""
    return (a[:, None] == b[None, :]).astype(np.float32)


def attack(linkage_db: Path, known: pd.DataFrame, *, seed: int = 7, column: str = "enc_nw_bf",
           salt: str = "enc_dob_full") -> pd.DataFrame:
    """The known-records attack on ``column`` (``enc_nw_bf``, or ``enc_nws_bf`` with ``salt="enc_ssn_full"``), whose
    records share a salt where their ``salt`` token is equal. ``known``: the colluding partner's records (``source``,
    ``source_record_id``, ``words``: their true name words). Returns one row per other record the attacker
    guessed: source, source_record_id, guess (words), confidence (Dice), route ("same_birth_date" for every
    record that shares a birth date with a known one; "other_birth_date": for a sample of all, the closest known
    record of another birth date)."""
    exact = not column.endswith("_bf")  # a deterministic token: equal or not
    zone = load_zone(linkage_db, (salt, column))
    cols = ["source", "source_record_id", "guess", "confidence", "route"]
    if column not in zone or zone[column].isna().all():
        return pd.DataFrame(columns=cols)
    z = zone.dropna(subset=[column]).merge(known[["source", "source_record_id", "words"]],
                                               on=["source", "source_record_id"], how="left")
    z = z.reset_index(drop=True)
    is_known = z["words"].notna().to_numpy()
    words = z["words"].to_numpy()
    bits = _tokens(z[column]) if exact else _bits(list(z[column]))
    rows: list[tuple] = []
    for _, idx in z[z[salt].notna()].groupby(salt).indices.items():
        k, u = idx[is_known[idx]], idx[~is_known[idx]]
        if len(k) == 0 or len(u) == 0:
            continue
        d = _same(bits[u], bits[k]) if exact else _dice(bits[u], bits[k])
        best = d.argmax(axis=1)
        for i, b, c in zip(u, k[best], d[np.arange(len(u)), best], strict=True):
            rows.append((z.at[i, "source"], z.at[i, "source_record_id"], words[b], float(c), "same_birth_date"))
    # an attacker who ignores the salt: the closest known record of any birth date, for a sample
    unknown, known_rows = np.flatnonzero(~is_known), np.flatnonzero(is_known)
    if len(unknown) and len(known_rows):
        sample = np.random.default_rng(seed).choice(unknown, size=min(ANY_DATE_SAMPLE, len(unknown)), replace=False)
        dob = z[salt].to_numpy()
        # in slices of the sample: against 400,000 known records (1,000,000 persons) one matrix would need 20 GB
        step = max(1, 20_000_000 // len(known_rows))
        known_bits, known_dob = bits[known_rows], dob[known_rows]
        for part in (sample[i:i + step] for i in range(0, len(sample), step)):
            d = _same(bits[part], known_bits) if exact else _dice(bits[part], known_bits)
            same = (dob[part][:, None] == known_dob[None, :]) & pd.notna(dob[part])[:, None]
            d[same] = -1.0  # only other birth dates: the same one is the route above
            best = d.argmax(axis=1)
            for i, b, c in zip(part, known_rows[best], d[np.arange(len(part)), best], strict=True):
                rows.append((z.at[i, "source"], z.at[i, "source_record_id"], words[b], float(c), "other_birth_date"))
    return pd.DataFrame(rows, columns=cols)


ALT_COLUMNS = tuple(f"enc_fn_alt{i}" for i in range(1, MAX_FORMAL + 1))  # the kit's public constant


def formal_names_attack(linkage_db: Path, known: pd.DataFrame) -> pd.DataFrame:
    """The known-records attack on scheme 8's formal-name tokens (``enc_fn_alt1..3``, ADR 0019).

    Those tokens are first-name tokens of the formal names a first name may stand for by the public nickname table,
    under the same key and birth-date salt as ``enc_fn_full``. A colluding partner knows the first names of its own
    records (``known``: source, source_record_id, words = the first name). Inside one birth date (the unsalted
    full-DOB token says which records share the salt) it reads two relations for every other record U:

    * U's first-name token is one of a known record K's formal-name tokens: U's name is one of the table's formal
      names for K's name (BILL -> ROBERT, WILLIAM, WILL): guess the first, confidence 1 / their number;
    * one of U's formal-name tokens is K's first-name token: U's name is one the table maps to K's name (WILLIAM
      <- BILL, BILLY, WILL, WILLIE ...): guess the first, confidence 1 / their number.

    Returns rows like :func:`attack` (route "same_birth_date"; there is no other route: across two birth dates the
    tokens are unrelated), for :func:`bench.attacks.score.score_whole_name` with a threshold just above 0 (every guess
    counts).
    """
    from partner_kit.nicknames import table

    t = table()
    stands_for: dict[str, list[str]] = {}  # formal name -> the names the table maps to it
    for name, formals in sorted(t.items()):
        for f in formals:
            stands_for.setdefault(f, []).append(name)
    cols = ["source", "source_record_id", "guess", "confidence", "route"]
    zone = load_zone(linkage_db, ("enc_dob_full", "enc_fn_full", *ALT_COLUMNS))
    if any(c not in zone for c in ALT_COLUMNS):
        return pd.DataFrame(columns=cols)
    z = zone.dropna(subset=["enc_dob_full", "enc_fn_full"]).merge(
        known[["source", "source_record_id", "words"]], on=["source", "source_record_id"], how="left")
    rows: list[tuple] = []
    for _, g in z.groupby("enc_dob_full"):
        k, u = g[g["words"].notna()], g[g["words"].isna()]
        if k.empty or u.empty:
            continue
        by_alt: dict[str, list[str]] = {}  # a known record's formal-name token -> the formal names it may be
        by_first: dict[str, list[str]] = {}  # a known record's first-name token -> the names that stand for it
        for rec in k.itertuples(index=False):
            for c in ALT_COLUMNS:
                if t.get(rec.words):
                    by_alt[getattr(rec, c)] = list(t[rec.words])
            if stands_for.get(rec.words):
                by_first[rec.enc_fn_full] = stands_for[rec.words]
        for rec in u.itertuples(index=False):
            cands = by_alt.get(rec.enc_fn_full)
            if cands is None:
                cands = next((by_first[getattr(rec, c)] for c in ALT_COLUMNS if getattr(rec, c) in by_first), None)
            if cands:
                rows.append((rec.source, rec.source_record_id, cands[0], 1.0 / len(cands), "same_birth_date"))
    return pd.DataFrame(rows, columns=cols)
