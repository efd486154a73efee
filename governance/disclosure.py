"""Statistical disclosure control for every file that leaves the warehouse (DESIGN.md, "Governance defaults").

A study output is released only after it passes the checks in this module. The policy itself is the
small :class:`DisclosureRules` value below; everything else applies it. The defaults are the
collaborative's: a minimum cell of 11 (so counts 1..10 are never published; 0 is), the dominance
rule n=2, k=0.90 for magnitude tables, k-anonymity with k=11 on the quasi-identifiers of record-level
files, and a list of columns that never leave the warehouse. When a file draws on several partners,
:func:`combine` takes the most restrictive value of each rule: the strictest partner wins.

The functions are pure: pandas in, pandas out, inputs never mutated. Each returns a report of what it
did made of counts, column names and rule values only, never a cell value or a record, so reports can
go into the audit log and Dagster metadata without becoming a disclosure themselves.

Everything fails closed. Input that cannot be checked safely (a missing count, a negative count, a
"total" that is not the sum of its parts, an unmapped generalisation) raises :class:`DisclosureError`
with a message that says what to fix, rather than being guessed at.

How the pieces fit a release::

    rules = combine(partner_rules)                      # strictest partner wins
    table, report = suppress_counts(counts, ["n"], rules, by=["year"])
    check = check_release(table, kind="aggregate", rules=rules, count_cols=["n"], by=["year"])
    manifest = release_manifest([path], study_id=..., request_id=..., checks={path.name: check},
                                rules=rules, now=now)
    write_manifest(out_dir / "manifest.json", manifest)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_FORBIDDEN_COLUMNS",
    "DEFAULT_FORBIDDEN_PREFIXES",
    "DisclosureError",
    "DisclosureRules",
    "DominanceReport",
    "KAnonReport",
    "ReleaseCheck",
    "SuppressionReport",
    "band",
    "check_dominance",
    "check_release",
    "combine",
    "dominance_shares",
    "enforce_k_anonymity",
    "period",
    "protect_cells",
    "release_manifest",
    "suppress_counts",
    "write_manifest",
]

# ------------------------------------------------------------------------------------------------
# Policy
# ------------------------------------------------------------------------------------------------

#: Columns that identify a person directly or link back to partner records. Compared after lower-casing
#: and turning spaces and hyphens into underscores, so "Date of Birth" and "date-of-birth" both match.
DEFAULT_FORBIDDEN_COLUMNS: frozenset[str] = frozenset({
    # warehouse and partner record keys: they join a released row back to the linked data
    "person_key", "person_record_id", "source_record_id",
    # identifiers the partner kit encodes (partner_kit.extract.IDENTIFIER_ROLES) and their usual spellings
    "name", "first_name", "middle_name", "last_name", "suffix", "formatted_name", "full_name",
    "given_name", "family_name", "surname", "maiden_name", "alias",
    "dob", "date_of_birth", "birth_date", "birthdate",
    "ssn", "ssn_last4", "social_security_number",
    "address", "street_address", "address_line1", "address_line2",
    "phone", "phone_number", "email", "email_address",
})

#: Column-name prefixes that never leave the warehouse: ``enc_`` marks linkage-zone encodings.
DEFAULT_FORBIDDEN_PREFIXES: frozenset[str] = frozenset({"enc_"})


class DisclosureError(ValueError):
    """Input cannot be checked safely, or a release is refused. The message says what to fix."""


def _normalise_column_name(name: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class DisclosureRules:
    """The disclosure policy applied to one release. Defaults are the collaborative's (DESIGN.md).

    Attributes:
        min_cell: smallest publishable non-zero count. Counts ``1 .. min_cell - 1`` are suppressed;
            a true zero is publishable (it discloses no one).
        dominance_n, dominance_k: a magnitude cell fails when its ``dominance_n`` largest contributors
            hold at least ``dominance_k`` of the cell total (a contributor could subtract themselves
            and learn the others' value).
        k_anonymity: every combination of quasi-identifier values in a record-level file must be
            shared by at least this many records.
        forbidden_columns, forbidden_prefixes: column names (normalised, see
            :data:`DEFAULT_FORBIDDEN_COLUMNS`) that fail any release outright.

    Example:
        >>> DisclosureRules().min_cell
        11
        >>> combine([DisclosureRules(), DisclosureRules(min_cell=20)]).min_cell
        20
    """

    min_cell: int = 11
    dominance_n: int = 2
    dominance_k: float = 0.90
    k_anonymity: int = 11
    forbidden_columns: frozenset[str] = DEFAULT_FORBIDDEN_COLUMNS
    forbidden_prefixes: frozenset[str] = DEFAULT_FORBIDDEN_PREFIXES

    def __post_init__(self) -> None:
        def whole(name: str, value: object, low: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise DisclosureError(f"DisclosureRules.{name} must be a whole number >= {low}")

        whole("min_cell", self.min_cell, 1)
        whole("dominance_n", self.dominance_n, 1)
        whole("k_anonymity", self.k_anonymity, 1)
        if not (isinstance(self.dominance_k, (int, float)) and 0 < float(self.dominance_k) <= 1):
            raise DisclosureError("DisclosureRules.dominance_k must be a share in (0, 1]")
        # Normalise so that comparisons and combine() are spelling-insensitive.
        object.__setattr__(self, "dominance_k", float(self.dominance_k))
        object.__setattr__(self, "forbidden_columns",
                           frozenset(_normalise_column_name(c) for c in self.forbidden_columns))
        object.__setattr__(self, "forbidden_prefixes",
                           frozenset(_normalise_column_name(p) for p in self.forbidden_prefixes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for manifests and audit events (sets become sorted lists)."""
        return {
            "min_cell": self.min_cell,
            "dominance_n": self.dominance_n,
            "dominance_k": self.dominance_k,
            "k_anonymity": self.k_anonymity,
            "forbidden_columns": sorted(self.forbidden_columns),
            "forbidden_prefixes": sorted(self.forbidden_prefixes),
        }

    def forbids(self, column: object) -> bool:
        """True when ``column`` may never appear in a released file."""
        name = _normalise_column_name(column)
        return name in self.forbidden_columns or any(name.startswith(p) for p in self.forbidden_prefixes)


def combine(rules: Iterable[DisclosureRules]) -> DisclosureRules:
    """The most restrictive combination of several partners' rules: the strictest partner wins.

    Each rule is tightened independently: the largest ``min_cell``, ``k_anonymity`` and
    ``dominance_n``, the smallest ``dominance_k``, and the union of forbidden columns and prefixes.
    The result can be stricter than any single input (n from one partner, k from another), which is
    the safe direction.

    Raises:
        DisclosureError: when no rules are given. An empty list almost always means the partners of
            a request were not resolved; pass ``DisclosureRules()`` explicitly for the defaults.
    """
    items = list(rules)
    if not items:
        raise DisclosureError("combine() got no rules: pass each partner's DisclosureRules "
                              "(or DisclosureRules() for the collaborative defaults)")
    return DisclosureRules(
        min_cell=max(r.min_cell for r in items),
        dominance_n=max(r.dominance_n for r in items),
        dominance_k=min(r.dominance_k for r in items),
        k_anonymity=max(r.k_anonymity for r in items),
        forbidden_columns=frozenset().union(*(r.forbidden_columns for r in items)),
        forbidden_prefixes=frozenset().union(*(r.forbidden_prefixes for r in items)),
    )


# ------------------------------------------------------------------------------------------------
# Count tables: layout shared by suppress_counts and check_release
# ------------------------------------------------------------------------------------------------


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
    """Suppressed cells whose exact value follows from the lines (linear algebra, not just counting).

    "At least two hidden cells per line" is necessary but not sufficient: two blocks of hidden cells
    joined by a single hidden cell let a reader add and subtract line totals until that cell stands
    alone. A hidden cell is exactly recoverable when every solution of the line equations agrees on
    it, i.e. when it is zero in every vector of the null space of the equations restricted to the
    hidden cells. (Bounds from non-negativity can still narrow a hidden cell to an interval; that
    needs linear programming and is not attempted here.)
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


def _protect(layout: _Layout, values: np.ndarray, suppressed: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Line rule, then extra suppressions until no hidden cell is exactly recoverable.

    Greedy: try the cheapest single extra cell (in the exposed cells' own lines first) that reduces
    the number of exposed cells. If no single cell helps, hide every published cell of those lines,
    and as a last resort the whole table. If even that leaves a cell exposed, suppression cannot
    protect it: the published totals alone determine it (typically a ``by`` group of one row whose
    value is the overall total minus the other groups' totals), so we refuse.
    """
    suppressed, rounds = _complete_lines(layout, values, suppressed)
    exposed = _recoverable(layout, suppressed)
    audit_rounds = 0
    while exposed.size:
        audit_rounds += 1
        near = np.zeros(suppressed.size, dtype=bool)
        for ids, _, _ in layout.lines:
            if np.isin(ids, exposed).any():
                near[ids] = True
        published = np.flatnonzero(~suppressed)
        order = np.lexsort((published, layout.is_total[published], values[published],
                            values[published] == 0, ~near[published]))
        trials = [published[[k]] for k in order] + [np.flatnonzero(near & ~suppressed), published]
        for extra_cells in trials:
            if extra_cells.size == 0:
                continue
            trial = suppressed.copy()
            trial[extra_cells] = True
            trial, extra = _complete_lines(layout, values, trial)
            still = _recoverable(layout, trial)
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
    suppressed, rounds, audit_rounds = _protect(layout, values, primary)

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
        given = suppressed.reindex(cells["cell_id"].to_numpy()).fillna(False).to_numpy(dtype=bool)
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
        protected, _, _ = _protect(layout, values[ids], lined)
        after_lines[ids] = lined
        final[ids] = protected
    reason = np.where(primary, "primary", np.where(given | (after_lines & ~start), "complementary",
                                                   np.where(final & ~after_lines, "audit", None)))
    return pd.DataFrame({"cell_id": cells["cell_id"].to_numpy(), "suppressed": final,
                         "reason": np.where(final, reason, None)})


# ------------------------------------------------------------------------------------------------
# Dominance (magnitude tables)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DominanceReport:
    """Groups of a magnitude table that fail the (n, k) dominance rule.

    ``failing_groups`` holds the group labels (aggregate labels such as ``("2025", "A")``, which are
    published anyway), never a contributor or a value.
    """

    n: int
    k: float
    groups_checked: int
    failing_groups: list[tuple[Any, ...]]

    @property
    def passed(self) -> bool:
        return not self.failing_groups

    @property
    def failing(self) -> int:
        return len(self.failing_groups)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "k": self.k, "groups_checked": self.groups_checked,
                "failing": self.failing, "failing_groups": [list(g) for g in self.failing_groups]}


