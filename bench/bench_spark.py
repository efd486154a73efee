"""Benchmark of linkage on Apache Spark (issue 17): Spark ``local[N]`` against DuckDB on the same linkage zone.

For each population (``--persons``, default 20,000 and 200,000): the synthetic extracts go through the real kit
and landing zone (``bench_linkage.prepare_synth``; preparation, not timed), then in fresh child processes:

* ``duckdb``: ``run_linkage(mode="full")`` on a copy of the zone, the default engine;
* ``spark``: ``run_linkage(engine="spark", SparkOptions(master))`` on a copy of the zone DuckDB just linked, so
  that its clusters inherit DuckDB's person keys: ``person_key_agreement`` is the share of records whose key
  the Spark run kept (the issue's "same person keys"), ``key_events`` what it created, merged and split.

``seconds`` / ``cpu_seconds`` cover ``run_linkage`` only; ``peak_rss_mb`` is the peak resident memory of the
child's whole process tree (the Python process and, for Spark, its JVM), sampled every 0.2 s from /proc.
Quality against the simulator's truth as ``bench_linkage``: pairwise precision/recall/F1, exact-cluster F1.

``--million`` adds a Spark-only run at 1,000,000 persons (records/s), under ``--time-limit`` seconds per run:
a run that does not finish in time is reported as skipped, with the time and stage it reached. With
``--million`` and no ``--persons``, only that run.

    .venv/bin/python bench/bench_spark.py [--persons 20000 --persons 200000] [--master local[2]]
        [--shuffle-partitions 8] [--million] [--time-limit 5400] [--workdir DIR] [--keep]

Prints one JSON object per population on stdout; progress on stderr. Run it niced on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for p in (REPO, BENCH):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_linkage import NOW, SEED, Timer, _vpdc_eval, log, prepare_synth  # noqa: E402


# ====================================================================================== process-tree memory
def _tree_rss_kib(pgid: int) -> int:
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # field 5 (pgrp), after the command name
                continue
            with open(f"/proc/{d}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return total


def run_child(stage: str, spec: dict[str, Any], *, timeout: float | None) -> dict[str, Any]:
    """One stage of this file in a fresh process group; its last JSON line plus the tree's peak RSS."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--spec", json.dumps(spec)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    peak, timed_out = 0, False
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        if timeout is not None and time.perf_counter() - t0 > timeout:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.2)
    reader.join(10)
    meta = {"child_wall_seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(peak / 1024, 1)}
    if timed_out:
        return {"skipped": f"time limit of {timeout:.0f} s reached; killed"} | meta
    out = "".join(chunks)
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} exited with {proc.returncode}: {out[-1500:]}")
    for line in reversed(out.strip().splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line) | meta
    raise RuntimeError(f"{stage}: no JSON on stdout: {out[-500:]}")


