"""Benchmark of the analytic marts (issue 5, "Done when": ``dbt build`` of all marts on 1,000,000 synthetic persons).

Builds a full warehouse at ``--persons`` N (default 1,000,000) in a temporary VPDC home under ``--workdir``
(never the user's ``VPDC_HOME``), stage by stage, each stage in its own child process of the project venv
(so each reports its own wall, CPU and peak RSS, and the driver stays small):

1. ``synth``: ``benchlib.demo_keys`` + ``synthetic.generate(SynthConfig(persons=N, seed))``;
2. ``encode``: ``vpdc.demo.encode_and_send_all(home, today=date.today())`` (partner kit: encode + seal);
3. ``ingest``: ``landing.ingest.ingest_envelope`` on every envelope in ``landing/`` (no Dagster); the stage
   fails, naming the envelopes and the failed check, unless every one is loaded;
4. ``linkage``: ``linkage.run.run_linkage(mode="full", blocking_analysis=False)`` then
   ``linkage.run.export_person_map`` (timed separately: ``linkage`` and ``export_person_map``).

``--home DIR`` instead reuses an existing home whose ``warehouse.duckdb`` already has ``raw.*`` tables and
``raw.person_map`` (no building; note that dbt then writes schema ``analytics`` etc. into that warehouse).

Then ``dbt build`` (seeds, models, every test) runs as a child process, exactly as dbt_project/README.md says:
``PATH=<venv>/bin:$PATH VPDC_HOME=<home> <venv>/bin/dbt build --project-dir dbt_project --profiles-dir dbt_project``,
plus ``--target-path``/``--log-path`` in the work directory so the run never touches ``dbt_project/target`` or
``dbt_project/logs`` (other runs, tests and Dagster use those). ``dbt parse`` into that target path runs first
and is timed on its own (``dbt_parse``), so ``dbt_build`` is the build itself (dbt's partial parse included).
Measured for ``dbt build``: wall seconds, CPU seconds and peak RSS of the dbt process from ``os.wait4``
(``ru_maxrss``; the driver is small, so the fork does not inflate it), plus ``VmHWM`` polled from
``/proc/<pid>/status`` and RSS sampled every 0.2 s, which gives the peak RSS while each node ran
(``run_results.json`` timings). PASS/WARN/ERROR/SKIP come from dbt's ``Done.`` line; failed nodes, with dbt's
message, and the slowest nodes are listed. Row counts of the four marts (``analytics.persons``, ``events``,
``program_cohorts``, ``community_violence_indicators``) are read afterwards; ``dbt_build.mart_status`` says
whether this run rebuilt each (a failed run on a reused home leaves an earlier build's tables in place).

A failing or out-of-memory stage stops the run: the JSON then has ``completed: false`` and
``failed: {"stage", "error"}`` (an exit by signal 9 is reported as a probable OOM kill).

    .venv/bin/python bench/bench_marts.py --persons 20000 [--seed S] [--workdir DIR] [--keep]
    .venv/bin/python bench/bench_marts.py --home DIR           # dbt build only, on a prepared home
    .venv/bin/python bench/bench_marts.py --home DIR --duckdb-memory-limit 1GB   # the same under a DuckDB memory cap

Prints one JSON object on stdout (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Self

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from benchlib import child_usage, demo_keys, log, machine, peak_rss_mib

DBT_PROJECT = REPO / "dbt_project"
MARTS = ("persons", "events", "program_cohorts", "community_violence_indicators")
SEED = 20261121


class Timer:
    """Wall and process CPU (all threads, so DuckDB's too) of a block."""

    def __enter__(self) -> Self:
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.w, 3)
        self.cpu_seconds = round(time.process_time() - self.c, 3)


def venv_bin() -> Path:
    return Path(sys.executable).parent


# ================================================================================================ children
def stage_synth(spec: dict[str, Any]) -> dict[str, Any]:
    from synthetic import SynthConfig, generate
    from workspace import Home

    home = Home(Path(spec["home"])).ensure()
    with Timer() as t:
        demo_keys(home.root)
        counts = generate(SynthConfig(persons=spec["persons"], seed=spec["seed"]), home.root)
    return {"seconds": t.seconds, "cpu_seconds": t.cpu_seconds, "counts": counts}


