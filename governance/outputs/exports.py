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

__all__ = ["CohortSpec", "ExportResult", "StudySpec", "SummarySpec", "approved_columns", "export_cohort",
           "export_cohort_summary", "linkage_state", "run_study"]

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
    #: columns of program_cohorts to export; empty: every column the approval allows now
    columns: tuple[str, ...] = ()
    #: matched non-participants per participant (0: no comparison group); see governance.outputs.comparison
    comparison_ratio: int = 0
    #: accept person-key merges/splits since the study's pinned linkage run (audited)
    repin: bool = False


@dataclass
class ExportResult:
    study_id: str
    files: list[str]
    manifest: str
    rows: int
    suppressed_rows: int
    generalised: dict[str, Any] = field(default_factory=dict)


def linkage_state(warehouse_db: Path, pinned_run: str | None = None) -> dict[str, Any]:
    """The person-key version the analytics zone holds now, and what changed since ``pinned_run``.

    Read from ``raw.linkage_runs`` and ``raw.person_key_events`` (exported with the person map): run ids,
    times and counts only. ``current_run`` is None when no linkage run was exported yet.
    """
    state: dict[str, Any] = {"current_run": None, "pinned_run": pinned_run, "merged_since_pin": 0,
                             "split_since_pin": 0}
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        have = {r[0] for r in con.execute("select table_name from information_schema.tables "
                                          "where table_schema = 'raw'").fetchall()}
        if "linkage_runs" not in have:
            return state
        row = con.execute("select linkage_run_id from raw.linkage_runs order by finished_at desc, linkage_run_id desc "
                          "limit 1").fetchone()
        state["current_run"] = row[0] if row else None
        if pinned_run and pinned_run != state["current_run"] and "person_key_events" in have:
            for event, n in con.execute(
                    "select event, count(*) from raw.person_key_events where event in ('merged', 'split') and "
                    "linkage_run_id in (select linkage_run_id from raw.linkage_runs where finished_at > "
                    "(select finished_at from raw.linkage_runs where linkage_run_id = ?)) group by 1",
                    [pinned_run]).fetchall():
                state[f"{event}_since_pin"] = int(n)
    return state


def _authorize(registry: Registry, *, study_id: str, actor: str, now: datetime, level: OutputLevel,
               columns: list[tuple[str, str]], role: Role, action: str, refused_as: str,
               detail: dict[str, Any], warehouse_db: Path, repin: bool = False) -> tuple[Any, dict[str, Any]]:
    """The gate, audited either way; returns the strictest disclosure rules of the partners involved and
    the study's linkage pin.

    The first output of a study pins the linkage run (person-key version) it was made from. A later
    output made after merges or splits of person keys is refused unless ``repin`` accepts the new
    linkage (audited as ``study.repinned``): study pseudonyms derive from person keys, so a merge or
    split changes who is who between two releases of the same study.
    """
    from governance.disclosure import DisclosureRules, combine
    from governance.registry.models import Request

    try:
        with registry.transaction() as s:
            scope = authorize(s, study_id, at=now, actor=actor, output_level=level, columns=columns,
                              permission_role=role)
            rules = combine([DisclosureRules(min_cell=p.min_cell, k_anonymity=p.k_anonymity)
                             for p in s.query(Partner).filter(Partner.id.in_(scope.sources)).all()] or [DisclosureRules()])
            req = s.query(Request).filter(Request.study_id == study_id).one()
            linkage = linkage_state(warehouse_db, req.linkage_run_id)
            current, pinned = linkage["current_run"], req.linkage_run_id
            changed = linkage["merged_since_pin"] + linkage["split_since_pin"]
            if current and pinned and current != pinned and changed:
                if not repin:
                    raise PolicyRefused(
                        f"{study_id}: refused: person keys changed since the study's pinned linkage run {pinned} "
                        f"({linkage['merged_since_pin']} merges, {linkage['split_since_pin']} splits up to run "
                        f"{current}); outputs would not line up with earlier ones. Repin to accept the new "
                        "linkage (--repin; audited)")
                audit.append(s, actor=actor, action="study.repinned", subject=study_id, at=now,
                             detail={"from_run": pinned, "to_run": current, "merged": linkage["merged_since_pin"],
                                     "split": linkage["split_since_pin"]})
                pinned = None
            if current and not pinned:
                req.linkage_run_id, req.linkage_pinned_at = current, now
                linkage["pinned_run"] = current
            audit.append(s, actor=actor, action=f"{action}.authorized", subject=study_id, at=now,
                         detail={"columns": len(columns), "output_level": level.value,
                                 "linkage_run": linkage["pinned_run"], **detail})
    except PolicyRefused as exc:
        record_refusal(registry, actor=actor, action=refused_as, subject=study_id, reason=str(exc), now=now)
        raise
    return rules, linkage


