"""The dbt project of the analytics zone, as Dagster sees it (no ``@dbt_assets`` here: importable without a manifest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def dbt_executable() -> Path:
    """The ``dbt`` of the running interpreter's environment (the project venv), whatever PATH says."""
    return Path(sys.executable).parent / "dbt"


def prepare_manifest() -> Path:
    """Run ``dbt parse`` so that ``target/manifest.json`` exists (headless runs, tests, a fresh clone).

    ``prepare_if_dev()`` acts only under ``dagster dev``; everything else must build the manifest itself.
    The venv's bin directory is put first on PATH because dagster-dbt looks ``dbt`` up on PATH.

    Returns:
        The manifest path.
    """
    bin_dir = str(dbt_executable().parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    subprocess.run(
        [str(dbt_executable()), "parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--quiet"],
        check=True, cwd=DBT_PROJECT_DIR, env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    )
    return dbt_project.manifest_path


def manifest_is_stale() -> bool:
    """True when the manifest is missing or older than any model, seed, macro, test or project file."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for sub in ("models", "seeds", "macros", "tests"):
        sources += [p for p in (DBT_PROJECT_DIR / sub).rglob("*") if p.is_file()]
    return any(p.stat().st_mtime > built for p in sources if p.exists())