def stage_encode(spec: dict[str, Any]) -> dict[str, Any]:
    from vpdc.demo import encode_and_send_all
    from workspace import Home

    home = Home(Path(spec["home"]))
    with Timer() as t:
        sent = encode_and_send_all(home, today=date.today())
    return {"seconds": t.seconds, "cpu_seconds": t.cpu_seconds, "envelopes": len(sent),
            "rows_encoded": sum(s.get("rows_encoded", 0) for s in sent),
            "rows_rejected": sum(s.get("rows_rejected", 0) for s in sent)}


def stage_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    from envelope.keys import WarehouseKeyRing as KeyRing
    from landing.ingest import ingest_envelope
    from workspace import Home

    home = Home(Path(spec["home"]))
    keyring = KeyRing(home.keys)
    paths = sorted(home.landing().glob("*/*.vpdc"))
    outcomes, per_stage = [], {}
    with Timer() as t:
        for path in paths:
            o = ingest_envelope(path, home, keyring)
            outcomes.append({"file": f"{path.parent.name}/{path.name}", "status": o.status, "rows": o.rows,
                             "check": o.check, "detail": (o.detail or "")[:300]})
            for k, v in o.seconds.items():
                per_stage[k] = round(per_stage.get(k, 0.0) + v, 3)
    out: dict[str, Any] = {"seconds": t.seconds, "cpu_seconds": t.cpu_seconds, "envelopes": len(paths),
                           "rows_loaded": sum(o["rows"] for o in outcomes if o["status"] == "loaded"),
                           "ingest_seconds_by_step": per_stage}
    bad = [o for o in outcomes if o["status"] != "loaded"]
    out["not_loaded"] = bad
    if not paths:
        out["error"] = "no envelope in landing/"
    elif bad:
        out["error"] = f"{len(bad)} of {len(paths)} envelopes not loaded: " + "; ".join(
            f"{o['file']}: {o['status']} ({o['check']}: {o['detail'][:150]})" for o in bad[:5])
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'raw' order by 1").fetchall()]
        out["raw_tables"] = {tb: con.execute(f'select count(*) from raw."{tb}"').fetchall()[0][0] for tb in tables}
    return out


def stage_linkage(spec: dict[str, Any]) -> dict[str, Any]:
    from envelope.keys import WarehouseKeyRing
    from landing.boundary import ZoneBoundary
    from linkage.run import export_person_map, run_linkage
    from workspace import Home

    home = Home(Path(spec["home"]))
    with Timer() as t:
        res = run_linkage(home.linkage_db, now=datetime.now(UTC), mode="full", blocking_analysis=False)
    with Timer() as te:
        mapped = export_person_map(home.linkage_db, home.warehouse_db, run_id=res.run_id,
                                   boundary=ZoneBoundary.from_keyring(WarehouseKeyRing(home.keys)))
    return {"seconds": t.seconds, "cpu_seconds": t.cpu_seconds, "export_seconds": te.seconds,
            "export_cpu_seconds": te.cpu_seconds, "run_id": res.run_id, "records": sum(res.records.values()),
            "records_by_source": res.records, "pairs": res.pairs, "persons": res.persons,
            "person_map_rows": mapped, "linkage_seconds_by_step": res.seconds}


STAGES = {"synth": stage_synth, "encode": stage_encode, "ingest": stage_ingest, "linkage": stage_linkage}


def stage_input(spec: dict[str, Any]) -> dict[str, Any]:
    """In a child, so the driver stays small before it starts dbt (a child's ru_maxrss starts at the parent's RSS)."""
    return check_home(Path(spec["home"]))


def child_main(stage: str, spec: dict[str, Any]) -> None:
    out = (STAGES | {"input": stage_input})[stage](spec)
    print(json.dumps(out | child_usage(), default=str), flush=True)


