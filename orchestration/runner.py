"""Headless runs of the code location, for `vpdc ingest`, `make demo` and tests.

Under ``dagster dev`` the daemon evaluates the landing sensor and launches runs. Headless, this module
does the same once: evaluate the sensor against the real instance (``VPDC_HOME/dagster``), add new
partitions, skip run keys that already ran (as the daemon does), and execute each run in process.
Runs appear in the Dagster UI afterwards (`make ui`).

A run executed here carries its process's owner token (tag ``vpdc/owner``). Before starting anything, every
run that is not finished and whose owner process is gone (``kill -9``, a power cut) is marked failed, and every
concurrency-pool slot a finished run still holds is freed (:func:`reap_dead_runs`): a killed run never keeps the
``duckdb_writer`` slot the next run waits for, and the landing sensor retries its envelope (a failed attempt).
The processes a killed run had started (a ``dbt build``, which outlives its parent and keeps DuckDB's write lock on
the warehouse) carry the owner token in their environment (``VPDC_RUN_OWNER``) and are ended first.
Runs the daemon launched (``dagster dev``) carry no owner token and are left to Dagster's run monitoring.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workspace import Home
from workspace.files import atomic_copy
from workspace.processes import OWNER_ENV, end_orphans, owner_alive, owner_token

#: tag of every run executed here: the token of the process executing it
OWNER_TAG = "vpdc/owner"

REPO_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def prepare_dagster_home(home: Home) -> Path:
    """``VPDC_HOME/dagster`` with the project's ``dagster.yaml`` (Dagster reads it only from ``DAGSTER_HOME``)."""
    home.dagster.mkdir(parents=True, exist_ok=True)
    target = home.dagster / "dagster.yaml"
    if not target.exists() or target.read_bytes() != REPO_DAGSTER_YAML.read_bytes():
        atomic_copy(REPO_DAGSTER_YAML, target)
    return home.dagster


def environment(home: Home) -> dict[str, str]:
    """The variables Dagster and the resources read at run time for ``home``."""
    return {"DAGSTER_HOME": str(home.dagster), "VPDC_HOME": str(home.root), "VPDC_KEYS_DIR": str(home.keys),
            "DAGSTER_DISABLE_TELEMETRY": os.environ.get("DAGSTER_DISABLE_TELEMETRY", "1"),
            OWNER_ENV: owner_token()}  # inherited by the tools a run starts: see reap_dead_runs


@contextmanager
def dagster_environment(home: Home) -> Iterator[None]:
    """Point Dagster and the resources at ``home`` for the duration of a headless run, then restore the
    process environment as it was (resources read ``dg.EnvVar`` at run time, not import time)."""
    prepare_dagster_home(home)
    saved = {k: os.environ.get(k) for k in environment(home)}
    os.environ.update(environment(home))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _quiet(log_level: str) -> Iterator[None]:
    """Below a verbose level, what a run's tools print themselves (dbt's progress lines, re-emitted by
    dagster-dbt on stdout; Dagster's beta warnings) stays out of the user's output: it is in the run's event
    log (`make ui`)."""
    import contextlib
    import io
    import warnings

    if log_level != "CRITICAL":
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def reap_dead_runs(instance) -> list[str]:
    """Mark failed every unfinished run whose owner process is gone, then free every pool slot (and pending
    claim) held by a run that is finished or unknown. Returns the run ids marked failed."""
    import dagster as dg

    unfinished = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                  dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.QUEUED]
    reaped = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=unfinished)):
        run = record.dagster_run
        owner = run.tags.get(OWNER_TAG)
        if owner is None or owner_alive(owner):
            continue
        ended = end_orphans(owner)  # a dbt it started may still run and hold the warehouse's write lock
        instance.report_run_failed(run, "the process running it ended before the run did (killed or crashed); "
                                        "its concurrency slots were freed"
                                        + (f" and {len(ended)} process(es) it had started were ended" if ended else ""))
        reaped.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = set(storage.get_concurrency_run_ids())
        for key in storage.get_concurrency_keys():
            info = storage.get_concurrency_info(key)
            holders |= {s.run_id for s in info.claimed_slots} | {s.run_id for s in info.pending_steps}
        for run_id in holders:
            record = instance.get_run_record_by_id(run_id)
            if record is None or record.dagster_run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return reaped


@dataclass
class RunSummary:
    run_key: str
    job: str
    partition: str | None
    success: bool
    skipped: bool
    run_id: str | None
    error: str = ""
    file: str = ""


