with

current_rows as (
    {{ current_rows('police', 'persons') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        load_loaded_at as loaded_at,
        cast(birth_year as smallint) as birth_year,
        SEX as sex_code,
        RACE as race_code,
        ETHNICITY as ethnicity_code,
        -- the partner layout: RACE and ETHNICITY are recorded by the officer (observed), never asked
        'OFFICER' as race_reporter_code,
        ZIP as zip,
        cast(null as varchar) as census_tract
    from current_rows
)

select * from final
