"""One ingestion asset per partner × extract type, partitioned by extract period.

Each run ingests one envelope (the sensor passes it in config) through :func:`landing.ingest.ingest_envelope`.
Outputs: ``raw/<partner>/<extract>`` (content, analytics zone) and, for person extracts,
``linkage/<partner>/<extract>`` (encodings, linkage zone). Blocking checks stop everything downstream
when an envelope is refused. Metadata holds counts, check names and file names only.
"""


from pathlib import Path

import dagster as dg

from envelope.format import EnvelopeRefused, read_manifest
from landing.arrivals import scan_landing
from landing.ingest import IngestError, IngestOutcome, finish_interrupted, ingest_envelope
from landing.validation import settings_for
from orchestration.defs.ingest.partitions import extract_periods
from orchestration.resources import DuckDBFile, GovernanceRegistry, VpdcHome, WarehouseKeys
from partner_kit import extract_types, load_profile, partners
from workspace import Home
from workspace.testhooks import step

CHECKS = ("envelope_verified", "no_plaintext_identifiers", "validation_suite")
_CHECK_OF = {"plaintext_identifier": "no_plaintext_identifiers", "validation": "validation_suite", "schema": "validation_suite"}


class IngestConfig(dg.Config):
    envelope: str = ""  # path relative to VPDC_HOME; empty: the newest envelope in landing for this partition


def asset_keys(partner: str, extract: str) -> list[dg.AssetKey]:
    keys = [dg.AssetKey(["raw", partner, extract])]
    if load_profile(partner, extract).kind == "persons":
        keys.append(dg.AssetKey(["linkage", partner, extract]))
    return keys


def op_name(partner: str, extract: str) -> str:
    return f"ingest_{partner}__{extract}"


def find_envelope(home: Home, partner: str, extract: str, period: str) -> Path | None:
    """The newest envelope waiting in ``landing/<partner>/`` for this extract and period."""
    best = None
    for a in scan_landing(home).arrivals:
        if a.partner != partner or a.special:
            continue
        try:
            m = read_manifest(a.path)
        except EnvelopeRefused:
            continue
        if (m.partner, m.extract_type, m.period) == (partner, extract, period) and (best is None or m.created_at > best[0]):
            best = (m.created_at, a.path)
    return best[1] if best else None


def check_results(outcome: IngestOutcome, keys: list[dg.AssetKey]) -> list[dg.AssetCheckResult]:
    failed = _CHECK_OF.get(outcome.check or "", "envelope_verified") if outcome.status != "loaded" else None
    order = list(CHECKS)
    results = []
    for name in order:
        if failed and order.index(name) > order.index(failed):
            continue  # not reached
        ok = name != failed
        meta = {"file": outcome.file}
        if not ok:
            meta |= {"refused_check": outcome.check or "", "detail": outcome.detail[:2000]}
        if name == "validation_suite" and outcome.report:
            meta["report"] = dg.MetadataValue.path(outcome.report)
        results.append(dg.AssetCheckResult(asset_key=keys[0], check_name=name, passed=ok, metadata=meta))
    return results


