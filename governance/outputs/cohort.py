"""A de-identified program cohort (ATV, HVIP) with pre/post outcome windows, optionally with a matched
comparison group: study pseudonyms, coarsened dates, k-anonymity, release manifest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from governance.defaults import AGE_BANDS_WIDER, OUTCOME_WINDOW_DAYS
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

__all__ = ["AGE_WIDER", "ALL", "DATASET", "DEFAULT_COLUMNS", "CohortSpec", "approved_columns", "cohort_generalisers",
           "export_cohort"]

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


def cohort_generalisers(dates: list[str], outcomes: list[str]) -> dict[str, list[Any]]:
    """How a record-level cohort file is generalised before records are suppressed (dates already coarsened to
    months): month -> quarter -> year; age bands -> wider -> withheld; sex, race withheld; counts top-coded at 3,
    then any/none, then withheld. Cohort exports and the analysts' browse view of the cohorts use it."""
    from governance.disclosure import count_band, period

    return {c: [period("quarter"), period("year")] for c in dates} | {
        "age_band_at_enrollment": [AGE_WIDER, ALL], "sex": [ALL], "race_ethnicity": [ALL]} | {
        c: [count_band(3), count_band(1), ALL] for c in outcomes}


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

    Every released column but the study pseudonym is a quasi-identifier: the outcome counts too (the agency
    that recorded them knows them, and two studies' files would otherwise join on them), top-coded then
    reduced to any/none before a record is dropped. The comparison group is drawn per study. What the banding
    costs an effect estimate is in the manifest.

    Raises:
        ReleaseRequestError: an invalid option (named) or an empty cohort (audited).
        PolicyRefused: the request is not active or the ask is outside its approval (refusal audited).
    """
    from governance.pseudonyms import coarsen_dates, pseudonymise

    check_release_request(registry, study_id=spec.study_id, actor=spec.actor, now=now, action="export",
                          warehouse_db=warehouse_db, mart_schema=mart_schema, program=spec.program,
                          window_days=spec.window_days, period=(spec.period_start, spec.period_end),
                          dataset=DATASET, columns=spec.columns or None)
    columns = list(spec.columns) or approved_columns(registry, spec.study_id, DATASET, now=now) or DEFAULT_COLUMNS
    rules, linkage = authorize_output(registry, study_id=spec.study_id, actor=spec.actor, now=now,
                                      level=OutputLevel.COHORT, columns=[(DATASET, c) for c in columns],
                                      action="export", refused_as="export.cohort", warehouse_db=warehouse_db,
                                      repin=spec.repin,
                                      detail={"program": spec.program, "comparison_ratio": spec.comparison_ratio})
    cols = ", ".join(f'"{c}"' for c in columns)
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        df = con.execute(
            f'select person_key, {cols} from {mart_schema}.program_cohorts '
            "where program = ? and enrollment_date between ? and ? and window_days = ? order by person_key",
            [spec.program, spec.period_start, spec.period_end, spec.window_days]).df()
        if df.empty:
            refuse_request(registry, spec.study_id, spec.actor, now, "export",
                           "the cohort is empty for this program and period: there is nothing to export")
        if spec.comparison_ratio > 0:
            from governance.outputs.comparison import comparison_group

            controls = comparison_group(con, program=spec.program, period_start=spec.period_start,
                                        period_end=spec.period_end, window_days=spec.window_days,
                                        ratio=spec.comparison_ratio, schema=mart_schema, seed=study_seed(spec.study_id))
            controls["program"] = spec.program
            controls = controls[[c for c in df.columns if c in controls.columns]]
            df.insert(1, "cohort_group", "participant")
            controls.insert(1, "cohort_group", "comparison")
            df = pd.concat([df, controls], ignore_index=True)
    df.insert(0, "study_person_id", pseudonymise(df.pop("person_key").tolist(), study_key(keys_dir, spec.study_id)))
    dates = [c for c in ("enrollment_date", "pre_window_start", "post_window_end", "observation_end_date")
             if c in df.columns]
    if dates:
        df = coarsen_dates(df, dates, to="month")
    outcomes = [c for c in df.columns if c.endswith(("_pre", "_post"))]
    before = _effects(df, outcomes)
    generalisers = cohort_generalisers(dates, outcomes)
    stem = f"cohort_{spec.program.lower()}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}_w{spec.window_days}"
    population = {"program": spec.program, "window_days": spec.window_days, "from": spec.period_start.isoformat(),
                  "to": spec.period_end.isoformat(), "comparison_ratio": spec.comparison_ratio}
    result = release_records(df, registry=registry, study_id=spec.study_id, actor=spec.actor, now=now, rules=rules,
                             dataset=DATASET, generalisers=generalisers, outputs_dir=outputs_dir, stem=stem,
                             kind="cohort", action="export", spec=population,
                             extra_quasi_identifiers=("program", "cohort_group", "window_days", "post_window_complete"),
                             manifest_extra={"linkage": linkage, "banding_cost": {"before": before}})
    released = pd.read_csv(result.files[0], dtype=str)
    _add_banding_cost(result, before, _effects(released, [c for c in outcomes if c in released.columns]))
    return result


def study_seed(study_id: str) -> int:
    """The comparison group's seed for a study: a different draw of non-participants for each study, the same for
    every release of one study."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"vpdc/comparison/{study_id}".encode()).digest()[:4], "big")


def _numeric(series: pd.Series) -> pd.Series:
    """A released count back as a number: "3+" as 3 (its lower bound), "All" as unknown."""
    return pd.to_numeric(series.astype(str).str.rstrip("+"), errors="coerce")


def _effects(df: pd.DataFrame, outcomes: list[str]) -> dict[str, float | None]:
    """Per outcome stem: the mean change (post - pre) of participants, less that of the comparison group if any."""
    out: dict[str, float | None] = {}
    stems = sorted({c.rsplit("_", 1)[0] for c in outcomes if c.rsplit("_", 1)[0] + "_pre" in df.columns
                    and c.rsplit("_", 1)[0] + "_post" in df.columns})
    for stem in stems:
        change = _numeric(df[f"{stem}_post"]) - _numeric(df[f"{stem}_pre"])
        if change.isna().all():
            out[stem] = None
            continue
        if "cohort_group" in df.columns:
            group = df["cohort_group"].astype(str)
            out[stem] = round(float(change[group == "participant"].mean() - change[group == "comparison"].mean()), 4)
        else:
            out[stem] = round(float(change.mean()), 4)
    return out


def _add_banding_cost(result: ExportResult, before: dict[str, Any], after: dict[str, Any]) -> None:
    """The effect estimate on the true counts beside the one a reader gets from the released (banded) counts."""
    cost = {s: {"true_counts": before[s], "released_counts": after.get(s)} for s in before}
    result.generalised["banding_cost"] = cost
