"""Linkage quality against the synthetic ground truth: an engineers' harness, never a pipeline step.

The simulator's truth file names native record ids; the linkage zone holds keyed pseudonymous ids. Scoring maps
one onto the other with the partner kit's own record-id function, so it needs the key custodian's linkage secret:
that is why it lives in no zone's package (ADR 0010: neither the linkage zone nor the warehouse may load that
secret; an architecture test keeps ``linkage``, ``landing``, ``governance`` and the shells' pipeline code from
importing this package). What it writes is the linkage report's ``truth`` section: aggregate figures only.

Metrics:
* pairwise precision / recall / F1 over record pairs in one cluster vs one true person;
* cluster precision / recall: predicted clusters that equal a true person's records exactly;
* per-record error by subgroup (race/ethnicity, sex, age band, source): a record has a *missed link*
  when a true partner of it is outside its cluster, a *false link* when its cluster holds another
  person's record. Groups whose rate exceeds ``flag_ratio`` × the overall rate are flagged.

Every true record counts: one a kit rejected, or that never reached the zone, is its own person, so its true
partners are missed links.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from envelope.keys import LinkageSecret
from landing.boundary import ZoneBoundary
from partner_kit import Encoder, load_profile
from workspace import Home

__all__ = ["PERSON_EXTRACTS", "age_band", "cluster_metrics", "evaluate_latest_run", "load_truth", "pairwise_metrics",
           "subgroup_errors", "add_truth", "true_threshold_rows", "truth_section"]

PERSON_EXTRACTS = {"county": "clients", "police": "persons", "schools": "students", "hospital_a": "patients",
                   "hospital_b": "patients"}


def age_band(birth_year_sql: str, as_of_year: int) -> str:
    age = f"({as_of_year} - {birth_year_sql})"
    return (f"case when {birth_year_sql} is null then 'unknown' when {age} < 12 then '0-11' when {age} < 18 "
            f"then '12-17' when {age} < 25 then '18-24' when {age} < 35 then '25-34' when {age} < 50 then '35-49' "
            f"when {age} < 65 then '50-64' else '65+' end")


def load_truth(con: duckdb.DuckDBPyConnection, truth_path: Path, secret: LinkageSecret, *,
               boundary: ZoneBoundary | None, table: str = "truth") -> int:
    """Load the truth file into ``table`` keyed by (source, source_record_id) as the linkage zone sees them.

    Args:
        boundary: the zone boundary whose labels the linkage zone holds (ADR 0010), or None for a zone built
            without one (the attack suite's, which keeps partner names and kit ids). ``source_name`` keeps the
            partner's name for the per-source error rates.
    """
    t = pq.read_table(truth_path)
    enc = Encoder(secret)
    namespaces = {s: load_profile(s, e).record_id["namespace"] for s, e in PERSON_EXTRACTS.items()}
    sources, rids = t["source"].to_pylist(), t["record_id"].to_pylist()
    ids = [enc.record_id(namespaces[s], r.strip()) for s, r in zip(sources, rids, strict=True)]
    names = sources
    if boundary is not None:
        ids = [boundary.record_label(s, i) for s, i in zip(sources, ids, strict=True)]
        labels = {s: boundary.source_label(s) for s in set(sources)}
        sources = [labels[s] for s in sources]
    t = t.drop_columns(["source"]).append_column("source", pa.array(sources)).append_column(
        "source_record_id", pa.array(ids)).append_column("source_name", pa.array(names))
    con.register("_truth_arrow", t)
    con.execute(f"create or replace table {table} as select source, source_record_id, person_id, race_eth, sex, "
                f"birth_year, noise, source_name from _truth_arrow")
    con.unregister("_truth_arrow")
    return t.num_rows


def _pairs(n: str) -> str:
    return f"({n}) * ({n} - 1) / 2"


def pairwise_metrics(con: duckdb.DuckDBPyConnection, clusters: str, truth: str = "truth") -> dict[str, Any]:
    """Pairwise P/R/F1 of a clustering (``clusters``: source, source_record_id, cluster_id)."""
    tp, pred, true = con.execute(f"""
        with j as (select c.cluster_id, t.person_id from {clusters} c
                   join {truth} t on t.source = c.source and t.source_record_id = c.source_record_id)
        select
          (select coalesce(sum({_pairs('n')}), 0) from (select count(*) n from j group by cluster_id, person_id)),
          (select coalesce(sum({_pairs('n')}), 0) from (select count(*) n from j group by cluster_id)),
          (select coalesce(sum({_pairs('n')}), 0) from (select count(*) n from j group by person_id))
    """).fetchall()[0]
    return _prf(tp, pred, true)


def _prf(tp: float, pred: float, true: float) -> dict[str, Any]:
    p = tp / pred if pred else 1.0
    r = tp / true if true else 1.0
    return {"true_positive_pairs": int(tp), "predicted_pairs": int(pred), "true_pairs": int(true),
            "precision": round(p, 5), "recall": round(r, 5), "f1": round(2 * p * r / (p + r), 5) if p + r else 0.0}


def cluster_metrics(con: duckdb.DuckDBPyConnection, clusters: str, truth: str = "truth") -> dict[str, Any]:
    """Exact-cluster precision and recall: a cluster counts when it equals one true person's records."""
    exact, n_pred, n_true = con.execute(f"""
        with j as (select c.cluster_id, t.person_id from {clusters} c
                   join {truth} t on t.source = c.source and t.source_record_id = c.source_record_id),
        cs as (select cluster_id, count(*) n, count(distinct person_id) np, min(person_id) pid from j group by 1),
        ps as (select person_id, count(*) n from j group by 1)
        select (select count(*) from cs join ps on cs.pid = ps.person_id where cs.np = 1 and cs.n = ps.n),
               (select count(*) from cs), (select count(*) from ps)
    """).fetchall()[0]
    p, r = exact / n_pred if n_pred else 1.0, exact / n_true if n_true else 1.0
    return {"exact_clusters": exact, "predicted_clusters": n_pred, "true_persons": n_true,
            "precision": round(p, 5), "recall": round(r, 5), "f1": round(2 * p * r / (p + r), 5) if p + r else 0.0}


def subgroup_errors(con: duckdb.DuckDBPyConnection, clusters: str, *, as_of_year: int, truth: str = "truth",
                    flag_ratio: float = 1.5, min_records: int = 30) -> dict[str, Any]:
    """Missed-link and false-link rates per record, overall and by race/ethnicity, sex, age band and source."""
    con.execute(f"""
        create or replace temp table _rec as
        with j as (select c.cluster_id, t.* from {clusters} c
                   join {truth} t on t.source = c.source and t.source_record_id = c.source_record_id),
        per_person as (select person_id, count(*) n_person from j group by 1),
        per_cluster as (select cluster_id, count(*) n_cluster from j group by 1),
        per_both as (select cluster_id, person_id, count(*) n_both from j group by 1, 2)
        select j.source_name as source, coalesce(j.race_eth, 'Unknown') race_eth, coalesce(j.sex, 'Unknown') sex,
               {age_band('j.birth_year', as_of_year)} age_band,
               pp.n_person > 1 as has_true_link,
               pb.n_both < pp.n_person as missed_link,
               pb.n_both < pc.n_cluster as false_link
        from j join per_person pp using (person_id) join per_cluster pc using (cluster_id)
        join per_both pb on pb.cluster_id = j.cluster_id and pb.person_id = j.person_id
    """)

    def rates(where: str = "true") -> dict[str, Any]:
        n, linkable, missed, false = con.execute(
            f"select count(*), count(*) filter (has_true_link), count(*) filter (missed_link), "
            f"count(*) filter (false_link) from _rec where {where}").fetchall()[0]
        return {"records": n, "linkable_records": linkable, "missed_links": missed, "false_links": false,
                "missed_link_rate": round(missed / linkable, 5) if linkable else None,
                "false_link_rate": round(false / n, 5) if n else None}

    overall = rates()
    groups: dict[str, list[dict[str, Any]]] = {}
    for dim in ("race_eth", "sex", "age_band", "source"):
        rows = []
        for (value,) in con.execute(f"select distinct {dim} from _rec order by 1").fetchall():
            r = rates(f"{dim} = '{str(value).replace(chr(39), chr(39) * 2)}'") | {"group": value}
            flags = []
            for kind in ("missed_link_rate", "false_link_rate"):
                base = overall[kind]
                if r[kind] is not None and base and r[kind] > flag_ratio * base:
                    flags.append(kind.removesuffix("_rate"))
            r["flagged"] = flags
            r["small_group"] = r["records"] < min_records
            rows.append(r)
        groups[dim] = rows
    return {"overall": overall, "flag_ratio": flag_ratio, "groups": groups}


def true_threshold_rows(con: duckdb.DuckDBPyConnection, predictions: str, thresholds: list[float],
                        truth: str = "truth") -> dict[float, dict[str, Any]]:
    """True pairwise precision, recall and F1 of the scored pairs kept at each match-probability threshold."""
    true_pairs = con.execute(f"select coalesce(sum({_pairs('n')}), 0) from "
                             f"(select count(*) n from {truth} group by person_id)").fetchall()[0][0]
    out = {}
    for th in thresholds:
        n = con.execute(f"select count(*) from {predictions} where match_probability >= ?", [th]).fetchall()[0][0]
        tp = con.execute(f"""select count(*) from {predictions} p
            join {truth} a on a.source = p.source_dataset_l and a.source_record_id = p.unique_id_l
            join {truth} b on b.source = p.source_dataset_r and b.source_record_id = p.unique_id_r
            where p.match_probability >= ? and a.person_id = b.person_id""", [th]).fetchall()[0][0]
        out[th] = {f"true_{k}": v for k, v in _prf(tp, n, true_pairs).items() if k in ("precision", "recall", "f1")}
    return out


def truth_section(con: duckdb.DuckDBPyConnection, *, as_of_year: int, truth: str = "truth") -> dict[str, Any]:
    """The report's ``truth`` section for the linkage zone's current persons (``person_keys``)."""
    con.execute(f"""create or replace temp table _cl as
        select t.source, t.source_record_id,
               coalesce(p.person_key, 'not-linked:' || t.source || ':' || t.source_record_id) cluster_id
        from {truth} t left join person_keys p using (source, source_record_id)""")
    absent = con.execute(f"select count(*) from {truth} t anti join person_keys p "
                         "using (source, source_record_id)").fetchall()[0][0]
    return {"pairwise": pairwise_metrics(con, "_cl", truth), "cluster": cluster_metrics(con, "_cl", truth),
            "subgroups": subgroup_errors(con, "_cl", as_of_year=as_of_year, truth=truth),
            "true_records_not_in_the_linkage_zone": absent}


def add_truth(report: dict[str, Any], linkage_db: Path, *, as_of_year: int, truth: str = "truth") -> dict[str, Any]:
    """``report`` (``linkage.quality.build_report``) with the truth section and the true columns of its threshold
    sensitivity table, read from ``truth`` (loaded by :func:`load_truth`) in the linkage zone."""
    from linkage.quality import edges_as_pairs

    with duckdb.connect(str(linkage_db)) as con:
        edges_as_pairs(con, "_pred")
        true_rows = true_threshold_rows(con, "_pred", [r["threshold"] for r in report["threshold_sensitivity"]], truth)
        report["threshold_sensitivity"] = [r | true_rows[r["threshold"]] for r in report["threshold_sensitivity"]]
        report["truth"] = truth_section(con, as_of_year=as_of_year, truth=truth)
    return report


def evaluate_latest_run(home: Home, *, now: datetime, truth_path: Path | None = None,
                        run_extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
    """Evaluate the latest run against the synthetic ground truth and rewrite its report with the truth figures.

    Synthetic data only: needs the truth file and the key custodian's linkage secret (to map native record ids
    onto pseudonymous ones). The truth table lives in the linkage zone only while the figures are computed.
    """
    from envelope.keys import Custodian, WarehouseKeyRing
    from linkage.pipeline import latest_run, name_sources
    from linkage.quality import build_report, write_report
    from partner_kit import partners

    truth_path = truth_path or home.truth / "truth.parquet"
    if not truth_path.exists():
        raise FileNotFoundError(f"{truth_path}: no ground truth (only synthetic data has one)")
    run = latest_run(home.linkage_db)
    if run is None:
        raise RuntimeError(f"{home.linkage_db}: no linkage run yet; run `vpdc link`")
    run |= run_extra or {}
    boundary = ZoneBoundary.from_keyring(WarehouseKeyRing(home.keys))
    name_sources(run, boundary.source_names(partners()))
    with duckdb.connect(str(home.linkage_db)) as con:
        load_truth(con, truth_path, Custodian(home.custodian).linkage_secret(run.get("linkage_key_version")),
                   boundary=boundary)
    try:
        report = build_report(home.linkage_db, run, cluster_threshold=run["params"]["cluster_threshold"])
        report = add_truth(report, home.linkage_db, as_of_year=now.year)
    finally:
        with duckdb.connect(str(home.linkage_db)) as con:
            con.execute("drop table if exists truth")  # evaluation data never stays in the linkage zone
    _, html_path = write_report(report, home.reports / "linkage", run.get("charts"))
    return report, html_path
