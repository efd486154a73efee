"""A linked study extract: approved columns of the cross-sector events, study pseudonyms, dates shifted per
person, k-anonymity, release manifest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from governance.outputs.cohort import AGE_WIDER, ALL
from governance.outputs.gate import (
    ExportResult,
    authorize_output,
    check_release_request,
    refuse_request,
    release_records,
    study_key,
)
from governance.registry.db import Registry
from governance.registry.models import OutputLevel

__all__ = ["StudySpec", "run_study"]


@dataclass(frozen=True)
class StudySpec:
    """A linked study extract: approved columns of the cross-sector events of the study population."""

    study_id: str
    actor: str
    columns: tuple[str, ...]
    period_start: date
    period_end: date
    dataset: str = "events"
    repin: bool = False


def run_study(spec: StudySpec, *, registry: Registry, warehouse_db: Path, outputs_dir: Path, keys_dir: Path,
              now: datetime, mart_schema: str = "analytics") -> ExportResult:
    """Run an approved linked-data study: a record-level, study-pseudonymised, date-shifted extract.

    Dates are shifted per person (the same shift for all of a person's events, so intervals survive;
    different people get different shifts), then k-anonymity on the quasi-identifiers and the final
    release check, as for cohorts.

    Raises:
        PolicyRefused: not active, not the requester's, not a linked extract, or columns outside the approval.
    """
    from governance.disclosure import period
    from governance.pseudonyms import pseudonymise, shift_dates

    check_release_request(registry, study_id=spec.study_id, actor=spec.actor, now=now, action="study",
                          warehouse_db=warehouse_db, mart_schema=mart_schema,
                          period=(spec.period_start, spec.period_end), dataset=spec.dataset, columns=spec.columns)
    rules, linkage = authorize_output(registry, study_id=spec.study_id, actor=spec.actor, now=now,
                                level=OutputLevel.LINKED_EXTRACT, columns=[(spec.dataset, c) for c in spec.columns],
                                action="study", refused_as="study.run", warehouse_db=warehouse_db,
                                repin=spec.repin, detail={"dataset": spec.dataset})
    cols = ", ".join(f'"{c}"' for c in spec.columns)
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        df = con.execute(f'select person_key, {cols} from {mart_schema}.{spec.dataset} '
                         "where event_date between ? and ? order by person_key, event_date",
                         [spec.period_start, spec.period_end]).df()
    if df.empty:
        refuse_request(registry, spec.study_id, spec.actor, now, "study",
                       "no events in this period: there is nothing to extract")
    key = study_key(keys_dir, spec.study_id)
    df.insert(0, "study_person_id", pseudonymise(df.pop("person_key").tolist(), key))
    dates = [c for c in spec.columns if c.endswith("_date")]
    if dates:
        df = shift_dates(df, dates, "study_person_id", key)
    generalisers = {"event_date": [period("month"), period("quarter")], "age_band_at_event": [AGE_WIDER, ALL]}
    stem = f"extract_{spec.dataset}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}"
    return release_records(df, registry=registry, study_id=spec.study_id, actor=spec.actor, now=now, rules=rules,
                    dataset=spec.dataset, generalisers=generalisers, outputs_dir=outputs_dir, stem=stem, kind="study",
                    action="study", spec={"dataset": spec.dataset, "columns": list(spec.columns),
                                          "from": spec.period_start.isoformat(), "to": spec.period_end.isoformat()},
                    manifest_extra={"dates": "shifted per person by up to 30 days (intervals preserved)",
                                    "linkage": linkage})


