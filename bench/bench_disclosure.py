"""Benchmark of the interval audit on the indicators mart (issue 11, "Done when": its cost at 1,000,000 persons).

The indicators mart is published as cells and additive lines (every neighbourhood, priority area and group
sums to its county total, per month and indicator). The SQL line rule chooses a first suppression;
``governance.disclosure.protect_cells`` then certifies every hidden small cell's feasible interval by linear
and integer programming (HiGHS) and hides more until each covers 0 to the minimum cell. This benchmark:

1. builds a warehouse at ``--persons`` N with ``bench_marts.py --keep`` (or reuses ``--home DIR``, a home whose
   ``dbt build`` already ran);
2. in a child process (its own wall, CPU and peak RSS), reads the mart's cells, lines and the SQL line rule's
   suppression from ``intermediate.*`` and runs ``protect_cells`` exactly as the dbt model does;
3. runs an independent attacker (scipy's ``milp``, not the library's solver) on a random sample of
   month x indicator tables, once against the line rule alone (the protection before this issue) and once
   against what the audit publishes: for each hidden small cell, the smallest and largest value consistent
   with every published cell and line, non-negative whole numbers; "exposed" when that interval does not
   reach both 0 and the minimum cell, "exact" when it is a single value.

    .venv/bin/python bench/bench_disclosure.py --persons 1000000 [--workdir DIR] [--sample 60]
    .venv/bin/python bench/bench_disclosure.py --home DIR       # a home whose marts are built

Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchlib import last_json, log, machine  # noqa: E402

HERE = Path(__file__).resolve().parent


def load(warehouse: Path) -> tuple[Any, Any, Any, Any]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        cells = con.execute("select cell_id, n, component from intermediate.int_violence_indicator_cells").df()
        lines = con.execute("select line_id, cell_id, case when is_total then -1.0 else 1.0 end as coef "
                            "from intermediate.int_violence_indicator_lines").df()
        first = con.execute("select cell_id, suppressed "
                            "from intermediate.int_violence_indicator_cells_suppressed").df()
        try:  # absent when the build stopped before the protected model (the audit below recomputes it)
            published = con.execute("select cell_id, suppressed "
                                    "from intermediate.int_violence_indicator_cells_protected").df()
        except duckdb.CatalogException:
            published = None
    return cells, lines, first, published


def child(warehouse: Path, min_cell: int, out_path: Path | None = None) -> dict[str, Any]:
    """Time protect_cells alone (data already in memory), as the dbt model runs it; write the suppression it
    chose to ``out_path`` (Parquet) so the attacker can attack this checkout's protection."""
    from governance.disclosure import DisclosureRules, protect_cells

    cells, lines, first, built = load(warehouse)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    out = protect_cells(cells, lines, DisclosureRules(min_cell=min_cell),
                        suppressed=first.set_index("cell_id")["suppressed"])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    reasons = out["reason"].value_counts().to_dict()
    if out_path is not None:
        out[["cell_id", "suppressed"]].to_parquet(out_path)
    return {"cells": int(len(cells)), "line_entries": int(len(lines)), "lines": int(lines["line_id"].nunique()),
            "tables": int(cells["component"].nunique()),
            # False: the warehouse's mart was built by other code than this checkout's (the attack reads the mart)
            "matches_warehouse": None if built is None else bool(
                out.set_index("cell_id")["suppressed"].sort_index()
                .equals(built.set_index("cell_id")["suppressed"].astype(bool).sort_index())),
            "hidden_by_line_rule": int(first["suppressed"].sum()), "hidden_after_audit": int(out["suppressed"].sum()),
            "by_reason": {str(k): int(v) for k, v in reasons.items()},
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_mib_after_loading": round(rss_loaded, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def attack_table(values: Any, hidden: Any, lines: list[tuple[Any, Any]], targets: list[int]) -> list[tuple[float, float]]:
    """[lo, hi] of each target cell from the published cells and lines: integer programming (scipy milp)."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    n = len(values)
    lb = np.where(hidden, 0.0, values)
    ub = np.where(hidden, np.inf, values)
    a = lil_matrix((len(lines), n))
    for r, (ids, coef) in enumerate(lines):
        for i, c in zip(ids, coef, strict=True):
            a[r, i] += c
    cons = [LinearConstraint(a.tocsr(), 0, 0)] if lines else []
    out = []
    for t in targets:
        c = np.zeros(n)
        c[t] = 1.0
        bounds = []
        for sign in (1.0, -1.0):
            res = milp(sign * c, constraints=cons, integrality=np.ones(n), bounds=Bounds(lb, ub))
            bounds.append(sign * res.fun if res.status == 0 else (np.inf if sign < 0 else -np.inf))
        out.append((bounds[0], bounds[1]))
    return out


def attack(warehouse: Path, min_cell: int, sample: int, seed: int, published: Any = None) -> dict[str, Any]:
    """The attacker on a sample of tables; ``published``: the audited suppression to attack (default: the
    warehouse's ``int_violence_indicator_cells_protected``)."""
    import numpy as np

    cells, lines, first, built = load(warehouse)
    published = built if published is None else published
    cells = cells.merge(first.rename(columns={"suppressed": "line_rule"}), on="cell_id") \
        .merge(published.rename(columns={"suppressed": "audited"}), on="cell_id")
    lines = lines.merge(cells[["cell_id", "component"]], on="cell_id")
    small = cells[(cells["n"] >= 1) & (cells["n"] < min_cell)]
    tables = sorted(small["component"].unique())
    picked = random.Random(seed).sample(tables, min(sample, len(tables)))
    res: dict[str, Any] = {"tables_with_small_cells": len(tables), "tables_attacked": len(picked)}
    t0 = time.perf_counter()
    for label in ("line_rule", "audited"):
        exposed = exact = attacked = 0
        widths = []
        for comp in picked:
            cs = cells[cells["component"] == comp].reset_index(drop=True)
            pos = {cid: i for i, cid in enumerate(cs["cell_id"])}
            ls = [(np.array([pos[c] for c in g["cell_id"]]), g["coef"].to_numpy())
                  for _, g in lines[lines["component"] == comp].groupby("line_id")]
            values = cs["n"].to_numpy(dtype=float)
            hidden = cs[label].to_numpy(dtype=bool)
            targets = [i for i in np.flatnonzero(hidden) if 1 <= values[i] < min_cell]
            for lo, hi in attack_table(values, hidden, ls, targets):
                attacked += 1
                widths.append(hi - lo)
                exposed += int(not (lo <= 0 and hi >= min_cell))
                exact += int(hi - lo < 0.5)
        res[label] = {"small_cells_attacked": attacked, "exposed": exposed, "exact": exact,
                      "narrowest_interval": None if not widths else float(min(widths)),
                      "median_interval": None if not widths else float(np.median(widths))}
    res["attacker_seconds"] = round(time.perf_counter() - t0, 1)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--home", type=Path, help="a VPDC home whose marts are built (skips building)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--sample", type=int, default=60, help="month x indicator tables the attacker tries")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from governance.defaults import MIN_CELL

    if args.child:
        print(json.dumps(child(args.child, MIN_CELL, args.child_out)))
        return
    result: dict[str, Any] = {"benchmark": "disclosure", "machine": machine(), "min_cell": MIN_CELL}
    if args.home:
        home = args.home.resolve()
    else:
        log(f"building the marts at {args.persons:,} persons (bench_marts.py --keep)")
        cmd = [sys.executable, str(HERE / "bench_marts.py"), "--persons", str(args.persons), "--keep"]
        if args.workdir:
            cmd += ["--workdir", str(args.workdir)]
        marts = last_json(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        home = Path(marts["home"])
        result["marts"] = {k: marts.get(k) for k in ("persons", "completed", "stages", "marts")}
        result["marts"]["protected_model"] = next(
            (n for n in (marts.get("dbt_build") or {}).get("slowest_nodes", [])
             if n["node"].endswith("int_violence_indicator_cells_protected")), None)
    result["home"] = str(home)
    warehouse = home / "warehouse.duckdb"
    log("protect_cells in a child process")
    import tempfile

    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        chosen = Path(tmp) / "suppression.parquet"
        proc = subprocess.run([sys.executable, __file__, "--child", str(warehouse), "--child-out", str(chosen)],
                              capture_output=True, text=True, check=True)
        result["interval_audit"] = last_json(proc.stdout)
        fresh = pd.read_parquet(chosen)
    log(f"interval audit: {result['interval_audit']['seconds']} s, peak {result['interval_audit']['peak_rss_mib']} MiB")
    log(f"independent attacker on {args.sample} tables")
    # the attacker attacks what this checkout's audit chose (the same as the mart when matches_warehouse)
    result["attack"] = attack(warehouse, MIN_CELL, args.sample, args.seed, published=fresh)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
