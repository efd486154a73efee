"""Ground truth for the scorer (and the hardening experiments): never imported by an attack.

``plaintext_encoder`` is an Encoder whose "encodings" are the normalised plaintext itself: the kit run
with it writes, per record, exactly the values the real kit would have encoded (same normalisation,
same derived features), under the real pseudonymous record ids (those need the linkage secret).
``truth_table`` joins that with the simulator's truth file (person id per record).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.attacks.zone import PERSON_EXTRACTS, Population, encode_population, linkage_secret

__all__ = ["PlaintextEncoder", "plaintext_payloads", "truth_table"]


def _plain_encoder_class():
    from partner_kit.encode import Encoder

    class PlaintextEncoder(Encoder):
        """Identity "encodings": ``tokens`` and ``blooms`` return their input (record ids stay keyed)."""

        def tokens(self, domain, values, *, cache=True):
            return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else pc.cast(values, pa.string())

        def blooms(self, domain, values):
            return pc.cast(self.tokens(domain, values), pa.binary())

        def dob_tokens(self, dates):
            iso = pc.cast(pc.cast(dates, pa.date32()), pa.string())
            year, month, day = (pc.utf8_slice_codeunits(iso, a, b) for a, b in ((0, 4), (5, 7), (8, 10)))
            can_swap = pc.and_(pc.less_equal(day, "12"), pc.not_equal(day, month))
            swapped = pc.if_else(can_swap, pc.binary_join_element_wise(year, day, month, "-"),
                                 pa.scalar(None, pa.string()))
            return iso, swapped, pc.utf8_slice_codeunits(iso, 0, 7), year

    return PlaintextEncoder


def PlaintextEncoder(secret):
    return _plain_encoder_class()(secret)


def plaintext_payloads(pop: Population) -> Path:
    """The kit's output with identity encodings, one Parquet per partner extract (cached in the home)."""
    out = pop.payloads("plaintext")
    if not any(out.glob("*/*/*.parquet")):
        encode_population(pop, lambda: PlaintextEncoder(linkage_secret(pop)), "plaintext")
    return out


def truth_table(pop: Population) -> pd.DataFrame:
    """One row per person record: source, source_record_id, person_id, race_eth, sex, first, last,
    birth_year (string), zip, plus every other normalised value the kit encodes (``p_`` columns)."""
    from partner_kit import Encoder, load_profile

    frames = []
    for f in sorted(plaintext_payloads(pop).glob("*/*/*.parquet")):
        t = pq.read_table(f).to_pandas()
        t = t[["source_record_id", *[c for c in t.columns if c.startswith("enc_")]]]
        t.insert(0, "source", f.parent.parent.name)
        frames.append(t)
    plain = pd.concat(frames, ignore_index=True)
    plain = plain.rename(columns={c: "p_" + c.removeprefix("enc_") for c in plain.columns if c.startswith("enc_")})
    for c in ("p_fn_bf", "p_ln_bf"):
        plain = plain.drop(columns=c)
    plain["first"], plain["last"] = plain["p_fn_full"], plain["p_ln_full"]
    plain["birth_year_s"], plain["zip"] = plain["p_dob_y"], plain["p_zip"]
    plain = plain.drop_duplicates(["source", "source_record_id"])

    truth = pq.read_table(pop.truth).to_pandas()
    enc = Encoder(linkage_secret(pop))
    ns = {s: load_profile(s, e).record_id["namespace"] for s, e in PERSON_EXTRACTS.items()}
    truth["source_record_id"] = [enc.record_id(ns[s], str(r).strip())
                                 for s, r in zip(truth["source"], truth["record_id"], strict=True)]
    truth = truth.drop_duplicates(["source", "source_record_id"])[
        ["source", "source_record_id", "person_id", "race_eth", "sex", "birth_year"]]
    return plain.merge(truth, on=["source", "source_record_id"], how="left", validate="one_to_one")