def build_ingest_asset(partner: str, extract: str) -> dg.AssetsDefinition:
    keys = asset_keys(partner, extract)
    outs = {k.path[0]: dg.AssetOut(key=k, is_required=True) for k in keys}

    @dg.multi_asset(
        name=op_name(partner, extract),
        outs=outs,
        partitions_def=extract_periods,
        pool="duckdb_writer",
        group_name="ingest",
        check_specs=[dg.AssetCheckSpec(c, asset=keys[0], blocking=True,
                                       description={"envelope_verified": "signature, checksum, row count, replay",
                                                    "no_plaintext_identifiers": "no column looks like identifiers in the clear",
                                                    "validation_suite": "Great Expectations suite of the partner schema"}[c])
                     for c in CHECKS],
        description=f"Verify, validate and load {partner} {extract} envelopes into the zones.",
    )
    def _ingest(context: dg.AssetExecutionContext, config: IngestConfig, vpdc_home: VpdcHome,
                keyring: WarehouseKeys, linkage_db: DuckDBFile, warehouse_db: DuckDBFile,
                registry: GovernanceRegistry):
        step("run.started")
        home = vpdc_home.home
        period = context.partition_key
        path = home.root / config.envelope if config.envelope else find_envelope(home, partner, extract, period)
        if path is None:
            raise dg.Failure(description=f"no envelope for {partner}/{extract} period {period} in {home.landing(partner)}")
        try:
            outcome = ingest_envelope(path, home, keyring.keyring(), settings=settings_for(home),
                                      linkage_db=linkage_db.path, warehouse_db=warehouse_db.path,
                                      audit=registry.audit_ingest)
        except IngestError as exc:
            raise dg.Failure(description=str(exc)) from None
        if outcome.status != "loaded":
            for r in check_results(outcome, keys):
                yield r
            raise dg.Failure(
                description=f"{outcome.file} quarantined ({outcome.check}): {outcome.detail[:500]}",
                metadata={"file": outcome.file, "check": outcome.check or "", "quarantine": str(home.quarantine)},
            )
        meta = {"rows": outcome.rows, "load_id": outcome.envelope_id or "", "is_current": bool(outcome.is_current),
                "superseded_loads": len(outcome.superseded), "file": outcome.file,
                **{f"seconds_{k}": round(v, 3) for k, v in outcome.seconds.items()}}
        for k in keys:
            yield dg.MaterializeResult(asset_key=k, metadata=meta)
        for r in check_results(outcome, keys):
            yield r

    return _ingest


ingest_assets = [build_ingest_asset(p, e) for p in partners() for e in extract_types(p)]

#: The load ledger (``raw.loads``): which envelope loaded which period, and which load is current. Every
#: ingestion run writes a row; staging models read only the rows of current loads.
load_ledger = dg.AssetSpec(["raw", "loads"], group_name="ingest",
                           description="raw.loads: one row per loaded envelope (partner, extract, period, "
                                       "schema and key versions, row count); the newest of a period is current.")

ingest_job = dg.define_asset_job("ingest_job", selection=dg.AssetSelection.groups("ingest"),
                                 partitions_def=extract_periods,
                                 description="Ingest one envelope (the landing sensor picks the asset and period).")


class TriageConfig(dg.Config):
    envelope: str


@dg.op(pool="duckdb_writer")
def quarantine_unroutable(context: dg.OpExecutionContext, config: TriageConfig, vpdc_home: VpdcHome,
                          keyring: WarehouseKeys, linkage_db: DuckDBFile, warehouse_db: DuckDBFile,
                          registry: GovernanceRegistry) -> None:
    """An envelope no asset can take (unreadable, unknown partner or extract, a second copy of a loaded
    envelope): refuse it with the precise check, quarantine and audit it."""
    step("run.started")
    home = vpdc_home.home
    try:
        outcome = ingest_envelope(home.root / config.envelope, home, keyring.keyring(), settings=settings_for(home),
                                  linkage_db=linkage_db.path, warehouse_db=warehouse_db.path,
                                  audit=registry.audit_ingest)
    except IngestError as exc:
        raise dg.Failure(description=str(exc)) from None
    context.log.info(f"{outcome.file}: {outcome.status} ({outcome.check})")
    if outcome.status != "loaded":
        raise dg.Failure(description=f"{outcome.file} quarantined ({outcome.check}): {outcome.detail[:500]}")


@dg.job(description="Quarantine an envelope that no ingestion asset can take.")
def triage_job() -> None:
    quarantine_unroutable()


@dg.op(pool="duckdb_writer")
def finish_interrupted_ingestion(context: dg.OpExecutionContext, vpdc_home: VpdcHome, linkage_db: DuckDBFile,
                                 warehouse_db: DuckDBFile, registry: GovernanceRegistry) -> None:
    """Complete what a killed ingestion left once its envelope had left landing/: the move or audit entry of a
    recorded outcome (:func:`landing.ingest.finish_interrupted`)."""
    done = finish_interrupted(vpdc_home.home, linkage_db=linkage_db.path, warehouse_db=warehouse_db.path,
                              audit=registry.audit_ingest)
    context.log.info(f"completed {done} interrupted ingestion outcome(s)")


@dg.job(description="Finish ingestion outcomes a crash interrupted (move, reason file, audit entry).")
def recover_job() -> None:
    finish_interrupted_ingestion()
