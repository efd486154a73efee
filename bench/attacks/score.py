"""The scorer: grades an attack's guesses against the synthetic ground truth. Separate from the attacks.

Only this module (through :mod:`bench.attacks.truth`) uses the truth file and the linkage secret: the
truth is the plaintext each record's encodings were made from (the kit run with identity encodings) and
the simulator's person id per record.

A token guess applies to every record carrying that token in the attacked zone. A record's field counts
as *recovered* when the guess equals the normalised value the kit encoded for that record (a typo in the
record is the truth for it). For each field (first, last, birth_year, zip), each combination
(first+last; first+last+birth year+ZIP) and each confidence cut-off (the attacker keeps only guesses at
or above it; a combination's confidence is its lowest part's):

* ``records``: share of records with a value in that field whose value is recovered;
* ``persons``: share of persons (simulator person id) with at least one record recovered;
* ``precision``: share of the records the attacker made a guess for whose guess is right;
* ``token_precision``: the same over distinct tokens guessed (rare names weigh as much as common ones);
* ``guessed_records``: how many records carry a kept guess;
* for birth years also ``records_within_2_years`` (all guesses): an age band is a disclosure too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.attacks.common import FIELDS, Guesses, load_zone

__all__ = ["CUTOFFS", "score", "score_whole_name", "union_read"]

CUTOFFS = (0.0, 0.5, 0.9)
COMBOS = {"first+last": ("first", "last"), "names+year+zip": ("first", "last", "birth_year", "zip")}


def _truth_value(truth: pd.DataFrame, fieldname: str) -> pd.Series:
    return {"first": truth["first"], "last": truth["last"], "birth_year": truth["birth_year_s"],
            "zip": truth["zip"]}[fieldname]


def score(linkage_db: Path, truth: pd.DataFrame, guesses: Guesses) -> dict[str, Any]:
    """Rates of one attack's guesses (see the module docstring), as a JSON-ready dict."""
    zone = load_zone(linkage_db, tuple(FIELDS))
    t = truth[["source", "source_record_id", "person_id", "first", "last", "birth_year_s", "zip"]]
    rec = zone.merge(t, on=["source", "source_record_id"], how="inner", validate="one_to_one")
    n_persons_all = rec["person_id"].nunique()
    per_field: dict[str, pd.DataFrame] = {}
    out: dict[str, Any] = {"attack": guesses.attack, "records": len(rec), "persons": int(n_persons_all),
                           "fields": {}, "combined": {}}
    g = guesses.tokens
    for column, fieldname in FIELDS.items():
        gc = g[g["column"] == column]
        if gc.empty or column not in rec or (fieldname in out["fields"] and column == "enc_dob_full"):
            continue
        truth_v = _truth_value(rec, fieldname)
        has = rec[column].notna() & truth_v.notna()
        m = rec[["person_id", column]].merge(gc[["token", "guess", "confidence"]], left_on=column, right_on="token",
                                             how="left")
        correct = (m["guess"].astype(object).to_numpy() == truth_v.astype(object).to_numpy()) & has.to_numpy()
        conf = m["confidence"].fillna(-1.0).to_numpy()
        f = pd.DataFrame({"person_id": rec["person_id"].to_numpy(), "has": has.to_numpy(), "correct": correct,
                          "conf": np.where(has.to_numpy(), conf, -1.0), "token": rec[column].to_numpy()})
        per_field[fieldname] = f
        out["fields"][fieldname] = {"tokens_in_zone": int(rec[column].nunique()), "tokens_guessed": len(gc),
                                    **{_key(c): _rates(f, c, gc, rec, column, truth_v) for c in CUTOFFS}}
        if fieldname == "birth_year":  # an age band is disclosure too: guesses within two years
            g_y = pd.to_numeric(m["guess"], errors="coerce").to_numpy()
            t_y = pd.to_numeric(truth_v, errors="coerce").to_numpy()
            near = has.to_numpy() & (np.abs(g_y - t_y) <= 2)
            out["fields"][fieldname]["records_within_2_years"] = _share(near.sum(), has.sum())
    for label, parts in COMBOS.items():
        if not all(p in per_field for p in parts):
            continue
        fs = [per_field[p] for p in parts]
        f = pd.DataFrame({"person_id": fs[0]["person_id"], "has": np.logical_and.reduce([x["has"] for x in fs]),
                          "correct": np.logical_and.reduce([x["correct"] for x in fs]),
                          "conf": np.minimum.reduce([x["conf"].to_numpy() for x in fs])})
        out["combined"][label] = {_key(c): _rates(f, c) for c in CUTOFFS}
    return out


def _key(cutoff: float) -> str:
    return f"conf>={cutoff:g}"


