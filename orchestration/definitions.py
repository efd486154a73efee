from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from workspace.permissions import private_umask

    private_umask()  # what runs, dbt and DuckDB create under the home is the owner's alone (0600/0700)
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