def check_dominance(df: pd.DataFrame, value_col: str, contributor_col: str, group_cols: Sequence[str],
                    rules: DisclosureRules) -> DominanceReport:
    """Find cells of a magnitude table (sums, e.g. cost or days) dominated by a few contributors.

    Why: if two hospitals supply 95 % of a cell's total, either one can subtract its own figure and
    learn the other's. A group fails when its ``rules.dominance_n`` largest contributors (after
    summing each contributor's rows) hold at least ``rules.dominance_k`` of the group total. A group
    with fewer than n contributors therefore fails whenever its total is positive; a zero total
    discloses nothing and passes.

    Args:
        df: microdata, one row per contribution; never modified.
        value_col: the non-negative magnitude being summed.
        contributor_col: who contributed (a partner, a facility, a person).
        group_cols: the published cell's labels; empty means the whole table is one cell.

    Returns:
        A :class:`DominanceReport` listing failing group labels as tuples.

    Raises:
        DisclosureError: missing or negative values, or missing contributors.
    """
    share = dominance_shares(df, value_col, contributor_col, group_cols, rules)
    # a share of exactly k (e.g. 90/100) fails, as the rule says; a zero total (share 0) discloses nothing
    fails = share >= rules.dominance_k - 1e-9
    failing = [k if isinstance(k, tuple) else (k,) for k in share.index[fails]] if group_cols else (
        [()] if bool(fails.any()) else [])
    return DominanceReport(n=rules.dominance_n, k=rules.dominance_k, groups_checked=int(share.size),
                           failing_groups=failing)


