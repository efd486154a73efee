"""Count tables: minimum cell, complementary suppression and the recoverability audit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from governance.disclosure.rules import DisclosureError, DisclosureRules, _plural


@dataclass(frozen=True)
class _Layout:
    """A count table seen as cells and the linear relations ("lines") an attacker may know.

    Cells are numbered ``row * n_cols + col`` over ``cols`` (the count columns, then the total column).
    Each line is (cell ids, coefficients, kind) meaning ``sum(coef * cell) = a known number``: a
    row across the count columns, a column within a ``by`` group, and, with groups, a whole column.
    Interior cells have coefficient +1 and a published total cell -1 (interior - total = 0). We assume
    every line's total is known to the reader even when the table does not print it (fail closed:
    it may be published elsewhere, or derivable). A line of one cell is its own total and adds nothing.
    """

    cols: list[str]
    n_rows: int
    is_total: np.ndarray  # flat bool per cell: a total row or total column cell
    lines: list[tuple[np.ndarray, np.ndarray, str]]
    #: inequalities the reader also knows, ``sum(coef * cell) <= 0`` (e.g. persons with an event <= persons)
    links: list[tuple[np.ndarray, np.ndarray]] = ()  # type: ignore[assignment]

    @property
    def n_cols(self) -> int:
        return len(self.cols)


def _layout(table: pd.DataFrame, count_cols: Sequence[str], by: Sequence[str] | None,
            total_col: str | None, total_row: Mapping[str, object] | None) -> _Layout:
    count_cols = list(count_cols)
    if not count_cols:
        raise DisclosureError("no count columns given: name the columns holding counts")
    if len(set(count_cols)) != len(count_cols):
        raise DisclosureError("count columns are listed more than once")
    cols = count_cols + ([total_col] if total_col is not None else [])
    if total_col is not None and total_col in count_cols:
        raise DisclosureError(f"total column {total_col!r} is also listed as a count column")
    by = list(by or [])
    missing = [c for c in cols + by + list(total_row or {}) if c not in table.columns]
    if missing:
        raise DisclosureError(f"columns not in the table: {', '.join(map(repr, missing))}")
    if set(by) & set(cols):
        raise DisclosureError("a `by` column cannot also be a count column")

    n, m = len(table), len(cols)
    total_row_mask = np.zeros(n, dtype=bool)
    if total_row:
        total_row_mask[:] = True
        for col, label in total_row.items():
            total_row_mask &= (table[col] == label).fillna(False).to_numpy(dtype=bool)
    groups = (table.groupby(by, dropna=False, sort=False).ngroup().to_numpy() if by
              else np.zeros(n, dtype=np.int64))
    if total_row and n:
        per_group = np.bincount(groups[total_row_mask], minlength=groups.max() + 1)
        if (per_group > 1).any():
            raise DisclosureError("more than one total row in a group: the total_row labels must pick "
                                  "at most one row per `by` group")

    is_total = np.zeros((n, m), dtype=bool)
    is_total[total_row_mask, :] = True
    if total_col is not None:
        is_total[:, m - 1] = True

    lines: list[tuple[np.ndarray, np.ndarray, str]] = []
    base = np.arange(m)
    if m >= 2:
        row_coef = np.ones(m)
        if total_col is not None:
            row_coef[m - 1] = -1.0
        for i in range(n):
            lines.append((i * m + base, row_coef, "row"))
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if rows.size < 2:
            continue
        coef = np.where(total_row_mask[rows], -1.0, 1.0)
        for j in range(m):
            lines.append((rows * m + j, coef, "column"))
    if by:
        # Whole columns across groups: without them a one-row group would look safe on its own.
        rows = np.flatnonzero(~total_row_mask)
        if rows.size >= 2 and np.unique(groups[rows]).size > 1:
            for j in range(m):
                lines.append((rows * m + j, np.ones(rows.size), "whole column"))
    return _Layout(cols=cols, n_rows=n, is_total=is_total.ravel(), lines=lines)


def _whole_counts(table: pd.DataFrame, cols: Sequence[str], *, allow_missing: bool) -> tuple[np.ndarray, np.ndarray]:
    """Counts as a flat int array plus a flat "missing" mask; refuses anything that is not a count."""
    frame = table[list(cols)]
    missing = frame.isna().to_numpy(dtype=bool)
    if missing.any() and not allow_missing:
        bad = [c for c, flag in zip(cols, missing.any(axis=0)) if flag]
        raise DisclosureError(f"counts are missing in {', '.join(map(repr, bad))}: suppress_counts needs "
                              "every true count (zero is a count); fill them before suppressing")
    values = np.zeros(frame.shape, dtype=np.int64)
    for j, col in enumerate(cols):
        series = frame[col]
        if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(series.dtype):
            raise DisclosureError(f"column {col!r} is not numeric: counts must be whole numbers")
        present = series[~missing[:, j]].to_numpy(dtype=float)
        if (present < 0).any() or (np.floor(present) != present).any():
            raise DisclosureError(f"column {col!r} holds negative or fractional values: counts must be "
                                  "whole numbers >= 0")
        values[~missing[:, j], j] = present.astype(np.int64)
    return values.ravel(), missing.ravel()


def _lines_with_one(layout: _Layout, suppressed: np.ndarray) -> list[int]:
    return [k for k, (ids, _, _) in enumerate(layout.lines) if int(suppressed[ids].sum()) == 1]


def _complete_lines(layout: _Layout, values: np.ndarray, suppressed: np.ndarray) -> tuple[np.ndarray, int]:
    """Complementary suppression by lines: no line may hold exactly one suppressed cell.

    A line with one hidden cell gives it away (line total minus the published cells), so we hide the
    smallest non-zero published cell in that line too (smallest loses least information; a zero is
    hidden only when nothing else is left). Hiding a cell can break its crossing line, so repeat
    until nothing changes; each pass hides at least one more cell, so this ends.
    """
    suppressed = suppressed.copy()
    rounds = 0
    changed = True
    while changed:
        changed = False
        rounds += 1
        for ids, _, _ in layout.lines:
            hidden = suppressed[ids]
            if int(hidden.sum()) != 1:
                continue
            open_ids = ids[~hidden]
            order = np.lexsort((open_ids, layout.is_total[open_ids], values[open_ids], values[open_ids] == 0))
            suppressed[open_ids[order[0]]] = True
            changed = True
    return suppressed, rounds


def _recoverable(layout: _Layout, suppressed: np.ndarray) -> np.ndarray:
    """Suppressed cells whose exact value follows from the lines (linear algebra only: the null space).

    Kept as the fast first test: a cell determined by the lines has an interval of width 0 whatever else
    holds. The full test is :func:`_exposed` (intervals with non-negativity, integrality and links).
    """
    hidden = np.flatnonzero(suppressed)
    if hidden.size == 0:
        return hidden
    position = {cell: k for k, cell in enumerate(hidden)}
    rows = []
    for ids, coef, _ in layout.lines:
        mask = suppressed[ids]
        if mask.any():
            row = np.zeros(hidden.size)
            for cell, c in zip(ids[mask], coef[mask]):
                row[position[int(cell)]] = c
            rows.append(row)
    if not rows:
        return hidden[:0]
    matrix = np.vstack(rows)
    _, singular, vt = np.linalg.svd(matrix)
    tol = max(matrix.shape) * np.finfo(float).eps * (singular.max() if singular.size else 0.0)
    rank = int((singular > tol).sum())
    null = vt[rank:]
    if null.shape[0] == 0:
        return hidden
    return hidden[np.linalg.norm(null, axis=0) < 1e-8]


def _problem(layout: _Layout, values: np.ndarray, suppressed: np.ndarray) -> tuple[Any, np.ndarray]:
    """The reader's view: the hidden cells as unknowns (whole numbers >= 0), each line an equation whose
    published cells are constants, each link an inequality. Returns the problem and cell -> unknown."""
    from governance.disclosure.intervals import IntervalProblem

    hidden = np.flatnonzero(suppressed)
    var = np.full(suppressed.size, -1, dtype=np.int64)
    var[hidden] = np.arange(hidden.size)
    prob = IntervalProblem(n=int(hidden.size))
    for ids, coef, _ in layout.lines:
        mask = suppressed[ids]
        if mask.any():  # a line's total is known (assumed, fail closed): so is the sum of its hidden cells
            prob.add_eq(var[ids[mask]], coef[mask], float((coef[mask] * values[ids[mask]]).sum()))
    for ids, coef in layout.links:
        mask = suppressed[ids]
        if mask.any():
            prob.add_ub(var[ids[mask]], coef[mask], -float((coef[~mask] * values[ids[~mask]]).sum()))
    return prob, var


def cell_intervals(layout: _Layout, values: np.ndarray, suppressed: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The feasible interval a reader gets for each of ``cells`` (hidden ones) from everything published,
    as an array (len(cells), 2) of [lo, hi]."""
    prob, var = _problem(layout, values, suppressed)
    return prob.intervals([([var[c]], [1.0]) for c in cells])


