"""Disclosure control of everything an evaluation report shows, with :mod:`governance.disclosure`'s rules.

Every count behind a number or a chart passes the minimum cell (with complementary suppression where a total
is shown), every sum of events the dominance rule (persons as contributors). What is withheld is listed, never
why in a way that would tell a reader a value lies between 1 and the minimum cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from governance.disclosure import DisclosureRules, dominance_shares, suppress_counts

__all__ = ["Suppressed", "protect_balance", "protect_km", "protect_series", "safe_count", "sums_dominated"]


class Suppressed(list):
    """What the report withheld: one plain sentence per item."""

    def add(self, what: str) -> None:
        self.append(what)


def safe_count(n: int, rules: DisclosureRules) -> bool:
    return n == 0 or n >= rules.min_cell


def sums_dominated(frame: pd.DataFrame, value: str, group: str, rules: DisclosureRules) -> dict[Any, bool]:
    """Per group, whether the sum of ``value`` fails the dominance rule (persons as contributors)."""
    f = frame.assign(__contributor=np.arange(len(frame)), __v=frame[value].fillna(0).clip(lower=0))
    shares = dominance_shares(f, "__v", "__contributor", [group], rules)
    return {k: bool(v >= rules.dominance_k - 1e-9) for k, v in shares.items()}


def protect_balance(rows: list[dict[str, Any]], rules: DisclosureRules, out: Suppressed) -> list[dict[str, Any]]:
    """Hide the proportions of a categorical variable's levels whose counts could disclose (minimum cell and
    complementary suppression down each group's column, the group size being known); a numeric row is kept when
    its groups are big enough."""
    shown = []
    by_var: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_var.setdefault(r["variable"], []).append(r)
    cols = ["n_participants", "n_comparison_before", "n_participants_after", "n_comparison_after"]
    for var, levels in by_var.items():
        if levels[0]["kind"] == "numeric":
            ok = all(safe_count(levels[0][c], rules) for c in cols)
            if not ok:
                out.add(f"balance: the mean of {var} (a group had fewer than {rules.min_cell} persons)")
            shown.append(levels[0] | ({} if ok else {"participants": None, "comparison_before": None,
                                                       "comparison_after": None, "smd_before": None,
                                                       "smd_after": None}))
            continue
        table = pd.DataFrame([{**{c: r[c] for c in cols}, "level": r["level"]} for r in levels])
        total = {"level": "All", **{c: int(table[c].sum()) for c in cols}}
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
        protected, _ = suppress_counts(table, cols, rules, total_row={"level": "All"})
        for i, r in enumerate(levels):
            hidden = bool(protected.loc[i, cols].isna().any())
            if hidden:
                out.add(f"balance: {var} = {r['level']}")
                r = r | {"participants": None, "comparison_before": None, "comparison_after": None,
                         "smd_before": None, "smd_after": None}
            shown.append(r)
    return shown


def protect_series(series: pd.DataFrame, label: str, rules: DisclosureRules, out: Suppressed,
                   freq: str = "QS") -> pd.DataFrame:
    """Monthly counts per group, summed to quarters (``freq``), each quarter's count checked against the minimum
    cell with complementary suppression along each group's series (its total is known from the estimates)."""
    s = series.copy()
    s["period"] = s["month"].dt.to_period("Q").dt.start_time if freq == "QS" else s["month"]
    q = s.groupby(["group", "period"], as_index=False)["n"].sum()
    wide = q.pivot(index="period", columns="group", values="n").fillna(0).astype(int).reset_index()
    groups = [c for c in wide.columns if c != "period"]
    wide["period"] = wide["period"].dt.strftime("%Y-%m")
    total = pd.DataFrame([{"period": "All", **{g: int(wide[g].sum()) for g in groups}}])
    table = pd.concat([wide, total], ignore_index=True)
    protected, report = suppress_counts(table, groups, rules, total_row={"period": "All"})
    hidden = int(protected[groups].iloc[:-1].isna().to_numpy().sum())
    if hidden:
        out.add(f"{label}: {hidden} quarterly counts (shown as gaps)")
    return protected.iloc[:-1].reset_index(drop=True)


def protect_km(rows: list[dict[str, Any]], rules: DisclosureRules, out: Suppressed) -> list[dict[str, Any]]:
    """Kaplan-Meier points: a curve is shown at a time point only when the events since its last shown point are
    0 or at least the minimum cell (intervals are merged until they are), and stops where fewer than the
    minimum cell persons remain at risk."""
    shown, merged = [], 0
    for group in sorted({r["group"] for r in rows}):
        pending = 0
        for r in [r for r in rows if r["group"] == group]:
            if not safe_count(r["at_risk"], rules) or r["at_risk"] < rules.min_cell:
                out.add(f"Kaplan-Meier ({group}): the curve stops at day {r['day']} (fewer than {rules.min_cell} "
                        "at risk)")
                break
            pending += r["events"]
            if safe_count(pending, rules):
                shown.append(r | {"events": pending})
                pending = 0
            else:
                merged += 1
    if merged:
        out.add(f"Kaplan-Meier: {merged} monthly points merged into later ones (too few events between them)")
    return shown
