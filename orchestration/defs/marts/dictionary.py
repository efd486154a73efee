"""The data dictionary of the analytics zone: dbt docs (with the equity ``meta`` of every mart column) as one HTML file."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from orchestration.dbt_project import DBT_PROJECT_DIR, dbt_executable


def write_data_dictionary(home_root: Path, *, warehouse_db: Path | None = None) -> Path:
    """Generate ``dbt docs generate --static`` and copy the single HTML file to ``reports/data_dictionary.html``.

    The docs are generated in a private target directory so that the project's ``target/manifest.json`` (which
    Dagster reads) is never rewritten mid-run. The catalog reads column types from the warehouse.

    Args:
        home_root: the VPDC_HOME root.
        warehouse_db: the warehouse file (default ``home_root/warehouse.duckdb``).

    Returns:
        The path of the written HTML file (self-contained: opens offline).
    """
    home_root = Path(home_root)
    db = Path(warehouse_db) if warehouse_db else home_root / "warehouse.duckdb"
    out = home_root / "reports" / "data_dictionary.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "VPDC_WAREHOUSE_DB": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "PATH": str(dbt_executable().parent) + os.pathsep + os.environ.get("PATH", "")}
    with tempfile.TemporaryDirectory(prefix="vpdc-dbt-docs-") as tmp:
        proc = subprocess.run(
            [str(dbt_executable()), "docs", "generate", "--static", "--project-dir", str(DBT_PROJECT_DIR),
             "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", tmp, "--log-path", tmp, "--quiet"],
            check=False, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True,
        )
        html = Path(tmp) / "static_index.html"
        if proc.returncode != 0 or not html.exists():
            raise RuntimeError(f"dbt docs generate failed (rc {proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
        tmp_out = out.with_suffix(".html.tmp")
        shutil.copyfile(html, tmp_out)
        tmp_out.replace(out)  # never a half-written report
    return out
