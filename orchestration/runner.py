"""Headless runs of the code location, for `vpdc ingest`, `make demo` and tests.

Under ``dagster dev`` the daemon evaluates the landing sensor and launches runs. Headless, this module
does the same once: evaluate the sensor against the real instance (``VPDC_HOME/dagster``), add new
partitions, skip run keys that already ran (as the daemon does), and execute each run in process.
Runs appear in the Dagster UI afterwards (`make ui`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from workspace import Home

REPO_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def configure_environment(home: Home, keys_dir: Path | None = None) -> None:
    """Point Dagster and the resources at ``home`` (environment variables read at run time)."""
    home.dagster.mkdir(parents=True, exist_ok=True)
    target = home.dagster / "dagster.yaml"
    if not target.exists() or target.read_bytes() != REPO_DAGSTER_YAML.read_bytes():
        shutil.copyfile(REPO_DAGSTER_YAML, target)
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    os.environ["VPDC_HOME"] = str(home.root)
    os.environ["VPDC_KEYS_DIR"] = str(keys_dir or home.keys)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


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


def run_landing_sensor_once(home: Home, *, progress=None, log_level: str = "WARNING") -> list[RunSummary]:
    """Evaluate the landing sensor once and execute every new run request in process.

    ``log_level`` applies to Dagster's console logger (the runs' full event logs stay in the instance).
    """
    import dagster as dg

    from orchestration.definitions import defs as load_defs
    from orchestration.resources import VpdcHome

    configure_environment(home)
    defs = load_defs()
    with dg.DagsterInstance.get() as instance:
        sensor = defs.resolve_sensor_def("landing_sensor")
        ctx = dg.build_sensor_context(instance=instance, resources={"vpdc_home": VpdcHome(root=str(home.root))},
                                      sensor_name=sensor.name)
        result = sensor(ctx)
        for req in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        summaries = []
        for rr in result.run_requests or []:
            tags = {**(rr.tags or {}), "dagster/run_key": rr.run_key, "dagster/sensor_name": sensor.name}
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
                failures = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
                err = failures[0].event_specific_data.error.message.strip().splitlines()[0] if failures else "run failed"
            summaries.append(RunSummary(rr.run_key, rr.job_name, rr.partition_key, res.success, False, res.run_id, err,
                                        file=(rr.tags or {}).get("vpdc/file", "")))
            if progress:
                progress(1)
        return summaries


def run_job(home: Home, job_name: str, *, run_config: dict | None = None, log_level: str = "WARNING") -> RunSummary:
    """Execute one job of the code location in process against the real instance."""
    import dagster as dg

    from orchestration.definitions import defs as load_defs

    configure_environment(home)
    defs = load_defs()
    with dg.DagsterInstance.get() as instance:
        job = defs.resolve_job_def(job_name)
        config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
        res = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
        err = ""
        if not res.success:
            failures = [e for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
            err = failures[0].event_specific_data.error.message.strip().splitlines()[0] if failures else "run failed"
            checks = [e for e in res.get_asset_check_evaluations() if not e.passed]
            if checks:
                err += "; failed checks: " + ", ".join(c.check_name for c in checks)
        return RunSummary(job_name, job_name, None, res.success, False, res.run_id, err)
