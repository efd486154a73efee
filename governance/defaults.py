"""The collaborative's governance defaults (DESIGN.md, "Governance defaults"), each written once.

Every part of the system that applies one of these values reads it from here: the disclosure rules
(:class:`governance.disclosure.DisclosureRules`), the registry's per-partner defaults, the CLI's and
Dagster's options, and dbt, which receives them as vars (:func:`dbt_vars`; ``dbt_project.yml`` holds no
copy). A partner may ask for a stricter rule in the registry; the strictest partner of a release wins.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DOMINANCE_K", "DOMINANCE_N", "K_ANONYMITY", "MIN_CELL", "OUTCOME_WINDOW_DAYS", "dbt_vars"]

#: Smallest publishable non-zero count: counts 1..MIN_CELL-1 are never published (0 is: it discloses no one).
MIN_CELL = 11
#: Dominance rule for sums: a cell fails when its DOMINANCE_N largest contributors hold DOMINANCE_K of it.
DOMINANCE_N = 2
DOMINANCE_K = 0.90
#: Every combination of quasi-identifiers in a record-level file is shared by at least this many persons.
K_ANONYMITY = 11
#: Program cohorts count outcomes in this many days before and after enrollment.
OUTCOME_WINDOW_DAYS = 365


def dbt_vars() -> dict[str, Any]:
    """The vars every dbt invocation receives (``dbt ... --vars``): the same values, never a second copy."""
    return {"min_cell_size": MIN_CELL, "outcome_window_days": OUTCOME_WINDOW_DAYS}
