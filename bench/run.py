"""Run the benchmarks; print one JSON object per benchmark run, each on its own line (stdout).

    .venv/bin/python bench/run.py                     # kit at 100,000 persons, ingest at 1,000,000 rows
    .venv/bin/python bench/run.py --only kit --persons 500000
    .venv/bin/python bench/run.py --only ingest --rows 5000000
    .venv/bin/python bench/run.py --quick             # small sizes, a smoke run (~1 minute)

Each benchmark runs in its own process (and measures in child processes of its own), under a fresh
temporary directory (``--workdir`` sets its parent), never under the user's VPDC_HOME, and deleted
afterwards unless ``--keep``. Progress goes to stderr. `make bench` runs this after building the peers'
venv (bench/peers/setup.sh); without that venv the clkhash part reports {"skipped": ...}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from benchlib import REPO, last_json, log  # noqa: E402

BENCHMARKS = ("kit", "ingest", "linkage", "marts")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=BENCHMARKS, action="append",
                    help="run only this benchmark (repeatable; default: all)")
    ap.add_argument("--persons", type=int, help="kit: synthetic persons (default 100,000)")
    ap.add_argument("--rows", type=int, help="ingest: rows of the extract (default 1,000,000)")
    ap.add_argument("--base-persons", type=int, help="ingest: persons of the base population (default 100,000)")
    ap.add_argument("--seed", type=int, help="synthetic seed (default 20261121)")
    ap.add_argument("--quick", action="store_true", help="small sizes: kit 10,000 persons, ingest 100,000 rows, "
                                                         "linkage and marts 5,000 persons")
    ap.add_argument("--link-persons", type=int, action="append",
                    help="linkage: synthetic persons (repeatable; default 20,000, plus FEBRL4; 1,000,000 for the scale target)")
    ap.add_argument("--marts-persons", type=int, help="marts: persons of the warehouse dbt builds (default 20,000)")
    ap.add_argument("--no-clkhash", action="store_true", help="kit: skip the clkhash comparison")
    ap.add_argument("--profile", action="store_true", help="add cProfile top functions (inflates timings)")
    ap.add_argument("--workdir", help="parent directory for the temporary working directories")
    ap.add_argument("--keep", action="store_true", help="keep the working directories")
    args = ap.parse_args(argv)

    common = []
    if args.seed is not None:
        common += ["--seed", str(args.seed)]
    if args.workdir:
        common += ["--workdir", args.workdir]
    if args.keep:
        common.append("--keep")
    if args.profile:
        common.append("--profile")
    kit = ["--persons", str(args.persons or (10_000 if args.quick else 100_000))]
    if args.no_clkhash:
        kit.append("--no-clkhash")
    ingest = ["--rows", str(args.rows or (100_000 if args.quick else 1_000_000))]
    if args.base_persons or args.quick:
        ingest += ["--base-persons", str(args.base_persons or 20_000)]
    link = [a for n in (args.link_persons or [5_000 if args.quick else 20_000]) for a in ("--persons", str(n))]
    if not args.quick:
        link.append("--febrl")
    marts = ["--persons", str(args.marts_persons or (5_000 if args.quick else 20_000))]
    plans = {"kit": ("bench_kit.py", kit), "ingest": ("bench_ingest.py", ingest),
             "linkage": ("bench_linkage.py", link), "marts": ("bench_marts.py", marts)}

    failed = 0
    for name in args.only or BENCHMARKS:
        script, extra = plans[name]
        log(f"running {name}: {script} {' '.join(extra + common)}")
        proc = subprocess.run([sys.executable, str(HERE / script), *extra, *common], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0:
            failed += 1
            print(json.dumps({"benchmark": name, "error": f"exited with {proc.returncode}",
                              "stdout_tail": proc.stdout[-2000:]}), flush=True)
            continue
        print(json.dumps(last_json(proc.stdout)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
