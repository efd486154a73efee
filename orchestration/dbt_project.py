"""The dbt project of the analytics zone, and every way the system runs dbt (one place for its flags).

dbt writes its artifacts and logs under ``VPDC_HOME/dbt/`` (never into the source tree), and every invocation
receives the governance defaults as ``--vars`` (:func:`governance.defaults.dbt_vars`). Nothing here runs at
import time, and nothing changes ``os.environ``: each subprocess gets its own environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from governance.catalog import DBT_PROJECT_DIR

__all__ = ["DBT_PROJECT_DIR", "dbt_command", "dbt_env", "dbt_executable", "dbt_project", "manifest_is_stale",
           "prepare_manifest", "target_dir"]


def dbt_executable() -> Path:
    """The ``dbt`` of the running interpreter's environment (the project venv), whatever PATH says."""
    return Path(sys.executable).parent / "dbt"


def target_dir(home_root: Path) -> Path:
    """Where the project's manifest (which Dagster reads) is kept: ``VPDC_HOME/dbt/target``."""
    return Path(home_root) / "dbt" / "target"


def dbt_command(args: list[str], *, target_path: Path, log_path: Path | None = None) -> list[str]:
    """The argv of one dbt invocation: the project, its profiles, the governance vars, private artifact paths."""
    from governance.defaults import dbt_vars

    return [str(dbt_executable()), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--vars", json.dumps(dbt_vars()), "--target-path", str(target_path), "--log-path",
            str(log_path or target_path)]


def dbt_env(*, home_root: Path | None = None, warehouse_db: Path | None = None) -> dict[str, str]:
    """The environment of a dbt subprocess: the warehouse it builds, no telemetry, the venv's bin first."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "PATH": str(dbt_executable().parent) + os.pathsep + os.environ.get("PATH", "")}
    if home_root is not None:
        env["VPDC_HOME"] = str(home_root)
    if warehouse_db is not None:
        env["VPDC_WAREHOUSE_DB"] = str(warehouse_db)
    # the rates' denominators: the home's population estimates (the warehouse sits at the home's root)
    root = Path(home_root) if home_root is not None else (Path(warehouse_db).parent if warehouse_db else None)
    if root is not None and "VPDC_POPULATION_ESTIMATES" not in os.environ:
        env["VPDC_POPULATION_ESTIMATES"] = str(root / "reference" / "population_estimates.csv")
    return env


def manifest_is_stale(manifest: Path) -> bool:
    """True when the manifest is missing or older than any model, seed, macro, test or project file."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml",
               Path(__file__).resolve().parent.parent / "governance" / "defaults.py"]
    for sub in ("models", "seeds", "macros", "tests"):
        sources += [p for p in (DBT_PROJECT_DIR / sub).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in sources if p.exists())


def prepare_manifest(home_root: Path) -> Path:
    """``dbt parse`` into ``VPDC_HOME/dbt/target`` when the manifest is missing or stale; returns its path.

    ``prepare_if_dev()`` acts only under ``dagster dev``; headless runs and tests need the manifest too.

    Raises:
        RuntimeError: dbt could not parse the project (its own message, last lines).
    """
    target = target_dir(home_root)
    manifest = target / "manifest.json"
    if manifest_is_stale(manifest):
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(dbt_command(["parse", "--quiet"], target_path=target, log_path=target.parent / "logs"),
                              cwd=DBT_PROJECT_DIR, env=dbt_env(home_root=home_root), capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0 or not manifest.exists():
            raise RuntimeError(f"dbt parse failed: {(proc.stdout + proc.stderr).strip()[-1500:]}")
    return manifest


def dbt_project(home_root: Path):
    """The dagster-dbt view of the project, its manifest under ``VPDC_HOME/dbt/target`` (prepared if stale)."""
    from dagster_dbt import DbtProject

    prepare_manifest(home_root)
    return DbtProject(project_dir=DBT_PROJECT_DIR, target_path=target_dir(home_root))
