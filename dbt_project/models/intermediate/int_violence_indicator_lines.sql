{#- The additive constraints that the published indicator table lets anyone check: each line's interior cells
    sum to its total cell (is_total). For each month and indicator:
      row lines     (geography g of level L, dimension D): cells (g, D, every group) + (g, all, All)
      column lines  (level L, dimension D, group k):       cells (every g of L, D, k) + (county, D, k)
      total column  (level L):                              cells (every g of L, all, All) + (county, all, All)
      county row    (dimension D):                          cells (county, D, every group) + (county, all, All)
    Neighbourhood and priority-area tables share the county row and the 'All' column, so a suppression decided
    in one is seen by the other. Longer periods are published only as sums of published months (the mart), so
    they add no line. -#}
with

cells as (select * from {{ ref('int_violence_indicator_cells') }}),

row_lines as (
    select
        concat_ws('|', 'row', period_type, period_start, indicator, geography_level, geography, dims.demographic_dimension) as line_id,
        cells.cell_id,
        cells.demographic_dimension = 'all' as is_total
    from cells
    inner join (select distinct demographic_dimension from cells where demographic_dimension <> 'all') as dims
        on cells.demographic_dimension = dims.demographic_dimension or cells.demographic_dimension = 'all'
),

column_lines as (
    select
        concat_ws('|', 'col', period_type, period_start, indicator, levels.geography_level, demographic_dimension, demographic_group) as line_id,
        cells.cell_id,
        cells.geography_level = 'county' as is_total
    from cells
    inner join (select distinct geography_level from cells where geography_level <> 'county') as levels
        on cells.geography_level = levels.geography_level or cells.geography_level = 'county'
),

final as (
    select * from row_lines
    union all
    select * from column_lines
)

select * from final
