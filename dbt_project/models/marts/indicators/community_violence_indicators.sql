{#- Community violence indicators by period, geography and demographic group, with small-cell, complementary and
    audited suppression (int_violence_indicator_cells_suppressed, then _protected; rule in the column meta), and rates
    per 100,000 residents (int_population_denominators). Why a cell is hidden is not published: "small" would tell a
    reader the cell lies between 1 and 10.
    Months are the protected tables. Quarters, years, rolling 12 months (to period_end) and year to date (January to
    period_end) are sums of published months, published only where every month in them is: a reader could add them
    up anyway, so they can never help solve a hidden month (ADR 0008). -#}
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

months as (select * from protected),

longer_periods as (
    select distinct 'quarter' as period_type, cast(date_trunc('quarter', period_start) as date) as period_start,
           cast(date_trunc('quarter', period_start) + interval 3 month - interval 1 day as date) as period_end,
           3 as months_in
    from months
    union all
    select distinct 'year', cast(date_trunc('year', period_start) as date),
           cast(date_trunc('year', period_start) + interval 12 month - interval 1 day as date), 12
    from months
    union all
    select distinct 'rolling_12', cast(period_start - interval 11 month as date), period_end, 12
    from months
    union all
    select distinct 'year_to_date', cast(date_trunc('year', period_start) as date), period_end, month(period_start)
    from months
),

derived as (
    select
        longer_periods.period_type,
        longer_periods.period_start,
        longer_periods.period_end,
        months.indicator, months.geography_level, months.geography, months.demographic_dimension,
        months.demographic_group,
        case when count(months.event_count) = count(*) then sum(months.event_count) end as event_count
    from longer_periods
    inner join months on months.period_start between longer_periods.period_start and longer_periods.period_end
    group by all
    having count(*) = max(longer_periods.months_in)
),

all_periods as (
    select * from protected
    union all
    select * from derived
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
