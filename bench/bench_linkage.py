"""Benchmark of linkage (issue "linkage"): this pipeline on encodings vs plaintext Splink vs clkhash + anonlink.

One run links the SAME records four ways and prints one JSON object per dataset (stdout; progress on stderr).
Every system gets the same fields: first and last name, date of birth, sex, ZIP, SSN, street address, middle
initial and suffix (where the source has them; blank = missing).

* ``vpdc_encodings``: the project's linkage (``linkage.run.run_linkage``, mode="full") over the linkage zone
  built by the real partner kit and landing zone (synthetic extracts → ``encode_and_send_all`` →
  ``landing.ingest.ingest_envelope`` per envelope; ingestion is preparation, not timed as linkage). With it:
  ``error_estimate`` (the run's own held-out-SSN estimate of precision and recall beside the true figures) and
  ``held_apart_as_siblings``. Its sweep clusters as the run does (sibling rule included). vpdc keeps scored pairs
  from 0.5; when its best F1 sits at that floor, a second, untimed run keeping pairs from 0.01
  (``thresholds_below_floor``) carries the sweep below it.
* ``splink_plaintext``: Splink 5 (DuckDB) on the plaintext identifiers of the same native extracts, with the
  project's settings. The plaintext is normalised with the kit's own normalisers (``partner_kit.normalise``: case,
  accents, punctuation, particles, suffixes, SSN/ZIP/address, the partner's date format), so the only
  difference from (a) is comparing plaintext instead of keyed encodings. The model mirrors the project's
  (same structure, blocking rules and training), with plaintext fuzzy levels: Jaro-Winkler on names instead
  of Bloom-filter Dice, Damerau-Levenshtein on DOB and SSN strings, Jaro-Winkler on address.
* ``splink_plaintext_published``: plaintext Splink with the settings of Splink's own FEBRL4 example (Splink's
  library comparisons with term frequencies, its blocking and training; :func:`published_settings`), the same
  fields: the "best settings" side of issue 13 beside the project's.
* ``anonlink``: clkhash CLKs (bench/peers/clk_schema.json: first, last, dob, sex, zip, SSN, address, middle
  initial, suffix) of the same normalised values, one CLK file per source, linked multi-party with anonlink's
  greedy solver (bench/peers/), at every Dice threshold of ``--anonlink-thresholds`` (0.5-0.95), keeping
  ``--anonlink-k`` candidates per record and dataset pair. Its candidate search is quadratic and unblocked:
  skipped above ``--skip-anonlink-above`` records.

Thresholds: each Splink-based system is clustered at every threshold of :data:`SWEEP` (0.01 to 0.999999) and
anonlink at every point of its Dice grid; ``thresholds`` holds the figures at the system's chosen threshold
(0.9 for the Splink systems, 0.8 for anonlink), at its best one and whether that best sits at an end of the grid.
``side_by_side`` puts all of it in one object per system.

Every system runs in its own child process: ``seconds``/``cpu_seconds`` cover linkage only (model training,
scoring, clustering; for anonlink: loading CLKs, candidate search, solving), ``peak_rss_mb`` is the child's
``ru_maxrss`` (for the peers, the max over the child process tree reported by ``wait4``). Encoding
(kit / clkhash) is reported separately where measured. Quality is measured the same way for all against
the simulator's truth, over ALL person records of the extracts: a record a system did not output (the kit
rejects rows with no name; anonlink leaves unmatched records out) counts as a singleton.
``precision/recall/f1`` are pairwise over all record pairs (within and across sources, as
``scoring.linkage.pairwise_metrics``); ``f1_cross_source`` only over pairs of different sources (anonlink
never links within a source); ``cluster_f1`` is exact-cluster F1 (``scoring.linkage.cluster_metrics``).

Incremental: on a copy of the linkage zone, 10 % of the person records (a fixed hash of their id) are held
out; a full run links the other 90 %; the held-out rows are put back and ``run_linkage(mode="auto")`` runs
incrementally (saved model, new records only). ratio = incremental seconds / full seconds.

FEBRL4 (``--febrl``): bench/peers/febrl.py exports A and B; A is written as a police ``persons.csv``
(PERSON_ID, FNAME, LNAME, DOB YYYYMMDD, ADDRESS, ZIP, SSN, ...) and B as a hospital_a ``patients.csv``
(MRN, PAT_FIRST_NAME, ..., BIRTH_DATE YYYY-MM-DD); then the real kit + landing zone as for synthetic data.
Bench-only mapping (identical for all systems): ZIP = "0" + the 4-digit postcode (the profiles require
5 digits), SSN = "10" + the 7-digit soc_sec_id (the kit keeps 9-digit SSNs only), address = street number +
address_1, no sex, middle name or suffix (FEBRL has none; the warehouse's 10 % null ceiling on enc_sex is lifted
for FEBRL only, in the bench's child process). The hospital's kit geocodes against an address-points file: the
bench writes FEBRL B's own addresses into it (one stand-in tract; content only, no part of linkage).

    .venv/bin/python bench/bench_linkage.py --persons 20000 [--persons 1000000] [--febrl] [--seed S]
        [--skip-anonlink-above 200000] [--anonlink-thresholds 0.5,0.55,...,0.95] [--anonlink-k 100]
        [--systems vpdc,splink,anonlink,incremental] [--no-low-floor]
        [--workdir DIR] [--keep] [--reuse DIR] [--profile]

``--systems``: ``splink`` runs both plaintext settings (``splink_project`` or ``splink_published`` picks one).
``--reuse DIR`` reuses a prepared dataset directory kept by an earlier ``--keep`` run (its ``home/``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
PEERS = BENCH / "peers"
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

SEED = 20261121
PERIODS = ("2025-11", "2025-12")
TODAY = date(2026, 1, 31)
NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
CLUSTER_THRESHOLD = 0.9  # LinkageParams.cluster_threshold: used for all three systems' clustering
PREDICT_THRESHOLD = 0.5
TARGETS = {"f1_gap_to_plaintext": 0.01, "seconds_1m": 300, "peak_rss_mb_1m": 8 * 1024, "incremental_ratio": 0.20}
CLK_SECRET = "vpdc-bench-linkage-not-a-secret"


def log(msg: str) -> None:
    print(f"[bench-linkage {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "process_cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2)}


class Timer:
    """Wall and process CPU (all threads, so DuckDB's too) of a block."""

    def __enter__(self) -> Self:
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.w, 3)
        self.cpu_seconds = round(time.process_time() - self.c, 3)


# =============================================================================================== children
def run_child(argv: list[str], *, env: dict[str, str] | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Run a command in its own process group; return its last stdout JSON line plus ``wait4`` usage.

    ``child_wall_seconds``/``child_cpu_seconds``/``child_peak_rss_mb`` cover the whole child (imports
    included; ru_maxrss is the max over the child and the descendants it waited for). On timeout the whole
    process group is killed and {"skipped": ...} is returned.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO, start_new_session=True)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    timed_out = False
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if timeout is not None and time.perf_counter() - t0 > timeout and not timed_out:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(10)
    wall = time.perf_counter() - t0
    meta = {"child_wall_seconds": round(wall, 2), "child_cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2),
            "child_peak_rss_mb": round(ru.ru_maxrss / 1024, 1)}
    out = "".join(chunks)
    if timed_out:
        return {"skipped": f"time limit of {timeout:.0f} s reached; killed"} | meta
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv[:4]))} ... exited with {proc.returncode}: {out[-1500:]}")
    for line in reversed(out.strip().splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line) | meta
    raise RuntimeError(f"{argv[:4]}: no JSON on stdout: {out[-500:]}")