def dominance_shares(df: pd.DataFrame, value_col: str, contributor_col: str, group_cols: Sequence[str],
                     rules: DisclosureRules) -> pd.Series:
    """Per published cell (group), the share of its total held by its ``rules.dominance_n`` largest
    contributors (after summing each contributor's rows); 0 where the total is 0.

    Indexed by the group labels (a single ``__all`` group when ``group_cols`` is empty). The basis of
    :func:`check_dominance`, and of the share columns that :func:`check_release` checks on a magnitude table.

    Raises:
        DisclosureError: missing or negative values, or missing contributors.
    """
    group_cols = list(group_cols)
    missing = [c for c in [value_col, contributor_col, *group_cols] if c not in df.columns]
    if missing:
        raise DisclosureError(f"columns not in the frame: {', '.join(map(repr, missing))}")
    if contributor_col in group_cols or value_col in group_cols or value_col == contributor_col:
        raise DisclosureError("value, contributor and group columns must be different columns")
    values = pd.to_numeric(df[value_col], errors="coerce")
    if values.isna().any() or (values < 0).any():
        raise DisclosureError(f"{value_col!r} has missing, non-numeric or negative values: the dominance "
                              "rule needs non-negative magnitudes")
    if df[contributor_col].isna().any():
        raise DisclosureError(f"{contributor_col!r} has missing contributors: name every contributor")
    frame = df[group_cols + [contributor_col]].copy()
    frame["__value"] = values.astype(float)
    keys = group_cols or ["__all"]
    if not group_cols:
        frame["__all"] = 0
    per_contributor = frame.groupby(keys + [contributor_col], dropna=False, sort=False)["__value"].sum()
    per_contributor = per_contributor.sort_values(ascending=False, kind="stable")
    grouped = per_contributor.groupby(level=list(range(len(keys))), dropna=False, sort=False)
    total = grouped.sum()
    top = grouped.head(rules.dominance_n).groupby(level=list(range(len(keys))), dropna=False, sort=False).sum()
    top = top.reindex(total.index)
    return (top / total.where(total > 0)).fillna(0.0)


