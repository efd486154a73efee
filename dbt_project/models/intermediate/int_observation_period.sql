{#- The data's observation period: first and last event date across sectors, and the reference date for ages
    (var reference_date, else the last event date). One row. -#}
with

events as (select * from {{ ref('int_events_unioned') }}),

final as (
    select
        min(event_date) as observation_start_date,
        max(event_date) as observation_end_date,
        coalesce(cast({{ "'" ~ var('reference_date') ~ "'" if var('reference_date') else 'null' }} as date),
                 max(event_date)) as reference_date
    from events
)

select * from final
