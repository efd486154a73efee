"""An aggregate pre/post outcome summary of a program cohort: what an "aggregate only" approval allows.

For each group of ``by`` (and a total row) and each outcome: persons, persons with at least one such event
before and after enrollment (counts: minimum cell), and the total number of events (sums: dominance rule,
persons as contributors). Then every hidden cell is protected against everything a reader can combine: this
table's totals, the links between its columns (no events without a person who had one), and every earlier
summary of the same study (another breakdown, another period), by linear programming over the cohort's
persons (:mod:`governance.disclosure.linked`). Nothing published says why a cell is hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

import governance.outputs.ledger as ledger
from governance.defaults import OUTCOME_WINDOW_DAYS, SUMMARY_BREAKDOWNS
from governance.outputs.cohort import DATASET
from governance.outputs.gate import ExportResult, authorize_output, check_release_request, gate_release
from governance.registry.db import Registry
from governance.registry.models import OutputLevel

__all__ = ["SUMMARY_BREAKDOWNS", "SummarySpec", "export_cohort_summary"]

ALL = "All"


@dataclass(frozen=True)
class SummarySpec:
    """An aggregate outcome summary of a program cohort: what an "aggregate only" approval allows."""

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


def _cohort(warehouse_db: Path, schema: str, program: str, window_days: int, outcome_cols: list[str]) -> pd.DataFrame:
    cols = ", ".join(f'"{c}"' for c in [*SUMMARY_BREAKDOWNS, *outcome_cols])
    with duckdb.connect(str(warehouse_db), read_only=True) as con:
        df = con.execute(f"select person_key, enrollment_date, {cols} from {schema}.program_cohorts "
                         "where program = ? and window_days = ? order by person_key", [program, window_days]).df()
    df[list(SUMMARY_BREAKDOWNS)] = df[list(SUMMARY_BREAKDOWNS)].fillna("Unknown").astype(str)
    return df


def _members(df: pd.DataFrame, start: date, end: date) -> np.ndarray:
    d = pd.to_datetime(df["enrollment_date"]).dt.date
    return ((d >= start) & (d <= end)).to_numpy()


def export_cohort_summary(spec: SummarySpec, *, registry: Registry, warehouse_db: Path, outputs_dir: Path,
                          now: datetime, mart_schema: str = "analytics") -> ExportResult:
    """Release an aggregate, disclosure-controlled pre/post outcome table of a program cohort (a new version;
    earlier ones stay).

    Raises:
        ReleaseRequestError: an option is invalid (named), or the cohort is empty (refusal audited).
        PolicyRefused: not active, not the requester's, columns outside the approval, or a hidden cell of this
            or an earlier summary could be worked out (refusal audited).
    """
    from governance.disclosure import (
        DisclosureError,
        check_release,
        dominance_shares,
        release_manifest,
        suppress_counts,
    )
    from governance.disclosure.linked import Cell, LinkedRelease, protect_linked

    check_release_request(registry, study_id=spec.study_id, actor=spec.actor, now=now, action="summary",
                          warehouse_db=warehouse_db, mart_schema=mart_schema, program=spec.program,
                          window_days=spec.window_days, period=(spec.period_start, spec.period_end), by=spec.by,
                          outcomes=spec.outcomes)
    outcome_cols = [f"{o}_{w}" for o in spec.outcomes for w in ("pre", "post")]
    columns = ["program", *spec.by, *outcome_cols]
    rules, linkage = authorize_output(registry, study_id=spec.study_id, actor=spec.actor, now=now,
                                      level=OutputLevel.AGGREGATE, columns=[(DATASET, c) for c in columns],
                                      action="summary", refused_as="export.summary",
                                      warehouse_db=warehouse_db, repin=spec.repin,
                                      detail={"program": spec.program, "by": list(spec.by)})
    population = {"program": spec.program, "window_days": spec.window_days,
                  "from": spec.period_start.isoformat(), "to": spec.period_end.isoformat()}
    earlier = [r for r in ledger.earlier(registry, study_id=spec.study_id, kinds=("summary",))
               if r.spec.get("program") == spec.program and r.spec.get("window_days") == spec.window_days]
    all_cols = sorted(set(outcome_cols) | {m.split(":", 1)[1] for r in earlier for c in r.cells
                                            if ":" in (m := c["measure"])})
    micro = _cohort(warehouse_db, mart_schema, spec.program, spec.window_days, all_cols)
    members = _members(micro, spec.period_start, spec.period_end)
    refuse = _refuser(registry, spec, now)
    if not members.any():
        refuse("the cohort is empty for this program and period: there is nothing to summarise")
    for r in earlier:  # differencing two populations: they must be the same, or differ by min_cell or more
        other = _members(micro, date.fromisoformat(r.spec["from"]), date.fromisoformat(r.spec["to"]))
        diff = int((other != members).sum())
        if 0 < diff < rules.min_cell:
            refuse(f"this population differs from summary v{r.version}'s by {diff} persons (fewer than the minimum "
                   f"cell {rules.min_cell}): differencing the two would reveal them")

    part = micro[members]
    by = list(spec.by)
    measures = {"persons": "persons"} | {f"persons_with_{c}": f"with:{c}" for c in outcome_cols} \
        | {f"{c}_total": f"sum:{c}" for c in outcome_cols}
    table = _table(part, by, outcome_cols)
    count_cols = ["persons", *[f"persons_with_{c}" for c in outcome_cols]]
    # counts: minimum cell, the line rule across rows and down columns (the All row is each column's total)
    suppressed, supp = suppress_counts(table, count_cols, rules, total_row={by[0]: ALL} if by else None)
    primary = (table[count_cols] >= 1) & (table[count_cols] < rules.min_cell)
    # sums: dominance per group, persons as contributors; a dominated sum is withheld
    frame = part.assign(__contributor=np.arange(len(part)))
    dominated = pd.DataFrame(False, index=table.index, columns=[f"{c}_total" for c in outcome_cols])
    for c in outcome_cols:
        values = frame.assign(__v=frame[c].fillna(0).clip(lower=0))
        whole = float(dominance_shares(values, "__v", "__contributor", [], rules).iloc[0])
        per_group = dominance_shares(values, "__v", "__contributor", by, rules) if by else None
        for i, row in table.iterrows():
            key = tuple(row[b] for b in by)
            share = whole if not by or key[0] == ALL else float(per_group.get(key if len(by) > 1 else key[0], 0.0))
            dominated.loc[i, f"{c}_total"] = share >= rules.dominance_k - 1e-9
    cells: list[Cell] = []
    for i, row in table.iterrows():
        group = {} if by and row[by[0]] == ALL else {b: str(row[b]) for b in by}
        for col, m in measures.items():
            value = int(row[col])
            hidden = pd.isna(suppressed.loc[i, col]) if col in count_cols else bool(dominated.loc[i, col])
            sensitive = ("count" if col in count_cols and bool(primary.loc[i, col]) else
                         "sum" if col not in count_cols and hidden else None)
            cells.append(Cell(group, m, None if hidden else value, true=value, sensitive=sensitive))
    new = LinkedRelease("this summary", members, cells)
    previous = [LinkedRelease(f"summary v{r.version}",
                              _members(micro, date.fromisoformat(r.spec["from"]), date.fromisoformat(r.spec["to"])),
                              [Cell(dict(c["group"]), c["measure"], c["value"]) for c in r.cells]) for r in earlier]
    try:
        cells, protection = protect_linked(micro, list(SUMMARY_BREAKDOWNS), previous, new, rules)
    except DisclosureError as exc:
        refuse(str(exc))

    # hiding more never narrows an interval: the line rule may add cells after the protection, never undo it
    _complete_count_lines(table, cells, measures, count_cols, {by[0]: ALL} if by else None)
    out = table.copy()
    k = 0
    for i in table.index:
        for col in measures:
            out.loc[i, col] = cells[k].published if cells[k].published is not None else pd.NA
            k += 1
    for col in measures:
        out[col] = out[col].astype("Int64")
    table = out
    check = check_release(table, kind="aggregate", rules=rules, count_cols=count_cols,
                          total_row={by[0]: ALL} if by else None)
    gate_release(registry, check, study_id=spec.study_id, actor=spec.actor, action="summary", now=now)

    stem = f"summary_{spec.program.lower()}_{spec.period_start:%Y%m}-{spec.period_end:%Y%m}_w{spec.window_days}"
    intent = ledger.begin(registry, study_id=spec.study_id, kind="summary", spec=population | {"by": by,
                          "outcomes": list(spec.outcomes)}, stem=stem, outputs_dir=outputs_dir, actor=spec.actor,
                          now=now)
    hidden = int(sum(c.published is None for c in cells))

    def manifest() -> dict[str, Any]:
        m = release_manifest([intent.path], study_id=spec.study_id, request_id=spec.study_id,
                             checks={intent.path.name: check}, rules=rules, now=now)
        return m | {"version": intent.version, "cells": len(cells), "cells_hidden": hidden,
                    "suppression": supp.to_dict(), "dominance_withheld_sums": int(dominated.to_numpy().sum()),
                    "protection": "every hidden cell's feasible interval, from this table and every earlier "
                                  "summary of the study, covers 0 to the minimum cell (counts) or a wide band (sums)",
                    "linkage": linkage}

    ledger.write(intent, table, manifest)
    ledger.complete(registry, intent, study_id=spec.study_id, kind="summary",
                    cells=[{"group": c.group, "measure": c.measure, "value": c.published} for c in cells],
                    columns=list(table.columns), persons=int(members.sum()), actor=spec.actor, now=now,
                    detail={"rows": int(len(table)), "cells_hidden": hidden})
    return ExportResult(spec.study_id, [str(intent.path)], str(intent.manifest), int(len(table)), 0,
                        {"cells_hidden": hidden, **protection, "version": intent.version})


def _complete_count_lines(table: pd.DataFrame, cells: list[Any], measures: dict[str, str], count_cols: list[str],
                          total_row: dict[str, str] | None) -> None:
    """No row or column of counts with exactly one hidden cell (the old invariant), hiding more where needed."""
    from governance.disclosure.tables import _complete_lines, _layout, _whole_counts

    layout = _layout(table, count_cols, None, None, total_row)
    values, _ = _whole_counts(table, layout.cols, allow_missing=False)
    cols = list(measures)
    where = {(i, col): k for k, (i, col) in enumerate((i, c) for i in range(len(table)) for c in cols)}
    mask = np.array([cells[where[(i, c)]].published is None for i in range(len(table)) for c in count_cols])
    completed, _ = _complete_lines(layout, values, mask)
    for flat in np.flatnonzero(completed & ~mask):
        i, j = divmod(int(flat), len(count_cols))
        cells[where[(i, count_cols[j])]].published = None


def _table(part: pd.DataFrame, by: list[str], outcome_cols: list[str]) -> pd.DataFrame:
    """Per group of ``by`` and an All row: persons, persons with each outcome, and each outcome's total."""
    def row(sel: pd.DataFrame, labels: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = dict(labels) | {"persons": len(sel)}
        for c in outcome_cols:
            out[f"persons_with_{c}"] = int((sel[c].fillna(0) > 0).sum())
        for c in outcome_cols:
            out[f"{c}_total"] = int(sel[c].fillna(0).clip(lower=0).sum())
        return out

    rows = [row(sel, dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)))
            for key, sel in part.groupby(by, sort=True)] if by else []
    rows.append(row(part, {b: ALL for b in by}))
    return pd.DataFrame(rows)


def _refuser(registry: Registry, spec: SummarySpec, now: datetime):
    from governance.registry.policy import PolicyRefused
    from governance.registry.workflow import record_refusal

    def refuse(reason: str) -> None:
        record_refusal(registry, actor=spec.actor, action="summary.release", subject=spec.study_id, reason=reason,
                       now=now)
        raise PolicyRefused(f"{spec.study_id}: refused: {reason}")

    return refuse

