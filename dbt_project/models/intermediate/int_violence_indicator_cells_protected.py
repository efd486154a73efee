"""The recoverability audit of the indicator suppression, with the governance library's own code.

The line rule (no line with exactly one hidden cell) is necessary but not sufficient: hidden cells in
several lines can still be solved together from the published totals (three lines x+a, x+b, a+b give all
three away). ``governance.disclosure.protect_cells`` checks every month x indicator table with linear
algebra and hides more cells until no hidden cell is determined by the lines; cells it adds carry the
reason 'audit'. The same function, with its property tests, protects every released aggregate file.
"""


def model(dbt, session):
    dbt.config(materialized="table")
    import pandas as pd

    from governance.disclosure import DisclosureRules, protect_cells

    cells = dbt.ref("int_violence_indicator_cells").project(
        "cell_id, n, concat_ws('|', month, indicator) as component").df()
    lines = dbt.ref("int_violence_indicator_lines").project(
        "line_id, cell_id, case when is_total then -1.0 else 1.0 end as coef").df()
    first = dbt.ref("int_violence_indicator_cells_suppressed").project("cell_id, suppressed").df()
    rules = DisclosureRules(min_cell=int(dbt.config.get("min_cell_size")))
    out = protect_cells(cells, lines, rules, suppressed=first.set_index("cell_id")["suppressed"])
    return pd.DataFrame({"cell_id": out["cell_id"].astype("int64"), "suppressed": out["suppressed"].astype(bool),
                         "suppression_reason": out["reason"].astype(object)})
