{#- Events placed on the geography reference: the tract when the event has one (incident location or residence
    tract), otherwise the ZIP when that ZIP lies in a single neighbourhood. A ZIP spanning several
    neighbourhoods gives no neighbourhood (and no priority-area flag): placing it would be a guess. -#}
with

events as (select * from {{ ref('int_events_unioned') }}),
geography as (select * from {{ ref('geography') }}),

single_neighbourhood_zips as (
    select zip, any_value(neighborhood) as neighborhood
    from geography
    group by zip
    having count(distinct neighborhood) = 1
),

final as (
    select
        events.*,
        coalesce(tracts.neighborhood, zips.neighborhood) as neighbourhood,
        nullif(tracts.priority_area, '') as priority_area,
        case when tracts.tract is not null then tracts.priority_area is not null and tracts.priority_area <> '' end
            as is_priority_area,
        case
            when tracts.tract is not null then 'tract'
            when zips.zip is not null then 'zip'
            else 'none'
        end as geography_precision
    from events
    left join geography as tracts on tracts.tract = events.census_tract
    left join single_neighbourhood_zips as zips on tracts.tract is null and zips.zip = events.zip
)

select * from final