def _line_caps(layout: _Layout, values: np.ndarray) -> np.ndarray:
    """Per cell, the smallest total of a line without a total cell: such a line's total is assumed known (fail
    closed), so no interval can exceed it."""
    cap = np.full(values.size, np.inf)
    for ids, coef, _ in layout.lines:
        if not (coef < 0).any():
            np.minimum.at(cap, ids, float((coef * values[ids]).sum()))
    return cap


def _exposed(layout: _Layout, values: np.ndarray, suppressed: np.ndarray, requirements: dict[int, Any],
             only: np.ndarray | None = None) -> np.ndarray:
    """Hidden cells a reader can work out exactly, and sensitive hidden cells whose feasible interval does not
    cover their protection range (non-negativity, whole numbers and links included).

    ``only``: check just these cells. Hiding more cells never narrows an interval (every earlier solution
    stays one, the newly hidden cell at its true value), so after a repair only the cells exposed before it
    and the newly hidden ones need checking again.
    """
    hidden = np.flatnonzero(suppressed)
    if only is not None:
        hidden = np.intersect1d(hidden, only)
    if hidden.size == 0:
        return hidden
    cap = _line_caps(layout, values)
    prob, var = _problem(layout, values, suppressed)
    cells_of = np.flatnonzero(suppressed)
    checked = set(hidden.tolist())
    reqs = {int(var[c]): r.capped(cap[c]) for c, r in requirements.items() if c in checked}
    failed, fixed = prob.audit(reqs, movable=[int(var[c]) for c in hidden])
    return np.array(sorted({int(cells_of[v]) for v in failed} | {int(cells_of[v]) for v in fixed}), dtype=np.int64)


