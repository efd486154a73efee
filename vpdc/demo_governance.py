"""The governance part of the demo: an ATV evaluation request approved and exported, a second refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from governance.outputs import DEFAULT_COLUMNS, CohortSpec, export_cohort
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.policy import PolicyRefused, decide
from governance.registry.seed import PARTNERS, seed_demo
from governance.registry.workflow import review_request, submit_request
from workspace import Home

ATV_REQUEST: dict[str, Any] = {
    "study_id": "atv-eval-2026",
    "title": "Alternatives to Violence: outcomes before and after enrolment",
    "organisation": "Evaluation partner",
    "purpose": "Evaluate whether ATV enrolment is followed by fewer police contacts, violent injuries and "
               "school suspensions.",
    "research_questions": "1. Do police contacts as victim or suspect fall in the year after enrolment? "
                          "2. Do violent-injury visits fall? 3. Do school absences and suspensions change?",
    "columns": [{"dataset": "program_cohorts", "column": c} for c in DEFAULT_COLUMNS],
    "output_level": "cohort",
    "irb_protocol": "IRB-2026-0417",
    "equity_communities": "Young Black and Hispanic residents of the four priority areas, who are most exposed "
                          "to violence and to police contact.",
    "equity_return_of_findings": "Findings go first to the community council and ATV staff, in plain language, "
                                 "before any publication.",
    "equity_mitigation": "Results stratified by race/ethnicity only where linkage error is even across groups; "
                         "police contact is described as contact, never as offending.",
}


def run_governance_demo(home: Home, *, now: datetime | None = None) -> dict[str, Any]:
    """Seed the registry, walk one request through approval and export, show another refused."""
    from vpdc.governance_cli import registry_for

    now = now or datetime.now(UTC)
    reg: Registry = registry_for(home)
    with reg.transaction() as s:
        seed_demo(s)
    study = ATV_REQUEST["study_id"]
    with reg.read() as s:
        exists = decide(s, study, at=now).reasons != (f"no request with study id {study!r}",)
    if not exists:
        body = ATV_REQUEST | {"irb_expires_on": (now + timedelta(days=365)).date(),
                              "retention_end": (now + timedelta(days=540)).date()}
        with reg.transaction() as s:
            submit_request(s, requester="evaluator_atv", now=now, **body)
        for who in [f"steward_{p}" for p in PARTNERS] + ["community_board"]:
            with reg.transaction() as s:
                review_request(s, reviewer=who, study_id=study, decision="approve", now=now,
                               comment="Approved for the ATV evaluation as described.")
    with reg.read() as s:
        scope = decide(s, study, at=now)
    export = export_cohort(CohortSpec(study, "evaluator_atv", "ATV", date(2021, 1, 1), now.date(), 365,
                                      comparison_ratio=1),
                           registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, keys_dir=home.keys,
                           now=now)
    # a second request: record-level with race/ethnicity, not yet reviewed by anyone → refused at the gate
    second = "linked-extract-2026"
    with reg.read() as s:
        has_second = decide(s, second, at=now).reasons != (f"no request with study id {second!r}",)
    if not has_second:
        with reg.transaction() as s:
            submit_request(s, requester="analyst_isc", now=now, **(ATV_REQUEST | {
                "study_id": second, "title": "Linked extract including race/ethnicity",
                "columns": ATV_REQUEST["columns"] + [{"dataset": "program_cohorts", "column": "race_ethnicity"}],
                "irb_expires_on": (now + timedelta(days=365)).date(),
                "retention_end": (now + timedelta(days=540)).date()}))
    refused = ""
    try:
        export_cohort(CohortSpec(second, "analyst_isc", "ATV", date(2021, 1, 1), now.date(), 365),
                      registry=reg, warehouse_db=home.warehouse_db, outputs_dir=home.outputs, keys_dir=home.keys,
                      now=now)
    except PolicyRefused as exc:
        refused = str(exc)
    with reg.read() as s:
        chain = audit.verify(s)
    return {"study": study, "active": scope.active, "export": export, "refused": refused,
            "audit_ok": chain.ok, "audit_entries": chain.entries}