def child(stage: str, spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """Run one stage of this file in a fresh project-venv process."""
    return run_child([sys.executable, str(Path(__file__).resolve()), "--child", stage, "--spec", json.dumps(spec)], **kw)


def _profiled(fn: Any, spec: dict[str, Any]) -> dict[str, Any]:
    if not spec.get("profile"):
        return fn(spec)
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        out = fn(spec)
    finally:
        prof.disable()
    st = pstats.Stats(prof)
    rows = [{"function": f"{Path(f).name}:{ln}({fn_})", "calls": nc, "tottime": round(tt, 2), "cumtime": round(ct, 2)}
            for (f, ln, fn_), (cc, nc, tt, ct, _c) in st.stats.items()]  # type: ignore[attr-defined]
    out["profile_top_tottime"] = sorted(rows, key=lambda r: -r["tottime"])[:15]
    return out


# ============================================================================================ preparation
def prepare_synth(spec: dict[str, Any]) -> dict[str, Any]:
    """Keys, synthetic extracts, partner kit (encode + seal), landing-zone ingestion of every envelope."""
    from envelope.keys import WarehouseKeyRing as KeyRing
    from landing.ingest import ingest_envelope
    from synthetic import SynthConfig, generate
    from vpdc.demo import encode_and_send_all
    from workspace import Home

    home = Home(Path(spec["home"])).ensure()
    from benchlib import demo_keys

    demo_keys(home.root)
    out: dict[str, Any] = {}
    with Timer() as t:
        generate(SynthConfig(persons=spec["persons"], seed=spec["seed"], periods=PERIODS), home.root)
    out["synth_seconds"] = t.seconds
    return out | _kit_and_ingest(home, KeyRing, ingest_envelope, encode_and_send_all)


def _kit_and_ingest(home: Any, KeyRing: Any, ingest_envelope: Any, encode_and_send_all: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Timer() as t:
        sent = encode_and_send_all(home, today=TODAY)
    out["kit_seconds"], out["kit_cpu_seconds"] = t.seconds, t.cpu_seconds
    persons = [s for s in sent if s.get("rows_encoded") is not None]
    out["kit_rejected_rows"] = sum(s.get("rows_rejected", 0) for s in persons)
    keyring = KeyRing(home.keys)
    statuses = []
    with Timer() as t:
        for path in sorted(home.landing().glob("*/*.vpdc")):
            o = ingest_envelope(path, home, keyring, now=NOW)
            statuses.append((path.name, o.status, o.check, o.detail[:200]))
    out["ingest_seconds"], out["ingest_cpu_seconds"] = t.seconds, t.cpu_seconds
    bad = [s for s in statuses if s[1] != "loaded"]
    out["envelopes"], out["envelopes_not_loaded"] = len(statuses), bad
    if bad:
        raise RuntimeError(f"envelopes not loaded: {bad}")
    import duckdb

    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        out["linkage_zone_records"] = con.execute("select count(*) from encodings").fetchall()[0][0]
    return out | usage()


def prepare_febrl(spec: dict[str, Any]) -> dict[str, Any]:
    """FEBRL4 A → police persons.csv, B → hospital_a patients.csv; truth.parquet; kit + ingest."""
    import pandas as pd

    from envelope.keys import WarehouseKeyRing as KeyRing
    from landing.ingest import ingest_envelope
    from vpdc.demo import encode_and_send_all
    from workspace import Home

    home = Home(Path(spec["home"])).ensure()
    from benchlib import demo_keys

    demo_keys(home.root)
    src = Path(spec["febrl_dir"])
    a = pd.read_csv(src / "febrl4_a.csv", dtype=str, keep_default_na=False)
    b = pd.read_csv(src / "febrl4_b.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(src / "truth.csv", dtype=str, keep_default_na=False)

    def common(df: pd.DataFrame) -> dict[str, Any]:
        zip_ = df["postcode"].str.strip().map(lambda v: "0" + v if len(v) == 4 and v.isdigit() else "")
        ssn = df["soc_sec_id"].str.strip().map(lambda v: "10" + v if len(v) == 7 and v.isdigit() else "")
        addr = (df["street_number"].str.strip() + " " + df["address_1"].str.strip()).str.strip()
        return {"zip": zip_, "ssn": ssn, "addr": addr}

    ids_a = {r: f"P{100000000 + i}" for i, r in enumerate(a["record_id"])}
    ids_b = {r: f"{1000000000 + i}" for i, r in enumerate(b["record_id"])}
    ca, cb = common(a), common(b)
    period = PERIODS[0]
    police = pd.DataFrame({
        "PERSON_ID": a["record_id"].map(ids_a), "LNAME": a["surname"], "FNAME": a["given_name"], "MNAME": "",
        "SFX": "", "DOB": a["date_of_birth"], "SEX": "U", "RACE": "U", "ETHNICITY": "U", "SSN": ca["ssn"],
        "ADDRESS": ca["addr"], "ZIP": ca["zip"]})
    hosp = pd.DataFrame({
        "MRN": b["record_id"].map(ids_b), "PAT_FIRST_NAME": b["given_name"], "PAT_MIDDLE_NAME": "",
        "PAT_LAST_NAME": b["surname"],
        "BIRTH_DATE": b["date_of_birth"].map(lambda v: f"{v[:4]}-{v[4:6]}-{v[6:]}" if len(v) == 8 else ""),
        "SEX_C": "3", "SSN": cb["ssn"], "RACE_CODE": "UNK", "ETHNIC_CODE": "UNK", "ADD_LINE_1": cb["addr"],
        "ZIP": cb["zip"]})
    from partner_kit import load_profile
    from scoring.linkage import PERSON_EXTRACTS

    for partner, file, df in (("police", "persons.csv", police), ("hospital_a", "patients.csv", hosp)):
        d = home.partner_raw(partner) / period
        d.mkdir(parents=True, exist_ok=True)
        df.to_csv(d / file, index=False)
        # a hospital's kit looks each patient's address up in the county's address points and sends the tract
        # (content only, no part of linkage): FEBRL's own addresses, all in one stand-in tract
        geo = load_profile(partner, PERSON_EXTRACTS[partner]).geocode
        if geo:
            ref = d.parent / "reference" / geo["reference"]
            ref.parent.mkdir(parents=True, exist_ok=True)
            addr_col = "ADD_LINE_1" if "ADD_LINE_1" in df else "ADDRESS"
            pts = pd.DataFrame({"address": df[addr_col], "zip": df["ZIP"], "tract": "37000000100"})
            pts[(pts["address"] != "") & (pts["zip"] != "")].drop_duplicates().to_csv(ref, index=False)
    idmap = {("febrl4_a", k): ("police", v) for k, v in ids_a.items()} | {
        ("febrl4_b", k): ("hospital_a", v) for k, v in ids_b.items()}
    rows = [(*idmap[(d, r)], e) for d, r, e in truth[["dataset", "record_id", "entity_id"]].itertuples(index=False)]
    t = pd.DataFrame(rows, columns=["source", "record_id", "person_id"])
    t["race_eth"], t["sex"], t["birth_year"], t["noise"] = None, None, None, None
    t = t.astype({"race_eth": "string", "sex": "string", "birth_year": "Int16", "noise": "string"})
    home.truth.mkdir(parents=True, exist_ok=True)
    t.to_parquet(home.truth / "truth.parquet", index=False)
    # FEBRL has no sex field: the warehouse's 10 % null ceiling on enc_sex would quarantine both extracts.
    # Bench-only, in this child process: lift that one ceiling (every other check still runs).
    import landing.validation as gv

    gv.DEFAULT_MAX_NULL = {**gv.DEFAULT_MAX_NULL, "enc_sex": 1.0}
    return _kit_and_ingest(home, KeyRing, ingest_envelope, encode_and_send_all)


# ================================================================================================ metrics
def evaluate(con: Any, clusters: str, truth: str = "truth") -> dict[str, Any]:
    """Pairwise (all pairs and cross-source pairs) and exact-cluster metrics over every truth record.

    ``clusters`` and ``truth`` are tables keyed by (source, source_record_id); truth records absent from
    ``clusters`` are singletons.
    """
    from scoring.linkage import cluster_metrics, pairwise_metrics

    con.execute(f"""create or replace temp table _c_all as
        select t.source, t.source_record_id,
               coalesce(c.cluster_id::varchar, 'unlinked:' || t.source || ':' || t.source_record_id) cluster_id
        from {truth} t left join (select distinct source, source_record_id, cluster_id from {clusters}) c
        using (source, source_record_id)""")
    missing = con.execute(f"select count(*) from {truth} t where not exists (select 1 from {clusters} c "
                          "where c.source = t.source and c.source_record_id = t.source_record_id)").fetchall()[0][0]
    pw = pairwise_metrics(con, "_c_all", truth)
    pw_out = pairwise_metrics(con, f"(select distinct source, source_record_id, cluster_id from {clusters})", truth)
    cm = cluster_metrics(con, "_c_all", truth)
    # cross-source pairs: for a group with n_s records per source, (N^2 - sum n_s^2) / 2
    sums = dict(con.execute(f"""
        with j as (select c.cluster_id, t.person_id::varchar person_id, t.source from _c_all c
                   join {truth} t using (source, source_record_id)),
        g as (select 'tp' k, cluster_id || '|' || person_id g, source, count(*) n from j group by all
              union all select 'pred', cluster_id, source, count(*) from j group by all
              union all select 'true', person_id, source, count(*) from j group by all),
        h as (select k, g, sum(n) nn, sum(n * n) sq from g group by k, g)
        select k, sum((nn * nn - sq) / 2) from h group by k
    """).fetchall())
    tp, pred, true = (float(sums.get(k) or 0) for k in ("tp", "pred", "true"))
    p = tp / pred if pred else 1.0
    r = tp / true if true else 1.0
    return {"precision": pw["precision"], "recall": pw["recall"], "f1": pw["f1"], "cluster_f1": cm["f1"],
            "cluster_precision": cm["precision"], "cluster_recall": cm["recall"],
            "f1_cross_source": round(2 * p * r / (p + r), 5) if p + r else 0.0,
            "precision_cross_source": round(p, 5), "recall_cross_source": round(r, 5),
            "f1_on_records_output": pw_out["f1"], "recall_on_records_output": pw_out["recall"],
            "true_pairs": pw["true_pairs"], "predicted_pairs": pw["predicted_pairs"],
            "truth_records": con.execute(f"select count(*) from {truth}").fetchall()[0][0],
            "truth_records_not_output": missing}


def native_truth(con: Any, truth_parquet: Path) -> None:
    con.execute(f"create or replace table truth as select source, trim(record_id) source_record_id, person_id, "
                f"race_eth, sex, birth_year, source source_name from read_parquet('{truth_parquet}')")


#: match-probability thresholds of the sweep (every Splink system's own match probability); the best is reported.
#: It reaches from 0.01 to 1 - 1e-6 so that every system's best lies inside it: on the demo plaintext Splink peaked
#: at 0.999, the old grid's top, and on FEBRL4 every Splink system at 0.5, its floor. A system's scored pairs stop
#: at its prediction threshold (vpdc and the project-style plaintext model keep pairs from 0.5, ``floor``): lower
#: grid points would repeat that floor's figures and are left out (the vpdc run at a lower floor covers them).
SWEEP = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999,
         0.99995, 0.99999, 0.999999)
#: prediction threshold of the untimed scoring passes that give the sweep its pairs below 0.5
SWEEP_FLOOR = 0.01


def sweep_summary(rows: list[dict[str, Any]], chosen: float) -> dict[str, Any]:
    """The chosen and the best (highest pairwise F1) rows, and whether the best sits at an end of the grid
    (then the grid may not bracket the optimum: ``best_at_grid_edge``; a flat run of equal F1 reaching the edge
    is reported as ``plateau_to_edge``)."""
    rows = sorted(rows, key=lambda r: r["threshold"])
    best = max(rows, key=lambda r: (r["f1"], r.get("cluster_f1") or 0))
    at = next((r for r in rows if r["threshold"] == chosen), None)
    edge = best["threshold"] in (rows[0]["threshold"], rows[-1]["threshold"])
    out = {"chosen_threshold": at, "best_threshold": best, "grid": [rows[0]["threshold"], rows[-1]["threshold"]],
           "best_at_grid_edge": edge}
    if edge and len(rows) > 1:
        nxt = rows[1] if best["threshold"] == rows[0]["threshold"] else rows[-2]
        out["plateau_to_edge"] = nxt["f1"] == best["f1"]
    return out


def threshold_sweep(con: Any, edges: str, chosen: float, truth: str = "truth", *, floor: float | None = None,
                    cluster: Any = None, grid: tuple[float, ...] = SWEEP) -> dict[str, Any]:
    """Pairwise and cluster F1 over ALL truth records after clustering ``edges`` (node_id_l, node_id_r,
    match_probability; node ids ``source:source_record_id``) at each threshold of ``grid`` at or above ``floor``
    (the prediction threshold the edges were scored at): the figures at the system's chosen threshold and at the
    best one (oracle-chosen, for every system alike).

    ``cluster(th)`` (optional) returns a table (source, source_record_id, cluster_id) clustered the system's own
    way at ``th`` (vpdc: its same-birthday sibling rule); by default connected components of the edges >= th."""
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    con.execute(f"create or replace table _sweep_nodes as select distinct source || ':' || source_record_id node_id "
                f"from {truth}")
    con.execute(f"create or replace table _sweep_edges as select node_id_l, node_id_r, match_probability from {edges}")
    db_api = DuckDBAPI(connection=con)
    rows = []
    for th in sorted({t for t in grid if floor is None or t >= floor} | {chosen}):
        extra: dict[str, Any] = {}
        if cluster is not None:
            table, extra = cluster(th)
        else:
            cl = cluster_pairwise_predictions_at_threshold("_sweep_nodes", "_sweep_edges", db_api, "node_id",
                                                           threshold_match_probability=th)
            con.execute(f"create or replace table _sweep_cl as select split_part(node_id, ':', 1) source, "
                        f"substr(node_id, strpos(node_id, ':') + 1) source_record_id, cluster_id::varchar cluster_id "
                        f"from {cl.physical_name}")
            cl.drop_table_from_database_and_remove_from_cache()
            table = "_sweep_cl"
        e = evaluate(con, table, truth)
        rows.append({"threshold": th, "precision": e["precision"], "recall": e["recall"], "f1": e["f1"],
                     "cluster_f1": e["cluster_f1"]} | extra)
    return sweep_summary(rows, chosen) | {"edges_from": floor, "sweep": rows}


def group_ratios(con: Any, clusters_all: str, as_of_year: int = 2026, truth: str = "truth") -> dict[str, Any]:
    """Missed-link and false-link rates per group (race/ethnicity, sex, age band, source) over ALL truth
    records (a record a system did not output is a singleton: its true links count as missed), as ratios
    to the overall rate; groups above 1.5x are listed (groups under 30 records are left out of the list)."""
    from scoring.linkage import subgroup_errors

    if not con.execute(f"select count(race_eth) + count(sex) from {truth}").fetchall()[0][0]:
        return {"skipped": "no race/ethnicity or sex in this truth (e.g. FEBRL)"}
    r = subgroup_errors(con, clusters_all, as_of_year=as_of_year, truth=truth)
    ov = r["overall"]
    out: dict[str, Any] = {"overall": ov, "ratios": {}, "flagged": []}
    for dim, rows in r["groups"].items():
        for g in rows:
            key = f"{dim}={g['group']}"
            ratio = {k: (round(g[f"{k}_rate"] / ov[f"{k}_rate"], 2) if g[f"{k}_rate"] is not None and ov[f"{k}_rate"]
                         else None) for k in ("missed_link", "false_link")}
            out["ratios"][key] = ratio | {"records": g["records"]}
            if g["flagged"] and not g["small_group"]:
                out["flagged"].append(key)
    out["max_ratio_groups_30_plus"] = {k: max((v[k] or 0 for v in out["ratios"].values() if v["records"] >= 30),
                                              default=None) for k in ("missed_link", "false_link")}
    return out


# ================================================================================================== vpdc
def _vpdc_eval(linkage_db: Path, keys: Path, truth_parquet: Path, params: Any = None,
               sweep_only: bool = False) -> dict[str, Any]:
    import duckdb

    from envelope.keys import Custodian, WarehouseKeyRing
    from landing.boundary import ZoneBoundary
    from linkage.model import LinkageParams
    from scoring.linkage import load_truth

    params = params or LinkageParams()
    con = duckdb.connect()
    con.execute(f"attach '{linkage_db}' as lz (read_only)")
    load_truth(con, truth_parquet, Custodian(keys.parent / "custodian").linkage_secret(),
               boundary=ZoneBoundary.from_keyring(WarehouseKeyRing(keys)))
    out: dict[str, Any] = {}
    if not sweep_only:
        con.execute("create table clusters as select source, source_record_id, person_key cluster_id from lz.person_keys")
        out = evaluate(con, "clusters")
        out["groups"] = group_ratios(con, "_c_all")
    out["thresholds"] = threshold_sweep(con, "lz.link_edges", CLUSTER_THRESHOLD, floor=params.predict_threshold,
                                        cluster=_vpdc_clustering(con, params))
    con.close()
    return out


def _vpdc_clustering(con: Any, params: Any) -> Any:
    """vpdc's own clustering at any threshold, for the sweep: the edges at or above it less those its
    same-birthday sibling rule holds apart (``linkage.run.strong_edges`` on the zone's model inputs), then
    connected components (``linkage.run.components``), exactly as a run at that cluster threshold clusters."""
    from dataclasses import replace

    from splink import DuckDBAPI

    from linkage.run import components, strong_edges

    api = DuckDBAPI(connection=con)
    con.execute("create or replace table _vp_nodes as select source_dataset || ':' || unique_id node_id "
                "from lz.link_input")

    def cluster(th: float) -> tuple[str, dict[str, Any]]:
        p = replace(params, cluster_threshold=th)
        held = strong_edges(con, "_sweep_edges", "_vp_strong", p, table="lz.link_input")
        components(con, api, "_vp_nodes", "_vp_strong", "_vp_cl", p)
        con.execute("create or replace table _sweep_cl as select split_part(node_id, ':', 1) source, "
                    "substr(node_id, strpos(node_id, ':') + 1) source_record_id, cluster_id from _vp_cl")
        return "_sweep_cl", {"held_apart_as_siblings": held}
    return cluster


def _fresh_copy(pristine: Path, db: Path) -> None:
    """Copy the prepared zone to ``db``, removing what a killed earlier run left beside it: DuckDB replays a
    ``.wal`` it finds next to a database, and a stale one corrupts the fresh copy (a FATAL at the first commit)."""
    Path(str(db) + ".wal").unlink(missing_ok=True)
    shutil.rmtree(Path(str(db) + ".tmp"), ignore_errors=True)
    shutil.copy2(pristine, db)


def stage_vpdc(spec: dict[str, Any]) -> dict[str, Any]:
    from linkage.run import run_linkage
    from partner_kit.profiles import partners

    db = Path(spec["linkage_db"])
    with Timer() as t:
        res = run_linkage(db, now=NOW, mode="full", expected_sources=tuple(partners()), blocking_analysis=False)
    records = sum(res.records.values())
    out = {"records": records, "seconds": t.seconds, "cpu_seconds": t.cpu_seconds,
           "records_per_s": round(records / t.seconds, 1), "pairs_scored_above_0_5": res.pairs,
           "persons": res.persons, "stage_seconds": {k: round(v, 2) for k, v in res.seconds.items()}} | usage()
    with Timer() as te:
        out |= _vpdc_eval(db, Path(spec["keys"]), Path(spec["truth"]))
    out["eval_seconds"] = te.seconds
    out["held_apart_as_siblings"] = res.held_apart_as_siblings
    at = (out.get("thresholds") or {}).get("chosen_threshold") or {}
    # the sweep clusters as the run does (sibling rule included): at the run's own threshold it must agree
    out["sweep_reproduces_run"] = at.get("f1") == out.get("f1") and at.get("held_apart_as_siblings") == res.held_apart_as_siblings
    # the estimate describes the records linked; records the kit rejected are missed links it cannot see (both shown)
    out["error_estimate"] = error_estimate_vs_truth(res.error_estimate, {
        "precision": out.get("precision"), "recall": out.get("recall_on_records_output"),
        "recall_all_records": out.get("recall")})
    return out


def error_estimate_vs_truth(estimate: dict[str, Any], true: dict[str, Any]) -> dict[str, Any]:
    """The gate's estimate (SSN held out, ADR 0012) beside the true pairwise figures of the same clustering."""
    out = {"method": estimate.get("method"), "available": estimate.get("available"),
           "estimated_precision": estimate.get("precision"), "estimated_recall": estimate.get("recall"),
           "precision_95": estimate.get("precision_95"), "recall_95": estimate.get("recall_95"),
           "true_precision": true.get("precision"), "true_recall": true.get("recall"),
           "true_recall_all_records": true.get("recall_all_records")}
    if estimate.get("available") and true.get("precision") is not None:
        out["precision_error_points"] = round(100 * (estimate["precision"] - true["precision"]), 2)
        out["recall_error_points"] = round(100 * (estimate["recall"] - true["recall"]), 2)
        out["within_one_point"] = abs(out["precision_error_points"]) <= 1 and abs(out["recall_error_points"]) <= 1
        # does the stated 95 % range hold the truth (ranges count merge and split events, ADR 0012)
        for figure in ("precision", "recall"):
            rng = estimate.get(f"{figure}_95")
            out[f"true_{figure}_within_95"] = bool(rng) and rng[0] <= true[figure] <= rng[1]
    return out


def stage_vpdc_low_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """vpdc with pairs kept from :data:`SWEEP_FLOOR` instead of 0.5 (untimed, for the sweep below 0.5). Its
    blocking choice weighs the scored pairs down to that floor, so its rules may differ from the timed run's:
    ``rules`` and ``pairs_at_or_above_0_5`` say whether the pairs above 0.5 are the same."""
    from dataclasses import replace

    import duckdb

    from linkage.model import LinkageParams
    from linkage.run import run_linkage
    from partner_kit.profiles import partners

    db = Path(spec["linkage_db"])
    params = replace(LinkageParams(), predict_threshold=SWEEP_FLOOR, holdout_estimate=False)
    with Timer() as t:
        res = run_linkage(db, now=NOW, mode="full", params=params, expected_sources=tuple(partners()),
                          blocking_analysis=False)
    with duckdb.connect(str(db), read_only=True) as con:
        above = con.execute("select count(*) from link_edges where match_probability >= 0.5").fetchall()[0][0]
    out = {"predict_threshold": SWEEP_FLOOR, "seconds": t.seconds, "pairs_scored": res.pairs,
           "pairs_at_or_above_0_5": above}
    return out | _vpdc_eval(db, Path(spec["keys"]), Path(spec["truth"]), params=params, sweep_only=True)


def stage_holdout(spec: dict[str, Any]) -> dict[str, Any]:
    """Move (or put back) the held-out 10 % of person records of the linkage zone copy."""
    import duckdb

    with duckdb.connect(spec["linkage_db"]) as con:
        if spec["action"] == "hold":
            con.execute(f"create or replace table bench_holdout as select * from encodings "
                        f"where hash(source || ':' || source_record_id) % 100 < {int(spec['percent'])}")
            con.execute("delete from encodings e where exists (select 1 from bench_holdout h "
                        "where h.source = e.source and h.source_record_id = e.source_record_id)")
        else:
            # the held-out records come back as a new load, as a monthly envelope would (rows of a committed
            # load never change, so putting them back under their old load id would not be an increment)
            con.execute("""insert into loads select distinct 'bench_inc_' || h.source || '_' || h.extract_type,
                'bench_inc_' || h.source || '_' || h.extract_type, h.source, h.extract_type, '2099-01', l.schema_version,
                l.linkage_key_version, 0, now(), now(), true, null, 'complete'
                from bench_holdout h join loads l on l.load_id = h.load_id""")
            con.execute("insert into encodings select * replace ('bench_inc_' || source || '_' || extract_type as load_id) "
                        "from bench_holdout")
            con.execute("drop table bench_holdout")
        n = con.execute("select count(*) from encodings").fetchall()[0][0]
    return {"encodings": n}


def stage_vpdc_auto(spec: dict[str, Any]) -> dict[str, Any]:
    from linkage.run import run_linkage
    from partner_kit.profiles import partners

    db = Path(spec["linkage_db"])
    with Timer() as t:
        res = run_linkage(db, now=datetime(2026, 2, 28, 12, 0, tzinfo=UTC), mode=spec.get("mode", "auto"),
                          expected_sources=tuple(partners()), blocking_analysis=False)
    out = {"mode": res.mode, "records": sum(res.records.values()), "new_records": res.new_records,
           "seconds": t.seconds, "cpu_seconds": t.cpu_seconds, "key_events": res.key_events,
           "stage_seconds": {k: round(v, 2) for k, v in res.seconds.items()}} | usage()
    if spec.get("evaluate"):
        out |= {"quality_after": _vpdc_eval(db, Path(spec["keys"]), Path(spec["truth"]))}
    return out


# ============================================================================================= plaintext
def stage_export_plaintext(spec: dict[str, Any]) -> dict[str, Any]:
    """Normalise every partner's native person extract with the kit's normalisers (plaintext, bench only).

    Writes plain.parquet (all sources, the columns of the plaintext Splink models), one clk_encode CSV per
    source (record_id, first_name, last_name, dob, sex, zip, ssn, address, middle_initial, suffix: every field
    vpdc links on, the same normalised values; blank = missing) and the anonlink truth CSV.
    """
    import jellyfish
    import pandas as pd

    from partner_kit import load_profile
    from partner_kit.normalise import (
        NormaliseError,
        normalise_address,
        normalise_given,
        normalise_sex,
        normalise_ssn,
        normalise_suffix,
        normalise_surname,
        normalise_zip,
        parse_date,
        split_formatted_name,
    )
    from scoring.linkage import PERSON_EXTRACTS

    home, out_dir = Path(spec["home"]), Path(spec["out"])
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    t0 = time.perf_counter()

    def cached(fn: Any) -> Any:
        cache: dict[Any, Any] = {}

        def wrap(v: Any) -> Any:
            if v not in cache:
                try:
                    cache[v] = fn(v)
                except NormaliseError:
                    cache[v] = None
            return cache[v]
        return wrap

    phon = cached(lambda v: (jellyfish.metaphone(v) or v[:1]) if v else None)
    for source, extract in PERSON_EXTRACTS.items():
        prof = load_profile(source, extract)
        ids = prof.identifiers
        raw_dir = home / "partners" / source
        files = sorted(raw_dir.glob(f"*/{prof.file}")) if raw_dir.exists() else []
        for f in files:
            if not f.parent.name[:2].isdigit():
                continue
            df = pd.read_csv(f, sep=prof.delimiter, dtype=str, keep_default_na=False)
            n = len(df)
            def col(role: str, df: Any = df, ids: dict[str, Any] = ids, n: int = n) -> list[str]:
                return df[ids[role]].tolist() if ids.get(role) else [""] * n

            if ids.get("formatted_name"):
                parts = list(map(cached(split_formatted_name), col("formatted_name")))
                last_raw, first_raw, mid_raw = ([p[k] or "" for p in parts] for k in range(3))
            else:
                first_raw, last_raw, mid_raw = col("first_name"), col("last_name"), col("middle_name")
            fn = list(map(cached(normalise_given), first_raw))
            sn = list(map(cached(normalise_surname), last_raw))
            mn = list(map(cached(normalise_given), mid_raw))
            fmt = ids.get("dob_format", "%Y-%m-%d")
            dob = list(map(cached(lambda v, fmt=fmt: parse_date(v, fmt, latest=TODAY)), col("dob")))
            sfx_own = list(map(cached(normalise_suffix), col("suffix")))
            sex_map = ids.get("sex_map", {})
            ssn = list(map(cached(normalise_ssn), col("ssn")))
            ln = [s.compact if s else None for s in sn]
            d = pd.DataFrame({
                "source_dataset": [source] * n, "unique_id": [v.strip() for v in df[prof.record_id["columns"][0]]],
                "fn": fn, "fn_init": [v[0] if v else None for v in fn], "fn_phon": list(map(phon, fn)),
                "ln": ln, "ln_phon": list(map(phon, ln)),
                "ln_p1": [s.parts[0] if s and len(s.parts) > 1 else None for s in sn],
                "ln_p2": [s.parts[-1] if s and len(s.parts) > 1 else None for s in sn],
                "mi": [v[0] if v else None for v in mn],
                "sfx": [o or (s.suffix if s else None) for o, s in zip(sfx_own, sn)],
                "dob": [v.isoformat() if v else None for v in dob],
                "dob_swap": [f"{v.year:04d}-{v.day:02d}-{v.month:02d}" if v and v.day <= 12 and v.day != v.month
                             else None for v in dob],
                "dob_ym": [f"{v.year:04d}-{v.month:02d}" if v else None for v in dob],
                "dob_y": [f"{v.year:04d}" if v else None for v in dob],
                "sex": list(map(cached(lambda v, m=sex_map: normalise_sex(v, m)), col("sex"))),
                "ssn": ssn, "ssn4": [v[-4:] if v else None for v in ssn],
                "addr": list(map(cached(normalise_address), col("address"))),
                "zip": list(map(cached(normalise_zip), col("zip"))),
            }, dtype=object)
            frames.append(d[d["unique_id"] != ""])
    plain = pd.concat(frames, ignore_index=True).drop_duplicates(["source_dataset", "unique_id"], keep="last")
    import pyarrow as pa

    plain = pa.Table.from_pydict({c: pa.array([v if isinstance(v, str) else None for v in plain[c].tolist()],
                                              pa.string()) for c in plain.columns})
    normalise_seconds = round(time.perf_counter() - t0, 2)
    import pyarrow.parquet as pq

    pq.write_table(plain, out_dir / "plain.parquet")
    plain = plain.to_pandas()
    clk_inputs = {}
    for source, g in plain.groupby("source_dataset"):
        p = out_dir / f"pii_{source}.csv"
        pd.DataFrame({"record_id": g["unique_id"], "first_name": g["fn"].fillna(""), "last_name": g["ln"].fillna(""),
                      "dob": g["dob"].fillna(""), "sex": g["sex"].fillna(""), "zip": g["zip"].fillna(""),
                      "ssn": g["ssn"].fillna(""), "address": g["addr"].fillna(""), "middle_initial": g["mi"].fillna(""),
                      "suffix": g["sfx"].fillna("")}).to_csv(p, index=False)
        clk_inputs[source] = str(p)
    truth = pd.read_parquet(home / "truth" / "truth.parquet", columns=["source", "record_id", "person_id"])
    pd.DataFrame({"dataset": truth["source"], "record_id": truth["record_id"].str.strip(),
                  "entity_id": truth["person_id"].astype(str)}).to_csv(out_dir / "truth_anonlink.csv", index=False)
    filled = {c: int(plain[c].notna().sum()) for c in ("fn", "ln", "dob", "sex", "zip", "ssn", "addr", "mi", "sfx")}
    return {"records": len(plain), "normalise_seconds": normalise_seconds, "clk_inputs": clk_inputs,
            "records_by_source": plain["source_dataset"].value_counts().to_dict(), "fields_present": filled} | usage()


#: Plaintext Splink's blocking: scheme 1's rules (chosen with Splink's blocking analysis on plaintext-like
#: tokens) plus the routes a plaintext linker has and an encoded one must earn (ZIP, address, last name + year)
PLAINTEXT_BLOCKING = [
    "l.dob = r.dob and l.fn_init = r.fn_init", "l.fn = r.fn and l.ln = r.ln", "l.dob = r.dob and l.ln_phon = r.ln_phon",
    "l.fn = r.fn and l.dob_ym = r.dob_ym", "l.ssn = r.ssn", "l.addr = r.addr and l.fn_init = r.fn_init",
    "l.fn = r.ln and l.ln = r.fn", "l.dob_swap = r.dob and l.fn_init = r.fn_init", "l.addr = r.addr",
    "l.ln = r.ln and l.zip = r.zip", "l.dob = r.dob",
]


def plaintext_train(linker: Any, params: Any) -> None:
    """Scheme 1's training procedure (the project's before the hardened encodings), on plaintext columns."""
    from splink import block_on

    linker.training.estimate_probability_two_random_records_match(
        [block_on("fn", "ln", "dob"), block_on("ssn", "dob")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=params.u_max_pairs, seed=params.seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob", "fn_init"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("fn", "ln"))


def plaintext_settings() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator

    def name(col: str, other: str, phon: str, extra: list[Any], init: str | None) -> Any:
        return cl.CustomComparison(output_column_name=col, comparison_levels=[
            cll.NullLevel(col),
            cll.ExactMatchLevel(col, term_frequency_adjustments=True),
            cll.CustomLevel(f"{col}_l = {other}_r and {other}_l = {col}_r", label_for_charts="first/last swapped"),
            *extra,
            cll.JaroWinklerLevel(col, 0.92),
            cll.JaroWinklerLevel(col, 0.88),
            cll.JaroWinklerLevel(col, 0.7),
            cll.ExactMatchLevel(phon),
            *([cll.ExactMatchLevel(init)] if init else []),
            cll.ElseLevel(),
        ])

    compound = ("(ln_l = ln_p1_r or ln_l = ln_p2_r or ln_r = ln_p1_l or ln_r = ln_p2_l "
                "or ln_p1_l = ln_p1_r or ln_p2_l = ln_p2_r)")
    first = name("fn", "ln", "fn_phon", [], "fn_init")
    last = name("ln", "fn", "ln_phon", [cll.CustomLevel(compound, label_for_charts="compound surname part")], None)
    dob = cl.CustomComparison(output_column_name="dob", comparison_levels=[
        cll.NullLevel("dob"),
        cll.ExactMatchLevel("dob", term_frequency_adjustments=True),
        cll.CustomLevel("dob_swap_l = dob_r or dob_l = dob_swap_r", label_for_charts="day/month swapped"),
        cll.DamerauLevenshteinLevel("dob", 1),
        cll.ExactMatchLevel("dob_ym"),
        cll.ExactMatchLevel("dob_y"),
        cll.ElseLevel(),
    ])
    ssn = cl.CustomComparison(output_column_name="ssn", comparison_levels=[
        cll.NullLevel("ssn"),
        cll.ExactMatchLevel("ssn"),
        cll.DamerauLevenshteinLevel("ssn", 1),
        cll.ExactMatchLevel("ssn4"),
        cll.ElseLevel(),
    ])
    address = cl.CustomComparison(output_column_name="address", comparison_levels=[
        cll.CustomLevel("(addr_l is null or addr_r is null) and (zip_l is null or zip_r is null)",
                        label_for_charts="null").configure(is_null_level=True),
        cll.ExactMatchLevel("addr"),
        cll.JaroWinklerLevel("addr", 0.9),
        cll.ExactMatchLevel("zip"),
        cll.ElseLevel(),
    ])
    return SettingsCreator(
        link_type="link_and_dedupe", unique_id_column_name="unique_id", source_dataset_column_name="source_dataset",
        comparisons=[first, last, dob, cl.ExactMatch("sex"), ssn, address, cl.ExactMatch("mi"), cl.ExactMatch("sfx")],
        blocking_rules_to_generate_predictions=PLAINTEXT_BLOCKING,
        retain_intermediate_calculation_columns=False, retain_matching_columns=False, additional_columns_to_retain=[])


#: Plaintext Splink "published-style": the detailed model of Splink's own FEBRL4 example (docs/demos/examples/
#: duckdb/febrl4: NameComparison with term frequencies on both names, DateOfBirthComparison, Damerau-Levenshtein
#: 1/2 on SSN and postcode, deterministic rules on SSN and name + DOB at recall 0.8, u from random sampling, EM
#: blocked on DOB, predictions kept from a low probability), given the same fields as vpdc (address line, middle
#: initial, suffix, sex too). Its blocking follows the example's (names, swapped names, DOB, SSN, street address,
#: postcode); postcode alone is split by a second field, as the example advises when a rule grows too big (the demo
#: population has ~30 ZIPs). Its threshold is the sweep's.
PUBLISHED_BLOCKING = [
    "l.fn = r.fn and l.ln = r.ln", "l.fn = r.ln and l.ln = r.fn", "l.dob = r.dob", "l.ssn = r.ssn",
    "l.addr = r.addr", "l.zip = r.zip and l.ln_phon = r.ln_phon", "l.zip = r.zip and l.dob_y = r.dob_y",
    "l.zip = r.zip and l.fn_init = r.fn_init",
]


def published_settings() -> Any:
    import splink.comparison_library as cl
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="link_and_dedupe", unique_id_column_name="unique_id", source_dataset_column_name="source_dataset",
        comparisons=[
            cl.NameComparison("fn").configure(term_frequency_adjustments=True),
            cl.NameComparison("ln").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True, datetime_format="%Y-%m-%d",
                                     invalid_dates_as_null=True),
            cl.DamerauLevenshteinAtThresholds("ssn", [1, 2]),
            cl.JaroWinklerAtThresholds("addr", [0.95, 0.88]).configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("zip", [1]).configure(term_frequency_adjustments=True),
            cl.ExactMatch("sex"), cl.ExactMatch("mi"), cl.ExactMatch("sfx"),
        ],
        blocking_rules_to_generate_predictions=PUBLISHED_BLOCKING,
        retain_intermediate_calculation_columns=False, retain_matching_columns=False, additional_columns_to_retain=[])


def published_train(linker: Any, params: Any) -> None:
    from splink import block_on

    linker.training.estimate_probability_two_random_records_match(
        [block_on("ssn"), block_on("fn", "ln", "dob")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=params.seed)  # the example advises >= 1e7
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"),
                                                                       estimate_without_term_frequencies=True)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("fn", "ln"),
                                                                       estimate_without_term_frequencies=True)


def stage_splink(spec: dict[str, Any]) -> dict[str, Any]:
    """Plaintext Splink, ``variant`` "project" (scheme 1's model, pairs kept from 0.5 as the project keeps them;
    a second, untimed scoring pass from :data:`SWEEP_FLOOR` gives the sweep its lower thresholds) or "published"
    (Splink's FEBRL4 example's model, pairs kept from :data:`SWEEP_FLOOR` in the timed run)."""
    import logging

    import duckdb
    from splink import DuckDBAPI, Linker

    from linkage.model import LinkageParams

    params = LinkageParams()
    variant = spec.get("variant", "project")
    settings, train, floor = ((plaintext_settings(), plaintext_train, params.predict_threshold) if variant == "project"
                              else (published_settings(), published_train, SWEEP_FLOOR))
    work = Path(spec["out"])
    db = work / f"splink_plain_{variant}.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    con.execute(f"create table plain as select * from read_parquet('{work / 'plain.parquet'}')")
    views = []
    for (src,) in con.execute("select distinct source_dataset from plain order by 1").fetchall():
        con.execute(f"create view plain_{src} as select * from plain where source_dataset = '{src}'")
        views.append(f"plain_{src}")
    records = con.execute("select count(*) from plain").fetchall()[0][0]
    stages = {}
    with Timer() as t:
        db_api = DuckDBAPI(connection=con)
        linker = Linker([db_api.register(v) for v in views], settings, log_level=logging.ERROR)
        s = time.perf_counter()
        train(linker, params)
        stages["train"] = round(time.perf_counter() - s, 2)
        s = time.perf_counter()
        pred = linker.inference.predict(threshold_match_probability=floor)
        stages["predict"] = round(time.perf_counter() - s, 2)
        s = time.perf_counter()
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, CLUSTER_THRESHOLD)
        con.execute(f"create table bench_clusters as select source_dataset source, unique_id source_record_id, "
                    f"cluster_id from {clusters.physical_name}")
        stages["cluster"] = round(time.perf_counter() - s, 2)
    pairs = con.execute(f"select count(*) from {pred.physical_name}").fetchall()[0][0]
    out = {"variant": variant, "records": records, "seconds": t.seconds, "cpu_seconds": t.cpu_seconds,
           "records_per_s": round(records / t.seconds, 1), "predict_threshold": floor, "pairs_scored": pairs,
           "stage_seconds": stages,
           "blocking_rules": PLAINTEXT_BLOCKING if variant == "project" else PUBLISHED_BLOCKING} | usage()
    native_truth(con, Path(spec["truth"]))
    out |= evaluate(con, "bench_clusters")
    out["groups"] = group_ratios(con, "_c_all")
    if floor > SWEEP_FLOOR:  # untimed: the same trained model scores the blocked pairs again from the sweep's floor
        pred = linker.inference.predict(threshold_match_probability=SWEEP_FLOOR)
        floor = SWEEP_FLOOR
        out["sweep_pairs_scored"] = con.execute(f"select count(*) from {pred.physical_name}").fetchall()[0][0]
    con.execute(f"create table bench_edges as select source_dataset_l || ':' || unique_id_l node_id_l, "
                f"source_dataset_r || ':' || unique_id_r node_id_r, match_probability from {pred.physical_name}")
    out["thresholds"] = threshold_sweep(con, "bench_edges", CLUSTER_THRESHOLD, floor=floor)
    con.close()
    db.unlink(missing_ok=True)
    return out