def _line_mass(layout: _Layout, values: np.ndarray, suppressed: np.ndarray, requirements: dict[int, Any],
               protected: np.ndarray) -> np.ndarray:
    """Cells to hide so that no line is too light to cover its owed cells (a necessary condition, cheap).

    In a line whose hidden cells are all interior (its total published or assumed known), the hidden cells
    sum to a known number, so none of them can be larger than that sum: a hidden small count in a line whose
    hidden cells sum to 3 can never look like 11. For every such line holding a cell that is owed ``high``,
    while the hidden sum is below ``min(high, line total)``, hide the published interior cell that closes
    the gap most cheaply (the smallest value that closes it, else the largest there is). The audit still
    certifies the result; this only spares it the rounds a light line would cost.
    """
    suppressed = suppressed.copy()
    owed = np.zeros(suppressed.size)
    for c, r in requirements.items():
        if protected[c]:
            owed[c] = r.high
    changed = True
    while changed:
        changed = False
        for ids, coef, _ in layout.lines:
            hidden = suppressed[ids]
            if not hidden.any() or (coef[hidden] < 0).any():
                continue
            need = owed[ids[hidden]].max()
            if need <= 0:
                continue
            total = float(-(coef * values[ids])[coef < 0].sum()) if (coef < 0).any() else float(values[ids].sum())
            need = min(need, total)
            gap = need - float(values[ids[hidden]].sum())
            if gap <= _EPS:
                continue
            open_ids = ids[~hidden & (coef > 0) & (values[ids] > 0)]
            if open_ids.size == 0:
                continue
            enough = open_ids[values[open_ids] >= gap]
            pick = (enough[np.lexsort((enough, values[enough]))[0]] if enough.size
                    else open_ids[np.lexsort((open_ids, -values[open_ids]))[0]])
            suppressed[pick] = True
            changed = True
    return suppressed


