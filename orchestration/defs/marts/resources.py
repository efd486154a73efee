"""The dbt CLI resource, in its own file (a defs file that defines Definitions has its assets ignored).

The warehouse path is not configured here: profiles.yml reads VPDC_WAREHOUSE_DB, else VPDC_HOME, at run time.
"""

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt_project import dbt_executable, dbt_project


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"dbt": DbtCliResource(project_dir=dbt_project,
                                                           dbt_executable=str(dbt_executable()))})
