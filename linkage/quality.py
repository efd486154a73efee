"""The linkage quality report (HTML and JSON under ``reports/linkage/``), one per run.

What it holds: the model's parameters (m and u per comparison level, match weights), the thresholds
and a threshold sensitivity table, precision and recall estimated with the SSN held out (ADR 0012) and the
model's own figures, blocking analysis, person-key events. On synthetic data ``scoring.linkage`` adds a
``truth`` section (true pairwise and cluster precision/recall/F1, linkage error by subgroup); this module
renders it when present and never reads the truth itself.

Never record-level: no pair, no token, no record id appears in a report. Charts are Splink's
aggregate parameter charts, saved self-contained (no CDN), and only those.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from workspace.files import atomic_write

__all__ = ["QualityFloors", "build_report", "check_floors", "edges_as_pairs", "threshold_table", "write_report"]

THRESHOLDS = [0.5, 0.8, 0.9, 0.95, 0.99, 0.999]


@dataclass(frozen=True)
class QualityFloors:
    """Below these, blocking checks stop the person map (and every mart) from being refreshed."""

    min_estimated_precision: float = 0.95
    min_estimated_recall: float = 0.90
    min_true_f1: float = 0.95  # only where ground truth exists (synthetic data)


def model_parameters(model_json: dict[str, Any]) -> list[dict[str, Any]]:
    """m, u and match weight per comparison level, from the saved Splink model (aggregate only)."""
    rows = []
    for comp in model_json["splink"]["comparisons"]:
        for level in comp["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level.get("m_probability"), level.get("u_probability")
            weight = math.log2(m / u) if m and u else None
            rows.append({"comparison": comp["output_column_name"], "level": level.get("label_for_charts", ""),
                         "m": float(f"{m:.6g}") if m is not None else None, "u": float(f"{u:.6g}") if u is not None else None,
                         "match_weight": round(weight, 3) if weight is not None else None,
                         "tf_adjusted": bool(level.get("tf_adjustment_column"))})
    return rows


def edges_as_pairs(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """``table``: the run's scored pairs (``link_edges``) as (source_dataset_l, unique_id_l, source_dataset_r,
    unique_id_r, match_probability)."""
    con.execute(f"create or replace temp table {table} as select split_part(node_id_l, ':', 1) source_dataset_l, "
                "split_part(node_id_l, ':', 2) unique_id_l, split_part(node_id_r, ':', 1) source_dataset_r, "
                "split_part(node_id_r, ':', 2) unique_id_r, match_probability from link_edges")


def threshold_table(con: duckdb.DuckDBPyConnection, predictions: str, thresholds: list[float]) -> list[dict[str, Any]]:
    """The model's own pairwise figures at several match-probability thresholds: estimated precision is the mean
    match probability of the pairs kept; estimated recall the sum of match probability kept over the sum over all
    scored pairs."""
    total_p = con.execute(f"select coalesce(sum(match_probability), 0) from {predictions}").fetchall()[0][0]
    out = []
    for th in thresholds:
        n, sum_p = con.execute(f"select count(*), coalesce(sum(match_probability), 0) from {predictions} "
                               f"where match_probability >= ?", [th]).fetchall()[0]
        out.append({"threshold": th, "pairs": n, "estimated_precision": round(sum_p / n, 5) if n else None,
                    "estimated_recall": round(sum_p / total_p, 5) if total_p else None})
    return out


def build_report(linkage_db: Path, run: dict[str, Any], *, cluster_threshold: float) -> dict[str, Any]:
    """Assemble the report for one run from the linkage zone (aggregates only)."""
    with duckdb.connect(str(linkage_db)) as con:
        model_row = con.execute("select model_json from linkage_models where run_id = ?",
                                [run["model_run_id"]]).fetchall()
        model = json.loads(model_row[0][0]) if model_row else None
        edges_as_pairs(con, "_pred")
        sens = threshold_table(con, "_pred", THRESHOLDS)
        at = next((r for r in sens if r["threshold"] >= cluster_threshold), sens[-1])
        return {
            "run": run,
            "model": {"version": model and model["model_version"], "linkage_key_version": model and model["linkage_key_version"],
                      "training_fingerprint": model and model["training_fingerprint"],
                      "trained_in_run": run["model_run_id"], "parameters": model_parameters(model) if model else []},
            "thresholds": {"predict": run["params"]["predict_threshold"], "cluster": cluster_threshold},
            "threshold_sensitivity": sens,
            "estimated": estimated(run, at),
            "person_key_events": dict(con.execute("select event, count(*) from person_key_history where run_id = ? "
                                                  "group by 1", [run["run_id"]]).fetchall()),
            "confidence_bands": dict(con.execute("select match_confidence, count(*) from person_keys group by 1").fetchall()),
        }


def estimated(run: dict[str, Any], at: dict[str, Any]) -> dict[str, Any]:
    """The precision and recall the gate judges: with the SSN held out where the run could (ADR 0012), else the
    model's own figures, flagged; both are shown."""
    model = {"precision": at["estimated_precision"], "recall": at["estimated_recall"],
             "note": "mean match probability of the pairs kept: Fellegi-Sunter's own figure, which assumes the "
                     "fields independent and was 2 points too high on synthetic data"}
    held = run.get("error_estimate") or {}
    if held.get("available"):
        return {"precision": held["precision"], "recall": held["recall"], "method": "held-out SSN",
                "precision_95": held.get("precision_95"), "recall_95": held.get("recall_95"),
                "note": "pairwise, over the run's persons: links judged by the SSN where both records carry one, the "
                        "rest at the error rates of a second linkage of every record with the SSN hidden; where a "
                        "source records no SSN at all, its links' rates are assumed equal to those, and the 95 % "
                        "range runs up to none of them being wrong",
                "held_out": held, "model": model}
    reason = (held.get("rates") or {}).get("reason") or ("not measured in this run" if not held else "not available")
    return {"precision": model["precision"], "recall": model["recall"], "method": "model",
            "note": f"no held-out estimate ({reason}): the model's own figure, which overstates precision",
            "model": model}