def run_landing_sensor_once(home: Home, *, progress=None, log_level: str = "CRITICAL") -> list[RunSummary]:
    """Evaluate the landing sensor once and execute every new run request in process.

    ``log_level`` applies to Dagster's console logger (the runs' full event logs stay in the instance).
    """
    import dagster as dg

    from orchestration.definitions import defs as load_defs
    from orchestration.resources import VpdcHome

    with dagster_environment(home), _quiet(log_level), dg.DagsterInstance.get() as instance:
        reap_dead_runs(instance)
        defs = load_defs()
        sensor = defs.resolve_sensor_def("landing_sensor")
        ctx = dg.build_sensor_context(instance=instance, resources={"vpdc_home": VpdcHome(root=str(home.root))},
                                      sensor_name=sensor.name)
        result = sensor(ctx)
        for req in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        summaries = []
        for rr in result.run_requests or []:
            tags = {**(rr.tags or {}), "dagster/run_key": rr.run_key, "dagster/sensor_name": sensor.name,
                    OWNER_TAG: owner_token()}
            done = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": rr.run_key,
                                                                "dagster/sensor_name": sensor.name}), limit=1)
            if done:
                summaries.append(RunSummary(rr.run_key, rr.job_name, rr.partition_key, True, True, done[0].run_id))
                continue
            job = defs.resolve_job_def(rr.job_name)
            run_config = {**rr.run_config, "loggers": {"console": {"config": {"log_level": log_level}}}}
            res = job.execute_in_process(run_config=run_config, instance=instance, partition_key=rr.partition_key,
                                         tags=tags, asset_selection=rr.asset_selection, raise_on_error=False)
            err = ""
            if not res.success:
                err = step_failure(res)
            summaries.append(RunSummary(rr.run_key, rr.job_name, rr.partition_key, res.success, False, res.run_id, err,
                                        file=(rr.tags or {}).get("vpdc/file", "")))
            if progress:
                progress(1)
        return summaries


def step_failure(res: Any) -> str:
    """The first failed step's error as one line for a person: the error itself, not Dagster's wrapper around it
    ("Error occurred while executing op ...": its cause is what went wrong), never a traceback."""
    failures = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
    if not failures:
        return "run failed"
    error = failures[0].event_specific_data.error
    while error.cause is not None and "DagsterExecutionStepExecutionError" in (error.cls_name or error.message):
        error = error.cause
    if (error.cls_name or "").endswith("Exception"):
        # a database or Arrow error (DuckDB's ConversionException, ...) may quote a value of a row: name the kind only
        return f"{error.cls_name} inside the step (details in the Dagster run log)"
    lines = error.message.strip().splitlines()
    return lines[0] if lines else (error.cls_name or "run failed")


def run_job(home: Home, job_name: str, *, run_config: dict | None = None, log_level: str = "CRITICAL") -> RunSummary:
    """Execute one job of the code location in process against the real instance."""
    import dagster as dg

    from orchestration.definitions import defs as load_defs

    with dagster_environment(home), _quiet(log_level), dg.DagsterInstance.get() as instance:
        reap_dead_runs(instance)
        defs = load_defs()
        job = defs.resolve_job_def(job_name)
        config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
        res = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False,
                                     tags={OWNER_TAG: owner_token()})
        err = ""
        if not res.success:
            err = step_failure(res)
            checks = [e for e in res.get_asset_check_evaluations() if not e.passed]
            if checks:
                err += "; failed checks: " + ", ".join(c.check_name for c in checks)
        return RunSummary(job_name, job_name, None, res.success, False, res.run_id, err)


def ingest_outcomes(home: Home, runs: list[RunSummary]) -> list[dict]:
    """One row per envelope a headless ingestion ran: its recorded outcome (``raw.ingest_events``), or the
    run's own error when it crashed before recording one."""
    from landing.events import ingest_events

    events: dict[str, dict] = {}
    for ev in ingest_events(home.warehouse_db):
        events[ev["file"]] = ev
        if ev.get("source_path"):  # the name it had in landing (a quarantined copy may be renamed)
            events[Path(ev["source_path"]).name] = ev
    rows = []
    for r in runs:
        if r.skipped:
            continue
        ev = events.get(r.file)
        if r.job == "recover_job":  # no envelope: a crashed run's outcomes completed (they were reported then)
            rows.append({"file": "(interrupted ingestion)", "partner": None, "extract": None, "period": None,
                         "status": "recovered" if r.success else "error", "check": None,
                         "detail": r.error or "moves and audit entries of a killed run completed", "rows": 0})
        elif ev:
            rows.append({"file": ev["file"], "partner": ev["partner"], "extract": ev["extract_type"],
                         "period": ev["period"], "status": ev["status"], "check": ev["check_name"],
                         "detail": ev["detail"], "rows": ev["rows"]})
        else:
            rows.append({"file": r.file or r.run_key, "partner": None, "extract": None, "period": r.partition,
                         "status": "loaded" if r.success else "error", "check": None, "detail": r.error, "rows": 0})
    return rows
