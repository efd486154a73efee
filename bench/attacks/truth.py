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
    from partner_kit.encode import ENCODING_COLUMNS, Encoder, sounds, where_known
    from partner_kit.nicknames import MAX_FORMAL, formal_names

    class PlaintextEncoder(Encoder):
        """Identity "encodings": every ``enc_`` column holds the normalised plaintext it would encode (record ids
        stay keyed). Scheme 3's columns: names, parts, all name words, initials, suffix, sex, ZIP, ISO date, SSN,
        address."""

        def encode_features(self, features, rids):
            f = {k: (pc.cast(pc.cast(v, pa.date32()), pa.string()) if k == "dob" else
                     (v.combine_chunks() if isinstance(v, pa.ChunkedArray) else pc.cast(v, pa.string())))
                 for k, v in features.items()}
            iso = f["dob"]
            out = {"enc_scheme": pa.array(["plaintext"] * len(rids), pa.string()),
                   "enc_fn_full": f["first"], "enc_ln_full": f["last"], "enc_ln_part1": f["last_part1"],
                   "enc_ln_part2": f["last_part2"], "enc_mn_init": f["middle_init"], "enc_sfx": f["suffix"],
                   "enc_sex": f["sex"], "enc_zip": f["zip"], "enc_dob_full": iso,
                   "enc_nm_y": pc.utf8_slice_codeunits(iso, 0, 4), "enc_nm_md": pc.utf8_slice_codeunits(iso, 5, 10),
                   "enc_nm_zip": f["zip"], "enc_ssn_full": f["ssn"],
                   "enc_ssn_last4": pc.utf8_slice_codeunits(f["ssn"], 5, 9), "enc_addr": f["addr"],
                   "enc_fn_ssn": f["first"], "enc_ln_ssn": f["last"],
                   "enc_fn_addr": where_known(f["first"], f["addr"]),
                   # scheme 10: the names where the ZIP (their second salt) is known
                   "enc_fn_zip": where_known(f["first"], f["zip"]), "enc_ln_zip": where_known(f["last"], f["zip"]),
                   # scheme 9: the Metaphone codes (what the tokens encode; the attack's target is the name)
                   "enc_fn_ph": sounds(f["first"]), "enc_ln_ph": sounds(f["last"]),
                   "enc_nm_pair": pc.binary_join_element_wise(pc.fill_null(f["first"], ""),
                                                              pc.fill_null(f["last"], ""), "|")}
            for col, src in (("enc_fn_bf", "first"), ("enc_ln_bf", "last"), ("enc_nw_bf", "name_words"),
                             ("enc_dobp_bf", "dob"), ("enc_ssnp_bf", "ssn")):
                out[col] = pc.cast(f[src], pa.binary())
            # scheme 5: the whole name where the SSN (its salt) is known
            out["enc_nws_bf"] = pc.cast(where_known(f["name_words"], f["ssn"]), pa.binary())
            # scheme 6: the whole name where the street address (its salt) is known
            out["enc_nwa_bf"] = pc.cast(where_known(f["name_words"], f["addr"]), pa.binary())
            # scheme 8: the formal names the first name may stand for (fillers: null)
            formals = formal_names(f["first"].to_pylist())
            for i in range(MAX_FORMAL):
                out[f"enc_fn_alt{i + 1}"] = pa.array([v[i] if len(v) > i else None for v in formals], pa.string())
            return {c: out[c] for c in ENCODING_COLUMNS}

    return PlaintextEncoder


def PlaintextEncoder(secret):
    return _plain_encoder_class()(secret)


def plaintext_payloads(pop: Population) -> Path:
    """The kit's output with identity encodings, one Parquet per partner extract (cached in the home)."""
    out = pop.payloads("plaintext")
    if not any(out.glob("*/*/*.parquet")):
        encode_population(pop, lambda: PlaintextEncoder(linkage_secret(pop)), "plaintext")
    return out


def derive_scheme1_plaintext(plain: pd.DataFrame) -> None:
    """The derived plaintext features scheme 1 encoded (phonetic codes, initials, DOB swap / year-month /
    year), from scheme 2's plaintext columns: what the legacy encoder of the hardening experiments needs to
    rebuild the old linkage zone ("before")."""
    import jellyfish

    def phon(v):
        return (jellyfish.metaphone(v) or v[:1]) if isinstance(v, str) and v else None

    plain["p_fn_phon"] = plain["p_fn_full"].map(phon)
    plain["p_ln_phon"] = plain["p_ln_full"].map(phon)
    plain["p_fn_init"] = plain["p_fn_full"].map(lambda v: v[0] if isinstance(v, str) and v else None)
    iso = plain["p_dob_full"]

    def swap(v):
        if not isinstance(v, str):
            return None
        y, m, d = v[:4], v[5:7], v[8:10]
        return f"{y}-{d}-{m}" if int(d) <= 12 and d != m else None

    plain["p_dob_swap"] = iso.map(swap)
    plain["p_dob_ym"] = iso.map(lambda v: v[:7] if isinstance(v, str) else None)
    plain["p_dob_y"] = iso.map(lambda v: v[:4] if isinstance(v, str) else None)


def truth_table(pop: Population) -> pd.DataFrame:
    """One row per person record: source, source_record_id, person_id, race_eth, sex, first, last,
    birth_year (string), zip, words (all name words, scheme 3), plus every other normalised value the kit encodes
    (``p_`` columns)."""
    from partner_kit import Encoder, load_profile

    frames = []
    for f in sorted(plaintext_payloads(pop).glob("*/*/*.parquet")):
        t = pq.read_table(f).to_pandas()
        t = t[["source_record_id", *[c for c in t.columns if c.startswith("enc_")]]]
        t.insert(0, "source", f.parent.parent.name)
        frames.append(t)
    plain = pd.concat(frames, ignore_index=True)
    plain = plain.rename(columns={c: "p_" + c.removeprefix("enc_") for c in plain.columns if c.startswith("enc_")})
    if "p_nw_bf" in plain:  # scheme 3's whole-name filter holds the record's name words
        plain["words"] = [bytes(v).decode() if v is not None else None for v in plain["p_nw_bf"]]
    plain = plain.drop(columns=[c for c in plain.columns if c.endswith("_bf")])
    derive_scheme1_plaintext(plain)
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
