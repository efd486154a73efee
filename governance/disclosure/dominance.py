"""Dominance (magnitude tables): the (n, k) rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from governance.disclosure.rules import DisclosureError, DisclosureRules


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


