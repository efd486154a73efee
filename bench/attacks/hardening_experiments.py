"""Hardening experiments: the same population re-encoded under candidate encodings, every attack rerun.

Nothing here changes the partner kit or linkage: each candidate is a function below that encodes the
kit's own normalised plaintext (the identity-encoder payloads of :mod:`bench.attacks.truth`, so
normalisation and record ids are exactly the kit's) into a linkage zone with the same columns, under
fresh random keys. Then every attack runs on it with the strong reference, and the scorer grades it.

With ``--oracle-seeds N`` (default 50) the Bloom attack also runs seeded with the true names of the N most
frequent tokens per column, which judges a candidate's filters apart from how hard seeds are to get (once
the side tokens are gone, this suite's own seeding fails before the filters are even tried).

Besides attack success it prints a linkage-utility proxy per candidate, on record pairs of one person
(true pairs) and random pairs from different persons: the share of true pairs whose first-name tokens
are equal, and whose first-name filters have Dice >= 0.8, and the same share among random pairs.

    .venv/bin/python bench/attacks/hardening_experiments.py --persons 20000 --seed 20261121
        [--home DIR] [--only current,no_side_tokens,...] [--json OUT]

Candidates (cumulative where the name says so):

* ``current``: the kit as it is (control: the encodings of this script must reproduce its attack rates).
* ``no_side_tokens``: no first-initial, middle-initial or phonetic tokens.
* ``field_keys``: one key (domain) per field: first names, surnames and their Bloom filters no longer share
  a domain; side tokens kept, each under its field's key.
* ``no_side_field_keys``: both of the above.
* ``+salted_bf``: and the name filters keyed per record by birth year (a bigram sets other positions in
  another birth year) - the "salting" of Christen et al.; pairs with a wrong year no longer compare.
* ``+balanced_bf``: instead, balanced filters (filter || complement, keyed permutation: constant popcount).
* ``+xor_bf``: instead, XOR-folded filters (512 -> 256 bits).
* ``+diffused_bf``: instead, a keyed linear diffusion layer (each output bit the XOR of 4 input bits, Armknecht
  et al. 2023 "ELD"): no bigram owns positions any more, Hamming distances roughly kept.
* ``+salted_tokens``: salted filters and also every name token keyed per birth year (full-name equality
  then only within a year), no Bloom attack seeds from frequency.
* ``balanced_bf_only``, ``salted_bf_only``: the kit as it is but for balanced, or birth-year-salted, filters
  (side tokens and the shared domain kept).
"""

from __future__ import annotations

import argparse
import binascii
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.attacks.common import bigrams_of
from bench.attacks.zone import Population

#: the columns of a scheme-1 linkage zone (the kit before ADR 0009), which every candidate here writes
ZONE_COLUMNS = ("source", "extract_type", "load_id", "source_record_id", "linkage_key_version", "enc_fn_full",
                "enc_fn_phon", "enc_fn_init", "enc_fn_bf", "enc_ln_full", "enc_ln_phon", "enc_ln_part1",
                "enc_ln_part2", "enc_ln_bf", "enc_mn_init", "enc_sfx", "enc_dob_full", "enc_dob_swap", "enc_dob_ym",
                "enc_dob_y", "enc_sex", "enc_ssn_full", "enc_ssn_last4", "enc_addr", "enc_zip")

BITS, K = 512, 12
NAME_COLS = ("fn_full", "ln_full", "ln_part1", "ln_part2")


# ------------------------------------------------------------------------------------------------ encoders
class Enc:
    """HMAC tokens and Bloom filters under one random key, cached per distinct input."""

    def __init__(self, key: bytes):
        self.key = key
        self._tok: dict[tuple[str, str], str] = {}
        self._mask: dict[tuple[str, str], int] = {}
        rng = np.random.default_rng(int.from_bytes(key[:8], "big"))
        self.perm = rng.permutation(2 * BITS)
        self.diffusion = rng.integers(0, BITS, size=(BITS, 4))

    def token(self, domain: str, value: Any) -> str | None:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        k = (domain, str(value))
        t = self._tok.get(k)
        if t is None:
            d = hmac.new(self.key, f"{domain}\x1f{value}".encode(), hashlib.sha256).digest()[:12]
            t = binascii.b2a_base64(d, newline=False).decode()
            self._tok[k] = t
        return t

    def mask(self, domain: str, bigram: str) -> int:
        k = (domain, bigram)
        m = self._mask.get(k)
        if m is None:
            d = hmac.new(self.key, f"bf\x1f{domain}\x1f{bigram}".encode(), hashlib.sha256).digest()
            m = 0
            for i in range(K):
                m |= 1 << (int.from_bytes(d[2 * i: 2 * i + 2], "big") % BITS)
            self._mask[k] = m
        return m

    def bloom(self, domain: str, value: Any) -> int | None:
        if not isinstance(value, str) or not value:
            return None
        acc = 0
        for bg in bigrams_of(value):
            acc |= self.mask(domain, bg)
        return acc


