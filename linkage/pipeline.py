"""Linkage stage functions shared by the Dagster assets and the CLI (thin shells over these)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from linkage.quality import QualityFloors, build_report, check_floors, write_report
from workspace import Home

__all__ = ["NothingToDo", "latest_run", "linkage_summary", "name_sources", "report_latest_run", "require_inputs",
           "require_person_map", "with_source_names"]


class NothingToDo(Exception):
    """A stage was asked to run before the stage it needs; the message says which command to run first."""


def require_inputs(home: Home) -> None:
    """Linkage needs ingested person records.

    Raises:
        NothingToDo: no linkage zone yet, or it holds no encodings.
    """
    if not home.linkage_db.exists():
        raise NothingToDo(f"{home.root}: nothing ingested yet (no linkage zone); run `vpdc ingest` first")
    with duckdb.connect(str(home.linkage_db), read_only=True) as con:
        have = con.execute("select count(*) from information_schema.tables where table_name = 'encodings'").fetchall()
    if not have[0][0]:
        raise NothingToDo(f"{home.root}: no person records ingested yet; run `vpdc ingest` first")


def require_person_map(home: Home) -> None:
    """The marts need the person map that linkage exports.

    Raises:
        NothingToDo: no warehouse yet, or no person map in it.
    """
    if not home.warehouse_db.exists():
        raise NothingToDo(f"{home.root}: no analytics zone yet; run `vpdc ingest` and `vpdc link` first")
    with duckdb.connect(str(home.warehouse_db), read_only=True) as con:
        have = con.execute("select count(*) from information_schema.tables where table_schema = 'raw' "
                           "and table_name = 'person_map'").fetchall()[0][0]
    if not have:
        raise NothingToDo(f"{home.root}: persons are not linked yet (no person map); run `vpdc link` first")


def linkage_summary(home: Home, *, success: bool, error: str) -> dict[str, Any]:
    """What a linkage job did: the latest run and its quality report (the synthetic truth figures are added by
    ``scoring.linkage.evaluate_latest_run``, never here)."""
    out: dict[str, Any] = {"success": success, "error": error,
                           "run": latest_run(home.linkage_db) if home.linkage_db.exists() else None}
    report_path = home.reports / "linkage" / f"{out['run']['run_id']}.json" if out["run"] else None
    if report_path and report_path.exists():
        out["report"] = json.loads(report_path.read_text())
    return out


def latest_run(linkage_db: Path) -> dict[str, Any] | None:
    with duckdb.connect(str(linkage_db), read_only=True) as con:
        rows = con.execute("select records, params, result from linkage_runs order by finished_at desc limit 1").fetchall()
    if not rows:
        return None
    total, params, result = rows[0]
    return json.loads(result) | {"total_records": total, "params": json.loads(params)}


def with_source_names(message: str, names: dict[str, str]) -> str:
    """``message`` (an error of the linkage zone, which knows sources by the boundary's labels only) with each
    label followed by its partner's name, for the person who must act on it: ``s_ab12... (police)``."""
    for label, name in names.items():
        message = message.replace(label, f"{label} ({name})")
    return message


def name_sources(run: dict[str, Any], names: dict[str, str]) -> None:
    """Give a run's per-source figures their partners' names back (the linkage zone keeps labels only)."""
    run["records"] = {names.get(k, k): v for k, v in run.get("records", {}).items()}
    run["zero_record_sources"] = [names.get(k, k) for k in run.get("zero_record_sources", [])]


def report_latest_run(home: Home, *, run_extra: dict[str, Any], now: datetime,
                      floors: QualityFloors = QualityFloors(),
                      source_names: dict[str, str] | None = None) -> tuple[dict[str, Any], list[tuple[str, bool, str]], Path]:
    """Write the quality report of the latest run (model-based; no ground truth); return floor checks.

    ``source_names`` ({label: partner}, from the zone boundary) names the sources the linkage zone knows by label
    only (ADR 0010); the report is the warehouse's, read by engineers."""
    run = latest_run(home.linkage_db)
    if run is None:
        raise RuntimeError(f"{home.linkage_db}: no linkage run yet; run `vpdc link`")
    run |= run_extra
    name_sources(run, source_names or {})
    run.setdefault("charts", {})
    report = build_report(home.linkage_db, run, cluster_threshold=run["params"]["cluster_threshold"])
    _, html_path = write_report(report, home.reports / "linkage", run.get("charts"))
    return report, check_floors(report, floors), html_path
