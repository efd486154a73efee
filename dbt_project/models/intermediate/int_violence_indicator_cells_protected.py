"""The interval audit of the indicator suppression, with the governance library's own code (ADR 0008).

The line rule (no line with exactly one hidden cell) is necessary but not sufficient: hidden cells in
several lines can be solved or narrowed together from the published totals, non-negativity and whole
numbers. ``governance.disclosure.protect_cells`` certifies every indicator x calendar year table family (its
months, quarters and the year, linked by the period lines) by linear and integer programming and hides more cells until every hidden small cell could be anything from 0 to the
minimum cell; cells it adds carry the reason 'audit' (kept here, never published in the mart).
"""


def model(dbt, session):
    dbt.config(materialized="table")
    import pandas as pd

    from governance.disclosure import DisclosureRules, protect_cells

    cells = dbt.ref("int_violence_indicator_cells").project(
        "cell_id, n, component").df()
    lines = dbt.ref("int_violence_indicator_lines").project(
        "line_id, cell_id, case when is_total then -1.0 else 1.0 end as coef").df()
    first = dbt.ref("int_violence_indicator_cells_suppressed").project("cell_id, suppressed").df()
    rules = DisclosureRules(min_cell=int(dbt.config.get("min_cell_size")))
    out = protect_cells(cells, lines, rules, suppressed=first.set_index("cell_id")["suppressed"])
    return pd.DataFrame({"cell_id": out["cell_id"].astype("int64"), "suppressed": out["suppressed"].astype(bool),
                         "suppression_reason": out["reason"].astype(object)})