def _bytes(v: int | None, nbits: int = BITS) -> bytes | None:
    return None if v is None else v.to_bytes(nbits // 8, "big")


def _bits(v: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(v.to_bytes(BITS // 8, "big"), dtype=np.uint8))


def balanced(enc: Enc, v: int | None) -> bytes | None:
    if v is None:
        return None
    b = _bits(v)
    return np.packbits(np.concatenate([b, 1 - b])[enc.perm]).tobytes()


def xor_fold(v: int | None) -> bytes | None:
    if v is None:
        return None
    return _bytes((v >> (BITS // 2)) ^ (v & ((1 << (BITS // 2)) - 1)), BITS // 2)


def diffused(enc: Enc, v: int | None) -> bytes | None:
    if v is None:
        return None
    b = _bits(v)
    return np.packbits(np.bitwise_xor.reduce(b[enc.diffusion], axis=1)).tobytes()


def encode(plain: pd.DataFrame, enc: Enc, *, side: bool = True, field_keys: bool = False,
           bf: str = "plain", salt_bf: bool = False, salt_tokens: bool = False) -> pd.DataFrame:
    """The linkage-zone columns of one candidate from the plaintext table (``p_`` columns)."""
    fdom = "first" if field_keys else "name"
    ldom = "last" if field_keys else "name"
    year = plain["p_dob_y"].where(plain["p_dob_y"].notna(), "")
    out = pd.DataFrame({"source": plain["source"], "extract_type": plain["extract_type"],
                        "load_id": plain["load_id"], "source_record_id": plain["source_record_id"],
                        "linkage_key_version": "exp"})

    def tok_col(col: str, domain: str, salted: bool = False) -> list:
        vals = plain[col].tolist()
        if salted:
            return [enc.token(f"{domain}|{y}", v) if isinstance(v, str) else None for v, y in zip(vals, year, strict=True)]
        return [enc.token(domain, v) if isinstance(v, str) else None for v in vals]

    out["enc_fn_full"] = tok_col("p_fn_full", fdom, salt_tokens)
    out["enc_ln_full"] = tok_col("p_ln_full", ldom, salt_tokens)
    out["enc_ln_part1"] = tok_col("p_ln_part1", ldom, salt_tokens)
    out["enc_ln_part2"] = tok_col("p_ln_part2", ldom, salt_tokens)
    if side:
        out["enc_fn_phon"] = tok_col("p_fn_phon", f"{fdom}_phon")
        out["enc_ln_phon"] = tok_col("p_ln_phon", f"{ldom}_phon")
        out["enc_fn_init"] = tok_col("p_fn_init", f"{fdom}_init")
        out["enc_mn_init"] = tok_col("p_mn_init", "middle_init" if field_keys else "name_init")
    else:
        for c in ("enc_fn_phon", "enc_ln_phon", "enc_fn_init", "enc_mn_init"):
            out[c] = None
    for col, dom in (("fn", fdom), ("ln", ldom)):
        vals = plain[f"p_{col}_full"].tolist()
        cache: dict[tuple[str, str], bytes | None] = {}
        filters = []
        for v, y in zip(vals, year, strict=True):
            key = (v if isinstance(v, str) else "", y if salt_bf else "")
            hit = cache.get(key)
            if hit is None and key not in cache:
                raw = enc.bloom(f"{dom}|{y}" if salt_bf else dom, v)
                hit = {"plain": lambda r: _bytes(r), "balanced": lambda r: balanced(enc, r),
                       "xor": xor_fold, "diffused": lambda r: diffused(enc, r)}[bf](raw)
                cache[key] = hit
            filters.append(hit)
        out[f"enc_{col}_bf"] = filters
    for col, dom in (("sfx", "suffix"), ("dob_full", "dob"), ("dob_swap", "dob"), ("dob_ym", "dob_ym"),
                     ("dob_y", "dob_y"), ("sex", "sex"), ("ssn_full", "ssn"), ("ssn_last4", "ssn4"),
                     ("addr", "addr"), ("zip", "zip")):
        out[f"enc_{col}"] = tok_col(f"p_{col}", dom)
    return out[list(ZONE_COLUMNS)]


#: candidate -> keyword arguments of :func:`encode`
CANDIDATES: dict[str, dict[str, Any]] = {
    "current": {},
    "no_side_tokens": {"side": False},
    "field_keys": {"field_keys": True},
    "no_side_field_keys": {"side": False, "field_keys": True},
    "+salted_bf": {"side": False, "field_keys": True, "salt_bf": True},
    "+balanced_bf": {"side": False, "field_keys": True, "bf": "balanced"},
    "+xor_bf": {"side": False, "field_keys": True, "bf": "xor"},
    "+diffused_bf": {"side": False, "field_keys": True, "bf": "diffused"},
    "+salted_tokens": {"side": False, "field_keys": True, "salt_bf": True, "salt_tokens": True},
    "balanced_bf_only": {"bf": "balanced"},
    "salted_bf_only": {"salt_bf": True},
}


# ---------------------------------------------------------------------------------------------- plumbing
def plaintext(pop: Population) -> pd.DataFrame:
    """The kit's normalised plaintext per record (identity encoder), with the zone's bookkeeping columns."""
    from bench.attacks.truth import plaintext_payloads

    frames = []
    for f in sorted(plaintext_payloads(pop).glob("*/*/*.parquet")):
        t = pq.read_table(f).to_pandas()
        t = t[["source_record_id", *[c for c in t.columns if c.startswith("enc_")]]]
        t = t.rename(columns={c: "p_" + c.removeprefix("enc_") for c in t.columns if c.startswith("enc_")})
        t.insert(0, "source", f.parent.parent.name)
        t.insert(1, "extract_type", f.stem)
        t.insert(2, "load_id", f"{f.parent.parent.name}/{f.parent.name}")
        frames.append(t)
    p = pd.concat(frames, ignore_index=True)
    p = p.drop(columns=[c for c in p.columns if c.endswith("_bf")])  # identity "filters" are the values as bytes
    from bench.attacks.truth import derive_scheme1_plaintext

    derive_scheme1_plaintext(p)
    return p


def write_zone(df: pd.DataFrame, path: Path) -> None:
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.register("df", df)
        casts = ", ".join(f"cast({c} as blob) as {c}" if c.endswith("_bf") else f"cast({c} as varchar) as {c}"
                          for c in df.columns)
        con.execute(f"create table encodings as select {casts} from df")


def utility(zone: pd.DataFrame, truth: pd.DataFrame, *, pairs: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """Linkage-utility proxy: first-name token equality and filter Dice >= 0.8, true vs random pairs."""
    z = zone.merge(truth[["source", "source_record_id", "person_id"]], on=["source", "source_record_id"])
    z = z.dropna(subset=["enc_fn_bf"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    by_person = z.groupby("person_id").indices
    multi = [v for v in by_person.values() if len(v) > 1]
    true_pairs = [tuple(rng.choice(v, 2, replace=False)) for v in (multi[i] for i in rng.integers(0, len(multi), pairs))]
    rand = rng.integers(0, len(z), (pairs, 2))
    rand = [(a, b) for a, b in rand if z.at[a, "person_id"] != z.at[b, "person_id"]]
    tok, bf = z["enc_fn_full"].to_numpy(), z["enc_fn_bf"].to_numpy()

    def dice(a: bytes, b: bytes) -> float:
        ia, ib = int.from_bytes(a, "big"), int.from_bytes(b, "big")
        t = ia.bit_count() + ib.bit_count()
        return 2 * (ia & ib).bit_count() / t if t else 0.0

    def rates(ps: list) -> dict[str, float]:
        eq = np.mean([tok[a] == tok[b] for a, b in ps])
        hi = np.mean([dice(bf[a], bf[b]) >= 0.8 for a, b in ps])
        return {"fn_token_equal": round(float(eq), 4), "fn_dice_ge_0_8": round(float(hi), 4)}

    return {"true_pairs": rates(true_pairs), "random_pairs": rates(rand)}


def oracle_seeded_bloom(db: Path, truth: pd.DataFrame, ref: Any, n: int = 50) -> dict[str, Any]:
    """The Bloom layer alone: the Bloom attack seeded with the TRUE names of the n most frequent first-name
    and n most frequent surname tokens (as if the attacker knew them: a colluding partner, a larger zone,
    a leak), so that a candidate's filters are judged apart from how hard the seeds are to get."""
    from bench.attacks import bloom
    from bench.attacks.common import Guesses, load_zone
    from bench.attacks.score import score
    from bench.attacks.side_tokens import name_tokens

    df = load_zone(db, bloom.ZONE_COLUMNS)
    tokens = name_tokens(df)
    z = df.merge(truth[["source", "source_record_id", "first", "last"]], on=["source", "source_record_id"])
    rows = []
    for column, field in (("enc_fn_full", "first"), ("enc_ln_full", "last")):
        top = z.dropna(subset=[column, field]).groupby(column)[field].agg(lambda v: v.mode().iloc[0])
        counts = z[column].value_counts()
        for tok in counts.index[:n]:
            rows.append((column, tok, top[tok], 1.0))
    seeds = Guesses.frame(rows)
    guesses, _ = bloom.decode_names(tokens, seeds, ref, seeds=2 * n, shared=bloom.shared_domain(tokens))
    r = score(db, truth, Guesses("bloom_oracle_seeds", guesses))
    out = {k: r["fields"][k]["conf>=0"]["records"] for k in ("first", "last") if k in r["fields"]}
    out["first+last"] = r["combined"]["first+last"]["conf>=0"]["records"]
    return out


def headline(report: dict[str, Any]) -> dict[str, Any]:
    def rec(attack: str, part: str) -> float | None:
        r = report.get(attack)
        if not r:
            return None
        block = r["fields"].get(part) or r["combined"].get(part)
        return block["conf>=0"]["records"] if block else None

    return {
        "frequency_first": rec("frequency", "first"), "frequency_last": rec("frequency", "last"),
        "side_tokens_first": rec("side_tokens", "first"), "side_tokens_last": rec("side_tokens", "last"),
        "bloom_first": rec("bloom", "first"), "bloom_last": rec("bloom", "last"),
        "bloom_first+last": rec("bloom", "first+last"),
        "profiles_birth_year": rec("profiles", "birth_year"), "profiles_zip": rec("profiles", "zip"),
        "combined_names+year+zip": rec("combined", "names+year+zip"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", type=Path, help="also write the full result here")
    ap.add_argument("--oracle-seeds", type=int, default=50,
                    help="also run the Bloom attack seeded with this many true names per column (0: skip)")
    ap.add_argument("--bloom-only", action="store_true", help="only the oracle-seeded Bloom attack")
    args = ap.parse_args(argv)

    from bench.attacks.reference import reference
    from bench.attacks.suite import grade, run_attacks
    from bench.attacks.truth import truth_table
    from bench.attacks.zone import build_population

    home = args.home or Path(tempfile.mkdtemp(prefix="vpdc-hardening-")) / "home"
    pop = build_population(home, persons=args.persons, seed=args.seed)
    truth = truth_table(pop)
    plain = plaintext(pop)
    ref = reference("strong", persons=args.persons, seed=args.seed + 1)
    names = [c for c in (args.only.split(",") if args.only else CANDIDATES) if c]
    unknown = [c for c in names if c not in CANDIDATES]
    if unknown:
        ap.error(f"unknown candidates {unknown}; known: {', '.join(CANDIDATES)}")
    results: dict[str, Any] = {}
    for name in names:
        t0 = time.process_time()
        enc = Enc(os.urandom(32))
        zone = encode(plain, enc, **CANDIDATES[name])
        db = home / f"exp-{name.strip('+')}.duckdb"
        write_zone(zone, db)
        rep: dict[str, Any] = {}
        if not args.bloom_only:
            guesses, seconds = run_attacks(db, ref)
            rep = grade(db, truth, guesses, seconds)
        results[name] = {"attack_success_records": headline(rep) if rep else {}, "utility": utility(zone, truth)}
        if args.oracle_seeds:
            results[name]["bloom_with_true_seeds_records"] = oracle_seeded_bloom(db, truth, ref, args.oracle_seeds)
        results[name] |= {"cpu_seconds": round(time.process_time() - t0, 1), "report": rep}
        print(json.dumps({"candidate": name, **{k: v for k, v in results[name].items() if k != "report"}}),
              flush=True)
        db.unlink(missing_ok=True)
    if args.json:
        args.json.write_text(json.dumps({"persons": args.persons, "seed": args.seed, "candidates": results},
                                        indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
