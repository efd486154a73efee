"""Linked aggregate tables over one microdata population: protect a new table given every earlier one.

Every table a study releases about a population (by age band, by sex, by race/ethnicity, for this period or
another) is a set of sums over the same persons. Here they are written over *atoms*: the persons grouped by
every breakdown any of the tables uses, and by which tables' populations they belong to. A published cell is
a known sum of atoms; a hidden one is a target whose feasible interval (:mod:`governance.disclosure.intervals`)
must cover its protection range, whatever the reader combines: subtraction from totals, differencing two
releases, two breakdowns of the same cohort, the links between measures (persons with an event <= persons,
<= events; no events without a person who had one).

A measure is one of:
  * ``persons``: how many persons (a count);
  * ``with:<col>``: persons with ``col > 0`` (a count);
  * ``sum:<col>``: the total of ``col`` (a magnitude, protected like a withheld sum when the dominance rule
    withholds it).

:func:`protect_linked` hides more cells of the new table until every hidden cell of every table (earlier ones
included) is protected, or refuses when no hiding in the new table can protect an earlier one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from governance.disclosure.intervals import IntervalProblem, Requirement, count_requirement, sum_requirement
from governance.disclosure.rules import DisclosureError, DisclosureRules

__all__ = ["Cell", "LinkedRelease", "cells_of_table", "protect_linked"]


@dataclass
class Cell:
    """One cell of a release: the group it describes (breakdown -> value; {} for everyone), its measure,
    the value published (None when hidden) and, for the new release, its true value."""

    group: dict[str, str]
    measure: str
    published: int | None
    true: int = 0
    sensitive: str | None = None  # "count" | "sum" when it is owed protection


@dataclass
class LinkedRelease:
    """A release of the population selected by ``members`` (a boolean mask over the microdata rows)."""

    name: str
    members: np.ndarray
    cells: list[Cell] = field(default_factory=list)


def cells_of_table(table: pd.DataFrame, by: Sequence[str], measures: Mapping[str, str], *,
                   all_label: str = "All") -> list[Cell]:
    """The cells of a released table (one row per group, the ``all_label`` row for everyone), measure by column:
    ``measures`` maps a table column to its measure (``persons``, ``with:<col>``, ``sum:<col>``). A missing value
    is a hidden cell."""
    out = []
    for _, row in table.iterrows():
        group = {} if by and all(str(row[b]) == all_label for b in by) else {b: str(row[b]) for b in by}
        for col, measure in measures.items():
            v = row[col]
            out.append(Cell(group, measure, None if pd.isna(v) else int(v)))
    return out


def _measure_values(micro: pd.DataFrame, measure: str) -> np.ndarray:
    if measure == "persons":
        return np.ones(len(micro), dtype=np.int64)
    kind, col = measure.split(":", 1)
    v = micro[col].fillna(0).clip(lower=0).to_numpy(dtype=np.int64)
    return (v > 0).astype(np.int64) if kind == "with" else v


def protect_linked(micro: pd.DataFrame, breakdowns: Sequence[str], releases: Sequence[LinkedRelease],
                   new: LinkedRelease, rules: DisclosureRules) -> tuple[list[Cell], dict[str, Any]]:
    """Hide cells of ``new`` until every hidden cell of every release is protected.

    Args:
        micro: one row per person of every release's population: the breakdown columns and the outcome columns.
        breakdowns: the breakdown columns any release groups by (atoms are their combinations).
        releases: the earlier releases (published values as published).
        new: the release being made; its cells carry their true values, ``published`` None where already hidden
            (primary suppression, dominance); ``sensitive`` says what each hidden cell is owed.
        rules: min_cell (counts) and the sum protection.

    Returns:
        The new release's cells (more of them hidden) and a report (counts only).

    Raises:
        DisclosureError: an earlier release's hidden cell would be exposed whatever the new one hides, or the
            earlier published values no longer match the data (the data changed: differencing would expose it).
    """
    breakdowns = list(breakdowns)
    all_releases = [*releases, new]
    labels = micro[breakdowns].astype(str).agg("\x1f".join, axis=1) if breakdowns else pd.Series([""] * len(micro))
    membership = np.zeros(len(micro), dtype=np.int64)
    for k, r in enumerate(all_releases):
        membership |= (np.asarray(r.members, dtype=bool).astype(np.int64) << k)
    atom_key = labels.astype(str) + "\x1e" + pd.Series(membership).astype(str).to_numpy()
    atom_codes, atom_keys = pd.factorize(atom_key, sort=True)
    n_atoms = len(atom_keys)
    atom_groups = [dict(zip(breakdowns, k.split("\x1e")[0].split("\x1f"), strict=False)) if breakdowns else {}
                   for k in atom_keys]
    atom_member = np.array([int(k.split("\x1e")[1]) for k in atom_keys], dtype=np.int64)

    measures = sorted({c.measure for r in all_releases for c in r.cells} | {"persons"})
    mindex = {m: j for j, m in enumerate(measures)}
    truth = np.zeros((n_atoms, len(measures)), dtype=np.int64)
    for m, j in mindex.items():
        np.add.at(truth[:, j], atom_codes, _measure_values(micro, m))

    def var(a: int, m: str) -> int:
        return a * len(measures) + mindex[m]

    def atoms_of(release_index: int, group: Mapping[str, str]) -> np.ndarray:
        inside = (atom_member >> release_index) & 1 == 1
        for b, v in group.items():
            inside &= np.array([g.get(b) == v for g in atom_groups])
        return np.flatnonzero(inside)

    prob = IntervalProblem(n=n_atoms * len(measures))
    # the links a reader knows within every atom
    for a in range(n_atoms):
        for m in measures:
            if m.startswith("with:"):
                col = m[5:]
                prob.add_ub([var(a, m), var(a, "persons")], [1.0, -1.0], 0.0)  # with <= persons
                if f"sum:{col}" in mindex:
                    prob.add_ub([var(a, m), var(a, f"sum:{col}")], [1.0, -1.0], 0.0)  # with <= events
                    ceiling = int(micro[col].fillna(0).clip(lower=0).max() or 1)  # fail closed: the reader knows it
                    prob.add_ub([var(a, f"sum:{col}"), var(a, m)], [1.0, -float(ceiling)], 0.0)  # none without one
    cell_vars: dict[tuple[int, int], list[int]] = {}
    for k, r in enumerate(all_releases):
        for i, c in enumerate(r.cells):
            ids = [var(a, c.measure) for a in atoms_of(k, c.group)]
            cell_vars[(k, i)] = ids
            if c.published is not None:
                prob.add_eq(ids, [1.0] * len(ids), float(c.published))
    n_new = len(all_releases) - 1
    for i, c in enumerate(new.cells):
        c.true = int(sum(truth.flat[v] for v in cell_vars[(n_new, i)]))
        if c.published is not None and c.published != c.true:
            raise DisclosureError("a new cell's published value is not its true value: the table is inconsistent")
    # an earlier release's published values must still hold: otherwise the data changed since, and the two
    # releases together would expose the change
    for k, r in enumerate(releases):
        for i, c in enumerate(r.cells):
            if c.published is not None and c.published != int(sum(truth.flat[v] for v in cell_vars[(k, i)])):
                raise DisclosureError(
                    f"the data behind release {r.name} changed since it was published (a cell no longer matches): "
                    "releasing this table beside it would let a reader difference the change; pin the study to the "
                    "data of that release or ask the stewards for a new study")
            if c.published is None:
                c.true = int(sum(truth.flat[v] for v in cell_vars[(k, i)]))

    def requirement(c: Cell) -> Requirement | None:
        if c.sensitive == "count" or (c.sensitive is None and c.published is None and 1 <= c.true < rules.min_cell
                                      and not c.measure.startswith("sum:")):
            return count_requirement(c.true, rules.min_cell)
        if c.sensitive == "sum":
            return sum_requirement(c.true, rules.min_cell)
        return None

    def exposed() -> list[tuple[int, int]]:
        """Hidden cells (of any release) whose feasible interval misses their protection range."""
        sub = IntervalProblem(n=prob.n, eq=[row for row in prob.eq if len(row[0])], ub=list(prob.ub))
        reqs: dict[int, Requirement] = {}
        aux = []
        # each hidden cell is a sum of unknowns: give it an unknown of its own, tied by an equation
        for k, r in enumerate(all_releases):
            for i, c in enumerate(r.cells):
                if c.published is None:
                    req = requirement(c)
                    if req is not None:
                        aux.append((k, i, req))
        sub.n = prob.n + len(aux)
        for j, (k, i, req) in enumerate(aux):
            ids = cell_vars[(k, i)]
            sub.add_eq([*ids, prob.n + j], [1.0] * len(ids) + [-1.0], 0.0)
            reqs[prob.n + j] = req
        failed, _ = sub.audit(reqs)
        return [(aux[v - prob.n][0], aux[v - prob.n][1]) for v in failed]

    # the new release's published cells were added last: index their equations, so hiding one drops its fact
    new_fact_rows: dict[int, int] = {}
    offset = len(prob.eq) - sum(1 for c in new.cells if c.published is not None)
    for i, c in enumerate(new.cells):
        if c.published is not None:
            new_fact_rows[i] = offset
            offset += 1
    hidden_extra = 0
    for _ in range(len(new.cells) + 1):
        bad = exposed()
        if not bad:
            break
        bad_new = [i for k, i in bad if k == n_new]
        if not bad_new and bad:
            # only hiding more of the new table can help an earlier one: try its cheapest published cells
            candidates = [i for i, c in enumerate(new.cells) if c.published is not None]
        else:
            candidates = _neighbours(new.cells, bad_new)
        if not candidates:
            release = all_releases[bad[0][0]].name
            raise DisclosureError(f"a hidden cell of {release} would be exposed by this table whatever else it hides; "
                                  "release a coarser table, or none")
        pick = min(candidates, key=lambda i: (new.cells[i].group == {}, new.cells[i].published or 0, i))
        row = new_fact_rows.pop(pick)
        prob.eq[row] = (np.zeros(0, dtype=np.int64), np.zeros(0), 0.0)  # the fact is gone
        new.cells[pick].published = None
        hidden_extra += 1
    else:
        raise DisclosureError("the table cannot be protected: hide it whole")
    return new.cells, {"cells": len(new.cells), "hidden_for_protection": hidden_extra,
                       "earlier_releases_checked": len(releases)}


def _neighbours(cells: list[Cell], bad: list[int]) -> list[int]:
    """Published cells that share a group or a measure with an exposed cell (where hiding helps most)."""
    groups = [cells[i].group for i in bad]
    measures = {cells[i].measure for i in bad}
    near = [i for i, c in enumerate(cells) if c.published is not None and (c.group in groups or c.measure in measures)]
    return near or [i for i, c in enumerate(cells) if c.published is not None]
