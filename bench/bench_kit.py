"""Benchmark of the partner kit ("Foundation"): synthetic data, encoding on one core, clkhash beside it.

Target: full encoding of person records at >= 100,000 records/s on ONE core.

1. synth: ``synthetic.generate`` of N persons (default 100,000) in a fresh process: persons, person
   records, event rows, seconds (wall and CPU), persons/s, peak RSS.
2. encode: every partner's person extract(s) of that run through ``encode_extract``, in a fresh
   process pinned to one CPU (``os.sched_setaffinity(0, {cpu})``): CPU seconds and wall, records/s
   overall and per partner, peak RSS. One ``Encoder`` per partner (each partner runs its own kit).
   Twice: as a site's first run (the county address list normalised into its lookup: ``encode``, what
   the target is judged on) and as a monthly run (the lookup reused: ``encode_monthly``).
3. clkhash: the same person records, parsed from the raw files of all partners into one CSV
   (record_id, first_name, last_name, dob YYYY-MM-DD, sex, zip), through
   ``bench/peers/clk_encode.py --single-core`` (also pinned to one CPU) and its default mode
   (clkhash's own worker processes), in the peers' venv (``.venv-bench``).

Prints one JSON object on stdout; progress on stderr.

    .venv/bin/python bench/bench_kit.py [--persons 100000] [--seed 20261121] [--workdir DIR] [--keep]
        [--no-clkhash] [--profile] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from benchlib import BENCH, BENCH_PYTHON, log, rate  # noqa: E402

TARGET_ONE_CORE = 100_000
CLK_SECRET = "vpdc-bench-clk-secret-not-for-production"
DEFAULT_PERIODS = ("2025-11", "2025-12")
TODAY = date(2026, 1, 31)  # fixed clock: after the default periods, so runs are reproducible


# ---------------------------------------------------------------------------------------------- children
def child_synth(home: Path, persons: int, seed: int, periods: tuple[str, ...]) -> dict[str, Any]:
    import numpy as np  # noqa: F401  (imports are not part of the measurement)

    from synthetic import SynthConfig, generate
    from synthetic.layouts import PERSON_EXTRACT

    c0, t0 = time.process_time(), time.perf_counter()
    summary = generate(SynthConfig(persons=persons, seed=seed, periods=periods), home)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    records = summary["records"]
    person_records = {p: sum(records[p][PERSON_EXTRACT[p]].values()) for p in records}
    events = {f"{p}/{x}": sum(v.values()) for p, ex in records.items() for x, v in ex.items()
              if x != PERSON_EXTRACT[p]}
    return {
        "persons": persons, "seed": seed, "periods": list(periods),
        "person_records": summary["person_records"], "person_records_by_partner": person_records,
        "event_rows": sum(events.values()), "event_rows_by_extract": events,
        "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
        "persons_per_s": rate(persons, wall), "persons_per_cpu_s": rate(persons, cpu),
        **benchlib.child_usage(),
    }


def child_encode(home: Path, periods: tuple[str, ...], profile_run: bool, keep_lookup: bool = False) -> dict[str, Any]:
    cpu_pinned = benchlib.pin_one_core()
    t_imp = time.perf_counter()
    import pandas  # noqa: F401  pyarrow imports it lazily on the first pa.array(): a one-off, kept out of the rates

    from envelope.keys import Custodian
    from partner_kit import Encoder, encode_extract, extract_types, load_profile
    from partner_kit.geocode import site_address_points
    from partner_kit.profiles import partners
    from workspace import Home

    import_s = time.perf_counter() - t_imp
    h = Home(home)
    # a site's first run (the default): the county list's normalised lookup (kept beside the list,
    # partner_kit.geocode) is built on the first period and reused on the second; a monthly run (keep_lookup)
    # finds it built by an earlier run, as every run does until the county publishes a new list
    if not keep_lookup:
        for cached in h.root.glob("partners/*/reference/.*.lookup.parquet"):
            cached.unlink()
    keyring = Custodian(h.custodian)  # the same secret every partner holds
    prof = None
    if profile_run:
        import cProfile

        prof = cProfile.Profile()
    per: dict[str, dict[str, Any]] = {}
    tot = {"rows_read": 0, "rows_encoded": 0, "rows_rejected": 0, "cpu": 0.0, "wall": 0.0, "bytes_in": 0,
           "bytes_out": 0}
    for partner in tuple(partners()):
        encoder = Encoder(keyring.linkage_secret())  # one kit run per partner: caches start empty
        for extract in extract_types(partner):
            profile = load_profile(partner, extract)
            if profile.kind != "persons":
                continue
            row = per.setdefault(partner, {"extract": extract, "files": 0, "rows_read": 0, "rows_encoded": 0,
                                           "rows_rejected": 0, "rejected": {}, "cpu_seconds": 0.0, "seconds": 0.0,
                                           "bytes_in": 0, "bytes_out": 0})
            for period in periods:
                src = h.partner_raw(partner) / period / profile.file
                if not src.exists():
                    continue
                dest = h.partner_out(partner) / period / f"{extract}.parquet"
                c0, t0 = time.process_time(), time.perf_counter()
                if prof is not None:
                    prof.enable()
                s = encode_extract(profile, src, dest, encoder, today=TODAY,
                                   address_points=site_address_points(profile, h.partner_site(partner).reference))
                if prof is not None:
                    prof.disable()
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                d = s.as_dict()
                row["files"] += 1
                row["rows_read"] += d["rows_read"]
                row["rows_encoded"] += d["rows_encoded"]
                row["rows_rejected"] += d["rows_rejected"]
                for k, v in d["rejected"].items():
                    row["rejected"][k] = row["rejected"].get(k, 0) + v
                row["cpu_seconds"] += cpu
                row["seconds"] += wall
                row["bytes_in"] += src.stat().st_size
                row["bytes_out"] += dest.stat().st_size
    for partner, row in per.items():
        row["records_per_cpu_s"] = rate(row["rows_read"], row["cpu_seconds"])
        row["records_per_s_wall"] = rate(row["rows_read"], row["seconds"])
        row["cpu_seconds"], row["seconds"] = round(row["cpu_seconds"], 3), round(row["seconds"], 3)
        tot["rows_read"] += row["rows_read"]
        tot["rows_encoded"] += row["rows_encoded"]
        tot["rows_rejected"] += row["rows_rejected"]
        tot["cpu"] += row["cpu_seconds"]
        tot["wall"] += row["seconds"]
        tot["bytes_in"] += row["bytes_in"]
        tot["bytes_out"] += row["bytes_out"]
    out = {
        "pinned_cpu": cpu_pinned, "cores_usable": len(os.sched_getaffinity(0)),
        "records": tot["rows_read"], "rows_encoded": tot["rows_encoded"], "rows_rejected": tot["rows_rejected"],
        "cpu_seconds": round(tot["cpu"], 3), "seconds": round(tot["wall"], 3),
        "cpu_per_wall": round(tot["cpu"] / tot["wall"], 3) if tot["wall"] else None,
        "records_per_cpu_s": rate(tot["rows_read"], tot["cpu"]),
        "records_per_s_wall": rate(tot["rows_read"], tot["wall"]),
        "input_mib": round(tot["bytes_in"] / 2**20, 1), "output_mib": round(tot["bytes_out"] / 2**20, 1),
        "import_seconds": round(import_s, 3),
        "by_partner": per,
        **benchlib.child_usage(),
    }
    if prof is not None:
        out["profiled"] = True
        out["profile_top_tottime"] = benchlib.profile_top(prof)
    return out


# ------------------------------------------------------------------------------------------- clkhash input
def write_clk_input(home: Path, periods: tuple[str, ...], out_csv: Path) -> dict[str, Any]:
    """One CSV in clk_encode's layout from the raw person files of every partner, parsed per the
    partner's profile (column names, date format, sex codes). hospital_b's ``LAST, FIRST MIDDLE``
    becomes last = before the comma, first = the first word after it."""
    import pandas as pd

    from partner_kit import extract_types, load_profile
    from partner_kit.profiles import partners

    frames, counts, dob_bad = [], {}, 0
    for partner in tuple(partners()):
        for extract in extract_types(partner):
            profile = load_profile(partner, extract)
            if profile.kind != "persons":
                continue
            ids = profile.identifiers
            for period in periods:
                src = home / "partners" / partner / period / profile.file
                if not src.exists():
                    continue
                df = pd.read_csv(src, sep=profile.delimiter, dtype=str, keep_default_na=False)
                rid_cols = profile.record_id["columns"]
                rid = partner + ":" + df[rid_cols[0]].str.cat([df[c] for c in rid_cols[1:]], sep="|")
                if ids.get("formatted_name"):
                    parts = df[ids["formatted_name"]].str.split(",", n=1, expand=True).reindex(columns=[0, 1])
                    last = parts[0].fillna("").str.strip()
                    first = parts[1].fillna("").str.strip().str.split().str[0].fillna("")
                else:
                    first, last = df[ids["first_name"]], df[ids["last_name"]]
                raw_dob = df[ids["dob"]].str.strip()
                dob = pd.to_datetime(raw_dob.str.upper(), format=ids.get("dob_format", "%Y-%m-%d"), errors="coerce")
                dob_bad += int(((raw_dob != "") & dob.isna()).sum())
                sex_map = {k: (v or "") for k, v in ids.get("sex_map", {}).items()}
                sex = df[ids["sex"]].map(lambda v: sex_map.get(v.strip(), "")) if ids.get("sex") else ""
                frames.append(pd.DataFrame({
                    "record_id": rid, "first_name": first, "last_name": last,
                    "dob": dob.dt.strftime("%Y-%m-%d").fillna(""), "sex": sex,
                    "zip": df[ids["zip"]] if ids.get("zip") else "",
                }))
                counts[partner] = counts.get(partner, 0) + len(df)
    allrows = pd.concat(frames, ignore_index=True)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    allrows.to_csv(out_csv, index=False)
    return {"records": len(allrows), "by_partner": counts, "dob_unparsed_by_export": dob_bad,
            "file_mib": round(out_csv.stat().st_size / 2**20, 1)}


def run_clkhash(csv_path: Path, pin_core: int) -> dict[str, Any]:
    if not BENCH_PYTHON.exists():
        return {"skipped": f"{BENCH_PYTHON} not found: run `bash bench/peers/setup.sh` (make bench does)"}
    env = {**os.environ, "BENCH_CLK_SECRET": CLK_SECRET}
    env.pop("VIRTUAL_ENV", None)
    script = str(BENCH / "peers" / "clk_encode.py")
    out: dict[str, Any] = {}
    for mode, extra, pin in (("single_core", ["--single-core"], pin_core), ("default", [], None)):
        log(f"clkhash {mode} on {csv_path.name}")
        try:
            res = benchlib.run_child([str(BENCH_PYTHON), script, "--input", str(csv_path), *extra], env=env,
                                     pin_core=pin)
            if pin is not None:
                res["pinned_cpu"] = pin
            out[mode] = res
        except Exception as exc:  # a peer failing must not fail our benchmark
            out[mode] = {"skipped": f"clk_encode.py failed: {exc}"}
    return out


# ------------------------------------------------------------------------------------------------- driver
def run(args: argparse.Namespace) -> dict[str, Any]:
    periods = tuple(args.periods)
    base = Path(args.workdir) if args.workdir else None
    if base:
        base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vpdc-bench-kit-", dir=base))
    home = work / "home"
    me = [sys.executable, str(Path(__file__).resolve())]
    result: dict[str, Any] = {"benchmark": "kit", "machine": benchlib.machine()}
    try:
        benchlib.demo_keys(home)  # (envelope.keys.init_keys was renamed init_demo_keys; this bench was left behind)
        log(f"synth: {args.persons:,} persons into {home}")
        result["synth"] = benchlib.run_child([*me, "--child", "synth", "--home", str(home), "--persons",
                                             str(args.persons), "--seed", str(args.seed), "--periods", *periods])
        log(f"encode: {result['synth']['person_records']:,} person records on one core")
        child = [*me, "--child", "encode", "--home", str(home), "--periods", *periods]
        if args.profile:
            child.append("--profile")
        pin = min(os.sched_getaffinity(0))
        # Shared 2-core VMs vary run to run by +-15%: run the same encoding N times, each in a fresh
        # process, and report the median run (by records per CPU second) with the spread beside it.
        runs = [benchlib.run_child(child) for _ in range(max(1, args.repeat))]
        runs.sort(key=lambda r: r["records_per_cpu_s"] or 0)
        result["encode"] = {**runs[len(runs) // 2], "repeats": len(runs), "lookup": "built (a site's first run)",
                            "records_per_cpu_s_all_runs": [r["records_per_cpu_s"] for r in runs]}
        # the same encoding as a monthly run: the county address list's lookup already built (by the runs above)
        log("encode again: monthly runs (address-list lookup built)")
        monthly = [benchlib.run_child([*child, "--keep-lookup"]) for _ in range(max(1, args.repeat))]
        monthly.sort(key=lambda r: r["records_per_cpu_s"] or 0)
        result["encode_monthly"] = {**monthly[len(monthly) // 2], "repeats": len(monthly),
                                    "lookup": "reused (every later run)",
                                    "records_per_cpu_s_all_runs": [r["records_per_cpu_s"] for r in monthly]}
        if args.no_clkhash:
            result["clkhash"] = {"skipped": "--no-clkhash"}
        elif not BENCH_PYTHON.exists():
            result["clkhash"] = run_clkhash(Path("/nonexistent"), pin)
        else:
            csv_path = work / "clk_input.csv"
            log("clkhash: exporting the same person records")
            result["clkhash"] = {"input": write_clk_input(home, periods, csv_path), **run_clkhash(csv_path, pin)}
        enc = result["encode"]
        result["target"] = {
            "encode_records_per_s_one_core": TARGET_ONE_CORE,
            "measured_records_per_cpu_s": enc["records_per_cpu_s"],
            "measured_records_per_s_wall": enc["records_per_s_wall"],
            "met": bool(enc["records_per_cpu_s"] and enc["records_per_cpu_s"] >= TARGET_ONE_CORE),
            "met_wall": bool(enc["records_per_s_wall"] and enc["records_per_s_wall"] >= TARGET_ONE_CORE),
            "measured_records_per_cpu_s_monthly": result["encode_monthly"]["records_per_cpu_s"],
            "met_monthly": bool(result["encode_monthly"]["records_per_cpu_s"]
                                and result["encode_monthly"]["records_per_cpu_s"] >= TARGET_ONE_CORE),
            "basis": "records per CPU second of the pinned process on a site's first run, the county address list "
                     "normalised (met); per wall second (met_wall); on a monthly run, its lookup reused (met_monthly)",
        }
        single = result.get("clkhash", {}).get("single_core", {})
        if single.get("records_per_s"):
            result["target"]["vs_clkhash_single_core_wall"] = round(enc["records_per_s_wall"] / single["records_per_s"], 2)
        result["workdir"] = str(work) if args.keep else None
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=100_000, help="synthetic persons (default 100,000)")
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--periods", nargs="+", default=list(DEFAULT_PERIODS), help="extract months YYYY-MM")
    ap.add_argument("--workdir", help="parent of the temporary working directory (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    ap.add_argument("--no-clkhash", action="store_true", help="skip the clkhash comparison")
    ap.add_argument("--repeat", type=int, default=3, help="encoding runs, each in a fresh process; the median "
                                                          "is reported (default 3)")
    ap.add_argument("--profile", action="store_true",
                    help="run the encoding under cProfile and add the top functions (timings are inflated)")
    ap.add_argument("--keep-lookup", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child", choices=["synth", "encode"], help=argparse.SUPPRESS)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child == "synth":
        print(json.dumps(child_synth(Path(args.home), args.persons, args.seed, tuple(args.periods))))
    elif args.child == "encode":
        print(json.dumps(child_encode(Path(args.home), tuple(args.periods), args.profile, args.keep_lookup)))
    else:
        print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
