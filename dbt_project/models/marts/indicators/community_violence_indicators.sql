{#- Community violence indicators by period, geography and demographic group, with small-cell, complementary and
    audited suppression (int_violence_indicator_cells_suppressed, then _protected; rule in the column meta), and rates
    per 100,000 residents (int_population_denominators). Why a cell is hidden is not published: "small" would tell a
    reader the cell lies between 1 and 10.
    Periods: month, quarter and year are protected together (one family per indicator and calendar year).
    rolling_12 (the 12 months to period_end) and year_to_date (January to period_end) are sums of published months:
    published only where every month in them is, so they add nothing a reader could not add up. -#}
with

cells as (select * from {{ ref('int_violence_indicator_cells') }}),
suppression_result as (select * from {{ ref('int_violence_indicator_cells_protected') }}),
denominators as (select * from {{ ref('int_population_denominators') }}),

protected as (
    select
        cells.period_type,
        cells.period_start,
        cells.period_end,
        cells.indicator,
        cells.geography_level,
        cells.geography,
        cells.demographic_dimension,
        cells.demographic_group,
        case when suppression_result.suppressed then null else cells.n end as event_count
    from cells
    inner join suppression_result on suppression_result.cell_id = cells.cell_id
),

months as (select * from protected where period_type = 'month'),

{%- set windows = {'rolling_12': "cast(ends.period_start - interval 11 month as date)",
                   'year_to_date': "cast(date_trunc('year', ends.period_start) as date)"} %}
{%- for name, first in windows.items() %}

{{ name }} as (
    select
        '{{ name }}' as period_type,
        {{ first }} as period_start,
        ends.period_end,
        ends.indicator, ends.geography_level, ends.geography, ends.demographic_dimension, ends.demographic_group,
        case when count(inside.event_count) = count(*) then sum(inside.event_count) end as event_count
    from months as ends
    inner join months as inside
        on inside.indicator = ends.indicator
        and inside.geography_level = ends.geography_level
        and inside.geography = ends.geography
        and inside.demographic_dimension = ends.demographic_dimension
        and inside.demographic_group = ends.demographic_group
        and inside.period_start between {{ first }} and ends.period_start
    group by all
    {%- if name == 'rolling_12' %}
    having count(*) = 12
    {%- endif %}
),
{%- endfor %}

all_periods as (
    select * from protected
    union all
    select * from rolling_12
    union all
    select * from year_to_date
),

final as (
    select
        all_periods.period_type,
        all_periods.period_start,
        all_periods.period_end,
        all_periods.indicator,
        all_periods.geography_level,
        all_periods.geography,
        all_periods.demographic_dimension,
        all_periods.demographic_group,
        cast(all_periods.event_count as integer) as event_count,
        all_periods.event_count is null as suppressed,
        cast(denominators.population as bigint) as population,
        case when denominators.population > 0 and all_periods.event_count is not null
             then round(all_periods.event_count * 100000.0 / denominators.population, 1) end as rate_per_100k
    from all_periods
    left join denominators
        on denominators.geography_level = all_periods.geography_level
        and denominators.geography = all_periods.geography
        and denominators.demographic_dimension = all_periods.demographic_dimension
        and denominators.demographic_group = all_periods.demographic_group
)

select * from final
