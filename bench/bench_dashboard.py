"""Benchmark of the public dashboard build (issue 15, "Done when": the 1,000,000-person build completes; its time and
size in bench/ JSON).

Builds the dashboard from the published indicators of an existing home's warehouse (``--home``; e.g. the one
``bench/bench_marts.py --persons 1000000 --workdir DIR --keep`` leaves in ``DIR/home``) into a temporary folder
under ``--workdir`` (never the home's own ``dashboard/``), in every language, and reports wall and CPU seconds, peak
RSS, pages, files, bytes, charts, cells shown and suppressed, and the mart's size. The build reads the warehouse
read-only.

    .venv/bin/python bench/bench_dashboard.py --home /tmp/bd/home [--workdir DIR]

Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import log, machine, peak_rss_mib  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="a VPDC home whose warehouse has the marts built")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    import duckdb

    from dashboard import build_dashboard

    warehouse = args.home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cells, hidden = con.execute("select count(*), count(*) filter (where suppressed) "
                                    "from analytics.community_violence_indicators").fetchone()
        persons = con.execute("select count(*) from analytics.persons").fetchone()[0]
    log(f"dashboard of {warehouse} ({persons:,} persons, {cells:,} mart cells)")
    with tempfile.TemporaryDirectory(prefix="vpdc-bench-dashboard-", dir=args.workdir) as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        built = build_dashboard(warehouse, Path(tmp) / "dashboard")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = {"bench": "dashboard", "machine": machine(), "home": str(args.home), "persons": persons,
               "mart_cells": cells, "mart_cells_suppressed": hidden,
               "build": {"wall_s": round(wall, 2), "cpu_s": round(cpu + children.ru_utime, 2),
                         "peak_rss_mib": round(peak_rss_mib(), 1), **built.to_dict()}}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
