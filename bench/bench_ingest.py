"""Benchmark of ingestion (issue "ingestion"): one big envelope through the landing zone.

Targets: >= 80,000 records/s end to end (issue 12; 50,000 before) for a 1,000,000-row extract; peak memory < 2 GiB.

1. build: a synthetic population (``--base-persons``, default 100,000) gives a base set of
   ``hospital_a/patients`` rows (Epic-style layout). They are replicated to ``--rows`` rows (default
   1,000,000) with fresh unique MRNs. Copies after the first are not exact: each copy permutes name,
   DOB, race/ethnicity and address columns independently across rows, draws a fresh valid SSN for every row
   that has one and a fresh house number for every address, so the high-cardinality columns stay
   high-cardinality as in a real extract (a real million-patient file holds ~a million distinct SSNs and
   addresses). Bench-only data: never for linkage quality.
2. encode with the partner kit (``encode_extract``) and seal with ``seal_envelope`` (both timed, for
   information; the kit has its own benchmark, bench_kit.py).
3. ingest: ``landing.ingest.ingest_envelope`` in a fresh child process, so its peak RSS
   (``ru_maxrss``) is ingestion's alone. The child first times its imports: the project's modules, then
   ``import great_expectations`` and the GX context (both one-off per process, ~seconds), then runs
   the ingestion. records/s is reported with and without that one-off GX setup.

Prints one JSON object on stdout; progress on stderr.

    .venv/bin/python bench/bench_ingest.py [--rows 1000000] [--base-persons 100000] [--workdir DIR] [--keep]
        [--profile]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib  # noqa: E402
from benchlib import log, rate  # noqa: E402

TARGET_RECORDS_PER_S = 80_000  # issue 12: with the plaintext checks of the landing zone
TARGET_PEAK_MIB = 2048
PARTNER, EXTRACT, PERIOD = "hospital_a", "patients", "2025-11"
TODAY = date(2026, 1, 31)
#: columns permuted together across rows in each copy (kept together: a name and its sex code)
PERMUTE_GROUPS = (("PAT_FIRST_NAME", "PAT_MIDDLE_NAME", "SEX_C"), ("PAT_LAST_NAME",), ("BIRTH_DATE",),
                  ("RACE_CODE", "ETHNIC_CODE"), ("ADD_LINE_1", "ZIP"))


# ------------------------------------------------------------------------------------------------ build
def build_extract(home: Path, rows: int, base_persons: int, seed: int, out_csv: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from synthetic import SynthConfig, generate

    t0 = time.perf_counter()
    synth_home = home.parent / "base"
    generate(SynthConfig(persons=base_persons, seed=seed, periods=(PERIOD,)), synth_home)
    synth_s = time.perf_counter() - t0
    base = pd.read_csv(synth_home / "partners" / PARTNER / PERIOD / "patients.csv", dtype=str,
                       keep_default_na=False)
    shutil.rmtree(synth_home, ignore_errors=True)
    missing = [c for g in PERMUTE_GROUPS for c in g if c not in base.columns]
    if missing:
        raise SystemExit(f"hospital_a patients layout changed: no columns {missing}")
    n0 = len(base)
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(math.ceil(rows / n0)):
        m = min(n0, rows - k * n0)
        if k == 0:
            parts.append(base.iloc[:m].reset_index(drop=True))
            continue
        df = pd.DataFrame(index=pd.RangeIndex(m))
        for group in PERMUTE_GROUPS:
            idx = rng.permutation(n0)[:m]
            for c in group:
                df[c] = base[c].to_numpy()[idx]
        has_ssn = (base["SSN"].to_numpy()[rng.permutation(n0)[:m]] != "")
        area = rng.integers(1, 900, m)
        area[area == 666] = 667
        num = area * 10**6 + rng.integers(1, 100, m) * 10**4 + rng.integers(1, 10_000, m)
        df["SSN"] = np.where(has_ssn, pd.Series(num).astype(str).str.zfill(9).to_numpy(dtype=object), "")
        addr = df["ADD_LINE_1"].astype(str)
        numbered = addr.str.match(r"^\d+ ").to_numpy(dtype=bool)
        fresh = pd.Series(rng.integers(1, 10_000, m)).astype(str) + addr.str.replace(r"^\d+", "", regex=True)
        df["ADD_LINE_1"] = np.where(numbered, fresh.to_numpy(dtype=object), addr.to_numpy(dtype=object))
        parts.append(df)
    big = pd.concat(parts, ignore_index=True)
    big["MRN"] = (1_000_000_000 + rng.permutation(rows)).astype(str)  # 10 digits, unique
    big = big[list(base.columns)]
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    big.to_csv(out_csv, index=False)
    distinct = {c: int(big[c].nunique()) for c in ("PAT_FIRST_NAME", "PAT_LAST_NAME", "BIRTH_DATE", "SSN",
                                                   "ADD_LINE_1")}
    return {"rows": len(big), "base_persons": base_persons, "base_rows": n0, "copies": len(parts),
            "distinct_values": distinct, "csv_mib": round(out_csv.stat().st_size / 2**20, 1),
            "seconds": round(time.perf_counter() - t0, 3), "synth_seconds": round(synth_s, 3)}


def encode_and_seal(home: Path, csv_path: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    import pyarrow.parquet as pq

    from envelope.format import seal_envelope
    from envelope.keys import PartnerKeyRing
    from partner_kit import Encoder, encode_extract, load_profile
    from partner_kit.geocode import site_address_points
    from workspace import Home

    h = Home(home)
    keyring = PartnerKeyRing(h.partner_keys(PARTNER))
    encoder = Encoder(keyring.linkage_secret())
    profile = load_profile(PARTNER, EXTRACT)
    dest = h.partner_out(PARTNER) / PERIOD / f"{EXTRACT}.parquet"
    c0, t0 = time.process_time(), time.perf_counter()
    s = encode_extract(profile, csv_path, dest, encoder, today=TODAY,
                       address_points=site_address_points(profile, h.partner_site(PARTNER).reference, missing_ok=True))
    enc = {"rows_read": s.rows_read, "rows_encoded": s.rows_encoded, "rejected": dict(s.rejected),
           "seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(time.process_time() - c0, 3),
           "payload_mib": round(dest.stat().st_size / 2**20, 1)}
    enc["records_per_s_wall"] = rate(s.rows_read, enc["seconds"])
    enc["records_per_cpu_s"] = rate(s.rows_read, enc["cpu_seconds"])
    c0, t0 = time.process_time(), time.perf_counter()
    params = encoder.params
    env = seal_envelope(dest, partner=PARTNER, extract_type=EXTRACT, period=PERIOD,
                        schema_version=profile.schema_version, row_count=pq.ParquetFile(dest).metadata.num_rows,
                        linkage_key_version=encoder.key_version, keyring=keyring, out_dir=h.landing(PARTNER),
                        extra={"bloom_bits": params.bloom_bits, "bloom_k": params.bloom_k, "kit": "vpdc-ids bench"})
    seal = {"seconds": round(time.perf_counter() - t0, 3), "cpu_seconds": round(time.process_time() - c0, 3),
            "envelope_mib": round(env.stat().st_size / 2**20, 1)}
    return env, enc, seal


# ------------------------------------------------------------------------------------------------ children
def child_prepare(home: Path, rows: int, base_persons: int, seed: int) -> dict[str, Any]:
    csv_path = home / "partners" / PARTNER / PERIOD / "patients.csv"
    build = build_extract(home, rows, base_persons, seed, csv_path)
    env, enc, seal = encode_and_seal(home, csv_path)
    csv_path.unlink()  # not needed any more: keep the disk footprint down
    return {"build": build, "encode": enc, "seal": seal, "envelope": str(env),
            "prepare_peak_rss_mib": benchlib.peak_rss_mib()}


def child_ingest(home: Path, envelope: Path, profile_run: bool) -> dict[str, Any]:
    t = time.perf_counter()
    from envelope.keys import WarehouseKeyRing
    from landing.ingest import ingest_envelope
    from workspace import Home

    project_import_s = time.perf_counter() - t
    rss_after_project = benchlib.vm_hwm_mib()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # as landing.validation._gx does
    t = time.perf_counter()
    import great_expectations  # noqa: F401

    gx_import_s = time.perf_counter() - t
    t = time.perf_counter()
    from landing.validation import _gx

    _gx()  # the cached ephemeral GX context ingestion uses (one-off per process)
    gx_context_s = time.perf_counter() - t
    rss_after_setup = benchlib.vm_hwm_mib()

    prof = None
    if profile_run:
        import cProfile

        prof = cProfile.Profile()
    sampler = benchlib.RssSampler()
    sampler.start()
    c0, t0 = time.process_time(), time.perf_counter()
    if prof is not None:
        prof.enable()
    outcome = ingest_envelope(envelope, Home(home), WarehouseKeyRing(home / "keys"), now=datetime.now(UTC),
                              expected_partner=PARTNER)
    if prof is not None:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sampler.stop()
    # stages run one after the other (open, detect, validate, load): attribute the sampled peak RSS to each
    stage_peak, start = {}, t0
    for stage, secs in outcome.seconds.items():
        stage_peak[stage] = sampler.peak_between(start, start + secs)
        start += secs
    out = {
        "status": outcome.status, "check": outcome.check, "detail": outcome.detail[:500], "rows": outcome.rows,
        "stage_seconds": {k: round(v, 3) for k, v in outcome.seconds.items()},
        "ingest_seconds": round(wall, 3), "ingest_cpu_seconds": round(cpu, 3),
        "project_import_seconds": round(project_import_s, 3), "gx_import_seconds": round(gx_import_s, 3),
        "gx_context_seconds": round(gx_context_s, 3),
        "rss_mib_after_imports": rss_after_project, "rss_mib_after_gx_setup": rss_after_setup,
        "sampled_peak_rss_mib_by_stage": stage_peak,
        **benchlib.child_usage(),
    }
    if prof is not None:
        out["profiled"] = True
        out["profile_top_tottime"] = benchlib.profile_top(prof)
    return out


def _zone_counts(home: Path) -> dict[str, int | None]:
    import duckdb

    out: dict[str, int | None] = {}
    for name, db, sql in (("linkage_encodings", home / "linkage.duckdb", "select count(*) from encodings"),
                          ("warehouse_raw", home / "warehouse.duckdb",
                           f"select count(*) from raw.{PARTNER}__{EXTRACT}")):
        try:
            with duckdb.connect(str(db), read_only=True) as con:
                out[name] = con.execute(sql).fetchone()[0]
        except Exception:  # noqa: BLE001 - a missing table is reported as None
            out[name] = None
    return out


# ------------------------------------------------------------------------------------------------ driver
def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(args.workdir) if args.workdir else None
    if base:
        base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vpdc-bench-ingest-", dir=base))
    home = work / "home"
    result: dict[str, Any] = {"benchmark": "ingest", "machine": benchlib.machine(),
                              "extract": f"{PARTNER}/{EXTRACT}"}
    try:
        from benchlib import demo_keys

        from workspace import Home

        Home(home).ensure()
        demo_keys(home)
        me = [sys.executable, str(Path(__file__).resolve())]
        log(f"build: {args.rows:,} {PARTNER}/{EXTRACT} rows from {args.base_persons:,} synthetic persons; "
            "encode; seal (in a child process, so this driver stays small)")
        prep = benchlib.run_child([*me, "--child", "prepare", "--home", str(home), "--rows", str(args.rows),
                                   "--base-persons", str(args.base_persons), "--seed", str(args.seed)])
        env = Path(prep.pop("envelope"))
        prep["prepare_process_seconds"] = prep.pop("process_wall_seconds", None)
        result.update(prep)
        log(f"ingest {env.name} in a fresh process (driver peak RSS so far {benchlib.peak_rss_mib()} MiB)")
        child = [*me, "--child", "ingest", "--home", str(home), "--envelope", str(env)]
        if args.profile:
            child.append("--profile")
        ing = benchlib.run_child(child)
        result["ingest"] = ing
        result["zones"] = _zone_counts(home)
        rows = ing["rows"]
        setup = ing["gx_import_seconds"] + ing["gx_context_seconds"]
        stages = ing["stage_seconds"]
        wall = ing["ingest_seconds"]
        result["ingest"]["stage_seconds"]["other"] = round(wall - sum(stages.values()), 3)
        result["ingest"]["validation_share"] = round(stages.get("validate", 0.0) / wall, 3) if wall else None
        result["ingest"]["cpu_per_wall"] = round(ing["ingest_cpu_seconds"] / wall, 3) if wall else None
        result["ingest"]["records_per_s_excluding_gx_setup"] = rate(rows, wall)
        result["ingest"]["records_per_s_including_gx_setup"] = rate(rows, wall + setup)
        result["ingest"]["records_per_cpu_s"] = rate(rows, ing["ingest_cpu_seconds"])
        ok = ing["status"] == "loaded"
        result["target"] = {
            "records_per_s": TARGET_RECORDS_PER_S, "peak_rss_mib": TARGET_PEAK_MIB,
            "loaded": ok,
            "met_records_per_s_excluding_gx_setup": ok and rows / wall >= TARGET_RECORDS_PER_S,
            "met_records_per_s_including_gx_setup": ok and rows / (wall + setup) >= TARGET_RECORDS_PER_S,
            "met_peak_rss": ing["peak_rss_mib"] < TARGET_PEAK_MIB,
            "rows": rows, "rows_requested": args.rows,
        }
        result["workdir"] = str(work) if args.keep else None
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the extract (default 1,000,000)")
    ap.add_argument("--base-persons", type=int, default=100_000,
                    help="synthetic persons whose hospital_a patients are replicated (default 100,000)")
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--workdir", help="parent of the temporary working directory (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    ap.add_argument("--profile", action="store_true",
                    help="run the ingestion under cProfile and add the top functions (timings are inflated)")
    ap.add_argument("--child", choices=["prepare", "ingest"], help=argparse.SUPPRESS)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    ap.add_argument("--envelope", help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child == "prepare":
        print(json.dumps(child_prepare(Path(args.home), args.rows, args.base_persons, args.seed)))
    elif args.child == "ingest":
        print(json.dumps(child_ingest(Path(args.home), Path(args.envelope), args.profile)))
    else:
        print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
