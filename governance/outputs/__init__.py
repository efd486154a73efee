"""Study outputs (zone 5): the gate, record-level releases, aggregate summaries, comparison groups.

Every output passes :mod:`governance.outputs.gate`: the policy (refusals audited), the strictest partner's
disclosure rules, the study's linkage pin, and the final disclosure check before anything is written.
"""

from governance.outputs.cohort import DEFAULT_COLUMNS, CohortSpec, approved_columns, export_cohort
from governance.outputs.gate import ExportResult, linkage_state
from governance.outputs.study import StudySpec, run_study
from governance.outputs.summary import SUMMARY_BREAKDOWNS, SummarySpec, export_cohort_summary

__all__ = ["DEFAULT_COLUMNS", "SUMMARY_BREAKDOWNS", "CohortSpec", "ExportResult", "StudySpec", "SummarySpec",
           "approved_columns", "export_cohort", "export_cohort_summary", "linkage_state", "run_study"]