def check_floors(report: dict[str, Any], floors: QualityFloors) -> list[tuple[str, bool, str]]:
    """(check name, passed, detail) for each configured floor."""
    out = []
    est = report["estimated"]
    for name, value, floor in (("estimated_precision", est["precision"], floors.min_estimated_precision),
                               ("estimated_recall", est["recall"], floors.min_estimated_recall)):
        if value is None:
            # No pair scored at the cluster threshold. In an incremental run that only means the new
            # records linked to no one (new people), which makes no false link; in a full run it means
            # the model linked nothing at all, which is no evidence of quality: fail closed.
            run = report.get("run", {})
            if run.get("mode") == "incremental":
                out.append((name, True, f"no pair of this increment's {run.get('new_records', 0)} new records "
                                        f"reached the cluster threshold: nothing linked, nothing to judge (floor {floor})"))
            else:
                out.append((name, False, f"not computed: no scored pair at the cluster threshold (floor {floor})"))
            continue
        out.append((name, value >= floor, f"{value} (floor {floor}; {est.get('method', 'model')} estimate)"))
    if "truth" in report:
        f1 = report["truth"]["pairwise"]["f1"]
        out.append(("true_pairwise_f1", f1 >= floors.min_true_f1, f"{f1} (floor {floors.min_true_f1})"))
    return out


