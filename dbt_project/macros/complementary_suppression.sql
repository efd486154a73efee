{#- Small-cell suppression with complementary suppression, over any set of additive tables.

    Input: `cells` (cell_id, n) and `lines` (line_id, cell_id). A line is one additive constraint that is
    published: its interior cells sum to its total cell (a row with its row total, a column with its column
    total), and every cell of the line is in `lines`, the total included.

    Rule:
      1. primary: a cell with 1 <= n < min_cell_size (var min_cell_size, from governance/defaults.py) is suppressed; zeros are published;
      2. complementary: while some line has exactly ONE suppressed cell (that cell = total - the others), suppress
         one more cell of that line: the smallest non-zero published cell (zero cells only when no non-zero
         cell is left; ties by cell_id, so the result is deterministic). Repeated `passes` times (unrolled);
      3. the singular test no_line_with_one_suppressed_cell fails the build if a line still has exactly one
         suppressed cell after the last pass (raise var suppression_passes then).
    Returns (cell_id, suppressed, suppression_reason: 'primary' | 'complementary' | null). -#}
{% macro complementary_suppression(cells, lines, passes=none) -%}
{%- set passes = passes or var('suppression_passes', 12) -%}
{%- set min_cell = var('min_cell_size') -%}
suppression_pass_0 as materialized (
    select
        cell_id,
        n,
        n between 1 and {{ min_cell - 1 }} as suppressed,
        case when n between 1 and {{ min_cell - 1 }} then 'primary' end as suppression_reason
    from {{ cells }}
),
{%- for i in range(passes) %}
suppression_lines_{{ i }} as materialized (
    select lines.line_id, count(*) filter (where cells.suppressed) as suppressed_cells
    from {{ lines }} as lines
    inner join suppression_pass_{{ i }} as cells on cells.cell_id = lines.cell_id
    group by lines.line_id
    having count(*) filter (where cells.suppressed) = 1
),
suppression_pick_{{ i }} as (
    select distinct cell_id from (
        select
            lines.cell_id,
            row_number() over (partition by lines.line_id order by cells.n = 0, cells.n, cells.cell_id) as rank_in_line
        from {{ lines }} as lines
        inner join suppression_lines_{{ i }} as open_lines on open_lines.line_id = lines.line_id
        inner join suppression_pass_{{ i }} as cells on cells.cell_id = lines.cell_id
        where not cells.suppressed
    )
    where rank_in_line = 1
),
suppression_pass_{{ i + 1 }} as materialized (
    select
        cells.cell_id,
        cells.n,
        cells.suppressed or picked.cell_id is not null as suppressed,
        case when cells.suppressed then cells.suppression_reason
             when picked.cell_id is not null then 'complementary' end as suppression_reason
    from suppression_pass_{{ i }} as cells
    left join suppression_pick_{{ i }} as picked on picked.cell_id = cells.cell_id
),
{%- endfor %}
suppression_result as (
    select cell_id, suppressed, suppression_reason from suppression_pass_{{ passes }}
)
{%- endmacro %}