_EPS = 1e-9


def _repair(layout: _Layout, values: np.ndarray, suppressed: np.ndarray, requirements: dict[int, Any],
            exposed: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Published cells whose hiding would let each exposed cell reach its owed range: the classic repair LP.

    For each exposed cell and each end of its range, find values of every cell that satisfy every line (and
    link), non-negative, with the exposed cell at that end, moving published cells as little as possible
    (each unit of change costs the cell's value: hiding small cells loses least; zeros and totals cost more).
    The published cells the cheapest such solution moves are the ones to hide: with them hidden the reader
    can no longer rule that end out (in the relaxation; the audit then checks with whole numbers).
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, hstack, identity, vstack

    n = suppressed.size
    pub = np.flatnonzero(~suppressed)
    if pub.size == 0 or exposed.size == 0:
        return np.zeros(0, dtype=np.int64)
    rows, cols, vals, rhs = [], [], [], []
    for k, (ids, coef, _) in enumerate(layout.lines):
        rows.append(np.full(ids.size, k)); cols.append(ids); vals.append(coef)
        rhs.append(float((coef * values[ids]).sum()))
    m_lines = len(layout.lines)
    a_lines = coo_matrix((np.concatenate(vals) if vals else [], (np.concatenate(rows) if rows else [],
                          np.concatenate(cols) if cols else [])), shape=(m_lines, n))
    select = coo_matrix((np.ones(pub.size), (np.arange(pub.size), pub)), shape=(pub.size, n))
    # x (n cells), then up (published cells' increases), then down (their decreases)
    a_eq = vstack([hstack([a_lines, coo_matrix((m_lines, 2 * pub.size))]),
                   hstack([select, -identity(pub.size), identity(pub.size)])]).tocsr()
    b_eq = np.concatenate([np.asarray(rhs, dtype=float), values[pub].astype(float)])
    a_ub = b_ub = None
    if layout.links:
        lr, lc, lv = [], [], []
        for k, (ids, coef) in enumerate(layout.links):
            lr.append(np.full(ids.size, k)); lc.append(ids); lv.append(coef)
        a_ub = hstack([coo_matrix((np.concatenate(lv), (np.concatenate(lr), np.concatenate(lc))),
                                  shape=(len(layout.links), n)), coo_matrix((len(layout.links), 2 * pub.size))]).tocsr()
        b_ub = np.zeros(len(layout.links))
    weight = values[pub].astype(float) * np.where(layout.is_total[pub], 2.0, 1.0)
    weight = np.where(values[pub] == 0, 100.0, weight)
    cost = np.concatenate([np.zeros(n), weight, weight])
    base_bounds = [(0.0, None)] * (n + 2 * pub.size)
    hide: set[int] = set()
    for e in exposed:
        e = int(e)
        if e in requirements:
            r = requirements[e].capped(cap[e])
            targets = [("hi", r.high), ("lo", r.low)]
        else:  # a hidden cell the reader pins exactly: any other value will do
            targets = [("hi", float(values[e]) + 1.0), ("lo", float(values[e]) - 1.0)]
        for side, target in targets:
            if side == "lo" and target < 0:
                continue
            bounds = list(base_bounds)
            bounds[e] = (target, None) if side == "hi" else (0.0, target)
            res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            if res.status != 0:
                continue
            moved = res.x[n:n + pub.size] + res.x[n + pub.size:]
            hide.update(int(c) for c in pub[moved > 1e-6])
            if e not in requirements:
                break
    return np.array(sorted(hide), dtype=np.int64)


def _protect(layout: _Layout, values: np.ndarray, suppressed: np.ndarray,
             requirements: dict[int, Any] | None = None) -> tuple[np.ndarray, int, int]:
    """Line rule, then extra suppressions until every sensitive hidden cell's feasible interval covers its
    protection range (``requirements``: cell -> :class:`~governance.disclosure.intervals.Requirement`; by
    default every hidden cell is owed "not exactly recoverable").

    Before the audit, lines too light to cover their owed cells get more hidden cells (:func:`_line_mass`).
    Each audit round then hides what the repair LP (:func:`_repair`) names for every exposed cell at once;
    if that does not reduce the number of exposed cells, greedy: the cheapest single extra cell in the
    exposed cells' lightest lines, then the cheapest 2, 4, 8, ... of them together, then every published
    cell of those lines, and as a last resort the whole table. If even that leaves a cell exposed,
    suppression cannot protect it: the published totals alone determine it (typically a ``by`` group of
    one row whose value is the overall total minus the other groups' totals), so we refuse.
    """
    suppressed, rounds = _complete_lines(layout, values, suppressed)
    if requirements:
        owed = np.zeros(suppressed.size, dtype=bool)
        owed[list(requirements)] = True
        while True:
            massed = _line_mass(layout, values, suppressed, requirements, owed)
            if not (massed & ~suppressed).any():
                break
            suppressed, extra = _complete_lines(layout, values, massed)
            rounds += extra

    def exposed_of(mask: np.ndarray, only: np.ndarray | None = None) -> np.ndarray:
        if requirements is None:
            return _recoverable(layout, mask)
        return _exposed(layout, values, mask, requirements, only)

    all_lines = [ids for ids, _, _ in layout.lines] + [ids for ids, _ in layout.links]
    cap = _line_caps(layout, values)
    exposed = exposed_of(suppressed)
    audit_rounds = 0
    while exposed.size:
        audit_rounds += 1
        if requirements is not None:  # the repair LP names the cells to hide for every exposed cell at once
            extra_cells = _repair(layout, values, suppressed, requirements, exposed, cap)
            if extra_cells.size:
                trial = suppressed.copy()
                trial[extra_cells] = True
                trial, extra = _complete_lines(layout, values, trial)
                still = exposed_of(trial, np.union1d(exposed, np.flatnonzero(trial & ~suppressed)))
                if still.size < exposed.size:
                    suppressed, exposed, rounds = trial, still, rounds + extra
                    continue
        # each published cell's rank: the lightest line (least hidden mass) it shares with an exposed cell
        lightness = np.full(suppressed.size, np.inf)
        for ids in all_lines:
            if np.isin(ids, exposed).any():
                mass = float(values[ids[suppressed[ids]]].sum())
                np.minimum.at(lightness, ids, mass)
        near = np.isfinite(lightness)
        published = np.flatnonzero(~suppressed & near)
        order = np.lexsort((published, layout.is_total[published], values[published],
                            lightness[published], values[published] == 0))
        # the cheapest single cells in the exposed cells' lightest lines; then the cheapest 2, 4, 8, ... of
        # them together (a cell can need more than one neighbour to move); then the whole table
        ranked = published[order]
        sizes = [2 ** k for k in range(1, max(1, int(np.ceil(np.log2(max(ranked.size, 2))))) + 1)]
        trials = ([ranked[[k]] for k in range(min(40, ranked.size))]
                  + [ranked[:n] for n in sizes if n < ranked.size] + [ranked, np.flatnonzero(~suppressed)])
        for extra_cells in trials:
            if extra_cells.size == 0:
                continue
            trial = suppressed.copy()
            trial[extra_cells] = True
            trial, extra = _complete_lines(layout, values, trial)
            still = exposed_of(trial, np.union1d(exposed, np.flatnonzero(trial & ~suppressed)))
            if still.size < exposed.size:
                suppressed, exposed, rounds = trial, still, rounds + extra
                break
        else:
            raise DisclosureError(
                f"{_plural(int(exposed.size), 'small or suppressed cell')} can be worked out from the totals "
                "whatever else is suppressed (usually a `by` group with a single row, whose count is the "
                "overall total minus the other groups' totals); merge that group into another or publish "
                "the table without per-group totals")
    return suppressed, rounds, audit_rounds


def _count_requirements(values: np.ndarray, primary: np.ndarray, rules: DisclosureRules) -> dict[int, Any]:
    """Each primary cell is owed an interval from 0 to the minimum cell."""
    from governance.disclosure.intervals import count_requirement

    return {int(c): count_requirement(int(values[c]), rules.min_cell) for c in np.flatnonzero(primary)}


@dataclass(frozen=True)
class SuppressionReport:
    """What :func:`suppress_counts` hid, as counts only.

    Attributes:
        min_cell: the threshold applied.
        cells: cells examined (count columns plus any total column, all rows).
        primary: cells hidden because they held 1 .. min_cell - 1.
        complementary: further cells hidden so the primary ones cannot be worked out from totals.
        by_column: hidden cells per column.
        rounds: passes of the line rule; audit_rounds: extra passes the exact-recovery audit needed.
        lines: row and column relations checked.
    """

    min_cell: int
    cells: int
    primary: int
    complementary: int
    by_column: dict[str, int]
    rounds: int
    audit_rounds: int
    lines: int

    @property
    def suppressed(self) -> int:
        return self.primary + self.complementary

    def to_dict(self) -> dict[str, Any]:
        return {"min_cell": self.min_cell, "cells": self.cells, "primary": self.primary,
                "complementary": self.complementary, "suppressed": self.suppressed,
                "by_column": dict(self.by_column), "rounds": self.rounds,
                "audit_rounds": self.audit_rounds, "lines": self.lines}


def suppress_counts(table: pd.DataFrame, count_cols: Sequence[str], rules: DisclosureRules,
                    by: Sequence[str] | None = None, *, total_col: str | None = None,
                    total_row: Mapping[str, object] | None = None) -> tuple[pd.DataFrame, SuppressionReport]:
    """Hide small counts, and enough other counts that the small ones cannot be worked back out.

    The table is read as a grid: each row is a line across ``count_cols`` (and ``total_col``), and
    each count column is a line down the rows, within each ``by`` group when totals are published
    per group (plus the whole column across groups). Every line's total is assumed known, printed or not.

    1. Primary suppression: counts ``1 .. rules.min_cell - 1`` are hidden (0 is published).
    2. Complementary suppression: a line with exactly one hidden cell would reveal it (total minus
       the rest), so the smallest non-zero published cell in that line is hidden too; repeated
       until every line has zero or at least two hidden cells.
    3. Audit: a hidden cell that can still be solved exactly from several lines together is
       protected by hiding more cells (see ``_recoverable``).

    Hidden cells become ``pd.NA`` (the count columns come back as nullable ``Int64``); the input has
    no missing counts, so ``out[count_cols].isna()`` is the suppression mask.

    Args:
        table: one row per table row; never modified.
        count_cols: the columns holding counts.
        rules: the combined rules of every partner in the release.
        by: group columns when totals are published per group (e.g. ``["year"]``).
        total_col: a column holding each row's total of ``count_cols``; checked, then treated as a cell.
        total_row: labels picking the total row of each group, e.g. ``{"area": "All"}``; checked,
            then treated as cells.

    Returns:
        The suppressed copy and a :class:`SuppressionReport` (counts only).

    Raises:
        DisclosureError: missing, negative or fractional counts, or totals that are not the sums
            they claim to be.

    Example:
        >>> t = pd.DataFrame({"area": ["A", "B"], "f": [3, 40], "m": [25, 31]})
        >>> out, rep = suppress_counts(t, ["f", "m"], DisclosureRules())
        >>> out["f"].isna().tolist(), out["m"].isna().tolist(), rep.primary, rep.complementary
        ([True, True], [True, True], 1, 3)
    """
    layout = _layout(table, count_cols, by, total_col, total_row)
    values, _ = _whole_counts(table, layout.cols, allow_missing=False)
    grid = values.reshape(layout.n_rows, layout.n_cols)
    if total_col is not None and layout.n_rows:
        wrong = int((grid[:, :-1].sum(axis=1) != grid[:, -1]).sum())
        if wrong:
            raise DisclosureError(f"total column {total_col!r} is not the sum of the count columns in "
                                  f"{wrong} rows")
    for ids, coef, kind in layout.lines:
        if kind == "column" and (coef < 0).any() and int((coef * values[ids]).sum()) != 0:
            raise DisclosureError(f"the total row ({dict(total_row or {})!r}) is not the sum of the other "
                                  "rows of its group in at least one column")

    primary = (values >= 1) & (values < rules.min_cell)
    suppressed, rounds, audit_rounds = _protect(layout, values, primary, _count_requirements(values, primary, rules))

    out = table.copy()
    mask = suppressed.reshape(layout.n_rows, layout.n_cols)
    for j, col in enumerate(layout.cols):
        column = pd.array(grid[:, j], dtype="Int64")
        column[mask[:, j]] = pd.NA
        out[col] = pd.Series(column, index=table.index)
    report = SuppressionReport(
        min_cell=rules.min_cell, cells=int(values.size), primary=int(primary.sum()),
        complementary=int(suppressed.sum() - primary.sum()),
        by_column={c: int(mask[:, j].sum()) for j, c in enumerate(layout.cols)},
        rounds=rounds, audit_rounds=audit_rounds, lines=len(layout.lines),
    )
    return out, report


def protect_cells(cells: pd.DataFrame, lines: pd.DataFrame, rules: DisclosureRules,
                  suppressed: pd.Series | None = None) -> pd.DataFrame:
    """Suppression for a table published as cells and additive lines (e.g. the indicator mart).

    The same rules as :func:`suppress_counts` (primary cells ``1 .. min_cell - 1``, the line rule, and the
    audit that no hidden cell can be solved exactly from the lines together), for tables whose shape is
    not a single grid: cells that sit in several lines (a county total shared by the neighbourhood and
    the priority-area tables), lines of any length.

    Args:
        cells: ``cell_id``, ``n`` (whole, non-negative counts) and ``component``: cells of different
            components share no line (e.g. one month x indicator), so each is solved on its own.
        lines: ``line_id``, ``cell_id``, ``coef``: a line says ``sum(coef * n) = 0`` over its cells,
            i.e. +1 for its interior cells and -1 for its total cell.
        rules: ``min_cell`` is used.
        suppressed: optionally, cells already suppressed (by ``cell_id``, e.g. by the SQL line rule);
            protection only ever adds to them.

    Returns:
        ``cell_id``, ``suppressed`` (bool) and ``reason`` (``primary``, ``complementary``, ``audit`` or None):
        ``complementary`` cells were added by the line rule, ``audit`` cells by the recoverability audit.

    Raises:
        DisclosureError: a missing or negative count, a line naming an unknown cell or crossing components,
            or a cell that no suppression can protect.
    """
    for col in ("cell_id", "n", "component"):
        if col not in cells.columns:
            raise DisclosureError(f"cells need a {col!r} column")
    values_all = pd.to_numeric(cells["n"], errors="coerce")
    if values_all.isna().any() or (values_all < 0).any() or (values_all % 1 != 0).any():
        raise DisclosureError("cells: counts must be whole non-negative numbers")
    index = pd.Series(np.arange(len(cells)), index=cells["cell_id"].to_numpy())
    if index.index.has_duplicates:
        raise DisclosureError("cells: cell_id repeats")
    pos = index.reindex(lines["cell_id"].to_numpy())
    if pos.isna().any():
        raise DisclosureError(f"lines name {int(pos.isna().sum())} cells that are not in the cells table")
    comp, _ = pd.factorize(cells["component"], use_na_sentinel=False)
    entry_cell = pos.to_numpy(dtype=np.int64)
    entry_line, _ = pd.factorize(lines["line_id"], use_na_sentinel=False)
    entry_coef = lines["coef"].to_numpy(dtype=float)
    entry_comp = comp[entry_cell]
    values = values_all.to_numpy(dtype=np.int64)
    primary = (values >= 1) & (values < rules.min_cell)
    given = np.zeros(len(cells), dtype=bool)
    if suppressed is not None:
        given = suppressed.astype(bool).reindex(cells["cell_id"].to_numpy(), fill_value=False).to_numpy(dtype=bool)
    start = primary | given
    after_lines = start.copy()
    final = start.copy()
    local_of = np.empty(len(cells), dtype=np.int64)
    # entries ordered by component, then line: one slice of lines per component, one slice per line
    order = np.lexsort((entry_line, entry_comp))
    e_cell, e_line, e_coef, e_comp = entry_cell[order], entry_line[order], entry_coef[order], entry_comp[order]
    line_starts = np.flatnonzero(np.r_[True, (e_line[1:] != e_line[:-1]) | (e_comp[1:] != e_comp[:-1])])
    if e_cell.size and line_starts.size != np.unique(entry_line).size:  # a line seen in two components
        raise DisclosureError("lines cross components: components must not share a line")
    line_ends = np.r_[line_starts[1:], e_cell.size]
    line_comp = e_comp[line_starts] if e_cell.size else np.zeros(0, dtype=np.int64)
    cells_by_comp = np.argsort(comp, kind="stable")
    comp_bounds = np.searchsorted(comp[cells_by_comp], np.arange(comp.max() + 2 if comp.size else 1))
    line_bounds = np.searchsorted(line_comp, np.arange(comp.max() + 2 if comp.size else 1))
    for c in range(len(comp_bounds) - 1):
        ids = cells_by_comp[comp_bounds[c]:comp_bounds[c + 1]]
        if ids.size == 0:
            continue
        local_of[ids] = np.arange(ids.size)
        comp_lines = []
        for a, b in zip(line_starts[line_bounds[c]:line_bounds[c + 1]], line_ends[line_bounds[c]:line_bounds[c + 1]],
                        strict=True):
            if b - a >= 2:
                comp_lines.append((local_of[e_cell[a:b]], e_coef[a:b], "line"))
        is_total = np.zeros(ids.size, dtype=bool)
        for cell_ids, coef, _ in comp_lines:
            is_total[cell_ids[coef < 0]] = True
        layout = _Layout(cols=["n"], n_rows=ids.size, is_total=is_total, lines=comp_lines)
        lined, _ = _complete_lines(layout, values[ids], start[ids])
        protected, _, _ = _protect(layout, values[ids], lined,
                                   _count_requirements(values[ids], primary[ids], rules))
        after_lines[ids] = lined
        final[ids] = protected
    reason = np.where(primary, "primary", np.where(given | (after_lines & ~start), "complementary",
                                                   np.where(final & ~after_lines, "audit", None)))
    return pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "suppressed": final,
                         "reason": np.where(final, reason, None)})


