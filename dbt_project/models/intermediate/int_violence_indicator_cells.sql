{#- The dense cell grid of the community violence indicators, with the RAW counts (internal: the mart publishes
    them only after suppression). One cell per period x indicator x geography x demographic group, including the
    margins: geography 'Mecklenburg County' (all geographies) and demographic group 'All'.
    Periods: every month of the observation window; each month x indicator table is protected on its own
    (`component`). Quarters, years, rolling 12 months and year to date are published by the mart as sums of
    published months only (ADR 0008): protecting them together with the months, as one family per indicator and
    year, was measured and is too slow at the demo's scale (see the ADR).
    Geography levels: neighbourhood (+ 'Unknown location'), priority_area (4 areas + 'Outside priority areas' +
    'Unknown location'), county. Every level sums to the county row, every dimension to the 'All' column. -#}
with

events as (select * from {{ ref('events') }}),
persons as (select person_key, sex, race_ethnicity from {{ ref('persons') }}),
geography as (select * from {{ ref('geography') }}),
observation as (select * from {{ ref('int_observation_period') }}),

months as (
    select cast(range as date) as month
    from observation,
        range(date_trunc('month', observation_start_date), date_trunc('month', observation_end_date) + interval 1 month,
              interval 1 month)
),

periods as (
    select 'month' as period_type, month as period_start, cast(month + interval 1 month - interval 1 day as date) as period_end
    from months
),

indicators as (
    select unnest([{% for k in violence_indicators() %}'{{ k }}'{% if not loop.last %}, {% endif %}{% endfor %}]) as indicator
),

geographies as (
    select distinct 'neighbourhood' as geography_level, neighborhood as geography from geography
    union all select 'neighbourhood', 'Unknown location'
    union all select distinct 'priority_area', priority_area from geography where coalesce(priority_area, '') <> ''
    union all select 'priority_area', 'Outside priority areas'
    union all select 'priority_area', 'Unknown location'
    union all select 'county', 'Mecklenburg County'
),

groups as (
    {%- set dims = {'race_ethnicity': race_ethnicity_categories(), 'sex': sex_categories(), 'age_band': age_bands()} %}
    {%- for dim, cats in dims.items() %}
    select '{{ dim }}' as demographic_dimension, unnest([{% for c in cats %}'{{ c }}'{% if not loop.last %}, {% endif %}{% endfor %}]) as demographic_group
    union all
    {%- endfor %}
    select 'all', 'All'
),

indicator_events as (
    {%- for name, cond in violence_indicators().items() %}
    select '{{ name }}' as indicator, event_id, person_key, event_month, age_band_at_event,
           neighbourhood, priority_area, is_priority_area
    from events where {{ cond }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

described as (
    select
        indicator_events.indicator,
        indicator_events.event_month as month,
        coalesce(indicator_events.neighbourhood, 'Unknown location') as neighbourhood,
        case when indicator_events.is_priority_area then indicator_events.priority_area
             when indicator_events.is_priority_area = false then 'Outside priority areas'
             else 'Unknown location' end as priority_area,
        coalesce(persons.race_ethnicity, 'Unknown') as race_ethnicity,
        coalesce(persons.sex, 'Unknown') as sex,
        indicator_events.age_band_at_event as age_band
    from indicator_events
    left join persons on persons.person_key = indicator_events.person_key
),

counted as (
    {#- every (geography level, demographic dimension) combination, margins included, by grouping sets -#}
    {%- set geo_cols = {'neighbourhood': 'neighbourhood', 'priority_area': 'priority_area', 'county': none} %}
    {%- set dim_cols = {'race_ethnicity': 'race_ethnicity', 'sex': 'sex', 'age_band': 'age_band', 'all': none} %}
    {%- for level, gcol in geo_cols.items() %}
    {%- for dim, dcol in dim_cols.items() %}
    select indicator, month, '{{ level }}' as geography_level,
           {{ gcol if gcol else "'Mecklenburg County'" }} as geography,
           '{{ dim }}' as demographic_dimension,
           {{ dcol if dcol else "'All'" }} as demographic_group,
           count(*) as n
    from described
    group by all
    {% if not (loop.last and level == 'county') %}union all{% endif %}
    {%- endfor %}
    {%- endfor %}
),

counted_periods as (
    select periods.period_type, periods.period_start, counted.indicator, counted.geography_level, counted.geography,
           counted.demographic_dimension, counted.demographic_group, sum(counted.n) as n
    from counted
    inner join periods on counted.month between periods.period_start and periods.period_end
    group by all
),

grid as (
    select periods.period_type, periods.period_start, periods.period_end, indicators.indicator, geographies.geography_level, geographies.geography,
           groups.demographic_dimension, groups.demographic_group
    from periods
    cross join indicators
    cross join geographies
    cross join groups
    where (geographies.geography_level = 'county') = (geographies.geography = 'Mecklenburg County')
),

final as (
    select
        row_number() over (order by grid.period_type, grid.period_start, grid.indicator, grid.geography_level,
                                    grid.geography, grid.demographic_dimension, grid.demographic_group) as cell_id,
        grid.*,
        concat_ws('|', grid.period_start, grid.indicator) as component,
        cast(coalesce(counted.n, 0) as integer) as n
    from grid
    left join counted_periods as counted
        on counted.period_type = grid.period_type
        and counted.period_start = grid.period_start
        and counted.indicator = grid.indicator
        and counted.geography_level = grid.geography_level
        and counted.geography = grid.geography
        and counted.demographic_dimension = grid.demographic_dimension
        and counted.demographic_group = grid.demographic_group
)

select * from final