def _rates(f: pd.DataFrame, cutoff: float, guesses: pd.DataFrame | None = None, rec: pd.DataFrame | None = None,
           column: str | None = None, truth_v: pd.Series | None = None) -> dict[str, Any]:
    has = f["has"].to_numpy()
    kept = has & (f["conf"].to_numpy() >= cutoff)
    hit = kept & f["correct"].to_numpy()
    persons = f.loc[has, "person_id"].nunique()
    persons_hit = f.loc[hit, "person_id"].nunique()
    r = {"records": _share(hit.sum(), has.sum()), "persons": _share(persons_hit, persons),
         "precision": _share(hit.sum(), kept.sum()), "guessed_records": int(kept.sum())}
    if guesses is not None and rec is not None and column is not None and truth_v is not None:
        gk = guesses[guesses["confidence"] >= cutoff]
        # a token is right when its guess equals the truth of the records carrying it (a token is one value)
        tv = pd.DataFrame({"token": rec[column], "truth": truth_v}).dropna().drop_duplicates("token")
        j = gk.merge(tv, on="token", how="inner")
        r["token_precision"] = _share(int((j["guess"] == j["truth"]).sum()), len(j))
    return r


def _share(a: float, b: float) -> float | None:
    return round(float(a) / float(b), 4) if b else None


def score_whole_name(guesses: pd.DataFrame, truth: pd.DataFrame, known_source: str,
                     threshold: float = 0.92) -> dict[str, Any]:
    """Grade :func:`bench.attacks.whole_name.attack`: per route, over records outside the colluding source, the
    share whose name words are guessed exactly at Dice >= ``threshold``. Apart: persons the colluding partner
    does not hold (a decoding) and persons it holds (membership, what linkage itself computes)."""
    t = truth[["source", "source_record_id", "person_id", "words"]].dropna(subset=["words"])
    held = set(t.loc[t["source"] == known_source, "person_id"])
    others = t[t["source"] != known_source]
    out: dict[str, Any] = {"known_source": known_source, "threshold": threshold,
                           "known_records": int((t["source"] == known_source).sum())}
    for route in ("same_birth_date", "other_birth_date"):
        g = guesses[guesses["route"] == route]
        base = others if route == "same_birth_date" else others.merge(g[["source", "source_record_id"]])
        m = base.merge(g, on=["source", "source_record_id"], how="left")
        kept = (m["confidence"].fillna(0) >= threshold).to_numpy()
        same = m["guess"].astype(object).to_numpy() == m["words"].astype(object).to_numpy()
        right = kept & same
        any_right = m["confidence"].notna().to_numpy() & same
        shares_word = kept & np.array([bool(set(str(a).split()) & set(str(b).split()))
                                       for a, b in zip(m["guess"], m["words"], strict=True)], dtype=bool)
        block = {}
        for label, mask in (("persons_the_partner_does_not_hold", ~m["person_id"].isin(held).to_numpy()),
                            ("persons_the_partner_holds", m["person_id"].isin(held).to_numpy())):
            n = int(mask.sum())
            persons = m.loc[mask, "person_id"].nunique()
            block[label] = {
                "records": n, "guessed": int((kept & mask).sum()), "recovered": int((right & mask).sum()),
                "recovered_share": round(float((right & mask).sum()) / n, 5) if n else None,
                "persons_recovered_share":
                    round(m.loc[right & mask, "person_id"].nunique() / persons, 5) if persons else None,
                "precision": round(float((right & mask).sum()) / (kept & mask).sum(), 4) if (kept & mask).sum() else None,
                "guessed_sharing_a_word": int((shares_word & mask).sum()),
                # an attacker who takes every nearest filter's words, however far (no threshold at all)
                "recovered_at_any_dice": int((any_right & mask).sum()),
                "persons_recovered_share_at_any_dice":
                    round(m.loc[any_right & mask, "person_id"].nunique() / persons, 5) if persons else None,
            }
        block["max_dice"] = round(float(g["confidence"].max()), 4) if len(g) else None
        out[route] = block
    return out


def union_read(attacks: list[tuple[pd.DataFrame, float]], truth: pd.DataFrame, known_source: str) -> dict[str, Any]:
    """What an attacker who runs every one of ``attacks`` (each :func:`bench.attacks.whole_name.attack`'s guesses with
    its cut-off) on one name reads: the share of persons the colluding partner does not hold with a record whose name
    (``truth["words"]``) some attack guesses right, at each attack's cut-off and at any similarity."""
    t = truth[["source", "source_record_id", "person_id", "words"]].dropna(subset=["words"])
    held = set(t.loc[t["source"] == known_source, "person_id"])
    others = t[(t["source"] != known_source) & ~t["person_id"].isin(held)]
    kept, any_ = set(), set()
    for g, threshold in attacks:
        m = others.merge(g[g["route"] == "same_birth_date"], on=["source", "source_record_id"])
        right = m["guess"].astype(object).to_numpy() == m["words"].astype(object).to_numpy()
        any_ |= set(m.loc[right, "person_id"])
        kept |= set(m.loc[right & (m["confidence"].to_numpy() >= threshold), "person_id"])
    n = others["person_id"].nunique()
    return {"attacks": len(attacks), "persons_the_partner_does_not_hold": int(n),
            "persons_recovered_share": round(len(kept) / n, 5) if n else None,
            "persons_recovered_share_at_any_dice": round(len(any_) / n, 5) if n else None}
