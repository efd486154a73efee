{#- Population denominators of the published rates, for every geography x demographic group of the indicator grid.
    Source: the population estimates file (var population_estimates, else env VPDC_POPULATION_ESTIMATES, else
    VPDC_HOME/reference/population_estimates.csv: tract, sex, age in years, race_ethnicity, population). The simulator writes a stand-in from the
    synthetic population; a collaborative replaces it with the Census Bureau's estimates in the same shape. With
    no file, every denominator is null and the mart publishes no rate. 'Unknown location' and the 'Unknown' (or
    'X', 'Some other race') groups have no denominator. -#}
{%- set path = var('population_estimates', none) or env_var('VPDC_POPULATION_ESTIMATES',
                  env_var('VPDC_HOME', 'var') ~ '/reference/population_estimates.csv') %}
{%- set found = false %}
{%- if execute %}
{%- set found = run_query("select count(*) from glob('" ~ path | replace("'", "''") ~ "')").columns[0].values()[0] > 0 %}
{%- endif %}
with

geography as (select * from {{ ref('geography') }}),

{% if found -%}
estimates as (
    select cast(tract as varchar) as tract, sex, cast(age as integer) as age, race_ethnicity,
           cast(population as bigint) as population
    from read_csv('{{ path | replace("'", "''") }}', header = true,
                  columns = {'tract': 'VARCHAR', 'sex': 'VARCHAR', 'age': 'INTEGER', 'race_ethnicity': 'VARCHAR',
                             'population': 'BIGINT'})
),
{%- else -%}
estimates as (
    select cast(null as varchar) as tract, cast(null as varchar) as sex, cast(null as integer) as age,
           cast(null as varchar) as race_ethnicity, cast(null as bigint) as population
    where false
),
{%- endif %}

located as (
    select
        geography.neighborhood as neighbourhood,
        case when coalesce(geography.priority_area, '') <> '' then geography.priority_area
             else 'Outside priority areas' end as priority_area,
        estimates.sex,
        {{ age_band('estimates.age') }} as age_band,
        estimates.race_ethnicity,
        estimates.population
    from estimates
    inner join geography on cast(geography.tract as varchar) = estimates.tract
),

final as (
    {%- set geo_cols = {'neighbourhood': 'neighbourhood', 'priority_area': 'priority_area', 'county': none} %}
    {%- set dim_cols = {'race_ethnicity': 'race_ethnicity', 'sex': 'sex', 'age_band': 'age_band', 'all': none} %}
    {%- for level, gcol in geo_cols.items() %}
    {%- for dim, dcol in dim_cols.items() %}
    select '{{ level }}' as geography_level,
           {{ gcol if gcol else "'Mecklenburg County'" }} as geography,
           '{{ dim }}' as demographic_dimension,
           {{ dcol if dcol else "'All'" }} as demographic_group,
           sum(population) as population
    from located
    group by all
    {% if not (loop.last and level == 'county') %}union all{% endif %}
    {%- endfor %}
    {%- endfor %}
)

select * from final