def _gate_release(registry: Registry, check: Any, *, study_id: str, actor: str, action: str, now: datetime) -> None:
    """The last gate before a file is written: its disclosure check, then the policy asked again (a request
    revoked or expired while the file was prepared releases nothing). A refusal is audited.

    Raises:
        PolicyRefused: naming the failed checks or the reasons the request is no longer active.
    """
    from governance.registry.policy import decide

    if not check.passed:
        reason = "release check failed: " + "; ".join(check.failures)
    else:
        with registry.read() as s:
            scope = decide(s, study_id, at=now)
        if scope.active:
            return
        reason = "refused: no longer active at release: " + "; ".join(scope.reasons)
    record_refusal(registry, actor=actor, action=f"{action}.release", subject=study_id, reason=reason, now=now)
    raise PolicyRefused(f"{study_id}: {reason}")


def _release(df: pd.DataFrame, *, registry: Registry, study_id: str, actor: str, now: datetime, rules: Any,
             dataset: str, generalisers: dict[str, list[Any]], data_path: Path, action: str,
             manifest_extra: dict[str, Any] | None = None) -> ExportResult:
    """k-anonymity on the quasi-identifiers, the final release check, then the file, its manifest and the audit."""
    from governance.disclosure import check_release, enforce_k_anonymity, release_manifest, write_manifest

    qis = [c for c in quasi_identifiers(dataset) if c in df.columns]
    # k counts persons, not rows: an extract has several events per person
    df, kreport = enforce_k_anonymity(df, qis, rules, {q: g for q, g in generalisers.items() if q in qis},
                                      entity="study_person_id")
    check = check_release(df, kind="record", rules=rules, quasi_identifiers=qis, entity="study_person_id")
    _gate_release(registry, check, study_id=study_id, actor=actor, action=action, now=now)
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


def _study_key(keys_dir: Path, study_id: str) -> bytes:
    from envelope.keys import KeyRing
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

    columns = list(spec.columns) or approved_columns(registry, spec.study_id, DATASET, now=now) or DEFAULT_COLUMNS
    rules, linkage = _authorize(registry, study_id=spec.study_id, actor=spec.actor, now=now, level=OutputLevel.COHORT,
                                columns=[(DATASET, c) for c in columns], role=Role.EVALUATOR, action="export",
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
    df.insert(0, "study_person_id", pseudonymise(df.pop("person_key").tolist(), _study_key(keys_dir, spec.study_id)))
    if "enrollment_date" in df.columns:
        df = coarsen_dates(df, ["enrollment_date"], to="month")
    # generalise before suppressing: month → quarter → year; age bands → wider → withheld; sex, race withheld
    generalisers = {"enrollment_date": [period("quarter"), period("year")],
                    "age_band_at_enrollment": [AGE_WIDER, ALL], "sex": [ALL], "race_ethnicity": [ALL]}
    stem = f"cohort_{spec.program.lower()}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}_w{spec.window_days}"
    return _release(df, registry=registry, study_id=spec.study_id, actor=spec.actor, now=now, rules=rules,
                    dataset=DATASET, generalisers=generalisers, data_path=outputs_dir / spec.study_id / f"{stem}.csv",
                    action="export", manifest_extra={"linkage": linkage})


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

    rules, linkage = _authorize(registry, study_id=spec.study_id, actor=spec.actor, now=now,
                                level=OutputLevel.LINKED_EXTRACT, columns=[(spec.dataset, c) for c in spec.columns],
                                role=Role.ANALYST, action="study", refused_as="study.run", warehouse_db=warehouse_db,
                                repin=spec.repin, detail={"dataset": spec.dataset})
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
                    manifest_extra={"dates": "shifted per person by up to 30 days (intervals preserved)",
                                    "linkage": linkage})


#: Breakdowns an aggregate summary may use (quasi-identifiers of the cohort, published as groups only).
SUMMARY_BREAKDOWNS = ("age_band_at_enrollment", "sex", "race_ethnicity")


@dataclass(frozen=True)
class SummarySpec:
    """An aggregate outcome summary of a program cohort: what an "aggregate only" approval allows.

    For each group of ``by`` (and a total row), and each outcome in ``outcomes``: persons with at least
    one such event before and after enrollment (counts: minimum cell and complementary suppression),
    and the total number of events (sums: dominance rule, persons as contributors).
    """

    study_id: str
    actor: str
    program: str
    period_start: date
    period_end: date
    window_days: int = 365
    by: tuple[str, ...] = ("age_band_at_enrollment",)
    #: outcome stems, e.g. "police_victim_contacts" (its _pre and _post columns are used)
    outcomes: tuple[str, ...] = ("police_victim_contacts", "violent_injury_visits")
    repin: bool = False


