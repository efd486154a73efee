"""Resources and the executor, in their own file: a defs file that defines ``Definitions`` has its assets ignored."""

import dagster as dg

from orchestration.resources import default_resources


@dg.definitions
def resources() -> dg.Definitions:
    # In-process: DuckDB has one writer per file, and headless runs start ~2x faster than multiprocess.
    return dg.Definitions(resources=default_resources(), executor=dg.in_process_executor)