# ------------------------------------------------------------------------------------------------
# k-anonymity (record-level files)
# ------------------------------------------------------------------------------------------------

Generaliser = Callable[[pd.Series], pd.Series] | Mapping[Any, Any]


def band(width: int, *, top: int | None = None) -> Callable[[pd.Series], pd.Series]:
    """A generaliser that turns numbers (e.g. age) into bands of ``width``: 23 -> ``"20-24"``.

    ``top`` top-codes: values at or above it become ``"top+"`` (e.g. ``"85+"``). Missing stays missing.

    Example:
        >>> band(10)(pd.Series([7, 23, None])).tolist()
        ['0-9', '20-29', nan]
    """
    if width < 1:
        raise DisclosureError("band width must be >= 1")

    def generalise(series: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(series, errors="coerce")
        if (numbers.isna() & series.notna()).any():
            raise DisclosureError("band(): values that are not numbers")
        low = (np.floor(numbers / width) * width).astype("Int64")
        labels = low.astype(str) + "-" + (low + width - 1).astype(str)
        out = labels.astype(object).where(numbers.notna(), np.nan)
        if top is not None:
            out[numbers >= top] = f"{top}+"
        return out

    generalise.__name__ = f"band_{width}" + (f"_top_{top}" if top is not None else "")
    return generalise


def period(to: Literal["month", "quarter", "year"]) -> Callable[[pd.Series], pd.Series]:
    """A generaliser that coarsens dates: ``"2025-03"``, ``"2025Q1"`` or ``"2025"``.

    Example:
        >>> period("quarter")(pd.Series(pd.to_datetime(["2025-02-14"]))).tolist()
        ['2025Q1']
    """
    freq = {"month": "M", "quarter": "Q", "year": "Y"}.get(to)
    if freq is None:
        raise DisclosureError("period() takes 'month', 'quarter' or 'year'")

    def generalise(series: pd.Series) -> pd.Series:
        dates = pd.to_datetime(series, errors="coerce")
        if (dates.isna() & series.notna()).any():
            raise DisclosureError("period(): values that are not dates")
        labels = [np.nan if pd.isna(d) else str(d.to_period(freq)) for d in dates]
        return pd.Series(labels, index=series.index, dtype=object)

    generalise.__name__ = f"period_{to}"
    return generalise


def _apply_generaliser(series: pd.Series, generaliser: Generaliser, qi: str, level: int) -> pd.Series:
    if isinstance(generaliser, Mapping):
        out = series.map(generaliser)
    else:
        out = generaliser(series)
        if not isinstance(out, pd.Series) or len(out) != len(series):
            raise DisclosureError(f"generaliser {level} of {qi!r} must return a Series of the same length")
        out = out.set_axis(series.index)
    lost = int((out.isna() & series.notna()).sum())
    if lost:
        raise DisclosureError(f"generaliser {level} of {qi!r} leaves {lost} values unmapped: every value "
                              "needs a place in the hierarchy")
    return out


def _codes(series: pd.Series) -> np.ndarray:
    """Integer code per distinct value (missing is a value of its own, as it is to a reader)."""
    codes, _ = pd.factorize(series, use_na_sentinel=False)
    return codes.astype(np.int64)


def _classes_from_codes(columns: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(size of each row's class, size of each class) for rows keyed by the code columns."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not columns:
        return np.full(n, n, dtype=np.int64), np.array([n], dtype=np.int64)
    _, inverse, counts = np.unique(np.column_stack(columns), axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.ravel()], counts


def _entity_classes_from_codes(columns: Sequence[np.ndarray], entity: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_classes_from_codes`, but a class's size is its number of distinct entities (persons).

    A record-level file with several rows per person (events) is k-anonymous only when every class
    holds k different people: eleven events of one person are one person.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if columns:
        _, cls = np.unique(np.column_stack(columns), axis=0, return_inverse=True)
        cls = cls.ravel()
    else:
        cls = np.zeros(n, dtype=np.int64)
    pairs = np.unique(np.column_stack([cls, entity]), axis=0)
    per_class = np.bincount(pairs[:, 0], minlength=int(cls.max()) + 1).astype(np.int64)
    return per_class[cls], per_class


def _classes(frame: pd.DataFrame, cols: Sequence[str], entity: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Equivalence classes of ``frame`` on ``cols`` (rows sharing every value): see _classes_from_codes.
    With ``entity``, sizes count distinct values of that column (persons) instead of rows."""
    if entity is not None:
        return _entity_classes_from_codes([_codes(frame[c]) for c in cols], _codes(frame[entity]), len(frame))
    return _classes_from_codes([_codes(frame[c]) for c in cols], len(frame))


@dataclass(frozen=True)
class KAnonReport:
    """What :func:`enforce_k_anonymity` did, as counts and level names only.

    Attributes:
        k: the threshold applied.
        quasi_identifiers: the columns checked.
        levels: per quasi-identifier, the generalisation level used (0 = as supplied).
        level_names: per quasi-identifier, the generaliser used (``"raw"``, ``"band_10"``, ``"mapping"``).
        records_in, records_suppressed, records_out: rows before, dropped, after.
        classes: equivalence classes in the output; smallest_class: size of the smallest (0 if empty).
    """

    k: int
    quasi_identifiers: list[str]
    levels: dict[str, int]
    level_names: dict[str, str]
    records_in: int
    records_suppressed: int
    records_out: int
    classes: int
    smallest_class: int

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "quasi_identifiers": list(self.quasi_identifiers), "levels": dict(self.levels),
                "level_names": dict(self.level_names), "records_in": self.records_in,
                "records_suppressed": self.records_suppressed, "records_out": self.records_out,
                "classes": self.classes, "smallest_class": self.smallest_class}


def enforce_k_anonymity(df: pd.DataFrame, quasi_identifiers: Sequence[str], rules: DisclosureRules,
                        generalisers: Mapping[str, Sequence[Generaliser]] | None = None, *,
                        max_suppressed_fraction: float = 0.01,
                        entity: str | None = None) -> tuple[pd.DataFrame, KAnonReport]:
    """Generalise quasi-identifiers, then drop what is left over, until every class has >= k records.

    Quasi-identifiers are columns that are harmless alone but identifying together (age, sex, tract,
    event date). A record-level file is k-anonymous when every combination of their values is shared
    by at least ``rules.k_anonymity`` records.

    The search is greedy (in the spirit of Datafly): while more than ``max_suppressed_fraction`` of
    the records sit in classes smaller than k, move the one quasi-identifier whose next level leaves
    the fewest records in small classes one level up its hierarchy. When the budget is met or every
    hierarchy is exhausted, records still in small classes are dropped. The output is therefore always
    k-anonymous; the budget only trades detail against dropped rows.

    Args:
        df: record-level data; never modified. The index of kept rows is preserved.
        quasi_identifiers: the columns to protect.
        rules: the combined rules; ``rules.k_anonymity`` is k.
        generalisers: per quasi-identifier, coarser and coarser levels. Each level is applied to the
            original column (not to the previous level): a callable ``Series -> Series`` such as
            :func:`band` or :func:`period`, or a mapping such as ``{tract: neighbourhood}`` then
            ``{tract: county}``. A value a level leaves unmapped raises.
        max_suppressed_fraction: share of records that may be dropped before generalising further.
        entity: a column naming the person each row belongs to (several rows per person, as in an
            event extract): classes must then hold k distinct persons, not k rows.

    Returns:
        The generalised, filtered copy and a :class:`KAnonReport` (``smallest_class`` in persons when
        ``entity`` is given).

    Example:
        >>> df = pd.DataFrame({"age": range(30), "sex": ["F", "M"] * 15})
        >>> out, rep = enforce_k_anonymity(df, ["age", "sex"], DisclosureRules(k_anonymity=5),
        ...                                {"age": [band(10), band(30)]})
        >>> rep.levels, rep.records_suppressed
        ({'age': 1, 'sex': 0}, 0)
    """
    qis = list(quasi_identifiers)
    gens = {q: list(levels) for q, levels in (generalisers or {}).items()}
    missing = [q for q in qis if q not in df.columns]
    if missing:
        raise DisclosureError(f"quasi-identifiers not in the frame: {', '.join(map(repr, missing))}")
    if len(set(qis)) != len(qis):
        raise DisclosureError("quasi-identifiers are listed more than once")
    stray = [q for q in gens if q not in qis]
    if stray:
        raise DisclosureError(f"generalisers given for columns that are not quasi-identifiers: {stray!r}")
    if not 0 <= max_suppressed_fraction <= 1:
        raise DisclosureError("max_suppressed_fraction must be between 0 and 1")
    if entity is not None and (entity not in df.columns or entity in qis):
        raise DisclosureError(f"entity column {entity!r} must be a column of the frame and not a quasi-identifier")
    k = rules.k_anonymity
    entity_codes = _codes(df[entity]) if entity is not None else None

    cache: dict[tuple[str, int], tuple[pd.Series, np.ndarray]] = {}

    def column(q: str, level: int) -> tuple[pd.Series, np.ndarray]:
        if (q, level) not in cache:
            values = df[q] if level == 0 else _apply_generaliser(df[q], gens[q][level - 1], q, level)
            cache[(q, level)] = values, _codes(values)
        return cache[(q, level)]

    def sizes(levels: dict[str, int]) -> np.ndarray:
        codes = [column(q, levels[q])[1] for q in qis]
        if entity_codes is not None:
            return _entity_classes_from_codes(codes, entity_codes, len(df))[0]
        return _classes_from_codes(codes, len(df))[0]

    def in_small_classes(levels: dict[str, int]) -> int:
        return int((sizes(levels) < k).sum())

    levels = {q: 0 for q in qis}
    budget = math.floor(max_suppressed_fraction * len(df))
    small = in_small_classes(levels)
    while small > budget:
        options = [(in_small_classes(levels | {q: levels[q] + 1}), i, q)
                   for i, q in enumerate(qis) if levels[q] < len(gens.get(q, ()))]
        if not options:
            break
        small, _, chosen = min(options)
        levels[chosen] += 1

    keep = sizes(levels) >= k
    out = df.copy()
    for q in qis:
        out[q] = column(q, levels[q])[0]
    out = out[keep]
    _, class_sizes = _classes(out, qis, entity)

    def name(q: str) -> str:
        if levels[q] == 0:
            return "raw"
        g = gens[q][levels[q] - 1]
        return "mapping" if isinstance(g, Mapping) else getattr(g, "__name__", "callable")

    report = KAnonReport(
        k=k, quasi_identifiers=qis, levels=dict(levels), level_names={q: name(q) for q in qis},
        records_in=len(df), records_suppressed=int((~keep).sum()), records_out=len(out),
        classes=int(class_sizes.size), smallest_class=int(class_sizes.min()) if class_sizes.size else 0,
    )
    return out, report


# ------------------------------------------------------------------------------------------------
# The release gate and the manifest
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseCheck:
    """The verdict of :func:`check_release` on one file. ``failures`` name columns and rules, never values."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "passed": self.passed, "failures": list(self.failures)}


def check_release(df: pd.DataFrame, *, kind: Literal["aggregate", "record"], rules: DisclosureRules,
                  quasi_identifiers: Sequence[str] = (), count_cols: Sequence[str] = (),
                  by: Sequence[str] | None = None, total_col: str | None = None,
                  total_row: Mapping[str, object] | None = None, entity: str | None = None,
                  dominance: Sequence[tuple[str, str]] = ()) -> ReleaseCheck:
    """The final gate, run on every file just before release. Returns every failure, not just the first.

    For any file: no column may be forbidden by ``rules`` (``person_key``, ``enc_*``, names, dates of
    birth, SSNs, ...).

    For ``kind="aggregate"`` (``count_cols`` required; ``by``, ``total_col``, ``total_row`` as in
    :func:`suppress_counts`): counts are whole and non-negative; no published count is in
    ``1 .. min_cell - 1``; no row or column holds exactly one suppressed (missing) cell; and no
    suppressed cell can be solved exactly from the lines together.

    For ``kind="record"`` (``quasi_identifiers`` required): each quasi-identifier is present and every
    combination of their values occurs at least ``rules.k_anonymity`` times (in that many distinct
    ``entity`` values, when rows repeat per person).

    ``dominance`` lists (sum column, share column) pairs of an aggregate file: a published sum whose
    ``rules.dominance_n`` largest contributors hold a share of at least ``rules.dominance_k`` of it
    (computed before release by :func:`check_dominance` into the share column) fails.

    Fails closed: missing declarations (no count columns, no quasi-identifiers) are failures.

    Returns:
        ``ReleaseCheck(passed, failures, kind)``.

    Raises:
        DisclosureError: for an unknown ``kind`` (a programming error, not a data problem).
    """
    if kind not in ("aggregate", "record"):
        raise DisclosureError(f"unknown release kind {kind!r}: use 'aggregate' or 'record'")
    failures: list[str] = []
    for col in df.columns:
        if rules.forbids(col):
            failures.append(f"forbidden column {str(col)!r}: identifiers, linkage keys and encodings never "
                            "leave the warehouse (rule: forbidden_columns); drop it or replace person_key "
                            "with a study pseudonym")

    if kind == "aggregate":
        failures += _aggregate_failures(df, count_cols, rules, by, total_col, total_row)
        for value_col, share_col in dominance:
            if share_col not in df.columns:
                failures.append(f"dominance: no share column {share_col!r} for {value_col!r} (fail closed)")
                continue
            shares = pd.to_numeric(df[share_col], errors="coerce")
            published = df[value_col].notna() if value_col in df.columns else shares.notna()
            bad = int(((shares >= rules.dominance_k - 1e-9) & published).sum())
            if bad:
                failures.append(f"column {value_col!r}: {_plural(bad, 'published sum')} where the "
                                f"{rules.dominance_n} largest contributors hold at least {rules.dominance_k:.0%} "
                                f"(rule: dominance n={rules.dominance_n}, k={rules.dominance_k}); suppress it")
    else:
        failures += _record_failures(df, quasi_identifiers, rules, entity)
    return ReleaseCheck(passed=not failures, failures=failures, kind=kind)


def _aggregate_failures(df: pd.DataFrame, count_cols: Sequence[str], rules: DisclosureRules,
                        by: Sequence[str] | None, total_col: str | None,
                        total_row: Mapping[str, object] | None) -> list[str]:
    if not count_cols:
        return [("aggregate file without declared count columns: pass count_cols so small cells can be "
                 "checked (fail closed)")]
    try:
        layout = _layout(df, count_cols, by, total_col, total_row)
        values, hidden = _whole_counts(df, layout.cols, allow_missing=True)
    except DisclosureError as exc:
        return [f"aggregate layout: {exc}"]
    failures = []
    small = (~hidden) & (values >= 1) & (values < rules.min_cell)
    per_col = small.reshape(layout.n_rows, layout.n_cols).sum(axis=0)
    for col, n in zip(layout.cols, per_col):
        if n:
            failures.append(f"column {col!r}: {_plural(int(n), 'published cell')} between 1 and "
                            f"{rules.min_cell - 1} (rule: min_cell={rules.min_cell}); run suppress_counts")
    single: dict[str, int] = {}
    for k in _lines_with_one(layout, hidden):
        kind = layout.lines[k][2]
        single[kind] = single.get(kind, 0) + 1
    for kind, n in sorted(single.items()):
        failures.append(f"complementary suppression: {_plural(n, kind + ' line')} with exactly one "
                        "suppressed cell, which the line total would reveal; run suppress_counts")
    if not single:
        exposed = _recoverable(layout, hidden)
        if exposed.size:
            failures.append(f"complementary suppression: {_plural(int(exposed.size), 'suppressed cell')} "
                            "can be recovered exactly by combining row and column totals; run suppress_counts")
    return failures


def _record_failures(df: pd.DataFrame, quasi_identifiers: Sequence[str], rules: DisclosureRules,
                     entity: str | None = None) -> list[str]:
    qis = list(quasi_identifiers)
    if not qis:
        return [("record-level file without declared quasi-identifiers: pass quasi_identifiers so "
                 "k-anonymity can be checked (fail closed)")]
    missing = [q for q in qis if q not in df.columns]
    if missing:
        return [f"quasi-identifier {q!r} is not a column of the file" for q in missing]
    if len(df) == 0:
        return []
    if entity is not None and entity not in df.columns:
        return [f"entity column {entity!r} is not a column of the file"]
    _, sizes = _classes(df, qis, entity)
    small = sizes[sizes < rules.k_anonymity]
    if small.size:
        classes = _plural(int(small.size), "equivalence class", "equivalence classes")
        unit = "persons" if entity else "records"
        return [(f"k-anonymity on ({', '.join(qis)}): {classes} have fewer than {rules.k_anonymity} {unit} "
                 f"(rule: k_anonymity={rules.k_anonymity}); run enforce_k_anonymity")]
    return []


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MANIFEST_SCHEMA = "vpdc-release-manifest/1"


def release_manifest(files: Sequence[Path], *, study_id: str, request_id: str,
                     checks: Mapping[str, ReleaseCheck], rules: DisclosureRules, now: datetime) -> dict[str, Any]:
    """The record of one release: each file's SHA-256 and size, the rules applied, each check's verdict.

    Recipients verify the checksums; auditors see which rules were in force. Refuses (fails closed)
    to describe a file that has no check, or whose check failed, so a manifest's existence means
    every file in it passed.

    Args:
        files: the released files.
        study_id, request_id: the approved request the release belongs to.
        checks: :class:`ReleaseCheck` per file, keyed by file name (``path.name``).
        rules: the combined rules the checks used.
        now: the release time, timezone-aware (the clock is passed in).

    Raises:
        DisclosureError: naive ``now``, duplicate names, a missing file, or a missing or failed check.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise DisclosureError("release_manifest needs a timezone-aware `now`")
    paths = [Path(f) for f in files]
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise DisclosureError("two released files share a name; manifest entries are keyed by name")
    entries = []
    for path in paths:
        if not path.is_file():
            raise DisclosureError(f"{path.name}: not a file; nothing to release")
        check = checks.get(path.name)
        if check is None:
            raise DisclosureError(f"{path.name}: no disclosure check; run check_release on it first")
        if not check.passed:
            raise DisclosureError(f"{path.name}: failed its disclosure check ({len(check.failures)} "
                                  "failures); fix the file and check it again")
        entries.append({"name": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path),
                        "check": check.to_dict()})
    return {"schema": MANIFEST_SCHEMA, "study_id": study_id, "request_id": request_id,
            "created_at": now.isoformat(), "rules": rules.to_dict(), "files": entries}


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` as JSON atomically, never over an existing manifest.

    The JSON goes to a temporary file in the same directory, is flushed to disk, then hard-linked to
    ``path``: readers see the whole manifest or none, and a second release cannot silently replace
    the record of the first (``FileExistsError``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp_name, path)
    finally:
        os.unlink(tmp_name)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path
