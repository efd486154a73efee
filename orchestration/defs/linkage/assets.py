"""Linkage assets: one Splink session materialises model, predictions, clusters and person keys;
the quality report checks floors (blocking) before the person map reaches the analytics zone."""

from datetime import UTC, datetime

import dagster as dg

from landing.boundary import ZoneBoundary
from linkage.model import KeyVersionError, LinkageParams
from linkage.pipeline import report_latest_run, with_source_names
from linkage.quality import QualityFloors
from linkage.run import export_person_map, run_linkage
from linkage.spark import SparkOptions
from orchestration.resources import VpdcHome, WarehouseKeys
from partner_kit import extract_types, load_profile, partners

PERSON_INPUTS = [dg.AssetKey(["linkage", p, e]) for p in partners() for e in extract_types(p)
                 if load_profile(p, e).kind == "persons"]
STAGES = {"model": "trained Fellegi-Sunter model (m/u, lambda), saved as JSON with key version and fingerprint",
          "predictions": "scored candidate pairs from the blocking rules (linkage zone only)",
          "clusters": "connected components of pairs above the cluster threshold",
          "person_keys": "(source, source_record_id) -> stable person key, with merge/split history"}


class LinkageConfig(dg.Config):
    mode: str = "auto"  # auto | full | incremental
    predict_threshold: float = 0.5
    cluster_threshold: float = 0.9
    #: DuckDB's memory for the run (past it, it spills to the zone's temp folder); a run that needs more stops
    #: with nothing committed and says so
    memory_limit: str | None = LinkageParams.memory_limit
    #: duckdb (default) | spark: where a full run trains and scores pairs (docs/spark.md)
    engine: str = "duckdb"
    #: the Spark master of a Spark run: local[N] (in this process) or a cluster URL (spark://host:7077, yarn, k8s://...)
    spark_master: str = "local[2]"
    #: Spark's shuffle partitions (0: 4 per local core, or the cluster's default)
    spark_shuffle_partitions: int = 0


@dg.multi_asset(
    name="link_persons",
    outs={k: dg.AssetOut(key=["linkage", k], description=d) for k, d in STAGES.items()},
    deps=PERSON_INPUTS,
    pool="duckdb_writer",
    group_name="linkage",
    description="Link every current person record on encodings alone (full or incremental run).",
)
def link_persons(context: dg.AssetExecutionContext, config: LinkageConfig, vpdc_home: VpdcHome, keyring: WarehouseKeys):
    home = vpdc_home.home
    params = LinkageParams(predict_threshold=config.predict_threshold, cluster_threshold=config.cluster_threshold,
                           memory_limit=config.memory_limit)
    # the linkage zone knows sources by the boundary's labels only (ADR 0010); names are given back here
    names = ZoneBoundary.from_keyring(keyring.keyring()).source_names(partners())
    spark = SparkOptions(master=config.spark_master, shuffle_partitions=config.spark_shuffle_partitions or None)
    try:
        result = run_linkage(home.linkage_db, now=datetime.now(UTC), params=params, mode=config.mode,
                             expected_sources=tuple(names), charts_dir=home.reports / "linkage",
                             engine=config.engine, spark=spark if config.engine == "spark" else None)
    except KeyVersionError as exc:  # names the sources to re-send by label: say which partners they are
        raise type(exc)(with_source_names(str(exc), names)) from None
    context.log.info(f"linkage run {result.run_id}: {result.mode} on {result.engine}, "
                     f"{sum(result.records.values())} records, {result.persons} persons")
    common = {"run_id": result.run_id, "mode": result.mode}
    yield dg.MaterializeResult(asset_key=["linkage", "model"], metadata={
        **common, "engine": result.engine, "model_run_id": result.model_run_id or "",
        "linkage_key_version": result.linkage_key_version or "",
        "seconds_train": round(result.seconds.get("train", 0.0), 2)})
    yield dg.MaterializeResult(asset_key=["linkage", "predictions"], metadata={**common, "pairs": result.pairs})
    yield dg.MaterializeResult(asset_key=["linkage", "clusters"], metadata={**common, "persons": result.persons})
    yield dg.MaterializeResult(asset_key=["linkage", "person_keys"], metadata={
        **common, **{f"keys_{k}": v for k, v in result.key_events.items()},
        "records": sum(result.records.values()), "new_records": result.new_records,
        "zero_record_sources": ", ".join(names.get(s, s) for s in result.zero_record_sources) or "none",
        "charts": ", ".join(result.charts.values()) or "none"})


FLOOR_CHECKS = ("estimated_precision", "estimated_recall")


class QualityConfig(dg.Config):
    """Floors below which the person map (and every mart after it) is not refreshed."""

    min_estimated_precision: float = QualityFloors().min_estimated_precision
    min_estimated_recall: float = QualityFloors().min_estimated_recall


@dg.asset(
    key=["reports", "linkage_quality"],
    deps=[dg.AssetKey(["linkage", "person_keys"])],
    group_name="linkage",
    check_specs=[dg.AssetCheckSpec(c, asset=["reports", "linkage_quality"], blocking=True,
                                   description=f"{' '.join(c.split('_'))} at or above its configured floor")
                 for c in FLOOR_CHECKS],
    description="Linkage quality report (HTML + JSON under reports/linkage): aggregate figures only.",
)
def linkage_quality(context: dg.AssetExecutionContext, config: QualityConfig, vpdc_home: VpdcHome,
                    keyring: WarehouseKeys):
    home = vpdc_home.home
    floors = QualityFloors(min_estimated_precision=config.min_estimated_precision,
                           min_estimated_recall=config.min_estimated_recall)
    names = ZoneBoundary.from_keyring(keyring.keyring()).source_names(partners())
    report, checks, html_path = report_latest_run(home, run_extra={}, now=datetime.now(UTC), floors=floors,
                                                  source_names=names)
    yield dg.MaterializeResult(metadata={"run_id": report["run"]["run_id"], "report": dg.MetadataValue.path(str(html_path)),
                                         "estimated_precision": report["estimated"]["precision"],
                                         "estimated_recall": report["estimated"]["recall"]})
    for name, passed, detail in checks:
        if name in FLOOR_CHECKS:
            yield dg.AssetCheckResult(check_name=name, passed=passed, metadata={"value": detail})


@dg.asset(
    key=["raw", "person_map"],
    deps=[dg.AssetKey(["reports", "linkage_quality"])],
    pool="duckdb_writer",
    group_name="linkage",
    description="Only (source, source_record_id) -> person_key and match-confidence band, into the analytics zone, "
                "translated at the zone boundary (the analytics person key is not the linkage zone's).",
)
def person_map(vpdc_home: VpdcHome, keyring: WarehouseKeys) -> dg.MaterializeResult:
    from linkage.pipeline import latest_run

    home = vpdc_home.home
    run = latest_run(home.linkage_db)
    n = export_person_map(home.linkage_db, home.warehouse_db, run_id=run["run_id"],
                          boundary=ZoneBoundary.from_keyring(keyring.keyring()))
    return dg.MaterializeResult(metadata={"records": n, "linkage_run_id": run["run_id"]})


link_job = dg.define_asset_job("link_job", selection=dg.AssetSelection.groups("linkage"),
                               description="Link persons, report quality, export the person map.")
