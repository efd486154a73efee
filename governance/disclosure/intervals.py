"""What an attacker can learn about a hidden cell: its feasible interval, by linear programming.

Everything published about a population is a set of linear facts: each published cell is a known sum of
unknown non-negative whole numbers (the same population's counts, by whatever grouping), and measures are
linked (a group's persons with an event are no more than its persons and no more than its events; no
events without a person who had one). An attacker who combines them all gets, for each hidden cell, the
smallest and largest value consistent with every fact: its *feasible interval*. A hidden cell is protected
when that interval covers the cell's whole protection range, e.g. any value from 0 to the minimum cell for a
small count (so a reader cannot tell 0 from 10 from 11), or a wide band around a withheld sum.

This module computes those intervals exactly (HiGHS through ``highspy``: the LP bound, then the integer
bound when the LP's answer is fractional) and is the engine behind every suppression decision: cohort
summaries, the indicators mart, and every later release of a study checked against all its earlier ones.

Why not a library: the maintained SDC tools that audit intervals (R's sdcTable, GaussSuppression; tau-argus
in Java) cannot be installed here and have no maintained Python equivalent (ACRO checks primary rules only);
HiGHS is the solver they use. See ADR 0008.

The problem::

    variables   y >= 0 (whole numbers): the unknowns (atoms of the population, or a table's hidden cells)
    equalities  A_eq y = b_eq           (published cells, additive lines)
    links       A_ub y <= b_ub          (persons_with <= persons, persons_with <= events, events <= M persons_with)
    target      t . y                   (a hidden cell as a sum of unknowns)
    interval    [min t.y, max t.y]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

__all__ = ["IntervalProblem", "Requirement", "count_requirement", "sum_requirement"]

_TOL = 1e-6
_FAR = 1e7  # an upper bound no real count reaches, to keep a batch's maximisation bounded


@dataclass(frozen=True)
class Requirement:
    """The protection a hidden cell is owed: its feasible interval must reach ``low`` and ``high``."""

    low: float
    high: float

    def met_by(self, lo: float, hi: float) -> bool:
        return lo <= self.low + _TOL and hi >= self.high - _TOL

    def capped(self, high: float) -> "Requirement":
        """The same requirement where a known total bounds the cell: no interval can reach above it (that
        total, if small, is itself a cell to hide wherever it is published)."""
        return Requirement(self.low, min(self.high, high))


def count_requirement(value: int, min_cell: int) -> Requirement:
    """A small count (1 .. min_cell - 1) must look like any value from 0 to the minimum cell."""
    return Requirement(0.0, float(min_cell))


def sum_requirement(value: float, min_cell: int) -> Requirement:
    """A withheld sum (dominance) must not be pinned closer than max(min_cell, half of it) on either side."""
    q = max(float(min_cell), math.ceil(value / 2))
    return Requirement(max(0.0, value - q), value + q)


_BANNER_SILENCED = False


def _highs() -> Any:
    """A silent HiGHS instance (its first construction in a process prints a banner on the C stdout: the
    CLI's ``--json`` output must stay JSON only, so that one time stdout is pointed at /dev/null)."""
    global _BANNER_SILENCED
    import highspy

    if not _BANNER_SILENCED:
        import sys

        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _BANNER_SILENCED = True
    else:
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


@dataclass
class IntervalProblem:
    """The attacker's view of a release: unknowns, the facts that bind them, and how to bound a cell.

    Attributes:
        n: number of unknowns (each >= 0, integer unless ``integer`` is False).
        eq_rows, eq_cols, eq_vals, eq_rhs: sparse equalities ``A_eq y = b_eq`` (row index per entry).
        ub_rows, ub_cols, ub_vals, ub_rhs: sparse inequalities ``A_ub y <= b_ub``.
        upper: optional upper bound per unknown (``inf`` when unbounded).
    """

    n: int
    eq: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    ub: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    upper: np.ndarray | None = None
    integer: bool = True

    def add_eq(self, ids: Sequence[int], coefs: Sequence[float], rhs: float) -> None:
        self.eq.append((np.asarray(ids, dtype=np.int64), np.asarray(coefs, dtype=float), float(rhs)))

    def add_ub(self, ids: Sequence[int], coefs: Sequence[float], rhs: float) -> None:
        self.ub.append((np.asarray(ids, dtype=np.int64), np.asarray(coefs, dtype=float), float(rhs)))

    def _model(self) -> Any:
        import highspy

        rows = self.eq + self.ub
        m = len(rows)
        if m:
            r = np.concatenate([np.full(len(ids), k) for k, (ids, _, _) in enumerate(rows)])
            c = np.concatenate([ids for ids, _, _ in rows])
            v = np.concatenate([coefs for _, coefs, _ in rows])
            csc = sparse.csc_matrix((v, (r, c)), shape=(m, self.n))
        else:
            csc = sparse.csc_matrix((0, self.n))
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n, m
        lp.col_cost_ = np.zeros(self.n)
        lp.col_lower_ = np.zeros(self.n)
        up = self.upper if self.upper is not None else np.full(self.n, highspy.kHighsInf)
        lp.col_upper_ = np.where(np.isfinite(up), up, highspy.kHighsInf)
        rhs = np.array([b for _, _, b in rows], dtype=float)
        lp.row_lower_ = np.concatenate([rhs[:len(self.eq)], np.full(len(self.ub), -highspy.kHighsInf)])
        lp.row_upper_ = rhs
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr
        lp.a_matrix_.index_ = csc.indices
        lp.a_matrix_.value_ = csc.data
        h = _highs()
        h.passModel(lp)
        return h

    def intervals(self, targets: Sequence[tuple[Sequence[int], Sequence[float]]]) -> np.ndarray:
        """[lo, hi] of each target (a sum of unknowns with coefficients), as an array of shape (k, 2).

        ``hi`` is ``inf`` when nothing bounds the target from above. An infeasible problem (the facts
        contradict each other) raises ``ValueError``: the input is wrong, never a cell to publish.
        """
        import highspy

        out = np.zeros((len(targets), 2))
        if not targets:
            return out
        h = self._model()
        zero = np.zeros(self.n)
        for k, (ids, coefs) in enumerate(targets):
            ids, coefs = np.asarray(ids, dtype=np.int64), np.asarray(coefs, dtype=float)
            cost = zero.copy()
            cost[ids] = coefs
            h.changeColsCost(self.n, np.arange(self.n, dtype=np.int32), cost)
            for j, sense in enumerate((highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize)):
                h.changeObjectiveSense(sense)
                out[k, j] = self._solve(h, ids, coefs, sense)
        return out

    def _solve(self, h: Any, ids: np.ndarray, coefs: np.ndarray, sense: Any) -> float:
        import highspy

        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:
            return math.inf if sense == highspy.ObjSense.kMaximize else -math.inf
        if status == highspy.HighsModelStatus.kInfeasible:
            raise ValueError("the published facts contradict each other (infeasible): check the table")
        if status != highspy.HighsModelStatus.kOptimal:
            raise ValueError(f"the interval solver stopped without an answer ({h.modelStatusToString(status)})")
        value = h.getInfo().objective_function_value
        if not self.integer:
            return value
        x = np.asarray(h.getSolution().col_value)
        if np.all(np.abs(x - np.round(x)) < _TOL):
            return float(np.round(value))
        # a fractional vertex: the integer bound can be tighter than the LP's; ask the integer program
        return self._integer_bound(ids, coefs, sense)

    def audit(self, requirements: dict[int, Requirement], *, movable: Sequence[int] = ()) -> tuple[list[int], list[int]]:
        """Which unknowns fail their requirement, and which of ``movable`` are fixed (exactly determined).

        The same answer as bounding every unknown with :meth:`intervals`, found with far fewer solves: a
        whole-number solution of the facts in which an unknown is at its requirement's low end (or at its
        high end) proves that end reachable, and one solve proves it for many unknowns at once (minimise,
        then maximise, the sum of those still unproven, each capped at its high end). Batches repeat while
        they prove something; what none proves is settled one unknown and one side at a time.

        Returns:
            (unknowns whose requirement fails, unknowns of ``movable`` that take one value only).
        """
        import highspy

        blocks = self._blocks()
        if len(blocks) > 1:  # unknowns that share no fact are independent: smaller problems, solved apart
            failed_all, fixed_all = [], []
            for sub, members in blocks:
                local = {int(g): k for k, g in enumerate(members)}
                f, x = sub.audit({local[v]: r for v, r in requirements.items() if v in local},
                                 movable=[local[v] for v in movable if v in local])
                failed_all += [int(members[k]) for k in f]
                fixed_all += [int(members[k]) for k in x]
            return sorted(failed_all), sorted(fixed_all)
        todo = {"lo": set(requirements), "hi": set(requirements)}
        seen: dict[int, set[float]] = {v: set() for v in movable}
        if not requirements and not seen:
            return [], []
        idx = np.arange(self.n, dtype=np.int32)
        upper0 = np.minimum((self.upper if self.upper is not None else np.full(self.n, np.inf)), _FAR)
        models: dict[bool, Any] = {}

        def solve(cost: np.ndarray, sense: Any, upper: np.ndarray, integer: bool,
                  any_whole: bool = False) -> tuple[np.ndarray | None, float]:
            """(solution, objective) of the LP, or of the integer program; (None, nan) without an optimum.

            ``any_whole``: a batch only needs some whole-number solution, good rather than best (whatever it
            proves, it proves), so the integer search may stop early; a bound that decides a cell never does.
            """
            if integer:
                models.setdefault(True, None)
                if models[True] is None:
                    models[True] = self._model()
                    models[True].changeColsIntegrality(self.n, idx, np.full(self.n, highspy.HighsVarType.kInteger))
                models[True].setOptionValue("mip_rel_gap", 0.25 if any_whole else 1e-4)
            if integer not in models:
                models[integer] = self._model()
                if integer:
                    models[integer].changeColsIntegrality(self.n, idx, np.full(self.n, highspy.HighsVarType.kInteger))
            h = models[integer]
            h.changeColsBounds(self.n, idx, np.zeros(self.n), upper)
            h.changeColsCost(self.n, idx, cost)
            h.changeObjectiveSense(sense)
            h.run()
            x = self._batch_solution(h)
            return (x, h.getInfo().objective_function_value) if x is not None else (None, math.nan)

        def whole(x: np.ndarray | None) -> bool:
            return x is not None and bool(np.all(np.abs(x - np.round(x)) < _TOL))

        def open_count() -> int:
            return len(todo["lo"]) + len(todo["hi"]) + sum(len(s) < 2 for s in seen.values())

        def record(x: np.ndarray) -> int:
            """Take what a whole-number solution proves; return how many open questions it closed."""
            x = np.round(x)
            before = open_count()
            for v, s in seen.items():
                if len(s) < 2:
                    s.add(float(x[v]))
            todo["lo"] -= {v for v in todo["lo"] if x[v] <= requirements[v].low + _TOL}
            todo["hi"] -= {v for v in todo["hi"] if x[v] >= requirements[v].high - _TOL}
            return before - open_count()

        def capped(vs: set[int]) -> np.ndarray:
            upper = upper0.copy()
            for v in vs:
                upper[v] = min(upper[v], requirements[v].high)
            return upper

        senses = (("lo", highspy.ObjSense.kMinimize), ("hi", highspy.ObjSense.kMaximize))
        progress = True
        while progress:  # batches: one solve proves an end for many unknowns at once
            progress = False
            unsettled = {v for v, s in seen.items() if len(s) < 2}
            for side, sense in senses:
                wanted = todo[side] | unsettled
                if not wanted:
                    continue
                cost = np.zeros(self.n)
                cost[list(wanted)] = 1.0
                upper = capped(todo["hi"]) if side == "hi" else upper0
                x, _ = solve(cost, sense, upper, False)
                if x is not None and not whole(x) and self.integer:
                    # a fractional vertex proves nothing: ask for integers
                    x, _ = solve(cost, sense, upper, True, any_whole=True)
                if whole(x) and record(x) > 0:
                    progress = True
        # a stalled batch: the unknowns compete (raising one lowers another), so ask for fewer at a time
        for size in (64, 16, 4):
            progress = True
            while progress:
                progress = False
                for side, sense in senses:
                    pending = sorted(todo[side])
                    if len(pending) <= size // 4:
                        continue
                    for start in range(0, len(pending), size):
                        chunk = [v for v in pending[start:start + size] if v in todo[side]]
                        if not chunk:
                            continue
                        cost = np.zeros(self.n)
                        cost[chunk] = 1.0
                        upper = capped(set(chunk)) if side == "hi" else upper0
                        x, _ = solve(cost, sense, upper, False)
                        if x is not None and not whole(x) and self.integer:
                            x, _ = solve(cost, sense, upper, True, any_whole=True)
                        if whole(x) and record(x) > 0:
                            progress = True
        # what no batch proved: one unknown, one side at a time (the LP first; integers only if it must)
        failed: set[int] = set()
        for side, sense in senses:
            for v in sorted(todo[side]):
                if v in failed or v not in todo[side]:
                    continue
                cost = np.zeros(self.n)
                cost[v] = 1.0
                upper = capped({v}) if side == "hi" else upper0
                x, value = solve(cost, sense, upper, False)
                req = requirements[v]
                reaches = value <= req.low + _TOL if side == "lo" else value >= req.high - _TOL
                if x is None or not reaches:  # the relaxation cannot reach it: whole numbers cannot either
                    failed.add(v)
                    continue
                if not whole(x) and self.integer:
                    x, value = solve(cost, sense, upper, True)
                    reaches = x is not None and (value <= req.low + _TOL if side == "lo" else value >= req.high - _TOL)
                    if not reaches:
                        failed.add(v)
                        continue
                record(x)
                todo[side].discard(v)
        fixed = []
        for v in sorted(v for v, s in seen.items() if len(s) < 2):
            lo, hi = self.intervals([([v], [1.0])])[0]
            if hi - lo < 0.5:
                fixed.append(v)
        return sorted(failed), fixed

    def _blocks(self) -> list[tuple["IntervalProblem", np.ndarray]]:
        """The problem split into independent parts: unknowns linked (through shared facts) to each other."""
        parent = np.arange(self.n)

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for ids, _, _ in self.eq + self.ub:
            if len(ids):
                root = find(int(ids[0]))
                for other in ids[1:]:
                    r = find(int(other))
                    if r != root:
                        parent[r] = root
        roots = np.array([find(i) for i in range(self.n)])
        groups = {int(r): np.flatnonzero(roots == r) for r in np.unique(roots)}
        if len(groups) <= 1:
            return [(self, np.arange(self.n))]
        out = []
        row_root = {k: (int(roots[ids[0]]) if len(ids) else None) for k, (ids, _, _) in enumerate(self.eq + self.ub)}
        for r, members in groups.items():
            local = np.full(self.n, -1, dtype=np.int64)
            local[members] = np.arange(members.size)
            sub = IntervalProblem(n=int(members.size), integer=self.integer,
                                  upper=None if self.upper is None else self.upper[members])
            for k, (ids, coefs, rhs) in enumerate(self.eq):
                if row_root[k] == r:
                    sub.add_eq(local[ids], coefs, rhs)
            for k, (ids, coefs, rhs) in enumerate(self.ub):
                if row_root[len(self.eq) + k] == r:
                    sub.add_ub(local[ids], coefs, rhs)
            out.append((sub, members))
        return out

    @staticmethod
    def _batch_solution(h: Any) -> np.ndarray | None:
        import highspy

        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            raise ValueError("the published facts contradict each other (infeasible): check the table")
        if status != highspy.HighsModelStatus.kOptimal:
            return None
        return np.asarray(h.getSolution().col_value)

    def _integer_bound(self, ids: np.ndarray, coefs: np.ndarray, sense: Any) -> float:
        import highspy

        h = self._model()
        h.changeColsIntegrality(self.n, np.arange(self.n, dtype=np.int32),
                                np.full(self.n, highspy.HighsVarType.kInteger))
        cost = np.zeros(self.n)
        cost[ids] = coefs
        h.changeColsCost(self.n, np.arange(self.n, dtype=np.int32), cost)
        h.changeObjectiveSense(sense)
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:
            return math.inf if sense == highspy.ObjSense.kMaximize else -math.inf
        if status != highspy.HighsModelStatus.kOptimal:
            raise ValueError(f"the integer interval solver stopped without an answer ({h.modelStatusToString(status)})")
        return float(np.round(h.getInfo().objective_function_value))
