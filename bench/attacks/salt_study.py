"""Which second salt for the name encodings (ADR 0022): exposure to a colluding partner against links lost.

A name salted by the date of birth alone gives two persons of one name and birthday equal encodings, so a partner who
knows its own clients' names reads that name on every other person born on a client's birthday with the client's
name. A finer salt (the date and one more field) makes such collisions rarer, and costs linkage wherever that field
differs between two of one person's records. This study measures both on the kit's own normalised plaintext (the
identity encoder of :mod:`bench.attacks.truth`) of a synthetic population, for each candidate:

* ``exposure``: the share of persons the colluding partner (the largest) does **not** hold with a record whose name
  and candidate salt equal those of a record the partner holds: what the known-records attack reads from a
  deterministic token (``bench.attacks.whole_name.attack`` reads exactly these, with precision 1). A candidate with
  several tokens (a pair agrees where any agrees) exposes the union.
* ``pairs_lost``: of the pairs of one person's records born on one day whose name is equal (what the DOB-salted token
  says today), the share whose tokens no longer agree under the candidate; by race and ethnicity; and how many of
  those also have no equal SSN (the pairs that lean on the name to link).

An upper bound on the attack and a proxy for linkage: the linkage bench is the judge of a chosen candidate.

    .venv/bin/python bench/attacks/salt_study.py --home DIR [--persons 1000000 --seed 20261121] [--json OUT]

``--home`` reuses (or builds) a population made by ``bench_attacks.py --home DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.attacks.truth import truth_table  # noqa: E402
from bench.attacks.zone import build_population  # noqa: E402

#: per name: candidate -> the second salts (any one agreeing keeps a pair); "" = the DOB alone
CANDIDATES: dict[str, dict[str, tuple[str, ...]]] = {
    "first": {"dob": ("",), "dob+sex": ("sex",), "dob+zip": ("zip",),
              "dob+surname initial": ("surname_initial",), "dob+surname Metaphone initial": ("surname_sound_initial",),
              "dob+surname initial | dob+zip (scheme 10)": ("surname_initial", "zip"),
              "dob+surname initial | dob+SSN last four": ("surname_initial", "ssn4")},
    "last": {"dob": ("",), "dob+sex": ("sex",), "dob+zip": ("zip",), "dob+first initial": ("first_initial",),
             "dob+formal first initial": ("formal_initial",),
             "dob+first initial | dob+zip (scheme 10)": ("first_initial", "zip")},
}


def plaintext(root: Path, persons: int, seed: int) -> pd.DataFrame:
    """One row per person record: its normalised name, date, ZIP, SSN, sex, the candidates' salts and its person."""
    pop = build_population(root, persons=persons, seed=seed)
    t = truth_table(pop)
    last1 = t["p_ln_part1"].where(t["p_ln_part1"].notna(), t["p_ln_full"])
    formal = t["p_fn_alt1"].where(t["p_fn_alt1"].notna() & (t["p_fn_alt1"].str.len() > 0), t["p_fn_full"])
    return pd.DataFrame({
        "source": t["source"], "person_id": t["person_id"], "race_eth": t["race_eth"],
        "first": t["p_fn_full"], "last": t["p_ln_full"], "dob": t["p_dob_full"], "ssn": t["p_ssn_full"],
        "": "",  # the DOB alone
        "sex": t["p_sex"], "zip": t["p_zip"], "ssn4": t["p_ssn_last4"],
        "surname_initial": last1.str[:1], "surname_sound_initial": t["p_ln_ph"].str[:1],
        "first_initial": t["p_fn_full"].str[:1], "formal_initial": formal.str[:1]})


def exposure(p: pd.DataFrame, name: str, salts: tuple[str, ...], colluding: str) -> float:
    held = set(p.loc[p["source"] == colluding, "person_id"])
    known, other = p[p["source"] == colluding], p[~p["person_id"].isin(held)]

    def tokens(d: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([d.dropna(subset=[name, "dob", s])[["person_id", name, "dob", s]]
                          .rename(columns={s: "salt"}).assign(kind=s) for s in salts])

    k = tokens(known).drop(columns="person_id").drop_duplicates()
    return tokens(other).merge(k, on=["kind", name, "dob", "salt"])["person_id"].nunique() / other["person_id"].nunique()


def pairs_lost(pairs: pd.DataFrame, name: str, salts: tuple[str, ...]) -> dict[str, Any]:
    same = pairs[f"{name}_eq"]
    keep = pd.Series(False, index=pairs.index)
    for s in salts:
        keep |= pairs[f"{s}_eq"] if s else True
    lost = same & ~keep
    by = (lost.groupby(pairs["race_eth"]).sum() / same.groupby(pairs["race_eth"]).sum()).round(5)
    return {"pairs_lost": int(lost.sum()), "share_lost": round(float(lost.sum() / max(int(same.sum()), 1)), 5),
            "lost_without_an_equal_ssn": int((lost & ~pairs["ssn_eq"]).sum()), "share_lost_by_group": by.to_dict()}


def study(p: pd.DataFrame) -> dict[str, Any]:
    colluding = str(p["source"].value_counts().index[0])
    con = duckdb.connect()
    con.register("p", p)
    cols = ["first", "last", "ssn", "sex", "zip", "ssn4", "surname_initial", "surname_sound_initial", "first_initial",
            "formal_initial"]
    eq = ", ".join(f"coalesce(a.{c} = b.{c}, false) as {c}_eq" for c in cols)
    # every pair of one person's records born on one day (the pairs a DOB-salted name token compares)
    pairs = con.sql(f"""select a.race_eth, {eq} from (select row_number() over () as i, * from p) a
                        join (select row_number() over () as i, * from p) b
                          on a.person_id = b.person_id and a.i < b.i and a.dob = b.dob""").df()
    out: dict[str, Any] = {"colluding_partner": colluding, "pairs_of_one_person_born_on_one_day": len(pairs)}
    for name, cands in CANDIDATES.items():
        out[name] = {c: {"exposure": round(exposure(p, name, salts, colluding), 5), **pairs_lost(pairs, name, salts)}
                     for c, salts in cands.items()}
        out[name]["pairs_with_the_name_equal"] = int(pairs[f"{name}_eq"].sum())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True, help="population directory (reused, or built)")
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--json", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)
    t0 = time.time()
    out = {"benchmark": "salt_study", "persons": args.persons, "seed": args.seed,
           **study(plaintext(args.home, args.persons, args.seed)), "seconds": round(time.time() - t0, 1)}
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