def run_stage(stage: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one stage in a fresh child; return its JSON plus ``wait4`` usage. Raises StageError on failure."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--spec", json.dumps(spec)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(30)
    meta = {"child_wall_seconds": round(time.perf_counter() - t0, 2),
            "child_cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2),
            "child_peak_rss_mib": round(ru.ru_maxrss / 1024, 1)}
    text = "".join(chunks)
    if proc.returncode != 0:
        why = (f"killed by signal {-proc.returncode}" + (" (SIGKILL: probably the OOM killer)" if
                                                          proc.returncode == -signal.SIGKILL else "")
               if proc.returncode < 0 else f"exited with {proc.returncode} (traceback on stderr)")
        raise StageError(stage, why, meta)
    for line in reversed(text.strip().splitlines()):
        if line.strip().startswith("{"):
            out = json.loads(line) | meta
            if out.get("error"):
                raise StageError(stage, out["error"], out)
            return out
    raise StageError(stage, f"no JSON on stdout: {text[-300:]}", meta)


class StageError(Exception):
    def __init__(self, stage: str, error: str, partial: dict[str, Any]):
        super().__init__(f"{stage}: {error}")
        self.stage, self.error, self.partial = stage, error, partial


# ===================================================================================================== dbt
class ProcSampler(threading.Thread):
    """Samples VmRSS and VmHWM of another process every ``interval`` s (UTC timestamps, to match dbt's timings)."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[datetime, int]] = []
        self.hwm_kib = 0
        self._stop_evt = threading.Event()

    def _sample(self) -> None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return
        rss = hwm = None
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
        if rss is not None:
            self.samples.append((datetime.now(UTC), rss))
        if hwm is not None:
            self.hwm_kib = max(self.hwm_kib, hwm)

    def run(self) -> None:
        while not self._stop_evt.is_set():
            self._sample()
            self._stop_evt.wait(self.interval)

    def stop(self) -> None:
        self._stop_evt.set()
        self.join()

    def peak_between(self, t0: datetime, t1: datetime) -> float | None:
        vals = [r for t, r in self.samples if t0 <= t <= t1]
        return round(max(vals) / 1024, 1) if vals else None


def profiles_dir(work: Path, memory_limit: str | None) -> Path:
    """The project's profiles dir, or (with ``memory_limit``) a copy in ``work`` adding DuckDB's ``memory_limit``."""
    if not memory_limit:
        return DBT_PROJECT
    import yaml

    prof = yaml.safe_load((DBT_PROJECT / "profiles.yml").read_text())
    for output in prof["vpdc"]["outputs"].values():
        output.setdefault("settings", {})["memory_limit"] = memory_limit
    out = work / "profiles"
    out.mkdir(exist_ok=True)
    (out / "profiles.yml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return out


def dbt_cmd(command: str, home: Path, work: Path, profiles: Path = DBT_PROJECT) -> tuple[list[str], dict[str, str]]:
    bin_dir = venv_bin()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "VPDC_HOME": str(home),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("VPDC_WAREHOUSE_DB", None)  # the profile would prefer it to VPDC_HOME
    from governance.defaults import (
        dbt_vars,  # the governance vars every dbt run receives (as the CLI passes them)
    )

    argv = [str(bin_dir / "dbt"), command, "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(profiles),
            "--vars", json.dumps(dbt_vars()), "--target-path", str(work / "dbt_target"), "--log-path", str(work / "dbt_logs"), "--no-use-colors"]
    return argv, env


def run_dbt(command: str, home: Path, work: Path, *, timeout: float | None = None,
            profiles: Path = DBT_PROJECT) -> dict[str, Any]:
    """Run ``dbt <command>`` as a child; its output goes to ``work/dbt_<command>.log``."""
    argv, env = dbt_cmd(command, home, work, profiles)
    logfile = work / f"dbt_{command}.log"
    log(f"dbt {command} (output: {logfile})")
    t0 = time.perf_counter()
    with logfile.open("w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=DBT_PROJECT,
                                start_new_session=True)
        sampler = ProcSampler(proc.pid)
        sampler.start()
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and not timed_out and time.perf_counter() - t0 > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.1)
        sampler.stop()
    rc = os.waitstatus_to_exitcode(status)
    text = logfile.read_text(errors="replace")
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 2),
                           "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2),
                           "peak_rss_mib": round(ru.ru_maxrss / 1024, 1),
                           "vm_hwm_mib": round(sampler.hwm_kib / 1024, 1) if sampler.hwm_kib else None,
                           "exit_code": rc, "log": str(logfile)}
    if timed_out:
        out["failure"] = f"time limit of {timeout:.0f} s reached; killed"
    elif rc < 0:
        out["failure"] = f"dbt killed by signal {-rc}" + (" (SIGKILL: probably the OOM killer)"
                                                           if rc == -signal.SIGKILL else "")
    if command != "build":
        if rc != 0 and "failure" not in out:
            out["failure"] = f"dbt {command} exited with {rc}: {text[-1000:]}"
        return out
    done = re.findall(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)(?: NO-OP=(\d+))? TOTAL=(\d+)", text)
    if done:
        p, w, e, s, noop, total = done[-1]
        out.update({"pass": int(p), "warn": int(w), "error": int(e), "skip": int(s), "total": int(total)})
        if noop:
            out["no_op"] = int(noop)
    else:
        out.update({"pass": None, "warn": None, "error": None})
        out.setdefault("failure", f"no 'Done.' line in dbt output (exit {rc}): {text[-1500:]}")
    out.update(_run_results(work / "dbt_target" / "run_results.json", sampler))
    if rc != 0 and "failure" not in out:
        first = [f"{f['node']}: " + " ".join((f.get("message") or "").split())[:200] for f in out.get("failed_nodes", [])[:3]]
        out["failure"] = (f"dbt build exited with {rc}: PASS={out['pass']} WARN={out['warn']} ERROR={out['error']}"
                          + (f"; failed: {' | '.join(first)}" if first else ""))
    return out


def _run_results(path: Path, sampler: ProcSampler) -> dict[str, Any]:
    """Slowest nodes, failed nodes (with dbt's message) and the node running at the RSS peak."""
    if not path.exists():
        return {}
    rr = json.loads(path.read_text())
    nodes = []
    for r in rr.get("results", []):
        ex = [t for t in r.get("timing", []) if t.get("name") == "execute" and t.get("started_at")]
        peak = None
        if ex:
            t0 = datetime.fromisoformat(ex[0]["started_at"])
            t1 = datetime.fromisoformat(ex[0]["completed_at"])
            if t0.tzinfo is None:
                t0, t1 = t0.replace(tzinfo=UTC), t1.replace(tzinfo=UTC)
            peak = sampler.peak_between(t0, t1)
        nodes.append({"node": r["unique_id"], "status": r["status"], "seconds": round(r.get("execution_time") or 0, 2),
                      "peak_rss_mib": peak, "message": r.get("message")})
    by_type: dict[str, dict[str, float]] = {}
    for n in nodes:
        kind = n["node"].split(".")[0]
        agg = by_type.setdefault(kind, {"nodes": 0, "seconds": 0.0})
        agg["nodes"] += 1
        agg["seconds"] = round(agg["seconds"] + n["seconds"], 2)
    slow = sorted(nodes, key=lambda n: -n["seconds"])[:12]
    status = {n["node"]: n["status"] for n in nodes}
    failed = [{k: n[k] for k in ("node", "status", "message")} for n in nodes
              if n["status"] not in ("success", "pass", "skipped", "no-op")]
    peak_node = max((n for n in nodes if n["peak_rss_mib"] is not None), key=lambda n: n["peak_rss_mib"], default=None)
    return {"nodes": len(nodes), "seconds_by_resource_type": by_type,
            # a mart not rebuilt by this run (error / skipped) still holds an earlier build's rows, if any
            "mart_status": {m: status.get(f"model.vpdc.{m}", "not run") for m in MARTS},
            "slowest_nodes": [{k: n[k] for k in ("node", "status", "seconds", "peak_rss_mib")} for n in slow],
            "failed_nodes": failed,
            "node_at_rss_peak": {k: peak_node[k] for k in ("node", "seconds", "peak_rss_mib")} if peak_node else None}


def mart_rows(home: Path) -> dict[str, Any]:
    import duckdb

    out: dict[str, Any] = {}
    try:
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    except duckdb.Error as e:  # e.g. a warehouse left locked or half-written by a killed dbt
        return {m: None for m in MARTS} | {"errors": {"open": str(e).splitlines()[0][:300]}}
    with con:
        for m in MARTS:
            try:
                out[m] = con.execute(f"select count(*) from analytics.{m}").fetchall()[0][0]
            except duckdb.Error as e:
                out[m] = None
                out.setdefault("errors", {})[m] = str(e).splitlines()[0][:200]
    return out


def check_home(home: Path) -> dict[str, Any]:
    """A reused home must already hold raw.* tables and raw.person_map; returns their row counts."""
    import duckdb

    wh = home / "warehouse.duckdb"
    if not wh.exists():
        return {"error": f"--home {home}: no warehouse.duckdb"}
    with duckdb.connect(str(wh), read_only=True) as con:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'raw' order by 1").fetchall()]
        if "person_map" not in tables or len(tables) < 2:
            return {"error": f"--home {home}: warehouse has raw tables {tables}; needs raw.* and raw.person_map"}
        counts = {tb: con.execute(f'select count(*) from raw."{tb}"').fetchall()[0][0] for tb in tables}
        persons = con.execute("select count(distinct person_key) from raw.person_map").fetchall()[0][0]
    return {"raw_tables": counts, "linked_persons": persons}


# ================================================================================================== driver
def _input(home: Path) -> dict[str, Any]:
    out = run_stage("input", {"home": str(home)})
    return {"raw_tables": out["raw_tables"], "linked_persons": out["linked_persons"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--home", type=Path, help="reuse this VPDC home (warehouse with raw.* and raw.person_map)")
    ap.add_argument("--workdir", type=Path, default=None, help="parent of the temporary directory")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (home, dbt logs)")
    ap.add_argument("--dbt-timeout", type=float, default=None, help="kill dbt build after this many seconds")
    ap.add_argument("--duckdb-memory-limit", default=None,
                    help="e.g. 1GB: run dbt with a copy of profiles.yml setting DuckDB's memory_limit")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args.child, json.loads(args.spec))
        return

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-marts-", dir=args.workdir))
    result: dict[str, Any] = {"benchmark": "marts", "persons": None if args.home else args.persons,
                              "seed": None if args.home else args.seed, "machine": machine(), "work": str(work),
                              "stages": {}, "stage_details": {}, "dbt_build": None, "marts": None,
                              "completed": False}
    t_all = time.perf_counter()
    try:
        if args.home:
            home = args.home.resolve()
            result["home"], result["reused_home"] = str(home), True
            result["input"] = _input(home)
        else:
            home = work / "home"
            result["home"], result["reused_home"] = str(home), False
            spec = {"home": str(home), "persons": args.persons, "seed": args.seed}
            for stage in STAGES:
                log(f"stage {stage} ({args.persons:,} persons)")
                out = run_stage(stage, spec)
                result["stages"][stage] = out["seconds"]
                if stage == "linkage":
                    result["stages"]["export_person_map"] = out["export_seconds"]
                result["stage_details"][stage] = out
                log(f"stage {stage}: {out['seconds']} s wall, {out['cpu_seconds']} CPU s, "
                    f"peak {out['child_peak_rss_mib']} MiB")
            result["input"] = _input(home)
        result["driver_rss_before_dbt_mib"] = peak_rss_mib()  # the dbt child's ru_maxrss starts from this
        profiles = profiles_dir(work, args.duckdb_memory_limit)
        result["duckdb_memory_limit"] = args.duckdb_memory_limit  # None: DuckDB's default (80 % of RAM)
        parse = run_dbt("parse", home, work, profiles=profiles)
        result["stages"]["dbt_parse"] = parse["seconds"]
        result["stage_details"]["dbt_parse"] = parse
        if parse.get("failure"):
            raise StageError("dbt_parse", parse["failure"], parse)
        build = run_dbt("build", home, work, timeout=args.dbt_timeout, profiles=profiles)
        result["dbt_build"] = build
        result["stages"]["dbt_build"] = build["seconds"]
        log(f"dbt build: {build['seconds']} s wall, {build['cpu_seconds']} CPU s, peak {build['peak_rss_mib']} MiB; "
            f"PASS={build.get('pass')} WARN={build.get('warn')} ERROR={build.get('error')}")
        result["marts"] = mart_rows(home)
        result["warehouse_mib"] = round((home / "warehouse.duckdb").stat().st_size / 2**20, 1)
        if build.get("failure") or build.get("error"):
            raise StageError("dbt_build", build.get("failure") or f"dbt build: ERROR={build['error']}", build)
        if any(result["marts"].get(m) is None or build.get("mart_status", {}).get(m) != "success" for m in MARTS):
            raise StageError("marts", f"missing marts: {result['marts']}", result["marts"])
        result["completed"] = True
    except StageError as e:
        log(f"FAILED in {e.stage}: {e.error}")
        result["failed"] = {"stage": e.stage, "error": e.error}
        if e.stage in STAGES:
            result["stage_details"][e.stage] = e.partial
    finally:
        result["total_seconds"] = round(time.perf_counter() - t_all, 1)
        result["machine"]["loadavg_1_5_15_end"] = [round(x, 2) for x in os.getloadavg()]
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, default=str), flush=True)
    if not result["completed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
