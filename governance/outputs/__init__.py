"""Study outputs (zone 5): the gate, record-level releases, aggregate summaries, comparison groups."""

from governance.outputs.exports import (
    DEFAULT_COLUMNS,
    CohortSpec,
    ExportResult,
    StudySpec,
    SummarySpec,
    approved_columns,
    export_cohort,
    export_cohort_summary,
    linkage_state,
    run_study,
)

__all__ = ["DEFAULT_COLUMNS", "CohortSpec", "ExportResult", "StudySpec", "SummarySpec", "approved_columns", "export_cohort",
           "export_cohort_summary", "linkage_state", "run_study"]
