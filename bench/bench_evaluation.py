"""Benchmark of a program evaluation (issue 16, "Done when": time and memory on the 1,000,000-person warehouse).

Builds the two marts the evaluation reads (``analytics.events``, ``analytics.persons``) for ``--persons`` N
(default 1,000,000) with perfect linkage straight from the simulator (``tests/evaluation_helpers.py``: the
whole pipeline at this size is ``bench_marts.py``'s job and takes far longer on a two-core machine), or reuses
``--warehouse`` (a warehouse the real pipeline built). Then runs the gated evaluation of ATV (with the area-level
design) and of HVIP in this process, against a demo registry with an approved request, and prints JSON: build
and evaluation wall seconds, peak RSS, the estimates and, for a simulated warehouse, the true effects beside
them (scoring reads the simulator's settings, never the evaluation).

    nice python bench/bench_evaluation.py --persons 1000000 --workdir /tmp/bench-eval
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--warehouse", type=Path, default=None, help="reuse this warehouse (no build)")
    args = ap.parse_args()

    from synthetic import ProgramEffects, SynthConfig
    from tests.integration.test_evaluation import AREA, AREA_START, _registry

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"persons": args.persons, "seed": args.seed}
    t0 = time.perf_counter()
    if args.warehouse is None:
        from tests.evaluation_helpers import truth_linked_warehouse

        wh = truth_linked_warehouse(work / "warehouse.duckdb", SynthConfig(persons=args.persons, seed=args.seed))
        fx = ProgramEffects()
        out["true_effects"] = {"ATV": 1 - fx.atv_violence, "HVIP": 1 - fx.hvip_reinjury, "area": 1 - fx.area_violence}
    else:
        wh = args.warehouse
    out["build_seconds"] = round(time.perf_counter() - t0, 1)
    out["peak_rss_mib_after_build"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    from evaluation import EvaluationSpec, run_evaluation

    reg = _registry(work)
    now = datetime.now(UTC)
    out["evaluations"] = {}
    for program in ("ATV", "HVIP"):
        t = time.perf_counter()
        res = run_evaluation(EvaluationSpec("eval-study", "evaluator_atv", program,
                                            area=AREA if program == "ATV" else None,
                                            area_start=AREA_START if program == "ATV" else None,
                                            period_start=date(2021, 1, 1)),
                             registry=reg, warehouse_db=wh, reports_dir=work / "reports", now=now)
        out["evaluations"][program] = {
            "seconds": round(time.perf_counter() - t, 1),
            "estimates": {e["key"]: [round(e[k], 3) if e.get(k) is not None else None
                                     for k in ("estimate", "low", "high")] for e in res.estimates},
            "suppressed": len(res.suppressed)}
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
