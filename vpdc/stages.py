"""The pipeline's stages as the CLI and the demo run them: a library call each, and one readable table.

Shared by ``vpdc ingest|link|marts`` and ``vpdc demo`` (so the demo prints exactly what the commands print).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from partner_kit.cli import emit
from workspace import Home

console = Console(stderr=True, highlight=False)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def run_ingest(home: Home) -> list[dict[str, Any]]:
    from orchestration.runner import ingest_outcomes, run_landing_sensor_once

    with _progress() as prog:
        task = prog.add_task("ingesting envelopes", total=None)
        runs = run_landing_sensor_once(home, progress=lambda n: prog.update(task, advance=n))
    return ingest_outcomes(home, runs)


def print_ingest(rows: list[dict[str, Any]], as_json: bool) -> None:
    table = Table("partner", "extract", "period", "rows", "status", "reason", title="ingestion")
    for r in rows:
        reason = f"{r['check']}: {r['detail']}" if r["check"] else (r["detail"] or "")
        table.add_row(*(escape(str(v)) for v in (r["partner"] or "?", r["extract"] or "?", r["period"] or "?",
                                                 f"{r['rows'] or 0:,}", r["status"], reason[:90])))
    emit(rows, as_json, table)
    if not as_json:
        loaded = sum(r["status"] == "loaded" for r in rows)
        console.print(f"{loaded} envelopes loaded, {sum(r['status'] == 'quarantined' for r in rows)} quarantined, "
                      f"{sum(r['status'] == 'error' for r in rows)} errors")


def run_link(home: Home, *, mode: str = "auto", evaluate: bool = False, engine: str = "duckdb",
             spark_master: str | None = None) -> dict[str, Any]:
    from linkage.pipeline import linkage_summary, require_inputs
    from orchestration.runner import run_job

    require_inputs(home)
    config: dict[str, Any] = {"mode": mode, "engine": engine}
    if engine == "spark":
        from linkage.spark import require_spark

        require_spark()  # before the job starts: a missing pyspark or Java is one line naming what to install
        if spark_master:
            config["spark_master"] = spark_master
    with _progress() as prog:
        prog.add_task(f"linking persons on encodings ({engine})", total=None)
        summary = run_job(home, "link_job", run_config={"ops": {"link_persons": {"config": config}}})
    out = linkage_summary(home, success=summary.success, error=summary.error)
    if evaluate and out["run"]:
        from scoring.linkage import (
            evaluate_latest_run,  # synthetic data only: reads the truth with the custodian's key
        )

        report, html_path = evaluate_latest_run(home, now=datetime.now(UTC))
        out["report"], out["report_html"] = report, str(html_path)
    return out


def print_link(result: dict[str, Any]) -> None:
    run, report = result.get("run"), result.get("report") or {}
    if not result["success"]:
        console.print(f"[red]linkage stopped:[/] {escape(str(result['error']))}")
        if run:
            console.print(f"[yellow]the figures below are the previous run's ({escape(str(run['run_id']))}), not this "
                          "one's: its person keys still stand[/]")
    if not run:
        return
    engine = f", on {run.get('engine', 'duckdb')}" + (f" {run['spark_master']}" if run.get("spark_master") else "")
    console.print(f"linkage run {run['run_id']} ({run['mode']}{escape(engine)}): {run['total_records']:,} records → "
                  f"{run['persons']:,} persons; {run['new_records']:,} records scored; {run['pairs']:,} pairs")
    est = report.get("estimated", {})
    console.print(f"estimated precision {est.get('precision')}, recall {est.get('recall')}")
    truth = report.get("truth")
    if truth:
        p, c = truth["pairwise"], truth["cluster"]
        console.print(f"true pairwise precision {p['precision']}, recall {p['recall']}, F1 {p['f1']}; "
                      f"cluster F1 {c['f1']}")
        flagged = [f"{dim}={g['group']} ({', '.join(g['flagged'])})" for dim, rows in truth["subgroups"]["groups"].items()
                   for g in rows if g["flagged"] and not g["small_group"]]
        console.print("groups with linkage error above 1.5× overall: " + escape(", ".join(flagged) or "none"))
    if result.get("report_html"):
        console.print(f"report: {escape(result['report_html'])}")


def run_marts(home: Home, *, verbose: bool = False) -> dict[str, Any]:
    from linkage.pipeline import require_person_map
    from orchestration.runner import run_job

    require_person_map(home)
    with _progress() as prog:
        prog.add_task("dbt build", total=None)
        res = run_job(home, "marts_job", log_level="INFO" if verbose else "CRITICAL")
    return {"success": res.success, "error": res.error,
            "data_dictionary": str(home.reports / "data_dictionary.html"),
            "dashboard": str(home.dashboard / "index.html"), "browse": str(home.analyst_browse_db)}


