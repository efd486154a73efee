{{ config(meta={'dagster': {'ref': {'name': 'community_violence_indicators'}}}) }}
-- Complementary suppression is complete: no published additive line (interior cells + total) has exactly one
-- suppressed cell, which would equal the total minus the published cells.
with

cells as (select * from {{ ref('int_violence_indicator_cells') }}),
lines as (select * from {{ ref('int_violence_indicator_lines') }}),
published as (select * from {{ ref('community_violence_indicators') }}),

cell_status as (
    select cells.cell_id, published.suppressed
    from cells
    inner join published using (period_type, period_start, indicator, geography_level, geography, demographic_dimension, demographic_group)
)

select lines.line_id, count(*) filter (where cell_status.suppressed) as suppressed_cells
from lines
inner join cell_status using (cell_id)
group by lines.line_id
having count(*) filter (where cell_status.suppressed) = 1
