"""The data dictionary of the analytics zone: dbt docs (with the equity ``meta`` of every mart column) as one HTML file."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from orchestration.dbt_project import DBT_PROJECT_DIR, dbt_command, dbt_env
from workspace.files import atomic_copy


def write_data_dictionary(home_root: Path, *, warehouse_db: Path | None = None) -> Path:
    """Generate ``dbt docs generate --static`` and copy the single HTML file to ``reports/data_dictionary.html``.

    The docs are generated in a private target directory so that the manifest Dagster reads is never rewritten
    mid-run. The catalog reads column types from the warehouse.

    Args:
        home_root: the VPDC_HOME root.
        warehouse_db: the warehouse file (default ``home_root/warehouse.duckdb``).

    Returns:
        The path of the written HTML file (self-contained: opens offline).
    """
    home_root = Path(home_root)
    db = Path(warehouse_db) if warehouse_db else home_root / "warehouse.duckdb"
    out = home_root / "reports" / "data_dictionary.html"
    with tempfile.TemporaryDirectory(prefix="vpdc-dbt-docs-") as tmp:
        proc = subprocess.run(dbt_command(["docs", "generate", "--static", "--quiet"], target_path=Path(tmp)),
                              check=False, cwd=DBT_PROJECT_DIR, env=dbt_env(home_root=home_root, warehouse_db=db),
                              capture_output=True, text=True)
        html = Path(tmp) / "static_index.html"
        if proc.returncode != 0 or not html.exists():
            raise RuntimeError(f"dbt docs generate failed (rc {proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
        atomic_copy(html, out)  # never a half-written report
    return out
