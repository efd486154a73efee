"""One linkage run over the linkage zone: full (train, predict, cluster) or incremental (new records only).

A full run trains the model (EM with fixed seeds), scores all blocked pairs and clusters them. An
incremental run reuses the saved model and scores only the records without a person key: within
themselves and against everyone else, then clusters them together with the existing persons (each
held together by membership edges), so a monthly increment does not re-link everything.

Both end in :func:`linkage.persons.assign_person_keys`, then the (source, source_record_id) →
person_key map with a confidence band is copied to the analytics zone, translated at the zone boundary
(the linkage zone's labels to the warehouse's ids, its person keys to the analytics ones): nothing else crosses.

A full run can train and score on Apache Spark instead of DuckDB (``engine="spark"``, :mod:`linkage.spark`):
the same model, blocking choice and predictions through Splink's Spark backend. The edges come back to the
linkage zone, where the same sibling rule (:func:`strong_edges`), connected components, held-out error estimate
and key assignment run on DuckDB as for a DuckDB run.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from landing.boundary import ZoneBoundary
from linkage.engine import DuckDBEngine, Engine
from linkage.model import (
    MODEL_VERSION,
    KeyVersionError,
    LinkageParams,
    build_settings,
    choose_blocking_rules,
    fill_unobserved,
    input_fingerprint,
    make_linker,
    model_in_dialect,
    model_json,
    prepare_inputs,
    sibling_rule,
    source_views,
    train,
    untrained_levels,
)
from linkage.persons import assign_person_keys, carry_keys_across_rotation, confidence_bands, ensure_tables

if TYPE_CHECKING:
    from linkage.spark import SparkOptions

__all__ = ["ENGINES", "LinkageMemoryError", "LinkageResult", "export_person_map", "run_linkage"]

#: where the pairs are scored: DuckDB (the default) or Apache Spark (the ``spark`` extra)
ENGINES = ("duckdb", "spark")

TF_COLUMNS = ("fn", "ln", "dob")


@dataclass
class LinkageResult:
    run_id: str
    mode: str
    linkage_key_version: str | None
    records: dict[str, int]
    new_records: int
    pairs: int
    persons: int
    key_events: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    blocking: dict[str, Any] = field(default_factory=dict)
    #: comparison levels whose m or u training left at a default (must be empty; the quality gate checks)
    untrained_levels: list[str] = field(default_factory=list)
    zero_record_sources: list[str] = field(default_factory=list)
    model_run_id: str | None = None
    charts: dict[str, str] = field(default_factory=dict)
    #: records whose person key moved from their previous-version id to their new one (a key rotation)
    key_events_carried: int = 0
    #: edges at or above the cluster threshold that the same-birthday sibling rule kept from joining persons
    held_apart_as_siblings: int = 0
    #: precision and recall estimated with the SSN held out (``linkage.holdout``; the rates come from the full
    #: run that trained the model and are applied to every run's clustering)
    error_estimate: dict[str, Any] = field(default_factory=dict)
    #: where pairs were scored and clustered ("duckdb" or "spark"), and the Spark master of a Spark run
    engine: str = "duckdb"
    spark_master: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _duckdb_api(con: duckdb.DuckDBPyConnection) -> Any:
    from splink import DuckDBAPI

    return DuckDBAPI(connection=con)


class LinkageMemoryError(Exception):
    """A run needed more memory than its limit (``LinkageParams.memory_limit``); nothing was committed."""


def run_linkage(
    linkage_db: Path,
    *,
    now: datetime,
    params: LinkageParams = LinkageParams(),
    mode: str = "auto",
    db_api_factory: Callable[[duckdb.DuckDBPyConnection], Any] = _duckdb_api,
    expected_sources: tuple[str, ...] = (),
    blocking_analysis: bool = True,
    charts_dir: Path | None = None,
    engine: str = "duckdb",
    spark: SparkOptions | None = None,
) -> LinkageResult:
    """Link every current record of the linkage zone; give persons stable keys.

    Args:
        linkage_db: the linkage zone.
        now: the clock.
        params: thresholds and seeds.
        mode: "full", "incremental" or "auto" (incremental when a model for the same key version
            exists and persons were already keyed).
        db_api_factory: Splink's database API for the connection (DuckDB by default; the settings are
            backend-neutral so the same model can run on Splink's Spark backend).
        expected_sources: sources that should have records; any with none is reported, not a crash.
        charts_dir: where a full run saves Splink's parameter charts (match weights, m/u), self-contained.
        engine: "duckdb" (default) or "spark": where a full run trains, scores and clusters. A Spark run is
            always a full run ("auto" means full there); keys and history are assigned in DuckDB either way.
        spark: the Spark master and settings of a Spark run (:class:`linkage.spark.SparkOptions`).

    Raises:
        KeyVersionError: mixed key versions in the inputs, or an incremental run asked for with a
            model of another key version or another model version (an older release's comparisons).
        LinkageMemoryError: the run needed more than ``params.memory_limit``; nothing was committed.
        linkage.spark.SparkEngineError: Spark asked for and not installed (no pyspark, no Java), or an
            incremental run asked of the Spark engine.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "spark":
        from linkage.spark import SparkEngineError, require_spark

        if mode == "incremental":
            raise SparkEngineError("the Spark engine runs full linkages only (person keys still carry over "
                                   "from run to run); run increments with --engine duckdb")
        require_spark()
        mode = "full"
    try:
        return _run_linkage(linkage_db, now=now, params=params, mode=mode, db_api_factory=db_api_factory,
                            expected_sources=expected_sources, blocking_analysis=blocking_analysis,
                            charts_dir=charts_dir, engine=engine, spark=spark)
    except Exception as exc:
        # Splink wraps DuckDB's error in its own exception (the original is the cause)
        if isinstance(exc, duckdb.OutOfMemoryException) or isinstance(exc.__cause__, duckdb.OutOfMemoryException):
            with duckdb.connect(str(linkage_db)) as con:
                _drop_splink_tables(con)  # the failed run's working tables: persisted ones would pile up
            raise LinkageMemoryError(
                f"linkage of {linkage_db.name} needed more memory than its limit (memory_limit={params.memory_limit}); "
                "nothing was committed and the previous person keys stand: raise the limit (link_job config "
                "memory_limit, LinkageParams.memory_limit) or free memory on this machine") from None
        raise


def _run_linkage(linkage_db: Path, *, now: datetime, params: LinkageParams, mode: str,
                 db_api_factory: Callable[[duckdb.DuckDBPyConnection], Any], expected_sources: tuple[str, ...],
                 blocking_analysis: bool, charts_dir: Path | None, engine: str,
                 spark: SparkOptions | None) -> LinkageResult:
    run_id = now.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    with duckdb.connect(str(linkage_db)) as con:
        if params.memory_limit:
            try:
                con.execute("set memory_limit = ?", [params.memory_limit])
            except duckdb.Error:
                raise ValueError(f"memory_limit={params.memory_limit!r} is not a memory size (for example '3GB', "
                                 "'512MB')") from None
        ensure_tables(con)
        if not con.execute("select count(*) from information_schema.tables where table_name = 'encodings'").fetchall()[0][0]:
            # nothing ingested yet: report every expected source as empty
            result = LinkageResult(run_id, "none", None, {}, 0, 0, 0, {}, zero_record_sources=sorted(expected_sources),
                                   seconds={"total": time.perf_counter() - t0})
            _record_run(con, result, now, None, params, "")
            return result
        previous = con.execute("select run_id, model_version, linkage_key_version from linkage_runs "
                               "where model_run_id = run_id order by finished_at desc limit 1").fetchall()
        has_keys = con.execute("select count(*) from person_keys").fetchall()[0][0] > 0
        maybe_incremental = mode != "full" and bool(previous) and has_keys
        t = time.perf_counter()
        info = prepare_inputs(con, incremental=maybe_incremental)
        key_version = info["key_version"]
        if previous and previous[0][2] != key_version and key_version is not None:
            if mode == "incremental":
                raise KeyVersionError(f"the saved model was trained on linkage key {previous[0][2]}, the inputs are "
                                      f"{key_version}: run a full linkage")
            mode = "full"
            info = prepare_inputs(con)  # a new key version: every input is rebuilt for the retrain
        elif previous and previous[0][1] != MODEL_VERSION and maybe_incremental:
            # the saved model has other comparisons (an older release; a new encoding scheme): it cannot score
            # these inputs, and the records it linked were encoded for it, so everything is linked again
            if mode == "incremental":
                raise KeyVersionError(f"the saved model is {previous[0][1]}, this release links with {MODEL_VERSION}: "
                                      "run a full linkage")
            mode = "full"
            info = prepare_inputs(con)
        timings["inputs"] = time.perf_counter() - t
        if mode == "auto":
            mode = "incremental" if previous and has_keys else "full"
        records = info["records"]
        zero = sorted(s for s in expected_sources if not records.get(s))
        result = LinkageResult(run_id, mode, key_version, records, 0, 0, 0, {}, zero_record_sources=zero)
        total = sum(records.values())
        if total == 0:
            result.seconds = {"total": time.perf_counter() - t0}
            _record_run(con, result, now, None, params, "")
            return result

        # working tables of one run live in memory, not in the file: only inputs, edges and keys persist
        for name in ("link_new", "link_nodes", "link_cluster_edges", "link_clusters", "link_membership"):
            con.execute(f"drop table if exists main.{name}")
        with _open_engine(engine, con, linkage_db, db_api_factory, spark, timings) as eng:
            result.engine = eng.dialect
            result.spark_master = getattr(eng, "master", None)
            t = time.perf_counter()
            if mode == "full":
                model = _predict_full(con, eng, params, result, total=total, run_id=run_id, key_version=key_version,
                                      blocking_analysis=blocking_analysis, charts_dir=charts_dir, timings=timings)
            else:
                model = _predict_increment(con, eng.db_api, params, result, model_run_id=previous[0][0],
                                           timings=timings)
            timings["predict"] = time.perf_counter() - t
            t = time.perf_counter()
            # the run's edges (kept: the quality report reads them) come back to the linkage zone, where the
            # sibling rule, clustering, error estimate and keys run on DuckDB whichever engine scored the pairs
            eng.to_duckdb(con, "link_edges", persist=True)
            timings["to_linkage_zone"] = time.perf_counter() - t
            db_api = eng.db_api if eng.dialect == "duckdb" else db_api_factory(con)
        result.pairs = con.execute("select count(*) from link_edges").fetchall()[0][0]
        t = time.perf_counter()
        result.held_apart_as_siblings = _cluster(con, db_api, params, mode)
        timings["cluster"] = time.perf_counter() - t
        if params.holdout_estimate:
            t = time.perf_counter()
            result.error_estimate = _error_estimate(con, db_api, params, model, mode, result.model_run_id)
            timings["error_estimate"] = time.perf_counter() - t
        # keys, history and the run record commit together: a crash here leaves the previous keys intact
        t1 = time.perf_counter()
        con.execute("begin")
        if previous and previous[0][2] and key_version and previous[0][2] != key_version:
            # the first run under a rotated linkage secret: each record's person key moves to its new id
            result.key_events_carried = carry_keys_across_rotation(con, from_version=previous[0][2],
                                                                   to_version=key_version)
        confidence_bands(con, "link_clusters", "link_edges")
        result.key_events = assign_person_keys(con, "link_clusters", run_id=run_id, now=now)
        timings["keys"] = time.perf_counter() - t1
        timings["cluster_and_keys"] = time.perf_counter() - t
        result.persons = con.execute("select count(distinct person_key) from person_keys").fetchall()[0][0]
        result.seconds = timings | {"total": time.perf_counter() - t0}
        _record_run(con, result, now, model.get("training_fingerprint"), params, result.model_run_id or "")
        if mode == "full":
            con.execute("insert into linkage_models values (?, ?, ?)", [run_id, now, json.dumps(model)])
        con.execute("commit")
        _drop_splink_tables(con)
    return result


@contextmanager
def _open_engine(engine: str, con: duckdb.DuckDBPyConnection, linkage_db: Path,
                 db_api_factory: Callable[[duckdb.DuckDBPyConnection], Any], spark: SparkOptions | None,
                 timings: dict[str, float]) -> Iterator[Engine]:
    """The engine of this run; a Spark one is given the run's inputs (exported from the linkage zone) and
    removes its working files when the run ends, however it ends."""
    if engine == "duckdb":
        yield DuckDBEngine(con, db_api_factory(con))
        return
    from linkage.spark import SparkOptions, open_spark_engine

    with open_spark_engine(con, linkage_db, spark or SparkOptions(), timings) as eng:
        yield eng


def _predict_full(con: duckdb.DuckDBPyConnection, engine: Engine, params: LinkageParams, result: LinkageResult, *,
                  total: int, run_id: str, key_version: str | None, blocking_analysis: bool,
                  charts_dir: Path | None, timings: dict[str, float]) -> dict[str, Any]:
    """A full run: train the model (EM, fixed seeds) and score every blocked pair into ``link_edges``.

    Returns the model to save (Splink settings and parameters, key version, training fingerprint), in
    DuckDB's SQL dialect whichever engine trained it.
    """
    t = time.perf_counter()
    # the nodes of clustering, which runs in the linkage zone's DuckDB whichever engine scores the pairs
    con.execute("create or replace temp table link_nodes as select source_dataset || ':' || unique_id as node_id, "
                "source_dataset as source, unique_id as source_record_id from link_input")
    views = source_views(engine)
    linker = make_linker(engine.db_api, views, build_settings(params, dialect=engine.dialect))
    timings["setup"] = time.perf_counter() - t
    t = time.perf_counter()
    trained = train(linker, params, engine, views)
    timings["train"] = time.perf_counter() - t
    result.untrained_levels = fill_unobserved(trained) + untrained_levels(trained)
    t = time.perf_counter()
    # blocking from the data at hand: Splink's blocking analysis, then each rule's share of the expected
    # matches under the trained model; its scored pairs are this run's predictions
    choice = choose_blocking_rules(trained, engine, views, total, params)
    result.blocking = choice
    timings["blocking_and_predict"] = time.perf_counter() - t
    engine.table("link_edges", "select source_dataset_l || ':' || unique_id_l node_id_l, "
                 "source_dataset_r || ':' || unique_id_r node_id_r, match_probability from _block_kept", persist=True)
    result.model_run_id, result.new_records = run_id, total
    del blocking_analysis  # the analysis is part of every full run now (the rules depend on it)
    final = make_linker(engine.db_api, views, trained | {"blocking_rules_to_generate_predictions": choice["rules"]})
    if charts_dir is not None:
        result.charts = _save_charts(final, charts_dir, run_id)
    model = model_json(final, key_version=key_version, fingerprint=input_fingerprint(con), params=params)
    if engine.dialect != "duckdb":  # saved models are read by DuckDB's incremental runs
        model["splink"] = model_in_dialect(model["splink"], params, "duckdb")
    return model


def _predict_increment(con: duckdb.DuckDBPyConnection, db_api: Any, params: LinkageParams, result: LinkageResult, *,
                       model_run_id: str, timings: dict[str, float]) -> dict[str, Any]:
    """An incremental run: the saved model scores the records without a person key, within themselves and
    against everyone else, into ``link_edges``; the touched persons become one node each (``link_nodes``)."""
    t = time.perf_counter()
    model = json.loads(con.execute("select model_json from linkage_models where run_id = ?",
                                   [model_run_id]).fetchall()[0][0])
    result.model_run_id = model_run_id
    # dedupe_only over node ids (source:record) — predictions then need no source column
    keyed = ("(select 1 from person_keys p where p.source = i.source_dataset and "
             "p.source_record_id = i.unique_id)")
    node = "* replace (source_dataset || ':' || unique_id as unique_id)"
    con.execute(f"create or replace temp table link_new as select {node} from link_input i where not exists {keyed}")
    # a view: the existing records are only read, through Splink's blocking joins (a dozen times). It
    # excludes the few new keys rather than joining every record to person_keys on each of its reads.
    con.execute("drop view if exists main.link_old")  # a persistent view of earlier versions
    con.execute("create or replace temp table _increment_keys as select source_dataset, split_part(unique_id, ':', 2) "
                "unique_id from link_new")
    con.execute(f"create or replace temp view link_old as select {node} from link_input i where not exists "
                "(select 1 from _increment_keys k where k.source_dataset = i.source_dataset and k.unique_id = i.unique_id)")
    result.new_records = con.execute("select count(*) from link_new").fetchall()[0][0]
    if result.new_records == 0:
        con.execute("create or replace table link_edges (node_id_l varchar, node_id_r varchar, "
                    "match_probability double)")
    else:
        from splink import Linker

        timings["new_and_old"] = time.perf_counter() - t
        old, new = db_api.register("link_old"), db_api.register("link_new")
        linker = Linker([old], model["splink"] | {"link_type": "dedupe_only"}, log_level=logging.ERROR)
        t1 = time.perf_counter()
        for col in TF_COLUMNS:
            linker.table_management.compute_tf_table(col)
        timings["tf_tables"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        within = linker.inference.predict_within(new, threshold_match_probability=params.predict_threshold)
        timings["score_within_new"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        between = linker.inference.predict_between(new, old, threshold_match_probability=params.predict_threshold)
        timings["score_new_vs_old"] = time.perf_counter() - t1
        con.execute(f"create or replace table link_edges as select unique_id_l node_id_l, unique_id_r node_id_r, "
                    f"match_probability from {within.physical_name} union all select unique_id_l, unique_id_r, "
                    f"match_probability from {between.physical_name}")
    # Only persons reached by a new edge can change: cluster that subgraph alone. Each touched person
    # is one node ("pk:<key>", its records held together by the person itself), so the graph is the
    # new records plus the touched persons, whatever their number of records; every other person
    # keeps its key without being re-clustered, and the cost follows the increment's size.
    threshold = float(params.cluster_threshold)
    con.execute(f"""create or replace temp table _touched as
        with ends as (select node_id_l n from link_edges where match_probability >= {threshold}
                      union select node_id_r from link_edges where match_probability >= {threshold})
        select distinct p.person_key from person_keys p
        join ends on ends.n = p.source || ':' || p.source_record_id""")
    con.execute("""create or replace temp table _touched_records as
        select source || ':' || source_record_id node_id, source, source_record_id, 'pk:' || person_key person_node
        from person_keys where person_key in (select person_key from _touched)""")
    con.execute("""create or replace temp table link_nodes as
        select source_dataset || ':' || split_part(unique_id, ':', 2) node_id from link_new
        union all
        select 'pk:' || person_key from _touched""")
    return model


def strong_edges(con: duckdb.DuckDBPyConnection, edges: str, out: str, params: LinkageParams, *,
                 table: str = "link_input") -> int:
    """``out``: the edges of ``edges`` (node ids ``source:record``) at or above the cluster threshold that may join
    two records into one person, i.e. less those the same-birthday sibling rule holds apart (read from the model
    inputs ``table``). Returns how many were held apart."""
    threshold = float(params.cluster_threshold)
    con.execute(f"create or replace temp table {out} as select * from {edges} where match_probability >= {threshold}")
    if not params.separate_same_birthday_siblings:
        return 0
    before = con.execute(f"select count(*) from {out}").fetchall()[0][0]
    # node ids are '<source label>:<record label>'; labels hold no colon
    con.execute(f"""create or replace temp table {out} as select e.* from {out} e
        join {table} l on l.source_dataset = split_part(e.node_id_l, ':', 1) and l.unique_id = split_part(e.node_id_l, ':', 2)
        join {table} r on r.source_dataset = split_part(e.node_id_r, ':', 1) and r.unique_id = split_part(e.node_id_r, ':', 2)
        where not {sibling_rule(params)}""")
    return before - con.execute(f"select count(*) from {out}").fetchall()[0][0]


def components(con: duckdb.DuckDBPyConnection, db_api: Any, nodes: str, edges: str, out: str,
               params: LinkageParams) -> None:
    """``out`` (node_id, cluster_id) for every node of ``nodes``: connected components of ``edges``.

    Splink clusters the nodes that have an edge; a node without one is a cluster of its own (its id is its
    cluster id), which spares the connected-components passes most of a run's records."""
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    con.execute(f"""create or replace temp table _linked_nodes as
        select node_id from {nodes} semi join (select node_id_l n from {edges} union select node_id_r from {edges}) e
            on e.n = {nodes}.node_id""")
    clustered = cluster_pairwise_predictions_at_threshold(
        db_api.register("_linked_nodes"), db_api.register(edges), db_api, node_id_column_name="node_id",
        edge_id_column_name_left="node_id_l", edge_id_column_name_right="node_id_r",
        threshold_match_probability=params.cluster_threshold)
    con.execute(f"""create or replace temp table {out} as
        select node_id, cluster_id::varchar cluster_id from {clustered.physical_name}
        union all
        select node_id, node_id from {nodes} anti join _linked_nodes using (node_id)""")


def _cluster(con: duckdb.DuckDBPyConnection, db_api: Any, params: LinkageParams, mode: str) -> int:
    """Connected components of the edges at or above the cluster threshold that the sibling rule does not hold
    apart, into ``link_clusters`` (source, source_record_id, cluster_id); in an increment a person node stands
    for all its records. Returns the number of edges held apart."""
    held_apart = strong_edges(con, "link_edges", "_strong_edges", params)
    if mode == "full":
        con.execute("create or replace temp table link_cluster_edges as select * from _strong_edges")
    else:  # an edge to an existing record is an edge to its person
        con.execute("""create or replace temp table link_cluster_edges as
            select coalesce(l.person_node, e.node_id_l) node_id_l, coalesce(r.person_node, e.node_id_r) node_id_r,
                   e.match_probability
            from _strong_edges e
            left join _touched_records l on l.node_id = e.node_id_l
            left join _touched_records r on r.node_id = e.node_id_r""")
    components(con, db_api, "link_nodes", "link_cluster_edges", "_node_clusters", params)
    if mode == "full":
        con.execute("create or replace temp table link_clusters as select n.node_id, n.source, n.source_record_id, "
                    "c.cluster_id from _node_clusters c join link_nodes n using (node_id)")
    else:  # a person node stands for every record of that person
        con.execute("""create or replace temp table link_clusters as
            select c.node_id, split_part(c.node_id, ':', 1) source, split_part(c.node_id, ':', 2) source_record_id,
                   c.cluster_id
            from _node_clusters c where c.node_id not like 'pk:%'
            union all
            select t.node_id, t.source, t.source_record_id, c.cluster_id
            from _node_clusters c join _touched_records t on t.person_node = c.node_id""")
    return held_apart


def _error_estimate(con: duckdb.DuckDBPyConnection, db_api: Any, params: LinkageParams, model: dict[str, Any],
                    mode: str, model_run_id: str | None) -> dict[str, Any]:
    """Precision and recall of this run's clustering with the SSN held out (``linkage.holdout``, ADR 0012).

    A full run measures the held-out rates (a second linkage of every record with every SSN field blanked,
    labelled by the records that carry one); an increment reuses those of the run that trained its model and
    applies them to the whole current clustering (the new keys with the old)."""
    from linkage.holdout import apply_rates, holdout_rates

    if mode == "full":
        def cluster(c: duckdb.DuckDBPyConnection, api: Any, nodes: str, edges: str) -> str:
            strong_edges(c, edges, "_ho_strong", params, table="_ho_input")
            components(c, api, nodes, "_ho_strong", "_ho_node_clusters", params)
            return "_ho_node_clusters"

        rates = holdout_rates(con, db_api, model["splink"], params, cluster=cluster)
    else:
        rows = con.execute("select result from linkage_runs where run_id = ?", [model_run_id]).fetchall()
        rates = (json.loads(rows[0][0]).get("error_estimate") or {}).get("rates", {}) if rows else {}
        if not rates:
            rates = {"available": False, "reason": "the run that trained the model measured no held-out rates"}
    if mode == "full":
        return apply_rates(con, "link_clusters", rates, params)
    # an increment re-clusters only what it touched: everyone else keeps their current person key
    con.execute("""create or replace temp table _est_clusters as
        select source, source_record_id, cluster_id from link_clusters
        union all
        select p.source, p.source_record_id, 'pk:' || p.person_key from person_keys p
        anti join link_clusters c on c.source = p.source and c.source_record_id = p.source_record_id""")
    return apply_rates(con, "_est_clusters", rates, params)


def _save_charts(linker: Any, charts_dir: Path, run_id: str) -> dict[str, str]:
    """Aggregate parameter charts only (never record-level), with vega inlined so they open offline."""
    charts_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, chart in (("match_weights", linker.visualisations.match_weights_chart()),
                        ("m_u_parameters", linker.visualisations.m_u_parameters_chart())):
        path = charts_dir / f"{run_id}.{name}.html"
        chart.save(str(path), inline=True)
        out[name] = path.name
    return out


def _save_edges(con: duckdb.DuckDBPyConnection, physical: str, table: str) -> None:
    con.execute(f"create or replace table {table} as select source_dataset_l || ':' || unique_id_l node_id_l, "
                f"source_dataset_r || ':' || unique_id_r node_id_r, match_probability from {physical}")


def _drop_splink_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name, kind in con.execute("select table_name, table_type from information_schema.tables "
                                  "where table_name like '__splink__%'").fetchall():
        con.execute(f'drop {"view" if kind == "VIEW" else "table"} if exists "{name}"')


def _record_run(con: duckdb.DuckDBPyConnection, r: LinkageResult, now: datetime, fingerprint: str | None,
                params: LinkageParams, model_run_id: str) -> None:
    con.execute("insert into linkage_runs values (?, ?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [r.run_id, now, r.mode, model_run_id or None, MODEL_VERSION, r.linkage_key_version, fingerprint,
                 sum(r.records.values()), r.persons, r.new_records, r.pairs, r.seconds.get("total", 0.0),
                 json.dumps(asdict(params)), json.dumps(r.as_dict(), default=str)])


def export_person_map(linkage_db: Path, warehouse_db: Path, *, run_id: str, boundary: ZoneBoundary) -> int:
    """Copy only (source, source_record_id) → person_key and confidence band into the analytics zone.

    The two zones share no key (ADR 0010): the linkage zone's sources and record ids are the zone boundary's labels
    and its person keys are its own. This is the one place they are translated: each of the warehouse's own
    record ids is labelled as landing labelled it and matched to the linkage zone's, and each linkage person key
    becomes the analytics person key the boundary derives from it (stable as long as the linkage key is).

    ``raw.person_map`` is the current map; ``raw.person_map_versions`` is the change log of every run,
    from which ``linkage.persons.person_keys_as_of`` rebuilds the map a study pinned;
    ``raw.person_key_events`` lists merges and splits. Nothing else crosses.
    """
    rid, rid_params = boundary.record_label_sql("r.source", "r.source_record_id")
    lz_source, source_params = boundary.source_label_sql("r.source")
    pk, pk_params = boundary.person_key_sql("person_key")
    other, _ = boundary.person_key_sql("other_key")
    with duckdb.connect(str(warehouse_db)) as wh:
        wh.execute(f"attach '{str(linkage_db).replace(chr(39), chr(39) * 2)}' as lz (read_only)")
        wh.execute("create schema if not exists raw")
        # the warehouse's record ids of every person extract, with the labels the linkage zone knows them by
        persons = _person_tables(wh, boundary)
        ids = " union ".join(f"select source, source_record_id from raw.{t}" for t in persons) or \
            "select null::varchar source, null::varchar source_record_id where false"
        wh.execute(f"""create or replace temp table _boundary_ids as
            select r.source, r.source_record_id, {lz_source} lz_source, {rid} lz_id from ({ids}) r""",
                   rid_params | source_params)
        wh.execute(f"create or replace temp table _boundary_keys as select person_key, {pk} wh_key "
                   "from (select distinct person_key from lz.person_key_versions)", pk_params)
        wh.execute("begin")
        aliases = wh.execute("select count(*) from information_schema.tables where table_catalog = 'lz' "
                             "and table_name = 'record_aliases'").fetchall()[0][0]
        # a record sent under two linkage-secret versions (a rotation) is in the map under both ids, so content
        # rows of either load join to the same person (ADR 0005)
        alias_rows = """
            union
            select a.source, a.previous_id, k.person_key, k.match_confidence, k.run_id, 1
            from lz.record_aliases a join lz.person_keys k on k.source = a.source and k.source_record_id = a.source_record_id
            union
            select a.source, a.source_record_id, k.person_key, k.match_confidence, k.run_id, 1
            from lz.record_aliases a join lz.person_keys k on k.source = a.source and k.source_record_id = a.previous_id
        """ if aliases else ""
        wh.execute(f"""create or replace table raw.person_map as
            with m as (select source, source_record_id, person_key, match_confidence, run_id, 0 as via_alias
                       from lz.person_keys {alias_rows})
            select b.source, b.source_record_id, k.wh_key person_key, m.match_confidence, m.run_id as linkage_run_id
            from m join _boundary_ids b on b.lz_source = m.source and b.lz_id = m.source_record_id
            join _boundary_keys k using (person_key)
            qualify row_number() over (partition by b.source, b.source_record_id order by m.via_alias, k.wh_key) = 1""")
        # the change log of every run (linkage.persons.person_keys_as_of rebuilds a pinned run's map)
        wh.execute("""create or replace table raw.person_map_versions as
            select v.run_id as linkage_run_id, b.source, b.source_record_id, k.wh_key person_key, v.match_confidence
            from lz.person_key_versions v join _boundary_ids b on b.lz_source = v.source and b.lz_id = v.source_record_id
            join _boundary_keys k using (person_key)""")
        wh.execute(f"create or replace table raw.person_key_events as select run_id as linkage_run_id, event_at, event, "
                   f"{pk} person_key, {other} other_key, records from lz.person_key_history", pk_params)
        wh.execute("create or replace table raw.linkage_runs as select run_id as linkage_run_id, started_at, "
                   "finished_at, mode, linkage_key_version, records, persons, new_records from lz.linkage_runs")
        wh.execute("commit")
        n = wh.execute("select count(*) from raw.person_map").fetchall()[0][0]
        wh.execute("detach lz")
    return n


def _person_tables(wh: duckdb.DuckDBPyConnection, boundary: ZoneBoundary) -> list[str]:
    """The warehouse's raw tables of extracts that the linkage zone holds encodings of (by their labels)."""
    extracts = wh.execute("select distinct source, extract_type from raw.loads").fetchall()
    labels = {r[0] for r in wh.execute("select distinct extract_type from lz.loads").fetchall()}
    return sorted(f"{s}__{e}" for s, e in extracts if boundary.extract_label(s, e) in labels)