def _table(rows: list[dict[str, Any]], cols: list[str] | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = cols or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _blocking_html(blocking: dict[str, Any] | list[dict[str, Any]] | None) -> list[str]:
    """The blocking analysis: every candidate rule, its comparisons, its marginal expected matches, whether
    kept; and the recall ceiling the model estimates for the kept rules (no record-level figure)."""
    if not blocking:
        return ["<p>(none)</p>"]
    if isinstance(blocking, list):  # runs recorded before rules were chosen from the data
        return [_table(blocking)]
    cols = ["rule", "comparisons", "comparisons_per_record", "over_budget", "redundant_with",
            "marginal_expected_matches", "kept"]
    prune = blocking.get("pruning") or {}
    if prune.get("applied"):
        missing = ", ".join(prune.get("missing_allowed") or []) or "none"
        pruned = (f"<p>Pairs of rule &ldquo;{html.escape(str(prune.get('rule')))}&rdquo; whose "
                  f"{html.escape(', '.join(prune.get('comparisons') or []))} all disagree (missing allowed: "
                  f"{html.escape(missing)}) were not scored: under this model they reach at most match probability "
                  f"{prune.get('max_match_probability'):.3g}, below the threshold {prune.get('threshold')} (ADR 0013)."
                  "</p>")
    else:
        pruned = (f"<p>Every blocked pair was scored ({html.escape(str(prune.get('reason', 'no bound')))}).</p>"
                  if prune else "")
    return [f"<p>Estimated recall ceiling of the kept rules: {blocking.get('recall_ceiling_estimate')} "
            f"(expected matches found {blocking.get('expected_matches_found')} of "
            f"{blocking.get('expected_matches_population')} in the population, from the model)</p>", pruned,
            _table(blocking.get("candidates") or [], cols)]


def write_report(report: dict[str, Any], out_dir: Path, charts: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write ``<run_id>.json`` and a self-contained ``<run_id>.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rid = report["run"]["run_id"]
    jpath, hpath = out_dir / f"{rid}.json", out_dir / f"{rid}.html"
    atomic_write(jpath, json.dumps(report, indent=2, default=str))
    parts = [f"<h1>Linkage run {html.escape(rid)} ({html.escape(report['run']['mode'])})</h1>",
             "<p>Aggregate figures only: no record, pair or encoding appears in this report.</p>",
             "<h2>Records per source</h2>", _table([{"source": k, "records": v} for k, v in report["run"]["records"].items()])]
    if report["run"].get("zero_record_sources"):
        parts.append(f"<p class=warn>Sources with no linkable records: {html.escape(', '.join(report['run']['zero_record_sources']))}</p>")
    est = report["estimated"]
    parts += [f"<h2>Estimated quality</h2><p>precision {est['precision']}, recall {est['recall']} "
              f"({html.escape(str(est.get('method', 'model')))} estimate; 95 % range: precision "
              f"{html.escape(str(est.get('precision_95')))}, recall {html.escape(str(est.get('recall_95')))}) at match "
              f"probability ≥ {report['thresholds']['cluster']}. {html.escape(est.get('note', ''))}</p>"]
    if est.get("model"):
        parts.append(f"<p>The model's own figures: precision {est['model']['precision']}, recall "
                     f"{est['model']['recall']} ({html.escape(est['model']['note'])}).</p>")
    held = (est.get("held_out") or {})
    if held:
        rates = held.get("rates", {})
        parts.append(_table([{"figure": k, "value": v} for k, v in (
            ("records carrying an SSN", rates.get("records")),
            ("records linked again with the SSN hidden (all without one, and those of a sample of SSN values "
             "on large runs)", rates.get("records_linked")),
            ("SSN values in that sample, per mille", rates.get("ssn_values_sampled_per_mille")),
            ("links between records that both carry an SSN", rates.get("linked_pairs")),
            ("of which the SSNs agree", rates.get("linked_pairs_ssn_agree")),
            ("pairs with one SSN", rates.get("true_pairs_by_ssn")),
            ("of which linked with the SSN hidden", rates.get("true_pairs_by_ssn_linked")),
            ("this run's within-person pairs", held.get("linked_pairs")),
            ("judged by their SSNs", held.get("linked_pairs_judged_by_ssn")),
            ("of which the SSNs disagree", held.get("linked_pairs_ssn_disagree")),
            ("judged at the held-out rates", held.get("linked_pairs_at_held_out_rate")),
            ("of which with a record from a source that records no SSN (no held-out label reaches them: their "
             "rates are assumed, and the 95 % range allows them to be error-free)",
             held.get("linked_pairs_with_a_source_without_ssn")),
            ("pairs with one SSN in two persons", held.get("true_pairs_by_ssn_apart")),
            ("pairs with equal name and birth-date tokens, both with an SSN",
             (rates.get("ssn_disagreement") or {}).get("pairs")),
            ("share of those whose SSNs disagree (allowed for as one person's)",
             (rates.get("ssn_disagreement") or {}).get("rate")),
            ("true pairs with disagreeing SSNs estimated missed", held.get("true_pairs_ssn_disagree_missed")))]))
    if report["run"].get("held_apart_as_siblings") is not None:
        parts.append(f"<p>Links held apart by the same-birthday sibling rule: {report['run'].get('held_apart_as_siblings')}"
                     "</p>")
    if "truth" in report:
        t = report["truth"]
        parts += ["<h2>True quality (synthetic ground truth)</h2>",
                  f"<p>Every true record counts: {t.get('true_records_not_in_the_linkage_zone', 0)} never reached the "
                  "linkage zone (rejected by a kit, or not sent) and count as missed links.</p>",
                  _table([{"level": "pairwise", **t["pairwise"]}, {"level": "cluster", **t["cluster"]}],
                         ["level", "precision", "recall", "f1"]),
                  "<h2>Linkage error by subgroup</h2>",
                  f"<p>Overall: missed-link rate {t['subgroups']['overall']['missed_link_rate']}, false-link rate "
                  f"{t['subgroups']['overall']['false_link_rate']}. Flagged: rate above "
                  f"{t['subgroups']['flag_ratio']}× overall.</p>"]
        for dim, rows in t["subgroups"]["groups"].items():
            parts += [f"<h3>{html.escape(dim)}</h3>",
                      _table(rows, ["group", "records", "linkable_records", "missed_links", "missed_link_rate",
                                    "false_links", "false_link_rate", "flagged", "small_group"])]
    parts += ["<h2>Threshold sensitivity</h2>", _table(report["threshold_sensitivity"]),
              "<h2>Model parameters</h2>", _table(report["model"]["parameters"]),
              "<h2>Blocking analysis</h2>", *_blocking_html(report["run"].get("blocking")),
              "<h2>Levels no training pair reached</h2>",
              _table([{"level": v} for v in report["run"].get("untrained_levels") or []]),
              "<h2>Person keys</h2>", _table([report["person_key_events"] or {"created": 0}]),
              _table([report["confidence_bands"]])]
    for name, chart_file in (charts or {}).items():
        parts.append(f"<p><a href='{html.escape(chart_file)}'>{html.escape(name)} chart</a></p>")
    atomic_write(hpath, "<!doctype html><meta charset=utf-8><title>linkage quality</title><style>body{font:14px sans-serif;"
                     "max-width:1100px}td,th{padding:2px 6px;border-bottom:1px solid #ddd;text-align:left}"
                     ".warn{background:#ffd}</style>" + "".join(parts))
    return jpath, hpath