def stage_eval_anonlink(spec: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    native_truth(con, Path(spec["truth"]))
    con.execute(f"create table groups as select dataset source, record_id::varchar source_record_id, "
                f"'g' || group_id::varchar cluster_id from read_csv('{spec['matches']}', all_varchar=true)")
    return evaluate(con, "groups")


STAGES = {"prepare_synth": prepare_synth, "prepare_febrl": prepare_febrl, "vpdc": stage_vpdc,
          "vpdc_low_floor": stage_vpdc_low_floor,
          "holdout": stage_holdout, "vpdc_auto": stage_vpdc_auto, "export_plaintext": stage_export_plaintext,
          "splink": stage_splink, "eval_anonlink": stage_eval_anonlink}


# ================================================================================================ anonlink
#: anonlink has no threshold of its own: its "chosen" one is anonlink_link.py's default (0.8)
ANONLINK_CHOSEN = 0.8
ANONLINK_GRID = "0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95"


def run_anonlink(work: Path, export: dict[str, Any], truth_parquet: Path, thresholds: list[float],
                 time_limit: float, k: int | None, refine: float = 0.01) -> dict[str, Any]:
    env = os.environ | {"BENCH_CLK_SECRET": CLK_SECRET}
    clk_files, enc = [], {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": 0.0, "child_wall_seconds": 0.0}
    encoded: dict[str, Any] = {}
    for source, csv_path in sorted(export["clk_inputs"].items()):
        clk = work / f"clks_{source}.json"
        r = run_child([str(BENCH_PYTHON), str(PEERS / "clk_encode.py"), "--input", csv_path, "--dataset", source,
                       "--output", str(clk)], env=env)
        enc["seconds"] += r.get("seconds", 0.0)
        enc["cpu_seconds"] += r.get("cpu_seconds") or 0.0
        enc["child_wall_seconds"] += r["child_wall_seconds"]
        enc["peak_rss_mb"] = max(enc["peak_rss_mb"], r["child_peak_rss_mb"], r.get("peak_rss_mb") or 0.0)
        encoded[source] = {x: r.get(x) for x in ("records", "mean_popcount", "empty_clks", "dob_unparsed",
                                                  "ssn_unparsed", "features_present")}
        clk_files.append(f"{source}={clk}")
    enc = {k_: round(v, 2) for k_, v in enc.items()} | {"by_source": encoded}
    records = export["records"]
    runs: list[dict[str, Any]] = []

    def one(th: float) -> None:
        matches = work / f"anonlink_matches_{th}.csv"
        r = run_child([str(BENCH_PYTHON), str(PEERS / "anonlink_link.py"), *clk_files, "--threshold", str(th),
                       *(["--k", str(k)] if k else []), "--output", str(matches),
                       "--truth", str(work / "truth_anonlink.csv")], env=env, timeout=time_limit)
        if "skipped" in r:
            runs.append({"threshold": th} | r)
            return
        q = child("eval_anonlink", {"truth": str(truth_parquet), "matches": str(matches)})
        secs = r["child_wall_seconds"]  # whole process: load CLKs + candidates + solving (+ its own truth eval)
        runs.append({"threshold": th, "records": records, "seconds": secs, "cpu_seconds": r["child_cpu_seconds"],
                     "records_per_s": round(records / secs, 1) if secs else None,
                     "peak_rss_mb": max(r["child_peak_rss_mb"], r.get("peak_rss_mb") or 0),
                     "seconds_load": r.get("seconds_load"), "seconds_candidates": r.get("seconds_candidates"),
                     "seconds_solving": r.get("seconds_solving"), "candidate_pairs": r.get("candidate_pairs"),
                     "candidate_recall_cross_source": r.get("candidate_recall"),
                     "anonlink_own_f1_cross_source": r.get("f1")}
                    | {k_: v for k_, v in q.items() if not k_.startswith("child_")})
        log(f"anonlink at {th}: F1 {runs[-1]['f1']} (P {runs[-1]['precision']}, R {runs[-1]['recall']}), "
            f"{runs[-1]['candidate_pairs']:,} candidates, {secs} s")

    for th in sorted(set(thresholds) | {ANONLINK_CHOSEN}):
        one(th)
    done = [x for x in runs if "f1" in x]
    if done and refine:
        # the coarse grid brackets the best; F1 moves by several points per 0.05 near it, so look between its
        # neighbours in steps of `refine`
        best = max(done, key=lambda x: (x["f1"], x.get("cluster_f1") or 0))["threshold"]
        grid = sorted(x["threshold"] for x in runs)
        i = grid.index(best)
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        steps = round((hi - lo) / refine)
        for th in sorted({round(lo + j * refine, 4) for j in range(1, steps)} - set(grid)):
            one(th)
        runs.sort(key=lambda x: x["threshold"])
    done = [x for x in runs if "f1" in x]
    if not done:
        return {"skipped": runs[0].get("skipped") if runs else "no threshold", "runs": runs, "encode": enc}
    cols = ("threshold", "precision", "recall", "f1", "cluster_f1", "f1_cross_source", "candidate_pairs",
            "candidate_recall_cross_source", "seconds", "peak_rss_mb")
    summary = sweep_summary([{c: x.get(c) for c in cols} for x in done], ANONLINK_CHOSEN)
    best = max(done, key=lambda x: (x["f1"], x.get("cluster_f1") or 0))
    return best | {"selection": "top level = the best pairwise F1 over the Dice grid (oracle-tuned in anonlink's "
                                f"favour); chosen = {ANONLINK_CHOSEN} (anonlink_link.py's default)",
                   "k": k, "refine_step": refine, "thresholds": summary, "encode": enc,
                   "runs": [{c: x.get(c) for c in (*cols, "skipped")} for x in runs]}


# ================================================================================================== driver
def bench_dataset(name: str, args: argparse.Namespace, persons: int | None) -> dict[str, Any]:
    if args.reuse:
        dsdir = Path(args.reuse)
    else:
        dsdir = Path(tempfile.mkdtemp(prefix=f"bench-linkage-{name}-", dir=args.workdir))
    home = dsdir / "home"
    systems = set(args.systems.split(","))
    result: dict[str, Any] = {"benchmark": "linkage", "dataset": name, "persons": persons, "workdir": str(dsdir)}
    try:
        if not (home / "linkage.duckdb").exists():
            log(f"{name}: preparing (synthetic/FEBRL extracts → kit → envelopes → landing zone)")
            if persons is not None:
                prep = child("prepare_synth", {"home": str(home), "persons": persons, "seed": args.seed})
            else:
                fdir = dsdir / "febrl_src"
                run_child([str(BENCH_PYTHON), str(PEERS / "febrl.py"), str(fdir)])
                prep = child("prepare_febrl", {"home": str(home), "febrl_dir": str(fdir)})
            shutil.copy2(home / "linkage.duckdb", dsdir / "linkage.prepared.duckdb")
            result["preparation"] = prep
        else:
            log(f"{name}: reusing {home}")
            result["preparation"] = {"reused": str(dsdir)}
        pristine = dsdir / "linkage.prepared.duckdb"
        truth = home / "truth" / "truth.parquet"
        sysres: dict[str, Any] = {}

        if "vpdc" in systems:
            db = dsdir / "linkage.full.duckdb"
            _fresh_copy(pristine, db)
            log(f"{name}: (a) vpdc linkage on encodings, full run")
            sysres["vpdc_encodings"] = child("vpdc", {"linkage_db": str(db), "keys": str(home / "keys"),
                                                      "truth": str(truth), "profile": args.profile})
            db.unlink(missing_ok=True)
            a = sysres["vpdc_encodings"]
            log(f"{name}: (a) F1 {a['f1']} in {a['seconds']} s; best {a['thresholds']['best_threshold']}")
            th = a["thresholds"]
            if th["best_threshold"]["threshold"] == th["grid"][0] and not args.no_low_floor:
                # the best sits at the floor of the pairs vpdc keeps (0.5): look below it with a second, untimed run
                log(f"{name}: (a') vpdc best at its 0.5 floor: untimed run keeping pairs from {SWEEP_FLOOR}")
                _fresh_copy(pristine, db)
                low = child("vpdc_low_floor", {"linkage_db": str(db), "keys": str(home / "keys"), "truth": str(truth)})
                db.unlink(missing_ok=True)
                rows = {r["threshold"]: r for r in low["thresholds"]["sweep"] if r["threshold"] < th["grid"][0]}
                rows |= {r["threshold"]: r for r in th["sweep"]}
                low["combined_with_timed_run"] = sweep_summary(list(rows.values()), CLUSTER_THRESHOLD) | {
                    "note": "thresholds below 0.5 from this run, the rest from the timed run"}
                a["thresholds_below_floor"] = low

        plain_dir = dsdir / "plain"
        export = None
        if systems & {"splink", "splink_project", "splink_published", "anonlink"}:
            log(f"{name}: exporting normalised plaintext for (b) and (c)")
            export = child("export_plaintext", {"home": str(home), "out": str(plain_dir)})
            result["plaintext_export"] = {k: v for k, v in export.items() if k != "clk_inputs"}
        for variant, key in (("project", "splink_plaintext"), ("published", "splink_plaintext_published")):
            if "splink" in systems or f"splink_{variant}" in systems:
                log(f"{name}: (b) Splink on plaintext, {variant} settings")
                sysres[key] = child("splink", {"out": str(plain_dir), "truth": str(truth), "variant": variant,
                                               "profile": args.profile})
                b = sysres[key]
                log(f"{name}: (b) {variant}: F1 {b['f1']} in {b['seconds']} s; best {b['thresholds']['best_threshold']}")
        if "anonlink" in systems and export is not None:
            if export["records"] > args.skip_anonlink_above:
                sysres["anonlink"] = {"skipped": f"{export['records']:,} records > --skip-anonlink-above "
                                                 f"{args.skip_anonlink_above:,}: anonlink's unblocked candidate search "
                                                 f"compares every cross-source pair"}
            elif not BENCH_PYTHON.exists():
                sysres["anonlink"] = {"skipped": "no .venv-bench: run bash bench/peers/setup.sh"}
            else:
                log(f"{name}: (c) clkhash + anonlink")
                sysres["anonlink"] = run_anonlink(plain_dir, export, truth,
                                                  [float(x) for x in args.anonlink_thresholds.split(",")],
                                                  args.anonlink_time_limit, args.anonlink_k or None,
                                                  args.anonlink_refine)
        result["records"] = (sysres.get("vpdc_encodings") or {}).get("records") or (export or {}).get("records")
        result["systems"] = sysres
        result["side_by_side"] = side_by_side(sysres)

        if "incremental" in systems:
            log(f"{name}: incremental: full run on 90 %, then the held-out 10 % incrementally")
            db = dsdir / "linkage.incremental.duckdb"
            _fresh_copy(pristine, db)
            spec = {"linkage_db": str(db), "keys": str(home / "keys"), "truth": str(truth)}
            held = child("holdout", spec | {"action": "hold", "percent": 10})
            full = child("vpdc_auto", spec | {"mode": "full"})
            back = child("holdout", spec | {"action": "restore"})
            inc = child("vpdc_auto", spec | {"mode": "auto", "evaluate": True, "profile": args.profile})
            db.unlink(missing_ok=True)
            result["incremental"] = {
                "records_full": full["records"], "records_total": inc["records"], "new_records": inc["new_records"],
                "held_out_share": round(1 - held["encodings"] / back["encodings"], 4),
                "incremental_mode": inc["mode"], "full_seconds": full["seconds"], "incremental_seconds": inc["seconds"],
                "ratio": round(inc["seconds"] / full["seconds"], 3),
                "full_cpu_seconds": full["cpu_seconds"], "incremental_cpu_seconds": inc["cpu_seconds"],
                "full_peak_rss_mb": full["peak_rss_mb"], "incremental_peak_rss_mb": inc["peak_rss_mb"],
                "full_stage_seconds": full["stage_seconds"], "incremental_stage_seconds": inc["stage_seconds"],
                "key_events": inc["key_events"], "quality_after_incremental": inc.get("quality_after")}
        result["targets"] = targets(result, persons)
    finally:
        if not args.keep and not args.reuse:
            shutil.rmtree(dsdir, ignore_errors=True)
    return result


def side_by_side(sysres: dict[str, Any]) -> dict[str, Any]:
    """Per system: pairwise P/R/F1 and cluster F1 at its chosen threshold and at its best one, whether the grid
    brackets the best, records/s and peak memory of the linkage step; for vpdc its error estimate beside the truth."""
    out: dict[str, Any] = {}
    keep = ("threshold", "precision", "recall", "f1", "cluster_f1")
    for key, r in sysres.items():
        if not r or "thresholds" not in r:
            out[key] = {"skipped": (r or {}).get("skipped")}
            continue
        th = r["thresholds"]
        if "thresholds_below_floor" in r:
            th = r["thresholds_below_floor"]["combined_with_timed_run"]
        out[key] = {"chosen": {k: (th["chosen_threshold"] or {}).get(k) for k in keep},
                    "best": {k: th["best_threshold"].get(k) for k in keep},
                    "grid": th.get("grid"), "best_at_grid_edge": th.get("best_at_grid_edge"),
                    "plateau_to_edge": th.get("plateau_to_edge"),
                    "f1_cross_source_at_best": r.get("f1_cross_source") if key == "anonlink" else None,
                    "records_per_s": r.get("records_per_s"), "seconds": r.get("seconds"),
                    "peak_rss_mb": r.get("peak_rss_mb")}
        if key == "vpdc_encodings":
            out[key] |= {"error_estimate": r.get("error_estimate"),
                         "held_apart_as_siblings": r.get("held_apart_as_siblings"),
                         "sweep_reproduces_run": r.get("sweep_reproduces_run")}
    return out


def targets(result: dict[str, Any], persons: int | None) -> dict[str, Any]:
    s = result.get("systems", {})
    a, b, c = s.get("vpdc_encodings"), s.get("splink_plaintext"), s.get("anonlink")
    t: dict[str, Any] = {}
    splinks = [x for x in (s.get("splink_plaintext"), s.get("splink_plaintext_published")) if x and "thresholds" in x]
    if a and splinks:
        best_a = a["thresholds"]["best_threshold"]["f1"]
        if "thresholds_below_floor" in a:
            best_a = a["thresholds_below_floor"]["combined_with_timed_run"]["best_threshold"]["f1"]
        best_b = max(x["thresholds"]["best_threshold"]["f1"] for x in splinks)
        t["best_f1_at_least_best_plaintext_splink"] = {
            "met": best_a >= best_b, "vpdc_best": best_a, "splink_best_of_both_settings": best_b,
            "gap_points": round((best_b - best_a) * 100, 2)}
    if a and b:
        t["f1_within_1_point_of_plaintext_splink"] = {
            "met": a["f1"] >= b["f1"] - TARGETS["f1_gap_to_plaintext"], "vpdc": a["f1"], "splink": b["f1"],
            "gap_points": round((b["f1"] - a["f1"]) * 100, 2)}
        t["records_per_s_at_least_plaintext_splink"] = {
            "met": a["records_per_s"] >= b["records_per_s"], "vpdc": a["records_per_s"], "splink": b["records_per_s"]}
    if a and c and "f1" in c:
        t["f1_above_anonlink"] = {"met": a["f1"] > c["f1"], "vpdc": a["f1"], "anonlink": c["f1"]}
    elif a:
        t["f1_above_anonlink"] = {"met": None, "reason": (c or {}).get("skipped", "anonlink not in --systems")}
    if a:
        big = persons is not None and persons >= 1_000_000
        t["million_persons_under_5_min"] = {"met": a["seconds"] < TARGETS["seconds_1m"] if big else None,
                                            "applies": big, "seconds": a["seconds"]}
        t["million_persons_peak_under_8_gib"] = {"met": a["peak_rss_mb"] < TARGETS["peak_rss_mb_1m"] if big else None,
                                                 "applies": big, "peak_rss_mb": a["peak_rss_mb"]}
    inc = result.get("incremental")
    if inc:
        t["incremental_10pct_at_most_20pct_of_full"] = {"met": inc["ratio"] <= TARGETS["incremental_ratio"],
                                                        "ratio": inc["ratio"]}
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", choices=sorted(STAGES), help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--persons", type=int, action="append", help="synthetic persons (repeatable; default 20,000)")
    ap.add_argument("--febrl", action="store_true", help="also run FEBRL4 (alone when no --persons is given)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--skip-anonlink-above", type=int, default=200_000, help="records (default 200,000)")
    ap.add_argument("--anonlink-thresholds", default=ANONLINK_GRID,
                    help=f"Dice thresholds tried (default {ANONLINK_GRID}); F1 at each and the best are reported")
    ap.add_argument("--anonlink-k", type=int, default=100,
                    help="anonlink candidates kept per record and dataset pair (default 100; 0 = all: below ~0.7 "
                         "nearly every pair passes the Dice threshold and memory explodes)")
    ap.add_argument("--anonlink-refine", type=float, default=0.01,
                    help="after the grid, try thresholds between the best point's neighbours in this step (0 = no)")
    ap.add_argument("--no-low-floor", action="store_true",
                    help="skip the untimed vpdc run below its 0.5 prediction floor when its best F1 sits there")
    ap.add_argument("--anonlink-time-limit", type=float, default=1800, help="seconds per anonlink run")
    ap.add_argument("--systems", default="vpdc,splink,anonlink,incremental",
                    help="splink = both plaintext Splink settings (splink_project, splink_published: one of them)")
    ap.add_argument("--workdir", help="parent of the temporary working directories")
    ap.add_argument("--keep", action="store_true", help="keep the working directories")
    ap.add_argument("--reuse", help="a kept dataset directory to reuse (skips preparation; one dataset only)")
    ap.add_argument("--profile", action="store_true", help="cProfile top functions of (a), (b) and incremental")
    args = ap.parse_args(argv)

    if args.child:
        spec = json.loads(args.spec)
        out = _profiled(STAGES[args.child], spec)
        print(json.dumps(out, default=str), flush=True)
        return 0

    datasets: list[tuple[str, int | None]] = [(f"synthetic-{p}", p) for p in (args.persons or ([] if args.febrl else [20_000]))]
    if args.febrl:
        datasets.append(("febrl4", None))
    failed = 0
    for name, persons in datasets:
        t0 = time.perf_counter()
        try:
            res = bench_dataset(name, args, persons)
        except Exception as exc:  # noqa: BLE001 - one dataset failing must not hide the others
            failed += 1
            res = {"benchmark": "linkage", "dataset": name, "error": f"{type(exc).__name__}: {exc}"[:3000]}
        res["bench_wall_seconds"] = round(time.perf_counter() - t0, 1)
        res["machine"] = {"cores": os.cpu_count(), "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]}
        print(json.dumps(res, default=str), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
