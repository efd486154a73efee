"""Linkage stage functions shared by the Dagster assets and the CLI (thin shells over these)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from linkage.quality import QualityFloors, build_report, check_floors, write_report
from workspace import Home

__all__ = ["latest_run", "report_latest_run", "evaluate_latest_run"]


def latest_run(linkage_db: Path) -> dict[str, Any] | None:
    with duckdb.connect(str(linkage_db), read_only=True) as con:
        rows = con.execute("select records, params, result from linkage_runs order by finished_at desc limit 1").fetchall()
    if not rows:
        return None
    total, params, result = rows[0]
    return json.loads(result) | {"total_records": total, "params": json.loads(params)}


def report_latest_run(home: Home, *, run_extra: dict[str, Any], now: datetime,
                      floors: QualityFloors = QualityFloors()) -> tuple[dict[str, Any], list[tuple[str, bool, str]], Path]:
    """Write the quality report of the latest run (model-based; no ground truth); return floor checks."""
    run = latest_run(home.linkage_db)
    if run is None:
        raise RuntimeError(f"{home.linkage_db}: no linkage run yet; run `vpdc link`")
    run |= run_extra
    run.setdefault("charts", {})
    report = build_report(home.linkage_db, run, truth_loaded=False, as_of_year=now.year,
                          cluster_threshold=run["params"]["cluster_threshold"])
    _, html_path = write_report(report, home.reports / "linkage", run.get("charts"))
    return report, check_floors(report, floors), html_path


def evaluate_latest_run(home: Home, *, now: datetime, truth_path: Path | None = None,
                        run_extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
    """Evaluate the latest run against the synthetic ground truth and rewrite its report with truth figures.

    Synthetic data only: needs the truth file and the linkage secret (to map native record ids onto
    pseudonymous ones). Not a pipeline step.
    """
    from envelope.keys import KeyRing
    from linkage.evaluation import load_truth

    truth_path = truth_path or home.truth / "truth.parquet"
    if not truth_path.exists():
        raise FileNotFoundError(f"{truth_path}: no ground truth (only synthetic data has one)")
    run = latest_run(home.linkage_db)
    if run is None:
        raise RuntimeError(f"{home.linkage_db}: no linkage run yet; run `vpdc link`")
    run |= run_extra or {}
    with duckdb.connect(str(home.linkage_db)) as con:
        load_truth(con, truth_path, KeyRing(home.keys))
    try:
        report = build_report(home.linkage_db, run, truth_loaded=True, as_of_year=now.year,
                              cluster_threshold=run["params"]["cluster_threshold"])
    finally:
        with duckdb.connect(str(home.linkage_db)) as con:
            con.execute("drop table if exists truth")  # evaluation data never stays in the linkage zone
    _, html_path = write_report(report, home.reports / "linkage", run.get("charts"))
    return report, html_path
