"""Gated study outputs: a program cohort export (and its release), never without the policy's yes.

Every export: ``policy.authorize`` (refusal audited) → read the approved mart columns → replace the
person key by a study-specific pseudonym → coarsen dates → enforce k-anonymity on the quasi-identifiers
(generalise, then suppress; what was done is reported) → final disclosure check of the file → write it
with a release manifest (checksums, rules, checks) under ``outputs/<study>/`` → audit the release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from governance.catalog import quasi_identifiers
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.models import OutputLevel, Partner, Role
from governance.registry.policy import PolicyRefused, authorize
from governance.registry.workflow import record_refusal

__all__ = ["CohortSpec", "ExportResult", "StudySpec", "export_cohort", "run_study"]

DATASET = "program_cohorts"
DEFAULT_COLUMNS = ["program", "enrollment_date", "age_band_at_enrollment", "sex", "race_ethnicity",
                   "police_victim_contacts_pre", "police_victim_contacts_post", "police_suspect_contacts_pre",
                   "police_suspect_contacts_post", "violent_injury_visits_pre", "violent_injury_visits_post",
                   "school_suspensions_pre", "school_suspensions_post", "school_absence_days_pre",
                   "school_absence_days_post"]


#: One generalisation step over the marts' age bands (dbt macro age_band): youth, young adult, adult, older.
AGE_WIDER = {"0-9": "0-17", "10-14": "0-17", "15-17": "0-17", "18-24": "18-34", "25-34": "18-34",
             "35-44": "35-54", "45-54": "35-54", "55-64": "55+", "65+": "55+", "Unknown": "Unknown"}


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
    window_days: int = 365
    columns: tuple[str, ...] = tuple(DEFAULT_COLUMNS)
    #: matched non-participants per participant (0: no comparison group); see governance.comparison
    comparison_ratio: int = 0


@dataclass
class ExportResult:
    study_id: str
    files: list[str]
    manifest: str
    rows: int
    suppressed_rows: int
    generalised: dict[str, Any] = field(default_factory=dict)


def _authorize(registry: Registry, *, study_id: str, actor: str, now: datetime, level: OutputLevel,
               columns: list[tuple[str, str]], role: Role, action: str, refused_as: str,
               detail: dict[str, Any]) -> Any:
    """The gate, audited either way; returns the strictest disclosure rules of the partners involved."""
    from governance.disclosure import DisclosureRules, combine

    try:
        with registry.transaction() as s:
            scope = authorize(s, study_id, at=now, actor=actor, output_level=level, columns=columns,
                              permission_role=role)
            rules = combine([DisclosureRules(min_cell=p.min_cell, k_anonymity=p.k_anonymity)
                             for p in s.query(Partner).filter(Partner.id.in_(scope.sources)).all()] or [DisclosureRules()])
            audit.append(s, actor=actor, action=f"{action}.authorized", subject=study_id, at=now,
                         detail={"columns": len(columns), "output_level": level.value, **detail})
    except PolicyRefused as exc:
        record_refusal(registry, actor=actor, action=refused_as, subject=study_id, reason=str(exc), now=now)
        raise
    return rules


def _release(df: pd.DataFrame, *, registry: Registry, study_id: str, actor: str, now: datetime, rules: Any,
             dataset: str, generalisers: dict[str, list[Any]], data_path: Path, action: str,
             manifest_extra: dict[str, Any] | None = None) -> ExportResult:
    """k-anonymity on the quasi-identifiers, the final release check, then the file, its manifest and the audit."""
    from governance.disclosure import check_release, enforce_k_anonymity, release_manifest, write_manifest

    qis = [c for c in quasi_identifiers(dataset) if c in df.columns]
    df, kreport = enforce_k_anonymity(df, qis, rules, {q: g for q, g in generalisers.items() if q in qis})
    check = check_release(df, kind="record", rules=rules, quasi_identifiers=qis)
    if not check.passed:
        reason = "release check failed: " + "; ".join(check.failures)
        record_refusal(registry, actor=actor, action=f"{action}.release", subject=study_id, reason=reason, now=now)
        raise PolicyRefused(f"{study_id}: {reason}")
    data_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = data_path.with_name(f".{data_path.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(data_path)
    kinfo = kreport.to_dict()
    manifest = release_manifest([data_path], study_id=study_id, request_id=study_id,
                                checks={data_path.name: check}, rules=rules, now=now)
    manifest |= {"k_anonymity": kinfo, **(manifest_extra or {})}
    manifest_path = data_path.with_name(data_path.stem + ".manifest.json")
    manifest_path.unlink(missing_ok=True)  # a re-run replaces its own manifest along with its file
    write_manifest(manifest_path, manifest)
    with registry.transaction() as s:
        audit.append(s, actor=actor, action=f"{action}.released", subject=study_id, at=now,
                     detail={"file": data_path.name, "rows": int(len(df)), "manifest": manifest_path.name})
    return ExportResult(study_id, [str(data_path)], str(manifest_path), int(len(df)),
                        int(kinfo["records_suppressed"]), json.loads(json.dumps(kinfo, default=str)))


def _study_key(keys_dir: Path, study_id: str) -> bytes:
    from governance.keys import KeyRing
    from governance.pseudonyms import StudyKeyStore

    return StudyKeyStore(keys_dir / "studies").get_or_create(study_id, KeyRing(keys_dir).study_master_secret())


def export_cohort(spec: CohortSpec, *, registry: Registry, warehouse_db: Path, outputs_dir: Path, keys_dir: Path,
                  now: datetime, mart_schema: str = "analytics") -> ExportResult:
    """Export a de-identified program cohort (optionally with a matched comparison group) for an approved request.

    Raises:
        PolicyRefused: the request is not active or the ask is outside its approval (refusal audited).
    """
    from governance.disclosure import period
    from governance.pseudonyms import coarsen_dates, pseudonymise

    rules = _authorize(registry, study_id=spec.study_id, actor=spec.actor, now=now, level=OutputLevel.COHORT,
                       columns=[(DATASET, c) for c in spec.columns], role=Role.EVALUATOR, action="export", refused_as="export.cohort",
                       detail={"program": spec.program, "comparison_ratio": spec.comparison_ratio})
    cols = ", ".join(f'"{c}"' for c in spec.columns if c != "program")
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        df = con.execute(
            f'select person_key, program, {cols} from {mart_schema}.program_cohorts '
            "where program = ? and enrollment_date between ? and ? and window_days = ?",
            [spec.program, spec.period_start, spec.period_end, spec.window_days]).df()
        if spec.comparison_ratio > 0:
            from governance.comparison import comparison_group

            controls = comparison_group(con, program=spec.program, period_start=spec.period_start,
                                        period_end=spec.period_end, window_days=spec.window_days,
                                        ratio=spec.comparison_ratio, schema=mart_schema)
            controls["program"] = spec.program
            controls = controls[[c for c in df.columns if c in controls.columns]]
            df.insert(1, "cohort_group", "participant")
            controls.insert(1, "cohort_group", "comparison")
            df = pd.concat([df, controls], ignore_index=True)
    df.insert(0, "study_person_id", pseudonymise(df.pop("person_key").tolist(), _study_key(keys_dir, spec.study_id)))
    if "enrollment_date" in df.columns:
        df = coarsen_dates(df, ["enrollment_date"], to="month")
    # generalise before suppressing: month → quarter → year; age bands → wider → withheld; sex, race withheld
    generalisers = {"enrollment_date": [period("quarter"), period("year")],
                    "age_band_at_enrollment": [AGE_WIDER, ALL], "sex": [ALL], "race_ethnicity": [ALL]}
    stem = f"cohort_{spec.program.lower()}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}_w{spec.window_days}"
    return _release(df, registry=registry, study_id=spec.study_id, actor=spec.actor, now=now, rules=rules,
                    dataset=DATASET, generalisers=generalisers, data_path=outputs_dir / spec.study_id / f"{stem}.csv",
                    action="export")


@dataclass(frozen=True)
class StudySpec:
    """A linked study extract: approved columns of the cross-sector events of the study population."""

    study_id: str
    actor: str
    columns: tuple[str, ...]
    period_start: date
    period_end: date
    dataset: str = "events"


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

    rules = _authorize(registry, study_id=spec.study_id, actor=spec.actor, now=now, level=OutputLevel.LINKED_EXTRACT,
                       columns=[(spec.dataset, c) for c in spec.columns], role=Role.ANALYST, action="study", refused_as="study.run",
                       detail={"dataset": spec.dataset})
    cols = ", ".join(f'"{c}"' for c in spec.columns)
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        df = con.execute(f'select person_key, {cols} from {mart_schema}.{spec.dataset} '
                         "where event_date between ? and ?", [spec.period_start, spec.period_end]).df()
    key = _study_key(keys_dir, spec.study_id)
    df.insert(0, "study_person_id", pseudonymise(df.pop("person_key").tolist(), key))
    dates = [c for c in spec.columns if c.endswith("_date")]
    if dates:
        df = shift_dates(df, dates, "study_person_id", key)
    generalisers = {"event_date": [period("month"), period("quarter")], "age_band_at_event": [AGE_WIDER, ALL]}
    path = outputs_dir / spec.study_id / f"extract_{spec.dataset}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}.csv"
    return _release(df, registry=registry, study_id=spec.study_id, actor=spec.actor, now=now, rules=rules,
                    dataset=spec.dataset, generalisers=generalisers, data_path=path, action="study",
                    manifest_extra={"dates": "shifted per person by up to 30 days (intervals preserved)"})
