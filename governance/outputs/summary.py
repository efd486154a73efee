"""An aggregate pre/post outcome summary of a program cohort: what an "aggregate only" approval allows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from governance.defaults import OUTCOME_WINDOW_DAYS
from governance.outputs.cohort import DATASET
from governance.outputs.gate import ExportResult, authorize_output, gate_release
from governance.registry import audit
from governance.registry.db import Registry
from governance.registry.models import OutputLevel
from governance.registry.policy import PolicyRefused
from workspace.files import atomic_path

__all__ = ["SUMMARY_BREAKDOWNS", "SummarySpec", "export_cohort_summary"]


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
    window_days: int = OUTCOME_WINDOW_DAYS
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
    rules, linkage = authorize_output(registry, study_id=spec.study_id, actor=spec.actor, now=now, level=OutputLevel.AGGREGATE,
                                columns=[(DATASET, c) for c in columns], action="summary",
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
    gate_release(registry, check, study_id=spec.study_id, actor=spec.actor, action="summary", now=now)
    stem = f"summary_{spec.program.lower()}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}_w{spec.window_days}"
    path = outputs_dir / spec.study_id / f"{stem}.csv"
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
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
