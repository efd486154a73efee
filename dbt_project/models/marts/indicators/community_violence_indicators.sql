{#- Monthly community violence indicators by geography and demographic group, with small-cell, complementary and
    audited suppression (int_violence_indicator_cells_suppressed, then _protected; rule in the column meta). Why a
    cell is hidden is not published: "small" would tell a reader the cell lies between 1 and 10. -#}
with

cells as (select * from {{ ref('int_violence_indicator_cells') }}),
suppression_result as (select * from {{ ref('int_violence_indicator_cells_protected') }}),

final as (
    select
        cells.month,
        cells.indicator,
        cells.geography_level,
        cells.geography,
        cells.demographic_dimension,
        cells.demographic_group,
        case when suppression_result.suppressed then null else cells.n end as event_count,
        suppression_result.suppressed
    from cells
    inner join suppression_result on suppression_result.cell_id = cells.cell_id
)

select * from final
