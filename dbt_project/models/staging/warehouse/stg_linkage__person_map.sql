with

person_map as (
    select * from {{ source('linkage', 'person_map') }}
),

final as (
    select
        source,
        source_record_id,
        person_key,
        match_confidence,
        linkage_run_id
    from person_map
)

select * from final
