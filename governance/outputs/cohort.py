"""A de-identified program cohort (ATV, HVIP) with pre/post outcome windows, optionally with a matched
comparison group: study pseudonyms, coarsened dates, k-anonymity, release manifest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from governance.defaults import AGE_BANDS_WIDER, OUTCOME_WINDOW_DAYS
from governance.outputs.gate import ExportResult, authorize_output, release_records, study_key
from governance.registry.db import Registry
from governance.registry.models import OutputLevel

__all__ = ["AGE_WIDER", "ALL", "DATASET", "DEFAULT_COLUMNS", "CohortSpec", "approved_columns", "export_cohort"]

DATASET = "program_cohorts"
DEFAULT_COLUMNS = ["program", "enrollment_date", "age_band_at_enrollment", "sex", "race_ethnicity",
                   "police_victim_contacts_pre", "police_victim_contacts_post", "police_suspect_contacts_pre",
                   "police_suspect_contacts_post", "violent_injury_visits_pre", "violent_injury_visits_post",
                   "school_suspensions_pre", "school_suspensions_post", "school_absence_days_pre",
                   "school_absence_days_post"]


#: One generalisation step over the marts' age bands (governance.defaults): youth, young adult, adult, older.
AGE_WIDER = AGE_BANDS_WIDER


def ALL(series: pd.Series) -> pd.Series:  # noqa: N802 - a generaliser's last level: the attribute withheld
    """Generalise a quasi-identifier fully ("All"): better to withhold one attribute than drop whole records."""
    return pd.Series(["All"] * len(series), index=series.index, dtype=object)


@dataclass(frozen=True)
class CohortSpec:
    study_id: str
    actor: str
    program: str  # ATV or HVIP
    period_start: date
    period_end: date
    window_days: int = OUTCOME_WINDOW_DAYS
    #: columns of program_cohorts to export; empty: every column the approval allows now
    columns: tuple[str, ...] = ()
    #: matched non-participants per participant (0: no comparison group); see governance.outputs.comparison
    comparison_ratio: int = 0
    #: accept person-key merges/splits since the study's pinned linkage run (audited)
    repin: bool = False



def approved_columns(registry: Registry, study_id: str, dataset: str, *, now: datetime) -> list[str]:
    """The columns of ``dataset`` the request may use now (after every condition), in the mart's order.

    Empty when the request is not active: the gate then refuses with its reasons.
    """
    from governance.registry.policy import decide

    with registry.read() as s:
        scope = decide(s, study_id, at=now)
    if not scope.active:
        return []
    cols = {c for d, c in scope.columns if d == dataset}
    order = DEFAULT_COLUMNS if dataset == DATASET else []
    return [c for c in order if c in cols] + sorted(cols - set(order))


def export_cohort(spec: CohortSpec, *, registry: Registry, warehouse_db: Path, outputs_dir: Path, keys_dir: Path,
                  now: datetime, mart_schema: str = "analytics") -> ExportResult:
    """Export a de-identified program cohort (optionally with a matched comparison group) for an approved request.

    Raises:
        PolicyRefused: the request is not active or the ask is outside its approval (refusal audited).
    """
    from governance.disclosure import period
    from governance.pseudonyms import coarsen_dates, pseudonymise

    columns = list(spec.columns) or approved_columns(registry, spec.study_id, DATASET, now=now) or DEFAULT_COLUMNS
    rules, linkage = authorize_output(registry, study_id=spec.study_id, actor=spec.actor, now=now, level=OutputLevel.COHORT,
                                columns=[(DATASET, c) for c in columns], action="export",
                                refused_as="export.cohort", warehouse_db=warehouse_db, repin=spec.repin,
                                detail={"program": spec.program, "comparison_ratio": spec.comparison_ratio})
    cols = ", ".join(f'"{c}"' for c in columns)
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        df = con.execute(
            f'select person_key, {cols} from {mart_schema}.program_cohorts '
            "where program = ? and enrollment_date between ? and ? and window_days = ?",
            [spec.program, spec.period_start, spec.period_end, spec.window_days]).df()
        if spec.comparison_ratio > 0:
            from governance.outputs.comparison import comparison_group

            controls = comparison_group(con, program=spec.program, period_start=spec.period_start,
                                        period_end=spec.period_end, window_days=spec.window_days,
                                        ratio=spec.comparison_ratio, schema=mart_schema)
            controls["program"] = spec.program
            controls = controls[[c for c in df.columns if c in controls.columns]]
            df.insert(1, "cohort_group", "participant")
            controls.insert(1, "cohort_group", "comparison")
            df = pd.concat([df, controls], ignore_index=True)
    df.insert(0, "study_person_id", pseudonymise(df.pop("person_key").tolist(), study_key(keys_dir, spec.study_id)))
    if "enrollment_date" in df.columns:
        df = coarsen_dates(df, ["enrollment_date"], to="month")
    # generalise before suppressing: month → quarter → year; age bands → wider → withheld; sex, race withheld
    generalisers = {"enrollment_date": [period("quarter"), period("year")],
                    "age_band_at_enrollment": [AGE_WIDER, ALL], "sex": [ALL], "race_ethnicity": [ALL]}
    stem = f"cohort_{spec.program.lower()}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}_w{spec.window_days}"
    return release_records(df, registry=registry, study_id=spec.study_id, actor=spec.actor, now=now, rules=rules,
                    dataset=DATASET, generalisers=generalisers, data_path=outputs_dir / spec.study_id / f"{stem}.csv",
                    action="export", manifest_extra={"linkage": linkage})


