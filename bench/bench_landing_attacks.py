"""Benchmark of issue 12: plaintext identifiers disguised in validly signed envelopes, honest envelopes, and the
cost of the checks that catch them.

1. **honest**: a synthetic collaborative (``--persons``, default 2,000; two periods) is encoded and sent with the
   kit; every envelope is ingested (``landing.ingest.ingest_envelope``, audited): how many are refused (target 0).
2. **plaintext**: every disguise of ``tests/attacks.py`` (names in every casing and order, with accents, SSNs and
   DOBs in other layouts, identifiers side by side, addresses, phones, e-mail, names padded into record ids,
   names/DOBs/addresses in token and Bloom-filter columns) at 100 %, 10 %, 1 % of rows and in one row: each
   planted into a real payload, sealed with the partner's own kit keys and ingested. Counted: quarantined with
   the check named (``plaintext_identifier``), nothing of it in either zone, its refusal in the audit chain.
3. **cost**: the detector (every new check lives there) on a ``--rows``-row hospital_a/patients payload built as
   bench_ingest.py builds it, against the detector before issue 12 (``--old-detector``, a copy of the previous
   ``landing/detector.py``, e.g. from ``git show <rev>:landing/detector.py``): seconds per million rows added.

Prints one JSON object on stdout; progress on stderr. The records/s of a whole ingestion come from bench_ingest.py.

    .venv/bin/python bench/bench_landing_attacks.py [--persons 2000] [--rows 1000000] [--old-detector FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib
from benchlib import log

TODAY = date(2026, 1, 31)


def _zones(home) -> tuple[set[str], set[str]]:
    import duckdb

    out = []
    for db, sql in ((home.warehouse_db, "select load_id from raw.loads"), (home.linkage_db, "select load_id from loads")):
        try:
            with duckdb.connect(str(db), read_only=True) as con:
                out.append({r[0] for r in con.execute(sql).fetchall()})
        except Exception:  # noqa: BLE001 - no zone yet
            out.append(set())
    return out[0], out[1]


def _refusals_audited(home) -> set[str]:
    from governance.registry.db import Registry, sqlite_url
    from governance.registry.models import AuditEntry

    with Registry(sqlite_url(home.registry_db)).read() as s:
        return {e.detail.get("envelope_id") for e in s.query(AuditEntry) if e.action == "refused.ingest"}


def attacks(work: Path, persons: int) -> dict[str, Any]:
    from benchlib import demo_keys

    from envelope.format import read_manifest
    from envelope.keys import WarehouseKeyRing
    from landing.ingest import ingest_envelope
    from orchestration.resources import GovernanceRegistry
    from synthetic import SynthConfig, generate
    from tests.attacks import DISGUISES, SHARES, payload_of, plant, reseal
    from vpdc.demo import encode_and_send_all
    from workspace import Home

    home = Home(work / "home").ensure()
    demo_keys(home.root)
    generate(SynthConfig(persons=persons, seed=20261121, periods=("2025-11", "2025-12")), home.root)
    encode_and_send_all(home, today=TODAY)
    sources = {}
    for env in sorted(home.landing().glob("*/*.vpdc")):
        m = read_manifest(env)
        sources.setdefault((m.partner, m.extract_type), env)
    pristine = work / "pristine"
    shutil.copytree(home.landing(), pristine)
    audit = GovernanceRegistry(home=str(home.root)).audit_ingest
    keys = WarehouseKeyRing(home.keys)

    log("honest: every envelope of the synthetic collaborative")
    t = time.perf_counter()
    honest = [ingest_envelope(env, home, keys, audit=audit) for env in sorted(home.landing().glob("*/*.vpdc"))]
    honest_s = time.perf_counter() - t
    refused = [{"file": o.file, "check": o.check} for o in honest if o.status != "loaded"]

    log(f"plaintext: {len(DISGUISES)} disguises x {len(SHARES)} shares")
    per: dict[str, dict[str, Any]] = {}
    total = caught = 0
    for d in DISGUISES:
        source = pristine / d.partner / sources[(d.partner, d.extract)].name
        table = payload_of(home, source)
        row: dict[str, Any] = {}
        for label, share in SHARES.items():
            bad, planted = plant(table, d.column, share, d.value)
            env = reseal(home, bad, source, name=f"{d.name}-{label}")
            eid = read_manifest(env).envelope_id
            out = ingest_envelope(env, home, keys, audit=audit)
            wh, lk = _zones(home)
            ok = (out.status == "quarantined" and out.check == "plaintext_identifier" and eid not in wh
                  and eid not in lk and eid in _refusals_audited(home))
            row[label] = {"quarantined": out.status == "quarantined", "check": out.check, "rows_planted": planted,
                          "rows": table.num_rows, "ok": ok}
            total += 1
            caught += ok
        per[d.name] = {"column": f"{d.partner}.{d.extract}.{d.column}", **row}
    return {"persons": persons, "honest_envelopes": len(honest), "honest_refused": len(refused),
            "honest_refusals": refused, "honest_ingest_seconds": round(honest_s, 2),
            "plaintext_envelopes": total, "plaintext_quarantined_check_named_nothing_loaded_audited": caught,
            "plaintext_share": round(caught / total, 4) if total else None, "by_disguise": per}


def _load_detector(path: Path):
    """The old detector module from a file; its name list from ``common_names.txt`` beside it (e.g.
    ``git show 3831d3f~1:landing/data/common_names.txt``): the list was replaced in issue 12."""
    import functools

    import pyarrow as pa

    spec = importlib.util.spec_from_file_location("detector_before_issue_12", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    names = path.with_name("common_names.txt")
    if names.exists():
        words = {w for line in names.read_text().splitlines() if not line.startswith("#") for w in line.split()}
        module._common_names = functools.cache(lambda: pa.array(sorted(words)))
    return module


def cost(work: Path, rows: int, old_detector: Path | None) -> dict[str, Any]:
    """Detector seconds on an honest ``rows``-row hospital_a/patients payload (plain Parquet, no envelope)."""
    import pyarrow.parquet as pq
    from bench_ingest import build_extract
    from benchlib import demo_keys

    from envelope.keys import PartnerKeyRing
    from landing.detector import scan_batches
    from landing.validation import RECORD_ID_RE, TOKEN_RE, ValidationSettings, id_columns, keyed_spec
    from partner_kit import BLOOM_COLUMNS, ENCODING_COLUMNS, Encoder, encode_extract, load_profile
    from partner_kit.geocode import site_address_points
    from workspace import Home

    home = Home(work / "cost").ensure()
    demo_keys(home.root)
    csv_path = work / "patients.csv"
    log(f"cost: building {rows:,} hospital_a/patients rows")
    build_extract(home.root, rows, max(10_000, min(100_000, rows // 10)), 20261121, csv_path)
    profile = load_profile("hospital_a", "patients")
    payload = work / "patients.parquet"
    encode_extract(profile, csv_path, payload, Encoder(PartnerKeyRing(home.partner_keys("hospital_a")).linkage_secret()),
                   today=TODAY, address_points=site_address_points(profile, home.partner_site("hospital_a").reference,
                                                                   missing_ok=True))
    n = pq.ParquetFile(payload).metadata.num_rows
    known = {c: s["values"] for c, s in profile.content.items() if "values" in s}

    def timed(fn) -> tuple[float, Any]:
        best, result = None, None
        for _ in range(3):
            t = time.perf_counter()
            result = fn()
            s = time.perf_counter() - t
            best = s if best is None else min(best, s)
        return best, result

    keyed = keyed_spec(profile, ValidationSettings())
    from landing import keyed as keyed_module

    t = time.perf_counter()
    keyed_module._token_model(), keyed_module._bloom_model()
    setup = time.perf_counter() - t
    new_s, findings = timed(lambda: scan_batches(pq.ParquetFile(payload).iter_batches(batch_size=200_000),
                                                 known_values=known, keyed_columns=keyed))
    out: dict[str, Any] = {"rows": n, "detector_seconds": round(new_s, 3),
                           "detector_seconds_per_million_rows": round(new_s / n * 1e6, 3),
                           "one_off_model_setup_seconds": round(setup, 3), "honest_findings": len(findings)}
    # the detector's pass also counts the encoding columns' formats and nulls: validation then reads only content
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from landing.validation import validate_payload

    stats: dict[str, list[int]] = {}
    scan_batches(pq.ParquetFile(payload).iter_batches(batch_size=200_000), known_values=known, keyed_columns=keyed,
                 keyed_stats=stats)
    m = SimpleNamespace(envelope_id="0" * 32, partner="hospital_a", extract_type="patients", period="2025-11",
                        schema_version=profile.schema_version, row_count=n, linkage_key_version="v1",
                        extra={"bloom_bits": 512})
    now = datetime.now(UTC)
    alone_s, _ = timed(lambda: validate_payload(payload, profile, m, now=now))
    reuse_s, _ = timed(lambda: validate_payload(payload, profile, m, now=now, encoding_stats=stats))
    out |= {"validation_seconds_reading_encodings_again": round(alone_s, 3),
            "validation_seconds_with_detector_counts": round(reuse_s, 3)}
    if old_detector:
        old = _load_detector(old_detector)
        formats = {c: TOKEN_RE for c in ENCODING_COLUMNS if c not in BLOOM_COLUMNS}  # what it was given then
        formats |= {c: RECORD_ID_RE for c in id_columns(profile)} | {"linkage_key_version": r"^v\d+$"}
        old_s, _ = timed(lambda: old.scan_batches(pq.ParquetFile(payload).iter_batches(batch_size=200_000),
                                                  known_values={c: set(v) for c, v in known.items()}, formats=formats))
        out |= {"old_detector_seconds": round(old_s, 3),
                "detector_added_seconds_per_million_rows": round((new_s - old_s) / n * 1e6, 3),
                "added_seconds_per_million_rows_net_of_validation_saving":
                    round(((new_s - old_s) - (alone_s - reuse_s)) / n * 1e6, 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, default=2_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--old-detector", type=Path)
    ap.add_argument("--skip-cost", action="store_true")
    ap.add_argument("--skip-attacks", action="store_true")
    ap.add_argument("--workdir")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vpdc-bench-attacks-", dir=args.workdir))
    try:
        result: dict[str, Any] = {"benchmark": "landing_attacks", "machine": benchlib.machine()}
        if not args.skip_attacks:
            result["attacks"] = attacks(work, args.persons)
        if not args.skip_cost:
            result["cost"] = cost(work, args.rows, args.old_detector)
        if "attacks" in result:
            a = result["attacks"]
            result["target"] = {"plaintext_all_caught": a["plaintext_quarantined_check_named_nothing_loaded_audited"]
                                == a["plaintext_envelopes"], "honest_refused_zero": a["honest_refused"] == 0}
        print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