# ================================================================================================ stages
def stage_link(spec: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    from linkage.run import run_linkage
    from linkage.spark import SparkOptions
    from partner_kit.profiles import partners

    db = Path(spec["linkage_db"])
    with duckdb.connect(str(db), read_only=True) as con:
        keyed = con.execute("select count(*) from information_schema.tables where table_name = 'person_keys'"
                            ).fetchall()[0][0]
        before = dict(((s, r), k) for s, r, k in con.execute(
            "select source, source_record_id, person_key from person_keys").fetchall()) if keyed else {}
    spark = SparkOptions(master=spec["master"], shuffle_partitions=spec.get("shuffle_partitions"),
                         driver_memory=spec.get("driver_memory")) if spec["engine"] == "spark" else None
    with Timer() as t:
        res = run_linkage(db, now=NOW, mode="full", expected_sources=tuple(partners()), blocking_analysis=False,
                          engine=spec["engine"], spark=spark)
    records = sum(res.records.values())
    out = {"engine": spec["engine"], "master": spec.get("master") if spark else None, "records": records,
           "seconds": t.seconds, "cpu_seconds_python": t.cpu_seconds,
           "records_per_s": round(records / t.seconds, 1), "pairs_scored_above_0_5": res.pairs,
           "persons": res.persons, "key_events": res.key_events,
           "stage_seconds": {k: round(v, 2) for k, v in res.seconds.items()}}
    if before:
        with duckdb.connect(str(db), read_only=True) as con:
            after = dict(((s, r), k) for s, r, k in con.execute(
                "select source, source_record_id, person_key from person_keys").fetchall())
        same = sum(after.get(k) == v for k, v in before.items())
        out["person_key_agreement"] = round(same / len(before), 6)
        out["records_with_another_key"] = len(before) - same
    if spec.get("evaluate", True):
        with Timer() as te:
            ev = _vpdc_eval(db, Path(spec["keys"]), Path(spec["truth"]))
        out["quality"] = {k: ev[k] for k in ("precision", "recall", "f1", "cluster_f1") if k in ev}
        out["eval_seconds"] = te.seconds
    if spark is not None:  # the session dies with the process; stopping it first lets the JVM exit cleanly
        from pyspark.sql import SparkSession

        s = SparkSession.getActiveSession()
        if s is not None:
            s.stop()
    return out


STAGES = {"prepare": prepare_synth, "link": stage_link}


# ================================================================================================ driver
def bench_population(persons: int, args: argparse.Namespace, work: Path, *, duckdb_too: bool) -> dict[str, Any]:
    data = work / f"p{persons}"
    home = data / "home"
    log(f"{persons:,} persons: synthetic extracts, kit, landing zone")
    prep = run_child("prepare", {"home": str(home), "persons": persons, "seed": args.seed}, timeout=None)
    keys, truth = home / "keys", home / "truth" / "truth.parquet"
    result: dict[str, Any] = {"benchmark": "linkage_spark", "persons": persons,
                              "records": prep.get("linkage_zone_records"), "prepare_seconds": prep.get("child_wall_seconds")}
    zone = home / "linkage.duckdb"
    spark_db = data / "spark" / "linkage.duckdb"
    spark_db.parent.mkdir(mode=0o700)
    common = {"keys": str(keys), "truth": str(truth), "evaluate": not args.no_eval}
    if duckdb_too:
        duck_db = data / "duckdb" / "linkage.duckdb"
        duck_db.parent.mkdir(mode=0o700)
        shutil.copy2(zone, duck_db)
        log(f"{persons:,}: DuckDB")
        result["duckdb"] = run_child("link", common | {"linkage_db": str(duck_db), "engine": "duckdb"},
                                     timeout=args.time_limit)
        shutil.copy2(duck_db, spark_db)  # Spark links the zone DuckDB keyed: its clusters inherit the keys
    else:
        shutil.copy2(zone, spark_db)
    log(f"{persons:,}: Spark {args.master}")
    result["spark"] = run_child("link", common | {"linkage_db": str(spark_db), "engine": "spark", "master": args.master,
                                                  "shuffle_partitions": args.shuffle_partitions,
                                                  "driver_memory": args.driver_memory}, timeout=args.time_limit)
    d, s = result.get("duckdb", {}), result["spark"]
    if d.get("seconds") and s.get("seconds"):
        result["spark_over_duckdb_seconds"] = round(s["seconds"] / d["seconds"], 2)
        result["spark_over_duckdb_peak_rss"] = round(s["peak_rss_mb"] / max(d["peak_rss_mb"], 1), 2)
        if d.get("quality") and s.get("quality"):
            result["f1_difference_points"] = round(100 * (s["quality"]["f1"] - d["quality"]["f1"]), 3)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", choices=sorted(STAGES), help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--persons", type=int, action="append",
                    help="persons (repeatable; default 20,000 and 200,000, none with --million)")
    ap.add_argument("--million", action="store_true", help="also a Spark-only run at 1,000,000 persons")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--shuffle-partitions", type=int, default=None)
    ap.add_argument("--driver-memory", default=None, help="e.g. 6g (local mode: the whole Spark heap)")
    ap.add_argument("--time-limit", type=float, default=5400, help="seconds per linkage run (default 5400)")
    ap.add_argument("--no-eval", action="store_true", help="skip the truth evaluation")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--workdir", help="parent of the temporary working directory")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(STAGES[args.child](json.loads(args.spec)), default=str), flush=True)
        return 0
    from benchlib import machine

    os.umask(0o077)
    work = Path(tempfile.mkdtemp(prefix="vpdc-bench-spark-", dir=args.workdir))
    try:
        for persons in args.persons if args.persons is not None else [] if args.million else [20_000, 200_000]:
            print(json.dumps(bench_population(persons, args, work, duckdb_too=True) | {"machine": machine()}),
                  flush=True)
        if args.million:
            r = bench_population(1_000_000, args, work, duckdb_too=False) | {"machine": machine()}
            print(json.dumps(r), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
