"""Link CLK files (from clk_encode.py) with anonlink: Dice-coefficient candidate generation above a
threshold, then greedy solving (anonlink's multi-party greedy solver; for two datasets it yields a
one-to-one matching). The peer of the project's linkage step, for benchmarks.

Runs in the peer benchmark venv (.venv-bench), never in the project's .venv.

Usage:
  anonlink_link.py CLKS [CLKS ...] --output matches.csv [--threshold 0.8] [--k K]
                   [--solver greedy|probabilistic] [--truth truth.csv]
A CLKS argument may be NAME=PATH to override the dataset name stored in the file.

Output CSV: dataset, record_id, group_id; one row per record in a matched group (groups of >= 2
records, at most one record per dataset). Records left unmatched are not written.

--truth CSV (dataset, record_id, entity_id): pairwise precision / recall / F1 over cross-dataset
record pairs (anonlink never compares records within one dataset, so within-dataset duplicates are
out of scope). Truth rows for records absent from the CLK files (e.g. after --limit) are ignored.

stdout: one JSON object with records, candidate_pairs, seconds_candidates, seconds_solving,
peak_rss_mb and, with --truth, precision, recall, f1.
"""

from __future__ import annotations

import argparse
import base64
import csv
import itertools
import json
import resource
import sys
import time
import warnings
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

from anonlink.candidate_generation import find_candidate_pairs  # noqa: E402
from anonlink.similarities import dice_coefficient  # noqa: E402
from anonlink.solving import greedy_solve, probabilistic_greedy_solve  # noqa: E402
from bitarray import bitarray  # noqa: E402


def load_clks(arg: str) -> tuple[str, list[str], list[bitarray], dict]:
    name = None
    path = arg
    if "=" in arg and not Path(arg).exists():
        name, path = arg.split("=", 1)
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    clks = []
    for s in doc["clks"]:
        ba = bitarray()
        ba.frombytes(base64.b64decode(s))
        clks.append(ba)
    ids = doc.get("record_ids") or [str(i) for i in range(len(clks))]
    if len(ids) != len(clks):
        sys.exit(f"anonlink_link: {path}: {len(ids)} record_ids but {len(clks)} clks")
    name = name or doc.get("dataset") or Path(path).stem
    meta = {k: doc.get(k) for k in ("tool", "version", "schema_sha256", "bits")}
    return name, ids, clks, meta


def read_truth(path: Path, present: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    ent: dict[tuple[str, str], str] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            key = (r["dataset"], r["record_id"])
            if key in present:
                ent[key] = r["entity_id"]
    return ent


def cross_pairs(members: list[tuple[str, str]]):
    for x, y in itertools.combinations(sorted(members), 2):
        if x[0] != y[0]:
            yield (x, y)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clks", nargs="+", help="CLK JSON files from clk_encode.py (NAME=PATH allowed)")
    ap.add_argument("--output", type=Path, help="matches CSV: dataset, record_id, group_id")
    ap.add_argument("--threshold", type=float, default=0.8, help="Dice similarity threshold (default 0.8)")
    ap.add_argument("--k", type=int, default=None,
                    help="keep at most k candidates per record per dataset pair (default: all)")
    ap.add_argument("--solver", choices=("greedy", "probabilistic"), default="greedy")
    ap.add_argument("--merge-threshold", type=float, default=0.5,
                    help="probabilistic solver only: anonlink merge_threshold")
    ap.add_argument("--truth", type=Path, help="truth CSV: dataset, record_id, entity_id")
    args = ap.parse_args(argv)
    if len(args.clks) < 2:
        ap.error("need CLK files for at least 2 datasets")

    t0 = time.perf_counter()
    loaded = [load_clks(a) for a in args.clks]
    names = [x[0] for x in loaded]
    if len(set(names)) != len(names):
        sys.exit(f"anonlink_link: duplicate dataset names {names}; use NAME=PATH")
    hashes = {x[3].get("schema_sha256") for x in loaded} - {None}
    if len(hashes) > 1:
        print("anonlink_link: warning: CLK files were made with different schemas", file=sys.stderr)
    datasets = [x[2] for x in loaded]
    seconds_load = time.perf_counter() - t0

    t1 = time.perf_counter()
    candidates = find_candidate_pairs(datasets, dice_coefficient, args.threshold, k=args.k)
    seconds_candidates = time.perf_counter() - t1
    n_candidates = len(candidates[0])

    t2 = time.perf_counter()
    if args.solver == "greedy":
        groups = greedy_solve(candidates)
    else:
        groups = probabilistic_greedy_solve(candidates, merge_threshold=args.merge_threshold)
    groups = [g for g in groups if len(g) >= 2]
    seconds_solving = time.perf_counter() - t2

    # Resolve (dataset index, record index) -> (dataset name, record id).
    named_groups = [[(names[d], loaded[d][1][r]) for d, r in g] for g in groups]
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["dataset", "record_id", "group_id"])
            for gi, g in enumerate(named_groups):
                for ds, rid in sorted(g):
                    w.writerow([ds, rid, f"g{gi:07d}"])

    sizes = defaultdict(int)
    for g in named_groups:
        sizes[len(g)] += 1
    out = {
        "tool": "anonlink",
        "version": version("anonlink"),
        "datasets": {n: len(x[1]) for n, x in zip(names, loaded)},
        "records": sum(len(x[1]) for x in loaded),
        "threshold": args.threshold,
        "k": args.k,
        "solver": args.solver,
        "candidate_pairs": n_candidates,
        "matched_groups": len(named_groups),
        "group_sizes": {str(k): v for k, v in sorted(sizes.items())},
        "predicted_pairs": None,
        "seconds_load": round(seconds_load, 4),
        "seconds_candidates": round(seconds_candidates, 4),
        "seconds_solving": round(seconds_solving, 4),
        "seconds": round(seconds_candidates + seconds_solving, 4),
        "peak_rss_mb": None,
        "cores_used": 1,
    }

    pred = set()
    for g in named_groups:
        pred.update(cross_pairs(g))
    out["predicted_pairs"] = len(pred)

    if args.truth:
        present = {(n, rid) for n, x in zip(names, loaded) for rid in x[1]}
        ent = read_truth(args.truth, present)
        by_ent: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, e in ent.items():
            by_ent[e].append(key)
        truth = set()
        for members in by_ent.values():
            truth.update(cross_pairs(members))
        # Candidate recall: how many true pairs survived the threshold (before solving).
        cand = set()
        _, (ds0, ds1), (rs0, rs1) = candidates
        for d0, d1, r0, r1 in zip(ds0, ds1, rs0, rs1):
            a = (names[d0], loaded[d0][1][r0])
            b = (names[d1], loaded[d1][1][r1])
            cand.add((a, b) if a < b else (b, a))
        tp = len(pred & truth)
        p = tp / len(pred) if pred else 0.0
        r = tp / len(truth) if truth else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out.update({
            "truth_records_matched_to_input": len(ent),
            "truth_pairs": len(truth),
            "true_positives": tp,
            "false_positives": len(pred) - tp,
            "false_negatives": len(truth) - tp,
            "precision": round(p, 6),
            "recall": round(r, 6),
            "f1": round(f1, 6),
            "candidate_recall": round(len(cand & truth) / len(truth), 6) if truth else None,
        })

    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["output"] = str(args.output) if args.output else None
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