def export_cohort_summary(spec: SummarySpec, *, registry: Registry, warehouse_db: Path, outputs_dir: Path,
                          now: datetime, mart_schema: str = "analytics") -> ExportResult:
    """Release an aggregate, disclosure-controlled pre/post outcome table of a program cohort.

    Counts of persons are suppressed below the minimum cell, with complementary suppression across each
    row and down each column (the total row included); event sums fail the dominance rule (n, k) when
    the n persons with the most events hold at least k of the total, and are then withheld. The file is
    checked again by :func:`governance.disclosure.check_release` before it is written.

    Raises:
        PolicyRefused: not active, not the requester's, or columns outside the approval (refusal audited).
    """
    from governance.disclosure import (
        check_release,
        dominance_shares,
        release_manifest,
        suppress_counts,
        write_manifest,
    )

    bad_by = [b for b in spec.by if b not in SUMMARY_BREAKDOWNS]
    if bad_by or len(set(spec.by)) != len(spec.by):
        raise PolicyRefused(f"{spec.study_id}: refused: summaries break down by {', '.join(SUMMARY_BREAKDOWNS)} "
                            f"(each at most once), not {', '.join(bad_by) or 'a repeated column'}")
    outcome_cols = [f"{o}_{w}" for o in spec.outcomes for w in ("pre", "post")]
    columns = ["program", *spec.by, *outcome_cols]
    rules, linkage = _authorize(registry, study_id=spec.study_id, actor=spec.actor, now=now, level=OutputLevel.AGGREGATE,
                                columns=[(DATASET, c) for c in columns], role=Role.EVALUATOR, action="summary",
                                refused_as="export.summary", warehouse_db=warehouse_db, repin=spec.repin,
                                detail={"program": spec.program, "by": list(spec.by)})
    cols = ", ".join(f'"{c}"' for c in columns if c != "program")
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        df = con.execute(
            f"select person_key, {cols} from {mart_schema}.program_cohorts "
            "where program = ? and enrollment_date between ? and ? and window_days = ?",
            [spec.program, spec.period_start, spec.period_end, spec.window_days]).df()
    by = list(spec.by)
    df[by] = df[by].fillna("Unknown").astype(str)
    groups = df.groupby(by, sort=True) if by else None
    rows = []
    for key, part in (groups if groups is not None else [((), df)]):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key, strict=True)) | {"persons": len(part)}
        for c in outcome_cols:
            row[f"persons_with_{c}"] = int((part[c].fillna(0) > 0).sum())
            row[f"{c}_total"] = int(part[c].fillna(0).sum())
        rows.append(row)
    table = pd.DataFrame(rows)
    total = {**{b: "All" for b in by}, "persons": len(df)}
    for c in outcome_cols:
        total[f"persons_with_{c}"] = int((df[c].fillna(0) > 0).sum())
        total[f"{c}_total"] = int(df[c].fillna(0).sum())
    if by:
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    else:
        table = pd.DataFrame([total])
    count_cols = ["persons", *[f"persons_with_{c}" for c in outcome_cols]]
    # counts: minimum cell + complementary suppression; the "All" row is each column's total
    table, supp = suppress_counts(table, count_cols, rules, total_row={by[0]: "All"} if by else None)
    # sums: dominance per group, persons as contributors; a dominated (or small-group) sum is withheld
    dominance = []
    for c in outcome_cols:
        share_col = f"{c}_total_top{rules.dominance_n}_share"
        frame = df.assign(__value=df[c].fillna(0).clip(lower=0))
        whole = float(dominance_shares(frame, "__value", "person_key", [], rules).iloc[0])
        if by:
            per_group = dominance_shares(frame, "__value", "person_key", by, rules)
            keys = [tuple(r) for r in table[by].itertuples(index=False)]
            table[share_col] = [whole if k[0] == "All" else float(per_group.get(k if len(by) > 1 else k[0], 0.0))
                                for k in keys]
        else:
            table[share_col] = whole
        hide = (table[share_col] >= rules.dominance_k - 1e-9) | table["persons"].isna()
        table[f"{c}_total"] = table[f"{c}_total"].astype("Int64").mask(hide)
        dominance.append((f"{c}_total", share_col))
    check = check_release(table, kind="aggregate", rules=rules, count_cols=count_cols,
                          total_row={by[0]: "All"} if by else None, dominance=dominance)
    # the shares were needed for the check only: a reader learns nothing from them, but they are not published
    table = table.drop(columns=[s for _, s in dominance])
    _gate_release(registry, check, study_id=spec.study_id, actor=spec.actor, action="summary", now=now)
    stem = f"summary_{spec.program.lower()}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}_w{spec.window_days}"
    path = outputs_dir / spec.study_id / f"{stem}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
    dominated = int(sum(table[v].isna().sum() for v, _ in dominance))
    manifest = release_manifest([path], study_id=spec.study_id, request_id=spec.study_id, checks={path.name: check},
                                rules=rules, now=now)
    manifest |= {"suppression": supp.to_dict(), "dominance_withheld_sums": dominated, "linkage": linkage}
    manifest_path = path.with_name(path.stem + ".manifest.json")
    manifest_path.unlink(missing_ok=True)
    write_manifest(manifest_path, manifest)
    with registry.transaction() as s:
        audit.append(s, actor=spec.actor, action="summary.released", subject=spec.study_id, at=now,
                     detail={"file": path.name, "rows": int(len(table)), "cells_suppressed": supp.suppressed,
                             "sums_withheld": dominated, "manifest": manifest_path.name})
    return ExportResult(spec.study_id, [str(path)], str(manifest_path), int(len(table)), 0,
                        {"cells_suppressed": supp.suppressed, "sums_withheld": dominated})
